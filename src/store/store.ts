import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { type Kysely, type Selectable, type Transaction, sql } from 'kysely';
import type { ClusterKind, Component, ComponentVersions, NodeRole } from '../domain/components.js';
import { ErrorCode, UpshiftError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { naturalSortKey } from '../domain/versions.js';
import type { InventoryNode } from '../domain/ports.js';
import type { EventType, NewEvent, UpshiftEvent } from '../domain/events.js';
import type {
  BatchRecord,
  BatchState,
  ClusterRecord,
  NodeRecord,
  NodeTaskRecord,
  NodeTaskState,
  SnapshotRecord,
  SnapshotState,
  UpgradePolicy,
  UpgradeRecord,
} from '../domain/model.js';
import type { PauseReason, UpgradeState } from '../domain/upgrade-state.js';
import type { StoreAdapter } from './dialect.js';
import type {
  BatchesTable,
  ClustersTable,
  Database,
  EventsTable,
  NodesTable,
  NodeTasksTable,
  SnapshotsTable,
  UpgradesTable,
} from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

const nowIso = () => new Date().toISOString();

/**
 * The bound of a node task's log: 1 MiB of text as served, its first 512 KiB (how the
 * task started) and its last 512 KiB (how it ended), with one marker line between them
 * when lines were dropped. One task of a flooding agent costs at most that much.
 */
export const LOG_HEAD_BYTES = 512 * 1024;
export const LOG_TAIL_BYTES = 512 * 1024;

/** The line a log read shows where lines were dropped. */
export function logMarker(droppedBytes: number): string {
  return `… ${droppedBytes} bytes of log were dropped here (the log of a task keeps its first ${LOG_HEAD_BYTES / 1024} KiB and its last ${LOG_TAIL_BYTES / 1024} KiB) …`;
}

/** A log row's size as the log read serves it: `<at> <line>\n` in UTF-8. */
function servedBytes(at: string, line: string): number {
  return Buffer.byteLength(at, 'utf8') + Buffer.byteLength(line, 'utf8') + 2;
}

interface LogSizes {
  head: number;
  tail: number;
  dropped: number;
}

/** Where a log read stopped: the part (0 head, 1 tail) and id of its last row. */
export interface LogCursor {
  tail: number;
  id: number;
}

export interface LogLine extends LogCursor {
  at: string;
  line: string;
}

function parseJson<T>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  return JSON.parse(text) as T;
}

function toCluster(row: Selectable<ClustersTable>): ClusterRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as ClusterKind,
    config: parseJson(row.config, {}),
    unavailableReason: row.unavailable_reason,
    createdAt: row.created_at,
  };
}

function toNode(row: Selectable<NodesTable>): NodeRecord {
  return {
    id: row.id,
    clusterId: row.cluster_id,
    name: row.name,
    role: row.role as NodeRole,
    status: row.status,
    versions: parseJson<ComponentVersions>(row.versions, {}),
    createdAt: row.created_at,
  };
}

function toUpgrade(row: Selectable<UpgradesTable>): UpgradeRecord {
  return {
    id: row.id,
    clusterId: row.cluster_id,
    component: row.component as Component,
    toVersion: row.to_version,
    state: row.state as UpgradeState,
    snapshot: row.snapshot === 'before' ? 'before' : 'none',
    policy: parseJson<UpgradePolicy>(row.policy, { maxBatchPercent: 10, soakSeconds: 0 }),
    total: Number(row.total),
    cap: Number(row.cap),
    rampStart: Number(row.ramp_start),
    pauseReason: parseJson<PauseReason | null>(row.pause_reason, null),
    createdBy: row.created_by,
    createdAt: row.created_at,
    pausedAt: row.paused_at,
    finishedAt: row.finished_at,
    nextBatchAt: row.next_batch_at,
  };
}

function toTask(row: Selectable<NodeTasksTable>): NodeTaskRecord {
  return {
    id: row.id,
    upgradeId: row.upgrade_id,
    nodeId: row.node_id,
    nodeName: row.node_name,
    role: row.role as NodeRole,
    state: row.state as NodeTaskState,
    batchIndex: row.batch_index === null ? null : Number(row.batch_index),
    attempt: Number(row.attempt),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    error: row.error,
    fromVersion: row.from_version,
    toVersion: row.to_version,
  };
}

