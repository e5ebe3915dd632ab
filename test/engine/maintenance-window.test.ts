import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { MaintenanceWindow } from '../../src/domain/maintenance-window.js';
import { windowStatus } from '../../src/domain/maintenance-window.js';
import { waitingFor } from '../../src/domain/progress.js';
import { dialects } from '../support/databases.js';
import { createTestEngine, type TestEngine, waitFor } from '../support/engine.js';

const HOUR = 3_600_000;
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
const everyDay: MaintenanceWindow['days'] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** A UTC window of every day from `opensIn` to `opensIn + hours` from now (whole minutes). */
function windowFrom(now: number, opensInMs: number, hours: number): { window: MaintenanceWindow; opensAt: number; closesAt: number } {
  const opensAt = Math.ceil((now + opensInMs) / 60_000) * 60_000;
  const closesAt = opensAt + hours * HOUR;
  return { window: { days: everyDay, start: hhmm(opensAt), end: hhmm(closesAt), timezone: 'UTC' }, opensAt, closesAt };
}

/**
 * Maintenance windows in the engine, on the injected clock: no batch starts while the
 * window is closed, a batch under way when it closes finishes, and pause, resume and
 * cancel work while the upgrade waits.
 */
for (const dialect of dialects) {
  describe(`maintenance windows on ${dialect}`, () => {
    let t: TestEngine;
    afterEach(async () => {
      await t?.close();
    });

    async function start(nodes: number, upgradeSeconds: number, window: MaintenanceWindow) {
      const cluster = await t.engine.fleet.createCluster(
        { name: 'windowed', kind: 'simulated', simulation: { nodes, upgradeSeconds, versions: { agent: '1.1.0' } } },
        'tester',
      );
      return t.engine.upgrades.start(cluster.id, { component: 'docker', policy: { maxBatchPercent: 20, window } }, 'tester');
    }
    const batches = async (id: string) => t.store.upgrades.listBatches(id);
    const settle = () => new Promise((r) => setTimeout(r, 300));

    it('waits for the window, Upgrading, and can be paused, resumed and canceled while it waits', async () => {
      t = await createTestEngine(dialect);
      const { window, opensAt } = windowFrom(t.clock.now(), 2 * HOUR, 1);
      const upgrade = await start(10, 0.05, window);
      expect(upgrade.policy.window).toEqual(window);
      await settle();
      expect(await batches(upgrade.id)).toHaveLength(0);
      const waiting = await t.store.upgrades.get(upgrade.id);
      expect(waiting?.state).toBe('Upgrading');
      const counts = await t.store.upgrades.taskCounts(upgrade.id);
      expect(waitingFor({ state: 'Upgrading', counts, nextBatchAt: null, window, now: t.clock.now() })).toEqual({
        reason: 'window',
        until: new Date(opensAt).toISOString(),
      });

      expect((await t.engine.upgrades.command(upgrade.id, { type: 'pause' }, 'tester')).state).toBe('Paused');
      expect((await t.engine.upgrades.command(upgrade.id, { type: 'resume' }, 'tester')).state).toBe('Upgrading');
      await settle();
      expect(await batches(upgrade.id)).toHaveLength(0);

      // The window opens: the batches run.
      t.clock.advance(opensAt - t.clock.now() + 1000);
      await waitFor(async () => (await t.store.upgrades.get(upgrade.id))?.state === 'Completed', 20_000, 'completion');
      for (const b of await batches(upgrade.id)) expect(windowStatus(window, Date.parse(b.startedAt)).open).toBe(true);

      // A second upgrade waiting for a window is canceled after a pause, having started nothing.
      const again = await t.engine.upgrades.start(
        (
          await t.engine.fleet.createCluster(
            { name: 'w2', kind: 'simulated', simulation: { nodes: 5, versions: { agent: '1.1.0' } } },
            'tester',
          )
        ).id,
        { component: 'docker', policy: { window: windowFrom(t.clock.now(), 3 * HOUR, 1).window } },
        'tester',
      );
      await settle();
      await t.engine.upgrades.command(again.id, { type: 'pause' }, 'tester');
      expect((await t.engine.upgrades.command(again.id, { type: 'cancel' }, 'tester')).state).toBe('Canceled');
      expect(await batches(again.id)).toHaveLength(0);
      expect((await t.store.upgrades.taskCounts(again.id)).skipped).toBe(5);
    });

    it('lets a batch under way finish when the window closes, and starts the next one when it opens again', async () => {
      t = await createTestEngine(dialect);
      // Open now for one more minute (the window opened 59 minutes ago); nodes take 10 minutes.
      const { window, closesAt } = windowFrom(t.clock.now(), -59 * 60_000, 1);
      const upgrade = await start(10, 600, window);
      await waitFor(async () => (await batches(upgrade.id)).length === 1 || undefined, 10_000, 'the first batch');
      // Past the close: the first batch's node finishes, nothing new starts.
      t.clock.advance(11 * 60_000);
      await waitFor(async () => (await batches(upgrade.id))[0]?.finishedAt !== null || undefined, 10_000, 'the first batch to finish');
      await settle();
      const afterClose = await batches(upgrade.id);
      expect(afterClose).toHaveLength(1);
      expect(afterClose[0]?.state).toBe('succeeded');
      expect(Date.parse(afterClose[0]!.finishedAt!)).toBeGreaterThan(closesAt);
      const stillWaiting = await t.store.upgrades.get(upgrade.id);
      expect(stillWaiting?.state).toBe('Upgrading');
      // The next day's opening starts batch 2.
      const next = windowStatus(window, t.clock.now());
      expect(next.open).toBe(false);
      t.clock.advance((next.open ? 0 : next.opensAt) - t.clock.now() + 1000);
      await waitFor(async () => (await batches(upgrade.id)).length === 2 || undefined, 10_000, 'the second batch');
      const second = (await batches(upgrade.id))[1]!;
      expect(windowStatus(window, Date.parse(second.startedAt)).open).toBe(true);
    });

    it('refuses a bad window with what to fix and starts nothing', async () => {
      t = await createTestEngine(dialect);
      const cluster = await t.engine.fleet.createCluster(
        { name: 'bad', kind: 'simulated', simulation: { nodes: 3, versions: { agent: '1.1.0' } } },
        'tester',
      );
      const bad = { days: ['sat'], start: '02:00', end: '04:00', timezone: 'Europe/Atlantis' };
      await expect(t.engine.upgrades.start(cluster.id, { component: 'docker', policy: { window: bad } }, 'tester')).rejects.toThrow(
        /policy.window.timezone must be an IANA time zone name/,
      );
      expect(await t.store.upgrades.activeOf(cluster.id)).toBeUndefined();
    });

    /** Steps the injected clock until the upgrade ends, giving the engine a moment after each step. */
    async function runToEnd(upgradeId: string, stepMs: number, maxSteps: number) {
      for (let i = 0; i < maxSteps; i++) {
        const u = await t.store.upgrades.get(upgradeId);
        if (u && (u.state === 'Completed' || u.state === 'Canceled')) return u;
        t.clock.advance(stepMs);
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`upgrade ${upgradeId} did not end in ${maxSteps} steps of ${stepMs} ms`);
    }

    it('starts every batch inside its window, on the night the clocks skip an hour (Europe/Berlin)', async () => {
      t = await createTestEngine(dialect);
      // To Saturday 2027-03-27 12:00Z; that night Berlin goes from 02:00 CET to 03:00 CEST.
      t.clock.advance(Date.parse('2027-03-27T12:00:00Z') - t.clock.now());
      const window: MaintenanceWindow = { days: ['sun'], start: '01:30', end: '04:00', timezone: 'Europe/Berlin' };
      const cluster = await t.engine.fleet.createCluster(
        { name: 'dst', kind: 'simulated', simulation: { nodes: 4, upgradeSeconds: 1200, versions: { agent: '1.1.0' } } },
        'tester',
      );
      const upgrade = await t.engine.upgrades.start(
        cluster.id,
        { component: 'docker', policy: { maxBatchPercent: 100, window } },
        'tester',
      );
      const done = await runToEnd(upgrade.id, 10 * 60_000, 400);
      expect(done.state).toBe('Completed');
      const starts = (await batches(upgrade.id)).map((b) => Date.parse(b.startedAt));
      expect(starts).toHaveLength(3);
      // 01:30 CET is 00:30Z; 04:00 CEST is 02:00Z: one and a half hours of real time.
      expect(starts[0]).toBeGreaterThanOrEqual(Date.parse('2027-03-28T00:30:00Z'));
      expect(starts[0]).toBeLessThan(Date.parse('2027-03-28T00:41:00Z'));
      for (const at of starts) expect(at).toBeLessThan(Date.parse('2027-03-28T02:00:00Z'));
    });

    it('never starts a batch outside its window (property: random windows, the clock stepped past them)', async () => {
      t = await createTestEngine(dialect);
      const hhmm = fc
        .tuple(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 15, 30, 45))
        .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.subarray([...everyDay], { minLength: 2 }),
          hhmm,
          fc.integer({ min: 1, max: 6 }),
          fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'),
          async (days, start, hours, timezone) => {
            const [h, m] = start.split(':').map(Number) as [number, number];
            const end = `${String((h + hours) % 24).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
            const window: MaintenanceWindow = { days, start, end, timezone };
            const cluster = await t.engine.fleet.createCluster(
              { name: `prop-${run++}`, kind: 'simulated', simulation: { nodes: 6, upgradeSeconds: 1800, versions: { agent: '1.1.0' } } },
              'tester',
            );
            const upgrade = await t.engine.upgrades.start(
              cluster.id,
              { component: 'docker', policy: { maxBatchPercent: 50, window } },
              'tester',
            );
            expect((await runToEnd(upgrade.id, 40 * 60_000, 1000)).state).toBe('Completed');
            for (const b of await batches(upgrade.id))
              expect(windowStatus(upgrade.policy.window!, Date.parse(b.startedAt)).open).toBe(true);
          },
        ),
        { numRuns: 3 },
      );
    }, 120_000);
  });
}
