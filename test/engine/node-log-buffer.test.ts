import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeLogBuffer } from '../../src/engine/node-log-buffer.js';
import { silentLogger } from '../../src/engine/types.js';
import { JumpClock } from '../support/clock.js';
import { type TestStore, addCluster, addNodes, addUpgrade, openTestStore } from '../support/store.js';

/** A JumpClock that says how many of its timers are pending. */
class CountingClock extends JumpClock {
  pending = 0;
  override setTimer(ms: number, fn: () => void): () => void {
    this.pending++;
    let done = false;
    const settle = () => {
      if (!done) this.pending--;
      done = true;
    };
    const cancel = super.setTimer(ms, () => {
      settle();
      fn();
    });
    return () => {
      settle();
      cancel();
    };
  }
}

/**
 * The node log buffer on SQLite: lines wait at most until the next quarter second and are
 * then in the database; with no line waiting it keeps no timer, so an idle server sleeps.
 */
describe('the node log buffer', () => {
  let db: TestStore;
  beforeAll(async () => {
    db = await openTestStore('sqlite');
  });
  afterAll(async () => {
    await db?.close();
  });

  it('writes waiting lines at the next quarter second, and keeps no timer while none wait', async () => {
    const c = await addCluster(db.store, 'logs');
    const nodes = await addNodes(db.store, c.id, ['l1']);
    const { upgrade, tasks } = await addUpgrade(db.store, c.id, nodes);
    const clock = new CountingClock();
    const buffer = new NodeLogBuffer({ store: db.store, clock, log: silentLogger });
    buffer.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(clock.pending, 'timers while nothing waits').toBe(0);

    buffer.push(upgrade.id, tasks[0]!.id, 'stopping docker');
    buffer.push(upgrade.id, tasks[0]!.id, 'docker stopped');
    expect(clock.pending).toBe(1);
    const pushedAt = Date.now();
    while ((await db.store.logs.read(tasks[0]!.id)).length < 2) {
      expect(Date.now() - pushedAt, 'ms until the lines are written').toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await db.store.logs.read(tasks[0]!.id)).map((l) => l.line)).toEqual(['stopping docker', 'docker stopped']);
    await new Promise((r) => setTimeout(r, 50));
    expect(clock.pending, 'timers once the lines are written').toBe(0);

    // Stopped, it schedules nothing; the caller's last flush writes what came after.
    buffer.stop();
    buffer.push(upgrade.id, tasks[0]!.id, 'late line');
    expect(clock.pending).toBe(0);
    await buffer.flush();
    expect((await db.store.logs.read(tasks[0]!.id)).map((l) => l.line)).toContain('late line');
  });
});
