import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteRule } from '../../src/server/app.js';
import { loadServerConfig } from '../../src/server/config.js';
import { startServer } from '../../src/server/run.js';
import { pathSpellings, rawRequest } from '../support/attack.js';
import { type ServerProcess, TEST_TOKEN, startServerProcess } from '../support/server.js';

/**
 * The server attacked as an outsider would: for every route of the route table, the
 * path and many other spellings of it, sent anonymously and with a viewer's token to
 * routes that need more, must be refused with a 4xx and change nothing.
 */
describe('every route refuses what its access rule does not allow, however the path is spelled', () => {
  let s: ServerProcess;
  let routes: RouteRule[];
  let viewer: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    // The route table, from the same code the process runs.
    const dir = mkdtempSync(join(tmpdir(), 'upshift-routes-'));
    process.env['UPSHIFT_ADMIN_TOKEN'] = TEST_TOKEN;
    const inProcess = await startServer(
      loadServerConfig({ port: '0', dataDir: dir, logLevel: 'silent' }, { UPSHIFT_ADMIN_TOKEN: TEST_TOKEN }),
    ).finally(() => delete process.env['UPSHIFT_ADMIN_TOKEN']);
    routes = inProcess.routes;
    await inProcess.close();
    rmSync(dir, { recursive: true, force: true });

    s = await startServerProcess({ args: ['--sign-in-limit', '1000000'] });
    viewer = (await s.api('/api/v1/tokens', { body: { name: 'viewer', role: 'viewer' } })).body.token;
    const extra = await s.api('/api/v1/tokens', { body: { name: 'extra', role: 'operator' } });
    ids['tokenId'] = extra.body.id;
    const sim = await s.api('/api/v1/clusters', {
      body: { name: 'sim', kind: 'simulated', simulation: { nodes: 4, upgradeSeconds: 0.05, versions: { agent: '1.0.0' } } },
    });
    ids['clusterId'] = sim.body.id;
    const up = await s.api(`/api/v1/clusters/sim/upgrades`, { body: { component: 'agent', policy: { soakSeconds: 3600 } } });
    ids['upgradeId'] = up.body.id;
    // Paused after its first batch: cancel, resume or continue would all change it.
    for (let i = 0; i < 100; i++) {
      const paused = await s.api(`/api/v1/upgrades/${up.body.id}/pause`, { method: 'POST' });
      if (paused.status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const nodes = await s.api('/api/v1/clusters/sim/nodes');
    ids['nodeId'] = nodes.body.items[0].id;
    await s.api('/api/v1/clusters', { body: { name: 'edge', kind: 'hosts' } });
  }, 60_000);

  afterAll(async () => {
    await s?.stop();
    s?.cleanup();
  });

  /** What an attack could change, read with the admin token. */
  const state = async () => {
    const [tokens, clusters, upgrades, nodes, artifacts, sessions] = await Promise.all([
      s.api('/api/v1/tokens'),
      s.api('/api/v1/clusters'),
      s.api('/api/v1/upgrades'),
      s.api('/api/v1/clusters/sim/nodes'),
      s.api('/api/v1/artifacts'),
      s.api('/api/v1/sessions'),
    ]);
    return {
      tokens: tokens.body.items.map((t: { name: string; revokedAt: string | null }) => `${t.name}:${t.revokedAt ?? 'live'}`).sort(),
      clusters: clusters.body.items.map((c: { name: string; nodeCount: number }) => `${c.name}:${c.nodeCount}`).sort(),
      upgrades: upgrades.body.items.map((u: { id: string; state: string }) => `${u.id}:${u.state}`).sort(),
      nodes: nodes.body.items.map((n: { name: string }) => n.name).sort(),
      artifacts: artifacts.body.items.length,
      sessions: sessions.body.items.length,
    };
  };

  /** A body that would do harm if the request were let through. */
  const bodyFor = (route: RouteRule): unknown => {
    if (route.url === '/api/v1/tokens') return { name: 'pwned', role: 'admin' };
    if (route.url === '/api/v1/clusters') return { name: 'pwned', kind: 'simulated', simulation: { nodes: 1 } };
    if (route.url.endsWith('/nodes')) return { name: 'pwned' };
    if (route.url.endsWith('/upgrades')) return { component: 'docker' };
    return {};
  };

  const fill = (url: string) =>
    url
      .replace(':component', 'docker')
      .replace(':version', '26.1.5')
      .replace(':file', 'nothing.deb')
      .replace(':taskKey', 'task-1')
      .replace(':nodeId', ids['nodeId'] as string)
      .replace('/tokens/:id', `/tokens/${ids['tokenId']}`)
      .replace('/sessions/:id', '/sessions/ses_none')
      .replace('/upgrades/:id', `/upgrades/${ids['upgradeId']}`)
      .replace(':id', ids['clusterId'] as string)
      .replace('*', 'x');

  const attack = async (who: 'anonymous' | 'viewer', targets: RouteRule[]) => {
    const failures: string[] = [];
    let sent = 0;
    for (const route of targets) {
      const path = fill(route.url);
      const body = route.method === 'GET' || route.method === 'DELETE' ? undefined : JSON.stringify(bodyFor(route));
      const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
      if (who === 'viewer') headers['authorization'] = `Bearer ${viewer}`;
      const spellings = [path, ...pathSpellings(path)];
      for (let i = 0; i < spellings.length; i += 16) {
        await Promise.all(
          spellings.slice(i, i + 16).map(async (spelling) => {
            const res = await rawRequest(s.url, route.method, spelling, { headers, ...(body !== undefined ? { body } : {}) });
            sent += 1;
            if (res.status < 400 || res.status >= 500) failures.push(`${route.method} ${spelling} (${route.url}) as ${who}: ${res.status}`);
            else if (!res.text.startsWith('{"error":{"code":'))
              failures.push(`${route.method} ${spelling} as ${who}: ${res.status} without the error envelope`);
          }),
        );
      }
    }
    return { failures, sent };
  };

  it('has a declared access rule on every route', () => {
    expect(routes.length).toBeGreaterThan(35);
    expect(routes.filter((r) => r.access === 'undeclared').map((r) => `${r.method} ${r.url}`)).toEqual([]);
  });

  it('refuses anonymous clients on every non-public route through every spelling, and changes nothing', async () => {
    const before = await state();
    const targets = routes.filter((r) => r.access !== 'public');
    const { failures, sent } = await attack('anonymous', targets);
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(targets.length * 40);
    expect(await state()).toEqual(before);
    // The attempts are in the audit trail, with the address, though nobody signed in.
    const audit = await s.api('/api/v1/events?type=audit.request&limit=500');
    const refused = audit.body.items.filter(
      (e: { actor: string; data?: { refused?: boolean } }) => e.actor === 'anonymous@127.0.0.1' && e.data?.refused,
    );
    expect(refused.length).toBeGreaterThan(5);
    expect(refused.some((e: { message: string }) => /refused: POST \/api\/v1\/tokens → 401/.test(e.message))).toBe(true);
  }, 300_000);

  it('refuses a viewer on every operator and admin route through every spelling, and changes nothing', async () => {
    const before = await state();
    const targets = routes.filter((r) => r.access === 'operator' || r.access === 'admin');
    const { failures } = await attack('viewer', targets);
    expect(failures).toEqual([]);
    expect(await state()).toEqual(before);
  }, 300_000);

  it('answers routing errors in the error envelope', async () => {
    const cases: Array<[string, string, Record<string, string>, string | undefined, number]> = [
      ['GET', '/api/v1/clusters/%', {}, undefined, 400],
      ['GET', '/%', {}, undefined, 400],
      ['DELETE', `/api/v1/clusters/${'a'.repeat(300)}`, { authorization: `Bearer ${TEST_TOKEN}` }, undefined, 414],
      ['GET', 'api/v1/clusters', {}, undefined, 400],
      ['GET', '/api/v1/no-such-route', { authorization: `Bearer ${TEST_TOKEN}` }, undefined, 404],
      ['DELETE', '/no/such/thing', {}, undefined, 404],
      ['POST', '/api/v1/tokens', { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'text/plain' }, 'name=x', 415],
      ['POST', '/api/v1/tokens', { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/xml' }, '<x/>', 415],
      ['POST', '/api/v1/tokens', { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' }, '{"name":', 400],
    ];
    for (const [method, path, headers, body, status] of cases) {
      const res = await rawRequest(s.url, method, path, { headers, ...(body !== undefined ? { body } : {}) });
      expect({ method, path: path.slice(0, 40), status: res.status }).toEqual({ method, path: path.slice(0, 40), status });
      expect(JSON.parse(res.text)).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
    }
    // An artifact name of 201 characters is a valid path parameter.
    const long = `a${'b'.repeat(196)}.deb`;
    const res = await rawRequest(s.url, 'DELETE', `/api/v1/artifacts/${long}`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text).error.message).toMatch(/is not in the mirror/);
  });

  it('sends the security headers on every answer, and no-store on the API', async () => {
    const answers = await Promise.all([
      rawRequest(s.url, 'GET', '/'),
      rawRequest(s.url, 'GET', '/clusters/sim'),
      rawRequest(s.url, 'GET', '/api/v1/clusters', { headers: { authorization: `Bearer ${TEST_TOKEN}` } }),
      rawRequest(s.url, 'GET', '/api/v1/clusters'),
      rawRequest(s.url, 'POST', '/api/v1/tokens', {
        headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'headers', role: 'viewer' }),
      }),
      rawRequest(s.url, 'GET', '/docs'),
      rawRequest(s.url, 'GET', '/nothing-here'),
    ]);
    for (const res of answers) {
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    }
    expect(answers[0]?.headers['content-security-policy']).toMatch(/script-src 'self'(;|$)/);
    for (const res of answers.slice(2, 5)) expect(res.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(answers[4]?.text ?? '{}').token).toMatch(/^upt_/);
  });
});
