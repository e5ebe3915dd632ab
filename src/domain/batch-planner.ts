import { compareNatural } from './versions.js';
import type { NodeRole } from './components.js';

/**
 * The batch policy (docs/design.md §4). Batch k (k counted from the start or from the latest
 * resume) holds `min(2^k, cap, remaining)` nodes with
 * `cap = max(1, floor(total × maxBatchPercent / 100))`. Nodes go in a stable order:
 * managers first, then natural order of names. A batch never holds two managers, so
 * that a Swarm never loses more than one manager at a time; a batch that would take a
 * second manager stops before it (it may hold a manager and workers once the last
 * manager is reached, since workers do not vote).
 */
export interface PlannableNode {
  id: string;
  name: string;
  role: NodeRole;
}

export function batchCap(total: number, maxBatchPercent: number): number {
  return Math.max(1, Math.floor((total * maxBatchPercent) / 100));
}

/** The size the ramp allows for batch k before the cap and the remaining count. */
export function rampSize(k: number): number {
  return k >= 30 ? 2 ** 30 : 2 ** k;
}

export function orderNodes<T extends PlannableNode>(nodes: readonly T[]): T[] {
  return [...nodes].sort((a, b) => {
    if (a.role !== b.role) {
      if (a.role === 'manager') return -1;
      if (b.role === 'manager') return 1;
    }
    return compareNatural(a.name, b.name) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  });
}

/** The most nodes batch k may hold: the ramp's size, at most the cap. */
export function batchSizeLimit(k: number, cap: number): number {
  return Math.min(rampSize(k), cap);
}

/** How many nodes from `ordered[start]` on make batch k: the policy's size, stopping before a second manager. */
function batchLength(ordered: readonly PlannableNode[], start: number, k: number, cap: number): number {
  const size = Math.min(batchSizeLimit(k, cap), ordered.length - start);
  let managers = 0;
  let n = 0;
  while (n < size) {
    if ((ordered[start + n] as PlannableNode).role === 'manager') {
      if (managers === 1) break;
      managers++;
    }
    n++;
  }
  return n;
}

/**
 * The next batch from nodes still to do, already in `orderNodes` order.
 * @param k the batch's index since the start or the latest resume
 */
export function planNextBatch<T extends PlannableNode>(ordered: readonly T[], k: number, cap: number): T[] {
  return ordered.slice(0, batchLength(ordered, 0, k, cap));
}

/**
 * Every batch from `k` on, assuming each succeeds: what `plan` shows and what the
 * engine will do if nothing fails or pauses. The batches are cut from the ordered list
 * by position, so that planning 100,000 nodes copies each node once (issue 17).
 */
export function planBatches<T extends PlannableNode>(nodes: readonly T[], cap: number, startK = 0): T[][] {
  const ordered = orderNodes(nodes);
  const batches: T[][] = [];
  for (let start = 0, k = startK; start < ordered.length; k++) {
    const length = batchLength(ordered, start, k, cap);
    batches.push(ordered.slice(start, start + length));
    start += length;
  }
  return batches;
}