function toBatch(row: Selectable<BatchesTable>): BatchRecord {
  return {
    upgradeId: row.upgrade_id,
    index: Number(row.idx),
    size: Number(row.size),
    state: row.state as BatchState,
    nodeIds: parseJson<string[]>(row.node_ids, []),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

function toSnapshot(row: Selectable<SnapshotsTable>): SnapshotRecord {
  return {
    id: row.id,
    upgradeId: row.upgrade_id,
    nodeId: row.node_id,
    nodeName: row.node_name,
    state: row.state as SnapshotState,
    ref: row.ref,
    error: row.error,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

function toEvent(row: Selectable<EventsTable>): UpshiftEvent {
  const event: UpshiftEvent = {
    id: String(row.id),
    at: row.at,
    type: row.type as EventType,
    actor: row.actor,
    clusterId: row.cluster_id,
    upgradeId: row.upgrade_id,
    nodeId: row.node_id,
    message: row.message,
  };
  if (row.data !== null) event.data = parseJson<Record<string, unknown>>(row.data, {});
  return event;
}

/**
 * Whether a join token admits a join: `valid`, or why not. Single-use tokens are `used`
 * once a join spent them; revocation wins over everything else.
 */
export type JoinTokenState = 'valid' | 'expired' | 'used' | 'revoked';

export interface JoinTokenRecord {
  clusterId: string;
  expiresAt: string | null;
  singleUse: boolean;
  state: JoinTokenState;
}

export interface EventFilter {
  clusterId?: string | undefined;
  upgradeId?: string | undefined;
  type?: string | undefined;
  /** Only events with an id below this one (newest-first paging). */
  before?: string | undefined;
  /** Only events with an id above this one (replay after a reconnect). */
  after?: string | undefined;
  limit: number;
}

/**
 * One page of a list that grows with the fleet, read by key (`key > after ORDER BY key
 * LIMIT n`), never by offset: a page costs the same wherever it is, and rows added or
 * removed elsewhere do not shift the pages that follow. `nextAfter` is the key of the
 * page's last row when more rows follow, else null.
 */
export interface KeysetPage<T, K> {
  items: T[];
  nextAfter: K | null;
}

export type UpgradePatch = Partial<Pick<UpgradesTable, 'pause_reason' | 'paused_at' | 'finished_at' | 'next_batch_at' | 'ramp_start'>> & {
  state?: UpgradeState;
};

export type TaskPatch = Partial<
  Pick<NodeTasksTable, 'batch_index' | 'attempt' | 'started_at' | 'finished_at' | 'error' | 'from_version'>
> & { state?: NodeTaskState };

/**
 * The repositories over one database. Every state change is a compare-and-set that
 * names the state it expects and reports whether it won; callers act only on a win.
 * Events written in a transaction are published on `bus` only after it commits.
 */
const EVENTS_CHANNEL = 'upshift_events';

export class Store {
  readonly bus: EventEmitter;
  /** Tells this process's own notifications apart from other replicas'. */
  readonly origin: string = randomBytes(8).toString('hex');
  private readonly pending: UpshiftEvent[] | undefined;

  constructor(
    readonly adapter: StoreAdapter,
    private readonly db: Db = adapter.db,
    bus?: EventEmitter,
    pending?: UpshiftEvent[],
    origin?: string,
  ) {
    this.bus = bus ?? new EventEmitter().setMaxListeners(0);
    this.pending = pending;
    if (origin) this.origin = origin;
  }

  /** Runs `fn` in one transaction; the events it appended are published after the commit. */
  async tx<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    if (this.pending) return fn(this);
    const events: UpshiftEvent[] = [];
    const result = await this.adapter.db.transaction().execute((trx) => fn(new Store(this.adapter, trx, this.bus, events, this.origin)));
    for (const event of events) this.bus.emit('event', event);
    return result;
  }

  // ---- clusters -------------------------------------------------------------------

  async insertCluster(cluster: ClusterRecord): Promise<void> {
    try {
      await this.db
        .insertInto('clusters')
        .values({
          id: cluster.id,
          name: cluster.name,
          kind: cluster.kind,
          config: JSON.stringify(cluster.config),
          unavailable_reason: cluster.unavailableReason,
          created_at: cluster.createdAt,
          updated_at: cluster.createdAt,
        })
        .execute();
    } catch (error) {
      if (this.adapter.isUniqueViolation(error)) {
        throw new UpshiftError(
          ErrorCode.ALREADY_EXISTS,
          `a cluster named ${JSON.stringify(cluster.name)} already exists; choose another name`,
        );
      }
      throw error;
    }
  }

  async listClusters(): Promise<ClusterRecord[]> {
    const rows = await this.db.selectFrom('clusters').selectAll().orderBy('name').execute();
    return rows.map(toCluster);
  }

  async getCluster(id: string): Promise<ClusterRecord | undefined> {
    const row = await this.db.selectFrom('clusters').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toCluster(row) : undefined;
  }

  async findClusterByName(name: string): Promise<ClusterRecord | undefined> {
    const row = await this.db.selectFrom('clusters').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toCluster(row) : undefined;
  }

  async deleteCluster(id: string): Promise<boolean> {
    const upgradeIds = this.db.selectFrom('upgrades').select('id').where('cluster_id', '=', id);
    await this.db.deleteFrom('node_logs').where('upgrade_id', 'in', upgradeIds).execute();
    await this.db.deleteFrom('batches').where('upgrade_id', 'in', upgradeIds).execute();
    await this.db.deleteFrom('node_tasks').where('upgrade_id', 'in', upgradeIds).execute();
    await this.db.deleteFrom('snapshots').where('upgrade_id', 'in', upgradeIds).execute();
    await this.db.deleteFrom('upgrades').where('cluster_id', '=', id).execute();
    await this.db.deleteFrom('nodes').where('cluster_id', '=', id).execute();
    await this.db.deleteFrom('cluster_secrets').where('cluster_id', '=', id).execute();
    await this.db.deleteFrom('join_tokens').where('cluster_id', '=', id).execute();
    const result = await this.db.deleteFrom('clusters').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async setClusterUnavailable(id: string, reason: string | null): Promise<boolean> {
    const result = await this.db
      .updateTable('clusters')
      .set({ unavailable_reason: reason, updated_at: nowIso() })
      .where('id', '=', id)
      .where((eb) =>
        reason === null
          ? eb('unavailable_reason', 'is not', null)
          : eb.or([eb('unavailable_reason', 'is', null), eb('unavailable_reason', '!=', reason)]),
      )
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Takes the cluster's row lock (PostgreSQL) for the rest of the transaction, so that
   * a membership change and an upgrade start on one cluster are serialised. SQLite
   * serialises every write transaction already.
   */
  async lockCluster(id: string): Promise<void> {
    if (!this.adapter.supportsSkipLocked) return;
    await this.db.selectFrom('clusters').select('id').where('id', '=', id).forUpdate().execute();
  }

  // ---- nodes ----------------------------------------------------------------------

  async insertNodes(nodes: NodeRecord[]): Promise<void> {
    const rows = nodes.map((n) => ({
      id: n.id,
      cluster_id: n.clusterId,
      name: n.name,
      role: n.role,
      status: n.status,
      versions: JSON.stringify(n.versions),
      facts: null,
      last_seen_at: null,
      created_at: n.createdAt,
      updated_at: n.createdAt,
      sort_key: naturalSortKey(n.name),
    }));
    try {
      for (let i = 0; i < rows.length; i += 500) {
        await this.db
          .insertInto('nodes')
          .values(rows.slice(i, i + 500))
          .execute();
      }
    } catch (error) {
      if (this.adapter.isUniqueViolation(error)) {
        throw new UpshiftError(ErrorCode.ALREADY_EXISTS, 'a node with that name already exists in the cluster; choose another name');
      }
      throw error;
    }
  }

  async listNodes(clusterId: string): Promise<NodeRecord[]> {
    const rows = await this.db.selectFrom('nodes').selectAll().where('cluster_id', '=', clusterId).execute();
    return rows.map(toNode);
  }

  /** A page of a cluster's nodes in natural order of names (`sim-2` before `sim-10`), after the sort key `after`. */
  async pageNodes(clusterId: string, after: string | null, limit: number): Promise<KeysetPage<NodeRecord, string>> {
    let query = this.db.selectFrom('nodes').selectAll().where('cluster_id', '=', clusterId);
    if (after !== null) query = query.where('sort_key', '>', after);
    // One row more than asked says whether another page follows.
    const rows = await query
      .orderBy('sort_key')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    return { items: page.map(toNode), nextAfter: rows.length > limit ? (page[page.length - 1]?.sort_key ?? null) : null };
  }

  /** The node of a cluster with this name (unique per cluster), if any. */
  async findNodeByName(clusterId: string, name: string): Promise<NodeRecord | undefined> {
    const row = await this.db
      .selectFrom('nodes')
      .selectAll()
      .where('cluster_id', '=', clusterId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? toNode(row) : undefined;
  }

  /** How many nodes of each cluster run each combination of versions, for the cluster list. */
  async nodeVersionGroups(clusterId?: string): Promise<Array<{ clusterId: string; versions: ComponentVersions; count: number }>> {
    let query = this.db
      .selectFrom('nodes')
      .select(['cluster_id', 'versions'])
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .groupBy(['cluster_id', 'versions']);
    if (clusterId) query = query.where('cluster_id', '=', clusterId);
    const rows = await query.execute();
    return rows.map((r) => ({ clusterId: r.cluster_id, versions: parseJson<ComponentVersions>(r.versions, {}), count: Number(r.n) }));
  }

  async getNode(id: string): Promise<NodeRecord | undefined> {
    const row = await this.db.selectFrom('nodes').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toNode(row) : undefined;
  }

  async deleteNode(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('nodes').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async setNodeVersion(id: string, component: Component, version: string): Promise<void> {
    const node = await this.getNode(id);
    if (!node) return;
    const versions = { ...node.versions, [component]: version };
    await this.db
      .updateTable('nodes')
      .set({ versions: JSON.stringify(versions), updated_at: nowIso() })
      .where('id', '=', id)
      .execute();
  }

  async updateNode(id: string, patch: { status?: string; role?: NodeRole; versions?: ComponentVersions }): Promise<void> {
    await this.db
      .updateTable('nodes')
      .set({
        ...(patch.status !== undefined ? { status: patch.status } : {}),
        ...(patch.role !== undefined ? { role: patch.role } : {}),
        ...(patch.versions !== undefined ? { versions: JSON.stringify(patch.versions) } : {}),
        updated_at: nowIso(),
      })
      .where('id', '=', id)
      .execute();
  }

  // ---- upgrades -------------------------------------------------------------------

  /** Inserts an upgrade; the unique partial index refuses a second active one. */
  async insertUpgrade(upgrade: UpgradeRecord): Promise<void> {
    try {
      await this.db
        .insertInto('upgrades')
        .values({
          id: upgrade.id,
          cluster_id: upgrade.clusterId,
          component: upgrade.component,
          to_version: upgrade.toVersion,
          state: upgrade.state,
          snapshot: upgrade.snapshot,
          policy: JSON.stringify(upgrade.policy),
          total: upgrade.total,
          cap: upgrade.cap,
          ramp_start: upgrade.rampStart,
          pause_reason: upgrade.pauseReason === null ? null : JSON.stringify(upgrade.pauseReason),
          created_by: upgrade.createdBy,
          created_at: upgrade.createdAt,
          paused_at: upgrade.pausedAt,
          finished_at: upgrade.finishedAt,
          next_batch_at: upgrade.nextBatchAt,
          updated_at: upgrade.createdAt,
        })
        .execute();
    } catch (error) {
      if (this.adapter.isUniqueViolation(error)) {
        throw new UpshiftError(
          ErrorCode.UPGRADE_IN_PROGRESS,
          'the cluster already has an active upgrade: finish or cancel it before starting another',
        );
      }
      throw error;
    }
  }

  async getUpgrade(id: string): Promise<UpgradeRecord | undefined> {
    const row = await this.db.selectFrom('upgrades').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toUpgrade(row) : undefined;
  }

  async listUpgrades(filter: { clusterId?: string | undefined; state?: string | undefined; limit?: number }): Promise<UpgradeRecord[]> {
    let query = this.db.selectFrom('upgrades').selectAll();
    if (filter.clusterId) query = query.where('cluster_id', '=', filter.clusterId);
    if (filter.state) query = query.where('state', '=', filter.state);
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(filter.limit ?? 500)
      .execute();
    return rows.map(toUpgrade);
  }

  async listActiveUpgrades(): Promise<UpgradeRecord[]> {
    const rows = await this.db.selectFrom('upgrades').selectAll().where('state', 'not in', ['Completed', 'Canceled']).execute();
    return rows.map(toUpgrade);
  }

  async activeUpgradeOf(clusterId: string): Promise<UpgradeRecord | undefined> {
    const row = await this.db
      .selectFrom('upgrades')
      .selectAll()
      .where('cluster_id', '=', clusterId)
      .where('state', 'not in', ['Completed', 'Canceled'])
      .executeTakeFirst();
    return row ? toUpgrade(row) : undefined;
  }

  /** Compare-and-set on the upgrade's state: applies `patch` only if the state is `from`. */
  async casUpgrade(id: string, from: UpgradeState, patch: UpgradePatch): Promise<boolean> {
    const result = await this.db
      .updateTable('upgrades')
      .set({ ...patch, updated_at: nowIso() })
      .where('id', '=', id)
      .where('state', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  // ---- node tasks -----------------------------------------------------------------

  async insertTasks(tasks: Array<NodeTaskRecord & { sortKey: number }>): Promise<void> {
    const rows = tasks.map((t) => ({
      id: t.id,
      upgrade_id: t.upgradeId,
      node_id: t.nodeId,
      node_name: t.nodeName,
      role: t.role,
      sort_key: t.sortKey,
      state: t.state,
      batch_index: t.batchIndex,
      attempt: t.attempt,
      started_at: t.startedAt,
      finished_at: t.finishedAt,
      error: t.error,
      from_version: t.fromVersion,
      to_version: t.toVersion,
    }));
    for (let i = 0; i < rows.length; i += 500) {
      await this.db
        .insertInto('node_tasks')
        .values(rows.slice(i, i + 500))
        .execute();
    }
  }

  async listTasks(upgradeId: string, state?: NodeTaskState): Promise<NodeTaskRecord[]> {
    let query = this.db.selectFrom('node_tasks').selectAll().where('upgrade_id', '=', upgradeId);
    if (state) query = query.where('state', '=', state);
    const rows = await query.orderBy('sort_key').execute();
    return rows.map(toTask);
  }

  /** The task of one node in an upgrade, by node id, else by node name (one row, not the upgrade's list). */
  async findTaskOfNode(upgradeId: string, nodeRef: string): Promise<NodeTaskRecord | undefined> {
    const byId = await this.db
      .selectFrom('node_tasks')
      .selectAll()
      .where('upgrade_id', '=', upgradeId)
      .where('node_id', '=', nodeRef)
      .executeTakeFirst();
    const row =
      byId ??
      (await this.db
        .selectFrom('node_tasks')
        .selectAll()
        .where('upgrade_id', '=', upgradeId)
        .where('node_name', '=', nodeRef)
        .executeTakeFirst());
    return row ? toTask(row) : undefined;
  }

  /** A page of an upgrade's tasks in the upgrade's order (managers first, then natural order), after position `after`. */
  async pageTasks(upgradeId: string, after: number | null, limit: number): Promise<KeysetPage<NodeTaskRecord, number>> {
    let query = this.db.selectFrom('node_tasks').selectAll().where('upgrade_id', '=', upgradeId);
    if (after !== null) query = query.where('sort_key', '>', after);
    const rows = await query
      .orderBy('sort_key')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map(toTask), nextAfter: rows.length > limit && last ? Number(last.sort_key) : null };
  }

  async getTask(id: string): Promise<NodeTaskRecord | undefined> {
    const row = await this.db.selectFrom('node_tasks').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTask(row) : undefined;
  }

  async taskCounts(upgradeId: string): Promise<Record<NodeTaskState, number>> {
    const rows = await this.db
      .selectFrom('node_tasks')
      .select(['state'])
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('upgrade_id', '=', upgradeId)
      .groupBy('state')
      .execute();
    const counts: Record<NodeTaskState, number> = { pending: 0, running: 0, succeeded: 0, failed: 0, skipped: 0 };
    for (const row of rows) counts[row.state as NodeTaskState] = Number(row.n);
    return counts;
  }

  /** Compare-and-set on a task: applies `patch` only if it is in `from` at `attempt`. */
  async casTask(id: string, from: NodeTaskState, attempt: number, patch: TaskPatch): Promise<boolean> {
    const result = await this.db
      .updateTable('node_tasks')
      .set(patch)
      .where('id', '=', id)
      .where('state', '=', from)
      .where('attempt', '=', attempt)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Compare-and-set on many tasks at once: applies `patch` to those of `ids` that are in
   * `from` at `attempt`, and returns the ids that moved (one statement, RETURNING).
   */
  async casTasks(ids: string[], from: NodeTaskState, attempt: number, patch: TaskPatch): Promise<Set<string>> {
    const moved = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db
        .updateTable('node_tasks')
        .set(patch)
        .where('id', 'in', ids.slice(i, i + 500))
        .where('state', '=', from)
        .where('attempt', '=', attempt)
        .returning('id')
        .execute();
      for (const row of rows) moved.add(row.id);
    }
    return moved;
  }

  /** Sets the same versions on many nodes (one statement per 500). */
  async setNodesVersions(ids: string[], versions: ComponentVersions): Promise<void> {
    const text = JSON.stringify(versions);
    const now = nowIso();
    for (let i = 0; i < ids.length; i += 500) {
      await this.db
        .updateTable('nodes')
        .set({ versions: text, updated_at: now })
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
    }
  }

  /** Moves every task in `from` to `to`; returns how many moved. */
  async moveTasks(upgradeId: string, from: NodeTaskState, to: NodeTaskState, finishedAt: string | null): Promise<number> {
    const result = await this.db
      .updateTable('node_tasks')
      .set({ state: to, ...(finishedAt ? { finished_at: finishedAt } : {}) })
      .where('upgrade_id', '=', upgradeId)
      .where('state', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  // ---- batches --------------------------------------------------------------------

  async insertBatch(batch: BatchRecord): Promise<void> {
    await this.db
      .insertInto('batches')
      .values({
        upgrade_id: batch.upgradeId,
        idx: batch.index,
        size: batch.size,
        state: batch.state,
        node_ids: JSON.stringify(batch.nodeIds),
        started_at: batch.startedAt,
        finished_at: batch.finishedAt,
      })
      .execute();
  }

  async listBatches(upgradeId: string): Promise<BatchRecord[]> {
    const rows = await this.db.selectFrom('batches').selectAll().where('upgrade_id', '=', upgradeId).orderBy('idx').execute();
    return rows.map(toBatch);
  }

  async finishBatch(upgradeId: string, index: number, state: BatchState, finishedAt: string): Promise<boolean> {
    const result = await this.db
      .updateTable('batches')
      .set({ state, finished_at: finishedAt })
      .where('upgrade_id', '=', upgradeId)
      .where('idx', '=', index)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  // ---- snapshots ------------------------------------------------------------------

  async insertSnapshots(snapshots: SnapshotRecord[]): Promise<void> {
    const rows = snapshots.map((s) => ({
      id: s.id,
      upgrade_id: s.upgradeId,
      node_id: s.nodeId,
      node_name: s.nodeName,
      state: s.state,
      ref: s.ref,
      error: s.error,
      started_at: s.startedAt,
      finished_at: s.finishedAt,
    }));
    for (let i = 0; i < rows.length; i += 500) {
      await this.db
        .insertInto('snapshots')
        .values(rows.slice(i, i + 500))
        .execute();
    }
  }

  async listSnapshots(upgradeId: string): Promise<SnapshotRecord[]> {
    const rows = await this.db.selectFrom('snapshots').selectAll().where('upgrade_id', '=', upgradeId).orderBy('node_name').execute();
    return rows.map(toSnapshot);
  }

  /** The snapshots of some of an upgrade's nodes (one page of its node list). */
  async snapshotsOfNodes(upgradeId: string, nodeIds: readonly string[]): Promise<SnapshotRecord[]> {
    const out: SnapshotRecord[] = [];
    for (let i = 0; i < nodeIds.length; i += 500) {
      const rows = await this.db
        .selectFrom('snapshots')
        .selectAll()
        .where('upgrade_id', '=', upgradeId)
        .where('node_id', 'in', nodeIds.slice(i, i + 500))
        .execute();
      out.push(...rows.map(toSnapshot));
    }
    return out;
  }

  async casSnapshot(
    id: string,
    from: SnapshotState,
    patch: Partial<Pick<SnapshotsTable, 'ref' | 'error' | 'started_at' | 'finished_at'>> & { state: SnapshotState },
  ): Promise<boolean> {
    const result = await this.db.updateTable('snapshots').set(patch).where('id', '=', id).where('state', '=', from).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  // ---- events and logs ------------------------------------------------------------

  async appendEvent(event: NewEvent): Promise<UpshiftEvent> {
    const row = await this.db
      .insertInto('events')
      .values({
        at: event.at ?? nowIso(),
        type: event.type,
        actor: event.actor,
        cluster_id: event.clusterId,
        upgrade_id: event.upgradeId,
        node_id: event.nodeId,
        message: event.message,
        data: event.data === undefined ? null : JSON.stringify(event.data),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const stored = toEvent(row);
    await this.notifyReplicas([stored.id]);
    if (this.pending) this.pending.push(stored);
    else this.bus.emit('event', stored);
    return stored;
  }

  /** Several events in one statement (a batch starting, a batch of outcomes). */
  async appendEvents(events: NewEvent[]): Promise<UpshiftEvent[]> {
    if (events.length === 0) return [];
    const stored: UpshiftEvent[] = [];
    for (let i = 0; i < events.length; i += 500) {
      const rows = await this.db
        .insertInto('events')
        .values(
          events.slice(i, i + 500).map((event) => ({
            at: event.at ?? nowIso(),
            type: event.type,
            actor: event.actor,
            cluster_id: event.clusterId,
            upgrade_id: event.upgradeId,
            node_id: event.nodeId,
            message: event.message,
            data: event.data === undefined ? null : JSON.stringify(event.data),
          })),
        )
        .returningAll()
        .execute();
      const chunk = rows.map(toEvent).sort((a, b) => Number(a.id) - Number(b.id));
      await this.notifyReplicas(chunk.map((e) => e.id));
      stored.push(...chunk);
    }
    if (this.pending) this.pending.push(...stored);
    else for (const e of stored) this.bus.emit('event', e);
    return stored;
  }

  async getNodes(ids: string[]): Promise<NodeRecord[]> {
    if (ids.length === 0) return [];
    const out: NodeRecord[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db
        .selectFrom('nodes')
        .selectAll()
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
      out.push(...rows.map(toNode));
    }
    return out;
  }

  /** Whether other server processes may write to this database (PostgreSQL); SQLite has one. */
  get sharedWithReplicas(): boolean {
    return this.adapter.listen !== undefined;
  }

  /**
   * Tells the other replicas (PostgreSQL NOTIFY, delivered when the transaction commits)
   * which events were written, so that their streams and engines see them at once.
   */
  private async notifyReplicas(ids: string[]): Promise<void> {
    if (!this.adapter.listen || ids.length === 0) return;
    const payload = JSON.stringify({ origin: this.origin, ids });
    await sql`select pg_notify(${EVENTS_CHANNEL}, ${payload})`.execute(this.db);
  }

  /**
   * Receives the other replicas' events and emits them on the bus as `event` (for
   * streams) and `remote-event` (for the engine). Returns a stopper.
   */
  listenToReplicas(onError: (error: unknown) => void): () => Promise<void> {
    if (!this.adapter.listen) return async () => undefined;
    return this.adapter.listen(
      EVENTS_CHANNEL,
      (payload) => {
        let message: { origin?: string; ids?: string[] };
        try {
          message = JSON.parse(payload) as { origin?: string; ids?: string[] };
        } catch {
          return;
        }
        if (message.origin === this.origin || !Array.isArray(message.ids) || message.ids.length === 0) return;
        const ids = message.ids.map(Number).filter(Number.isFinite);
        void this.adapter.db
          .selectFrom('events')
          .selectAll()
          .where('id', 'in', ids)
          .orderBy('id')
          .execute()
          .then((rows) => {
            for (const row of rows) {
              const event = toEvent(row);
              this.bus.emit('event', event);
              this.bus.emit('remote-event', event);
            }
          })
          .catch(onError);
      },
      onError,
    );
  }

  // ---- leases: which replica drives which upgrade ----------------------------------

  /**
   * Claims (or renews) upgrades for `owner` until `expiresAt`: every active upgrade, and
   * every finished one that still has a running node, whose lease is free, expired or
   * already this owner's. Each claim is a conditional UPDATE, so two replicas never
   * hold the same upgrade. `only` restricts it to one upgrade.
   */
  async claimUpgrades(owner: string, now: string, expiresAt: string, only?: string): Promise<string[]> {
    const claimable = (eb: any) => eb.or([eb('lease_owner', 'is', null), eb('lease_expires_at', '<', now), eb('lease_owner', '=', owner)]);
    let query = this.db
      .selectFrom('upgrades')
      .select('id')
      .where((eb) =>
        eb.or([
          eb('state', 'not in', ['Completed', 'Canceled']),
          eb('id', 'in', eb.selectFrom('node_tasks').select('upgrade_id').where('state', '=', 'running')),
        ]),
      )
      .where(claimable);
    if (only) query = query.where('id', '=', only);
    const candidates = await query.execute();
    const claimed: string[] = [];
    for (const { id } of candidates) {
      const result = await this.db
        .updateTable('upgrades')
        .set({ lease_owner: owner, lease_expires_at: expiresAt })
        .where('id', '=', id)
        .where(claimable)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) claimed.push(id);
    }
    return claimed;
  }

  /** Lets go of every lease of `owner` (a graceful stop): another replica takes over at once. */
  async releaseUpgrades(owner: string): Promise<void> {
    await this.db.updateTable('upgrades').set({ lease_owner: null, lease_expires_at: null }).where('lease_owner', '=', owner).execute();
  }

  async leaseOwnerOf(upgradeId: string): Promise<string | null> {
    const row = await this.db.selectFrom('upgrades').select('lease_owner').where('id', '=', upgradeId).executeTakeFirst();
    return row?.lease_owner ?? null;
  }

  async listEvents(filter: EventFilter): Promise<UpshiftEvent[]> {
    let query = this.db.selectFrom('events').selectAll();
    if (filter.clusterId) query = query.where('cluster_id', '=', filter.clusterId);
    if (filter.upgradeId) query = query.where('upgrade_id', '=', filter.upgradeId);
    // The audit trail (one event per mutating request) is listed only when asked for by type.
    if (filter.type) query = query.where('type', '=', filter.type);
    else query = query.where('type', '!=', 'audit.request');
    if (filter.before) query = query.where('id', '<', Number(filter.before));
    if (filter.after) query = query.where('id', '>', Number(filter.after));
    const rows = await query
      .orderBy('id', filter.after ? 'asc' : 'desc')
      .limit(filter.limit)
      .execute();
    return rows.map(toEvent);
  }

  /** Task counts by state among the tasks of one batch. */
  async batchTaskCounts(upgradeId: string, batchIndex: number): Promise<Record<NodeTaskState, number>> {
    const rows = await this.db
      .selectFrom('node_tasks')
      .select(['state'])
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('upgrade_id', '=', upgradeId)
      .where('batch_index', '=', batchIndex)
      .groupBy('state')
      .execute();
    const counts: Record<NodeTaskState, number> = { pending: 0, running: 0, succeeded: 0, failed: 0, skipped: 0 };
    for (const row of rows) counts[row.state as NodeTaskState] = Number(row.n);
    return counts;
  }

  /**
   * Appends log lines of many node tasks (one transaction, one insert per 500 rows),
   * keeping each task's log bounded: its first `LOG_HEAD_BYTES` (the head: how the task
   * started) and its last `LOG_TAIL_BYTES` (the tail: how it ended), sizes counted as
   * served (`<at> <line>\n`). Once the head is full every line goes to the tail, and
   * the oldest tail lines make room for the new ones; what was dropped between the two
   * is counted, and the log read shows a marker there (`logMarker`). The sizes are kept
   * per task in `node_log_sizes`, so an append reads and writes one small row per task
   * and deletes about as many old lines as it adds, never summing the log. Lines of a
   * task that no longer exists are dropped.
   */
  async appendLogs(rows: Array<{ upgradeId: string; nodeTaskId: string; at: string; line: string }>): Promise<void> {
    if (rows.length === 0) return;
    const byTask = new Map<string, typeof rows>();
    for (const row of rows) {
      let list = byTask.get(row.nodeTaskId);
      if (!list) byTask.set(row.nodeTaskId, (list = []));
      list.push(row);
    }
    // Sorted, so that two appends lock the same tasks' sizes in the same order.
    const taskIds = [...byTask.keys()].sort();
    await this.tx(async (tx) => {
      const sizes = new Map<string, LogSizes>();
      for (let i = 0; i < taskIds.length; i += 500) {
        const chunk = taskIds.slice(i, i + 500);
        await tx.db
          .insertInto('node_log_sizes')
          .columns(['node_task_id'])
          .expression((eb) => eb.selectFrom('node_tasks').select('id').where('id', 'in', chunk))
          .onConflict((oc) => oc.column('node_task_id').doNothing())
          .execute();
        let query = tx.db.selectFrom('node_log_sizes').selectAll().where('node_task_id', 'in', chunk).orderBy('node_task_id');
        if (this.adapter.supportsSkipLocked) query = query.forUpdate();
        for (const r of await query.execute()) {
          sizes.set(r.node_task_id, { head: Number(r.head_bytes), tail: Number(r.tail_bytes), dropped: Number(r.dropped_bytes) });
        }
      }
      const inserts: Array<{ upgrade_id: string; node_task_id: string; at: string; line: string; bytes: number; tail: number }> = [];
      const changed: Array<[string, LogSizes]> = [];
      for (const taskId of taskIds) {
        const before = sizes.get(taskId);
        if (!before) continue;
        const after = { ...before };
        const tail: typeof inserts = [];
        for (const r of byTask.get(taskId) ?? []) {
          const row = { upgrade_id: r.upgradeId, node_task_id: taskId, at: r.at, line: r.line, bytes: servedBytes(r.at, r.line), tail: 0 };
          if (after.tail === 0 && after.dropped === 0 && tail.length === 0 && after.head + row.bytes <= LOG_HEAD_BYTES) {
            after.head += row.bytes;
            inserts.push(row);
          } else tail.push({ ...row, tail: 1 });
        }
        // New tail lines beyond the tail's size are dropped before they are written…
        let newBytes = tail.reduce((n, r) => n + r.bytes, 0);
        while (newBytes > LOG_TAIL_BYTES) {
          const oldest = tail.shift() as (typeof tail)[number];
          newBytes -= oldest.bytes;
          after.dropped += oldest.bytes;
        }
        // …and the oldest stored tail lines make room for the others.
        const excess = after.tail + newBytes - LOG_TAIL_BYTES;
        if (excess > 0) {
          const freed = await tx.dropOldestTailLines(taskId, excess);
          after.tail -= freed;
          after.dropped += freed;
        }
        after.tail += newBytes;
        inserts.push(...tail);
        if (after.head !== before.head || after.tail !== before.tail || after.dropped !== before.dropped) changed.push([taskId, after]);
      }
      for (let i = 0; i < inserts.length; i += 500) {
        await tx.db
          .insertInto('node_logs')
          .values(inserts.slice(i, i + 500))
          .execute();
      }
      for (let i = 0; i < changed.length; i += 200) {
        const chunk = changed.slice(i, i + 200);
        const pick = (column: 'head_bytes' | 'tail_bytes' | 'dropped_bytes', value: (s: LogSizes) => number) =>
          sql<number>`case node_task_id ${sql.join(
            chunk.map(([id, s]) => sql`when ${id} then cast(${value(s)} as bigint)`),
            sql` `,
          )} else ${sql.ref(column)} end`;
        await tx.db
          .updateTable('node_log_sizes')
          .set({
            head_bytes: pick('head_bytes', (s) => s.head),
            tail_bytes: pick('tail_bytes', (s) => s.tail),
            dropped_bytes: pick('dropped_bytes', (s) => s.dropped),
          })
          .where(
            'node_task_id',
            'in',
            chunk.map(([id]) => id),
          )
          .execute();
      }
    });
  }

  /** Deletes the oldest tail lines of a task until at least `bytes` are freed (or the tail is empty); returns the bytes freed. */
  private async dropOldestTailLines(nodeTaskId: string, bytes: number): Promise<number> {
    let freed = 0;
    let last: number | string | undefined;
    while (freed < bytes) {
      let query = this.db
        .selectFrom('node_logs')
        .select(['id', 'bytes'])
        .where('node_task_id', '=', nodeTaskId)
        .where('tail', '=', 1)
        .orderBy('id')
        .limit(1000);
      if (last !== undefined) query = query.where('id', '>', last as number);
      const rows = await query.execute();
      if (rows.length === 0) break;
      for (const row of rows) {
        freed += Number(row.bytes);
        last = row.id;
        if (freed >= bytes) break;
      }
    }
    if (last !== undefined) {
      await this.db
        .deleteFrom('node_logs')
        .where('node_task_id', '=', nodeTaskId)
        .where('tail', '=', 1)
        .where('id', '<=', last as number)
        .execute();
    }
    return freed;
  }

  /** How many bytes of a node task's log were dropped between its head and its tail (0: none, the log is whole). */
  async logDroppedBytes(nodeTaskId: string): Promise<number> {
    const row = await this.db
      .selectFrom('node_log_sizes')
      .select('dropped_bytes')
      .where('node_task_id', '=', nodeTaskId)
      .executeTakeFirst();
    return Number(row?.dropped_bytes ?? 0);
  }

  /**
   * One page of a node task's log in order (head, then tail), after `after` (the last
   * row of the previous page): a reader holds one page at a time, whatever the log's size.
   */
  async readLogPage(nodeTaskId: string, after: LogCursor | undefined, limit: number): Promise<LogLine[]> {
    let query = this.db
      .selectFrom('node_logs')
      .select(['id', 'at', 'line', 'tail'])
      .where('node_task_id', '=', nodeTaskId)
      .orderBy('tail')
      .orderBy('id')
      .limit(limit);
    if (after) {
      const { tail, id } = after;
      query = query.where((eb) => eb.or([eb('tail', '>', tail), eb.and([eb('tail', '=', tail), eb('id', '>', id)])]));
    }
    const rows = await query.execute();
    return rows.map((r) => ({ id: Number(r.id), at: r.at, line: r.line, tail: Number(r.tail) }));
  }

  /** A node task's whole log (without the marker), page by page: at most the bound (1 MiB) for logs written since migration 8. */
  async readLog(nodeTaskId: string): Promise<Array<{ at: string; line: string }>> {
    const out: Array<{ at: string; line: string }> = [];
    let after: LogCursor | undefined;
    for (;;) {
      const page = await this.readLogPage(nodeTaskId, after, 1000);
      for (const { at, line } of page) out.push({ at, line });
      const last = page[page.length - 1];
      if (!last || page.length < 1000) return out;
      after = last;
    }
  }

  /** The paused-TTL purge: the upgrade's events and node logs go. */
  async purgeUpgradeHistory(upgradeId: string): Promise<{ events: number; logLines: number }> {
    const events = await this.db.deleteFrom('events').where('upgrade_id', '=', upgradeId).executeTakeFirst();
    const logs = await this.db.deleteFrom('node_logs').where('upgrade_id', '=', upgradeId).executeTakeFirst();
    await this.db
      .deleteFrom('node_log_sizes')
      .where('node_task_id', 'in', (eb) => eb.selectFrom('node_tasks').select('id').where('upgrade_id', '=', upgradeId))
      .execute();
    return { events: Number(events.numDeletedRows), logLines: Number(logs.numDeletedRows) };
  }

  /** Tasks and snapshots that were running when the process last stopped, in any upgrade. */
  async listRunningWork(): Promise<{ tasks: NodeTaskRecord[]; snapshots: SnapshotRecord[] }> {
    const tasks = await this.db.selectFrom('node_tasks').selectAll().where('state', '=', 'running').execute();
    const snapshots = await this.db.selectFrom('snapshots').selectAll().where('state', '=', 'running').execute();
    return { tasks: tasks.map(toTask), snapshots: snapshots.map(toSnapshot) };
  }

  /**
   * Makes the stored nodes match an inventory: updates known nodes, adds new ones and,
   * when no upgrade is active, removes vanished ones (while one is active they are kept
   * and marked Down, since the upgrade's membership is locked).
   */
  async reconcileNodes(clusterId: string, inventory: InventoryNode[], actor: string): Promise<void> {
    const existing = new Map((await this.listNodes(clusterId)).map((n) => [n.name, n]));
    const active = await this.activeUpgradeOf(clusterId);
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
          await this.updateNode(node.id, { status: item.status, role: item.role, versions });
        }
        continue;
      }
      const id = newId('nd');
      await this.insertNodes([
        { id, clusterId, name: item.name, role: item.role, status: item.status, versions: item.versions, createdAt: now },
      ]);
      await this.appendEvent({
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
        if (node.status !== 'Down') await this.updateNode(node.id, { status: 'Down' });
        continue;
      }
      await this.deleteNode(node.id);
      await this.appendEvent({
        type: 'cluster.node_removed',
        actor,
        clusterId,
        upgradeId: null,
        nodeId: node.id,
        message: `node ${node.name} left the cluster`,
      });
    }
  }

  // ---- API tokens and console sessions (hashes only) ----

  async insertApiToken(row: {
    id: string;
    name: string;
    role: string;
    tokenHash: string;
    createdBy: string;
    expiresAt: string | null;
  }): Promise<void> {
    await this.db
      .insertInto('api_tokens')
      .values({
        id: row.id,
        name: row.name,
        role: row.role,
        token_hash: row.tokenHash,
        created_by: row.createdBy,
        created_at: nowIso(),
        expires_at: row.expiresAt,
        revoked_at: null,
      })
      .execute();
  }

  async findApiTokenByHash(tokenHash: string) {
    return this.db.selectFrom('api_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  async getApiToken(id: string) {
    return this.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listApiTokens() {
    return this.db
      .selectFrom('api_tokens')
      .select(['id', 'name', 'role', 'created_by', 'created_at', 'expires_at', 'revoked_at'])
      .orderBy('created_at')
      .execute();
  }

  async revokeApiToken(id: string): Promise<boolean> {
    const result = await this.db
      .updateTable('api_tokens')
      .set({ revoked_at: nowIso() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 1) await this.db.deleteFrom('sessions').where('token_id', '=', id).execute();
    return Number(result.numUpdatedRows) === 1;
  }

  async insertSession(row: {
    id: string;
    address: string | null;
    sessionHash: string;
    csrfHash: string;
    principal: string;
    role: string;
    tokenId: string | null;
    expiresAt: string;
  }): Promise<void> {
    await this.db
      .insertInto('sessions')
      .values({
        id: row.id,
        address: row.address,
        session_hash: row.sessionHash,
        csrf_hash: row.csrfHash,
        principal: row.principal,
        role: row.role,
        token_id: row.tokenId,
        created_at: nowIso(),
        expires_at: row.expiresAt,
      })
      .execute();
  }

  async findSession(sessionHash: string) {
    return this.db.selectFrom('sessions').selectAll().where('session_hash', '=', sessionHash).executeTakeFirst();
  }

  async deleteSession(sessionHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('session_hash', '=', sessionHash).execute();
  }

  /** Sessions not yet expired, newest first; expired ones are deleted on the way. */
  async listSessions(now: string) {
    await this.db.deleteFrom('sessions').where('expires_at', '<=', now).execute();
    return this.db.selectFrom('sessions').selectAll().orderBy('created_at', 'desc').limit(5000).execute();
  }

  async deleteSessionById(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('sessions').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  // ---- secrets (sealed by the caller; the store never sees plaintext) ----

  async putClusterSecret(clusterId: string, name: string, sealed: string): Promise<void> {
    await this.db.deleteFrom('cluster_secrets').where('cluster_id', '=', clusterId).where('name', '=', name).execute();
    await this.db.insertInto('cluster_secrets').values({ cluster_id: clusterId, name, sealed, created_at: nowIso() }).execute();
  }

  async getClusterSecret(clusterId: string, name: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('cluster_secrets')
      .select('sealed')
      .where('cluster_id', '=', clusterId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row?.sealed;
  }

  // ---- agents ---------------------------------------------------------------------

  async insertJoinToken(row: { tokenHash: string; clusterId: string; expiresAt: string | null; singleUse: boolean }): Promise<void> {
    await this.db
      .insertInto('join_tokens')
      .values({
        token_hash: row.tokenHash,
        cluster_id: row.clusterId,
        created_at: nowIso(),
        expires_at: row.expiresAt,
        revoked_at: null,
        single_use: row.singleUse ? 1 : 0,
        used_at: null,
        used_by_node: null,
      })
      .execute();
  }

  /** A join token by its hash and whether it still admits a join at `now`; undefined when unknown. */
  async findJoinToken(tokenHash: string, now: string): Promise<JoinTokenRecord | undefined> {
    const row = await this.db.selectFrom('join_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    if (!row) return undefined;
    const singleUse = Number(row.single_use) === 1;
    const state: JoinTokenState =
      row.revoked_at !== null
        ? 'revoked'
        : singleUse && row.used_at !== null
          ? 'used'
          : row.expires_at !== null && row.expires_at <= now
            ? 'expired'
            : 'valid';
    return { clusterId: row.cluster_id, expiresAt: row.expires_at, singleUse, state };
  }

  /**
   * Spends a single-use join token: a compare-and-set on `used_at` that also re-checks
   * expiry and revocation, so that of two joins racing with one token exactly one wins.
   * Run it in the join's transaction, which then rolls back with it if the join fails.
   */
  async consumeJoinToken(tokenHash: string, now: string, nodeId: string): Promise<boolean> {
    const result = await this.db
      .updateTable('join_tokens')
      .set({ used_at: now, used_by_node: nodeId })
      .where('token_hash', '=', tokenHash)
      .where('single_use', '=', 1)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async revokeJoinTokens(clusterId: string): Promise<number> {
    const result = await this.db
      .updateTable('join_tokens')
      .set({ revoked_at: nowIso() })
      .where('cluster_id', '=', clusterId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Whether the node's agent holds a credential: a join under its name is then refused. */
  async nodeHasCredential(nodeId: string): Promise<boolean> {
    const row = await this.db.selectFrom('agent_credentials').select('node_id').where('node_id', '=', nodeId).executeTakeFirst();
    return row !== undefined;
  }

  /** Revokes every credential of the node at once; returns how many there were. */
  async revokeAgentCredentials(nodeId: string): Promise<number> {
    const result = await this.db.deleteFrom('agent_credentials').where('node_id', '=', nodeId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Sets the node's one credential (the node held none: first join, or a join after a reset). */
  async setAgentCredential(nodeId: string, tokenHash: string): Promise<void> {
    await this.db.deleteFrom('agent_credentials').where('node_id', '=', nodeId).execute();
    await this.db.insertInto('agent_credentials').values({ token_hash: tokenHash, node_id: nodeId, created_at: nowIso() }).execute();
  }

  async nodeOfCredential(tokenHash: string): Promise<NodeRecord | undefined> {
    const row = await this.db
      .selectFrom('agent_credentials')
      .innerJoin('nodes', 'nodes.id', 'agent_credentials.node_id')
      .selectAll('nodes')
      .where('agent_credentials.token_hash', '=', tokenHash)
      .executeTakeFirst();
    return row ? toNode(row) : undefined;
  }

  async recordHeartbeat(nodeId: string, facts: unknown, versions: ComponentVersions, at: string): Promise<void> {
    await this.db
      .updateTable('nodes')
      .set({ facts: JSON.stringify(facts), versions: JSON.stringify(versions), status: 'Ready', last_seen_at: at, updated_at: at })
      .where('id', '=', nodeId)
      .execute();
  }

  /** When the node's agent was last heard from (join or heartbeat), if ever. */
  async nodeLastSeen(nodeId: string): Promise<string | null> {
    const row = await this.db.selectFrom('nodes').select('last_seen_at').where('id', '=', nodeId).executeTakeFirst();
    return row?.last_seen_at ?? null;
  }

  /** Marks nodes Down whose agent has not been heard from since `before`; returns them. */
  async markSilentNodesDown(before: string): Promise<NodeRecord[]> {
    const rows = await this.db.selectFrom('nodes').selectAll().where('last_seen_at', '<', before).where('status', '!=', 'Down').execute();
    if (rows.length > 0) {
      await this.db
        .updateTable('nodes')
        .set({ status: 'Down', updated_at: nowIso() })
        .where(
          'id',
          'in',
          rows.map((r) => r.id),
        )
        .execute();
    }
    return rows.map(toNode);
  }

  /** Queues an agent task unless one with the same key exists (idempotent). */
  async ensureAgentTask(task: {
    taskKey: string;
    nodeId: string;
    upgradeId: string | null;
    nodeTaskId: string | null;
    recipe: string;
    params: unknown;
  }): Promise<void> {
    const existing = await this.db.selectFrom('agent_tasks').select('task_key').where('task_key', '=', task.taskKey).executeTakeFirst();
    if (existing) return;
    try {
      await this.db
        .insertInto('agent_tasks')
        .values({
          task_key: task.taskKey,
          node_id: task.nodeId,
          upgrade_id: task.upgradeId,
          node_task_id: task.nodeTaskId,
          recipe: task.recipe,
          params: JSON.stringify(task.params),
          state: 'queued',
          result: null,
          created_at: nowIso(),
          delivered_at: null,
          finished_at: null,
        })
        .execute();
    } catch (error) {
      if (!this.adapter.isUniqueViolation(error)) throw error;
    }
  }

  async getAgentTask(taskKey: string) {
    return this.db.selectFrom('agent_tasks').selectAll().where('task_key', '=', taskKey).executeTakeFirst();
  }

  /** Tasks of a node that have no result yet, oldest first; marks them delivered. */
  async openAgentTasks(nodeId: string) {
    const rows = await this.db
      .selectFrom('agent_tasks')
      .selectAll()
      .where('node_id', '=', nodeId)
      .where('state', 'in', ['queued', 'delivered'])
      .orderBy('created_at')
      .execute();
    const queued = rows.filter((r) => r.state === 'queued').map((r) => r.task_key);
    if (queued.length > 0) {
      await this.db
        .updateTable('agent_tasks')
        .set({ state: 'delivered', delivered_at: nowIso() })
        .where('task_key', 'in', queued)
        .execute();
    }
    return rows;
  }

  /** The node's tasks without a result (queued or delivered), without marking them delivered. */
  async unfinishedAgentTasks(nodeId: string): Promise<Array<{ taskKey: string; upgradeId: string | null; nodeTaskId: string | null }>> {
    const rows = await this.db
      .selectFrom('agent_tasks')
      .select(['task_key', 'upgrade_id', 'node_task_id'])
      .where('node_id', '=', nodeId)
      .where('state', 'in', ['queued', 'delivered'])
      .orderBy('created_at')
      .execute();
    return rows.map((r) => ({ taskKey: r.task_key, upgradeId: r.upgrade_id, nodeTaskId: r.node_task_id }));
  }

  /** Records an agent task's result once; returns false when it already had one. */
  async finishAgentTask(taskKey: string, nodeId: string, state: 'succeeded' | 'failed', result: unknown): Promise<boolean> {
    const outcome = await this.db
      .updateTable('agent_tasks')
      .set({ state, result: JSON.stringify(result), finished_at: nowIso() })
      .where('task_key', '=', taskKey)
      .where('node_id', '=', nodeId)
      .where('state', 'in', ['queued', 'delivered'])
      .executeTakeFirst();
    return Number(outcome.numUpdatedRows) === 1;
  }

  async upsertArtifact(row: {
    file: string;
    component: string;
    version: string;
    method: string;
    sha256: string;
    size: number;
  }): Promise<void> {
    await this.db.deleteFrom('artifacts').where('file', '=', row.file).execute();
    await this.db
      .insertInto('artifacts')
      .values({ ...row, created_at: nowIso() })
      .execute();
  }

  async listArtifacts(filter: { component?: string; file?: string } = {}) {
    let query = this.db.selectFrom('artifacts').selectAll();
    if (filter.component) query = query.where('component', '=', filter.component);
    if (filter.file) query = query.where('file', '=', filter.file);
    return query.orderBy('component').orderBy('version').orderBy('file').execute();
  }

  async deleteArtifact(file: string): Promise<boolean> {
    const result = await this.db.deleteFrom('artifacts').where('file', '=', file).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async ping(): Promise<void> {
    await this.db.selectFrom('schema_migrations').select('version').limit(1).execute();
  }
}
