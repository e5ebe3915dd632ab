import { componentDisplayName } from '../domain/components.js';
import { formatDuration } from '../domain/duration.js';
import { ErrorCode, UpshiftError } from '../domain/errors.js';
import { ENGINE_ACTOR, EventType, type NewEvent } from '../domain/events.js';
import { batchSizeLimit, orderNodes, planNextBatch } from '../domain/batch-planner.js';
import { windowStatus } from '../domain/maintenance-window.js';
import type { ClusterRecord, NodeRecord, NodeTaskRecord, NodeTaskState, UpgradeRecord } from '../domain/model.js';
import { decide } from '../domain/upgrade-state.js';
import { applyTransition, type TransitionCause } from './apply-transition.js';
import type { GateChecks } from './gate-checks.js';
import type { NodeTaskRunner } from './node-tasks.js';
import type { Store } from '../store/store.js';
import type { BatchProgress } from '../store/upgrades.js';
import type { EngineContext } from './types.js';
import { isoTime } from './types.js';
import type { UpgradeQueue } from './upgrade-queue.js';

/** A running batch whose nodes have all finished, with their results, not closed yet. */
interface FinishedBatch {
  batch: BatchProgress;
  succeeded: number;
  failed: number;
}

/**
 * What one step of the batch loop knows of its upgrade, read once: the upgrade, its
 * batches, and the batches that finished but are left for `advance` to close in the
 * transaction that starts the next one.
 */
export interface StepView {
  upgrade: UpgradeRecord;
  batches: BatchProgress[];
  finished: FinishedBatch[];
}

/**
 * A new upgrade as its start wrote it (committed): its cluster, its tasks in their order
 * (all pending) and its nodes as read for the start, which its first step would otherwise
 * read back (docs/design.md §8).
 */
export interface NewlyStarted {
  upgrade: UpgradeRecord;
  cluster: ClusterRecord;
  tasks: readonly NodeTaskRecord[];
  nodes: readonly NodeRecord[];
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
   * Finds the batches whose nodes have all finished. An `Upgrading` upgrade without a soak
   * leaves them to `advance`, which closes them in the transaction that starts the next
   * batch when one may start at once: one transaction and one instant between two
   * batches instead of two (on PostgreSQL each is several round trips). Otherwise they
   * are closed here, and the soak starts.
   */
  async close(upgrade: UpgradeRecord): Promise<StepView> {
    const { store } = this.ctx;
    const batches = await store.upgrades.listBatchStates(upgrade.id);
    const finished: FinishedBatch[] = [];
    for (const batch of batches) {
      if (batch.state !== 'running') continue;
      const counts = await store.upgrades.batchTaskCounts(upgrade.id, batch.index);
      if (counts.running === 0) finished.push({ batch, succeeded: counts.succeeded, failed: counts.failed });
    }
    const step = { upgrade, batches, finished };
    if (upgrade.state === 'Upgrading' && upgrade.policy.soakSeconds === 0) return step;
    return this.closeFinished(step);
  }

  /** Closes the step's finished batches in a transaction of their own, and starts the soak. */
  private async closeFinished(step: StepView): Promise<StepView> {
    if (step.finished.length === 0) return step;
    const { store, clock } = this.ctx;
    const { upgrade } = step;
    const finishedAt = clock.now();
    let nextBatchAt = upgrade.nextBatchAt;
    const closed = await store.tx(async (tx) => {
      const { events, closed } = await this.closeIn(tx, upgrade, step.finished, finishedAt);
      await tx.events.appendMany(events);
      const soak = upgrade.policy.soakSeconds;
      if (closed.length > 0 && soak > 0 && upgrade.state === 'Upgrading' && (await tx.upgrades.taskCounts(upgrade.id)).pending > 0) {
        const at = isoTime(finishedAt + soak * 1000);
        if (await tx.upgrades.casState(upgrade.id, 'Upgrading', { nextBatchAt: at })) nextBatchAt = at;
      }
      return closed;
    });
    return { upgrade: { ...upgrade, nextBatchAt }, batches: this.afterClosing(step, closed, finishedAt), finished: [] };
  }

