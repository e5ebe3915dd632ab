import { rampSize } from './batch-planner.js';
import { formatDuration } from './duration.js';
import { describeWindowTime, type MaintenanceWindow, windowStatus } from './maintenance-window.js';
import type { UpgradeState } from './upgrade-state.js';

/**
 * Where an upgrade stands and when it should end (docs/design.md §4, "Progress").
 *
 * The estimate is honest before it is precise: it is made only from durations measured
 * (this upgrade's finished batches, else the same component's batches in earlier upgrades
 * of the same cluster), it is `null` while nothing is known or while the upgrade waits for
 * a person (Paused, SnapshotFailed), and it is never a guess of how long a person takes.
 */
export interface UpgradeProgress {
  /** 1-based number of the batch running, or of the last one started; 0 before the first. */
  batch: number;
  /** Batches started plus the batches the policy plans for the nodes still to do. */
  batches: number;
  /** Sizes of the batches still to start, in order (what the console shows greyed). */
  plannedSizes: number[];
  nodesDone: number;
  nodesTotal: number;
  elapsedSeconds: number;
  etaSeconds: number | null;
  etaAt: string | null;
}

export interface ProgressInput {
  state: UpgradeState;
  createdAt: string;
  finishedAt: string | null;
  /** Soak: the next batch starts no earlier. */
  nextBatchAt: string | null;
  rampStart: number;
  cap: number;
  soakSeconds: number;
  counts: { pending: number; running: number; succeeded: number; failed: number; skipped: number };
  batches: ReadonlyArray<{ startedAt: string; finishedAt: string | null }>;
  /** Durations (ms) of the same component's batches in this cluster's earlier upgrades. */
  pastBatchMs: readonly number[];
  /** Batches start only while it is open: the estimate skips the closed hours. */
  window?: MaintenanceWindow | null | undefined;
  now: number;
}

/**
 * What an `Upgrading` upgrade with no batch running waits for before its next batch, and
 * until when: the soak's end, the window's opening, or for a failing health gate the time
 * it pauses the upgrade unless it passes first.
 */
export type Waiting = { reason: 'soak' | 'window' | 'gate'; until: string };

export function waitingFor(
  input: Pick<ProgressInput, 'state' | 'counts' | 'nextBatchAt' | 'window' | 'now'> & {
    /** The earliest retry deadline of the gates failing their last check before this batch, if any. */
    gateRetryUntil?: string | null | undefined;
  },
): Waiting | null {
  const { state, counts, now } = input;
  if (state !== 'Upgrading' || counts.running > 0 || counts.pending === 0) return null;
  if (input.nextBatchAt && Date.parse(input.nextBatchAt) > now) return { reason: 'soak', until: input.nextBatchAt };
  if (input.window) {
    const status = windowStatus(input.window, now);
    if (!status.open) return { reason: 'window', until: new Date(status.opensAt).toISOString() };
  }
  if (input.gateRetryUntil) return { reason: 'gate', until: input.gateRetryUntil };
  return null;
}

/**
 * What the upgrade waits for, in the words the CLI and the console share: "waiting for the
 * maintenance window (opens Mon 02:00 Europe/Berlin, in 3h12m)", "soaking after batch 3:
 * the next batch starts in 4m10s".
 */
export function describeWaiting(waiting: Waiting, window: MaintenanceWindow | null | undefined, now: number, batch: number): string {
  const until = Date.parse(waiting.until);
  const left = formatDuration(Math.max(0, until - now));
  if (waiting.reason === 'window') {
    const opens = window ? `opens ${describeWindowTime(until, window.timezone)}, ` : '';
    return `waiting for the maintenance window (${opens}in ${left})`;
  }
  if (waiting.reason === 'gate') {
    return `waiting for a failing health gate before batch ${batch + 1}: checked again until it passes, pauses in ${left} otherwise`;
  }
  return `soaking after batch ${batch}: the next batch starts in ${left}`;
}

