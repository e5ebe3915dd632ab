import { afterEach, describe, expect, it, vi } from 'vitest';
import { dialects } from '../support/databases.js';
import { addCluster, addNodes, addUpgrade, storeForSuite } from '../support/store.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The leases repository on each database: which upgrades a replica may drive, that a live
 * lease is never taken, that an ended one is, and that both are decided by the database's
 * clock: a replica whose own clock is an hour off changes nothing.
 */
for (const dialect of dialects) {
  describe(`leases repository on ${dialect}`, () => {
    const suite = storeForSuite(dialect);
    afterEach(() => {
      vi.useRealTimers();
    });

    /** An active upgrade in a cluster of its own. */
    async function activeUpgrade(name: string) {
      const c = await addCluster(suite.store, name);
      return (await addUpgrade(suite.store, c.id, await addNodes(suite.store, c.id, [`${name}-1`]))).upgrade;
    }

    it('claims active upgrades and finished ones with a running node, never another replica’s live lease', async () => {
      const active = await activeUpgrade('lease-active');
      const finished = await activeUpgrade('lease-finished');
      const draining = await activeUpgrade('lease-draining');
      const [task] = await suite.store.upgrades.listTasks(draining.id);
      await suite.store.upgrades.casTask(task!.id, 'pending', 0, { state: 'running', attempt: 1 });
      const now = new Date().toISOString();
      await suite.store.upgrades.casState(finished.id, 'Upgrading', { state: 'Completed', finishedAt: now });
      await suite.store.upgrades.casState(draining.id, 'Upgrading', { state: 'Canceled', finishedAt: now });

      const a = await suite.store.leases.claim('replica-a', 60_000);
      expect(a).toContain(active.id);
      expect(a).toContain(draining.id);
      expect(a).not.toContain(finished.id);
      expect(await suite.store.leases.ownerOf(active.id)).toBe('replica-a');
      expect(await suite.store.leases.claim('replica-b', 60_000)).toEqual([]);
      expect(await suite.store.leases.claim('replica-b', 60_000, active.id)).toEqual([]);
      // Renewal: the owner claims what it holds again.
      expect((await suite.store.leases.claim('replica-a', 60_000)).sort()).toEqual(a.sort());
      expect(await suite.store.leases.claim('replica-a', 60_000, active.id)).toEqual([active.id]);
      await suite.store.leases.release('replica-a');
      expect(await suite.store.leases.ownerOf(active.id)).toBeNull();
      // Released: another replica takes them at once.
      expect((await suite.store.leases.claim('replica-b', 60_000)).sort()).toEqual(a.sort());
      await suite.store.leases.release('replica-b');
    });

    it('lets another replica take a lease once it ended, and then the old owner has lost it', async () => {
      const upgrade = await activeUpgrade('lease-ended');
      expect(await suite.store.leases.claim('replica-a', 200, upgrade.id)).toEqual([upgrade.id]);
      expect(await suite.store.leases.claim('replica-b', 60_000, upgrade.id)).toEqual([]);
      await sleep(400);
      expect(await suite.store.leases.claim('replica-b', 60_000, upgrade.id)).toEqual([upgrade.id]);
      expect(await suite.store.leases.claim('replica-a', 200, upgrade.id)).toEqual([]);
      expect(await suite.store.leases.ownerOf(upgrade.id)).toBe('replica-b');
      await suite.store.leases.release('replica-b');
    });

    it('decides by the database’s clock: a replica whose clock is an hour ahead or behind steals nothing and takes over on time', async () => {
      const upgrade = await activeUpgrade('lease-skew');
      expect(await suite.store.leases.claim('replica-a', 60_000, upgrade.id)).toEqual([upgrade.id]);
      // Ahead: by its own clock replica-a's lease ended long ago.
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 3_600_000);
      expect(await suite.store.leases.claim('replica-b', 60_000, upgrade.id)).toEqual([]);
      vi.useRealTimers();
      await suite.store.leases.release('replica-a');

      // Behind: by its own clock a 200 ms lease would still run for an hour.
      expect(await suite.store.leases.claim('replica-a', 200, upgrade.id)).toEqual([upgrade.id]);
      await sleep(400);
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() - 3_600_000);
      expect(await suite.store.leases.claim('replica-b', 60_000, upgrade.id)).toEqual([upgrade.id]);
      vi.useRealTimers();
      await suite.store.leases.release('replica-b');
    });
  });
}