  /**
   * Closes finished batches by compare-and-set on `running` in the transaction `tx`, at
   * `finishedAt`; returns their events, to be written with the transaction's others, and
   * the batches it closed (one closed already elsewhere is left out).
   */
  private async closeIn(
    tx: Store,
    upgrade: UpgradeRecord,
    finished: readonly FinishedBatch[],
    finishedAt: number,
  ): Promise<{ events: NewEvent[]; closed: readonly FinishedBatch[] }> {
    const events: NewEvent[] = [];
    const closed: FinishedBatch[] = [];
    for (const item of finished) {
      const { batch, succeeded, failed } = item;
      if (!(await tx.upgrades.finishBatch(upgrade.id, batch.index, failed > 0 ? 'failed' : 'succeeded', isoTime(finishedAt)))) continue;
      const seconds = (finishedAt - Date.parse(batch.startedAt)) / 1000;
      events.push({
        type: EventType.batchFinished,
        actor: ENGINE_ACTOR,
        clusterId: upgrade.clusterId,
        upgradeId: upgrade.id,
        nodeId: null,
        message: `batch ${batch.index + 1} finished in ${formatDuration(seconds * 1000)}: ${succeeded} succeeded, ${failed} failed`,
        data: { index: batch.index, size: batch.size, succeeded, failed, seconds },
      });
      closed.push(item);
    }
    return { events, closed };
  }

  /** The step's batches once `closed` are closed at `finishedAt` (committed), told to the observer. */
  private afterClosing(step: StepView, closed: readonly FinishedBatch[], finishedAt: number): BatchProgress[] {
    const byIndex = new Map(closed.map((c) => [c.batch.index, c]));
    for (const { batch } of closed) {
      this.ctx.observer?.batchFinished(step.upgrade.component, (finishedAt - Date.parse(batch.startedAt)) / 1000);
    }
    return step.batches.map((b) => {
      const c = byIndex.get(b.index);
      return c ? { ...b, state: c.failed > 0 ? 'failed' : 'succeeded', finishedAt: isoTime(finishedAt) } : b;
    });
  }

  /**
   * With no batch or node running: pauses on a failed node, completes, waits out the
   * soak, or starts the next batch. `step` is what `close` read and wrote in this step;
   * every write here is a compare-and-set, so a change made meanwhile elsewhere (a pause
   * on another replica) makes it write nothing.
   */
  async advance(found: StepView, known?: NewlyStarted): Promise<void> {
    const { store, clock } = this.ctx;
    const { upgrade, batches } = found;
    if (upgrade.state !== 'Upgrading') return;
    // Unless the next batch starts now (and closes them), the finished batches are closed first.
    const closeFirst = async () => void (await this.closeFinished(found));
    const closing = new Set(found.finished.map((f) => f.batch.index));
    if (batches.some((b) => b.state === 'running' && !closing.has(b.index))) return closeFirst();
    const counts = known ? allPending(known.tasks.length) : await store.upgrades.taskCounts(upgrade.id);
    if (counts.running > 0) return closeFirst();
    if (counts.pending === 0) {
      const [failed] = counts.failed > 0 ? await store.upgrades.listTasks(upgrade.id, 'failed', 1) : [];
      const command = failed
        ? { type: 'nodeFailed' as const, nodeId: failed.nodeId, message: failed.error ?? 'a node failed' }
        : { type: 'allSucceeded' as const };
      const cause: TransitionCause = command;
      const transition = decide({ state: upgrade.state, unstartedNodes: 0 }, command);
      if (!transition.ok) return closeFirst();
      // The last batch closes in the transaction that pauses or completes the upgrade, at the same instant.
      const now = clock.now();
      const closed = await store.tx(async (tx) => {
        const { events, closed } = await this.closeIn(tx, upgrade, found.finished, now);
        await tx.events.appendMany(events);
        await applyTransition(tx, upgrade, transition, cause, now);
        return closed;
      });
      this.afterClosing(found, closed, now);
      if (cause.type === 'allSucceeded') this.deps.queue.cancelWake(upgrade.id);
      return;
    }
    if (upgrade.nextBatchAt !== null) {
      const at = Date.parse(upgrade.nextBatchAt);
      if (at > clock.now()) {
        await closeFirst();
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
        await closeFirst();
        this.deps.queue.wakeAt(upgrade.id, status.opensAt);
        return;
      }
    }
    const cluster = known?.cluster ?? (await store.clusters.get(upgrade.clusterId));
    if (!cluster) return closeFirst();
    // The health gates, checked off this queue: a check under way, or one failing within its retry time, waits.
    const verdict = this.deps.gates.before(upgrade, cluster, batches.length);
    if (verdict.kind === 'wait') return closeFirst();
    if (verdict.kind === 'fail') {
      await closeFirst();
      const { gate, gateIndex, message } = verdict;
      const transition = decide({ state: upgrade.state, unstartedNodes: counts.pending }, { type: 'gateFailed', message });
      if (transition.ok) await applyTransition(store, upgrade, transition, { type: 'gateFailed', gate, gateIndex, message }, clock.now());
      return;
    }
    await this.start(upgrade, cluster, batches.length, now, found.finished, verdict.events, known).catch((error: unknown) => {
      this.deps.gates.record(upgrade.id, verdict.events);
      throw error;
    });
  }

