import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { SQLITE_CHECKPOINT_INTERVAL_MS, cachingStatements, openSqlite } from '../../src/store/dialect.js';
import { dialects } from '../support/databases.js';
import { addCluster, storeForSuite } from '../support/store.js';

describe('SQLite statement cache', () => {
  it('reuses a compiled statement by its text and keeps at most its capacity, least recently used out first', () => {
    const database = new BetterSqlite3(':memory:');
    const cached = cachingStatements(database, 3);
    try {
      const one = cached.prepare('select 1 as n');
      expect(cached.prepare('select 1 as n')).toBe(one);
      cached.prepare('select 2 as n');
      cached.prepare('select 3 as n');
      // Used again: now the most recent, so `select 2` is the one to go.
      expect(cached.prepare('select 1 as n')).toBe(one);
      const four = cached.prepare('select 4 as n');
      expect(cached.size).toBe(3);
      expect(cached.prepare('select 1 as n')).toBe(one);
      expect(cached.prepare('select 4 as n')).toBe(four);
      expect(cached.prepare('select 1 as n').all([])).toEqual([{ n: 1 }]);
    } finally {
      cached.close();
    }
    expect(database.open).toBe(false);
  });

  it('does not keep long statements (multi-row inserts), whose compiled form is large', () => {
    const database = new BetterSqlite3(':memory:');
    const cached = cachingStatements(database, 3, 40);
    try {
      const long = `select 1 as n where 1 in (${Array(20).fill('1').join(', ')})`;
      expect(cached.prepare(long)).not.toBe(cached.prepare(long));
      expect(cached.size).toBe(0);
      expect(cached.prepare('select 2 as n')).toBe(cached.prepare('select 2 as n'));
    } finally {
      cached.close();
    }
  });

  it('prepares a fresh statement while the kept one is still iterating', () => {
    const database = new BetterSqlite3(':memory:');
    const cached = cachingStatements(database, 3);
    try {
      const text = 'select value as n from json_each(?)';
      const iterating = cached.prepare(text).iterate(['[1,2,3]']) as IterableIterator<{ n: number }>;
      expect(iterating.next().value).toEqual({ n: 1 });
      expect(cached.prepare(text).all(['[7]'])).toEqual([{ n: 7 }]);
      expect([...iterating].map((r) => r.n)).toEqual([2, 3]);
    } finally {
      cached.close();
    }
  });
});

describe('SQLite checkpoints', () => {
  it('are made by a thread of their own: the log is copied into the database file while the server writes, and removed at close', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'upshift-checkpoint-'));
    const file = path.join(dir, 'upshift.db');
    try {
      const adapter = openSqlite(file);
      await sql`create table blobs (id integer primary key, body text)`.execute(adapter.db);
      // 8 MiB in 64 commits: SQLite's own checkpoint would have run in these commits, on this thread.
      for (let i = 0; i < 64; i++) await sql`insert into blobs (body) values (${'x'.repeat(128 * 1024)})`.execute(adapter.db);
      const { rows } = await sql<Record<string, number>>`pragma wal_autocheckpoint`.execute(adapter.db);
      expect(Object.values(rows[0] ?? {})).toEqual([0]);
      const deadline = Date.now() + 10_000;
      while (statSync(file).size < 8 * 1024 * 1024 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, SQLITE_CHECKPOINT_INTERVAL_MS));
      expect(statSync(file).size).toBeGreaterThanOrEqual(8 * 1024 * 1024);
      await adapter.close();
      expect(existsSync(`${file}-wal`)).toBe(false);
      const reopened = new BetterSqlite3(file, { readonly: true });
      expect(reopened.prepare('select count(*) as n from blobs').get()).toEqual({ n: 64 });
      reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const dialect of dialects) {
  describe(`the database's clock on ${dialect}`, () => {
    const suite = storeForSuite(dialect);

    it('writes camelCase names in snake_case and reads every row back in camelCase', async () => {
      const { db } = suite.t.adapter;
      const compiled = db
        .selectFrom('nodeTasks')
        .select(['nodeId', 'id'])
        .select((eb) => eb.fn.countAll<number>().as('taskCount'))
        .where('upgradeId', '=', 'upg_x')
        .groupBy(['nodeId', 'id'])
        .compile().sql;
      expect(compiled).toBe(
        'select "node_id" as "nodeId", "id", count(*) as "taskCount" from "node_tasks" where "upgrade_id" = $1 group by "node_id", "id"'.replace(
          '$1',
          dialect === 'postgres' ? '$1' : '?',
        ),
      );
      const c = await addCluster(suite.store, 'camel');
      // Listed columns come back under their aliases, `selectAll` and raw SQL renamed after.
      expect(await db.selectFrom('clusters').select(['unavailableReason', 'createdAt']).where('id', '=', c.id).executeTakeFirst()).toEqual({
        unavailableReason: null,
        createdAt: c.createdAt,
      });
      expect(await db.selectFrom('clusters').selectAll().where('id', '=', c.id).executeTakeFirst()).toMatchObject({
        unavailableReason: null,
        createdAt: c.createdAt,
        updatedAt: c.createdAt,
      });
      const raw = await sql<{ createdAt: string }>`select created_at from clusters where id = ${c.id}`.execute(db);
      expect(raw.rows).toEqual([{ createdAt: c.createdAt }]);
    });

    it('is ISO-8601 UTC text of the shape the store writes, near this machine’s clock, and offsets by milliseconds', async () => {
      const { db, clockIso } = suite.t.adapter;
      const before = Date.now();
      const row = await db
        .selectNoFrom([clockIso().as('now'), clockIso(1500).as('later'), clockIso(-60_000).as('earlier')])
        .executeTakeFirstOrThrow();
      const after = Date.now();
      for (const value of [row.now, row.later, row.earlier]) expect(value).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // The database runs on this machine: its clock is this one, give or take the round trip.
      expect(Date.parse(row.now)).toBeGreaterThanOrEqual(before - 1000);
      expect(Date.parse(row.now)).toBeLessThanOrEqual(after + 1000);
      expect(Date.parse(row.later) - Date.parse(row.now)).toBe(1500);
      expect(Date.parse(row.now) - Date.parse(row.earlier)).toBe(60_000);
      expect(new Date(Date.parse(row.now)).toISOString()).toBe(row.now);
    });
  });
}
