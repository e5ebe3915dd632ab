import { ErrorCode, UpshiftError, errorMessage } from '../domain/errors.js';
import { ENGINE_ACTOR, EventType } from '../domain/events.js';
import type { SnapshotRecord, UpgradeRecord } from '../domain/model.js';
import type { SnapshotOutcome } from '../domain/ports.js';
import { decide } from '../domain/upgrade-state.js';
import { applyTransition } from './apply-transition.js';
import type { DriverWork } from './driver-work.js';
import type { EngineContext } from './types.js';
import { isoTime } from './types.js';
import type { UpgradeQueue } from './upgrade-queue.js';

/**
 * The `BackingUp` phase: every node to upgrade is snapshotted before any is touched, at
 * most `concurrency` at once per upgrade. Each outcome is recorded by compare-and-set
 * with its event; when none is left, the upgrade moves on (all succeeded → Upgrading,
 * one failed → SnapshotFailed, where the operator decides).
 */
export class SnapshotPhase {
  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: {
      work: DriverWork;
      queue: UpgradeQueue;
      /** Asks for the next step of the upgrade. */
      kick: (upgradeId: string) => void;
      concurrency: number;
    },
  ) {}

  /** Starts pending snapshots up to the concurrency; with none left, applies the outcome. */
  async advance(upgrade: UpgradeRecord): Promise<void> {
    const { store, clock } = this.ctx;
    const snapshots = await store.upgrades.listSnapshots(upgrade.id);
    const running = snapshots.filter((s) => s.state === 'running').length;
    const pending = snapshots.filter((s) => s.state === 'pending');
    const room = Math.max(0, this.deps.concurrency - running);
    const startedAt = isoTime(clock.now());
    for (const snapshot of pending.slice(0, room)) {
      if (await store.upgrades.casSnapshot(snapshot.id, 'pending', { state: 'running', startedAt })) {
        this.dispatch(upgrade, { ...snapshot, state: 'running', startedAt });
      }
    }
    if (running > 0 || pending.length > 0) return;
    const failed = snapshots.filter((s) => s.state === 'failed');
    const transition = decide(
      { state: upgrade.state, unstartedNodes: 0 },
      { type: failed.length > 0 ? 'snapshotFailed' : 'snapshotsSucceeded' },
    );
    if (!transition.ok) return;
    await applyTransition(
      store,
      upgrade,
      transition,
      failed.length > 0
        ? { type: 'snapshotFailed', failedNodes: failed.map((s) => s.nodeName), snapshots: snapshots.length }
        : { type: 'snapshotsSucceeded' },
      clock.now(),
    );
    this.deps.kick(upgrade.id);
  }

  /** Hands a running snapshot to its driver (or reattaches to it) and records the outcome. */
  dispatch(upgrade: UpgradeRecord, snapshot: SnapshotRecord): void {
    const { store, clock } = this.ctx;
    this.deps.work.run(`snapshot:${snapshot.id}`, (signal) =>
      (async () => {
        const cluster = await store.clusters.get(upgrade.clusterId);
        const node = await store.nodes.get(snapshot.nodeId);
        let outcome: SnapshotOutcome;
        try {
          if (!cluster || !node) throw new UpshiftError(ErrorCode.NOT_FOUND, 'the node or its cluster was removed');
          outcome = await this.ctx
            .driverFor(cluster.kind)
            .snapshotNode(
              cluster,
              { snapshotId: snapshot.id, upgradeId: upgrade.id, node, component: upgrade.component },
              { log: () => undefined, logged: () => Promise.resolve(), signal },
            );
        } catch (error) {
          if (signal.aborted) return;
          outcome = { result: 'failed', error: errorMessage(error) };
        }
        if (signal.aborted) return;
        await this.deps.queue.exclusive(upgrade.id, () =>
          store.tx(async (tx) => {
            const ok = await tx.upgrades.casSnapshot(snapshot.id, 'running', {
              state: outcome.result,
              ref: outcome.ref ?? null,
              error: outcome.result === 'failed' ? (outcome.error ?? 'failed without a reason') : null,
              finishedAt: isoTime(clock.now()),
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
        this.deps.kick(upgrade.id);
      })().catch((error: unknown) => this.ctx.log.error({ err: error, snapshotId: snapshot.id }, 'recording a snapshot failed')),
    );
  }
}
