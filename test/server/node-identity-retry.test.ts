import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import type { AgentLogger } from '../../src/agent/log.js';
import { JOIN_RETRY_AFTER_SECONDS, MAX_CONCURRENT_JOINS } from '../../src/engine/agents/node-identity.js';
import { dialects } from '../support/databases.js';
import { facts, identityServerForSuite } from '../support/identity-server.js';

/**
 * A join whose answer was lost (the agent's request timed out while the server completed
 * it) can be asked again: the agent sends the same join secret with every attempt, and
 * the server replaces the credential it issued for that secret as long as that credential
 * was never used. Any other join under a taken name is still refused; joins beyond 64 at
 * once are told to come back (503, Retry-After); an agent facing a server that refuses
 * the new field joins without it (docs/design.md §9). Against the real server in this
 * process, on SQLite and PostgreSQL.
 */
const newSecret = () => `upjs_${randomBytes(32).toString('base64url')}`;

/** An agent that joins once (`--join-only`, as the install script runs it), in this process, with the host's facts stubbed. */
async function joinOnce(server: string, joinToken: string, name: string, dataDir: string): Promise<{ outcome: string; said: string[] }> {
  const said: string[] = [];
  const note = (message: string) => said.push(message);
  const logger: AgentLogger = { info: note, warn: note, error: note };
  const config = parseAgentConfig({ dataDir, dockerSocket: join(dataDir, 'no-docker.sock') }, { server, joinToken, name });
  const agent = new Agent({
    config,
    version: '1.1.0',
    logger,
    program: undefined,
    joinOnly: true,
    facts: { collect: async () => facts(name), invalidate: () => undefined },
  });
  return { outcome: await agent.run(), said };
}

/** The agent's stored credential (credential.json). */
const storedCredential = (dataDir: string) =>
  (JSON.parse(readFileSync(join(dataDir, 'credential.json'), 'utf8')) as { credential: string }).credential;

/**
 * A server from before the join secret that refuses unknown fields: the real server behind
 * a proxy that answers a join carrying `joinSecret` as a strict schema would (400).
 */
