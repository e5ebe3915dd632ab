import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequestRaw } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type DialectName, freshPgDatabase } from './databases.js';

/**
 * Runs the real `upshift server` (the built bundle) as a child process on a free
 * loopback port with its own data dir, for tests that go through HTTP as a user would.
 * `npm run build` must have run (the test script does it).
 */
export interface ServerProcess {
  url: string;
  token: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything the server printed so far. */
  output(): string;
  /** SIGTERM and wait; `kill9` for a crash. */
  stop(): Promise<void>;
  kill9(): Promise<void>;
  /** Starts it again on the same data dir and port (after a stop or a crash). */
  restart(extraArgs?: string[]): Promise<void>;
  /** Removes the data dir; call after stop. */
  cleanup(): void;
  /** fetch against the server with the token. */
  api(
    path: string,
    init?: { method?: string; body?: unknown; token?: string | null; rawBody?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; text: string; headers: Record<string, string | string[] | undefined> }>;
}

export const repoRoot = resolve(import.meta.dirname, '../..');
export const TEST_TOKEN = 'test-admin-token-7f3a9c2e4b8d1f6a0c5e9b3d7a2f8c4e';

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      if (address && typeof address === 'object') {
        const { port } = address;
        srv.close(() => resolvePort(port));
      } else reject(new Error('no port'));
    });
  });
}

export interface StartOptions {
  args?: string[];
  env?: Record<string, string>;
  database?: string;
  dataDir?: string;
  /** `https` when the server is given --tls-cert/--tls-key (its self-signed certificate is not checked here). */
  scheme?: 'http' | 'https';
  /** The Node.js that starts bin/upshift.js: the test's own (the bundled Node.js 24) unless given. */
  node?: string;
}

/** A loopback HTTPS request that accepts the test's self-signed certificate. */
function httpsRequest(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolvePromise, reject) => {
    const req = httpsRequestRaw(url, { method: init.method, headers: init.headers, rejectUnauthorized: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on('error', reject);
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}

export async function startServerProcess(options: StartOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'upshift-test-'));
  const port = await freePort();
  let child!: ChildProcess;
  let out = '';
  const url = `${options.scheme ?? 'http'}://127.0.0.1:${port}`;
  const https = options.scheme === 'https';
  const launch = async (extra: string[] = []) => {
    out = '';
    child = spawn(
      options.node ?? process.execPath,
      [
        join(repoRoot, 'bin/upshift.js'),
        'server',
        '--port',
        String(port),
        '--data-dir',
        dataDir,
        '--log-level',
        'warn',
        ...(options.database ? ['--database', options.database] : []),
        ...(options.args ?? []),
        ...extra,
      ],
      { env: { ...process.env, UPSHIFT_ADMIN_TOKEN: TEST_TOKEN, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${out}`);
      try {
        const status = https
          ? (await httpsRequest(`${url}/readyz`, { method: 'GET', headers: {} })).status
          : (await fetch(`${url}/readyz`)).status;
        if (status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        // Never leave a server behind: the caller gets no handle to stop it.
        child.kill('SIGKILL');
        throw new Error(`server did not become ready: ${out}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const waitExit = () =>
    new Promise<void>((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r();
      else child.once('exit', () => r());
    });
  try {
    await launch();
  } catch (error) {
    // A server that did not start (a test may expect that) leaves no data dir behind.
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const proc: ServerProcess = {
    url,
    token: TEST_TOKEN,
    dataDir,
    get child() {
      return child;
    },
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await waitExit();
      }
    },
    async kill9() {
      child.kill('SIGKILL');
      await waitExit();
    },
    restart: (extra) => launch(extra),
    cleanup() {
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    async api(path, init = {}) {
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      const token = init.token === undefined ? TEST_TOKEN : init.token;
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      let body: string | undefined;
      if (init.rawBody !== undefined) {
        body = init.rawBody;
        headers['content-type'] ??= 'application/json';
      } else if (init.body !== undefined) {
        body = JSON.stringify(init.body);
        headers['content-type'] = 'application/json';
      }
      const method = init.method ?? (body !== undefined ? 'POST' : 'GET');
      let status: number;
      let text: string;
      let responseHeaders: Record<string, string | string[] | undefined>;
      if (https) {
        ({
          status,
          text,
          headers: responseHeaders,
        } = await httpsRequest(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) }));
      } else {
        const res = await fetch(`${url}${path}`, { method, headers, body });
        status = res.status;
        text = await res.text();
        responseHeaders = Object.fromEntries(res.headers.entries());
      }
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status, body: parsed, text, headers: responseHeaders };
    },
  };
  return proc;
}

/**
 * A server process on `dialect`: SQLite in its data dir, or a fresh PostgreSQL database of
 * its own; `stop` ends the process and drops what it made.
 */
export async function startServerOn(
  dialect: DialectName,
  options: StartOptions = {},
): Promise<{ server: ServerProcess; stop(): Promise<void> }> {
  const db = dialect === 'postgres' ? await freshPgDatabase() : undefined;
  const server = await startServerProcess({ ...options, ...(db ? { database: db.url } : {}) });
  return {
    server,
    async stop() {
      await server.stop();
      server.cleanup();
      await db?.drop();
    },
  };
}
