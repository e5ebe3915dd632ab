import { describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import type { NodeTaskRecord, UpgradeRecord } from '../../src/domain/model.js';
import { type UpgradeCommand, decide } from '../../src/domain/upgrade-state.js';
import { type TransitionCause, applyStart, applyTransition } from '../../src/engine/apply-transition.js';
import type { Store } from '../../src/store/store.js';
import { dialects } from '../support/databases.js';
import { addCluster, addNodes, addUpgrade, storeForSuite } from '../support/store.js';

const AT = Date.parse('2026-05-01T12:00:00.000Z');
const AT_ISO = new Date(AT).toISOString();

/** Decides `command` for the upgrade as stored (or as given: a stale copy) and applies it. */
async function step(store: Store, upgrade: UpgradeRecord, command: UpgradeCommand, cause: TransitionCause) {
  const counts = await store.upgrades.taskCounts(upgrade.id);
  const transition = decide({ state: upgrade.state, unstartedNodes: counts.pending }, command);
  if (!transition.ok) throw transition.refusal;
  return applyTransition(store, upgrade, transition, cause, AT);
}

async function current(store: Store, id: string): Promise<UpgradeRecord> {
  const upgrade = await store.upgrades.get(id);
  if (!upgrade) throw new Error(`upgrade ${id} is gone`);
  return upgrade;
}

/** The upgrade's events, oldest first. */
async function events(store: Store, upgradeId: string) {
  return (await store.events.list({ upgradeId, limit: 1000 })).reverse();
}

/** Runs the tasks' first attempt and ends them with `result`. */
async function finish(store: Store, tasks: NodeTaskRecord[], result: 'succeeded' | 'failed'): Promise<void> {
  const ids = tasks.map((t) => t.id);
  await store.upgrades.casTasks(ids, 'pending', 0, {
    state: 'running',
    attempt: 1,
    batchIndex: 0,
    startedAt: AT_ISO,
    finishedAt: null,
    error: null,
  });
  await store.upgrades.casTasks(ids, 'running', 1, {
    state: result,
    finishedAt: AT_ISO,
    error: result === 'failed' ? 'dockerd died' : null,
  });
}

/**
 * The one writer of an upgrade's state (src/engine/apply-transition.ts), on each
 * database: every transition `decide` allows writes its row change, what it implies for
 * the tasks and the history, and its event; a transition decided on a state that moved
 * meanwhile writes nothing at all and says so.
 */
for (const dialect of dialects) {
  describe(`applyTransition on ${dialect}`, () => {
    const suite = storeForSuite(dialect);

    it('writes nothing when its compare-and-set loses, and says so', async () => {
      const { store } = suite;
      const cluster = await addCluster(store, 'lost-cas');
      const { upgrade: stale } = await addUpgrade(store, cluster.id, await addNodes(store, cluster.id, ['a', 'b', 'c']));
      // The engine pauses the upgrade after a node failed; an operator's pause decided on the stale copy loses.
      const won = await step(
        store,
        stale,
        { type: 'nodeFailed', nodeId: 'nd_x', message: 'a: dockerd died' },
        {
          type: 'nodeFailed',
          nodeId: 'nd_x',
          message: 'a: dockerd died',
        },
      );
      expect(won).toMatchObject({ applied: true, from: 'Upgrading', to: 'Paused' });
      const paused = await current(store, stale.id);
      const history = await events(store, stale.id);
      const tasks = await store.upgrades.listTasks(stale.id);

      const lost = await step(store, stale, { type: 'pause' }, { type: 'pause', actor: 'alice' });
      expect(lost).toEqual({ applied: false, reason: expect.stringMatching(/no longer Upgrading when the pause was written/) });
      expect(await current(store, stale.id)).toEqual(paused);
      expect(await events(store, stale.id)).toEqual(history);

      // A stale paused-TTL expiry after a resume: no cancel, no purge, no skipped tasks.
      expect(await step(store, paused, { type: 'resume' }, { type: 'resume', actor: 'alice' })).toMatchObject({ applied: true });
      const resumed = await current(store, stale.id);
      const kept = await events(store, stale.id);
      const expired = await step(store, paused, { type: 'pausedTtlExpired' }, { type: 'pausedTtlExpired', pausedTtlMs: 1000 });
      expect(expired).toEqual({ applied: false, reason: expect.stringMatching(/no longer Paused/) });
      expect(await current(store, stale.id)).toEqual(resumed);
      expect(await events(store, stale.id)).toEqual(kept);
      expect(await store.upgrades.listTasks(stale.id)).toEqual(tasks);
    });

    it('pause, resume, automatic pause and cancel: the row, the tasks and one event each', async () => {
      const { store } = suite;
      const cluster = await addCluster(store, 'operator');
      const { upgrade, tasks } = await addUpgrade(store, cluster.id, await addNodes(store, cluster.id, ['n1', 'n2', 'n3', 'n4']));
      const [t1, t2] = tasks as [NodeTaskRecord, NodeTaskRecord];

      expect(await step(store, upgrade, { type: 'pause' }, { type: 'pause', actor: 'alice' })).toMatchObject({ applied: true });
      expect(await current(store, upgrade.id)).toMatchObject({
        state: 'Paused',
        pauseReason: { kind: 'user', actor: 'alice', message: 'paused by alice' },
        pausedAt: AT_ISO,
      });

      // A batch ran and a node failed while paused: resume retries it and ramps from the next batch.
      await store.upgrades.insertBatch({
        upgradeId: upgrade.id,
        index: 0,
        size: 1,
        state: 'failed',
        nodeIds: [t1.nodeId],
        startedAt: AT_ISO,
        finishedAt: AT_ISO,
      });
      await finish(store, [t1], 'failed');
      await step(store, await current(store, upgrade.id), { type: 'resume' }, { type: 'resume', actor: 'alice' });
      expect(await current(store, upgrade.id)).toMatchObject({
        state: 'Upgrading',
        pauseReason: null,
        pausedAt: null,
        nextBatchAt: null,
        rampStart: 1,
      });
      expect((await store.upgrades.taskCounts(upgrade.id)).pending).toBe(4);

      await store.upgrades.casState(upgrade.id, 'Upgrading', { nextBatchAt: AT_ISO });
      await step(
        store,
        await current(store, upgrade.id),
        { type: 'nodeFailed', nodeId: t2.nodeId, message: 'n2: dockerd died' },
        {
          type: 'nodeFailed',
          nodeId: t2.nodeId,
          message: 'n2: dockerd died',
        },
      );
      expect(await current(store, upgrade.id)).toMatchObject({
        state: 'Paused',
        pauseReason: { kind: 'error', message: 'n2: dockerd died', nodeId: t2.nodeId },
        pausedAt: AT_ISO,
        nextBatchAt: null,
      });

      await finish(store, [t2], 'succeeded');
      await step(store, await current(store, upgrade.id), { type: 'cancel' }, { type: 'cancel', actor: 'bob' });
      expect(await current(store, upgrade.id)).toMatchObject({ state: 'Canceled', finishedAt: AT_ISO });
      expect(await store.upgrades.taskCounts(upgrade.id)).toMatchObject({ pending: 0, skipped: 3, succeeded: 1 });

      expect((await events(store, upgrade.id)).map((e) => [e.type, e.actor, e.nodeId, e.message])).toEqual([
        ['upgrade.paused', 'alice', null, 'Docker-Engine upgrade paused by alice; 0 running node(s) will finish, 4 will wait'],
        [
          'upgrade.resumed',
          'alice',
          null,
          'Docker-Engine upgrade resumed by alice after 0 seconds paused; batches ramp from 1 again, 1 failed node(s) will be retried',
        ],
        ['upgrade.auto_paused', 'engine', t2.nodeId, 'paused automatically: n2: dockerd died'],
        ['upgrade.canceled', 'bob', null, 'Docker-Engine upgrade canceled by bob; 3 node(s) will not be upgraded, 1 stay upgraded'],
      ]);
    });

    it('snapshots failed, continue and completion; snapshots succeeded and quit; each with its event', async () => {
      const { store } = suite;
      const cluster = await addCluster(store, 'snapshots');
      const nodes = await addNodes(store, cluster.id, ['s1', 's2']);
      const { upgrade, tasks } = await addUpgrade(store, cluster.id, nodes, { state: 'BackingUp', snapshot: 'before' });

      await step(store, upgrade, { type: 'snapshotFailed' }, { type: 'snapshotFailed', failedNodes: ['s1'], snapshots: 2 });
      expect((await current(store, upgrade.id)).state).toBe('SnapshotFailed');
      await step(store, await current(store, upgrade.id), { type: 'continue' }, { type: 'continue', actor: 'alice' });
      expect((await current(store, upgrade.id)).state).toBe('Upgrading');
      await finish(store, tasks, 'succeeded');
      await step(store, await current(store, upgrade.id), { type: 'allSucceeded' }, { type: 'allSucceeded' });
      expect(await current(store, upgrade.id)).toMatchObject({ state: 'Completed', finishedAt: AT_ISO });
      expect((await events(store, upgrade.id)).map((e) => [e.type, e.actor, e.message])).toEqual([
        ['upgrade.snapshot_failed', 'engine', '1 of 2 snapshots failed (s1): continue without them or quit'],
        ['upgrade.continued', 'alice', 'alice chose to continue the Docker-Engine upgrade without the failed snapshots'],
        ['upgrade.completed', 'engine', 'Docker-Engine 26.1.5 is on all 2 nodes'],
      ]);

      const second = await addUpgrade(store, cluster.id, nodes, { state: 'BackingUp', snapshot: 'before' });
      await step(store, second.upgrade, { type: 'snapshotFailed' }, { type: 'snapshotFailed', failedNodes: ['s1', 's2'], snapshots: 2 });
      await step(store, await current(store, second.upgrade.id), { type: 'quit' }, { type: 'quit', actor: 'bob' });
      expect(await current(store, second.upgrade.id)).toMatchObject({ state: 'Canceled', finishedAt: AT_ISO });
      expect((await events(store, second.upgrade.id)).map((e) => [e.type, e.message])).toEqual([
        ['upgrade.snapshot_failed', '2 of 2 snapshots failed (s1, s2): continue without them or quit'],
        ['upgrade.canceled', 'Docker-Engine upgrade quit after a failed snapshot by bob; 2 node(s) will not be upgraded, 0 stay upgraded'],
      ]);

      const third = await addUpgrade(store, cluster.id, nodes, { state: 'BackingUp', snapshot: 'before' });
      // The one transition without an event of its own: the snapshots' events and the first batch's tell it.
      expect(await step(store, third.upgrade, { type: 'snapshotsSucceeded' }, { type: 'snapshotsSucceeded' })).toEqual({
        applied: true,
        from: 'BackingUp',
        to: 'Upgrading',
        event: null,
      });
      expect((await current(store, third.upgrade.id)).state).toBe('Upgrading');
      expect(await events(store, third.upgrade.id)).toEqual([]);
    });

    it('cancels an upgrade paused past its TTL and purges its history, leaving one event', async () => {
      const { store } = suite;
      const cluster = await addCluster(store, 'ttl');
      const { upgrade, tasks } = await addUpgrade(store, cluster.id, await addNodes(store, cluster.id, ['p1', 'p2', 'p3']));
      await step(store, upgrade, { type: 'pause' }, { type: 'pause', actor: 'alice' });
      const first = tasks[0] as NodeTaskRecord;
      await store.logs.append([
        { upgradeId: upgrade.id, nodeTaskId: first.id, at: AT_ISO, line: 'one' },
        { upgradeId: upgrade.id, nodeTaskId: first.id, at: AT_ISO, line: 'two' },
      ]);
      const paused = await current(store, upgrade.id);
      const applied = await step(store, paused, { type: 'pausedTtlExpired' }, { type: 'pausedTtlExpired', pausedTtlMs: 15 * 86_400_000 });
      expect(applied).toMatchObject({ applied: true, from: 'Paused', to: 'Canceled' });
      expect(await current(store, upgrade.id)).toMatchObject({ state: 'Canceled', finishedAt: AT_ISO });
      expect(await store.upgrades.taskCounts(upgrade.id)).toMatchObject({ pending: 0, skipped: 3 });
      expect(await store.logs.read(first.id)).toEqual([]);
      const left = await events(store, upgrade.id);
      expect(left).toHaveLength(1);
      expect(left[0]).toMatchObject({
        type: 'upgrade.auto_canceled',
        actor: 'engine',
        message:
          'canceled automatically after being paused for more than 15d0h; its 1 events and 2 log lines were deleted, 3 nodes were never started',
        data: { events: 1, logLines: 2, skipped: 3, pausedAt: paused.pausedAt },
      });
    });

    it('writes a new upgrade in its start state with its tasks, snapshots and event, in one transaction', async () => {
      const { store } = suite;
      const cluster = await addCluster(store, 'start');
      const [node] = await addNodes(store, cluster.id, ['x1']);
      const id = newId('upg');
      const upgrade: UpgradeRecord = {
        id,
        clusterId: cluster.id,
        component: 'docker',
        toVersion: '26.1.5',
        state: 'BackingUp',
        snapshot: 'before',
        policy: { maxBatchPercent: 10, soakSeconds: 0 },
        total: 1,
        cap: 1,
        rampStart: 0,
        pauseReason: null,
        endReason: null,
        createdBy: 'alice',
        createdAt: AT_ISO,
        pausedAt: null,
        finishedAt: null,
        nextBatchAt: null,
      };
      const start = {
        upgrade,
        tasks: [
          {
            id: newId('nt'),
            upgradeId: id,
            nodeId: node!.id,
            nodeName: 'x1',
            role: 'worker' as const,
            sortKey: 0,
            state: 'pending' as const,
            batchIndex: null,
            attempt: 0,
            startedAt: null,
            finishedAt: null,
            error: null,
            fromVersion: '20.10.24',
            toVersion: '26.1.5',
          },
        ],
        snapshots: [
          {
            id: newId('snap'),
            upgradeId: id,
            nodeId: node!.id,
            nodeName: 'x1',
            state: 'pending' as const,
            ref: null,
            error: null,
            startedAt: null,
            finishedAt: null,
          },
        ],
        event: { type: 'upgrade.started' as const, actor: 'alice', clusterId: cluster.id, upgradeId: id, nodeId: null, message: 'started' },
      };
      await applyStart(store, start);
      expect(await current(store, id)).toEqual(upgrade);
      expect(await store.upgrades.listTasks(id)).toHaveLength(1);
      expect(await store.upgrades.listSnapshots(id)).toHaveLength(1);
      expect((await events(store, id)).map((e) => e.type)).toEqual(['upgrade.started']);
      // A second active upgrade of the cluster is refused, and leaves nothing behind.
      const again = { ...start, upgrade: { ...upgrade, id: newId('upg') }, tasks: [], snapshots: [] };
      await expect(applyStart(store, again)).rejects.toMatchObject({ code: 'UPGRADE_IN_PROGRESS' });
      expect(await store.upgrades.get(again.upgrade.id)).toBeUndefined();
    });
  });
}
