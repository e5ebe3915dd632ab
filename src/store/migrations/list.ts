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
    version: 6,
    name: 'events indexed by type; console sessions with a public id and the address that opened them',
    async up(db) {
      await db.schema.createIndex('events_type').on('events').columns(['type', 'id']).execute();
      // Sessions opened before cannot be listed or revoked by id: their users sign in again.
      await db.deleteFrom('sessions').execute();
      await db.schema.alterTable('sessions').addColumn('id', 'text').execute();
      await db.schema.alterTable('sessions').addColumn('address', 'text').execute();
      await db.schema.createIndex('sessions_id').on('sessions').column('id').unique().execute();
    },
  },
  {
    version: 7,
    name: 'single-use join tokens',
    async up(db) {
      // A single-use token is consumed by a compare-and-set on used_at in the join's own
      // transaction; used_by_node says which node it admitted (for the audit trail).
      await db.schema
        .alterTable('join_tokens')
        .addColumn('single_use', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable('join_tokens').addColumn('used_at', 'text').execute();
      await db.schema.alterTable('join_tokens').addColumn('used_by_node', 'text').execute();
    },
  },
  {
    version: 8,
    name: 'bounded node logs: head and tail lines, their sizes per node task',
    async up(db) {
      await db.schema
        .alterTable('node_logs')
        .addColumn('bytes', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .alterTable('node_logs')
        .addColumn('tail', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      // Head lines come before tail lines in id order, so (task, tail, id) serves both the
      // log read in order and finding the oldest tail lines to drop.
      await db.schema.dropIndex('node_logs_task').execute();
      await db.schema.createIndex('node_logs_task_tail').on('node_logs').columns(['node_task_id', 'tail', 'id']).execute();
      await db.schema
        .createTable('node_log_sizes')
        .addColumn('node_task_id', 'text', (c) => c.primaryKey().references('node_tasks.id').onDelete('cascade'))
        .addColumn('head_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('tail_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('dropped_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      // A task running across the upgrade of the server keeps the lines it has, counted
      // as its head (characters for bytes: close enough for a bound).
      await sql`insert into node_log_sizes (node_task_id, head_bytes)
        select node_task_id, sum(length(line) + length(at) + 2) from node_logs
        where node_task_id in (select id from node_tasks where state = 'running')
        group by node_task_id`.execute(db);
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
  {
    version: 10,
    name: 'why an upgrade ended',
    async up(db) {
      // JSON of { kind, actor, at, message }; upgrades that ended before this migration
      // keep null, and the API derives a reason for them from their state and last event.
      await db.schema.alterTable('upgrades').addColumn('end_reason', 'text').execute();
    },
  },
  {
    version: 11,
    name: "the distribution a node's agent reports",
    async up(db) {
      // A column, not only a key in `facts`: plans read it for every node of a cluster to
      // decide which catalog versions install there. Null until the node's agent reports
      // one (agents before 1.1, Kubernetes and Swarm nodes): such nodes do not restrict.
      await db.schema.alterTable('nodes').addColumn('distribution', 'text').execute();
    },
  },
  {
    version: 12,
    name: 'webhooks and their delivery outbox',
    async up(db, adapter) {
      const autoId = (c: any) => (adapter.autoIncrementType === 'integer' ? c.primaryKey().autoIncrement() : c.primaryKey());
      await db.schema
        .createTable('webhooks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('events', 'text', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('sealed_secret', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      // One row per subscribed type, so that writing an event finds its webhooks by index.
      await db.schema
        .createTable('webhook_subscriptions')
        .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('webhook_subscriptions_pk', ['event_type', 'webhook_id'])
        .execute();
      // The outbox: written in the transaction that records the event. The event is copied
      // (no foreign key): an auto-cancel purges the upgrade's events before they are sent.
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', adapter.autoIncrementType, autoId)
        .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('next_attempt_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', 'text')
        .addUniqueConstraint('webhook_deliveries_event', ['webhook_id', 'event_id'])
        .execute();
      await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['state', 'next_attempt_at']).execute();
      await db.schema
        .createTable('webhook_attempts')
        .addColumn('id', adapter.autoIncrementType, autoId)
        .addColumn('delivery_id', 'bigint', (c) => c.notNull().references('webhook_deliveries.id').onDelete('cascade'))
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('status', 'integer')
        .addColumn('error', 'text')
        .addColumn('next_attempt_at', 'text')
        .execute();
      await db.schema.createIndex('webhook_attempts_delivery').on('webhook_attempts').columns(['delivery_id', 'id']).execute();
    },
  },
  {
    version: 13,
    name: "per-cluster counts of the nodes' versions, kept on write",
    async up(db, adapter) {
      // The cluster list shows per cluster how many nodes run each version; grouping every
      // node on every read grew with the fleet. Triggers keep the groups in step with every
      // write to `nodes`, whichever code makes it, in the writing transaction (docs/design.md §8).
      await db.schema
        .createTable('cluster_version_groups')
        .addColumn('cluster_id', 'text', (c) => c.notNull())
        .addColumn('versions', 'text', (c) => c.notNull())
        .addColumn('distribution', 'text', (c) => c.notNull())
        .addColumn('writer', 'text', (c) => c.notNull())
        .addColumn('node_count', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('cluster_version_groups_pk', ['cluster_id', 'versions', 'distribution', 'writer'])
        .execute();
      await sql`insert into cluster_version_groups (cluster_id, versions, distribution, writer, node_count)
        select cluster_id, versions, coalesce(distribution, ''), '', count(*) from nodes
        group by cluster_id, versions, coalesce(distribution, '')`.execute(db);
      const changedGroup = sql.raw(
        'old.cluster_id is distinct from new.cluster_id or old.versions is distinct from new.versions or old.distribution is distinct from new.distribution',
      );
      if (adapter.concurrentWriters) {
        // Each transaction counts under its own id: no two writers ever update the same
        // row, so a flush of many nodes' results neither waits for another nor deadlocks
        // with one (store/nodes.ts folds the committed rows into the '' ones).
        await sql`create function cluster_version_groups_count() returns trigger language plpgsql as $$
          declare
            me text := txid_current()::text;
          begin
            if tg_op in ('UPDATE', 'DELETE') then
              insert into cluster_version_groups (cluster_id, versions, distribution, writer, node_count)
              values (old.cluster_id, old.versions, coalesce(old.distribution, ''), me, -1)
              on conflict (cluster_id, versions, distribution, writer)
              do update set node_count = cluster_version_groups.node_count - 1;
            end if;
            if tg_op in ('UPDATE', 'INSERT') then
              insert into cluster_version_groups (cluster_id, versions, distribution, writer, node_count)
              values (new.cluster_id, new.versions, coalesce(new.distribution, ''), me, 1)
              on conflict (cluster_id, versions, distribution, writer)
              do update set node_count = cluster_version_groups.node_count + 1;
            end if;
            return null;
          end $$`.execute(db);
        await sql`create trigger nodes_count_insert after insert on nodes
          for each row execute function cluster_version_groups_count()`.execute(db);
        await sql`create trigger nodes_count_delete after delete on nodes
          for each row execute function cluster_version_groups_count()`.execute(db);
        await sql`create trigger nodes_count_update after update of cluster_id, versions, distribution on nodes
          for each row when (${changedGroup}) execute function cluster_version_groups_count()`.execute(db);
        return;
      }
      // One writer at a time: the counts are updated in place, and a group at 0 goes.
      const add = (row: 'new' | 'old', delta: 1 | -1) =>
        sql.raw(`insert into cluster_version_groups (cluster_id, versions, distribution, writer, node_count)
          values (${row}.cluster_id, ${row}.versions, coalesce(${row}.distribution, ''), '', ${delta})
          on conflict (cluster_id, versions, distribution, writer) do update set node_count = node_count + ${delta};`);
      const dropEmpty = sql.raw(`delete from cluster_version_groups where cluster_id = old.cluster_id and versions = old.versions
          and distribution = coalesce(old.distribution, '') and writer = '' and node_count = 0;`);
      await sql`create trigger nodes_count_insert after insert on nodes begin ${add('new', 1)} end`.execute(db);
      await sql`create trigger nodes_count_delete after delete on nodes begin ${add('old', -1)} ${dropEmpty} end`.execute(db);
      await sql`create trigger nodes_count_update after update of cluster_id, versions, distribution on nodes
        when ${changedGroup} begin ${add('old', -1)} ${dropEmpty} ${add('new', 1)} end`.execute(db);
      // One number that moves with every write to what the cluster list shows (the
      // clusters, their version counts, which upgrade is active and in what state, the
      // artifact mirror, which decides what installs), so that the list is read again
      // only when it moved. A single row every such writer updates: kept only where
      // writes are serialised anyway (store/clusters.ts, listRevision).
      await sql`create table cluster_list_revision (id integer primary key check (id = 1), revision integer not null)`.execute(db);
      await sql`insert into cluster_list_revision (id, revision) values (1, 0)`.execute(db);
      const bump = sql.raw('update cluster_list_revision set revision = revision + 1;');
      const watched: Array<[table: string, update: string]> = [
        ['clusters', 'update'],
        ['cluster_version_groups', 'update'],
        ['artifacts', 'update'],
        ['upgrades', 'update of state, component, cluster_id'],
      ];
      for (const [table, update] of watched) {
        for (const event of ['insert', 'delete', update]) {
          const name = sql.raw(`${table}_list_${event.split(' ')[0]}`);
          await sql`create trigger ${name} after ${sql.raw(event)} on ${sql.raw(table)} begin ${bump} end`.execute(db);
        }
      }
    },
  },
  {
    version: 15,
    name: 'a default maintenance window per cluster',
    async up(db) {
      // JSON of { days, start, end, timezone }; null: batches may start at any time.
      await db.schema.alterTable('clusters').addColumn('maintenance_window', 'text').execute();
    },
  },
  {
    version: 16,
    name: 'a join retried after a lost answer gets the credential again',
    async up(db) {
      // docs/design.md §9: the hash of the join secret the agent joined with, and when the
      // credential was first used. A join that presents the same secret replaces a credential
      // never used; one used is never replaced. Credentials from before are taken as used.
      await db.schema.alterTable('agent_credentials').addColumn('join_secret_hash', 'text').execute();
      await db.schema.alterTable('agent_credentials').addColumn('used_at', 'text').execute();
      await db
        .updateTable('agent_credentials')
        .set({ used_at: sql.ref('created_at') })
        .execute();
    },
  },
];

export const LATEST_SCHEMA_VERSION = Math.max(...migrations.map((m) => m.version));
