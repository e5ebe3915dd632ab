import { ENGINE_ACTOR, EventType } from '../domain/events.js';
import type { UpgradeRecord } from '../domain/model.js';
import { decide } from '../domain/upgrade-state.js';
import { applyTransition } from './apply-transition.js';
import { type EngineContext, isoTime } from './types.js';
import type { UpgradeQueue } from './upgrade-queue.js';

/**
 * A paused upgrade is not kept forever: after `pausedTtlMs` in `Paused` it is canceled
 * automatically and its events and node logs are purged (`applyTransition`,
 * `pausedTtlExpired`), so that a forgotten upgrade neither holds its cluster's
 * membership lock nor its history indefinitely. Until then the upgrade's timer is set to
 * the moment it expires; the check runs again at every step of the paused upgrade, also
 * after a restart or a takeover by another replica.
 *
 * `warningMs` before that, `upgrade.auto_cancel_warning` is recorded once per paused
 * period (a webhook can page someone while there is still time). "Once" is read from the
 * events: a warning whose `data.pausedAt` is this period's `pausedAt` was already given,
 * so a restart gives none again, and a resume then a new pause gives a new one. The
 * warning comes at most half the TTL after the pause, so that a short TTL still warns
 * before the cancel rather than at the pause itself.
 */
export class PausedTtl {
  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: { queue: UpgradeQueue; pausedTtlMs: number; warningMs: number },
  ) {}

  async check(upgrade: UpgradeRecord): Promise<void> {
    if (upgrade.pausedAt === null) return;
    const { queue, pausedTtlMs } = this.deps;
    const expiresAt = Date.parse(upgrade.pausedAt) + pausedTtlMs;
    const now = this.ctx.clock.now();
    if (expiresAt > now) {
      const warnAt = expiresAt - Math.min(this.deps.warningMs, pausedTtlMs / 2);
      if (warnAt > now) queue.wakeAt(upgrade.id, warnAt);
      else {
        await this.warnOnce(upgrade, expiresAt);
        queue.wakeAt(upgrade.id, expiresAt);
      }
      return;
    }
    const transition = decide({ state: upgrade.state, unstartedNodes: 0 }, { type: 'pausedTtlExpired' });
    if (!transition.ok) return;
    await applyTransition(this.ctx.store, upgrade, transition, { type: 'pausedTtlExpired', pausedTtlMs }, now);
    queue.cancelWake(upgrade.id);
  }

  private async warnOnce(upgrade: UpgradeRecord, expiresAt: number): Promise<void> {
    const pausedAt = upgrade.pausedAt;
    const [last] = await this.ctx.store.events.list({
      upgradeId: upgrade.id,
      types: [EventType.upgradeAutoCancelWarning],
      limit: 1,
    });
    if (last?.data?.['pausedAt'] === pausedAt) return;
    const autoCancelAt = isoTime(expiresAt);
    await this.ctx.store.events.append({
      type: EventType.upgradeAutoCancelWarning,
      actor: ENGINE_ACTOR,
      clusterId: upgrade.clusterId,
      upgradeId: upgrade.id,
      nodeId: null,
      message: `${upgrade.state === 'SnapshotFailed' ? 'stopped at a failed snapshot' : 'paused'} since ${pausedAt}: it will be canceled automatically at ${autoCancelAt}, and its events and logs deleted, unless it is resumed or canceled before`,
      data: { pausedAt, autoCancelAt },
    });
  }
}
