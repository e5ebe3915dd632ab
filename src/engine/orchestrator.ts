import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { type ComponentVersions, componentDisplayName } from '../domain/components.js';
import { ErrorCode, UpshiftError, errorMessage } from '../domain/errors.js';
import { ENGINE_ACTOR, EventType, type NewEvent } from '../domain/events.js';
import { orderNodes, planNextBatch } from '../domain/batch-planner.js';
import type { ClusterRecord, NodeRecord, NodeTaskRecord, SnapshotRecord, UpgradeRecord } from '../domain/model.js';
import type { ClusterDriver, NodeTaskOutcome, SnapshotOutcome } from '../domain/ports.js';
import { decide } from '../domain/upgrade-state.js';
import { formatDuration } from '../domain/duration.js';
import type { Store } from '../store/store.js';
import { applyTransition } from './apply-transition.js';
import type { EngineOptions, Logger } from './types.js';
import { silentLogger } from './types.js';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Drives every active upgrade forward. All work on one upgrade runs through one queue
 * (`exclusive`), so that a node's outcome, an operator's command and the batch loop
 * never interleave inside this process; across processes every write is a
 * compare-and-set, so a lost race changes nothing.
 *
 * It is restart-safe by construction: the database holds the whole truth, `start()`
 * reattaches to every task and snapshot that was running (drivers are idempotent per
 * task key), and `advance` only ever derives the next step from what is stored.
 */
export class Orchestrator {
  private readonly store: Store;
  private readonly log: Logger;
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly kicked = new Set<string>();
  private readonly timers = new Map<string, { at: number; cancel: () => void }>();
  private readonly inflight = new Map<string, Promise<void>>();
  private abort = new AbortController();
  private running = false;
  private inventoryTimer: (() => void) | undefined;

