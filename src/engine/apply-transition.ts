import { componentDisplayName } from '../domain/components.js';
import { durationInWords, formatDuration } from '../domain/duration.js';
import { ENGINE_ACTOR, EventType, type NewEvent } from '../domain/events.js';
import type { PublicGate } from '../domain/gates.js';
import type { NodeTaskRecord, SnapshotRecord, UpgradeRecord } from '../domain/model.js';
import type { EndReason, Transition, UpgradeState } from '../domain/upgrade-state.js';
import type { Store } from '../store/store.js';
import type { NewLease, UpgradePatch } from '../store/upgrades.js';
import { isoTime } from './types.js';

/**
 * The one writer of an upgrade's state (docs/design.md §3: one decider, one writer).
 * `decide()` chooses a transition; this module writes it, for an operator's command as
 * for what the engine observed: the row's new state by compare-and-set on `from`, the
 * pause reason and the timestamps, what the transition implies for the node tasks
 * (failed ones retried on resume, pending ones skipped on cancel) and the upgrade's
 * history (purged when a paused upgrade expires), and the transition's event, all in one
 * transaction. A compare-and-set that loses (another command, the engine or another
 * replica moved the upgrade first) writes nothing and says so.
 *
 * No other code writes an upgrade's `state`: the batch loop's own compare-and-sets on
 * `Upgrading` (soak, next batch) only guard and time its batches.
 */

/** What `decide` accepted. */
export type AcceptedTransition = Extract<Transition, { ok: true }>;

/**
 * Why a transition happens: the operator's command or the engine's observation that
 * `decide` answered, with what its row change and event need.
 */
export type TransitionCause =
  | { type: 'pause' | 'resume' | 'continue' | 'cancel' | 'quit'; actor: string }
  | { type: 'snapshotsSucceeded' }
  | { type: 'snapshotFailed'; failedNodes: readonly string[]; snapshots: number }
  | { type: 'nodeFailed'; nodeId: string | null; message: string }
  | { type: 'gateFailed'; gate: PublicGate; gateIndex: number; message: string }
  | { type: 'allSucceeded' }
  | { type: 'pausedTtlExpired'; pausedTtlMs: number };

export type AppliedTransition =
  { applied: true; from: UpgradeState; to: UpgradeState; event: NewEvent | null } | { applied: false; reason: string };

/**
 * Writes `transition` (decided for `cause`) to the upgrade's row and its history, in one
 * transaction (`store` may already be one), as of the engine's time `at`.
 */
