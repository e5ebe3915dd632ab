import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../src/domain/ports.js';
import { ReplicaLeases } from '../../src/engine/replica-leases.js';
import { silentLogger } from '../../src/engine/types.js';
import { dialects } from '../support/databases.js';
import { addCluster, addNodes, addUpgrade, storeForSuite } from '../support/store.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A clock whose timers fire only when the test says so (the lease renewal's). */
class ManualClock implements Clock {
  private timers: Array<() => void> = [];

  now(): number {
    return Date.now();
  }

  setTimer(_ms: number, fn: () => void): () => void {
    this.timers.push(fn);
    return () => {
      this.timers = this.timers.filter((t) => t !== fn);
    };
  }

  /** Fires the timers set so far. */
  fire(): void {
    const due = this.timers;
    this.timers = [];
    for (const fn of due) fn();
  }
}

/** A promise and what settles it. */
function gate(): { opened: Promise<void>; open(): void } {
  let open = () => undefined as void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/**
 * The lease keeper's races with its own renewal: an upgrade taken while a renewal is under
 * way is not let go by that renewal's answer (read before the upgrade was taken), and a
 * stop waits for the renewal under way, so that `release` after it leaves no lease held.
 */
for (const dialect of dialects) {
  describe(`replica leases on ${dialect}`, () => {
    const suite = storeForSuite(dialect);
    afterEach(() => vi.restoreAllMocks());

    async function activeUpgrade(name: string): Promise<string> {
      const cluster = await addCluster(suite.store, name);
      const { upgrade } = await addUpgrade(suite.store, cluster.id, await addNodes(suite.store, cluster.id, [`${name}-1`]));
      return upgrade.id;
    }

    function keeper(clock: Clock) {
      const gained: string[] = [];
      const lost: string[] = [];
      const leases = new ReplicaLeases({ store: suite.store, clock, log: silentLogger }, 15_000, {
        gained: async (id) => void gained.push(id),
        lost: (id) => void lost.push(id),
        changedElsewhere: () => undefined,
      });
      return { leases, gained, lost };
    }

    it('keeps an upgrade taken while a renewal was under way, which that renewal did not read', async () => {
      const first = await activeUpgrade('renew-a');
      const clock = new ManualClock();
      const { leases, gained, lost } = keeper(clock);
      await leases.start();
      expect(leases.holds(first)).toBe(true);

      // The next renewal reads the leases, then waits before it acts on what it read.
      const read = gate();
      const resume = gate();
      const claim = suite.store.leases.claim.bind(suite.store.leases);
      let renewal: Promise<string[]> | undefined;
      vi.spyOn(suite.store.leases, 'claim').mockImplementation((owner, ttlMs, only) => {
        if (only) return claim(owner, ttlMs, only);
        renewal = claim(owner, ttlMs).then(async (ids) => {
          read.open();
          await resume.opened;
          return ids;
        });
        return renewal;
      });
      clock.fire();
      await read.opened;

      // A new upgrade is taken meanwhile (a start on this replica), then the renewal goes on.
      const second = await activeUpgrade('renew-b');
      leases.claim(second);
      for (let i = 0; i < 100 && !leases.holds(second); i++) await sleep(20);
      expect(leases.holds(second)).toBe(true);
      resume.open();
      await renewal;
      await sleep(20);

      expect(leases.holds(first)).toBe(true);
      expect(leases.holds(second)).toBe(true);
      expect(lost).toEqual([]);
      expect(gained).toEqual([first, second]);
      expect(await suite.store.leases.ownerOf(second)).toBe(leases.owner);
      await leases.stop();
      await leases.release();
    });

    it('stops only once the renewal under way has ended, so that the release after it leaves no lease held', async () => {
      const upgrade = await activeUpgrade('stop-a');
      const clock = new ManualClock();
      const { leases } = keeper(clock);
      await leases.start();
      expect(await suite.store.leases.ownerOf(upgrade)).toBe(leases.owner);

      // The next renewal is slow to reach the database.
      const slow = gate();
      const claim = suite.store.leases.claim.bind(suite.store.leases);
      let renewal: Promise<string[]> | undefined;
      vi.spyOn(suite.store.leases, 'claim').mockImplementation((owner, ttlMs, only) => {
        renewal = slow.opened.then(() => claim(owner, ttlMs, only));
        return renewal;
      });
      clock.fire();

      // A graceful stop: stop, then release (Orchestrator.stop).
      let stopped = false;
      const stopping = leases
        .stop()
        .then(() => leases.release())
        .then(() => void (stopped = true));
      await sleep(100);
      expect(stopped).toBe(false);
      slow.open();
      await stopping;
      await renewal;

      expect(await suite.store.leases.ownerOf(upgrade)).toBeNull();
      expect(leases.holds(upgrade)).toBe(false);
    });
  });
}
