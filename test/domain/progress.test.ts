import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plannedBatchSizes, upgradeProgress, type ProgressInput } from '../../src/domain/progress.js';

const T0 = Date.parse('2026-12-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * An upgrade of `n` nodes whose batches each take `batchMs` with `soakMs` between them,
 * seen at time `at` (ms after the start): the input the server would give, and the true
 * remaining time.
 */
function scenario(n: number, cap: number, batchMs: number, soakMs: number, at: number) {
  const sizes = plannedBatchSizes(n, 0, cap);
  const batches: ProgressInput['batches'][number][] = [];
  let t = 0;
  let done = 0;
  let running = 0;
  let nextBatchAt: string | null = null;
  for (const size of sizes) {
    if (t > at) break;
    const end = t + batchMs;
    batches.push({ startedAt: iso(T0 + t), finishedAt: end <= at ? iso(T0 + end) : null });
    if (end <= at) {
      done += size;
      nextBatchAt = soakMs > 0 ? iso(T0 + end + soakMs) : null;
    } else {
      running = size;
      nextBatchAt = null;
    }
    t = end + soakMs;
  }
  const total = sizes.length * batchMs + (sizes.length - 1) * soakMs;
  const input: ProgressInput = {
    state: 'Upgrading',
    createdAt: iso(T0),
    finishedAt: null,
    nextBatchAt,
    rampStart: 0,
    cap,
    soakSeconds: soakMs / 1000,
    counts: { pending: n - done - running, running, succeeded: done, failed: 0, skipped: 0 },
    batches,
    pastBatchMs: [],
    now: T0 + at,
  };
  return { input, remainingMs: total - at, sizes };
}

describe('upgradeProgress', () => {
  it('is exact once a batch has ended when every batch takes as long, soak included', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 500 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 100, max: 60_000 }),
        fc.integer({ min: 0, max: 30_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (n, cap, batchMs, soakMs, fraction) => {
          const sizes = plannedBatchSizes(n, 0, cap);
          const total = sizes.length * batchMs + (sizes.length - 1) * soakMs;
          // From the end of the first batch to the end of the last.
          const at = Math.floor(batchMs + fraction * (total - batchMs));
          const { input, remainingMs } = scenario(n, cap, batchMs, soakMs, at);
          const p = upgradeProgress(input);
          expect(p.batches).toBe(sizes.length);
          expect(p.nodesTotal).toBe(n);
          if (remainingMs <= 0) return;
          expect(p.etaSeconds).not.toBeNull();
          expect(Math.abs((p.etaSeconds as number) * 1000 - remainingMs)).toBeLessThanOrEqual(100);
        },
      ),
    );
  });

  it('has no ETA while paused or stopped at a failed snapshot, and none before anything was measured', () => {
    const { input } = scenario(40, 4, 1000, 0, 2500);
    expect(upgradeProgress({ ...input, state: 'Paused' }).etaSeconds).toBeNull();
    expect(upgradeProgress({ ...input, state: 'SnapshotFailed' }).etaAt).toBeNull();
    const first = scenario(40, 4, 1000, 0, 500).input;
    expect(upgradeProgress(first)).toMatchObject({ batch: 1, etaSeconds: null, etaAt: null });
    // The same component's earlier batches on this cluster stand in until one ends.
    expect(upgradeProgress({ ...first, pastBatchMs: [1000, 1200, 800] }).etaSeconds).toBeGreaterThan(0);
  });

  it('plans the ramp from 1 again after a pause, with the failed nodes retried', () => {
    const { input } = scenario(40, 4, 1000, 0, 4500);
    const paused = upgradeProgress({ ...input, state: 'Paused', counts: { ...input.counts, running: 0, failed: 2 } });
    // 5 batches started (1+2+4+4+4), then 40 - 11 done + 2 failed… ramp 1,2,4,4,…
    expect(paused.plannedSizes.slice(0, 3)).toEqual([1, 2, 4]);
    expect(paused.plannedSizes.reduce((a, b) => a + b, 0)).toBe(input.counts.pending + 2);
    expect(paused.batches).toBe(paused.batch + paused.plannedSizes.length);
  });

  it('ends with no time left and the whole duration once Completed', () => {
    const p = upgradeProgress({
      ...scenario(10, 2, 1000, 0, 100_000).input,
      state: 'Completed',
      finishedAt: iso(T0 + 42_300),
      counts: { pending: 0, running: 0, succeeded: 10, failed: 0, skipped: 0 },
    });
    expect(p).toMatchObject({
      etaSeconds: 0,
      etaAt: iso(T0 + 42_300),
      elapsedSeconds: 42.3,
      nodesDone: 10,
      nodesTotal: 10,
      plannedSizes: [],
    });
  });
});

describe('an ETA with a maintenance window', () => {
  it('skips the hours the window is closed', () => {
    // 2026-12-01 is a Tuesday. Window: every day 00:00–01:00 UTC. Batches of 20 minutes.
    const window = { days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const, start: '00:00', end: '01:00', timezone: 'UTC' };
    const batchMs = 20 * 60_000;
    const input: ProgressInput = {
      state: 'Upgrading',
      createdAt: iso(T0),
      finishedAt: null,
      nextBatchAt: null,
      rampStart: 0,
      cap: 1,
      soakSeconds: 0,
      // Two batches done (00:00–00:20, 00:20–00:40), five nodes to go at 00:40.
      counts: { pending: 5, running: 0, succeeded: 2, failed: 0, skipped: 0 },
      batches: [
        { startedAt: iso(T0), finishedAt: iso(T0 + batchMs) },
        { startedAt: iso(T0 + batchMs), finishedAt: iso(T0 + 2 * batchMs) },
      ],
      pastBatchMs: [],
      window: { ...window, days: [...window.days] },
      now: T0 + 2 * batchMs,
    };
    // Batch 3 starts 00:40 (ends 01:00); batches 4–6 the next night 00:00–01:00; batch 7 at 00:00 the night after.
    const p = upgradeProgress(input);
    expect(p.etaAt).toBe(iso(T0 + 2 * 86_400_000 + batchMs));
    // Without the window: five batches back to back.
    expect(upgradeProgress({ ...input, window: null }).etaSeconds).toBe((5 * batchMs) / 1000);
  });
});