  /**
   * A new upgrade's first step, from what its start wrote instead of reading it back: no
   * batch yet and every task pending, so that the first batch starts in one transaction
   * after the start's (docs/design.md §8). Every write is the same compare-and-set as in
   * `advance`: a pause that landed first still wins.
   */
  advanceNew(started: NewlyStarted): Promise<void> {
    return this.advance({ upgrade: started.upgrade, batches: [], finished: [] }, started);
  }

  /**
   * Plans batch `index` from the pending tasks, starts its tasks by compare-and-set and
   * dispatches them. The tasks are stored in the planner's order (their sort key), so the
   * first pending ones the batch may hold are all it needs to read (or, for a new
   * upgrade, to take from `known`). `gateEvents` (the passing checks before it) are
   * written in the same transaction, also when a pause won.
   */
  private async start(
    upgrade: UpgradeRecord,
    cluster: ClusterRecord,
    index: number,
    now: number,
    finished: readonly FinishedBatch[],
    gateEvents: readonly NewEvent[],
    known: NewlyStarted | undefined,
  ): Promise<void> {
    const { store } = this.ctx;
    const k = index - upgrade.rampStart;
    const limit = batchSizeLimit(k, upgrade.cap);
    const pending = known ? known.tasks.slice(0, limit) : await store.upgrades.listTasks(upgrade.id, 'pending', limit);
    const plannable = pending.map((task) => ({ id: task.nodeId, name: task.nodeName, role: task.role, task }));
    const chosen = planNextBatch(orderNodes(plannable), k, upgrade.cap).map((p) => p.task);
    const startedAt = isoTime(now);
    const chosenIds = chosen.map((t) => t.nodeId);
    const wanted = new Set(chosenIds);
    const chosenNodes = known ? known.nodes.filter((n) => wanted.has(n.id)) : await store.nodes.getMany(chosenIds);
    const nodes = new Map(chosenNodes.map((n) => [n.id, n]));
    const { started, closed } = await store.tx(async (tx) => {
      // The batches that finished close at the instant this one starts, in its transaction.
      const { events: closing, closed } = await this.closeIn(tx, upgrade, finished, now);
      // The guard: a pause that landed meanwhile (here or on another replica) wins; the finished batches still close.
      if (!(await tx.upgrades.casState(upgrade.id, 'Upgrading', { nextBatchAt: null }))) {
        await tx.events.appendMany([...closing, ...gateEvents]);
        return { started: [], closed };
      }
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
      // The events go in one insert: the closed batches', the gates', then this batch's, then its nodes'.
      const events: NewEvent[] = [
        ...closing,
        ...gateEvents,
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
      return { started: out, closed };
    });
    this.afterClosing({ upgrade, batches: [], finished: [] }, closed, now);
    for (const task of started) this.deps.tasks.dispatch(upgrade, task, false, { cluster, node: nodes.get(task.nodeId) });
  }
}

/** Task counts of an upgrade whose `n` tasks are all pending. */
function allPending(n: number): Record<NodeTaskState, number> {
  return { pending: n, running: 0, succeeded: 0, failed: 0, skipped: 0 };
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