async function strictProxy(target: string): Promise<{ url: string; joins: Array<Record<string, unknown>>; close(): Promise<void> }> {
  const joins: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    void (async () => {
      let body = '';
      for await (const chunk of req) body += chunk;
      if (req.url === '/api/v1/agent/join') {
        const parsed = JSON.parse(body) as Record<string, unknown>;
        joins.push(parsed);
        if ('joinSecret' in parsed) {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'body: unknown field joinSecret' } }));
          return;
        }
      }
      const headers: Record<string, string> = {};
      for (const h of ['authorization', 'content-type', 'accept']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
      const answer = await fetch(`${target}${req.url}`, { method: req.method, headers, ...(body ? { body } : {}) });
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
      res.end(await answer.text());
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    joins,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

for (const dialect of dialects) {
  describe(`a join asked again on ${dialect}`, () => {
    const s = identityServerForSuite(dialect, 'join-retry');
    const { api, agent, createHosts } = s;
    const heartbeat = (credential: string, name: string) => agent(credential, 'POST', '/heartbeat', { facts: facts(name) });

    it('answers a join asked again with the same secret, after a lost answer, with a working credential; the first stops working', async () => {
      const cluster = await createHosts('lost');
      const secret = newSecret();
      const lost = await s.join(cluster.joinToken, 'lost-1', { joinSecret: secret });
      expect(lost.status).toBe(201);
      // The agent never saw that answer; it asks again with the same secret.
      const again = await s.join(cluster.joinToken, 'lost-1', { joinSecret: secret });
      expect(again.status).toBe(201);
      expect(again.body.nodeId).toBe(lost.body.nodeId);
      expect(again.body.credential).not.toBe(lost.body.credential);
      expect((await heartbeat(lost.body.credential, 'lost-1')).status).toBe(401);
      expect((await heartbeat(again.body.credential, 'lost-1')).status).toBe(200);
      const nodes = (await api('GET', '/api/v1/clusters/lost/nodes')).body.items as Array<{ id: string; name: string }>;
      expect(nodes.map((n) => [n.id, n.name])).toEqual([[lost.body.nodeId, 'lost-1']]);

      // The real agent, whose data dir keeps the secret of the join it lost, asks again and works.
      const dataDir = join(mkdtempSync(join(s.work, 'host-')), 'data');
      mkdirSync(dataDir, { mode: 0o700 });
      const agentSecret = newSecret();
      writeFileSync(join(dataDir, 'join-secret'), `${agentSecret}\n`, { mode: 0o600 });
      const first = await s.join(cluster.joinToken, 'lost-2', { joinSecret: agentSecret });
      expect(first.status).toBe(201);
      const { outcome, said } = await joinOnce(s.base, cluster.joinToken, 'lost-2', dataDir);
      expect(outcome).toBe('joined');
      expect((await heartbeat(first.body.credential, 'lost-2')).status).toBe(401);
      expect((await heartbeat(storedCredential(dataDir), 'lost-2')).status).toBe(200);
      expect(said.join('\n')).not.toContain(agentSecret);
    });

    it('makes the join secret once, for the agent only, and lets a spent single-use token admit the retry of its own join only', async () => {
      await createHosts('once');
      const dataDir = join(mkdtempSync(join(s.work, 'host-')), 'data');
      const first = await api('POST', '/api/v1/clusters/once/join-tokens', { body: { singleUse: true } });
      expect((await joinOnce(s.base, first.body.joinToken, 'once-1', dataDir)).outcome).toBe('joined');
      expect(readFileSync(join(dataDir, 'join-secret'), 'utf8')).toMatch(/^upjs_[A-Za-z0-9_-]{43}\n$/);
      expect(statSync(join(dataDir, 'join-secret')).mode & 0o777).toBe(0o600);

      const token = (await api('POST', '/api/v1/clusters/once/join-tokens', { body: { singleUse: true } })).body.joinToken as string;
      const secret = newSecret();
      expect((await s.join(token, 'once-2', { joinSecret: secret })).status).toBe(201);
      // The token is spent, by this very node's join: its retry is answered ...
      const retried = await s.join(token, 'once-2', { joinSecret: secret });
      expect(retried.status).toBe(201);
      expect((await heartbeat(retried.body.credential, 'once-2')).status).toBe(200);
      // ... and nothing else: another node, or this one with another secret.
      for (const [name, joinSecret] of [
        ['once-3', secret],
        ['once-2', newSecret()],
      ] as const) {
        const refused = await s.join(token, name, { joinSecret });
        expect([refused.status, refused.body.error.details.reason]).toEqual([401, 'used']);
      }
    });

    it('refuses a join with another secret, or none, as NODE_NAME_TAKEN, and changes nothing', async () => {
      const cluster = await createHosts('other');
      const secret = newSecret();
      const joined = await s.join(cluster.joinToken, 'other-1', { joinSecret: secret });
      expect(joined.status).toBe(201);
      for (const extra of [{ joinSecret: newSecret() }, {}]) {
        const refused = await s.join(cluster.joinToken, 'other-1', extra);
        expect([refused.status, refused.body.error.code]).toEqual([409, 'NODE_NAME_TAKEN']);
        expect(refused.body.credential).toBeUndefined();
      }
      const malformed = await s.join(cluster.joinToken, 'other-1', { joinSecret: 'not-a-secret' });
      expect([malformed.status, malformed.body.error.code]).toEqual([422, 'VALIDATION_FAILED']);
      expect((await heartbeat(joined.body.credential, 'other-1')).status).toBe(200);
    });

    it('refuses even the same secret once the credential has been used', async () => {
      const cluster = await createHosts('used');
      const secret = newSecret();
      const joined = await s.join(cluster.joinToken, 'used-1', { joinSecret: secret });
      expect((await heartbeat(joined.body.credential, 'used-1')).status).toBe(200);
      const again = await s.join(cluster.joinToken, 'used-1', { joinSecret: secret });
      expect([again.status, again.body.error.code]).toEqual([409, 'NODE_NAME_TAKEN']);
      expect(again.body.credential).toBeUndefined();
      expect((await heartbeat(joined.body.credential, 'used-1')).status).toBe(200);
    });

    it(`tells the join beyond ${MAX_CONCURRENT_JOINS} at once to come back: 503 SERVER_BUSY with Retry-After`, async () => {
      const cluster = await createHosts('storm');
      // Holds the cluster (and on SQLite the database) so that the joins stay in progress.
      let release = () => undefined as void;
      const held = new Promise<void>((r) => (release = r));
      let locked = () => undefined as void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = s.server.store.tx(async (tx) => {
        await tx.clusters.lock(cluster.id);
        locked();
        await held;
      });
      await isLocked;
      const names = Array.from({ length: MAX_CONCURRENT_JOINS + 1 }, (_, i) => `storm-${i}`);
      const joins = names.map((name) => s.join(cluster.joinToken, name, { joinSecret: newSecret() }));
      try {
        // Nothing can finish while the cluster is held but the join turned away.
        const first = await Promise.race([
          ...joins,
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no join was turned away within 10 s')), 10_000)),
        ]);
        expect([first.status, first.body.error.code]).toEqual([503, 'SERVER_BUSY']);
        expect(first.headers.get('retry-after')).toBe(String(JOIN_RETRY_AFTER_SECONDS));
        expect(first.body.error.message).toContain(`try again in ${JOIN_RETRY_AFTER_SECONDS} s`);
      } finally {
        release();
        await holder;
      }
      const statuses = (await Promise.all(joins)).map((j) => j.status);
      expect(statuses.filter((x) => x === 201)).toHaveLength(MAX_CONCURRENT_JOINS);
      expect(statuses.filter((x) => x === 503)).toHaveLength(1);
      const turnedAway = names[statuses.indexOf(503)] as string;
      expect((await s.join(cluster.joinToken, turnedAway, { joinSecret: newSecret() })).status).toBe(201);
    });

    it('joins without the secret a server that refuses the field', async () => {
      const cluster = await createHosts('older');
      const proxy = await strictProxy(s.base);
      try {
        const dataDir = join(mkdtempSync(join(s.work, 'host-')), 'data');
        const { outcome, said } = await joinOnce(proxy.url, cluster.joinToken, 'older-1', dataDir);
        expect(outcome).toBe('joined');
        expect(proxy.joins.map((j) => 'joinSecret' in j)).toEqual([true, false]);
        expect(said.join('\n')).toContain('the server refused the join secret (400 BAD_REQUEST');
        expect((await heartbeat(storedCredential(dataDir), 'older-1')).status).toBe(200);
      } finally {
        await proxy.close();
      }
    });
  });
}
