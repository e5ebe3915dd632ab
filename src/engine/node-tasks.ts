import { type ComponentVersions, componentDisplayName } from '../domain/components.js';
import { ErrorCode, UpshiftError, errorMessage } from '../domain/errors.js';
import { ENGINE_ACTOR, EventType, type NewEvent } from '../domain/events.js';
import type { ClusterRecord, NodeRecord, NodeTaskRecord, UpgradeRecord } from '../domain/model.js';
import type { NodeTaskOutcome } from '../domain/ports.js';
import { decide } from '../domain/upgrade-state.js';
import type { Store } from '../store/store.js';
import { applyTransition } from './apply-transition.js';
import type { DriverWork } from './driver-work.js';
import type { NodeLogBuffer } from './node-log-buffer.js';
import type { EngineContext } from './types.js';
import { isoTime } from './types.js';
import type { UpgradeQueue } from './upgrade-queue.js';

interface PendingOutcome {
  task: NodeTaskRecord;
  outcome: NodeTaskOutcome;
  done: () => void;
  fail: (error: unknown) => void;
}

/**
 * Node tasks in flight: each running task is handed to its cluster's driver (or
 * reattached to after a restart; drivers are idempotent per task key), its log lines go
 * to the log buffer, and its outcome is recorded by compare-and-set on (running,
 * attempt) with the node's new versions and an event. A failed node pauses the upgrade
 * (through `applyTransition`).
 *
 * Outcomes that arrive together (a batch finishing) are recorded in one transaction and
 * followed by one step of the upgrade, so a batch of a hundred nodes costs one step, not
 * a hundred.
 */
export class NodeTaskRunner {
  private readonly outcomes = new Map<string, PendingOutcome[]>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: {
      work: DriverWork;
      queue: UpgradeQueue;
      logs: NodeLogBuffer;
      /** Asks for the next step of the upgrade. */
      kick: (upgradeId: string) => void;
    },
  ) {}

  /** Hands a running task to its driver (or reattaches to it) and records the outcome. */
  dispatch(
    upgrade: UpgradeRecord,
    task: NodeTaskRecord,
    reattach: boolean,
    known: { cluster?: ClusterRecord | undefined; node?: NodeRecord | undefined } = {},
  ): void {
    const { store, clock } = this.ctx;
    const key = `${task.id}.${task.attempt}`;
    this.deps.work.run(key, (signal) =>
      (async () => {
        const cluster = known.cluster ?? (await store.clusters.get(upgrade.clusterId));
        const node = known.node ?? (await store.nodes.get(task.nodeId));
        const log = (line: string) => this.deps.logs.push(upgrade.id, task.id, line);
        let outcome: NodeTaskOutcome;
        try {
          if (!cluster || !node) throw new UpshiftError(ErrorCode.NOT_FOUND, 'the node or its cluster was removed during the upgrade');
          if (reattach) log(`reattaching to attempt ${task.attempt} after a restart of the control plane`);
          outcome = await this.ctx.driverFor(cluster.kind).runNodeTask(
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
              startedAt: task.startedAt ?? isoTime(clock.now()),
              catalog: this.ctx.catalog,
            },
            { log, logged: () => this.deps.logs.flush(), signal },
          );
        } catch (error) {
          if (signal.aborted) return;
          outcome = { result: 'failed', error: errorMessage(error) };
        }
        if (signal.aborted) return;
        await this.record(upgrade, task, outcome);
      })().catch((error: unknown) => {
        this.ctx.log.error({ err: error, taskId: task.id }, 'recording a node outcome failed; it will be reattached at the next start');
      }),
    );
  }

  /** Queues an outcome to be recorded with the others that arrive within a few milliseconds. */
  private record(upgrade: UpgradeRecord, task: NodeTaskRecord, outcome: NodeTaskOutcome): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let queue = this.outcomes.get(upgrade.id);
      const first = !queue;
      if (!queue) this.outcomes.set(upgrade.id, (queue = []));
      queue.push({ task, outcome, done: resolve, fail: reject });
      if (!first) return;
      let items: PendingOutcome[] = [];
      this.deps.queue
        .exclusive(upgrade.id, async () => {
          // Nodes of a batch finish within milliseconds of each other: gather them.
          await new Promise((r) => setTimeout(r, 2));
          await this.deps.logs.flush();
          const taken = this.outcomes.get(upgrade.id) ?? [];
          items = taken;
          this.outcomes.delete(upgrade.id);
          const recorded = await this.ctx.store.tx((tx) => this.recordMany(tx, upgrade, taken));
          for (const result of recorded) this.ctx.observer?.nodeTaskFinished(upgrade.component, result);
          for (const item of taken) item.done();
        })
        .then(
          () => this.deps.kick(upgrade.id),
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
    const finishedAt = isoTime(this.ctx.clock.now());
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
    await this.recordVersions(tx, upgrade, won);
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
      if (current?.state === 'Upgrading') {
        const transition = decide(
          { state: current.state, unstartedNodes: 0 },
          { type: 'nodeFailed', nodeId: failure.task.nodeId, message },
        );
        if (transition.ok) {
          await applyTransition(
            tx,
            current,
            transition,
            { type: 'nodeFailed', nodeId: failure.task.nodeId, message },
            this.ctx.clock.now(),
          );
        }
      }
    }
    return won.map((i) => i.outcome.result);
  }

  /**
   * A node's versions follow what it reports, whether its task succeeded or failed (a
   * rollback, or a success the agent driver refused because the node runs another
   * version); a success without a report (simulated, Kubernetes) means the target.
   */
  private async recordVersions(
    tx: Store,
    upgrade: UpgradeRecord,
    won: Array<{ task: NodeTaskRecord; outcome: NodeTaskOutcome }>,
  ): Promise<void> {
    const reporting = won.filter((i) => i.outcome.result === 'succeeded' || Object.keys(i.outcome.versions ?? {}).length > 0);
    // Locked as read: a heartbeat's versions written meanwhile are kept, not overwritten.
    const read = await tx.nodes.getMany(
      reporting.map((i) => i.task.nodeId),
      { forUpdate: true },
    );
    const nodes = new Map(read.map((n) => [n.id, n]));
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
  }
}
