import { afterEach, describe, expect, it, vi } from 'vitest';
import type { UpshiftError } from '../../src/domain/errors.js';
import type { UpshiftEvent } from '../../src/domain/events.js';
import type { UpgradeRecord } from '../../src/domain/model.js';
import { dialects } from '../support/databases.js';
import { createTestEngine, type TestEngine, waitFor } from '../support/engine.js';

const finalStates = ['Completed', 'Canceled'];

async function allEvents(t: TestEngine, upgradeId: string): Promise<UpshiftEvent[]> {
  return (await t.store.events.list({ upgradeId, limit: 100_000 })).reverse();
}

async function createSim(t: TestEngine, name: string, simulation: Record<string, unknown>) {
  return t.engine.fleet.createCluster({ name, kind: 'simulated', simulation: { versions: { agent: '1.1.0' }, ...simulation } }, 'tester');
}

async function waitState(t: TestEngine, id: string, states: string[], ms = 20_000): Promise<UpgradeRecord> {
  return waitFor(
    async () => {
      const u = await t.store.upgrades.get(id);
      return u && states.includes(u.state) ? u : undefined;
    },
    ms,
    `upgrade ${id} to reach ${states.join('/')}`,
  );
}

/** Waits until no node task of the upgrade is running. */
async function waitQuiet(t: TestEngine, id: string) {
  await waitFor(async () => (await t.store.upgrades.taskCounts(id)).running === 0, 20_000, 'running nodes to finish');
}

async function refused(p: Promise<unknown>): Promise<UpshiftError> {
  try {
    await p;
  } catch (error) {
    return error as UpshiftError;
  }
  throw new Error('expected a refusal');
}

