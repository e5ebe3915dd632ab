import type { Clock } from '../domain/ports.js';

/**
 * Each upgrade's serial queue and wake-up timer, in this process. All work on one
 * upgrade (a step of the batch loop, an operator's command, a batch of node outcomes)
 * runs through its queue, so that none of it interleaves with another here; across
 * processes every write is a compare-and-set, so a lost race changes nothing. An
 * upgrade's timer asks for a step at a moment (the end of a soak, the paused TTL, a
 * retry); only the earliest one is kept.
 */
export class UpgradeQueue {
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Upgrades with a step queued that has not begun: more requests join it. */
  private readonly requested = new Set<string>();
  private readonly timers = new Map<string, { at: number; cancel: () => void }>();

  constructor(
    private readonly clock: Clock,
    /** What a timer does when it fires: ask for a step of the upgrade. */
    private readonly wake: (upgradeId: string) => void,
  ) {}

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
   * Queues `step` unless a step of this upgrade is queued and has not begun: requests
   * made before it begins count once. Returns undefined when it joined the queued one.
   */
  once(upgradeId: string, step: () => Promise<void>): Promise<void> | undefined {
    if (this.requested.has(upgradeId)) return undefined;
    this.requested.add(upgradeId);
    return this.exclusive(upgradeId, () => {
      this.requested.delete(upgradeId);
      return step();
    });
  }

  /** Wakes the upgrade at `at` (engine time), unless it is to wake earlier already. */
  wakeAt(upgradeId: string, at: number): void {
    const existing = this.timers.get(upgradeId);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const cancel = this.clock.setTimer(at - this.clock.now(), () => {
      this.timers.delete(upgradeId);
      this.wake(upgradeId);
    });
    this.timers.set(upgradeId, { at, cancel });
  }

  cancelWake(upgradeId: string): void {
    this.timers.get(upgradeId)?.cancel();
    this.timers.delete(upgradeId);
  }

  /** Cancels every timer and waits for what is queued. */
  async drain(): Promise<void> {
    for (const timer of this.timers.values()) timer.cancel();
    this.timers.clear();
    await Promise.allSettled([...this.queues.values()]);
  }
}
