import { type Kysely, sql } from 'kysely';
import { ErrorCode, UpshiftError } from '../domain/errors.js';
import type { StoreAdapter } from './dialect.js';
import { LATEST_SCHEMA_VERSION, migrations } from './migrations/index.js';

/**
 * Brings the schema up to this binary's version under the migration lock. Refuses to
 * run against a database that a newer Upshift has migrated: an old binary must not
 * write rows it does not understand.
 */
export async function migrate(adapter: StoreAdapter): Promise<{ applied: number[] }> {
  // Migrations speak the database's own (snake_case) names, and read rows in them too.
  const db: Kysely<any> = adapter.db.withoutPlugins();
  return adapter.withMigrationLock(async () => {
    await db.schema
      .createTable('schema_migrations')
      .ifNotExists()
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('applied_at', 'text', (c) => c.notNull())
      .execute();
    const rows = await db.selectFrom('schema_migrations').select('version').execute();
    const done = new Set(rows.map((r) => Number(r.version)));
    const newest = Math.max(0, ...done);
    if (newest > LATEST_SCHEMA_VERSION) {
      throw new UpshiftError(
        ErrorCode.SCHEMA_TOO_NEW,
        `the database schema is at version ${newest}, newer than this Upshift understands (${LATEST_SCHEMA_VERSION}): run a newer Upshift`,
      );
    }
    const applied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await db.transaction().execute(async (trx) => {
        await migration.up(trx, adapter);
        await trx
          .insertInto('schema_migrations')
          .values({ version: migration.version, name: migration.name, applied_at: new Date().toISOString() })
          .execute();
      });
      applied.push(migration.version);
    }
    await sql`select 1`.execute(db);
    return { applied };
  });
}
