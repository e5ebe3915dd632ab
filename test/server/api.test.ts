import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialects } from '../support/databases.js';
import { type ServerProcess, startServerOn } from '../support/server.js';

/**
 * The checks of the engine issue, through the HTTP API only, against the real server
 * process, on SQLite and on PostgreSQL.
 */
async function until<T>(fn: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 30));
  }
}

for (const dialect of dialects) {
  describe(`API on ${dialect}`, () => {
    let s: ServerProcess;
    let stop: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ server: s, stop } = await startServerOn(dialect, { args: ['--paused-ttl', '3s'] }));
    });
    afterAll(async () => {
      await stop?.();
    });

    const createCluster = async (name: string, simulation: Record<string, unknown>) => {
      const res = await s.api('/api/v1/clusters', { body: { name, kind: 'simulated', simulation } });
      expect(res.status).toBe(201);
      return res.body as { id: string; name: string };
    };
    const getUpgrade = async (id: string) => (await s.api(`/api/v1/upgrades/${id}`)).body;
    const waitUpgrade = (id: string, state: string, ms = 20_000) =>
      until(async () => {
        const u = await getUpgrade(id);
        return u.state === state ? u : undefined;
      }, ms);

    it('upgrades 50 nodes in the spec’s batches; the cluster reads Upgrading, then Running at the target', async () => {
      const cluster = await createCluster('fifty', { nodes: 50, upgradeSeconds: 0.1, versions: { agent: '1.1.0', docker: '20.10.24' } });
      const plan = await s.api(`/api/v1/clusters/${cluster.id}/upgrades/plan`, { body: { component: 'docker' } });
      expect(plan.status).toBe(200);
      expect(plan.body.batches.map((b: string[]) => b.length)).toEqual([1, 2, 4, 5, 5, 5, 5, 5, 5, 5, 5, 3]);
      const start = await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
      expect(start.status).toBe(201);
      // Simulated nodes report no distribution, so the default target is the catalog's newest.
      expect(start.body).toMatchObject({ component: 'docker', toVersion: '28.5.2', state: 'Upgrading', nodes: { total: 50 } });
      const during = (await s.api(`/api/v1/clusters/${cluster.id}`)).body;
      expect(during).toMatchObject({ status: 'Upgrading', statusText: 'Docker-Engine is upgrading', activeUpgradeId: start.body.id });
      const done = await waitUpgrade(start.body.id, 'Completed');
      expect(done.batches.map((b: { size: number }) => b.size)).toEqual([1, 2, 4, 5, 5, 5, 5, 5, 5, 5, 5, 3]);
      expect(done.batches.map((b: { nodes: string[] }) => b.nodes.length)).toEqual(plan.body.batches.map((b: string[]) => b.length));
      expect(done.nodes).toMatchObject({ total: 50, succeeded: 50, pending: 0, running: 0, failed: 0, skipped: 0 });
      const after = (await s.api(`/api/v1/clusters/${cluster.id}`)).body;
      expect(after).toMatchObject({ status: 'Running', activeUpgradeId: null });
      expect(after.components.docker).toEqual({ versions: { '28.5.2': 50 }, latest: '28.5.2', upgradable: false });
      const nodes = (await s.api(`/api/v1/clusters/${cluster.id}/nodes`)).body.items;
      expect(nodes).toHaveLength(50);
      expect(nodes[0]).toMatchObject({
        name: 'sim-001',
        role: 'worker',
        status: 'Ready',
        versions: { docker: '28.5.2' },
        distribution: null,
      });
      const tasks = (await s.api(`/api/v1/upgrades/${start.body.id}/nodes`)).body.items;
      expect(tasks[0]).toMatchObject({
        nodeName: 'sim-001',
        state: 'succeeded',
        batchIndex: 0,
        attempt: 1,
        fromVersion: '20.10.24',
        toVersion: '28.5.2',
        error: null,
      });
      const log = await s.api(`/api/v1/upgrades/${start.body.id}/nodes/${tasks[0].nodeId}/log`);
      expect(log.status).toBe(200);
      // The first and the last line are always there; the simulated steps between them are
      // skipped when the driver is called later than their time (as on a reattach), which a
      // loaded machine can cause.
      expect(log.text).toMatch(
        /preflight: Docker-Engine 20.10.24 found, 28.5.2 wanted\n(.*\n)*.*verified: Docker-Engine reports 28.5.2\n$/,
      );
    });

    it('refuses with AGENT_OUTDATED until the agent is upgraded', async () => {
      const cluster = await createCluster('agents', { nodes: 5, upgradeSeconds: 0.05, versions: { agent: '1.0.0' } });
      const refused = await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('AGENT_OUTDATED');
      expect(refused.body.error.message).toMatch(/upgrade the agent component first/);
      const agent = await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'agent' } });
      expect(agent.status).toBe(201);
      await waitUpgrade(agent.body.id, 'Completed');
      const docker = await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
      expect(docker.status).toBe(201);
      await waitUpgrade(docker.body.id, 'Completed');
    });

    it('pause, resume ramping from 1, PAUSE_FIRST, cancel with skipped nodes, NOTHING_TO_PAUSE', async () => {
      const cluster = await createCluster('steer', { nodes: 60, upgradeSeconds: 0.25, versions: { agent: '1.1.0' } });
      const up = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'containerd' } })).body;
      await until(async () => (await getUpgrade(up.id)).batches.length >= 2);
      const cancel = await s.api(`/api/v1/upgrades/${up.id}/cancel`, { method: 'POST' });
      expect(cancel.status).toBe(409);
      expect(cancel.body.error.code).toBe('PAUSE_FIRST');
      const paused = await s.api(`/api/v1/upgrades/${up.id}/pause`, { method: 'POST' });
      expect(paused.status).toBe(200);
      expect(paused.body.state).toBe('Paused');
      const quiet = await until(async () => {
        const u = await getUpgrade(up.id);
        return u.nodes.running === 0 ? u : undefined;
      });
      await new Promise((r) => setTimeout(r, 300));
      const still = await getUpgrade(up.id);
      expect(still.nodes.succeeded).toBe(quiet.nodes.succeeded);
      expect(still.batches.length).toBe(quiet.batches.length);
      const resumed = await s.api(`/api/v1/upgrades/${up.id}/resume`, { method: 'POST' });
      expect(resumed.body.state).toBe('Upgrading');
      const ramp = await until(async () => {
        const u = await getUpgrade(up.id);
        return u.batches.length >= quiet.batches.length + 3 ? u : undefined;
      });
      expect(ramp.batches.slice(quiet.batches.length, quiet.batches.length + 3).map((b: { size: number }) => b.size)).toEqual([1, 2, 4]);
      await s.api(`/api/v1/upgrades/${up.id}/pause`, { method: 'POST' });
      const canceled = await s.api(`/api/v1/upgrades/${up.id}/cancel`, { method: 'POST' });
      expect(canceled.body.state).toBe('Canceled');
      const end = await until(async () => {
        const u = await getUpgrade(up.id);
        return u.nodes.running === 0 ? u : undefined;
      });
      expect(end.nodes.skipped).toBeGreaterThan(0);
      expect(end.nodes.succeeded + end.nodes.skipped).toBe(60);
      const skipped = (await s.api(`/api/v1/upgrades/${up.id}/nodes`)).body.items.filter((n: { state: string }) => n.state === 'skipped');
      expect(skipped.every((n: { startedAt: string | null }) => n.startedAt === null)).toBe(true);

      const single = await createCluster('single', { nodes: 1, upgradeSeconds: 0.6, versions: { agent: '1.1.0' } });
      const one = (await s.api(`/api/v1/clusters/${single.id}/upgrades`, { body: { component: 'docker' } })).body;
      await until(async () => (await getUpgrade(one.id)).nodes.running === 1);
      const nothing = await s.api(`/api/v1/upgrades/${one.id}/pause`, { method: 'POST' });
      expect(nothing.status).toBe(409);
      expect(nothing.body.error.code).toBe('NOTHING_TO_PAUSE');
    });

    it('auto-pauses on a failing node with the cause and events; resume retries it to completion', async () => {
      const cluster = await createCluster('failing', {
        nodes: 12,
        upgradeSeconds: 0.05,
        failNodes: ['sim-007'],
        versions: { agent: '1.1.0' },
      });
      const up = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } })).body;
      const paused = await waitUpgrade(up.id, 'Paused');
      expect(paused.pauseReason.kind).toBe('error');
      expect(paused.pauseReason.message).toMatch(/sim-007/);
      const events = (await s.api(`/api/v1/events?upgradeId=${up.id}&limit=500`)).body.items.map((e: { type: string }) => e.type);
      expect(events).toContain('node.failed');
      expect(events).toContain('upgrade.auto_paused');
      await until(async () => (await getUpgrade(up.id)).nodes.running === 0);
      await s.api(`/api/v1/upgrades/${up.id}/resume`, { method: 'POST' });
      const done = await waitUpgrade(up.id, 'Completed');
      expect(done.nodes.succeeded).toBe(12);
    });

    it('cancels an upgrade paused longer than --paused-ttl and keeps only the tombstone', async () => {
      const cluster = await createCluster('ttl', { nodes: 30, upgradeSeconds: 0.1, versions: { agent: '1.1.0' } });
      const up = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } })).body;
      await until(async () => (await getUpgrade(up.id)).batches.length >= 2);
      const paused = (await s.api(`/api/v1/upgrades/${up.id}/pause`, { method: 'POST' })).body;
      expect(Date.parse(paused.autoCancelAt) - Date.parse(paused.pausedAt)).toBe(3000);
      const canceled = await waitUpgrade(up.id, 'Canceled', 10_000);
      expect(canceled.finishedAt).not.toBeNull();
      // Why it ended stays on the upgrade; the pause is history.
      expect(canceled.endReason).toEqual({
        kind: 'auto_canceled',
        actor: 'engine',
        at: canceled.finishedAt,
        message: 'Canceled automatically after 3 seconds paused (it was paused: paused by admin); its events and logs were deleted',
      });
      expect(canceled.pauseReason).toBeNull();
      expect(canceled.autoCancelAt).toBeNull();
      const events = (await s.api(`/api/v1/events?upgradeId=${up.id}`)).body.items;
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'upgrade.auto_canceled', actor: 'engine', upgradeId: up.id });
      // The log is not silently empty: the answer says it was deleted, and why.
      const tasks = (await s.api(`/api/v1/upgrades/${up.id}/nodes`)).body.items;
      const log = await s.api(`/api/v1/upgrades/${up.id}/nodes/${tasks[0].nodeId}/log`);
      expect(log.status).toBe(410);
      expect(log.body.error).toEqual({ code: 'LOG_DELETED', message: `the log of sim-001 was deleted: ${canceled.endReason.message}` });
    });

    it('locks membership during an upgrade; eight concurrent starts: exactly one wins', async () => {
      const cluster = await createCluster('locked', { nodes: 10, upgradeSeconds: 0.3, versions: { agent: '1.1.0' } });
      const starts = await Promise.all(
        Array.from({ length: 8 }, () => s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } })),
      );
      expect(starts.filter((r) => r.status === 201)).toHaveLength(1);
      for (const r of starts.filter((x) => x.status !== 201)) expect(r.body.error.code).toBe('UPGRADE_IN_PROGRESS');
      const add = await s.api(`/api/v1/clusters/${cluster.id}/nodes`, { body: { name: 'late' } });
      expect(add.status).toBe(409);
      expect(add.body.error.code).toBe('UPGRADE_IN_PROGRESS');
      const nodes = (await s.api(`/api/v1/clusters/${cluster.id}/nodes`)).body.items;
      const remove = await s.api(`/api/v1/clusters/${cluster.id}/nodes/${nodes[0].id}`, { method: 'DELETE' });
      expect(remove.status).toBe(409);
      expect((await s.api(`/api/v1/clusters/${cluster.id}/nodes`)).body.items).toHaveLength(10);
      const second = await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'containerd' } });
      expect(second.body.error.code).toBe('UPGRADE_IN_PROGRESS');
      const winner = starts.find((r) => r.status === 201)!.body;
      await waitUpgrade(winner.id, 'Completed');
      const added = await s.api(`/api/v1/clusters/${cluster.id}/nodes`, { body: { name: 'late' } });
      expect(added.status).toBe(201);
      const events = (await s.api(`/api/v1/events?clusterId=${cluster.id}&type=cluster.node_added`)).body.items;
      expect(events).toHaveLength(1);
    });

    it('snapshot failure: quit leaves everything as it was; continue completes', async () => {
      const cluster = await createCluster('snaps', {
        nodes: 6,
        upgradeSeconds: 0.05,
        snapshotFailNodes: ['sim-002'],
        versions: { agent: '1.1.0' },
      });
      const a = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker', snapshot: 'before' } })).body;
      expect(a.state).toBe('BackingUp');
      await waitUpgrade(a.id, 'SnapshotFailed');
      expect((await s.api(`/api/v1/upgrades/${a.id}/quit`, { method: 'POST' })).body.state).toBe('Canceled');
      const c = (await s.api(`/api/v1/clusters/${cluster.id}`)).body;
      expect(c.components.docker.versions).toEqual({ '20.10.24': 6 });
      const b = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker', snapshot: 'before' } })).body;
      await waitUpgrade(b.id, 'SnapshotFailed');
      await s.api(`/api/v1/upgrades/${b.id}/continue`, { method: 'POST' });
      const done = await waitUpgrade(b.id, 'Completed');
      expect(done.snapshots).toMatchObject({ total: 6, succeeded: 5, failed: 1 });
      const tasks = (await s.api(`/api/v1/upgrades/${b.id}/nodes`)).body.items;
      expect(tasks.find((x: { nodeName: string }) => x.nodeName === 'sim-002').snapshot.state).toBe('failed');
    });

    it('3 managers among 23 nodes: managers first, never two in a batch', async () => {
      const cluster = await createCluster('managers', { nodes: 23, managers: 3, upgradeSeconds: 0.03, versions: { agent: '1.1.0' } });
      const plan = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades/plan`, { body: { component: 'docker' } })).body;
      expect(plan.batches.slice(0, 3)).toEqual([['sim-001'], ['sim-002'], ['sim-003', 'sim-004']]);
      const up = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } })).body;
      const done = await waitUpgrade(up.id, 'Completed');
      const roles = new Map(
        (await s.api(`/api/v1/clusters/${cluster.id}/nodes`)).body.items.map((n: { id: string; role: string }) => [n.id, n.role]),
      );
      for (const b of done.batches) expect(b.nodes.filter((id: string) => roles.get(id) === 'manager').length).toBeLessThanOrEqual(1);
      expect(done.batches.slice(0, 3).map((b: { nodes: string[] }) => roles.get(b.nodes[0]!))).toEqual(['manager', 'manager', 'manager']);
    });

    it('answers bad input with the error envelope and changes nothing', async () => {
      const cluster = await createCluster('strict', { nodes: 3, upgradeSeconds: 0.05, versions: { agent: '1.1.0' } });
      // Audit and failed sign-in events record the attempts themselves; nothing else may appear.
      const operations = async () =>
        (await s.api('/api/v1/events?limit=500')).body.items.filter(
          (e: { type: string }) => !['audit.request', 'auth.failed'].includes(e.type),
        ).length;
      const before = await operations();
      const cases: Array<[string, Parameters<ServerProcess['api']>[1], number]> = [
        ['malformed JSON', { rawBody: '{"component": "docker",' }, 400],
        ['wrong type', { body: { component: 42 } }, 400],
        ['missing component', { body: {} }, 400],
        ['unknown field', { body: { component: 'docker', colour: 'red' } }, 400],
        ['unknown component', { body: { component: 'podman' } }, 422],
        ['shell characters', { body: { component: 'docker', toVersion: '26.1.5; rm -rf /' } }, 422],
        ['version not in catalog', { body: { component: 'docker', toVersion: '99.0.0' } }, 422],
        ['negative percentage', { body: { component: 'docker', policy: { maxBatchPercent: -5 } } }, 422],
        ['3 MB body', { rawBody: JSON.stringify({ component: 'docker', pad: 'x'.repeat(3 * 1024 * 1024) }) }, 413],
        ['no token', { body: { component: 'docker' }, token: null }, 401],
        ['wrong token', { body: { component: 'docker' }, token: 'not-the-token-at-all' }, 401],
      ];
      for (const [what, init, status] of cases) {
        const res = await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, init);
        expect(res.status, what).toBe(status);
        expect(typeof res.body?.error?.code, what).toBe('string');
        expect(res.body.error.message.length, what).toBeGreaterThan(5);
      }
      for (const path of ['/api/v1/upgrades/upg_0000000000000000', '/api/v1/clusters/nope', '/api/v1/no-such-route']) {
        const res = await s.api(path);
        expect(res.status, path).toBe(404);
        expect(res.body.error.code).toBe('NOT_FOUND');
      }
      const badCluster = await s.api('/api/v1/clusters', { body: { name: 'bad name!', kind: 'simulated' } });
      expect(badCluster.status).toBe(422);
      const badSim = await s.api('/api/v1/clusters', { body: { name: 'ok', kind: 'simulated', simulation: { nodes: -1 } } });
      expect(badSim.status).toBe(422);
      expect(badSim.body.error.message).toMatch(/simulation.nodes/);
      expect((await s.api(`/api/v1/upgrades?clusterId=${cluster.id}`)).body.items).toHaveLength(0);
      expect((await s.api('/api/v1/clusters')).body.items.map((c: { name: string }) => c.name)).not.toContain('ok');
      expect(await operations()).toBe(before);
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    });

    it('lists events newest first with a cursor, streams them live, serves docs and metrics', async () => {
      const first = (await s.api('/api/v1/events?limit=3')).body;
      expect(first.items).toHaveLength(3);
      expect(Number(first.items[0].id)).toBeGreaterThan(Number(first.items[1].id));
      const second = (await s.api(`/api/v1/events?limit=3&cursor=${first.next}`)).body;
      expect(Number(second.items[0].id)).toBeLessThan(Number(first.items[2].id));
      for (const key of ['id', 'at', 'type', 'actor', 'clusterId', 'upgradeId', 'nodeId', 'message'])
        expect(first.items[0]).toHaveProperty(key);

      const controller = new AbortController();
      const res = await fetch(`${s.url}/api/v1/stream`, { headers: { authorization: `Bearer ${s.token}` }, signal: controller.signal });
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      const cluster = await createCluster('streamed', { nodes: 2, upgradeSeconds: 0.05 });
      await until(async () => {
        const { value } = await reader.read();
        text += new TextDecoder().decode(value);
        return text.includes('cluster.created') && text.includes(cluster.id);
      }, 5000);
      controller.abort();
      expect(text).toMatch(/event: cluster.created\ndata: \{/);

      expect((await fetch(`${s.url}/api/v1/stream`)).status).toBe(401);
      const docs = await fetch(`${s.url}/docs/json`);
      expect(docs.status).toBe(200);
      const openapi = (await docs.json()) as { paths: Record<string, unknown> };
      expect(Object.keys(openapi.paths)).toContain('/api/v1/clusters/{id}/upgrades');
      expect((await fetch(`${s.url}/metrics`)).status).toBe(401);
      const metrics = await s.api('/metrics');
      expect(metrics.text).toMatch(/upshift_active_upgrades/);
      expect(metrics.text).toMatch(/upshift_node_tasks_total\{component="docker",result="succeeded"\}/);
      expect(metrics.text).toMatch(/upshift_batch_duration_seconds_bucket/);
    });
  });
}
