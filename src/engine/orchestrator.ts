import { BatchPhase, type NewlyStarted } from './batches.js';
import type { Gate, GateResult } from '../domain/gates.js';
import type { ClusterRecord } from '../domain/model.js';
import type { NewLease } from '../store/upgrades.js';
import { DriverWork } from './driver-work.js';
import { GateChecks } from './gate-checks.js';
import { NodeLogBuffer } from './node-log-buffer.js';
import { NodeTaskRunner } from './node-tasks.js';
import { PausedTtl } from './paused-ttl.js';
import { ReplicaLeases } from './replica-leases.js';
import type { SecretVault } from './secrets.js';
import { SnapshotPhase } from './snapshots.js';
import type { EngineContext } from './types.js';
import { UpgradeQueue } from './upgrade-queue.js';

export interface OrchestratorOptions {
  /** A paused upgrade older than this is canceled and purged. */
  pausedTtlMs: number;
  /** How long before the paused-TTL cancel its warning is recorded. */
  autoCancelWarningMs: number;
  /** How many snapshots one upgrade takes at once. */
  snapshotConcurrency: number;
  /** How long this replica's claim on an upgrade lasts without renewal. */
  leaseTtlMs: number;
  /** Opens gates' sealed bearer tokens. */
  vault: SecretVault;
  /** The server's --allow-link-local-targets, for gate URLs. */
  allowLinkLocalTargets: boolean;
}

/**
 * Drives every upgrade this replica holds the lease of (`ReplicaLeases`) forward, one
 * step at a time through the upgrade's queue (`UpgradeQueue`): a step derives from the
 * stored state what must happen next and hands it to the phase that does it (snapshots,
 * batches, the paused TTL). Every change of an upgrade's state is written by
 * `applyTransition`.
 *
 * It is restart-safe by construction: the database holds the whole truth, an upgrade
 * this replica takes (at start, or from a replica that died) has its running nodes and
 * snapshots reattached (drivers are idempotent per task key), and a step only ever
 * derives the next one from what is stored.
 */
export class Orchestrator {
  private running = false;
  private readonly queue: UpgradeQueue;
  private readonly leases: ReplicaLeases;
  private readonly work = new DriverWork();
  private readonly logs: NodeLogBuffer;
  private readonly tasks: NodeTaskRunner;
  private readonly snapshots: SnapshotPhase;
  private readonly batches: BatchPhase;
  private readonly pausedTtl: PausedTtl;
  private readonly gates: GateChecks;

  constructor(
    private readonly ctx: EngineContext,
    options: OrchestratorOptions,
  ) {
    const kick = (upgradeId: string) => this.kick(upgradeId);
    this.queue = new UpgradeQueue(ctx.clock, kick);
    this.leases = new ReplicaLeases(ctx, options.leaseTtlMs, {
      gained: async (upgradeId) => {
        await this.reattach(upgradeId);
        this.kick(upgradeId);
      },
      lost: (upgradeId) => {
        this.queue.cancelWake(upgradeId);
        this.gates.forget(upgradeId);
      },
      changedElsewhere: kick,
    });
    this.logs = new NodeLogBuffer(ctx);
    this.tasks = new NodeTaskRunner(ctx, { work: this.work, queue: this.queue, logs: this.logs, kick });
    this.snapshots = new SnapshotPhase(ctx, { work: this.work, queue: this.queue, kick, concurrency: options.snapshotConcurrency });
    this.gates = new GateChecks(ctx, { queue: this.queue, kick, vault: options.vault, allowLinkLocal: options.allowLinkLocalTargets });
    this.batches = new BatchPhase(ctx, { queue: this.queue, tasks: this.tasks, gates: this.gates });
    this.pausedTtl = new PausedTtl(ctx, {
      queue: this.queue,
      pausedTtlMs: options.pausedTtlMs,
      warningMs: options.autoCancelWarningMs,
    });
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Claims the upgrades no live replica drives and picks each up where the database
   * says it is: running nodes and snapshots are reattached, then it is advanced.
   * Idempotent.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.work.reset();
    await this.leases.start();
    this.logs.start();
  }

