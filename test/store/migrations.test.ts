import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareNatural, naturalSortKey } from '../../src/domain/versions.js';
import { migrate } from '../../src/store/migrate.js';
import { LATEST_SCHEMA_VERSION, migrations } from '../../src/store/migrations/index.js';
import { Store } from '../../src/store/store.js';
import { dialects } from '../support/databases.js';
import { type TestStore, openTestStore } from '../support/store.js';

/**
 * Migrations on each database, written in the database's own (snake_case) names: a
 * database an older Upshift left behind is brought up to date with its rows, and a
 * database a newer Upshift migrated is refused.
 */
for (const dialect of dialects) {
  describe(`migrations on ${dialect}`, () => {
    let t: TestStore;
    let db: Kysely<any>;
    beforeAll(async () => {
      t = await openTestStore(dialect, { icuLocale: 'en-US', migrated: false });
      db = t.adapter.db.withoutPlugins();
    });
    afterAll(async () => t?.close());

    it('gives the nodes a database already holds their sort key (migration 9), so they page in natural order', async () => {
      // The schema as an Upshift before paging left it, with nodes in it.
      await db.schema
        .createTable('schema_migrations')
        .addColumn('version', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('applied_at', 'text', (c) => c.notNull())
        .execute();
      for (const m of migrations.filter((m) => m.version < 9)) {
        await db.transaction().execute(async (trx) => {
          await m.up(trx, t.adapter);
          await trx.insertInto('schema_migrations').values({ version: m.version, name: m.name, applied_at: 'then' }).execute();
        });
      }
      const at = new Date().toISOString();
      await db
        .insertInto('clusters')
        .values({ id: 'cl_old', name: 'old', kind: 'simulated', config: '{}', unavailable_reason: null, created_at: at, updated_at: at })
        .execute();
      const oldNames = Array.from({ length: 2345 }, (_, i) => `old-${i + 1}`).concat(['Old-B', 'old-0007']);
      for (let i = 0; i < oldNames.length; i += 400) {
        await db
          .insertInto('nodes')
          .values(
            oldNames.slice(i, i + 400).map((name, j) => ({
              id: `nd_${String(i + j).padStart(16, '0')}`,
              cluster_id: 'cl_old',
              name,
              role: 'worker',
              status: 'Ready',
              versions: '{}',
              created_at: at,
              updated_at: at,
            })),
          )
          .execute();
      }

      // A node whose agent joined under the old schema: its credential counts as used.
      await db
        .insertInto('agent_credentials')
        .values({ token_hash: 'old-credential', node_id: 'nd_0000000000000000', created_at: at })
        .execute();

      expect((await migrate(t.adapter)).applied).toEqual(migrations.filter((m) => m.version >= 9).map((m) => m.version));
      const rows = await db.selectFrom('nodes').select(['name', 'sort_key']).execute();
      expect(rows.every((r) => r.sort_key === naturalSortKey(r.name))).toBe(true);
      const store = new Store(t.adapter);
      const paged: string[] = [];
      let after: string | null = null;
      do {
        const page = await store.nodes.page('cl_old', after, 1000);
        paged.push(...page.items.map((n) => n.name));
        after = page.nextAfter;
      } while (after !== null);
      expect(paged).toEqual([...oldNames].sort(compareNatural));
      expect(paged.slice(0, 3)).toEqual(['Old-B', 'old-1', 'old-2']);
      // Migration 13 counted the nodes already there by version group.
      expect(await store.nodes.versionGroups('cl_old')).toEqual([
        { clusterId: 'cl_old', versions: {}, distribution: null, count: oldNames.length },
      ]);
      // Migration 16: no join replaces a credential held before it, whatever secret it presents.
      expect(await store.agents.heldCredential('nd_0000000000000000')).toEqual({ joinSecretHash: null, usedAt: at });
      // Once more changes nothing.
      expect((await migrate(t.adapter)).applied).toEqual([]);
    });

    it('refuses a database that a newer Upshift migrated', async () => {
      await db
        .insertInto('schema_migrations')
        .values({ version: LATEST_SCHEMA_VERSION + 1, name: 'from the future', applied_at: 'later' })
        .execute();
      await expect(migrate(t.adapter)).rejects.toThrow(/newer than this Upshift understands/);
      await db
        .deleteFrom('schema_migrations')
        .where('version', '=', LATEST_SCHEMA_VERSION + 1)
        .execute();
    });
  });
}
