import { type Selectable, sql } from 'kysely';
import type { ComponentVersions, NodeRole } from '../domain/components.js';
import { ErrorCode, UpshiftError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { NodeRecord } from '../domain/model.js';
import type { InventoryNode } from '../domain/ports.js';
import { naturalSortKey } from '../domain/versions.js';
import type { EventRepository } from './events.js';
import { FrozenJson, type KeysetPage, changed, keysetPage, nowIso, parseJson, pick, slices } from './rows.js';
import type { NodesTable } from './schema.js';
import type { Scope } from './scope.js';
import type { UpgradeRepository } from './upgrades.js';

/** Per-transaction counts of version groups that the cluster list folds once there are this many (migration 13). */
export const FOLD_VERSION_GROUPS_AFTER = 500;

/** The turn the replicas and cluster deletions take at the version groups (`transactionLock`). */
export const VERSION_GROUPS_LOCK = 74_829_114;

export const NODE_COLUMNS = ['id', 'clusterId', 'name', 'role', 'status', 'versions', 'distribution', 'createdAt'] as const;

export function toNode(row: Pick<Selectable<NodesTable>, (typeof NODE_COLUMNS)[number]>): NodeRecord {
  return {
    id: row.id,
    clusterId: row.clusterId,
    name: row.name,
    role: row.role,
    status: row.status,
    versions: parseJson<ComponentVersions>(row.versions, {}),
    distribution: row.distribution,
    createdAt: row.createdAt,
  };
}

/**
 * The nodes of the clusters: what inventory syncs and agents report about them. What only
 * agents report (facts, last heartbeat, credentials) is in agents.ts.
 */
export class NodeRepository {
  /** The versions of the version groups, parsed once per text (they repeat across the fleet). */
  private readonly json = new FrozenJson();

  constructor(
    private readonly scope: Scope,
    private readonly related: { upgrades: UpgradeRepository; events: EventRepository },
  ) {}

  private get db() {
    return this.scope.db;
  }

  /** Inserts nodes; a name already taken in its cluster is refused (ALREADY_EXISTS) and nothing of that slice is written. */
  async insert(nodes: NodeRecord[]): Promise<void> {
    const rows = nodes.map((n) => ({
      ...pick(n, NODE_COLUMNS),
      versions: JSON.stringify(n.versions),
      facts: null,
      lastSeenAt: null,
      updatedAt: n.createdAt,
      sortKey: naturalSortKey(n.name),
    }));
    try {
      for (const slice of slices(rows)) await this.db.insertInto('nodes').values(slice).execute();
    } catch (error) {
      if (this.scope.adapter.isUniqueViolation(error)) {
        throw new UpshiftError(ErrorCode.ALREADY_EXISTS, 'a node with that name already exists in the cluster; choose another name');
      }
      throw error;
    }
  }

  /** Every node of a cluster, in no particular order (lists shown to users are paged: `page`). */
  async list(clusterId: string): Promise<NodeRecord[]> {
    const rows = await this.db.selectFrom('nodes').select(NODE_COLUMNS).where('clusterId', '=', clusterId).execute();
    return rows.map(toNode);
  }

  /** A page of a cluster's nodes in natural order of names (`sim-2` before `sim-10`), after the sort key `after`. */
  async page(clusterId: string, after: string | null, limit: number): Promise<KeysetPage<NodeRecord, string>> {
    let query = this.db
      .selectFrom('nodes')
      .select([...NODE_COLUMNS, 'sortKey'])
      .where('clusterId', '=', clusterId);
    if (after !== null) query = query.where('sortKey', '>', after);
    const rows = await query
      .orderBy('sortKey')
      .limit(limit + 1)
      .execute();
    return keysetPage(rows, limit, toNode, (r) => r.sortKey);
  }

  /** The node of a cluster with this name (unique per cluster), if any. */
  async findByName(clusterId: string, name: string): Promise<NodeRecord | undefined> {
    const row = await this.db
      .selectFrom('nodes')
      .select(NODE_COLUMNS)
      .where('clusterId', '=', clusterId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? toNode(row) : undefined;
  }

  async get(id: string): Promise<NodeRecord | undefined> {
    const row = await this.db.selectFrom('nodes').select(NODE_COLUMNS).where('id', '=', id).executeTakeFirst();
    return row ? toNode(row) : undefined;
  }

  /**
   * The nodes with these ids that exist, in no particular order. With `forUpdate`, inside
   * a transaction that will write them from what it read, their rows are locked until it
   * ends (PostgreSQL; SQLite serialises every write transaction already), in id order: a
   * heartbeat that writes a node's versions meanwhile waits, instead of being overwritten
   * by versions read before it.
   */
  async getMany(ids: readonly string[], options: { forUpdate?: boolean } = {}): Promise<NodeRecord[]> {
    const lock = options.forUpdate === true && this.scope.adapter.supportsSkipLocked;
    const out: NodeRecord[] = [];
    for (const slice of slices(lock ? [...ids].sort() : ids)) {
      let query = this.db.selectFrom('nodes').select(NODE_COLUMNS).where('id', 'in', slice);
      if (lock) query = query.orderBy('id').forUpdate();
      out.push(...(await query.execute()).map(toNode));
    }
    return out;
  }

  /**
   * How many nodes of each cluster (or of one) run each combination of versions on each
   * distribution, for the cluster views: read from the counts that triggers keep on every
   * write to `nodes` (migration 13), a few rows per cluster whatever its size. Where several
   * transactions write at once each counts under its own id (`writer`); the rows of a group
   * are summed here, and the whole list folds them once they pile up (docs/design.md §8).
   */
  async versionGroups(
    clusterId?: string,
  ): Promise<Array<{ clusterId: string; versions: ComponentVersions; distribution: string | null; count: number }>> {
    const groups = this.db.selectFrom('clusterVersionGroups').select(['clusterId', 'versions', 'distribution']);
    const selected = clusterId ? groups.where('clusterId', '=', clusterId) : groups;
    let rows: Array<{ clusterId: string; versions: string; distribution: string; nodeCount: number | string }>;
    if (this.scope.adapter.concurrentWriters) {
      // Each transaction counted under its own id: a group is the sum of its rows.
      const summed = await selected
        .select((eb) => [eb.fn.sum<number>('nodeCount').as('nodeCount'), eb.fn.countAll<number>().as('rows')])
        .groupBy(['clusterId', 'versions', 'distribution'])
        .execute();
      const changes = summed.reduce((n, r) => n + Number(r.rows), 0) - summed.length;
      if (clusterId === undefined && changes >= FOLD_VERSION_GROUPS_AFTER) await this.foldVersionGroups();
      rows = summed;
    } else {
      // Writes are serialised: one row per group, its count kept in place.
      rows = await selected.select('nodeCount').execute();
    }
    const out = [];
    for (const r of rows) {
      const count = Number(r.nodeCount);
      if (count <= 0) continue;
      out.push({
        clusterId: r.clusterId,
        versions: this.json.of<ComponentVersions>(r.versions, {}),
        distribution: r.distribution === '' ? null : r.distribution,
        count,
      });
    }
    return out;
  }

  /**
   * Folds the committed per-transaction counts into one row per group, and drops the
   * groups that are empty or whose cluster is gone. The replicas take turns (a replica
   * that finds another folding leaves it to that one); a cluster's deletion takes the
   * same turn (clusters.ts), so that neither waits for rows the other holds. Only
   * committed rows are seen, and each writer's rows are its own: folding never waits for
   * a writer, nor a writer for it.
   */
  async foldVersionGroups(): Promise<void> {
    // Where writes are serialised the counts are kept in place: nothing to fold.
    if (!this.scope.adapter.concurrentWriters) return;
    await this.scope.transaction(async (tx) => {
      if (!(await tx.adapter.transactionLock(tx.db, VERSION_GROUPS_LOCK, { wait: false }))) return;
      await sql`with gone as (
          delete from cluster_version_groups where writer <> '' returning cluster_id, versions, distribution, node_count
        )
        insert into cluster_version_groups (cluster_id, versions, distribution, writer, node_count)
        select cluster_id, versions, distribution, '', sum(node_count) from gone group by cluster_id, versions, distribution
        on conflict (cluster_id, versions, distribution, writer)
        do update set node_count = cluster_version_groups.node_count + excluded.node_count`.execute(tx.db);
      await sql`delete from cluster_version_groups g where g.node_count = 0
        or not exists (select 1 from clusters c where c.id = g.cluster_id)`.execute(tx.db);
    });
  }

  async delete(id: string): Promise<boolean> {
    return changed(await this.db.deleteFrom('nodes').where('id', '=', id).executeTakeFirst()) === 1;
  }

  async update(id: string, patch: { status?: string; role?: NodeRole; versions?: ComponentVersions }): Promise<void> {
    await this.db
      .updateTable('nodes')
      .set({
        ...(patch.status !== undefined ? { status: patch.status } : {}),
        ...(patch.role !== undefined ? { role: patch.role } : {}),
        ...(patch.versions !== undefined ? { versions: JSON.stringify(patch.versions) } : {}),
        updatedAt: nowIso(),
      })
      .where('id', '=', id)
      .execute();
  }

  /** Sets the same versions on many nodes (one statement per 500). */
  async setVersions(ids: readonly string[], versions: ComponentVersions): Promise<void> {
    const text = JSON.stringify(versions);
    const now = nowIso();
    for (const slice of slices(ids)) {
      await this.db.updateTable('nodes').set({ versions: text, updatedAt: now }).where('id', 'in', slice).execute();
    }
  }

  /**
   * Makes the stored nodes match an inventory: updates known nodes, adds new ones and,
   * when no upgrade is active, removes vanished ones (while one is active they are kept
   * and marked Down, since the upgrade's membership is locked). Each node added or
   * removed is an event.
   */
  async reconcile(clusterId: string, inventory: InventoryNode[], actor: string): Promise<void> {
    const existing = new Map((await this.list(clusterId)).map((n) => [n.name, n]));
    const active = await this.related.upgrades.activeOf(clusterId);
    const now = nowIso();
    const seen = new Set<string>();
    for (const item of inventory) {
      seen.add(item.name);
      const node = existing.get(item.name);
      if (node) {
        // What the cluster reports is merged over what agents reported (a Swarm knows the
        // Engine's version, not the agent's or runsc's).
        const versions = { ...node.versions, ...item.versions };
        if (node.status !== item.status || node.role !== item.role || JSON.stringify(node.versions) !== JSON.stringify(versions)) {
          await this.update(node.id, { status: item.status, role: item.role, versions });
        }
        continue;
      }
      const id = newId('nd');
      await this.insert([
        {
          id,
          clusterId,
          name: item.name,
          role: item.role,
          status: item.status,
          versions: item.versions,
          distribution: null,
          createdAt: now,
        },
      ]);
      await this.related.events.append({
        type: 'cluster.node_added',
        actor,
        clusterId,
        upgradeId: null,
        nodeId: id,
        message: active ? `node ${item.name} joined; it is left out of the running upgrade` : `node ${item.name} joined`,
      });
    }
    for (const node of existing.values()) {
      if (seen.has(node.name)) continue;
      if (active) {
        if (node.status !== 'Down') await this.update(node.id, { status: 'Down' });
        continue;
      }
      await this.delete(node.id);
      await this.related.events.append({
        type: 'cluster.node_removed',
        actor,
        clusterId,
        upgradeId: null,
        nodeId: node.id,
        message: `node ${node.name} left the cluster`,
      });
    }
  }
}
