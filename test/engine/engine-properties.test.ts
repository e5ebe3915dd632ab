import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UpshiftEvent } from '../../src/domain/events.js';
import type { ClusterDriver } from '../../src/domain/ports.js';
import { dialects } from '../support/databases.js';
import { createTestEngine, waitFor } from '../support/engine.js';

/**
 * For any node count, any failing nodes and any sequence of pause / resume / cancel at
 * any moment, the invariants an operator relies on hold. They are checked from what the
 * engine recorded (the events, in commit order) and from what the nodes saw (a driver
 * wrapper that counts concurrent runs per node).
 */
type Step = { waitMs: number; command: 'pause' | 'resume' | 'cancel' };

interface NodeWatch {
  concurrentPerNode: Map<string, number>;
  violations: string[];
}

function watchingDriver(watch: NodeWatch) {
  return (inner: ClusterDriver): ClusterDriver =>
    Object.assign(Object.create(inner) as ClusterDriver, {
      async runNodeTask(...args: Parameters<ClusterDriver['runNodeTask']>) {
        const name = args[1].node.name;
        const now = (watch.concurrentPerNode.get(name) ?? 0) + 1;
        watch.concurrentPerNode.set(name, now);
        if (now > 1) watch.violations.push(`${name} ran twice at once`);
        try {
          return await inner.runNodeTask(...args);
        } finally {
          watch.concurrentPerNode.set(name, (watch.concurrentPerNode.get(name) ?? 1) - 1);
        }
      },
    });
}

function checkEvents(events: UpshiftEvent[], cap: number): string[] {
  const problems: string[] = [];
  let state: 'running' | 'paused' | 'canceled' = 'running';
  let running = 0;
  const succeeded = new Set<string>();
  for (const e of events) {
    switch (e.type) {
      case 'upgrade.paused':
      case 'upgrade.auto_paused':
        state = 'paused';
        break;
      case 'upgrade.resumed':
        state = 'running';
        break;
      case 'upgrade.canceled':
        state = 'canceled';
        break;
      case 'node.started':
        if (state !== 'running') problems.push(`node ${e.nodeId} started while ${state}`);
        if (e.nodeId && succeeded.has(e.nodeId)) problems.push(`node ${e.nodeId} started after it succeeded`);
        running++;
        if (running > cap) problems.push(`${running} nodes running, cap ${cap}`);
        break;
      case 'node.succeeded':
        if (e.nodeId && succeeded.has(e.nodeId)) problems.push(`node ${e.nodeId} upgraded twice`);
        if (e.nodeId) succeeded.add(e.nodeId);
        running--;
        break;
      case 'node.failed':
        running--;
        break;
      default:
        break;
    }
  }
  return problems;
}

for (const dialect of dialects) {
  describe(`engine invariants on ${dialect}`, () => {
    it('hold for random node counts, failures and pause/resume/cancel sequences', async () => {
      const runs = dialect === 'sqlite' ? 20 : 10;
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 60 }),
          fc.integer({ min: 1, max: 30 }),
          fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 4 }),
          fc.array(
            fc.record({
              waitMs: fc.integer({ min: 0, max: 120 }),
              command: fc.constantFrom('pause', 'resume', 'cancel') as fc.Arbitrary<Step['command']>,
            }),
            { maxLength: 6 },
          ),
          async (nodes, pct, failing, steps) => {
            const watch: NodeWatch = { concurrentPerNode: new Map(), violations: [] };
            const t = await createTestEngine(dialect, { wrapDriver: watchingDriver(watch) });
            try {
              const failNodes = failing.filter((n) => n <= nodes).map((n) => `sim-${String(n).padStart(3, '0')}`);
              const cluster = await t.engine.fleet.createCluster(
                { name: 'prop', kind: 'simulated', simulation: { nodes, upgradeSeconds: 0.015, failNodes, versions: { agent: '1.1.0' } } },
                'prop',
              );
              const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'docker', policy: { maxBatchPercent: pct } }, 'prop');
              for (const step of steps) {
                await new Promise((r) => setTimeout(r, step.waitMs));
                await t.engine.upgrades.command(upgrade.id, { type: step.command }, 'prop').catch(() => undefined);
              }
              // Drive it to an end: resume whenever it pauses (failed nodes succeed on retry).
              const final = await waitFor(
                async () => {
                  const u = await t.store.upgrades.get(upgrade.id);
                  if (u?.state === 'Paused') await t.engine.upgrades.command(upgrade.id, { type: 'resume' }, 'prop').catch(() => undefined);
                  const counts = await t.store.upgrades.taskCounts(upgrade.id);
                  return u && ['Completed', 'Canceled'].includes(u.state) && counts.running === 0 ? u : undefined;
                },
                30_000,
                'the upgrade to end',
              );
              const counts = await t.store.upgrades.taskCounts(upgrade.id);
              expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(nodes);
              expect(counts.pending).toBe(0);
              if (final.state === 'Completed') expect(counts.succeeded).toBe(nodes);
              else expect(counts.succeeded + counts.failed + counts.skipped).toBe(nodes);
              const events = (await t.store.events.list({ upgradeId: upgrade.id, limit: 100_000 })).reverse();
              expect(checkEvents(events, final.cap)).toEqual([]);
              expect(watch.violations).toEqual([]);
              const upgraded = (await t.store.nodes.list(cluster.id)).filter((n) => n.versions.docker === '28.5.2').length;
              expect(upgraded).toBe(counts.succeeded);
            } finally {
              await t.close();
            }
          },
        ),
        { numRuns: runs },
      );
    }, 240_000);
  });
}
