import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServerConfig } from '../../src/server/config.js';
import { type RunningServer, startServer } from '../../src/server/run.js';
import { dialects, freshPgDatabase } from '../support/databases.js';
import { startServerProcess } from '../support/server.js';

const ADMIN = 'security-admin-token-5b1e8d3f9a7c2e6b4d0f8a3c7e1b9d5f';

interface Client {
  status(
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<number>;
  json(method: string, path: string, options?: { token?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<any>;
  raw(
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
}

function client(url: string): Client {
  const raw = async (
    method: string,
    path: string,
    options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
  ) => {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    const token = options.token === undefined ? ADMIN : options.token;
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    return fetch(`${url}${path}`, { method, headers, body });
  };
  return {
    raw,
    status: async (m, p, o) => {
      const res = await raw(m, p, o);
      // Headers are enough; the event stream's body never ends.
      await res.body?.cancel();
      return res.status;
    },
    json: async (m, p, o) => (await raw(m, p, o)).json(),
  };
}

for (const dialect of dialects) {
  describe(`security on ${dialect}`, () => {
    let server: RunningServer;
    let dataDir: string;
    let drop: (() => Promise<void>) | undefined;
    let database: string | undefined;
    let c: Client;
    const tokens: Record<'viewer' | 'operator' | 'admin2', string> = { viewer: '', operator: '', admin2: '' };

    beforeAll(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'upshift-sec-'));
      if (dialect === 'postgres') {
        const db = await freshPgDatabase();
        database = db.url;
        drop = db.drop;
      }
      process.env['UPSHIFT_ADMIN_TOKEN'] = ADMIN;
      const config = loadServerConfig(
        { port: '0', dataDir, logLevel: 'silent', signInLimit: '100000', ...(database ? { database } : {}) },
        { UPSHIFT_ADMIN_TOKEN: ADMIN },
      );
      server = await startServer(config);
      delete process.env['UPSHIFT_ADMIN_TOKEN'];
      c = client(server.url);
      for (const [key, role] of [
        ['viewer', 'viewer'],
        ['operator', 'operator'],
        ['admin2', 'admin'],
      ] as const) {
        const created = await c.json('POST', '/api/v1/tokens', { body: { name: `t-${key}`, role } });
        expect(created.token).toMatch(/^upt_/);
        tokens[key] = created.token;
      }
    });
    afterAll(async () => {
      await server?.close();
      rmSync(dataDir, { recursive: true, force: true });
      await drop?.();
    });

    it('authorizes every route for every role as the route table says', async () => {
      const fill = (url: string) =>
        url
          .replace(':component', 'docker')
          .replace(':version', '26.1.5')
          .replace(':file', 'nothing.deb')
          .replace(':taskKey', 'none')
          .replace(':nodeId', 'nd_0000000000000000')
          .replace(':id', 'upg_0000000000000000')
          .replace('*', 'x');
      const routes = server.routes.filter((r) => r.url.startsWith('/api/') || r.url === '/metrics');
      expect(routes.length).toBeGreaterThan(30);
      const failures: string[] = [];
      const rank = { viewer: 1, operator: 2, admin: 3 } as const;
      for (const route of routes) {
        const path = fill(route.url);
        const body = route.method === 'GET' || route.method === 'DELETE' ? undefined : {};
        const check = async (who: string, token: string | null, expected: (status: number) => boolean) => {
          const status = await c.status(route.method, path, { token, body });
          if (!expected(status)) failures.push(`${route.method} ${route.url} as ${who}: ${status} (needs ${route.access})`);
        };
        if (route.access === 'public') {
          await check('nobody', null, (s) => s !== 401 && s !== 403);
          continue;
        }
        await check('nobody', null, (s) => s === 401);
        await check('a wrong token', 'upt_wrong-wrong-wrong-wrong', (s) => s === 401);
        if (route.access === 'agent') {
          for (const [who, token] of [
            ['admin', ADMIN],
            ['viewer', tokens.viewer],
          ] as const)
            await check(who, token, (s) => s === 401);
          continue;
        }
        if (route.access === 'undeclared') {
          failures.push(`${route.method} ${route.url} declares no access`);
          continue;
        }
        const need = rank[route.access];
        for (const [who, token, have] of [
          ['viewer', tokens.viewer, 1],
          ['operator', tokens.operator, 2],
          ['admin', tokens.admin2, 3],
        ] as const) {
          await check(who, token, (s) => (have >= need ? s !== 401 && s !== 403 : s === 403));
        }
      }
      expect(failures).toEqual([]);
    }, 120_000);

    it('lets operators steer upgrades but not manage clusters; viewers only read', async () => {
      expect(await c.status('POST', '/api/v1/clusters', { token: tokens.operator, body: { name: 'op', kind: 'simulated' } })).toBe(403);
      const created = await c.json('POST', '/api/v1/clusters', {
        body: { name: 'roles', kind: 'simulated', simulation: { nodes: 3, upgradeSeconds: 0.05, versions: { agent: '1.1.0' } } },
      });
      expect(
        await c.status('POST', `/api/v1/clusters/${created.id}/upgrades`, { token: tokens.viewer, body: { component: 'docker' } }),
      ).toBe(403);
      const forbidden = await c.json('POST', `/api/v1/clusters/${created.id}/upgrades`, {
        token: tokens.viewer,
        body: { component: 'docker' },
      });
      expect(forbidden.error.message).toMatch(/needs the operator role/);
      const up = await c.json('POST', `/api/v1/clusters/${created.id}/upgrades`, { token: tokens.operator, body: { component: 'docker' } });
      expect(up.createdBy).toBe('token:t-operator');
      expect(await c.status('GET', `/api/v1/upgrades/${up.id}`, { token: tokens.viewer })).toBe(200);
      const audit = await c.json('GET', '/api/v1/events?type=audit.request&limit=500');
      expect(
        audit.items.some(
          (e: { actor: string; message: string }) =>
            e.actor === 'token:t-operator' && e.message === `POST /api/v1/clusters/${created.id}/upgrades → 201`,
        ),
      ).toBe(true);
      // A revoked token stops working at once.
      const list = await c.json('GET', '/api/v1/tokens');
      const viewer = list.items.find((t: { name: string }) => t.name === 't-viewer');
      expect(JSON.stringify(list)).not.toContain(tokens.viewer);
      expect(await c.status('DELETE', `/api/v1/tokens/${viewer.id}`)).toBe(204);
      expect(await c.status('GET', '/api/v1/clusters', { token: tokens.viewer })).toBe(401);
    });

    it('signs the console in with an httpOnly cookie and asks for the CSRF token on changes', async () => {
      const signIn = await c.raw('POST', '/api/v1/session', { token: null, body: { token: tokens.operator } });
      expect(signIn.status).toBe(200);
      const cookie = signIn.headers.get('set-cookie') ?? '';
      expect(cookie).toMatch(/upshift_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict/);
      const { csrfToken } = (await signIn.json()) as { csrfToken: string };
      const session = cookie.split(';')[0] ?? '';
      expect(await c.status('GET', '/api/v1/clusters', { token: null, headers: { cookie: session } })).toBe(200);
      const noCsrf = await c.raw('POST', '/api/v1/clusters/roles/upgrades/plan', {
        token: null,
        headers: { cookie: session },
        body: { component: 'docker' },
      });
      expect(noCsrf.status).toBe(403);
      expect(((await noCsrf.json()) as { error: { code: string } }).error.code).toBe('CSRF_FAILED');
      expect(
        await c.status('POST', '/api/v1/clusters/roles/upgrades/plan', {
          token: null,
          headers: { cookie: session, 'x-csrf-token': csrfToken },
          body: { component: 'docker' },
        }),
      ).toBe(200);
      // Another tab of the same browser shares the session: GET /session (cookie only)
      // gives it the same CSRF token; a token-authenticated caller gets none.
      const shared = await c.json('GET', '/api/v1/session', { token: null, headers: { cookie: session } });
      expect(shared).toMatchObject({ principal: { name: 'token:t-operator', role: 'operator' }, csrfToken });
      expect(Date.parse(shared.expiresAt)).toBeGreaterThan(Date.now());
      expect(await c.json('GET', '/api/v1/session', { token: tokens.operator })).not.toHaveProperty('csrfToken');
      expect(await c.status('DELETE', '/api/v1/session', { token: null, headers: { cookie: session, 'x-csrf-token': csrfToken } })).toBe(
        204,
      );
      expect(await c.status('GET', '/api/v1/clusters', { token: null, headers: { cookie: session } })).toBe(401);
      expect(await c.status('POST', '/api/v1/session', { token: null, body: { token: 'upt_not-a-token-at-all' } })).toBe(401);
    });

    it('keeps no secret in plaintext in the database', async () => {
      const hosts = await c.json('POST', '/api/v1/clusters', { body: { name: 'secret-hosts', kind: 'hosts' } });
      const joined = await fetch(`${server.url}/api/v1/agent/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ joinToken: hosts.joinToken, name: 'n1', facts: { hostname: 'n1', agentVersion: '1.1.0', versions: {} } }),
      });
      const { credential } = (await joined.json()) as { credential: string };
      const kubeToken = 'kube-bearer-9f8e7d6c5b4a3f2e1d0c';
      const kubeconfig = [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]',
        `users: [{name: u, user: {token: ${kubeToken}}}]`,
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n');
      const kube = await c.raw('POST', '/api/v1/clusters', { body: { name: 'secret-kube', kind: 'kubernetes', kubeconfig } });
      expect(kube.status).toBe(201);
      expect(await kube.text()).not.toContain(kubeToken);
      expect(JSON.stringify(await c.json('GET', '/api/v1/clusters/secret-kube'))).not.toContain(kubeToken);
      const secrets = [ADMIN, tokens.operator, tokens.admin2, hosts.joinToken as string, credential, kubeToken];
      let dump = '';
      if (dialect === 'sqlite') {
        for (const file of readdirSync(dataDir).filter((f) => f.startsWith('upshift.db')))
          dump += readFileSync(join(dataDir, file)).toString('latin1');
      } else {
        const client = new pg.Client({ connectionString: database });
        await client.connect();
        const tables = await client.query<{ tablename: string }>("select tablename from pg_tables where schemaname = 'public'");
        for (const { tablename } of tables.rows) {
          const rows = await client.query(`select t::text as row from "${tablename}" t`);
          dump += rows.rows.map((r: { row: string }) => r.row).join('\n');
        }
        await client.end();
      }
      expect(dump.length).toBeGreaterThan(1000);
      expect(dump).toContain('secret-hosts');
      expect(dump).toContain('secret-kube');
      for (const secret of secrets) expect(dump.includes(secret), `a secret is stored in plaintext`).toBe(false);
    });
  });
}

describe('sign-in limits and logs', () => {
  it('refuses an address after too many failed sign-ins, records them, and never logs a token', async () => {
    const s = await startServerProcess({ args: ['--sign-in-limit', '3', '--log-level', 'debug'] });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await s.api('/api/v1/clusters', { token: `upt_guess-number-${i}-xxxxxxxx` })).status);
      expect(statuses).toEqual([401, 401, 429, 429, 429]);
      expect((await s.api('/api/v1/clusters')).status).toBe(429);
      await new Promise((r) => setTimeout(r, 100));
      const created = await s.api('/api/v1/clusters', { body: { name: 'h', kind: 'hosts' }, headers: { 'x-forwarded-for': '10.9.9.9' } });
      expect([201, 429]).toContain(created.status);
      const out = s.output();
      expect(out).not.toContain(s.token);
      expect(out).not.toContain('upt_guess-number');
      if (created.status === 201) expect(out).not.toContain(created.body.joinToken);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});
