import { describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import { dialects } from '../support/databases.js';
import { addCluster, addNodes, addUpgrade, storeForSuite } from '../support/store.js';

/**
 * The upgrades repository's contract, on each database: one active upgrade per cluster,
 * compare-and-set on upgrades, tasks, batches and snapshots (a transition whose state
 * moved meanwhile changes nothing and says so), domain-level patches in and out, and the
 * upgrade's node order for paging.
 */
for (const dialect of dialects) {
  describe(`upgrades repository on ${dialect}`, () => {
    const suite = storeForSuite(dialect);

    it('refuses a second active upgrade of a cluster, and allows one once the first finished', async () => {
      const cluster = await addCluster(suite.store, 'one-active');
      const nodes = await addNodes(suite.store, cluster.id, ['a', 'b']);
      const { upgrade } = await addUpgrade(suite.store, cluster.id, nodes);
      await expect(addUpgrade(suite.store, cluster.id, nodes)).rejects.toMatchObject({ code: 'UPGRADE_IN_PROGRESS' });
      expect((await suite.store.upgrades.activeOf(cluster.id))?.id).toBe(upgrade.id);
      expect(
        await suite.store.upgrades.casState(upgrade.id, 'Upgrading', { state: 'Completed', finishedAt: new Date().toISOString() }),
      ).toBe(true);
      expect(await suite.store.upgrades.activeOf(cluster.id)).toBeUndefined();
      const second = await addUpgrade(suite.store, cluster.id, nodes);
      expect((await suite.store.upgrades.listActive()).map((u) => u.id)).toContain(second.upgrade.id);
      expect((await suite.store.upgrades.list({ clusterId: cluster.id })).map((u) => u.id)).toEqual([second.upgrade.id, upgrade.id]);
      expect((await suite.store.upgrades.list({ clusterId: cluster.id, state: 'Completed' })).map((u) => u.id)).toEqual([upgrade.id]);
    });

    it('moves an upgrade by compare-and-set: false, and nothing written, when its state moved', async () => {
      const cluster = await addCluster(suite.store, 'cas-upgrade');
      const { upgrade } = await addUpgrade(suite.store, cluster.id, await addNodes(suite.store, cluster.id, ['n1']));
      const pausedAt = new Date().toISOString();
      const reason = { kind: 'error' as const, message: 'n1: dockerd died', nodeId: 'nd_x' };
      expect(await suite.store.upgrades.casState(upgrade.id, 'Upgrading', { state: 'Paused', pauseReason: reason, pausedAt })).toBe(true);
      // A second writer that still believes the upgrade is Upgrading loses.
      expect(await suite.store.upgrades.casState(upgrade.id, 'Upgrading', { state: 'Canceled', finishedAt: pausedAt })).toBe(false);
      const paused = await suite.store.upgrades.get(upgrade.id);
      expect(paused).toMatchObject({ state: 'Paused', pauseReason: reason, pausedAt, finishedAt: null });
      // A patch clears with null and leaves alone what it does not name.
      expect(
        await suite.store.upgrades.casState(upgrade.id, 'Paused', { state: 'Upgrading', pauseReason: null, pausedAt: null, rampStart: 3 }),
      ).toBe(true);
      expect(await suite.store.upgrades.get(upgrade.id)).toEqual({
        ...upgrade,
        state: 'Upgrading',
        rampStart: 3,
        pauseReason: null,
        pausedAt: null,
      });
      const soakUntil = new Date(Date.now() + 60_000).toISOString();
      expect(await suite.store.upgrades.casState(upgrade.id, 'Upgrading', { nextBatchAt: soakUntil })).toBe(true);
      expect((await suite.store.upgrades.get(upgrade.id))?.nextBatchAt).toBe(soakUntil);
      expect(await suite.store.upgrades.casState('upg_none', 'Upgrading', { nextBatchAt: null })).toBe(false);
    });

    it('moves tasks by compare-and-set on state and attempt, one at a time or many at once', async () => {
      const cluster = await addCluster(suite.store, 'cas-tasks');
      const { upgrade, tasks } = await addUpgrade(
        suite.store,
        cluster.id,
        await addNodes(suite.store, cluster.id, ['t1', 't2', 't3', 't4']),
      );
      const [t1, t2, t3, t4] = tasks as [(typeof tasks)[0], (typeof tasks)[0], (typeof tasks)[0], (typeof tasks)[0]];
      const startedAt = new Date().toISOString();
      const start = {
        state: 'running' as const,
        attempt: 1,
        batchIndex: 0,
        startedAt,
        finishedAt: null,
        error: null,
        fromVersion: '20.10.24',
      };
      const moved = await suite.store.upgrades.casTasks([t1.id, t2.id, t3.id], 'pending', 0, start);
      expect([...moved].sort()).toEqual([t1.id, t2.id, t3.id].sort());
      // Already running: a second start of the same tasks moves none.
      expect((await suite.store.upgrades.casTasks([t1.id, t2.id], 'pending', 0, start)).size).toBe(0);
      // A stale attempt loses.
      expect(await suite.store.upgrades.casTask(t1.id, 'running', 0, { state: 'succeeded', finishedAt: startedAt })).toBe(false);
      expect(await suite.store.upgrades.casTask(t1.id, 'running', 1, { state: 'succeeded', finishedAt: startedAt })).toBe(true);
      expect(await suite.store.upgrades.casTask(t2.id, 'running', 1, { state: 'failed', finishedAt: startedAt, error: 'boom' })).toBe(true);
      expect(await suite.store.upgrades.taskCounts(upgrade.id)).toEqual({ pending: 1, running: 1, succeeded: 1, failed: 1, skipped: 0 });
      expect(await suite.store.upgrades.batchTaskCounts(upgrade.id, 0)).toEqual({
        pending: 0,
        running: 1,
        succeeded: 1,
        failed: 1,
        skipped: 0,
      });
      expect(await suite.store.upgrades.findTaskOfNode(upgrade.id, 't2')).toMatchObject({
        id: t2.id,
        state: 'failed',
        error: 'boom',
        attempt: 1,
        batchIndex: 0,
        startedAt,
        fromVersion: '20.10.24',
      });
      expect((await suite.store.upgrades.findTaskOfNode(upgrade.id, t3.nodeId))?.id).toBe(t3.id);
      expect(await suite.store.upgrades.findTaskOfNode(upgrade.id, 'nowhere')).toBeUndefined();
      // Resume: failed tasks go back to pending; cancel: pending ones are skipped.
      expect(await suite.store.upgrades.moveTasks(upgrade.id, 'failed', 'pending', null)).toBe(1);
      const finishedAt = new Date().toISOString();
      expect(await suite.store.upgrades.moveTasks(upgrade.id, 'pending', 'skipped', finishedAt)).toBe(2);
      expect((await suite.store.upgrades.listTasks(upgrade.id, 'skipped')).map((t) => [t.id, t.finishedAt])).toEqual([
        [t2.id, finishedAt],
        [t4.id, finishedAt],
      ]);
    });

    it('pages an upgrade’s tasks in its order, by key', async () => {
      const cluster = await addCluster(suite.store, 'paged-tasks');
      const names = Array.from({ length: 25 }, (_, i) => `p-${25 - i}`);
      const { upgrade } = await addUpgrade(suite.store, cluster.id, await addNodes(suite.store, cluster.id, names));
      const seen: string[] = [];
      let after: number | null = null;
      let pages = 0;
      do {
        const page = await suite.store.upgrades.pageTasks(upgrade.id, after, 10);
        expect(page.items.length).toBeLessThanOrEqual(10);
        seen.push(...page.items.map((t) => t.nodeName));
        after = page.nextAfter;
        pages++;
      } while (after !== null);
      // The insertion order is the upgrade's order (sortKey), whatever the names.
      expect(seen).toEqual(names);
      expect(pages).toBe(3);
      expect((await suite.store.upgrades.listTasks(upgrade.id)).map((t) => t.nodeName)).toEqual(names);
      // The last page knows it is the last: no empty page after it.
      expect((await suite.store.upgrades.pageTasks(upgrade.id, null, 25)).nextAfter).toBeNull();
      // The first few in one state, in the same order: what the batch loop reads to start a batch.
      const tasks = await suite.store.upgrades.listTasks(upgrade.id);
      await suite.store.upgrades.casTasks([tasks[0]!.id, tasks[2]!.id], 'pending', 0, { state: 'running', attempt: 1 });
      expect((await suite.store.upgrades.listTasks(upgrade.id, 'pending', 3)).map((t) => t.nodeName)).toEqual([
        names[1],
        names[3],
        names[4],
      ]);
      expect((await suite.store.upgrades.listTasks(upgrade.id, 'running', 5)).map((t) => t.nodeName)).toEqual([names[0], names[2]]);
    });

    it('closes a batch once and keeps its nodes; snapshots move by compare-and-set', async () => {
      const cluster = await addCluster(suite.store, 'batches');
      const nodes = await addNodes(suite.store, cluster.id, ['b1', 'b2']);
      const { upgrade } = await addUpgrade(suite.store, cluster.id, nodes, { snapshot: 'before', state: 'BackingUp' });
      const startedAt = new Date().toISOString();
      for (const index of [0, 1]) {
        await suite.store.upgrades.insertBatch({
          upgradeId: upgrade.id,
          index,
          size: 1,
          state: 'running',
          nodeIds: [nodes[index]!.id],
          startedAt,
          finishedAt: null,
        });
      }
      expect(await suite.store.upgrades.finishBatch(upgrade.id, 0, 'succeeded', startedAt)).toBe(true);
      expect(await suite.store.upgrades.finishBatch(upgrade.id, 0, 'failed', startedAt)).toBe(false);
      expect(await suite.store.upgrades.listBatches(upgrade.id)).toEqual([
        { upgradeId: upgrade.id, index: 0, size: 1, state: 'succeeded', nodeIds: [nodes[0]!.id], startedAt, finishedAt: startedAt },
        { upgradeId: upgrade.id, index: 1, size: 1, state: 'running', nodeIds: [nodes[1]!.id], startedAt, finishedAt: null },
      ]);
      // What the batch loop reads at every step: the same batches without their node lists.
      expect(await suite.store.upgrades.listBatchStates(upgrade.id)).toEqual([
        { upgradeId: upgrade.id, index: 0, size: 1, state: 'succeeded', startedAt, finishedAt: startedAt },
        { upgradeId: upgrade.id, index: 1, size: 1, state: 'running', startedAt, finishedAt: null },
      ]);

      const snapshots = nodes.map((n) => ({
        id: newId('snap'),
        upgradeId: upgrade.id,
        nodeId: n.id,
        nodeName: n.name,
        state: 'pending' as const,
        ref: null,
        error: null,
        startedAt: null,
        finishedAt: null,
      }));
      await suite.store.upgrades.insertSnapshots(snapshots);
      const [s1, s2] = snapshots as [(typeof snapshots)[0], (typeof snapshots)[0]];
      expect(await suite.store.upgrades.casSnapshot(s1.id, 'pending', { state: 'running', startedAt })).toBe(true);
      expect(await suite.store.upgrades.casSnapshot(s1.id, 'pending', { state: 'running', startedAt })).toBe(false);
      expect(await suite.store.upgrades.casSnapshot(s1.id, 'running', { state: 'succeeded', ref: 'snap-1', finishedAt: startedAt })).toBe(
        true,
      );
      expect(await suite.store.upgrades.listSnapshots(upgrade.id)).toEqual([
        { ...s1, state: 'succeeded', ref: 'snap-1', startedAt, finishedAt: startedAt },
        s2,
      ]);
      expect((await suite.store.upgrades.snapshotsOfNodes(upgrade.id, [s2.nodeId])).map((s) => s.id)).toEqual([s2.id]);
    });
  });
}