  constructor(private readonly options: EngineOptions) {
    this.store = options.store;
    this.log = options.logger ?? silentLogger;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** This replica's name in leases: host, process and a random part. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  /** Upgrades this replica holds the lease of and therefore drives. */
  private readonly owned = new Set<string>();
  private leaseTimer: (() => void) | undefined;
  private stopListening: (() => Promise<void>) | undefined;
  private readonly onRemoteEvent = (event: { upgradeId: string | null }) => {
    // Another replica changed an upgrade this one drives (a pause, a resume): act now.
    if (event.upgradeId && this.owned.has(event.upgradeId)) this.kick(event.upgradeId);
  };

  private get leaseTtlMs(): number {
    return this.options.leaseTtlMs ?? 15_000;
  }

  /**
   * Claims the upgrades no live replica drives and picks each up where the database
   * says it is: running nodes and snapshots are reattached, then it is advanced.
   * Idempotent.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    // Every running task listens on the one signal; thousands may run at once.
    setMaxListeners(0, this.abort.signal);
    this.store.bus.on('remote-event', this.onRemoteEvent);
    this.stopListening = this.store.events.listenToReplicas((error) =>
      this.log.warn({ err: error }, 'listening to other replicas failed; retrying'),
    );
    await this.leaseTick();
    this.scheduleLeases();
    this.scheduleInventory();
    this.scheduleLogFlush();
  }

  private scheduleLeases(): void {
    if (!this.running) return;
    this.leaseTimer = this.options.clock.setTimer(Math.max(200, Math.floor(this.leaseTtlMs / 3)), () => {
      void this.leaseTick()
        .catch((error: unknown) => this.log.warn({ err: error }, 'renewing upgrade leases failed; retrying'))
        .finally(() => this.scheduleLeases());
    });
  }

  /** Renews this replica's leases, takes over expired ones, lets go of lost ones. */
  private async leaseTick(only?: string): Promise<void> {
    // Expiry is by the database's clock (leases.ts), so replicas need not agree on the time.
    const claimed = await this.store.leases.claim(this.owner, this.leaseTtlMs, only);
    if (!this.running) return;
    if (!only) {
      const held = new Set(claimed);
      for (const id of [...this.owned]) {
        if (held.has(id)) continue;
        this.owned.delete(id);
        this.clearTimer(id);
      }
    }
    for (const id of claimed) {
      if (this.owned.has(id)) continue;
      this.owned.add(id);
      await this.recover(id);
      this.kick(id);
    }
  }

  /** Reattaches the running nodes and snapshots of an upgrade this replica just took. */
  private async recover(upgradeId: string): Promise<void> {
    const upgrade = await this.store.upgrades.get(upgradeId);
    if (!upgrade) return;
    for (const task of await this.store.upgrades.listTasks(upgradeId, 'running')) this.dispatchTask(upgrade, task, true);
    for (const snapshot of (await this.store.upgrades.listSnapshots(upgradeId)).filter((s) => s.state === 'running')) {
      this.dispatchSnapshot(upgrade, snapshot);
    }
  }

  private logTimer: (() => void) | undefined;

  private scheduleLogFlush(): void {
    if (!this.running) return;
    this.logTimer = this.options.clock.setTimer(250, () => {
      void this.flushLogs().finally(() => this.scheduleLogFlush());
    });
  }

  /**
   * Stops dispatching and waits for the queued steps. Node tasks are not interrupted
   * on the nodes: they are reattached by the next `start()`.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort.abort(new UpshiftError(ErrorCode.INTERNAL, 'the engine is stopping', { retryable: true }));
    this.leaseTimer?.();
    this.store.bus.off('remote-event', this.onRemoteEvent);
    await this.stopListening?.();
    this.inventoryTimer?.();
    this.logTimer?.();
    for (const timer of this.timers.values()) timer.cancel();
    this.timers.clear();
    await Promise.allSettled([...this.queues.values()]);
    await Promise.allSettled([...this.inflight.values()]);
    await this.flushLogs();
    // Hand the upgrades over at once instead of when the leases expire.
    await this.store.leases.release(this.owner).catch((error: unknown) => this.log.warn({ err: error }, 'releasing leases failed'));
    this.owned.clear();
  }

  /** Runs `fn` after everything already queued for this upgrade. */
  exclusive<T>(upgradeId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(upgradeId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.queues.set(upgradeId, settled);
    void settled.then(() => {
      if (this.queues.get(upgradeId) === settled) this.queues.delete(upgradeId);
    });
    return next;
  }

  /**
   * Asks for the upgrade to be advanced soon; several kicks before it runs count once.
   * An upgrade another replica drives is left to it (a new one is claimed first).
   */
  kick(upgradeId: string): void {
    if (!this.running) return;
    if (!this.owned.has(upgradeId)) {
      void this.leaseTick(upgradeId).catch((error: unknown) => this.log.warn({ err: error, upgradeId }, 'claiming the upgrade failed'));
      return;
    }
    if (this.kicked.has(upgradeId)) return;
    this.kicked.add(upgradeId);
    this.exclusive(upgradeId, async () => {
      this.kicked.delete(upgradeId);
      if (!this.running || !this.owned.has(upgradeId)) return;
      await this.advance(upgradeId);
    }).catch((error: unknown) => {
      this.log.error({ err: error, upgradeId }, 'advancing the upgrade failed; retrying in 2 s');
      this.setTimer(upgradeId, this.options.clock.now() + 2000);
    });
  }

  private setTimer(upgradeId: string, at: number): void {
    const existing = this.timers.get(upgradeId);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const cancel = this.options.clock.setTimer(at - this.options.clock.now(), () => {
      this.timers.delete(upgradeId);
      this.kick(upgradeId);
    });
    this.timers.set(upgradeId, { at, cancel });
  }

  private clearTimer(upgradeId: string): void {
    this.timers.get(upgradeId)?.cancel();
    this.timers.delete(upgradeId);
  }

  private driverFor(cluster: ClusterRecord): ClusterDriver {
    const driver = this.options.drivers[cluster.kind];
    if (!driver) throw new UpshiftError(ErrorCode.NOT_SUPPORTED, `no driver for clusters of kind ${cluster.kind}`);
    return driver;
  }

  private now(): number {
    return this.options.clock.now();
  }

  /** One step: derive from the stored state what must happen next, and do it. */
  private async advance(upgradeId: string): Promise<void> {
    const upgrade = await this.store.upgrades.get(upgradeId);
    if (!upgrade) return;
    await this.closeBatches(upgrade);
    switch (upgrade.state) {
      case 'BackingUp':
        await this.advanceSnapshots(upgrade);
        return;
      case 'SnapshotFailed':
        return;
      case 'Upgrading':
        await this.advanceBatches(upgrade);
        return;
      case 'Paused':
        await this.checkPausedTtl(upgrade);
        return;
      case 'Canceled':
      case 'Completed':
        this.clearTimer(upgradeId);
        return;
      default: {
        const never: never = upgrade.state;
        return never;
      }
    }
  }

  /** Closes every batch whose nodes have all finished, and starts the soak. */
  private async closeBatches(upgrade: UpgradeRecord): Promise<void> {
    const batches = (await this.store.upgrades.listBatches(upgrade.id)).filter((b) => b.state === 'running');
    for (const batch of batches) {
      const counts = await this.store.upgrades.batchTaskCounts(upgrade.id, batch.index);
      if (counts.running > 0) continue;
      const failed = counts.failed;
      const succeeded = counts.succeeded;
      const finishedAt = this.now();
      const seconds = (finishedAt - Date.parse(batch.startedAt)) / 1000;
      const closed = await this.store.tx(async (tx) => {
        if (!(await tx.upgrades.finishBatch(upgrade.id, batch.index, failed > 0 ? 'failed' : 'succeeded', iso(finishedAt)))) return false;
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
          await tx.upgrades.casState(upgrade.id, 'Upgrading', { nextBatchAt: iso(finishedAt + soak * 1000) });
        }
        return true;
      });
      if (closed) this.options.observer?.batchFinished(upgrade.component, seconds);
    }
  }

  private async advanceBatches(stale: UpgradeRecord): Promise<void> {
    const upgrade = (await this.store.upgrades.get(stale.id)) ?? stale;
    if (upgrade.state !== 'Upgrading') return;
    const batches = await this.store.upgrades.listBatches(upgrade.id);
    if (batches.some((b) => b.state === 'running')) return;
    const tasks = await this.store.upgrades.listTasks(upgrade.id);
    if (tasks.some((t) => t.state === 'running')) return;
    const pending = tasks.filter((t) => t.state === 'pending');
    if (pending.length === 0) {
      const failed = tasks.find((t) => t.state === 'failed');
      if (failed) {
        await this.autoPause(upgrade, failed.nodeId, failed.error ?? 'a node failed');
        return;
      }
      await this.complete(upgrade);
      return;
    }
    if (upgrade.nextBatchAt !== null) {
      const at = Date.parse(upgrade.nextBatchAt);
      if (at > this.now()) {
        this.setTimer(upgrade.id, at);
        return;
      }
    }
    const cluster = await this.store.clusters.get(upgrade.clusterId);
    if (!cluster) return;
    const index = batches.length;
    const plannable = pending.map((task) => ({ id: task.nodeId, name: task.nodeName, role: task.role, task }));
    const chosen = planNextBatch(orderNodes(plannable), index - upgrade.rampStart, upgrade.cap).map((p) => p.task);
    const startedAt = this.now();
    const nodes = new Map((await this.store.nodes.getMany(chosen.map((t) => t.nodeId))).map((n) => [n.id, n]));
    const started = await this.store.tx(async (tx) => {
      // The guard: a pause that landed meanwhile (here or on another replica) wins.
      if (!(await tx.upgrades.casState(upgrade.id, 'Upgrading', { nextBatchAt: null }))) return [];
      await tx.upgrades.insertBatch({
        upgradeId: upgrade.id,
        index,
        size: chosen.length,
        state: 'running',
        nodeIds: chosen.map((t) => t.nodeId),
        startedAt: iso(startedAt),
        finishedAt: null,
      });
      await tx.events.append({
        type: EventType.batchStarted,
        actor: ENGINE_ACTOR,
        clusterId: upgrade.clusterId,
        upgradeId: upgrade.id,
        nodeId: null,
        message: `batch ${index + 1} started: ${chosen.length} node${chosen.length === 1 ? '' : 's'} (${chosen.map((t) => t.nodeName).join(', ')})`,
        data: { index, size: chosen.length, nodes: chosen.map((t) => t.nodeName) },
      });
      const out: NodeTaskRecord[] = [];
      const events: NewEvent[] = [];
      // One compare-and-set per (attempt, previous version) group, not one per node.
      const groups = new Map<string, NodeTaskRecord[]>();
      for (const task of chosen) {
        const fromVersion = nodes.get(task.nodeId)?.versions[upgrade.component] ?? task.fromVersion;
        const key = JSON.stringify([task.attempt, fromVersion]);
        let group = groups.get(key);
        if (!group) groups.set(key, (group = []));
        group.push({ ...task, fromVersion });
      }
      for (const group of groups.values()) {
        const first = group[0] as NodeTaskRecord;
        const attempt = first.attempt + 1;
        const moved = await tx.upgrades.casTasks(
          group.map((t) => t.id),
          'pending',
          first.attempt,
          {
            state: 'running',
            attempt,
            batchIndex: index,
            startedAt: iso(startedAt),
            finishedAt: null,
            error: null,
            fromVersion: first.fromVersion,
          },
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
          out.push({ ...task, state: 'running', attempt, batchIndex: index, startedAt: iso(startedAt), error: null, finishedAt: null });
        }
      }
      await tx.events.appendMany(events);
      return out;
    });
    for (const task of started) this.dispatchTask(upgrade, task, false, { cluster, node: nodes.get(task.nodeId) });
  }

  /** Hands a running task to its driver (or reattaches to it) and records the outcome. */
  private dispatchTask(
    upgrade: UpgradeRecord,
    task: NodeTaskRecord,
    reattach: boolean,
    known: { cluster?: ClusterRecord | undefined; node?: NodeRecord | undefined } = {},
  ): void {
    const key = `${task.id}.${task.attempt}`;
    if (this.inflight.has(key)) return;
    const signal = this.abort.signal;
    const work = (async () => {
      const cluster = known.cluster ?? (await this.store.clusters.get(upgrade.clusterId));
      const node = known.node ?? (await this.store.nodes.get(task.nodeId));
      const log = (line: string) => this.logs.push({ upgradeId: upgrade.id, nodeTaskId: task.id, at: iso(this.now()), line });
      let outcome: NodeTaskOutcome;
      try {
        if (!cluster || !node) throw new UpshiftError(ErrorCode.NOT_FOUND, 'the node or its cluster was removed during the upgrade');
        if (reattach) log(`reattaching to attempt ${task.attempt} after a restart of the control plane`);
        outcome = await this.driverFor(cluster).runNodeTask(
          cluster,
          {
            taskKey: key,
            nodeTaskId: task.id,
            upgradeId: upgrade.id,
            node,
            component: upgrade.component,
            fromVersion: task.fromVersion,
            toVersion: upgrade.toVersion,
            attempt: task.attempt,
            startedAt: task.startedAt ?? iso(this.now()),
            catalog: this.options.catalog,
          },
          { log, signal },
        );
      } catch (error) {
        if (signal.aborted) return;
        outcome = { result: 'failed', error: errorMessage(error) };
      }
      if (signal.aborted) return;
      await this.recordOutcome(upgrade, task, outcome);
    })()
      .catch((error: unknown) => {
        this.log.error({ err: error, taskId: task.id }, 'recording a node outcome failed; it will be reattached at the next start');
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, work);
  }

  /** Node log lines wait here briefly and are written many at a time. */
  private logs: Array<{ upgradeId: string; nodeTaskId: string; at: string; line: string }> = [];
  private logFlush: Promise<void> = Promise.resolve();

  private flushLogs(): Promise<void> {
    this.logFlush = this.logFlush.then(async () => {
      const rows = this.logs;
      if (rows.length === 0) return;
      this.logs = [];
      await this.store.logs.append(rows).catch((error: unknown) => this.log.warn({ err: error }, 'could not store node log lines'));
    });
    return this.logFlush;
  }

  /**
   * Outcomes that arrive together (a batch finishing) are recorded in one transaction
   * and followed by one advance, so a batch of a hundred nodes costs one step, not a
   * hundred.
   */
  private readonly outcomes = new Map<
    string,
    Array<{ task: NodeTaskRecord; outcome: NodeTaskOutcome; done: () => void; fail: (error: unknown) => void }>
  >();

  private recordOutcome(upgrade: UpgradeRecord, task: NodeTaskRecord, outcome: NodeTaskOutcome): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let queue = this.outcomes.get(upgrade.id);
      const first = !queue;
      if (!queue) this.outcomes.set(upgrade.id, (queue = []));
      queue.push({ task, outcome, done: resolve, fail: reject });
      if (!first) return;
      let items: Array<{ done: () => void; fail: (error: unknown) => void }> = [];
      this.exclusive(upgrade.id, async () => {
        // Nodes of a batch finish within milliseconds of each other: gather them.
        await new Promise((r) => setTimeout(r, 2));
        await this.flushLogs();
        const taken = this.outcomes.get(upgrade.id) ?? [];
        items = taken;
        this.outcomes.delete(upgrade.id);
        const recorded = await this.store.tx((tx) => this.recordMany(tx, upgrade, taken));
        for (const result of recorded) this.options.observer?.nodeTaskFinished(upgrade.component, result);
        for (const item of taken) item.done();
      }).then(
        () => this.kick(upgrade.id),
        (error: unknown) => {
          for (const item of items) item.fail(error);
        },
      );
    });
  }

  /**
   * Records the outcomes of many nodes in a few statements: a compare-and-set per
   * (result, attempt, error) group, the new versions per group of identical versions,
   * the events in one insert, and at most one automatic pause.
   */
  private async recordMany(
    tx: Store,
    upgrade: UpgradeRecord,
    items: Array<{ task: NodeTaskRecord; outcome: NodeTaskOutcome }>,
  ): Promise<Array<'succeeded' | 'failed'>> {
    const finishedAt = iso(this.now());
    const groups = new Map<string, Array<{ task: NodeTaskRecord; outcome: NodeTaskOutcome }>>();
    for (const item of items) {
      const error = item.outcome.result === 'failed' ? (item.outcome.error ?? 'failed without a reason') : null;
      const key = JSON.stringify([item.outcome.result, item.task.attempt, error]);
      let group = groups.get(key);
      if (!group) groups.set(key, (group = []));
      group.push(item);
    }
    const won: Array<{ task: NodeTaskRecord; outcome: NodeTaskOutcome }> = [];
    for (const group of groups.values()) {
      const first = group[0] as { task: NodeTaskRecord; outcome: NodeTaskOutcome };
      const moved = await tx.upgrades.casTasks(
        group.map((i) => i.task.id),
        'running',
        first.task.attempt,
        {
          state: first.outcome.result,
          finishedAt,
          error: first.outcome.result === 'failed' ? (first.outcome.error ?? 'failed without a reason') : null,
        },
      );
      for (const item of group) if (moved.has(item.task.id)) won.push(item);
    }
    // A node's versions follow what it reports, whether its task succeeded or failed (a
    // rollback, or a success the agent driver refused because the node runs another
    // version); a success without a report (simulated, Kubernetes) means the target.
    const reporting = won.filter((i) => i.outcome.result === 'succeeded' || Object.keys(i.outcome.versions ?? {}).length > 0);
    const nodes = new Map((await tx.nodes.getMany(reporting.map((i) => i.task.nodeId))).map((n) => [n.id, n]));
    const byVersions = new Map<string, string[]>();
    for (const item of reporting) {
      const node = nodes.get(item.task.nodeId);
      if (!node) continue;
      const reported = item.outcome.versions ?? {};
      const versions =
        item.outcome.result === 'succeeded'
          ? { ...node.versions, ...reported, [upgrade.component]: reported[upgrade.component] ?? upgrade.toVersion }
          : { ...node.versions, ...reported };
      const key = JSON.stringify(versions);
      let ids = byVersions.get(key);
      if (!ids) byVersions.set(key, (ids = []));
      ids.push(node.id);
    }
    for (const [versions, ids] of byVersions) await tx.nodes.setVersions(ids, JSON.parse(versions) as ComponentVersions);
    const name = componentDisplayName[upgrade.component];
    const events: NewEvent[] = won.map(({ task, outcome }) => {
      const base = { actor: ENGINE_ACTOR, clusterId: upgrade.clusterId, upgradeId: upgrade.id, nodeId: task.nodeId };
      return outcome.result === 'succeeded'
        ? { ...base, type: EventType.nodeSucceeded, message: `${task.nodeName}: ${name} is now ${upgrade.toVersion}` }
        : {
            ...base,
            type: EventType.nodeFailed,
            message: `${task.nodeName}: ${outcome.error ?? 'failed without a reason'}`,
            data: { attempt: task.attempt },
          };
    });
    await tx.events.appendMany(events);
    const failure = won.find((i) => i.outcome.result === 'failed');
    if (failure) {
      const current = await tx.upgrades.get(upgrade.id);
      const message = `${failure.task.nodeName}: ${failure.outcome.error ?? 'failed without a reason'}`;
      if (current?.state === 'Upgrading') await this.autoPauseIn(tx, current, failure.task.nodeId, message);
    }
    return won.map((i) => i.outcome.result);
  }

  private async autoPause(upgrade: UpgradeRecord, nodeId: string | null, message: string): Promise<void> {
    await this.store.tx((tx) => this.autoPauseIn(tx, upgrade, nodeId, message));
  }

  private async autoPauseIn(tx: Store, upgrade: UpgradeRecord, nodeId: string | null, message: string): Promise<void> {
    const decision = decide({ state: upgrade.state, unstartedNodes: 0 }, { type: 'nodeFailed', nodeId: nodeId ?? '', message });
    if (!decision.ok) return;
    await applyTransition(tx, upgrade, decision, { type: 'nodeFailed', nodeId, message }, this.now());
  }

  private async complete(upgrade: UpgradeRecord): Promise<void> {
    const decision = decide({ state: upgrade.state, unstartedNodes: 0 }, { type: 'allSucceeded' });
    if (!decision.ok) return;
    await applyTransition(this.store, upgrade, decision, { type: 'allSucceeded' }, this.now());
    this.clearTimer(upgrade.id);
  }

  private async checkPausedTtl(upgrade: UpgradeRecord): Promise<void> {
    if (upgrade.pausedAt === null) return;
    const expiresAt = Date.parse(upgrade.pausedAt) + this.options.pausedTtlMs;
    if (expiresAt > this.now()) {
      this.setTimer(upgrade.id, expiresAt);
      return;
    }
    const decision = decide({ state: upgrade.state, unstartedNodes: 0 }, { type: 'pausedTtlExpired' });
    if (!decision.ok) return;
    await applyTransition(this.store, upgrade, decision, { type: 'pausedTtlExpired', pausedTtlMs: this.options.pausedTtlMs }, this.now());
    this.clearTimer(upgrade.id);
  }

  private async advanceSnapshots(upgrade: UpgradeRecord): Promise<void> {
    const snapshots = await this.store.upgrades.listSnapshots(upgrade.id);
    const running = snapshots.filter((s) => s.state === 'running').length;
    const pending = snapshots.filter((s) => s.state === 'pending');
    const room = Math.max(0, (this.options.snapshotConcurrency ?? 20) - running);
    const startedAt = iso(this.now());
    for (const snapshot of pending.slice(0, room)) {
      if (await this.store.upgrades.casSnapshot(snapshot.id, 'pending', { state: 'running', startedAt })) {
        this.dispatchSnapshot(upgrade, { ...snapshot, state: 'running', startedAt });
      }
    }
    if (running > 0 || pending.length > 0) return;
    const failed = snapshots.filter((s) => s.state === 'failed');
    const decision = decide(
      { state: upgrade.state, unstartedNodes: 0 },
      { type: failed.length > 0 ? 'snapshotFailed' : 'snapshotsSucceeded' },
    );
    if (!decision.ok) return;
    await applyTransition(
      this.store,
      upgrade,
      decision,
      failed.length > 0
        ? { type: 'snapshotFailed', failedNodes: failed.map((s) => s.nodeName), snapshots: snapshots.length }
        : { type: 'snapshotsSucceeded' },
      this.now(),
    );
    this.kick(upgrade.id);
  }

  private dispatchSnapshot(upgrade: UpgradeRecord, snapshot: SnapshotRecord): void {
    const key = `snapshot:${snapshot.id}`;
    if (this.inflight.has(key)) return;
    const signal = this.abort.signal;
    const work = (async () => {
      const cluster = await this.store.clusters.get(upgrade.clusterId);
      const node = await this.store.nodes.get(snapshot.nodeId);
      let outcome: SnapshotOutcome;
      try {
        if (!cluster || !node) throw new UpshiftError(ErrorCode.NOT_FOUND, 'the node or its cluster was removed');
        outcome = await this.driverFor(cluster).snapshotNode(
          cluster,
          { snapshotId: snapshot.id, upgradeId: upgrade.id, node, component: upgrade.component },
          { log: () => undefined, signal },
        );
      } catch (error) {
        if (signal.aborted) return;
        outcome = { result: 'failed', error: errorMessage(error) };
      }
      if (signal.aborted) return;
      await this.exclusive(upgrade.id, () =>
        this.store.tx(async (tx) => {
          const ok = await tx.upgrades.casSnapshot(snapshot.id, 'running', {
            state: outcome.result,
            ref: outcome.ref ?? null,
            error: outcome.result === 'failed' ? (outcome.error ?? 'failed without a reason') : null,
            finishedAt: iso(this.now()),
          });
          if (!ok) return;
          await tx.events.append({
            type: outcome.result === 'succeeded' ? EventType.snapshotSucceeded : EventType.snapshotFailed,
            actor: ENGINE_ACTOR,
            clusterId: upgrade.clusterId,
            upgradeId: upgrade.id,
            nodeId: snapshot.nodeId,
            message:
              outcome.result === 'succeeded'
                ? `${snapshot.nodeName}: snapshot taken${outcome.ref ? ` (${outcome.ref})` : ''}`
                : `${snapshot.nodeName}: snapshot failed: ${outcome.error ?? 'no reason given'}`,
          });
        }),
      );
      this.kick(upgrade.id);
    })()
      .catch((error: unknown) => this.log.error({ err: error, snapshotId: snapshot.id }, 'recording a snapshot failed'))
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, work);
  }

  /** Periodically asks real clusters for their nodes; marks unreachable ones Unavailable. */
  private scheduleInventory(): void {
    const every = this.options.inventoryIntervalMs ?? 15_000;
    if (every <= 0 || !this.running) return;
    this.inventoryTimer = this.options.clock.setTimer(every, () => {
      void this.syncAllInventories().finally(() => this.scheduleInventory());
    });
  }

  async syncAllInventories(): Promise<void> {
    for (const cluster of await this.store.clusters.list()) {
      if (!this.running) return;
      await this.syncInventory(cluster).catch((error: unknown) =>
        this.log.warn({ err: error, clusterId: cluster.id }, 'inventory sync failed'),
      );
    }
  }

  /**
   * Brings the stored nodes in line with what the cluster reports. New nodes are added
   * (and left out of a running upgrade, whose tasks were fixed when it started); nodes
   * that disappeared are removed only when no upgrade is active.
   */
  async syncInventory(cluster: ClusterRecord): Promise<void> {
    const driver = this.driverFor(cluster);
    const result = await driver.inventory(cluster, this.abort.signal);
    if (result === undefined) return;
    if (!result.reachable) {
      if (await this.store.clusters.setUnavailable(cluster.id, result.reason)) {
        await this.store.events.append({
          type: EventType.clusterUnavailable,
          actor: ENGINE_ACTOR,
          clusterId: cluster.id,
          upgradeId: null,
          nodeId: null,
          message: `cluster ${cluster.name} cannot be reached: ${result.reason}`,
        });
      }
      return;
    }
    await this.store.tx(async (tx) => {
      if (await tx.clusters.setUnavailable(cluster.id, null)) {
        await tx.events.append({
          type: EventType.clusterAvailable,
          actor: ENGINE_ACTOR,
          clusterId: cluster.id,
          upgradeId: null,
          nodeId: null,
          message: `cluster ${cluster.name} is reachable again`,
        });
      }
      await tx.nodes.reconcile(cluster.id, result.nodes, ENGINE_ACTOR);
    });
  }
}
