import { rampSize } from './batch-planner.js';
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
  now: number;
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
  let ms = 0;
  if (current && current.finishedAt === null) {
    // The running batch: what the median leaves of it, and no less than nothing.
    ms += Math.max(0, perBatch - (now - Date.parse(current.startedAt)));
    ms += plannedSizes.length * (perBatch + soakMs);
  } else if (plannedSizes.length > 0) {
    // Between batches: the soak under way (or the first batch about to start), then the rest.
    const soakLeft = input.nextBatchAt ? Math.max(0, Date.parse(input.nextBatchAt) - now) : 0;
    ms += soakLeft + plannedSizes.length * perBatch + (plannedSizes.length - 1) * soakMs;
  }
  const etaSeconds = Math.round(ms / 100) / 10;
  return { ...base, etaSeconds, etaAt: new Date(now + ms).toISOString() };
}
