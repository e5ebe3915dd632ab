import { describe, expect, it } from 'vitest';
import type { NewEvent, UpshiftEvent } from '../../src/domain/events.js';
import { LOG_HEAD_BYTES, LOG_TAIL_BYTES } from '../../src/store/node-logs.js';
import { dialects } from '../support/databases.js';
import { addCluster, addNodes, addUpgrade, storeForSuite } from '../support/store.js';

/**
 * The events and node logs repositories on each database: filters and both cursors of
 * the event list, publication on the bus only after a commit (and never for a rollback),
 * and the bound of a node task's log with its head, tail and the bytes dropped between.
 */
for (const dialect of dialects) {
  describe(`events and node logs repositories on ${dialect}`, () => {
    const suite = storeForSuite(dialect);

    const event = (over: Partial<NewEvent>): NewEvent => ({
      type: 'cluster.created',
      actor: 'tester',
      clusterId: null,
      upgradeId: null,
      nodeId: null,
      message: 'something happened',
      ...over,
    });

    it('lists events newest first by filter, pages back with before and replays forward with after', async () => {
      const c1 = await addCluster(suite.store, 'ev-1');
      const c2 = await addCluster(suite.store, 'ev-2');
      const written = await suite.store.events.appendMany(
        Array.from({ length: 12 }, (_, i) =>
          event({
            type: i % 3 === 0 ? 'node.failed' : 'node.succeeded',
            clusterId: i % 2 === 0 ? c1.id : c2.id,
            message: `event ${i}`,
            data: { i },
          }),
        ),
      );
      // In order, with increasing ids, data parsed back.
      expect(written.map((e) => e.message)).toEqual(Array.from({ length: 12 }, (_, i) => `event ${i}`));
      expect(written.map((e) => Number(e.id))).toEqual([...written.map((e) => Number(e.id))].sort((a, b) => a - b));
      expect(written[5]?.data).toEqual({ i: 5 });
      const audit = await suite.store.events.append(event({ type: 'audit.request', clusterId: c1.id, message: 'POST /x' }));
      expect(audit.data).toBeUndefined();

      const ofC1 = await suite.store.events.list({ clusterId: c1.id, limit: 100 });
      expect(ofC1.map((e) => e.message)).toEqual(['event 10', 'event 8', 'event 6', 'event 4', 'event 2', 'event 0']);
      // The audit trail only by its type.
      expect((await suite.store.events.list({ clusterId: c1.id, type: 'audit.request', limit: 10 })).map((e) => e.id)).toEqual([audit.id]);
      expect((await suite.store.events.list({ clusterId: c1.id, type: 'node.failed', limit: 10 })).map((e) => e.message)).toEqual([
        'event 6',
        'event 0',
      ]);
      // Newest-first pages by `before`.
      const first = await suite.store.events.list({ clusterId: c2.id, limit: 4 });
      const second = await suite.store.events.list({ clusterId: c2.id, limit: 4, before: first[first.length - 1]?.id });
      expect([...first, ...second].map((e) => e.message)).toEqual(['event 11', 'event 9', 'event 7', 'event 5', 'event 3', 'event 1']);
      // A replay after an id is oldest first.
      const replay = await suite.store.events.list({ clusterId: c2.id, limit: 2, after: written[5]?.id });
      expect(replay.map((e) => e.message)).toEqual(['event 7', 'event 9']);
    });

    it('publishes a transaction’s events after its commit, and a rolled-back one’s never', async () => {
      const seen: UpshiftEvent[] = [];
      const listener = (e: UpshiftEvent) => seen.push(e);
      suite.store.bus.on('event', listener);
      try {
        const c = await addCluster(suite.store, 'tx-events');
        let inside = -1;
        await suite.store.tx(async (tx) => {
          await tx.events.append(event({ clusterId: c.id, message: 'committed 1' }));
          await tx.events.appendMany([event({ clusterId: c.id, message: 'committed 2' })]);
          inside = seen.length;
        });
        expect(inside).toBe(0);
        expect(seen.map((e) => e.message)).toEqual(['committed 1', 'committed 2']);

        const failure = new Error('the step failed');
        await expect(
          suite.store.tx(async (tx) => {
            await tx.events.append(event({ clusterId: c.id, message: 'rolled back' }));
            await tx.nodes.insert([
              {
                id: 'nd_rolledback',
                clusterId: c.id,
                name: 'r',
                role: 'worker',
                status: 'Ready',
                versions: {},
                distribution: null,
                createdAt: '',
              },
            ]);
            // A nested tx runs in the same transaction and rolls back with it.
            await tx.tx((inner) => inner.clusters.setUnavailable(c.id, 'unreachable'));
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(seen.map((e) => e.message)).toEqual(['committed 1', 'committed 2']);
        expect((await suite.store.events.list({ clusterId: c.id, limit: 10 })).map((e) => e.message)).toEqual([
          'committed 2',
          'committed 1',
        ]);
        expect(await suite.store.nodes.get('nd_rolledback')).toBeUndefined();
        expect((await suite.store.clusters.get(c.id))?.unavailableReason).toBeNull();
      } finally {
        suite.store.bus.off('event', listener);
      }
    });

    it('keeps a node task’s log to its head and tail, counts what was dropped, and reads it page by page', async () => {
      const c = await addCluster(suite.store, 'logs');
      const { upgrade, tasks } = await addUpgrade(suite.store, c.id, await addNodes(suite.store, c.id, ['l1', 'l2']));
      const [task, other] = tasks as [(typeof tasks)[0], (typeof tasks)[0]];
      const at = '2026-01-01T00:00:00.000Z';
      const line = (i: number) => `line ${String(i).padStart(6, '0')} ${'x'.repeat(1000)}`;
      const bytesOf = (i: number) => Buffer.byteLength(`${at} ${line(i)}\n`);
      // 1,500 lines of ~1 KiB: more than head and tail together hold.
      for (let i = 0; i < 1500; i += 100) {
        await suite.store.logs.append(
          Array.from({ length: 100 }, (_, j) => ({ upgradeId: upgrade.id, nodeTaskId: task.id, at, line: line(i + j) })),
        );
      }
      await suite.store.logs.append([{ upgradeId: upgrade.id, nodeTaskId: other.id, at, line: 'another task' }]);
      // Lines of a task that does not exist are dropped.
      await suite.store.logs.append([{ upgradeId: upgrade.id, nodeTaskId: 'nt_none', at, line: 'lost' }]);

      const log = await suite.store.logs.read(task.id);
      const numbers = log.map((l) => Number(l.line.slice(5, 11)));
      const headCount = Math.floor(LOG_HEAD_BYTES / bytesOf(0));
      const tailCount = Math.floor(LOG_TAIL_BYTES / bytesOf(0));
      expect(numbers.slice(0, headCount)).toEqual(Array.from({ length: headCount }, (_, i) => i));
      expect(numbers.slice(headCount)).toEqual(Array.from({ length: tailCount }, (_, i) => 1500 - tailCount + i));
      const dropped = await suite.store.logs.droppedBytes(task.id);
      expect(dropped).toBe((1500 - headCount - tailCount) * bytesOf(0));
      expect(await suite.store.logs.read(other.id)).toEqual([{ at, line: 'another task' }]);
      expect(await suite.store.logs.droppedBytes(other.id)).toBe(0);

      // Pages follow on from the cursor of the last line, across the head and the tail.
      const paged: string[] = [];
      let after;
      for (;;) {
        const page = await suite.store.logs.readPage(task.id, after, 97);
        paged.push(...page.map((l) => l.line));
        if (page.length < 97) break;
        after = page[page.length - 1];
      }
      expect(paged).toEqual(log.map((l) => l.line));

      // The paused-TTL purge takes the upgrade's events and logs.
      await suite.store.events.append(event({ clusterId: c.id, upgradeId: upgrade.id, message: 'of the upgrade' }));
      const purged = await suite.store.events.purgeUpgradeHistory(upgrade.id);
      expect(purged).toEqual({ events: 1, logLines: headCount + tailCount + 1 });
      expect(await suite.store.logs.read(task.id)).toEqual([]);
      expect(await suite.store.logs.droppedBytes(task.id)).toBe(0);
    });

    it('stores the lines of many tasks from one append as written, in their order', async () => {
      const c = await addCluster(suite.store, 'log-text');
      const { upgrade, tasks } = await addUpgrade(suite.store, c.id, await addNodes(suite.store, c.id, ['t1', 't2', 't3']));
      const at = '2026-01-01T00:00:00.000Z';
      // Text that JSON escapes, SQL quotes, several scripts, an emoji (a surrogate pair) and a lone surrogate.
      const texts = ['plain', 'a "quoted" \\ back\\slash', "it's; -- not sql", 'über 東京 ☃ 🚀', 'tab\there', 'lone \ud800 surrogate', ''];
      // Interleaved: the tasks' lines arrive mixed, each task's in its own order.
      const rows = texts.flatMap((line, j) =>
        tasks.map((t, i) => ({ upgradeId: upgrade.id, nodeTaskId: t.id, at, line: `${i}.${j} ${line}` })),
      );
      await suite.store.logs.append(rows);
      for (const [i, t] of tasks.entries()) {
        const expected = texts.map((line, j) => ({ at, line: `${i}.${j} ${line.replace('\ud800', '\ufffd')}` }));
        expect(await suite.store.logs.read(t.id)).toEqual(expected);
      }
    });
  });
}
