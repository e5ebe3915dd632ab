import { describeGate } from '../../domain/gates.js';
import { componentDisplayName } from '../../domain/components.js';
import type { NodeTaskView, UpgradeView } from '../../api/index.js';
import { ExitCode } from '../errors.js';
import { plural, timeLeft } from '../output.js';

/** What `watch` looks at: the upgrade and its node tasks, fetched together. */
export interface UpgradeSnapshot {
  upgrade: UpgradeView;
  tasks: NodeTaskView[];
}

/**
 * Why a watch ended. `completed` exits 0; the others exit 3: the upgrade stopped and
 * waits for an operator (Paused, SnapshotFailed) or is over without finishing (Canceled).
 */
export interface WatchOutcome {
  kind: 'completed' | 'paused' | 'canceled' | 'snapshotFailed';
  exitCode: ExitCode;
  message: string;
}

export function nodeNames(tasks: readonly NodeTaskView[]): Map<string, string> {
  return new Map(tasks.map((t) => [t.nodeId, t.nodeName]));
}

/** The pause reason as a sentence: `paused by admin`, or the failed node and its error. */
export function pauseCause(upgrade: UpgradeView, names: ReadonlyMap<string, string>): string {
  const reason = upgrade.pauseReason;
  if (!reason) return 'paused';
  if (reason.kind === 'user') return reason.message || `paused by ${reason.actor}`;
  if (reason.kind === 'gate') return `health gate ${reason.gateIndex + 1} (${describeGate(reason.gate)}) kept failing: ${reason.message}`;
  const node = reason.nodeId ? names.get(reason.nodeId) : undefined;
  return node && !reason.message.startsWith(node) ? `${node} failed: ${reason.message}` : reason.message;
}

/** `auto-cancel in 14d23h (at 2026-12-07T03:15:46Z)`, while Paused. */
export function autoCancelText(upgrade: UpgradeView, now = Date.now()): string | undefined {
  if (!upgrade.autoCancelAt) return undefined;
  return `auto-cancel in ${timeLeft(upgrade.autoCancelAt, now)} (at ${upgrade.autoCancelAt.replace(/\.\d+Z$/, 'Z')})`;
}

export function snapshotFailures(snapshot: UpgradeSnapshot): string[] {
  return snapshot.tasks
    .filter((t) => t.snapshot?.state === 'failed')
    .map((t) => `${t.nodeName}: ${t.snapshot?.error ?? 'snapshot failed'}`);
}

function progress(upgrade: UpgradeView): string {
  const n = upgrade.nodes;
  return `${n.succeeded} of ${plural(n.total, 'node')} upgraded${n.failed ? `, ${n.failed} failed` : ''}${n.skipped ? `, ${n.skipped} skipped` : ''}`;
}

/**
 * Whether the watch is over. A Paused or Canceled upgrade may still have nodes running
 * (they are never interrupted): the watch waits for them so the final counts are true.
 * With `throughPause`, a pause does not end the watch: only Completed, Canceled or a
 * failed snapshot do.
 */
export function outcomeOf(snapshot: UpgradeSnapshot, throughPause: boolean): WatchOutcome | undefined {
  const { upgrade } = snapshot;
  const what = `${componentDisplayName[upgrade.component]} upgrade ${upgrade.id}`;
  switch (upgrade.state) {
    case 'Completed':
      return {
        kind: 'completed',
        exitCode: ExitCode.ok,
        message: `${what} completed: ${plural(upgrade.nodes.succeeded, 'node')} now run ${componentDisplayName[upgrade.component]} ${upgrade.toVersion}`,
      };
    case 'Canceled':
      if (upgrade.nodes.running > 0) return undefined;
      return { kind: 'canceled', exitCode: ExitCode.refused, message: `${what} was canceled: ${progress(upgrade)}` };
    case 'SnapshotFailed': {
      const failures = snapshotFailures(snapshot);
      return {
        kind: 'snapshotFailed',
        exitCode: ExitCode.refused,
        message: `${what} is waiting: a snapshot failed${failures.length ? ` (${failures.join('; ')})` : ''}; continue without it with \`upshift upgrade continue ${upgrade.id}\`, or stop with \`upshift upgrade quit ${upgrade.id}\``,
      };
    }
    case 'Paused': {
      if (throughPause || upgrade.nodes.running > 0) return undefined;
      const ttl = autoCancelText(upgrade);
      return {
        kind: 'paused',
        exitCode: ExitCode.refused,
        message: `${what} is paused: ${pauseCause(upgrade, nodeNames(snapshot.tasks))} (${progress(upgrade)}); resume with \`upshift upgrade resume ${upgrade.id}\`, or cancel it${ttl ? `; ${ttl}` : ''}`,
      };
    }
    case 'BackingUp':
    case 'Upgrading':
      return undefined;
    default: {
      const never: never = upgrade.state;
      return never;
    }
  }
}
