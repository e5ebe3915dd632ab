import { componentDisplayName } from '../../domain/components.js';
import type { EventView } from '../../api/index.js';
import type { Output } from '../output.js';
import { plural } from '../output.js';
import type { StreamStatus } from '../sse.js';
import { progressLine } from '../progress-text.js';
import { autoCancelText, nodeNames, pauseCause, type UpgradeSnapshot, type WatchOutcome } from './outcome.js';

/** How `watch` shows progress: live on a terminal, as lines in a log, or not at all for `-o json`. */
export interface WatchView {
  start(snapshot: UpgradeSnapshot): void;
  event(event: EventView): void;
  update(snapshot: UpgradeSnapshot): void;
  connection(status: StreamStatus, detail?: string): void;
  finish(outcome: WatchOutcome, snapshot: UpgradeSnapshot): Promise<void>;
}

/** One sentence about the upgrade, for headers. */
export function describeUpgrade(snapshot: UpgradeSnapshot): string {
  const u = snapshot.upgrade;
  const parts = [`${componentDisplayName[u.component]} → ${u.toVersion} on ${u.clusterName ?? u.clusterId}`, plural(u.nodes.total, 'node')];
  if (u.cap !== undefined) parts.push(`batches of at most ${u.cap}`);
  if (u.snapshot === 'before') parts.push('snapshots first');
  if (u.policy?.soakSeconds) parts.push(`soak ${u.policy.soakSeconds}s`);
  return `upgrade ${u.id}: ${parts.join(', ')}`;
}

/**
 * Plain timestamped lines, for logs and pipes: every event of the upgrade as the
 * server recorded it, the pause's time to auto-cancel, and the outcome.
 */
export class PlainView implements WatchView {
  private readonly out: Output;
  private announcedPause: string | null = null;
  private announcedBatch = 0;
  private ended = false;
  private disconnected = false;

  constructor(out: Output) {
    this.out = out;
  }

  private say(text: string, at = new Date().toISOString()): void {
    this.out.line(`${at}  ${text}`);
  }

  start(snapshot: UpgradeSnapshot): void {
    const u = snapshot.upgrade;
    this.say(`watching ${describeUpgrade(snapshot)}; now ${u.state}, ${u.nodes.succeeded}/${u.nodes.total} nodes upgraded`);
  }

  event(event: EventView): void {
    this.say(`${event.type.padEnd(23)} ${event.message}`, event.at);
    // A snapshot fetched before the end may arrive after it: its progress is stale by then.
    if (event.type === 'upgrade.completed' || event.type === 'upgrade.canceled' || event.type === 'upgrade.auto_canceled')
      this.ended = true;
  }

  update(snapshot: UpgradeSnapshot): void {
    const u = snapshot.upgrade;
    if (!this.ended && u.state === 'Upgrading' && u.progress.batch > 0 && u.progress.batch !== this.announcedBatch) {
      this.announcedBatch = u.progress.batch;
      this.say(`${'progress'.padEnd(23)} ${progressLine(u)}`);
    }
    if (u.state === 'Paused' && u.pausedAt && this.announcedPause !== u.pausedAt) {
      this.announcedPause = u.pausedAt;
      const ttl = autoCancelText(u);
      this.say(`${'paused'.padEnd(23)} ${pauseCause(snapshot.upgrade, nodeNames(snapshot.tasks))}${ttl ? `; ${ttl}` : ''}`);
    }
  }

  connection(status: StreamStatus, detail?: string): void {
    if (status === 'reconnecting' && !this.disconnected) {
      this.disconnected = true;
      this.say(`connection to the server lost${detail ? ` (${detail})` : ''}; reconnecting`);
    } else if (status === 'connected' && this.disconnected) {
      this.disconnected = false;
      this.say('reconnected');
    }
  }

  async finish(outcome: WatchOutcome): Promise<void> {
    this.say(outcome.message);
  }
}

/** `-o json` / `-o yaml`: nothing while it runs, then the final Upgrade object. */
export class QuietView implements WatchView {
  private readonly out: Output;

  constructor(out: Output) {
    this.out = out;
  }

  start(): void {}
  event(): void {}
  update(): void {}
  connection(): void {}

  async finish(_outcome: WatchOutcome, snapshot: UpgradeSnapshot): Promise<void> {
    this.out.data(snapshot.upgrade);
  }
}
