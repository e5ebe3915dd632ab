import { componentDisplayName } from '../domain/components.js';
import { formatDuration } from '../domain/duration.js';
import { ErrorCode, UpshiftError } from '../domain/errors.js';
import { ENGINE_ACTOR, EventType, type NewEvent } from '../domain/events.js';
import { batchSizeLimit, orderNodes, planNextBatch } from '../domain/batch-planner.js';
import { windowStatus } from '../domain/maintenance-window.js';
import type { ClusterRecord, NodeRecord, NodeTaskRecord, UpgradeRecord } from '../domain/model.js';
import { decide } from '../domain/upgrade-state.js';
import { applyTransition } from './apply-transition.js';
import type { GateChecks } from './gate-checks.js';
import type { NodeTaskRunner } from './node-tasks.js';
import type { BatchProgress } from '../store/upgrades.js';
import type { EngineContext } from './types.js';
import { isoTime } from './types.js';
import type { UpgradeQueue } from './upgrade-queue.js';

/** What one step of the batch loop knows of its upgrade: the upgrade and its batches, read once. */
export interface StepView {
  upgrade: UpgradeRecord;
  batches: BatchProgress[];
}

/**
 * The `Upgrading` phase, one batch at a time: a batch closes when all its nodes have
 * finished (its event, then the soak before the next one); the next batch is planned
 * from the pending nodes (`planNextBatch`: the ramp from 1 up to the cap), started by
 * compare-and-set with an event per node and handed to the node task runner. With no
 * node left, a failed one pauses the upgrade and otherwise it is complete (both through
 * `applyTransition`). Before a batch starts: the soak, the maintenance window, then the
 * health gates (`GateChecks`; one that keeps failing pauses the upgrade).
 */
