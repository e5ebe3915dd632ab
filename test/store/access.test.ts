import { describe, expect, it } from 'vitest';
import { dialects } from '../support/databases.js';
import { addCluster, addNodes, storeForSuite } from '../support/store.js';

/**
 * The access, agents and artifacts repositories on each database: tokens and sessions by
 * their hashes, revocation as a compare-and-set that ends the token's sessions, join
 * tokens spent by exactly one of two racing joins, one credential per node, agent tasks
 * idempotent by key with one result each, and the artifact index.
 */
for (const dialect of dialects) {
  describe(`access, agents and artifacts repositories on ${dialect}`, () => {
    const suite = storeForSuite(dialect);

    const later = (ms: number) => new Date(Date.now() + ms).toISOString();

    it('revokes an API token once, and with it the sessions opened with it', async () => {
      await suite.store.access.insertToken({
        id: 'tok_a',
        name: 'ci',
        role: 'operator',
        tokenHash: 'hash-a',
        createdBy: 'admin',
        expiresAt: null,
      });
      await suite.store.access.insertToken({
        id: 'tok_b',
        name: 'ro',
        role: 'viewer',
        tokenHash: 'hash-b',
        createdBy: 'admin',
        expiresAt: later(60_000),
      });
      expect(await suite.store.access.findTokenByHash('hash-a')).toMatchObject({
        id: 'tok_a',
        name: 'ci',
        role: 'operator',
        revokedAt: null,
      });
      expect(await suite.store.access.getToken('tok_b')).toMatchObject({ tokenHash: 'hash-b', createdBy: 'admin' });
      expect((await suite.store.access.listTokens()).map((x) => x.id).sort()).toEqual(['tok_a', 'tok_b']);
      const session = (id: string, tokenId: string | null, expiresAt: string) => ({
        id,
        sessionHash: `s-${id}`,
        csrfHash: `c-${id}`,
        principal: 'token:ci',
        role: 'operator',
        tokenId,
        address: '127.0.0.1',
        expiresAt,
      });
      await suite.store.access.insertSession(session('ses_1', 'tok_a', later(60_000)));
      await suite.store.access.insertSession(session('ses_2', 'tok_b', later(60_000)));
      await suite.store.access.insertSession(session('ses_old', null, later(-1000)));
      expect(await suite.store.access.findSession('s-ses_1')).toMatchObject({ id: 'ses_1', csrfHash: 'c-ses_1', tokenId: 'tok_a' });
      // Listing drops what expired on the way.
      expect((await suite.store.access.listSessions(new Date().toISOString())).map((s) => s.id).sort()).toEqual(['ses_1', 'ses_2']);
      expect(await suite.store.access.findSession('s-ses_old')).toBeUndefined();

      expect(await suite.store.access.revokeToken('tok_a')).toBe(true);
      expect(await suite.store.access.revokeToken('tok_a')).toBe(false);
      expect(await suite.store.access.revokeToken('tok_none')).toBe(false);
      expect((await suite.store.access.getToken('tok_a'))?.revokedAt).not.toBeNull();
      expect(await suite.store.access.findSession('s-ses_1')).toBeUndefined();
      expect(await suite.store.access.deleteSessionById('ses_2')).toBe(true);
      expect(await suite.store.access.deleteSessionById('ses_2')).toBe(false);
    });

    it('tells a join token’s state and lets exactly one of two joins spend a single-use one', async () => {
      const c = await addCluster(suite.store, 'joins');
      const now = new Date().toISOString();
      await suite.store.agents.insertJoinToken({ tokenHash: 'j-multi', clusterId: c.id, expiresAt: null, singleUse: false });
      await suite.store.agents.insertJoinToken({ tokenHash: 'j-once', clusterId: c.id, expiresAt: later(60_000), singleUse: true });
      await suite.store.agents.insertJoinToken({ tokenHash: 'j-old', clusterId: c.id, expiresAt: later(-1000), singleUse: true });
      expect(await suite.store.agents.findJoinToken('j-multi', now)).toEqual({
        clusterId: c.id,
        expiresAt: null,
        singleUse: false,
        state: 'valid',
        usedByNode: null,
      });
      expect((await suite.store.agents.findJoinToken('j-old', now))?.state).toBe('expired');
      expect(await suite.store.agents.findJoinToken('j-none', now)).toBeUndefined();
      // Expired tokens and multi-use ones are not spent.
      expect(await suite.store.agents.consumeJoinToken('j-old', now, 'nd_1')).toBe(false);
      expect(await suite.store.agents.consumeJoinToken('j-multi', now, 'nd_1')).toBe(false);
      const races = await Promise.all(['nd_1', 'nd_2'].map((id) => suite.store.tx((tx) => tx.agents.consumeJoinToken('j-once', now, id))));
      expect(races.filter(Boolean)).toHaveLength(1);
      expect((await suite.store.agents.findJoinToken('j-once', now))?.state).toBe('used');
      expect(['nd_1', 'nd_2']).toContain((await suite.store.agents.findJoinToken('j-once', now))?.usedByNode);
      expect(await suite.store.agents.revokeJoinTokens(c.id)).toBe(3);
      expect(await suite.store.agents.revokeJoinTokens(c.id)).toBe(0);
      expect((await suite.store.agents.findJoinToken('j-multi', now))?.state).toBe('revoked');
    });

    it('keeps one credential per node, records heartbeats and marks silent nodes Down', async () => {
      const c = await addCluster(suite.store, 'agents');
      const [n1, n2] = await addNodes(suite.store, c.id, ['a1', 'a2']);
      expect(await suite.store.agents.heldCredential(n1!.id)).toBeUndefined();
      await suite.store.agents.setCredential(n1!.id, 'cred-1');
      await suite.store.agents.setCredential(n1!.id, 'cred-2');
      expect(await suite.store.agents.nodeOfCredential('cred-1')).toBeUndefined();
      expect(await suite.store.agents.nodeOfCredential('cred-2')).toEqual({ node: n1, firstUse: true });
      expect(await suite.store.agents.heldCredential(n1!.id)).toEqual({ joinSecretHash: null, usedAt: null });
      expect(await suite.store.agents.revokeCredentials(n1!.id)).toBe(1);
      expect(await suite.store.agents.heldCredential(n1!.id)).toBeUndefined();

      const old = new Date(Date.now() - 60_000).toISOString();
      const fresh = new Date().toISOString();
      await suite.store.agents.recordHeartbeat(n1!.id, { os: 'linux' }, { docker: '26.1.5', agent: '1.1.0' }, old, 'debian-13');
      await suite.store.agents.recordHeartbeat(n2!.id, { os: 'linux' }, { docker: '20.10.24' }, fresh, null);
      expect(await suite.store.agents.lastSeen(n1!.id)).toBe(old);
      expect(await suite.store.nodes.get(n1!.id)).toMatchObject({
        status: 'Ready',
        versions: { docker: '26.1.5', agent: '1.1.0' },
        distribution: 'debian-13',
      });
      expect((await suite.store.nodes.get(n2!.id))?.distribution).toBeNull();
      const down = await suite.store.agents.markSilentNodesDown(new Date(Date.now() - 30_000).toISOString());
      expect(down.map((n) => n.name)).toEqual(['a1']);
      expect((await suite.store.nodes.get(n1!.id))?.status).toBe('Down');
      // Already Down: not again.
      expect(await suite.store.agents.markSilentNodesDown(new Date(Date.now() - 30_000).toISOString())).toEqual([]);
    });

    it('writes many nodes’ heard times at once, each its own or a shared one, and never moves a time back', async () => {
      const c = await addCluster(suite.store, 'heard');
      const nodes = await addNodes(
        suite.store,
        c.id,
        Array.from({ length: 1205 }, (_, i) => `h${i}`),
      );
      const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
      // Distinct times, more than one statement's worth of them.
      await suite.store.agents.recordLastSeen(nodes.map((n, i) => ({ nodeId: n.id, at: at(i % 50) })));
      // Later for the first 30 (one shared time), earlier for the next 30: those keep theirs.
      await suite.store.agents.recordLastSeen([
        ...nodes.slice(0, 30).map((n) => ({ nodeId: n.id, at: at(100) })),
        ...nodes.slice(30, 60).map((n) => ({ nodeId: n.id, at: at(0) })),
        { nodeId: 'nd_gone', at: at(100) },
      ]);
      const seen = async (i: number) => suite.store.agents.lastSeen(nodes[i]!.id);
      expect(await seen(0)).toBe(at(100));
      expect(await seen(29)).toBe(at(100));
      expect(await seen(45)).toBe(at(45));
      expect(await seen(60)).toBe(at(10));
      expect(await seen(1204)).toBe(at(1204 % 50));
    });

    it('replaces a credential only for the join secret it was issued for, and only until its first use', async () => {
      const c = await addCluster(suite.store, 'rejoins');
      const [n] = await addNodes(suite.store, c.id, ['r1']);
      await suite.store.agents.setCredential(n!.id, 'cred-a', 'secret-1');
      expect(await suite.store.agents.replaceUnusedCredential(n!.id, 'secret-2', 'cred-x')).toBe(false);
      expect(await suite.store.agents.replaceUnusedCredential(n!.id, 'secret-1', 'cred-b')).toBe(true);
      expect(await suite.store.agents.nodeOfCredential('cred-a')).toBeUndefined();
      expect(await suite.store.agents.nodeOfCredential('cred-b')).toEqual({ node: n, firstUse: true });
      // The replaced credential is gone: marking it used says so.
      expect(await suite.store.agents.markCredentialUsed('cred-a', new Date().toISOString())).toBe(false);
      const first = new Date().toISOString();
      expect(await suite.store.agents.markCredentialUsed('cred-b', first)).toBe(true);
      // A later use keeps the first use's time.
      expect(await suite.store.agents.markCredentialUsed('cred-b', later(60_000))).toBe(true);
      expect(await suite.store.agents.heldCredential(n!.id)).toEqual({ joinSecretHash: 'secret-1', usedAt: first });
      expect(await suite.store.agents.nodeOfCredential('cred-b')).toEqual({ node: n, firstUse: false });
      expect(await suite.store.agents.replaceUnusedCredential(n!.id, 'secret-1', 'cred-c')).toBe(false);
      expect(await suite.store.agents.nodeOfCredential('cred-b')).toEqual({ node: n, firstUse: false });
    });

    it('queues an agent task once per key, delivers it, and takes one result', async () => {
      const c = await addCluster(suite.store, 'tasks');
      const [n] = await addNodes(suite.store, c.id, ['t1']);
      const request = {
        taskKey: 'key-1',
        nodeId: n!.id,
        upgradeId: null,
        nodeTaskId: null,
        recipe: 'docker-engine' as const,
        params: { component: 'docker' as const, fromVersion: '20.10.24', toVersion: '26.1.5', artifacts: [] },
      };
      await suite.store.agents.ensureTasks([request]);
      await suite.store.agents.ensureTasks([{ ...request, params: { ...request.params, toVersion: 'other' } }]);
      await Promise.all([
        suite.store.agents.ensureTasks([{ ...request, taskKey: 'key-2' }]),
        suite.store.agents.ensureTasks([{ ...request, taskKey: 'key-2' }]),
      ]);
      expect(await suite.store.agents.getTask('key-1')).toMatchObject({ state: 'queued', params: { toVersion: '26.1.5' }, result: null });
      const delivered = await suite.store.agents.deliverOpenTasks([n!.id]);
      expect(delivered.map((x) => x.taskKey).sort()).toEqual(['key-1', 'key-2']);
      expect((await suite.store.agents.getTask('key-1'))?.state).toBe('delivered');
      expect((await suite.store.agents.unfinishedTasks(n!.id)).map((x) => x.taskKey).sort()).toEqual(['key-1', 'key-2']);
      expect(await suite.store.agents.finishTask('key-1', 'nd_other', 'succeeded', { result: 'succeeded' })).toBe(false);
      expect(
        await suite.store.agents.finishTask('key-1', n!.id, 'failed', { result: 'failed', step: 'start', error: 'dockerd died' }),
      ).toBe(true);
      expect(await suite.store.agents.finishTask('key-1', n!.id, 'succeeded', { result: 'succeeded' })).toBe(false);
      expect(await suite.store.agents.getTask('key-1')).toMatchObject({
        state: 'failed',
        result: { result: 'failed', step: 'start', error: 'dockerd died' },
      });
      expect((await suite.store.agents.unfinishedTasks(n!.id)).map((x) => x.taskKey)).toEqual(['key-2']);
    });

    it('delivers open tasks oldest first, ties in key order, for one node and for many', async () => {
      const c = await addCluster(suite.store, 'task-order');
      const [a, b] = await addNodes(suite.store, c.id, ['o1', 'o2']);
      const params = { component: 'docker' as const, fromVersion: '20.10.24', toVersion: '26.1.5', artifacts: [] };
      const queue = async (nodeId: string, keys: string[]) => {
        await suite.store.agents.ensureTasks(
          keys.map((taskKey) => ({ taskKey, nodeId, upgradeId: null, nodeTaskId: null, recipe: 'docker-engine' as const, params })),
        );
        await new Promise((r) => setTimeout(r, 5));
      };
      // Queued later but named first, and two queued in one statement (same time: key order).
      await queue(a!.id, ['key-m']);
      await queue(a!.id, ['key-z', 'key-b']);
      await queue(b!.id, ['key-c']);
      await queue(a!.id, ['key-a']);
      expect((await suite.store.agents.deliverOpenTasks([a!.id])).map((t) => t.taskKey)).toEqual(['key-m', 'key-b', 'key-z', 'key-a']);
      expect((await suite.store.agents.deliverOpenTasks([a!.id, b!.id])).map((t) => t.taskKey)).toEqual([
        'key-m',
        'key-b',
        'key-z',
        'key-c',
        'key-a',
      ]);
    });

    it('indexes the artifact mirror by file name, replacing a file of the same name', async () => {
      const file = { component: 'docker', version: '26.1.5', method: 'deb', sha256: 'a'.repeat(64), size: 10 };
      await suite.store.artifacts.upsert({ ...file, file: 'z.deb' });
      await suite.store.artifacts.upsert({ ...file, file: 'a.deb' });
      await suite.store.artifacts.upsert({ ...file, component: 'containerd', version: '1.7.24', file: 'c.deb' });
      await suite.store.artifacts.upsert({ ...file, file: 'a.deb', sha256: 'b'.repeat(64), size: 20 });
      const all = await suite.store.artifacts.list();
      expect(all.map((a) => a.file)).toEqual(['c.deb', 'a.deb', 'z.deb']);
      expect(all[1]).toEqual({ ...file, file: 'a.deb', sha256: 'b'.repeat(64), size: 20, createdAt: expect.any(String) });
      expect((await suite.store.artifacts.list({ component: 'docker' })).map((a) => a.file)).toEqual(['a.deb', 'z.deb']);
      expect((await suite.store.artifacts.list({ file: 'z.deb' })).map((a) => a.file)).toEqual(['z.deb']);
      expect(await suite.store.artifacts.delete('z.deb')).toBe(true);
      expect(await suite.store.artifacts.delete('z.deb')).toBe(false);
    });
  });
}
