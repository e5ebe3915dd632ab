import { afterEach, describe, expect, it } from 'vitest';
import { dialects } from '../support/databases.js';
import { createTestEngine, type TestEngine, waitFor } from '../support/engine.js';

const DAY = 86_400_000;

/**
 * `upgrade.auto_cancel_warning`: recorded once per paused period, the configured time
 * (24 h by default) before the paused TTL cancels the upgrade, at most half the TTL after
 * the pause; not again after a restart; again after a resume and a new pause. The clock
 * is the engine's (a test clock that jumps days).
 */
for (const dialect of dialects) {
  describe(`the auto-cancel warning on ${dialect}`, () => {
    let t: TestEngine | undefined;
    afterEach(async () => {
      await t?.close();
      t = undefined;
    });

    const warnings = async (engine: TestEngine, upgradeId: string) =>
      (await engine.store.events.list({ upgradeId, types: ['upgrade.auto_cancel_warning'], limit: 100 })).reverse();
    const settle = () => new Promise((r) => setTimeout(r, 150));

    async function pausedUpgrade(engine: TestEngine, name: string) {
      const cluster = await engine.engine.fleet.createCluster(
        { name, kind: 'simulated', simulation: { nodes: 30, upgradeSeconds: 0.05, versions: { agent: '1.1.0' } } },
        'tester',
      );
      const upgrade = await engine.engine.upgrades.start(cluster.id, { component: 'docker' }, 'tester');
      await waitFor(async () => (await engine.store.upgrades.listBatches(upgrade.id)).length >= 2 || undefined);
      await engine.engine.upgrades.command(upgrade.id, { type: 'pause' }, 'tester');
      await waitFor(async () => (await engine.store.upgrades.taskCounts(upgrade.id)).running === 0, 20_000, 'running nodes to finish');
      return upgrade;
    }

    it('warns once 24 h before the cancel, not again after a restart, and anew for a new pause', async () => {
      t = await createTestEngine(dialect);
      const upgrade = await pausedUpgrade(t, 'warn');
      t.clock.advance(13 * DAY);
      await settle();
      expect(await warnings(t, upgrade.id)).toEqual([]);

      t.clock.advance(DAY + 1000);
      const [first] = await waitFor(async () => {
        const w = await warnings(t!, upgrade.id);
        return w.length > 0 ? w : undefined;
      });
      const paused = await t.store.upgrades.get(upgrade.id);
      expect(first).toMatchObject({ type: 'upgrade.auto_cancel_warning', actor: 'engine', clusterId: upgrade.clusterId });
      expect(first?.data).toEqual({
        pausedAt: paused?.pausedAt,
        autoCancelAt: new Date(Date.parse(paused!.pausedAt!) + 15 * DAY).toISOString(),
      });
      expect(first?.message).toMatch(/will be canceled automatically at .* unless it is resumed or canceled/);

      // A restart checks the paused upgrade again: the warning of this period was given.
      t = await t.restart();
      t.clock.advance(3600_000);
      await settle();
      expect(await warnings(t, upgrade.id)).toHaveLength(1);
      expect((await t.store.upgrades.get(upgrade.id))?.state).toBe('Paused');

      // Resumed, then paused again: a new period, a new warning a day before its own end.
      await t.engine.upgrades.command(upgrade.id, { type: 'resume' }, 'tester');
      await t.engine.upgrades.command(upgrade.id, { type: 'pause' }, 'tester');
      const again = (await t.store.upgrades.get(upgrade.id))!;
      expect(again.state).toBe('Paused');
      t.clock.advance(13 * DAY);
      await settle();
      expect(await warnings(t, upgrade.id)).toHaveLength(1);
      t.clock.advance(DAY + 1000);
      const both = await waitFor(async () => {
        const w = await warnings(t!, upgrade.id);
        return w.length === 2 ? w : undefined;
      });
      expect(both[1]?.data?.['pausedAt']).toBe(again.pausedAt);
      expect(both[1]?.data?.['pausedAt']).not.toBe(first?.data?.['pausedAt']);

      // And the cancel comes when the TTL ends, as before.
      t.clock.advance(DAY);
      await waitFor(async () => (await t!.store.upgrades.get(upgrade.id))?.state === 'Canceled' || undefined);
    });

    it('warns at half the TTL when the warning is not shorter than the TTL', async () => {
      t = await createTestEngine(dialect, { pausedTtlMs: 10 * DAY, autoCancelWarningMs: 30 * DAY });
      const upgrade = await pausedUpgrade(t, 'clamp');
      t.clock.advance(4 * DAY);
      await settle();
      expect(await warnings(t, upgrade.id)).toEqual([]);
      t.clock.advance(DAY + 1000);
      const [warning] = await waitFor(async () => {
        const w = await warnings(t!, upgrade.id);
        return w.length > 0 ? w : undefined;
      });
      expect(warning?.data?.['autoCancelAt']).toBe(
        new Date(Date.parse((await t.store.upgrades.get(upgrade.id))!.pausedAt!) + 10 * DAY).toISOString(),
      );
      expect((await t.store.upgrades.get(upgrade.id))?.state).toBe('Paused');
    });
  });
}
