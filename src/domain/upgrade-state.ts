import { ErrorCode, UpshiftError } from './errors.js';
import type { PublicGate } from './gates.js';

/**
 * The states of an upgrade (docs/design.md §3 has the table of transitions).
 *
 * - `BackingUp`: every node to upgrade is being snapshotted. Exits: all snapshots
 *   succeeded → Upgrading; one failed → SnapshotFailed; cancel → Canceled (nothing has
 *   been upgraded yet, so stopping here is always safe).
 * - `SnapshotFailed`: the operator decides. continue → Upgrading; quit (or cancel) →
 *   Canceled.
 * - `Upgrading`: batches are dispatched. pause → Paused (refused when no node is left
 *   unstarted); a node failure or a gate that kept failing → Paused automatically; every node succeeded →
 *   Completed; cancel is refused: pause first, so that an operator never cancels while
 *   a batch is being dispatched.
 * - `Paused`: nothing new starts; started nodes finish. resume → Upgrading with the ramp
 *   back at 1 and failed nodes retried; cancel → Canceled; paused longer than the TTL →
 *   Canceled automatically, with the events and logs purged.
 * - `Canceled`, `Completed`: final.
 */
export const UpgradeState = {
  BackingUp: 'BackingUp',
  SnapshotFailed: 'SnapshotFailed',
  Upgrading: 'Upgrading',
  Paused: 'Paused',
  Canceled: 'Canceled',
  Completed: 'Completed',
} as const;
export type UpgradeState = (typeof UpgradeState)[keyof typeof UpgradeState];
export const upgradeStates: readonly UpgradeState[] = Object.values(UpgradeState);
export const finalStates: readonly UpgradeState[] = ['Canceled', 'Completed'];
/** The states of an upgrade that is not over: a cluster has at most one upgrade in them. */
export const activeStates: readonly UpgradeState[] = upgradeStates.filter((s) => !finalStates.includes(s));

export function isActiveState(state: UpgradeState): boolean {
  return !finalStates.includes(state);
}

/** Why an upgrade is paused: by a person, by the engine after a failure, or by a health gate that kept failing. */
export type PauseReason =
  | { kind: 'user'; actor: string; message: string }
  | { kind: 'error'; message: string; nodeId: string | null }
  | { kind: 'gate'; gate: PublicGate; gateIndex: number; message: string };

/** How an upgrade ended (docs/design.md §3), kept on it for good: the last word an operator reads. */
export const endReasonKinds = ['completed', 'canceled', 'quit', 'auto_canceled'] as const;
export type EndReasonKind = (typeof endReasonKinds)[number];

/**
 * Why a terminal upgrade ended: `completed` (every node succeeded), `canceled` (by an
 * operator), `quit` (by an operator after a failed snapshot), `auto_canceled` (paused, or
 * stopped at a failed snapshot, for longer than the paused TTL). `actor` is who ended it
 * (`engine` for the system), `at` when.
 */
export interface EndReason {
  kind: EndReasonKind;
  actor: string;
  at: string;
  message: string;
}

/** What an operator can ask of an upgrade. */
export type OperatorCommand =
  { type: 'pause' } | { type: 'resume'; deleteFailedPods?: boolean } | { type: 'cancel' } | { type: 'continue' } | { type: 'quit' };

/** What the upgrade engine observes of an upgrade's progress; `decide` answers it as it answers an operator's command. */
export type SystemObservation =
  | { type: 'snapshotsSucceeded' }
  | { type: 'snapshotFailed' }
  | { type: 'nodeFailed'; nodeId: string; message: string }
  | { type: 'gateFailed'; message: string }
  | { type: 'allSucceeded' }
  | { type: 'pausedTtlExpired' };

export type UpgradeCommand = OperatorCommand | SystemObservation;

/** The facts a decision needs besides the state. */
export interface UpgradeFacts {
  state: UpgradeState;
  /** Nodes neither started nor finished in this upgrade (pending, including failed ones to retry on resume: not counted). */
  unstartedNodes: number;
  /** Kubernetes: failed executor pods of this upgrade still exist. */
  failedPodsPresent?: boolean;
}

