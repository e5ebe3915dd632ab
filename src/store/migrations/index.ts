import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { naturalSortKey } from '../../domain/versions.js';
import type { StoreAdapter } from '../dialect.js';

/**
 * Numbered, append-only migrations. Never edit one that has shipped: add the next
 * number. Each runs in its own transaction under the migration lock.
 */
export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>, adapter: StoreAdapter): Promise<void>;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    async up(db, adapter) {
      await db.schema
        .createTable('clusters')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('unavailable_reason', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('nodes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('versions', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('nodes_cluster_name', ['cluster_id', 'name'])
        .execute();
      await db.schema
        .createTable('upgrades')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id').onDelete('cascade'))
        .addColumn('component', 'text', (c) => c.notNull())
        .addColumn('to_version', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('snapshot', 'text', (c) => c.notNull())
        .addColumn('policy', 'text', (c) => c.notNull())
        .addColumn('total', 'integer', (c) => c.notNull())
        .addColumn('cap', 'integer', (c) => c.notNull())
        .addColumn('ramp_start', 'integer', (c) => c.notNull())
        .addColumn('pause_reason', 'text')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('paused_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('next_batch_at', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // "One active upgrade per cluster" is the database's job, not a read-then-write.
      await db.schema
        .createIndex('upgrades_one_active_per_cluster')
        .on('upgrades')
        .column('cluster_id')
        .unique()
        .where(sql.ref('state'), 'not in', ['Completed', 'Canceled'])
        .execute();
      await db.schema.createIndex('upgrades_state').on('upgrades').column('state').execute();
      await db.schema
        .createTable('batches')
        .addColumn('upgrade_id', 'text', (c) => c.notNull().references('upgrades.id').onDelete('cascade'))
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('node_ids', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .addPrimaryKeyConstraint('batches_pk', ['upgrade_id', 'idx'])
        .execute();
      await db.schema
        .createTable('node_tasks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('upgrade_id', 'text', (c) => c.notNull().references('upgrades.id').onDelete('cascade'))
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('node_name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('sort_key', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('batch_index', 'integer')
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('error', 'text')
        .addColumn('from_version', 'text')
        .addColumn('to_version', 'text', (c) => c.notNull())
        .addUniqueConstraint('node_tasks_upgrade_node', ['upgrade_id', 'node_id'])
        .execute();
      await db.schema.createIndex('node_tasks_upgrade_state').on('node_tasks').columns(['upgrade_id', 'state']).execute();
      await db.schema
        .createTable('snapshots')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('upgrade_id', 'text', (c) => c.notNull().references('upgrades.id').onDelete('cascade'))
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('node_name', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('ref', 'text')
        .addColumn('error', 'text')
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addUniqueConstraint('snapshots_upgrade_node', ['upgrade_id', 'node_id'])
        .execute();
      await db.schema
        .createTable('events')
        .addColumn('id', adapter.autoIncrementType, (c) =>
          adapter.autoIncrementType === 'integer' ? c.primaryKey().autoIncrement() : c.primaryKey(),
        )
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('cluster_id', 'text')
        .addColumn('upgrade_id', 'text')
        .addColumn('node_id', 'text')
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('data', 'text')
        .execute();
      await db.schema.createIndex('events_upgrade').on('events').columns(['upgrade_id', 'id']).execute();
      await db.schema.createIndex('events_cluster').on('events').columns(['cluster_id', 'id']).execute();
      await db.schema
        .createTable('node_logs')
        .addColumn('id', adapter.autoIncrementType, (c) =>
          adapter.autoIncrementType === 'integer' ? c.primaryKey().autoIncrement() : c.primaryKey(),
        )
        .addColumn('upgrade_id', 'text', (c) => c.notNull())
        .addColumn('node_task_id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('line', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('node_logs_task').on('node_logs').columns(['node_task_id', 'id']).execute();
      await db.schema.createIndex('node_logs_upgrade').on('node_logs').column('upgrade_id').execute();
    },
  },
  {
    version: 2,
    name: 'agents: join tokens, node credentials, agent tasks, artifact mirror',
    async up(db) {
      await db.schema.alterTable('nodes').addColumn('facts', 'text').execute();
      await db.schema.alterTable('nodes').addColumn('last_seen_at', 'text').execute();
      await db.schema
        .createTable('join_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema
        .createTable('agent_credentials')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull().references('nodes.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('agent_credentials_node').on('agent_credentials').column('node_id').execute();
      await db.schema
        .createTable('agent_tasks')
        .addColumn('task_key', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('upgrade_id', 'text')
        .addColumn('node_task_id', 'text')
        .addColumn('recipe', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('delivered_at', 'text')
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema.createIndex('agent_tasks_node_state').on('agent_tasks').columns(['node_id', 'state']).execute();
      await db.schema
        .createTable('artifacts')
        .addColumn('file', 'text', (c) => c.primaryKey())
        .addColumn('component', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 3,
    name: 'encrypted cluster secrets',
    async up(db) {
      await db.schema
        .createTable('cluster_secrets')
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('cluster_secrets_pk', ['cluster_id', 'name'])
        .execute();
    },
  },
  {
    version: 4,
    name: 'API tokens with roles, console sessions',
    async up(db) {
      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema
        .createTable('sessions')
        .addColumn('session_hash', 'text', (c) => c.primaryKey())
        .addColumn('csrf_hash', 'text', (c) => c.notNull())
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('token_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 5,
    name: 'upgrade leases for several replicas',
    async up(db) {
      await db.schema.alterTable('upgrades').addColumn('lease_owner', 'text').execute();
      await db.schema.alterTable('upgrades').addColumn('lease_expires_at', 'text').execute();
    },
  },
  {
    version: 9,
    name: 'natural-sort key on nodes and indexes for paged node lists',
    async up(db, adapter) {
      // Node lists are paged by the database (`sort_key > ? ORDER BY sort_key LIMIT ?`), so
      // the natural order of names must be an order the database knows: a key compared by bytes.
      const collation = adapter.bytewiseCollation;
      await db.schema
        .alterTable('nodes')
        .addColumn('sort_key', 'text', (c) => (collation ? c.modifyEnd(sql.raw(`collate ${collation}`)) : c))
        .execute();
      let after = '';
      for (;;) {
        const rows = await db.selectFrom('nodes').select(['id', 'name']).where('id', '>', after).orderBy('id').limit(1000).execute();
        if (rows.length === 0) break;
        const cases = rows.map((r) => sql`when ${r.id} then ${naturalSortKey(String(r.name))}`);
        await sql`update nodes set sort_key = case id ${sql.join(cases, sql` `)} end where id in (${sql.join(rows.map((r) => r.id))})`.execute(
          db,
        );
        after = String(rows[rows.length - 1]?.id);
      }
      await db.schema.createIndex('nodes_cluster_sort_key').on('nodes').columns(['cluster_id', 'sort_key']).execute();
      await db.schema.createIndex('node_tasks_upgrade_sort_key').on('node_tasks').columns(['upgrade_id', 'sort_key']).execute();
    },
  },
];

export const LATEST_SCHEMA_VERSION = Math.max(...migrations.map((m) => m.version));