  /**
   * Stops dispatching and waits for the queued steps. Node tasks are not interrupted
   * on the nodes: they are reattached by the next `start()`, here or on another replica.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.work.abort();
    await this.leases.stop();
    this.logs.stop();
    await this.gates.stop();
    await this.queue.drain();
    await this.work.settled();
    await this.logs.flush();
    await this.leases.release();
  }

  /** Checks one gate once, outside any upgrade ("Test now"); `cluster` for a swarm-services gate. */
  testGate(gate: Gate, cluster: ClusterRecord | undefined): Promise<GateResult> {
    return this.gates.checkOnce(gate, cluster);
  }

  /** Runs `fn` after everything already queued for this upgrade (an operator's command). */
  exclusive<T>(upgradeId: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.exclusive(upgradeId, fn);
  }

  /**
   * Asks for the upgrade to be advanced soon; several kicks before it runs count once.
   * An upgrade another replica drives is left to it (a new one is claimed first).
   */
  kick(upgradeId: string): void {
    if (!this.running) return;
    if (!this.leases.holds(upgradeId)) {
      this.leases.claim(upgradeId);
      return;
    }
    this.queue
      .once(upgradeId, async () => {
        if (!this.running || !this.leases.holds(upgradeId)) return;
        await this.advance(upgradeId);
      })
      ?.catch(this.retryLater(upgradeId));
  }

  /**
   * The lease to store a new upgrade with (this replica's), so that `adoptNew` can drive
   * it without claiming it first (docs/design.md §8); undefined once stopping.
   */
  leaseForNew(): NewLease | undefined {
    return this.leases.leaseForNew();
  }

  /**
   * Drives a new upgrade stored (and committed) with `leaseForNew`'s lease: its first step
   * starts the first batch from what its start wrote, with no claim and no read-back
   * (docs/design.md §8). Queued on its own, so that a kick meanwhile (an operator's
   * pause) is a step of its own after it. Falls back to a kick when the lease keeper had
   * it already (a renewal found it first) or is stopping.
   */
  adoptNew(started: NewlyStarted): void {
    const upgradeId = started.upgrade.id;
    if (!this.running || started.upgrade.state !== 'Upgrading' || !this.leases.adopt(upgradeId)) {
      this.kick(upgradeId);
      return;
    }
    this.queue
      .exclusive(upgradeId, async () => {
        if (!this.running || !this.leases.holds(upgradeId)) return;
        await this.batches.advanceNew(started);
      })
      .catch(this.retryLater(upgradeId));
  }

  /** What a failed step does: logs it and asks for a step again in 2 s. */
  private retryLater(upgradeId: string): (error: unknown) => void {
    return (error) => {
      this.ctx.log.error({ err: error, upgradeId }, 'advancing the upgrade failed; retrying in 2 s');
      this.queue.wakeAt(upgradeId, this.ctx.clock.now() + 2000);
    };
  }

  /** Reattaches the running nodes and snapshots of an upgrade this replica just took. */
  private async reattach(upgradeId: string): Promise<void> {
    const { store } = this.ctx;
    const upgrade = await store.upgrades.get(upgradeId);
    if (!upgrade) return;
    for (const task of await store.upgrades.listTasks(upgradeId, 'running')) this.tasks.dispatch(upgrade, task, true);
    // An upgrade without snapshots has none to reattach (and is spared the read).
    const snapshots = upgrade.snapshot === 'before' ? await store.upgrades.listSnapshots(upgradeId) : [];
    for (const snapshot of snapshots.filter((s) => s.state === 'running')) {
      this.snapshots.dispatch(upgrade, snapshot);
    }
  }

  /** One step: derive from the stored state what must happen next, and do it. */
  private async advance(upgradeId: string): Promise<void> {
    const upgrade = await this.ctx.store.upgrades.get(upgradeId);
    if (!upgrade) return;
    const step = await this.batches.close(upgrade);
    // Gate results hold only while the upgrade runs: a resume checks every gate again.
    if (upgrade.state !== 'Upgrading') this.gates.forget(upgradeId);
    switch (upgrade.state) {
      case 'BackingUp':
        await this.snapshots.advance(upgrade);
        return;
      case 'Upgrading':
        await this.batches.advance(step);
        return;
      // Stopped at a failed snapshot, the upgrade waits for an operator exactly as a
      // paused one does, and under the same paused TTL (docs/design.md §3).
      case 'SnapshotFailed':
      case 'Paused':
        await this.pausedTtl.check(upgrade);
        return;
      case 'Canceled':
      case 'Completed':
        this.queue.cancelWake(upgradeId);
        return;
      default: {
        const never: never = upgrade.state;
        return never;
      }
    }
  }
}
