import type { Selectable } from 'kysely';
import { ErrorCode, UpshiftError } from '../domain/errors.js';
import type { ClusterRecord } from '../domain/model.js';
import { FrozenJson, changed, nowIso, parseJson, pick } from './rows.js';
import { VERSION_GROUPS_LOCK } from './nodes.js';
import type { ClustersTable } from './schema.js';
import type { Scope } from './scope.js';

const CLUSTER_COLUMNS = ['id', 'name', 'kind', 'config', 'unavailableReason', 'maintenanceWindow', 'createdAt'] as const;

function toCluster(row: Pick<Selectable<ClustersTable>, (typeof CLUSTER_COLUMNS)[number]>): ClusterRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    config: parseJson(row.config, {}),
    unavailableReason: row.unavailableReason,
    window: parseJson(row.maintenanceWindow, null),
    createdAt: row.createdAt,
  };
}

/**
 * Clusters and their sealed secrets. Deleting a cluster deletes everything of it (its
 * upgrades with their tasks, batches, snapshots and logs, its nodes, secrets and join
 * tokens); its events stay, as the audit trail.
 */
export class ClusterRepository {
  private readonly json = new FrozenJson();

  constructor(private readonly scope: Scope) {}

  private get db() {
    return this.scope.db;
  }

  async insert(cluster: ClusterRecord): Promise<void> {
    try {
      await this.db
        .insertInto('clusters')
        .values({
          ...pick(cluster, ['id', 'name', 'kind', 'unavailableReason', 'createdAt']),
          config: JSON.stringify(cluster.config),
          maintenanceWindow: cluster.window ? JSON.stringify(cluster.window) : null,
          updatedAt: cluster.createdAt,
        })
        .execute();
    } catch (error) {
      if (this.scope.adapter.isUniqueViolation(error)) {
        throw new UpshiftError(
          ErrorCode.ALREADY_EXISTS,
          `a cluster named ${JSON.stringify(cluster.name)} already exists; choose another name`,
        );
      }
      throw error;
    }
  }

  /**
   * Every cluster by name. Their settings and windows are parsed once per text and shared,
   * frozen: the cluster list asks for all of them on every request, and an unchanged
   * cluster then comes back with the same objects, which is what its view's memo compares
   * (server/cluster-list.ts).
   */
  async list(): Promise<ClusterRecord[]> {
    const rows = await this.db.selectFrom('clusters').select(CLUSTER_COLUMNS).orderBy('name').execute();
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      kind: row.kind,
      config: this.json.of(row.config, {}),
      unavailableReason: row.unavailableReason,
      window: this.json.of(row.maintenanceWindow, null),
      createdAt: row.createdAt,
    }));
  }

  /**
   * A number that moves with every committed write to what the cluster list shows (the
   * clusters, their nodes' version counts, the active upgrades' states, the artifact
   * mirror): while it stays, the list would read the same. Kept by triggers (migration
   * 13) only where writes are serialised (SQLite), since every such writer updates its
   * one row; null elsewhere, where the list is read in full every time.
   */
  async listRevision(): Promise<number | null> {
    if (this.scope.adapter.concurrentWriters) return null;
    const row = await this.db.selectFrom('clusterListRevision').select('revision').where('id', '=', 1).executeTakeFirst();
    return row ? Number(row.revision) : null;
  }

  async get(id: string): Promise<ClusterRecord | undefined> {
    const row = await this.db.selectFrom('clusters').select(CLUSTER_COLUMNS).where('id', '=', id).executeTakeFirst();
    return row ? toCluster(row) : undefined;
  }

  async findByName(name: string): Promise<ClusterRecord | undefined> {
    const row = await this.db.selectFrom('clusters').select(CLUSTER_COLUMNS).where('name', '=', name).executeTakeFirst();
    return row ? toCluster(row) : undefined;
  }

  /** Sets or clears (null) the cluster's default maintenance window; false when there is no such cluster. */
  async setWindow(id: string, window: ClusterRecord['window']): Promise<boolean> {
    const result = await this.db
      .updateTable('clusters')
      .set({ maintenanceWindow: window ? JSON.stringify(window) : null, updatedAt: nowIso() })
      .where('id', '=', id)
      .executeTakeFirst();
    return changed(result) === 1;
  }

  /** Deletes the cluster and all it holds (see the class comment); false when there was none. */
  async delete(id: string): Promise<boolean> {
    return this.scope.transaction(async ({ db, adapter }) => {
      const upgradeIds = db.selectFrom('upgrades').select('id').where('clusterId', '=', id);
      await db.deleteFrom('nodeLogs').where('upgradeId', 'in', upgradeIds).execute();
      await db.deleteFrom('batches').where('upgradeId', 'in', upgradeIds).execute();
      await db.deleteFrom('nodeTasks').where('upgradeId', 'in', upgradeIds).execute();
      await db.deleteFrom('snapshots').where('upgradeId', 'in', upgradeIds).execute();
      await db.deleteFrom('upgrades').where('clusterId', '=', id).execute();
      await db.deleteFrom('nodes').where('clusterId', '=', id).execute();
      // The nodes' version counts (migration 13): in turn with a fold of them (nodes.ts).
      await adapter.transactionLock(db, VERSION_GROUPS_LOCK, { wait: true });
      await db.deleteFrom('clusterVersionGroups').where('clusterId', '=', id).execute();
      await db.deleteFrom('clusterSecrets').where('clusterId', '=', id).execute();
      await db.deleteFrom('joinTokens').where('clusterId', '=', id).execute();
      return changed(await db.deleteFrom('clusters').where('id', '=', id).executeTakeFirst()) === 1;
    });
  }

  /**
   * Records why the cluster cannot be reached (null: it can again). Returns whether that
   * changed anything, so that the caller writes one event per change, not per sync.
   */
  async setUnavailable(id: string, reason: string | null): Promise<boolean> {
    const result = await this.db
      .updateTable('clusters')
      .set({ unavailableReason: reason, updatedAt: nowIso() })
      .where('id', '=', id)
      .where((eb) =>
        reason === null
          ? eb('unavailableReason', 'is not', null)
          : eb.or([eb('unavailableReason', 'is', null), eb('unavailableReason', '!=', reason)]),
      )
      .executeTakeFirst();
    return changed(result) === 1;
  }

  /**
   * Takes the cluster's row lock (PostgreSQL) for the rest of the transaction, so that
   * a membership change and an upgrade start on one cluster are serialised. SQLite
   * serialises every write transaction already.
   */
  async lock(id: string): Promise<void> {
    if (!this.scope.adapter.supportsSkipLocked) return;
    await this.db.selectFrom('clusters').select('id').where('id', '=', id).forUpdate().execute();
  }

  /** Stores a secret of the cluster, sealed by the caller: the store never sees plaintext. */
  async putSecret(clusterId: string, name: string, sealed: string): Promise<void> {
    await this.db.deleteFrom('clusterSecrets').where('clusterId', '=', clusterId).where('name', '=', name).execute();
    await this.db.insertInto('clusterSecrets').values({ clusterId, name, sealed, createdAt: nowIso() }).execute();
  }

  /** A sealed secret of the cluster, if it has one by that name. */
  async getSecret(clusterId: string, name: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('clusterSecrets')
      .select('sealed')
      .where('clusterId', '=', clusterId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row?.sealed;
  }
}
