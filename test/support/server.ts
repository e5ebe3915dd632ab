import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

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
  ): Promise<{ status: number; body: any; text: string }>;
}

export const repoRoot = resolve(import.meta.dirname, '../..');
export const TEST_TOKEN = 'test-admin-token-0123456789';

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
}

export async function startServerProcess(options: StartOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'upshift-test-'));
  const port = await freePort();
  let child!: ChildProcess;
  let out = '';
  const url = `http://127.0.0.1:${port}`;
  const launch = async (extra: string[] = []) => {
    out = '';
    child = spawn(
      process.execPath,
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
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${out}`);
      try {
        const res = await fetch(`${url}/readyz`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`server did not become ready: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const waitExit = () =>
    new Promise<void>((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r();
      else child.once('exit', () => r());
    });
  await launch();
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
      const res = await fetch(`${url}${path}`, { method: init.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, body: parsed, text };
    },
  };
  return proc;
}
