import type { UpgradeRecord } from '../domain/model.js';
import { decide } from '../domain/upgrade-state.js';
import { applyTransition } from './apply-transition.js';
import type { EngineContext } from './types.js';
import type { UpgradeQueue } from './upgrade-queue.js';

/**
 * A paused upgrade is not kept forever: after `pausedTtlMs` in `Paused` it is canceled
 * automatically and its events and node logs are purged (`applyTransition`,
 * `pausedTtlExpired`), so that a forgotten upgrade neither holds its cluster's
 * membership lock nor its history indefinitely. Until then the upgrade's timer is set to
 * the moment it expires; the check runs again at every step of the paused upgrade, also
 * after a restart or a takeover by another replica.
 */
export class PausedTtl {
  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: { queue: UpgradeQueue; pausedTtlMs: number },
  ) {}

  async check(upgrade: UpgradeRecord): Promise<void> {
    if (upgrade.pausedAt === null) return;
    const { queue, pausedTtlMs } = this.deps;
    const expiresAt = Date.parse(upgrade.pausedAt) + pausedTtlMs;
    if (expiresAt > this.ctx.clock.now()) {
      queue.wakeAt(upgrade.id, expiresAt);
      return;
    }
    const transition = decide({ state: upgrade.state, unstartedNodes: 0 }, { type: 'pausedTtlExpired' });
    if (!transition.ok) return;
    await applyTransition(this.ctx.store, upgrade, transition, { type: 'pausedTtlExpired', pausedTtlMs }, this.ctx.clock.now());
    queue.cancelWake(upgrade.id);
  }
}