export function applyTransition(
  store: Store,
  upgrade: UpgradeRecord,
  transition: AcceptedTransition,
  cause: TransitionCause,
  at: number,
): Promise<AppliedTransition> {
  return store.tx(async (tx) => {
    const now = isoTime(at);
    const { from, to } = transition;
    const name = componentDisplayName[upgrade.component];
    const cas = (patch: Omit<UpgradePatch, 'state'>) => tx.upgrades.casState(upgrade.id, from, { ...patch, state: to });
    const event = (type: NewEvent['type'], actor: string, message: string, more: Partial<NewEvent> = {}): NewEvent => ({
      type,
      actor,
      clusterId: upgrade.clusterId,
      upgradeId: upgrade.id,
      nodeId: null,
      message,
      ...more,
    });
    const ended = (kind: EndReason['kind'], actor: string, message: string): EndReason => ({ kind, actor, at: now, message });
    // What the upgrade was paused for, said once more in why it ended.
    const wasPaused = upgrade.pauseReason ? ` (it was paused: ${upgrade.pauseReason.message})` : '';
    let written: NewEvent | null;
    switch (cause.type) {
      case 'pause': {
        const { actor } = cause;
        if (!(await cas({ pauseReason: { kind: 'user', actor, message: `paused by ${actor}` }, pausedAt: now }))) return lost(from, cause);
        const counts = await tx.upgrades.taskCounts(upgrade.id);
        written = event(
          EventType.upgradePaused,
          actor,
          `${name} upgrade paused by ${actor}; ${counts.running} running node(s) will finish, ${counts.pending} will wait`,
        );
        break;
      }
      case 'resume': {
        const { actor } = cause;
        // The ramp starts again at 1 from the next batch.
        const rampStart = (await tx.upgrades.listBatches(upgrade.id)).length;
        if (!(await cas({ pauseReason: null, pausedAt: null, nextBatchAt: null, rampStart }))) return lost(from, cause);
        const retried = await tx.upgrades.moveTasks(upgrade.id, 'failed', 'pending', null);
        const pausedFor = upgrade.pausedAt ? ` after ${durationInWords(at - Date.parse(upgrade.pausedAt))} paused` : '';
        written = event(
          EventType.upgradeResumed,
          actor,
          `${name} upgrade resumed by ${actor}${pausedFor}; batches ramp from 1 again${retried > 0 ? `, ${retried} failed node(s) will be retried` : ''}`,
        );
        break;
      }
      case 'continue': {
        if (!(await cas({ pausedAt: null }))) return lost(from, cause);
        written = event(
          EventType.upgradeContinued,
          cause.actor,
          `${cause.actor} chose to continue the ${name} upgrade without the failed snapshots`,
        );
        break;
      }
      case 'cancel':
      case 'quit': {
        const { actor } = cause;
        // The counts are read before the row moves: the end reason is written with it.
        const counts = await tx.upgrades.taskCounts(upgrade.id);
        const verb = cause.type === 'quit' ? 'quit after a failed snapshot' : 'canceled';
        const outcome = `${counts.pending} node(s) will not be upgraded, ${counts.succeeded} stay upgraded${counts.running > 0 ? `, ${counts.running} running node(s) will finish` : ''}`;
        const reason = ended(
          cause.type === 'quit' ? 'quit' : 'canceled',
          actor,
          `${cause.type === 'quit' ? 'Quit after a failed snapshot' : 'Canceled'} by ${actor}${wasPaused}; ${outcome}`,
        );
        if (!(await cas({ finishedAt: now, pauseReason: null, endReason: reason }))) return lost(from, cause);
        await tx.upgrades.moveTasks(upgrade.id, 'pending', 'skipped', now);
        written = event(EventType.upgradeCanceled, actor, `${name} upgrade ${verb} by ${actor}; ${outcome}`);
        break;
      }
      case 'snapshotsSucceeded': {
        // The snapshots' own events tell it; the first batch's event follows.
        if (!(await cas({}))) return lost(from, cause);
        written = null;
        break;
      }
      case 'snapshotFailed': {
        // Waiting for an operator from now: the paused TTL counts from `pausedAt`.
        if (!(await cas({ pausedAt: now }))) return lost(from, cause);
        const { failedNodes, snapshots } = cause;
        written = event(
          EventType.upgradeSnapshotFailed,
          ENGINE_ACTOR,
          `${failedNodes.length} of ${snapshots} snapshots failed (${failedNodes.join(', ')}): continue without them or quit`,
        );
        break;
      }
      case 'nodeFailed': {
        const { nodeId, message } = cause;
        if (!(await cas({ pauseReason: { kind: 'error', message, nodeId }, pausedAt: now, nextBatchAt: null }))) return lost(from, cause);
        written = event(EventType.upgradeAutoPaused, ENGINE_ACTOR, `paused automatically: ${message}`, { nodeId });
        break;
      }
      case 'gateFailed': {
        // Nothing new starts; the cause names the gate and what its last check saw.
        const { gate, gateIndex, message } = cause;
        if (!(await cas({ pauseReason: { kind: 'gate', gate, gateIndex, message }, pausedAt: now, nextBatchAt: null })))
          return lost(from, cause);
        written = event(EventType.upgradeAutoPaused, ENGINE_ACTOR, `paused automatically: gate ${gateIndex + 1} kept failing: ${message}`, {
          data: { gate, gateIndex },
        });
        break;
      }
      case 'allSucceeded': {
        const counts = await tx.upgrades.taskCounts(upgrade.id);
        const message = `${name} ${upgrade.toVersion} is on all ${counts.succeeded} nodes`;
        if (!(await cas({ finishedAt: now, endReason: ended('completed', ENGINE_ACTOR, `Completed: ${message}`) })))
          return lost(from, cause);
        written = event(EventType.upgradeCompleted, ENGINE_ACTOR, message);
        break;
      }
      case 'pausedTtlExpired': {
        const waited = from === 'SnapshotFailed' ? 'stopped at a failed snapshot' : 'paused';
        const reason = ended(
          'auto_canceled',
          ENGINE_ACTOR,
          `Canceled automatically after ${durationInWords(cause.pausedTtlMs)} ${waited}${wasPaused}; its events and logs were deleted`,
        );
        if (!(await cas({ finishedAt: now, pauseReason: null, endReason: reason }))) return lost(from, cause);
        const skipped = await tx.upgrades.moveTasks(upgrade.id, 'pending', 'skipped', now);
        // The history goes, and this event, written after the purge, is what remains of it.
        const purged = await tx.events.purgeUpgradeHistory(upgrade.id);
        written = event(
          EventType.upgradeAutoCanceled,
          ENGINE_ACTOR,
          `canceled automatically after being ${waited} for more than ${formatDuration(cause.pausedTtlMs)}; its ${purged.events} events and ${purged.logLines} log lines were deleted, ${skipped} nodes were never started`,
          { data: { ...purged, skipped, pausedAt: upgrade.pausedAt } },
        );
        break;
      }
      default: {
        const never: never = cause;
        return never;
      }
    }
    if (written) await tx.events.append(written);
    return { applied: true, from, to, event: written };
  });
}

function lost(from: UpgradeState, cause: TransitionCause): AppliedTransition {
  return {
    applied: false,
    reason: `the upgrade was no longer ${from} when the ${cause.type} was written: another command, the engine or another replica changed it first`,
  };
}

/**
 * A new upgrade as `applyStart` writes it: the row in its start state, its node tasks and
 * snapshots, and the start event; with `lease`, the row leased to the replica that
 * starts it (docs/design.md §8).
 */
export interface NewUpgrade {
  upgrade: UpgradeRecord;
  tasks: Array<NodeTaskRecord & { sortKey: number }>;
  snapshots: SnapshotRecord[];
  event: NewEvent;
  lease?: NewLease | undefined;
}

/**
 * The first write of an upgrade: its row in the state `startState` chose, with its
 * tasks, snapshots and event. The caller holds the cluster's lock in the same
 * transaction, which is what keeps a cluster at one active upgrade.
 */
export async function applyStart(store: Store, start: NewUpgrade): Promise<void> {
  await store.tx(async (tx) => {
    await tx.upgrades.insert(start.upgrade, start.lease);
    await tx.upgrades.insertTasks(start.tasks);
    if (start.snapshots.length > 0) await tx.upgrades.insertSnapshots(start.snapshots);
    await tx.events.append(start.event);
  });
}