for (const dialect of dialects) {
  describe(`engine on ${dialect}`, () => {
    let t: TestEngine;
    afterEach(async () => {
      await t?.close();
    });

    it('upgrades 50 nodes in batches 1,2,4,5,…,3, each after the previous finished', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'fifty', { nodes: 50, upgradeSeconds: 0.05 });
      const plan = await t.engine.upgrades.plan(cluster.id, { component: 'docker' });
      expect(plan.batches.map((b) => b.length)).toEqual([1, 2, 4, 5, 5, 5, 5, 5, 5, 5, 5, 3]);
      const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      expect(upgrade.state).toBe('Upgrading');
      const active = await t.store.upgrades.activeOf(cluster.id);
      expect(active?.id).toBe(upgrade.id);
      await waitState(t, upgrade.id, ['Completed']);
      const batches = await t.store.upgrades.listBatches(upgrade.id);
      expect(batches.map((b) => b.size)).toEqual([1, 2, 4, 5, 5, 5, 5, 5, 5, 5, 5, 3]);
      expect(batches.map((b) => b.nodeIds.length)).toEqual(plan.batches.map((b) => b.length));
      for (let i = 1; i < batches.length; i++) {
        expect(Date.parse(batches[i]!.startedAt)).toBeGreaterThanOrEqual(Date.parse(batches[i - 1]!.finishedAt!));
      }
      const nodes = await t.store.nodes.list(cluster.id);
      expect(nodes.every((n) => n.versions.docker === '28.5.2')).toBe(true);
      const events = await allEvents(t, upgrade.id);
      expect(events.filter((e) => e.type === 'node.succeeded')).toHaveLength(50);
      expect(events.at(-1)?.type).toBe('upgrade.completed');
      const log = await t.store.logs.read((await t.store.upgrades.listTasks(upgrade.id))[0]!.id);
      expect(log.map((l) => l.line).join('\n')).toMatch(/verified: Docker-Engine reports 28.5.2/);
    });

    it('stores a new upgrade leased to this replica and starts its first batch without claiming it or reading it back', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'adopted', { nodes: 10, upgradeSeconds: 0.05 });
      const claims = vi.spyOn(t.store.leases, 'claim');
      const reads = vi.spyOn(t.store.upgrades, 'get');
      let upgradeId = '';
      // What the engine had done when the first batch started (the test reads nothing until then).
      let onEvent = (_: UpshiftEvent) => undefined as void;
      const firstBatch = new Promise<{ claims: number; reads: number }>((resolve) => {
        onEvent = (e) => {
          if (e.type !== 'batch.started' || e.upgradeId !== upgradeId) return;
          resolve({
            claims: claims.mock.calls.filter((call) => call[2] === upgradeId).length,
            reads: reads.mock.calls.filter((call) => call[0] === upgradeId).length,
          });
        };
      });
      t.store.bus.on('event', onEvent);
      try {
        const plan = await t.engine.upgrades.plan(cluster.id, { component: 'docker' });
        const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
        upgradeId = upgrade.id;
        // Leased in the transaction that stored it: no other replica can take it meanwhile.
        expect(await t.store.leases.ownerOf(upgrade.id)).not.toBeNull();
        expect(await firstBatch).toEqual({ claims: 0, reads: 0 });
        await waitState(t, upgrade.id, ['Completed']);
        expect((await t.store.upgrades.listBatches(upgrade.id)).map((b) => b.size)).toEqual(plan.batches.map((b) => b.length));
      } finally {
        t.store.bus.off('event', onEvent);
        vi.restoreAllMocks();
      }
    });

    it('closes each batch in the transaction that starts the next, the last one with the completion, and after a soak waits', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'back-to-back', { nodes: 20, upgradeSeconds: 0.05 });
      const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      const done = await waitState(t, upgrade.id, ['Completed']);
      const batches = await t.store.upgrades.listBatches(upgrade.id);
      expect(batches.map((b) => b.size)).toEqual([1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]);
      expect(batches.every((b) => b.state === 'succeeded')).toBe(true);
      // One instant between two batches: the one that ends and the one that starts, in one transaction.
      for (let i = 1; i < batches.length; i++) expect(batches[i]!.startedAt).toBe(batches[i - 1]!.finishedAt);
      expect(batches.at(-1)!.finishedAt).toBe(done.finishedAt);
      const events = await allEvents(t, upgrade.id);
      const ofBatches = events.filter((e) => e.type === 'batch.started' || e.type === 'batch.finished' || e.type === 'upgrade.completed');
      expect(ofBatches.map((e) => `${e.type}:${(e.data as { index?: number } | undefined)?.index ?? ''}`)).toEqual([
        ...batches.flatMap((b) => [`batch.started:${b.index}`, `batch.finished:${b.index}`]),
        'upgrade.completed:',
      ]);
      for (const e of events.filter((x) => x.type === 'batch.finished')) {
        const data = e.data as { index: number; size: number; succeeded: number; failed: number };
        expect([data.succeeded, data.failed]).toEqual([batches[data.index]!.size, 0]);
      }
      // The events of one batch's start come after the previous batch's end, never between its nodes' starts.
      const firstNodeOfSecond = events.findIndex((e) => e.type === 'node.started' && (e.data as { batchIndex: number }).batchIndex === 1);
      expect(events[firstNodeOfSecond - 1]?.type).toBe('batch.started');
      expect(events[firstNodeOfSecond - 2]?.type).toBe('batch.finished');

      const soaked = await createSim(t, 'soaked', { nodes: 4, upgradeSeconds: 0.05 });
      const slow = await t.engine.upgrades.start(soaked.id, { component: 'docker', policy: { soakSeconds: 0.2 } }, 'tester');
      await waitState(t, slow.id, ['Completed']);
      const spaced = await t.store.upgrades.listBatches(slow.id);
      expect(spaced.map((b) => b.size)).toEqual([1, 1, 1, 1]);
      for (let i = 1; i < spaced.length; i++) {
        expect(Date.parse(spaced[i]!.startedAt) - Date.parse(spaced[i - 1]!.finishedAt!)).toBeGreaterThanOrEqual(200);
      }
    });

    it('refuses a runtime upgrade while agents are outdated, and allows it after the agent upgrade', async () => {
      t = await createTestEngine(dialect);
      const cluster = await t.engine.fleet.createCluster(
        { name: 'old-agents', kind: 'simulated', simulation: { nodes: 6, upgradeSeconds: 0.02, versions: { agent: '1.0.0' } } },
        'tester',
      );
      const error = await refused(t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester'));
      expect(error.code).toBe('AGENT_OUTDATED');
      expect(error.message).toMatch(/upgrade the agent component first/);
      const agent = await t.engine.upgrades.start(cluster.id, { component: 'agent' }, 'tester');
      await waitState(t, agent.id, ['Completed']);
      const docker = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      await waitState(t, docker.id, ['Completed']);
      const events = await t.store.events.list({ clusterId: cluster.id, type: 'upgrade.refused', limit: 10 });
      expect(events[0]?.message).toMatch(/AGENT_OUTDATED/);
    });

    it('pause lets running nodes finish and starts none; resume ramps 1,2,4 again; cancel needs a pause', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'pausing', { nodes: 100, upgradeSeconds: 0.3 });
      const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      await waitFor(async () => (await t.store.upgrades.listBatches(upgrade.id)).length >= 3 || undefined);
      expect((await refused(t.engine.upgrades.command(upgrade.id, { type: 'cancel' }, 'tester'))).code).toBe('PAUSE_FIRST');
      const paused = await t.engine.upgrades.command(upgrade.id, { type: 'pause' }, 'tester');
      expect(paused.state).toBe('Paused');
      expect(paused.pauseReason).toMatchObject({ kind: 'user' });
      const startedAtPause = (await t.store.upgrades.listTasks(upgrade.id)).filter((x) => x.state !== 'pending').length;
      await waitQuiet(t, upgrade.id);
      await new Promise((r) => setTimeout(r, 400));
      const afterWait = await t.store.upgrades.listTasks(upgrade.id);
      expect(afterWait.filter((x) => x.state !== 'pending').length).toBe(startedAtPause);
      expect(afterWait.filter((x) => x.state === 'running').length).toBe(0);
      const batchesBefore = (await t.store.upgrades.listBatches(upgrade.id)).length;
      expect((await t.store.upgrades.get(upgrade.id))?.state).toBe('Paused');
      await t.engine.upgrades.command(upgrade.id, { type: 'resume' }, 'tester');
      await waitFor(async () => (await t.store.upgrades.listBatches(upgrade.id)).length >= batchesBefore + 3 || undefined);
      const sizes = (await t.store.upgrades.listBatches(upgrade.id)).slice(batchesBefore, batchesBefore + 3).map((b) => b.size);
      expect(sizes).toEqual([1, 2, 4]);
      await t.engine.upgrades.command(upgrade.id, { type: 'pause' }, 'tester');
      const canceled = await t.engine.upgrades.command(upgrade.id, { type: 'cancel' }, 'tester');
      expect(canceled.state).toBe('Canceled');
      await waitQuiet(t, upgrade.id);
      const counts = await t.store.upgrades.taskCounts(upgrade.id);
      expect(counts.skipped).toBeGreaterThan(0);
      expect(counts.pending).toBe(0);
      expect(counts.succeeded + counts.skipped + counts.failed).toBe(100);
      const nodes = await t.store.nodes.list(cluster.id);
      expect(nodes.filter((n) => n.versions.docker === '28.5.2').length).toBe(counts.succeeded);
      expect(await t.store.upgrades.activeOf(cluster.id)).toBeUndefined();
    });

    it('refuses a pause when every node has started', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'one', { nodes: 1, upgradeSeconds: 0.5 });
      const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      await waitFor(async () => (await t.store.upgrades.taskCounts(upgrade.id)).running === 1 || undefined);
      expect((await refused(t.engine.upgrades.command(upgrade.id, { type: 'pause' }, 'tester'))).code).toBe('NOTHING_TO_PAUSE');
      await waitState(t, upgrade.id, ['Completed']);
    });

    it('pauses itself on a failing node with the cause, and a resume retries it to completion', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'failing', { nodes: 20, upgradeSeconds: 0.03, failNodes: ['sim-007'] });
      const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      const paused = await waitState(t, upgrade.id, ['Paused']);
      expect(paused.pauseReason).toMatchObject({ kind: 'error' });
      expect(paused.pauseReason?.message).toMatch(/sim-007.*did not start/);
      const failedNode = (await t.store.nodes.list(cluster.id)).find((n) => n.name === 'sim-007');
      expect(paused.pauseReason && 'nodeId' in paused.pauseReason ? paused.pauseReason.nodeId : null).toBe(failedNode?.id);
      const types = (await allEvents(t, upgrade.id)).map((e) => e.type);
      expect(types).toContain('node.failed');
      expect(types).toContain('upgrade.auto_paused');
      await waitQuiet(t, upgrade.id);
      await t.engine.upgrades.command(upgrade.id, { type: 'resume' }, 'tester');
      await waitState(t, upgrade.id, ['Completed']);
      const task = (await t.store.upgrades.listTasks(upgrade.id)).find((x) => x.nodeName === 'sim-007');
      expect(task).toMatchObject({ state: 'succeeded', attempt: 2, error: null });
    });

    it('cancels an upgrade paused longer than the TTL and purges its history but for a tombstone', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'ttl', { nodes: 30, upgradeSeconds: 0.05 });
      const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      await waitFor(async () => (await t.store.upgrades.listBatches(upgrade.id)).length >= 2 || undefined);
      await t.engine.upgrades.command(upgrade.id, { type: 'pause' }, 'tester');
      await waitQuiet(t, upgrade.id);
      t.clock.advance(14 * 86_400_000);
      await new Promise((r) => setTimeout(r, 100));
      expect((await t.store.upgrades.get(upgrade.id))?.state).toBe('Paused');
      t.clock.advance(86_400_000 + 1000);
      const canceled = await waitState(t, upgrade.id, ['Canceled']);
      expect(canceled.finishedAt).not.toBeNull();
      const events = await allEvents(t, upgrade.id);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'upgrade.auto_canceled', actor: 'engine' });
      expect(events[0]?.message).toMatch(/paused for more than 15d/);
      for (const task of await t.store.upgrades.listTasks(upgrade.id)) expect(await t.store.logs.read(task.id)).toEqual([]);
      expect((await t.store.upgrades.taskCounts(upgrade.id)).pending).toBe(0);
    });

    it('snapshot failure: SnapshotFailed; quit upgrades nothing; continue completes', async () => {
      t = await createTestEngine(dialect);
      const a = await createSim(t, 'snap-a', { nodes: 8, upgradeSeconds: 0.04, snapshotFailNodes: ['sim-003'] });
      const quit = await t.engine.upgrades.start(a.id, { component: 'docker', snapshot: 'before' }, 'tester');
      expect(quit.state).toBe('BackingUp');
      await waitState(t, quit.id, ['SnapshotFailed']);
      const snaps = await t.store.upgrades.listSnapshots(quit.id);
      expect(snaps.filter((s) => s.state === 'failed').map((s) => s.nodeName)).toEqual(['sim-003']);
      expect((await t.engine.upgrades.command(quit.id, { type: 'quit' }, 'tester')).state).toBe('Canceled');
      expect((await t.store.upgrades.taskCounts(quit.id)).skipped).toBe(8);
      expect((await t.store.nodes.list(a.id)).every((n) => n.versions.docker === '20.10.24')).toBe(true);

      const go = await t.engine.upgrades.start(a.id, { component: 'docker', snapshot: 'before' }, 'tester');
      await waitState(t, go.id, ['SnapshotFailed']);
      await t.engine.upgrades.command(go.id, { type: 'continue' }, 'tester');
      await waitState(t, go.id, ['Completed']);
      const types = (await allEvents(t, go.id)).map((e) => e.type);
      expect(types.filter((x) => x === 'snapshot.succeeded')).toHaveLength(7);
      expect(types).toContain('snapshot.failed');
      expect(types).toContain('upgrade.continued');
    });

    it('locks membership during an upgrade and lets exactly one of eight concurrent starts win', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'locked', { nodes: 10, upgradeSeconds: 0.2 });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester')),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as UpshiftError).code).toBe('UPGRADE_IN_PROGRESS');
      expect((await refused(t.engine.fleet.addNode(cluster.id, { name: 'late' }, 'tester'))).code).toBe('UPGRADE_IN_PROGRESS');
      expect((await refused(t.engine.fleet.removeNode(cluster.id, 'sim-001', 'tester'))).code).toBe('UPGRADE_IN_PROGRESS');
      expect((await refused(t.engine.fleet.deleteCluster(cluster.id, 'tester'))).code).toBe('UPGRADE_IN_PROGRESS');
      expect(await t.store.nodes.list(cluster.id)).toHaveLength(10);
      const upgrade = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<UpgradeRecord>).value;
      await waitState(t, upgrade.id, ['Completed']);
      await t.engine.fleet.addNode(cluster.id, { name: 'late' }, 'tester');
      expect(await t.store.nodes.list(cluster.id)).toHaveLength(11);
    });

    it('puts 3 managers of 23 nodes first, never two in a batch', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'swarmish', { nodes: 23, managers: 3, upgradeSeconds: 0.02 });
      const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      await waitState(t, upgrade.id, ['Completed']);
      const roles = new Map((await t.store.nodes.list(cluster.id)).map((n) => [n.id, n.role]));
      const batches = await t.store.upgrades.listBatches(upgrade.id);
      for (const b of batches) expect(b.nodeIds.filter((id) => roles.get(id) === 'manager').length).toBeLessThanOrEqual(1);
      const order = batches.flatMap((b) => b.nodeIds.map((id) => roles.get(id)));
      expect(order.slice(0, 3)).toEqual(['manager', 'manager', 'manager']);
    });

    it('goes on where it was after a restart, every node upgraded exactly once', async () => {
      t = await createTestEngine(dialect);
      const cluster = await createSim(t, 'restart', { nodes: 40, upgradeSeconds: 0.15 });
      const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      for (let i = 0; i < 3; i++) {
        await waitFor(async () => (await t.store.upgrades.taskCounts(upgrade.id)).running > 0 || undefined);
        t = await t.restart();
      }
      await waitState(t, upgrade.id, ['Completed'], 30_000);
      const events = await allEvents(t, upgrade.id);
      const started = events.filter((e) => e.type === 'node.started').map((e) => e.nodeId);
      expect(started).toHaveLength(40);
      expect(new Set(started).size).toBe(40);
      expect(events.filter((e) => e.type === 'node.succeeded')).toHaveLength(40);
      expect((await t.store.upgrades.listTasks(upgrade.id)).every((x) => x.attempt === 1)).toBe(true);
    });
  });
}

export { finalStates };
