import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderNodes } from '../../src/domain/batch-planner.js';
import { compareNatural } from '../../src/domain/versions.js';
import { dialects, freshPgDatabase } from '../support/databases.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * The lists that grow with the fleet are paged (issue 13): a cluster's nodes and an
 * upgrade's nodes come `?limit=` at a time (default 500, at most 5,000) after `?cursor=`,
 * as `{items, nextCursor}`, in a stable order, through the real server on SQLite and on
 * PostgreSQL. The PostgreSQL database here uses an ICU collation (en-US), under which text
 * does not compare by bytes: the order must still be the natural order of names. (How
 * migration 9 gives the nodes of an older database their sort key: test/store/migrations.test.ts.)
 */

interface NodeItem {
  id: string;
  name: string;
  role: 'manager' | 'worker';
}
interface TaskItem {
  nodeId: string;
  nodeName: string;
  state: string;
  snapshot: { state: string } | null;
}

for (const dialect of dialects) {
  describe(`paged node lists on ${dialect}`, () => {
    let s: ServerProcess;
    let dropDb: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      let database: string | undefined;
      if (dialect === 'postgres') {
        const db = await freshPgDatabase({ icuLocale: 'en-US' });
        database = db.url;
        dropDb = db.drop;
      }
      s = await startServerProcess({ database });
    });
    afterAll(async () => {
      await s?.stop();
      s?.cleanup();
      await dropDb?.();
    });

    /** Every page of a list from the first, following nextCursor; checks the shape of each answer. */
    async function walk<T>(path: string, limit?: number) {
      const items: T[] = [];
      const sizes: number[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10_000; page++) {
        const query = new URLSearchParams();
        if (limit !== undefined) query.set('limit', String(limit));
        if (cursor !== null) query.set('cursor', cursor);
        const res = await s.api(`${path}${query.size ? `?${query}` : ''}`);
        expect(res.status, res.text).toBe(200);
        expect(Object.keys(res.body).sort()).toEqual(['items', 'nextCursor']);
        items.push(...(res.body.items as T[]));
        sizes.push(res.body.items.length);
        cursor = res.body.nextCursor as string | null;
        if (cursor === null) return { items, sizes };
        expect(typeof cursor).toBe('string');
      }
      throw new Error(`${path} never reached its last page`);
    }

    const expectRefused = async (path: string, status: number, code: string, mentions: string) => {
      const res = await s.api(path);
      expect(res.status, `${path}: ${res.text}`).toBe(status);
      // The standard envelope and nothing else: no items of a page slip out with the error.
      expect(Object.keys(res.body)).toEqual(['error']);
      expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message']);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toContain(mentions);
    };

    let cluster: { id: string; name: string };
    let names: string[];
    let nodes: NodeItem[];

    it('walks all 1,203 nodes of a cluster, each exactly once, in natural order of names', async () => {
      const made = await s.api('/api/v1/clusters', {
        body: {
          name: 'walk',
          kind: 'simulated',
          simulation: { nodes: 1200, managers: 2, upgradeSeconds: 60, versions: { agent: '1.1.0', docker: '20.10.24' } },
        },
      });
      expect(made.status, made.text).toBe(201);
      cluster = made.body;
      // Names that only a natural order puts right: `sim-2` just before `sim-0002` (same
      // number, fewer digits), `sim-10` after `sim-0009`, and a capital letter (bytes put
      // `Z` before `s`, an en-US collation would put it last).
      for (const name of ['sim-2', 'sim-10', 'Zeta-1']) {
        expect((await s.api(`/api/v1/clusters/${cluster.id}/nodes`, { body: { name } })).status).toBe(201);
      }
      const all = await walk<NodeItem>(`/api/v1/clusters/${cluster.id}/nodes`);
      expect(all.sizes).toEqual([500, 500, 203]);
      nodes = all.items;
      names = nodes.map((n) => n.name);
      expect(new Set(names).size).toBe(1203);
      expect(names).toEqual([...names].sort(compareNatural));
      expect(names.slice(0, 4)).toEqual(['Zeta-1', 'sim-0001', 'sim-2', 'sim-0002']);
      expect(names.slice(-3)).toEqual(['sim-1198', 'sim-1199', 'sim-1200']);
      expect(names.indexOf('sim-10')).toBe(names.indexOf('sim-0010') - 1);
      // The cluster's name works as well as its id, and other limits give the same order.
      expect((await walk<NodeItem>(`/api/v1/clusters/walk/nodes`, 97)).items.map((n) => n.name)).toEqual(names);
    });

    it('accepts limits 1 and 5,000 and refuses anything else, and cursors it did not give, with the error envelope', async () => {
      const path = `/api/v1/clusters/${cluster.id}/nodes`;
      const one = await s.api(`${path}?limit=1`);
      expect(one.status).toBe(200);
      expect(one.body.items.map((n: NodeItem) => n.name)).toEqual([names[0]]);
      const second = await s.api(`${path}?limit=1&cursor=${one.body.nextCursor}`);
      expect(second.body.items.map((n: NodeItem) => n.name)).toEqual([names[1]]);
      const max = await s.api(`${path}?limit=5000`);
      expect(max.status).toBe(200);
      expect(max.body.items).toHaveLength(1203);
      expect(max.body.nextCursor).toBeNull();

      await expectRefused(`${path}?limit=0`, 422, 'VALIDATION_FAILED', 'limit must be from 1 to 5000');
      await expectRefused(`${path}?limit=5001`, 422, 'VALIDATION_FAILED', 'limit must be from 1 to 5000');
      for (const bad of ['abc', '-1', '1.5', '', '1e3', '%20']) {
        await expectRefused(`${path}?limit=${bad}`, 400, 'BAD_REQUEST', 'limit must be a whole number from 1 to 5000');
      }
      const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const badCursors = [
        'not a cursor!',
        'abc',
        '',
        cursorOf({ l: 'nodes', s: cluster.id }),
        cursorOf({ l: 'nodes', s: 'cl_someothercluster', a: 'sim-' }),
        cursorOf({ l: 'tasks', s: cluster.id, a: 3 }),
        cursorOf({ l: 'nodes', s: cluster.id, a: 42 }),
        cursorOf(['nodes', cluster.id, 'x']),
        'x'.repeat(9000),
      ];
      for (const bad of badCursors) {
        const tooLong = bad.length > 8192;
        await expectRefused(
          `${path}?cursor=${encodeURIComponent(bad)}`,
          tooLong ? 422 : 400,
          tooLong ? 'VALIDATION_FAILED' : 'BAD_REQUEST',
          'cursor',
        );
      }
      await expectRefused(`${path}?cursor=abc`, 400, 'BAD_REQUEST', 'pass the nextCursor of the previous page as it is');
      // A cursor of another cluster's list is refused rather than read as this one's.
      const other = await s.api('/api/v1/clusters', { body: { name: 'other', kind: 'simulated', simulation: { nodes: 3 } } });
      await expectRefused(`/api/v1/clusters/${other.body.id}/nodes?cursor=${one.body.nextCursor}`, 400, 'BAD_REQUEST', 'cursor');
      await expectRefused(`${path}?page=2`, 400, 'BAD_REQUEST', 'page');
      // The longest name the API takes, digits and letters alternating (the longest key), pages through.
      const long = 'a1'.repeat(31) + 'a';
      expect((await s.api(`/api/v1/clusters/${other.body.id}/nodes`, { body: { name: long } })).status).toBe(201);
      const walked = await walk<NodeItem>(`/api/v1/clusters/${other.body.id}/nodes`, 1);
      expect(walked.sizes).toEqual([1, 1, 1, 1]);
      expect(walked.items.map((n) => n.name)).toEqual([long, 'sim-001', 'sim-002', 'sim-003']);
    });

    it('keeps pages stable while nodes come and go: each node that stays is listed once', async () => {
      const made = await s.api('/api/v1/clusters', { body: { name: 'shifting', kind: 'simulated', simulation: { nodes: 250 } } });
      const path = `/api/v1/clusters/${made.body.id}/nodes`;
      const seen: string[] = [];
      let cursor: string | null = null;
      let page = 0;
      do {
        const res = await s.api(`${path}?limit=50${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        seen.push(...res.body.items.map((n: NodeItem) => n.name));
        cursor = res.body.nextCursor;
        if (++page === 3) {
          // Behind the cursor (not listed any more), ahead of it (listed), and one removed ahead.
          expect((await s.api(path, { body: { name: 'sim-001a' } })).status).toBe(201);
          expect((await s.api(path, { body: { name: 'sim-200a' } })).status).toBe(201);
          expect((await s.api(`${path}/sim-201`, { method: 'DELETE' })).status).toBe(204);
        }
      } while (cursor !== null);
      const expected = Array.from({ length: 250 }, (_, i) => `sim-${String(i + 1).padStart(3, '0')}`).filter((n) => n !== 'sim-201');
      expected.splice(expected.indexOf('sim-200') + 1, 0, 'sim-200a');
      expect(seen).toEqual(expected);
    });

    it('walks an upgrade’s 1,203 nodes in the upgrade’s order, with each page’s snapshots', async () => {
      const start = await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker', snapshot: 'before' } });
      expect(start.status, start.text).toBe(201);
      const path = `/api/v1/upgrades/${start.body.id}/nodes`;
      const all = await walk<TaskItem>(path);
      expect(all.sizes).toEqual([500, 500, 203]);
      const order = orderNodes(nodes).map((n) => n.name);
      expect(order.slice(0, 2)).toEqual(['sim-0001', 'sim-0002']); // the managers
      expect(all.items.map((t) => t.nodeName)).toEqual(order);
      expect(new Set(all.items.map((t) => t.nodeId)).size).toBe(1203);
      expect(all.items.every((t) => t.snapshot !== null && typeof t.snapshot.state === 'string')).toBe(true);

      const one = await s.api(`${path}?limit=1`);
      expect(one.body.items.map((t: TaskItem) => t.nodeName)).toEqual([order[0]]);
      const next = await s.api(`${path}?limit=1&cursor=${one.body.nextCursor}`);
      expect(next.body.items.map((t: TaskItem) => t.nodeName)).toEqual([order[1]]);
      const max = await s.api(`${path}?limit=5000`);
      expect(max.body.items).toHaveLength(1203);
      expect(max.body.nextCursor).toBeNull();

      await expectRefused(`${path}?limit=0`, 422, 'VALIDATION_FAILED', 'limit');
      await expectRefused(`${path}?limit=5001`, 422, 'VALIDATION_FAILED', 'limit');
      await expectRefused(`${path}?limit=abc`, 400, 'BAD_REQUEST', 'limit');
      await expectRefused(`${path}?cursor=abc`, 400, 'BAD_REQUEST', 'cursor');
      // A cursor of the cluster's node list is not one of the upgrade's.
      const nodePage = await s.api(`/api/v1/clusters/${cluster.id}/nodes?limit=1`);
      await expectRefused(`${path}?cursor=${nodePage.body.nextCursor}`, 400, 'BAD_REQUEST', 'cursor');
      await expectRefused(`/api/v1/upgrades/upg_0000000000000000/nodes?limit=1`, 404, 'NOT_FOUND', 'upg_0000000000000000');
    });
  });
}
