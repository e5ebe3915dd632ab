import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../domain/ports.js';
import type { Store } from '../store/store.js';
import type { NewLease } from '../store/upgrades.js';
import type { Logger } from './types.js';

/** What the lease keeper tells the orchestrator. */
export interface LeaseListener {
  /** This replica took the upgrade (new, or from a replica that stopped or died): pick it up. */
  gained(upgradeId: string): Promise<void>;
  /** Another replica holds the upgrade now: stop driving it. */
  lost(upgradeId: string): void;
  /** Another replica changed an upgrade this one drives (an operator's pause there): act now. */
  changedElsewhere(upgradeId: string): void;
}

/**
 * Which upgrades this replica drives. Each upgrade is driven by one replica, the holder
 * of its lease in `store.leases` (expiry by the database's clock, see store/leases.ts):
 * the leases are claimed and renewed every third of their time to live, expired ones are
 * taken over, lost ones let go, and all of them released on a graceful stop so that
 * another replica takes over at once. Other replicas' events arrive through
 * `store.events.listenToReplicas`, so that a command served by one replica is acted on
 * at once by the one that drives the upgrade.
 */
export class ReplicaLeases {
  /** This replica's name in leases: host, process and a random part. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly held = new Set<string>();
  private running = false;
  /** Claims under way (renewals and single claims): `stop` waits for them (see there). */
  private readonly claiming = new Set<Promise<void>>();
  private renewTimer: (() => void) | undefined;
  private stopListening: (() => Promise<void>) | undefined;
  private readonly onRemoteEvent = (event: { upgradeId: string | null }) => {
    if (event.upgradeId && this.held.has(event.upgradeId)) this.listener.changedElsewhere(event.upgradeId);
  };

  constructor(
    private readonly ctx: { store: Store; clock: Clock; log: Logger },
    private readonly ttlMs: number,
    private readonly listener: LeaseListener,
  ) {}

  /** Whether this replica drives the upgrade. */
  holds(upgradeId: string): boolean {
    return this.held.has(upgradeId);
  }

  /** Listens to the other replicas, claims what no live replica drives and keeps renewing. */
  async start(): Promise<void> {
    this.running = true;
    this.ctx.store.bus.on('remote-event', this.onRemoteEvent);
    this.stopListening = this.ctx.store.events.listenToReplicas((error) =>
      this.ctx.log.warn({ err: error }, 'listening to other replicas failed; retrying'),
    );
    await this.tick();
    this.scheduleRenewal();
  }

  /**
   * The lease a new upgrade is stored with, so that it needs no claim of its own before
   * its first batch (docs/design.md §8); undefined once stopping, when another replica
   * should take it at once.
   */
  leaseForNew(): NewLease | undefined {
    return this.running ? { owner: this.owner, ttlMs: this.ttlMs } : undefined;
  }

  /**
   * Drives an upgrade this replica stored with `leaseForNew`'s lease (committed), without
   * `gained`: a new upgrade has nothing to reattach. False when stopping, or when a
   * renewal found the lease first and `gained` it already.
   */
  adopt(upgradeId: string): boolean {
    if (!this.running || this.held.has(upgradeId)) return false;
    this.held.add(upgradeId);
    return true;
  }

  /** Claims one upgrade (a new one, or one this replica does not drive yet); `gained` follows on success. */
  claim(upgradeId: string): void {
    void this.tick(upgradeId).catch((error: unknown) => this.ctx.log.warn({ err: error, upgradeId }, 'claiming the upgrade failed'));
  }

  /**
   * Stops renewing and listening, and waits for the claims under way: one that ended after
   * `release` would take leases again for a replica that no longer drives them, and the
   * other replicas would wait for them to expire (docs/design.md §8). The leases stay
   * held until `release`.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.renewTimer?.();
    this.ctx.store.bus.off('remote-event', this.onRemoteEvent);
    await this.stopListening?.();
    await Promise.allSettled([...this.claiming]);
  }

  /** Hands every upgrade over at once instead of when the leases expire. */
  async release(): Promise<void> {
    await this.ctx.store.leases.release(this.owner).catch((error: unknown) => this.ctx.log.warn({ err: error }, 'releasing leases failed'));
    this.held.clear();
  }

  private scheduleRenewal(): void {
    if (!this.running) return;
    this.renewTimer = this.ctx.clock.setTimer(Math.max(200, Math.floor(this.ttlMs / 3)), () => {
      void this.tick()
        .catch((error: unknown) => this.ctx.log.warn({ err: error }, 'renewing upgrade leases failed; retrying'))
        .finally(() => this.scheduleRenewal());
    });
  }

  /**
   * Renews this replica's leases, takes over expired ones, lets go of lost ones (all, or
   * only `only`). A renewal lets go only of upgrades it held when it began: one gained
   * while its claim was under way (adopted new, or by a claim of its own) is not in what
   * it read (docs/design.md §8).
   */
  private tick(only?: string): Promise<void> {
    const claim = this.claimAndApply(only);
    this.claiming.add(claim);
    const forget = () => void this.claiming.delete(claim);
    claim.then(forget, forget);
    return claim;
  }

  private async claimAndApply(only: string | undefined): Promise<void> {
    const heldBefore = only ? [] : [...this.held];
    const claimed = await this.ctx.store.leases.claim(this.owner, this.ttlMs, only);
    if (!this.running) return;
    const now = new Set(claimed);
    for (const id of heldBefore) {
      if (now.has(id) || !this.held.has(id)) continue;
      this.held.delete(id);
      this.listener.lost(id);
    }
    for (const id of claimed) {
      if (this.held.has(id)) continue;
      this.held.add(id);
      await this.listener.gained(id);
    }
  }
}