export class BatchPhase {
  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: { queue: UpgradeQueue; tasks: NodeTaskRunner; gates: GateChecks },
  ) {}

  /**
   * Closes every batch whose nodes have all finished, and starts the soak. Returns the
   * upgrade and its batches as they stand after it, for the rest of the step (`advance`):
   * read once a step, since on PostgreSQL every read is a round trip between two batches.
   */
  async close(upgrade: UpgradeRecord): Promise<StepView> {
    const { store, clock } = this.ctx;
    const batches = await store.upgrades.listBatchStates(upgrade.id);
    let nextBatchAt = upgrade.nextBatchAt;
    for (const [position, batch] of batches.entries()) {
      if (batch.state !== 'running') continue;
      const counts = await store.upgrades.batchTaskCounts(upgrade.id, batch.index);
      if (counts.running > 0) continue;
      const failed = counts.failed;
      const succeeded = counts.succeeded;
      const finishedAt = clock.now();
      const seconds = (finishedAt - Date.parse(batch.startedAt)) / 1000;
      const state = failed > 0 ? 'failed' : 'succeeded';
      const closed = await store.tx(async (tx) => {
        if (!(await tx.upgrades.finishBatch(upgrade.id, batch.index, state, isoTime(finishedAt)))) return false;
        await tx.events.append({
          type: EventType.batchFinished,
          actor: ENGINE_ACTOR,
          clusterId: upgrade.clusterId,
          upgradeId: upgrade.id,
          nodeId: null,
          message: `batch ${batch.index + 1} finished in ${formatDuration(seconds * 1000)}: ${succeeded} succeeded, ${failed} failed`,
          data: { index: batch.index, size: batch.size, succeeded, failed, seconds },
        });
        const soak = upgrade.policy.soakSeconds;
        if (soak > 0 && upgrade.state === 'Upgrading' && (await tx.upgrades.taskCounts(upgrade.id)).pending > 0) {
          const at = isoTime(finishedAt + soak * 1000);
          if (await tx.upgrades.casState(upgrade.id, 'Upgrading', { nextBatchAt: at })) nextBatchAt = at;
        }
        return true;
      });
      if (closed) {
        batches[position] = { ...batch, state, finishedAt: isoTime(finishedAt) };
        this.ctx.observer?.batchFinished(upgrade.component, seconds);
      }
    }
    return { upgrade: { ...upgrade, nextBatchAt }, batches };
  }

  /**
   * With no batch or node running: pauses on a failed node, completes, waits out the
   * soak, or starts the next batch. `step` is what `close` read and wrote in this step;
   * every write here is a compare-and-set, so a change made meanwhile elsewhere (a pause
   * on another replica) makes it write nothing.
   */
  async advance(step: StepView): Promise<void> {
    const { store, clock } = this.ctx;
    const { upgrade, batches } = step;
    if (upgrade.state !== 'Upgrading') return;
    if (batches.some((b) => b.state === 'running')) return;
    const counts = await store.upgrades.taskCounts(upgrade.id);
    if (counts.running > 0) return;
    if (counts.pending === 0) {
      const [failed] = counts.failed > 0 ? await store.upgrades.listTasks(upgrade.id, 'failed', 1) : [];
      if (failed) {
        const message = failed.error ?? 'a node failed';
        const transition = decide({ state: upgrade.state, unstartedNodes: 0 }, { type: 'nodeFailed', nodeId: failed.nodeId, message });
        if (transition.ok)
          await applyTransition(store, upgrade, transition, { type: 'nodeFailed', nodeId: failed.nodeId, message }, clock.now());
        return;
      }
      const transition = decide({ state: upgrade.state, unstartedNodes: 0 }, { type: 'allSucceeded' });
      if (!transition.ok) return;
      await applyTransition(store, upgrade, transition, { type: 'allSucceeded' }, clock.now());
      this.deps.queue.cancelWake(upgrade.id);
      return;
    }
    if (upgrade.nextBatchAt !== null) {
      const at = Date.parse(upgrade.nextBatchAt);
      if (at > clock.now()) {
        this.deps.queue.wakeAt(upgrade.id, at);
        return;
      }
    }
    // Only the start of a batch waits for the maintenance window; a running batch finishes.
    // The batch starts at the instant the window was checked at, never a moment after.
    const now = clock.now();
    const window = upgrade.policy.window;
    if (window) {
      const status = windowStatus(window, now);
      if (!status.open) {
        this.deps.queue.wakeAt(upgrade.id, status.opensAt);
        return;
      }
    }
    const cluster = await store.clusters.get(upgrade.clusterId);
    if (!cluster) return;
    // The health gates, checked off this queue: a check under way, or one failing within its retry time, waits.
    const verdict = this.deps.gates.before(upgrade, cluster, batches.length);
    if (verdict.kind === 'wait') return;
    if (verdict.kind === 'fail') {
      const { gate, gateIndex, message } = verdict;
      const transition = decide({ state: upgrade.state, unstartedNodes: counts.pending }, { type: 'gateFailed', message });
      if (transition.ok) await applyTransition(store, upgrade, transition, { type: 'gateFailed', gate, gateIndex, message }, clock.now());
      return;
    }
    await this.start(upgrade, cluster, batches.length, now);
  }

  /**
   * Plans batch `index` from the pending tasks, starts its tasks by compare-and-set and
   * dispatches them. The tasks are stored in the planner's order (their sort key), so the
   * first pending ones the batch may hold are all it needs to read.
   */
  private async start(upgrade: UpgradeRecord, cluster: ClusterRecord, index: number, now: number): Promise<void> {
    const { store } = this.ctx;
    const k = index - upgrade.rampStart;
    const pending = await store.upgrades.listTasks(upgrade.id, 'pending', batchSizeLimit(k, upgrade.cap));
    const plannable = pending.map((task) => ({ id: task.nodeId, name: task.nodeName, role: task.role, task }));
    const chosen = planNextBatch(orderNodes(plannable), k, upgrade.cap).map((p) => p.task);
    const startedAt = isoTime(now);
    const nodes = new Map((await store.nodes.getMany(chosen.map((t) => t.nodeId))).map((n) => [n.id, n]));
    const started = await store.tx(async (tx) => {
      // The guard: a pause that landed meanwhile (here or on another replica) wins.
      if (!(await tx.upgrades.casState(upgrade.id, 'Upgrading', { nextBatchAt: null }))) return [];
      await tx.upgrades.insertBatch({
        upgradeId: upgrade.id,
        index,
        size: chosen.length,
        state: 'running',
        nodeIds: chosen.map((t) => t.nodeId),
        startedAt,
        finishedAt: null,
      });
      const out: NodeTaskRecord[] = [];
      // The batch's event and its nodes' go in one insert, the batch's first.
      const events: NewEvent[] = [
        {
          type: EventType.batchStarted,
          actor: ENGINE_ACTOR,
          clusterId: upgrade.clusterId,
          upgradeId: upgrade.id,
          nodeId: null,
          message: `batch ${index + 1} started: ${chosen.length} node${chosen.length === 1 ? '' : 's'} (${chosen.map((t) => t.nodeName).join(', ')})`,
          data: { index, size: chosen.length, nodes: chosen.map((t) => t.nodeName) },
        },
      ];
      for (const group of groupByAttemptAndVersion(upgrade, chosen, nodes)) {
        const first = group[0] as NodeTaskRecord;
        const attempt = first.attempt + 1;
        const moved = await tx.upgrades.casTasks(
          group.map((t) => t.id),
          'pending',
          first.attempt,
          { state: 'running', attempt, batchIndex: index, startedAt, finishedAt: null, error: null, fromVersion: first.fromVersion },
        );
        if (moved.size !== group.length) {
          throw new UpshiftError(ErrorCode.INTERNAL, `node tasks of batch ${index + 1} changed while it was being started`, {
            retryable: true,
          });
        }
        for (const task of group) {
          events.push({
            type: EventType.nodeStarted,
            actor: ENGINE_ACTOR,
            clusterId: upgrade.clusterId,
            upgradeId: upgrade.id,
            nodeId: task.nodeId,
            message: `${task.nodeName}: ${componentDisplayName[upgrade.component]} ${task.fromVersion ?? '(none)'} → ${upgrade.toVersion}${attempt > 1 ? ` (attempt ${attempt})` : ''}`,
            data: { attempt, batchIndex: index },
          });
          out.push({ ...task, state: 'running', attempt, batchIndex: index, startedAt, error: null, finishedAt: null });
        }
      }
      await tx.events.appendMany(events);
      return out;
    });
    for (const task of started) this.deps.tasks.dispatch(upgrade, task, false, { cluster, node: nodes.get(task.nodeId) });
  }
}

/**
 * The chosen tasks with the version each node runs now, grouped by (attempt, that
 * version): one compare-and-set per group starts them, not one per node.
 */
function groupByAttemptAndVersion(upgrade: UpgradeRecord, chosen: NodeTaskRecord[], nodes: Map<string, NodeRecord>): NodeTaskRecord[][] {
  const groups = new Map<string, NodeTaskRecord[]>();
  for (const task of chosen) {
    const fromVersion = nodes.get(task.nodeId)?.versions[upgrade.component] ?? task.fromVersion;
    const key = JSON.stringify([task.attempt, fromVersion]);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push({ ...task, fromVersion });
  }
  return [...groups.values()];
}