/**
 * The earliest time at or after `t` when a batch may start, for a run of increasing `t`s:
 * the window's state is looked up again only once `t` passes the time it last changes.
 */
function batchStarts(window: MaintenanceWindow | null | undefined): (t: number) => number {
  if (!window) return (t) => t;
  let openUntil = -Infinity;
  return (t) => {
    if (t < openUntil) return t;
    const status = windowStatus(window, t);
    if (status.open) {
      openUntil = status.closesAt;
      return t;
    }
    const opened = windowStatus(window, status.opensAt);
    openUntil = opened.open ? opened.closesAt : -Infinity;
    return status.opensAt;
  };
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Sizes of the batches that will take `remaining` nodes, the ramp at `k`: min(2^k, cap,
 * what is left) each. Swarm's one-manager-per-batch rule can add batches while managers
 * remain; it is not modelled here, so `batches` may grow by the managers left minus one.
 */
export function plannedBatchSizes(remaining: number, k: number, cap: number): number[] {
  const sizes: number[] = [];
  let left = remaining;
  for (let i = k; left > 0; i++) {
    const size = Math.min(rampSize(i), cap, left);
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

export function upgradeProgress(input: ProgressInput): UpgradeProgress {
  const { state, counts, batches, now } = input;
  const nodesTotal = counts.pending + counts.running + counts.succeeded + counts.failed + counts.skipped;
  const end = input.finishedAt ? Date.parse(input.finishedAt) : now;
  const elapsedSeconds = Math.max(0, Math.round((end - Date.parse(input.createdAt)) / 100) / 10);
  const terminal = state === 'Completed' || state === 'Canceled';
  // Failed nodes are retried when a paused upgrade resumes, and the ramp starts again at 1.
  const waiting = state === 'Paused' || state === 'SnapshotFailed';
  const remaining = terminal ? 0 : counts.pending + (state === 'Paused' ? counts.failed : 0);
  const k = state === 'Paused' ? 0 : Math.max(0, batches.length - input.rampStart);
  const plannedSizes = plannedBatchSizes(remaining, k, input.cap);
  const base = {
    batch: batches.length,
    batches: batches.length + plannedSizes.length,
    plannedSizes,
    nodesDone: counts.succeeded,
    nodesTotal,
    elapsedSeconds,
  };

  if (state === 'Completed') return { ...base, etaSeconds: 0, etaAt: input.finishedAt };
  if (terminal || waiting) return { ...base, etaSeconds: null, etaAt: null };

  const measured = batches.flatMap((b) => (b.finishedAt ? [Date.parse(b.finishedAt) - Date.parse(b.startedAt)] : []));
  const perBatch = median(measured.length > 0 ? measured : input.pastBatchMs);
  if (perBatch === null) return { ...base, etaSeconds: null, etaAt: null };

  const soakMs = input.soakSeconds * 1000;
  const current = batches[batches.length - 1];
  // The batches to come on a time line: each starts after the previous one and its soak,
  // and no earlier than the window allows.
  const startAt = batchStarts(input.window);
  let t = now;
  if (current && current.finishedAt === null) {
    // The running batch: what the median leaves of it, and no less than nothing.
    t += Math.max(0, perBatch - (now - Date.parse(current.startedAt)));
    for (let i = 0; i < plannedSizes.length; i++) t = startAt(t + soakMs) + perBatch;
  } else if (plannedSizes.length > 0) {
    // Between batches: the soak under way (or the first batch about to start), then the rest.
    t = Math.max(now, input.nextBatchAt ? Date.parse(input.nextBatchAt) : now);
    for (let i = 0; i < plannedSizes.length; i++) t = startAt(i === 0 ? t : t + soakMs) + perBatch;
  }
  const ms = t - now;
  const etaSeconds = Math.round(ms / 100) / 10;
  return { ...base, etaSeconds, etaAt: new Date(now + ms).toISOString() };
}