export type Transition = { ok: true; from: UpgradeState; to: UpgradeState; automatic: boolean } | { ok: false; refusal: UpshiftError };

function to(from: UpgradeState, next: UpgradeState, automatic = false): Transition {
  return { ok: true, from, to: next, automatic };
}

function refuse(code: ErrorCode, message: string): Transition {
  return { ok: false, refusal: new UpshiftError(code, message) };
}

function finished(state: UpgradeState, command: string): Transition {
  return refuse(ErrorCode.INVALID_STATE, `the upgrade is ${state}; there is nothing to ${command}`);
}

/**
 * The state a new upgrade starts in: `BackingUp` when snapshots are asked for first,
 * else `Upgrading`. Its exits are `decide`'s.
 */
export function startState(snapshotsFirst: boolean): UpgradeState {
  return snapshotsFirst ? 'BackingUp' : 'Upgrading';
}

/**
 * The one place that decides a transition. The engine's `applyTransition` writes the
 * result with a compare-and-set on `from`; nothing else writes an upgrade's state.
 */
export function decide(facts: UpgradeFacts, command: UpgradeCommand): Transition {
  const { state } = facts;
  switch (state) {
    case 'BackingUp':
      switch (command.type) {
        case 'snapshotsSucceeded':
          return to(state, 'Upgrading', true);
        case 'snapshotFailed':
          return to(state, 'SnapshotFailed', true);
        case 'cancel':
          return to(state, 'Canceled');
        case 'pause':
          return refuse(ErrorCode.INVALID_STATE, 'snapshots are being taken and no node has been touched; cancel to stop here');
        default:
          return refuse(ErrorCode.INVALID_STATE, `cannot ${command.type} while snapshots are being taken`);
      }
    case 'SnapshotFailed':
      switch (command.type) {
        case 'continue':
          return to(state, 'Upgrading');
        case 'quit':
        case 'cancel':
          return to(state, 'Canceled');
        case 'pausedTtlExpired':
          return to(state, 'Canceled', true);
        default:
          return refuse(ErrorCode.INVALID_STATE, `a snapshot failed: continue without it or quit (cannot ${command.type})`);
      }
    case 'Upgrading':
      switch (command.type) {
        case 'pause':
          if (facts.unstartedNodes === 0) {
            return refuse(ErrorCode.NOTHING_TO_PAUSE, 'every node has already started; there is nothing left to pause');
          }
          return to(state, 'Paused');
        case 'nodeFailed':
        case 'gateFailed':
          return to(state, 'Paused', true);
        case 'allSucceeded':
          return to(state, 'Completed', true);
        case 'cancel':
          return refuse(ErrorCode.PAUSE_FIRST, 'the upgrade is running: pause it first, then cancel');
        case 'resume':
          return refuse(ErrorCode.INVALID_STATE, 'the upgrade is already running');
        default:
          return refuse(ErrorCode.INVALID_STATE, `cannot ${command.type} while Upgrading`);
      }
    case 'Paused':
      switch (command.type) {
        case 'resume':
          if (facts.failedPodsPresent && !command.deleteFailedPods) {
            return refuse(
              ErrorCode.FAILED_PODS_PRESENT,
              'failed executor pods of this upgrade are still in the runtime-upgrade namespace: delete them after troubleshooting, or resume with deleteFailedPods',
            );
          }
          return to(state, 'Upgrading');
        case 'cancel':
          return to(state, 'Canceled');
        case 'pausedTtlExpired':
          return to(state, 'Canceled', true);
        case 'nodeFailed':
          return refuse(ErrorCode.INVALID_STATE, 'already paused');
        case 'pause':
          return refuse(ErrorCode.INVALID_STATE, 'the upgrade is already paused');
        default:
          return refuse(ErrorCode.INVALID_STATE, `cannot ${command.type} while Paused`);
      }
    case 'Canceled':
    case 'Completed':
      return finished(state, command.type);
    default: {
      const never: never = state;
      return never;
    }
  }
}
