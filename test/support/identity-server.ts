import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { loadServerConfig } from '../../src/server/config.js';
import { type RunningServer, startServer } from '../../src/server/run.js';
import { JumpClock } from './clock.js';
import { type DialectName, freshPgDatabase } from './databases.js';
import { repoRoot } from './server.js';

/**
 * The real server in the test's own process (so that a jump clock can pass a join token's
 * lifetime, and a test can hold the store), with the built agent and the HTTP calls the
 * node identity suites make: joins, an agent's calls with its credential, an admin's.
 */

/** The admin token of the servers started here. */
export const ADMIN = randomBytes(32).toString('hex');
/** The agent as one JavaScript file (`node dist/agent.js`), for the agents a test starts itself. */
export const AGENT_FILE = join(repoRoot, 'dist/agent.js');
/** The agent executable the install script installs. */
export const AGENT_EXE = join(repoRoot, 'dist/agent/upshift-agent-linux-x64');

export interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

/** One API call; `token` null sends none, undefined the admin's. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? ADMIN : options.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** What an agent on a Docker 20.10 host reports. */
export const facts = (hostname: string) => ({
  hostname,
  os: 'linux',
  arch: 'x64',
  agentVersion: '1.1.0',
  versions: { docker: '20.10.24', containerd: '1.6.20' },
  engineReachable: true,
});

export interface IdentityServer {
  readonly clock: JumpClock;
  /** Set once the suite's beforeAll ran. */
  readonly server: RunningServer;
  readonly base: string;
  /** A temp dir of the suite's own, removed after it. */
  readonly work: string;
  api(method: string, path: string, options?: { token?: string | null; body?: unknown }): Promise<Reply>;
  /** POST /api/v1/agent/join as an agent would, with `extra` fields in the body. */
  join(joinToken: string, name: string, extra?: Record<string, unknown>): Promise<Reply>;
  /** An agent route with the node's credential. */
  agent(credential: string, method: string, path: string, body?: unknown): Promise<Reply>;
  events(
    clusterId: string,
    type: string,
  ): Promise<Array<{ actor: string; nodeId: string | null; message: string; data: Record<string, unknown> | null }>>;
  /** A hosts cluster with its first join token. */
  createHosts(name: string): Promise<{ id: string; joinToken: string; joinCommand: string; expiresAt: string; agentSha256: string | null }>;
  waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T>;
}

/**
 * Starts the server for the describe block it is called in (beforeAll) on `dialect` (a
 * fresh PostgreSQL database of its own), with join tokens that live 10 minutes, and
 * stops it and removes what it made after (afterAll).
 */
export function identityServerForSuite(dialect: DialectName, label = 'identity'): IdentityServer {
  const clock = new JumpClock();
  let server: RunningServer | undefined;
  let work: string | undefined;
  let drop: (() => Promise<void>) | undefined;
  const savedAdminEnv = process.env['UPSHIFT_ADMIN_TOKEN'];
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the server starts in beforeAll');
    return value;
  };

  beforeAll(async () => {
    expect(existsSync(AGENT_FILE), 'npm run build makes dist/agent.js').toBe(true);
    expect(existsSync(AGENT_EXE), 'npm run build makes dist/agent/upshift-agent-linux-x64').toBe(true);
    work = mkdtempSync(join(tmpdir(), `upshift-${label}-`));
    const dataDir = join(work, 'server');
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(join(dataDir, 'admin-token'), `${ADMIN}\n`, { mode: 0o600 });
    delete process.env['UPSHIFT_ADMIN_TOKEN'];
    let database: string | undefined;
    if (dialect === 'postgres') {
      const db = await freshPgDatabase();
      database = db.url;
      drop = db.drop;
    }
    const config = loadServerConfig({ port: '0', dataDir, logLevel: 'silent', joinTokenTtl: '10m', ...(database ? { database } : {}) }, {});
    server = await startServer(config, { clock, agentBundle: AGENT_FILE, agentExecutable: AGENT_EXE });
  });
  afterAll(async () => {
    await server?.close();
    if (savedAdminEnv !== undefined) process.env['UPSHIFT_ADMIN_TOKEN'] = savedAdminEnv;
    if (work) rmSync(work, { recursive: true, force: true });
    await drop?.();
  });

  const api: IdentityServer['api'] = (method, path, options) => call(started(server).url, method, path, options);
  return {
    clock,
    get server() {
      return started(server);
    },
    get base() {
      return started(server).url;
    },
    get work() {
      return started(work);
    },
    api,
    join: (joinToken, name, extra = {}) =>
      api('POST', '/api/v1/agent/join', { token: null, body: { joinToken, name, facts: facts(name), protocol: 1, ...extra } }),
    agent: (credential, method, path, body) =>
      api(method, `/api/v1/agent${path}`, { token: credential, ...(body === undefined ? {} : { body }) }),
    events: async (clusterId, type) => (await api('GET', `/api/v1/events?clusterId=${clusterId}&type=${type}`)).body.items,
    async createHosts(name) {
      const created = await api('POST', '/api/v1/clusters', { body: { name, kind: 'hosts' } });
      expect(created.status).toBe(201);
      return created.body;
    },
    async waitFor(what, probe) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const value = await probe();
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
