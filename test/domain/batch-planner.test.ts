import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchCap, orderNodes, planBatches, planNextBatch, type PlannableNode } from '../../src/domain/batch-planner.js';

function nodes(count: number, managers = 0): PlannableNode[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `n${i}`,
    name: `sim-${String(i + 1).padStart(3, '0')}`,
    role: i < managers ? 'manager' : 'worker',
  }));
}

const sizes = (batches: unknown[][]) => batches.map((b) => b.length);

describe('batch planner', () => {
  it('gives the spec example for 50 nodes', () => {
    expect(sizes(planBatches(nodes(50), batchCap(50, 10)))).toEqual([1, 2, 4, 5, 5, 5, 5, 5, 5, 5, 5, 3]);
  });

  it('caps at max(1, floor(total × percent / 100)) for 1 to 1000 nodes', () => {
    for (let total = 1; total <= 1000; total++) {
      const cap = batchCap(total, 10);
      expect(cap).toBe(Math.max(1, Math.floor(total / 10)));
      const batches = planBatches(nodes(total), cap);
      const s = sizes(batches);
      expect(s.reduce((a, b) => a + b, 0)).toBe(total);
      expect(Math.max(...s)).toBeLessThanOrEqual(cap);
      s.forEach((size, k) => {
        const remaining = total - s.slice(0, k).reduce((a, b) => a + b, 0);
        expect(size).toBe(Math.min(2 ** k, cap, remaining));
      });
    }
  });

  it('restarts the ramp at 1 after a resume', () => {
    const all = nodes(100);
    const cap = batchCap(100, 10);
    const before = planBatches(all, cap).slice(0, 5);
    const done = before.flat().length;
    const after = planBatches(all.slice(done), cap, 0);
    expect(sizes(after).slice(0, 4)).toEqual([1, 2, 4, 8]);
  });

  it('puts managers first and never two managers in one batch', () => {
    const all = nodes(23, 3).reverse();
    const batches = planBatches(all, batchCap(23, 10));
    expect(batches[0]?.[0]?.role).toBe('manager');
    for (const batch of batches) expect(batch.filter((n) => n.role === 'manager').length).toBeLessThanOrEqual(1);
    const order = batches.flat();
    const lastManager = order.map((n) => n.role).lastIndexOf('manager');
    expect(order.slice(0, lastManager + 1).filter((n) => n.role === 'worker').length).toBe(0);
    expect(sizes(batches)).toEqual([1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]);
  });

  it('orders nodes naturally and stably', () => {
    const order = orderNodes([
      { id: 'a', name: 'n-10', role: 'worker' },
      { id: 'b', name: 'n-2', role: 'worker' },
      { id: 'c', name: 'm-9', role: 'manager' },
    ]);
    expect(order.map((n) => n.name)).toEqual(['m-9', 'n-2', 'n-10']);
  });

  it('property: any nodes, any percent: sizes follow the policy, no node twice, at most one manager a batch', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 100 }), (total, m, pct) => {
        const managers = Math.min(m, total);
        const all = nodes(total, managers);
        const cap = batchCap(total, pct);
        const batches = planBatches(all, cap);
        const flat = batches.flat();
        expect(new Set(flat.map((n) => n.id)).size).toBe(total);
        for (const [k, batch] of batches.entries()) {
          expect(batch.length).toBeGreaterThan(0);
          expect(batch.length).toBeLessThanOrEqual(Math.min(2 ** k, cap));
          expect(batch.filter((n) => n.role === 'manager').length).toBeLessThanOrEqual(1);
        }
        const next = planNextBatch(orderNodes(all), 0, cap);
        expect(next.length).toBe(1);
      }),
      { numRuns: 300 },
    );
  });
});
