// One repository on purpose (~410 lines): an upgrade with its node tasks, batches and snapshots is one aggregate, changed together in one transaction (docs/design.md §8).
import type { SelectQueryBuilder, Selectable } from 'kysely';
import { ErrorCode, UpshiftError } from '../domain/errors.js';
import {
  type BatchRecord,
  type BatchState,
  type NodeTaskRecord,
  NodeTaskState,
  type SnapshotRecord,
  type SnapshotState,
  type UpgradePolicy,
  type UpgradeRecord,
} from '../domain/model.js';
import type { EndReason, PauseReason, UpgradeState } from '../domain/upgrade-state.js';
import type { Component } from '../domain/components.js';
import { type KeysetPage, changed, jsonOrNull, keysetPage, nowIso, parseJson, pick, slices } from './rows.js';
import type { BatchesTable, Database, UpgradesTable } from './schema.js';
import type { Scope } from './scope.js';

const UPGRADE_COLUMNS = [
  'id',
  'clusterId',
  'component',
  'toVersion',
  'state',
  'snapshot',
  'policy',
  'total',
  'cap',
  'rampStart',
  'pauseReason',
  'endReason',
  'createdBy',
  'createdAt',
  'pausedAt',
  'finishedAt',
  'nextBatchAt',
] as const;

const TASK_COLUMNS = [
  'id',
  'upgradeId',
  'nodeId',
  'nodeName',
  'role',
  'state',
  'batchIndex',
  'attempt',
  'startedAt',
  'finishedAt',
  'error',
  'fromVersion',
  'toVersion',
] as const;

const BATCH_COLUMNS = ['upgradeId', 'idx', 'size', 'state', 'nodeIds', 'startedAt', 'finishedAt'] as const;

const SNAPSHOT_COLUMNS = ['id', 'upgradeId', 'nodeId', 'nodeName', 'state', 'ref', 'error', 'startedAt', 'finishedAt'] as const;

/** States an upgrade ends in; every other state is active (one per cluster at most). */
const FINISHED: UpgradeState[] = ['Completed', 'Canceled'];

const NODE_TASK_STATES = Object.values(NodeTaskState);

/** An upgrade's batches first to last, put in order here: SQLite prepares an `order by` with a bound value again on every run (store/agents.ts). */
const byIndex = <T extends { idx: number }>(rows: T[]): T[] => rows.sort((a, b) => a.idx - b.idx);

/**
 * What a transition of an upgrade changes besides its state, in the domain's terms; the
 * store encodes it (the pause reason as JSON). Written only by a compare-and-set on the
 * state (`casState`).
 */
export type UpgradePatch = Partial<
  Pick<UpgradeRecord, 'state' | 'pauseReason' | 'endReason' | 'pausedAt' | 'finishedAt' | 'nextBatchAt' | 'rampStart'>
>;

/** The lease a new upgrade is stored with: its replica's name and how long the lease lasts. */
export interface NewLease {
  owner: string;
  ttlMs: number;
}

/** A batch as the batch loop reads it: everything but its list of nodes. */
export type BatchProgress = Omit<BatchRecord, 'nodeIds'>;

/** What a compare-and-set on a node task changes. */
export type TaskPatch = Partial<
  Pick<NodeTaskRecord, 'state' | 'batchIndex' | 'attempt' | 'startedAt' | 'finishedAt' | 'error' | 'fromVersion'>
>;

/** What a compare-and-set on a snapshot changes; it always names the new state. */
export type SnapshotPatch = Partial<Pick<SnapshotRecord, 'ref' | 'error' | 'startedAt' | 'finishedAt'>> & { state: SnapshotState };

const UPGRADE_PATCH_FIELDS = ['state', 'pauseReason', 'endReason', 'pausedAt', 'finishedAt', 'nextBatchAt', 'rampStart'] as const;
const TASK_PATCH_FIELDS = ['state', 'batchIndex', 'attempt', 'startedAt', 'finishedAt', 'error', 'fromVersion'] as const;
const SNAPSHOT_PATCH_FIELDS = ['state', 'ref', 'error', 'startedAt', 'finishedAt'] as const;

/** The fields of a patch that it sets (undefined: left as it is; null: cleared). */
function setFields<T extends object, K extends keyof T>(patch: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (patch[key] !== undefined) out[key] = patch[key];
  return out;
}

function toUpgrade(row: Pick<Selectable<UpgradesTable>, (typeof UPGRADE_COLUMNS)[number]>): UpgradeRecord {
  return {
    id: row.id,
    clusterId: row.clusterId,
    component: row.component,
    toVersion: row.toVersion,
    state: row.state,
    snapshot: row.snapshot,
    policy: parseJson<UpgradePolicy>(row.policy, { maxBatchPercent: 10, soakSeconds: 0 }),
    total: row.total,
    cap: row.cap,
    rampStart: row.rampStart,
    pauseReason: parseJson<PauseReason | null>(row.pauseReason, null),
    endReason: parseJson<EndReason | null>(row.endReason, null),
    createdBy: row.createdBy,
    createdAt: row.createdAt,
    pausedAt: row.pausedAt,
    finishedAt: row.finishedAt,
    nextBatchAt: row.nextBatchAt,
  };
}

function toBatch(row: Pick<Selectable<BatchesTable>, (typeof BATCH_COLUMNS)[number]>): BatchRecord {
  return {
    upgradeId: row.upgradeId,
    index: row.idx,
    size: row.size,
    state: row.state,
    nodeIds: parseJson<string[]>(row.nodeIds, []),
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
  };
}

/** A task of a page, without the sort key the page was read by. */
function toTask(row: NodeTaskRecord): NodeTaskRecord {
  return {
    id: row.id,
    upgradeId: row.upgradeId,
    nodeId: row.nodeId,
    nodeName: row.nodeName,
    role: row.role,
    state: row.state,
    batchIndex: row.batchIndex,
    attempt: row.attempt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    error: row.error,
    fromVersion: row.fromVersion,
    toVersion: row.toVersion,
  };
}

/**
 * Upgrades and what belongs to each: its node tasks (one per node, in the upgrade's
 * order), its batches and its snapshots. Every state change is a compare-and-set that
 * names the state it expects and reports whether it won (pg-boss's `cancelJobs`); callers
 * act only on a win, so two replicas or an operator racing the engine never both move one
 * row.
 */
export class UpgradeRepository {
  constructor(private readonly scope: Scope) {}

  private get db() {
    return this.scope.db;
  }

  // Upgrades.

  /**
   * Inserts an upgrade; the unique partial index refuses a second active one in a cluster.
   * With `lease`, it is stored already leased to that owner for `ttlMs` from the database's
   * now, as `LeaseRepository.claim` would lease it (docs/design.md §8).
   */
  async insert(upgrade: UpgradeRecord, lease?: NewLease): Promise<void> {
    try {
      await this.db
        .insertInto('upgrades')
        .values({
          ...pick(upgrade, UPGRADE_COLUMNS),
          policy: JSON.stringify(upgrade.policy),
          pauseReason: jsonOrNull(upgrade.pauseReason),
          endReason: jsonOrNull(upgrade.endReason),
          updatedAt: upgrade.createdAt,
          ...(lease ? { leaseOwner: lease.owner, leaseExpiresAt: this.scope.adapter.clockIso(lease.ttlMs) } : {}),
        })
        .execute();
    } catch (error) {
      if (this.scope.adapter.isUniqueViolation(error)) {
        throw new UpshiftError(
          ErrorCode.UPGRADE_IN_PROGRESS,
          'the cluster already has an active upgrade: finish or cancel it before starting another',
        );
      }
      throw error;
    }
  }

  async get(id: string): Promise<UpgradeRecord | undefined> {
    const row = await this.db.selectFrom('upgrades').select(UPGRADE_COLUMNS).where('id', '=', id).executeTakeFirst();
    return row ? toUpgrade(row) : undefined;
  }

  /** Upgrades newest first, at most `limit` (500). */
  async list(filter: { clusterId?: string | undefined; state?: string | undefined; limit?: number }): Promise<UpgradeRecord[]> {
    let query = this.db.selectFrom('upgrades').select(UPGRADE_COLUMNS);
    if (filter.clusterId) query = query.where('clusterId', '=', filter.clusterId);
    if (filter.state) query = query.where('state', '=', filter.state as UpgradeState);
    const rows = await query
      .orderBy('createdAt', 'desc')
      .orderBy('id', 'desc')
      .limit(filter.limit ?? 500)
      .execute();
    return rows.map(toUpgrade);
  }

  async listActive(): Promise<UpgradeRecord[]> {
    const rows = await this.db.selectFrom('upgrades').select(UPGRADE_COLUMNS).where('state', 'not in', FINISHED).execute();
    return rows.map(toUpgrade);
  }

  /** The cluster's active upgrade (not Completed or Canceled), if any. */
  async activeOf(clusterId: string): Promise<UpgradeRecord | undefined> {
    const row = await this.db
      .selectFrom('upgrades')
      .select(UPGRADE_COLUMNS)
      .where('clusterId', '=', clusterId)
      .where('state', 'not in', FINISHED)
      .executeTakeFirst();
    return row ? toUpgrade(row) : undefined;
  }

  /** Compare-and-set on the upgrade's state: applies `patch` only if the state is still `from`; false when it moved. */
  async casState(id: string, from: UpgradeState, patch: UpgradePatch): Promise<boolean> {
    const { pauseReason, endReason, ...fields } = setFields(patch, UPGRADE_PATCH_FIELDS);
    const result = await this.db
      .updateTable('upgrades')
      .set({
        ...fields,
        ...(pauseReason !== undefined ? { pauseReason: jsonOrNull(pauseReason) } : {}),
        ...(endReason !== undefined ? { endReason: jsonOrNull(endReason) } : {}),
        updatedAt: nowIso(),
      })
      .where('id', '=', id)
      .where('state', '=', from)
      .executeTakeFirst();
    return changed(result) === 1;
  }

  // Node tasks.

  /** Inserts an upgrade's node tasks; `sortKey` is the node's place in the upgrade's order. */
  async insertTasks(tasks: Array<NodeTaskRecord & { sortKey: number }>): Promise<void> {
    const rows = tasks.map((t) => ({ ...pick(t, TASK_COLUMNS), sortKey: t.sortKey }));
    for (const slice of slices(rows)) await this.db.insertInto('nodeTasks').values(slice).execute();
  }

  /**
   * An upgrade's tasks in its order (managers first, then natural order of names),
   * optionally in one state and only the first `limit`: the batch loop reads the few it
   * starts, never all 100,000 of a large upgrade.
   */
  async listTasks(upgradeId: string, state?: NodeTaskState, limit?: number): Promise<NodeTaskRecord[]> {
    let query = this.db.selectFrom('nodeTasks').select(TASK_COLUMNS).where('upgradeId', '=', upgradeId);
    if (state) query = query.where('state', '=', state);
    query = query.orderBy('sortKey');
    if (limit !== undefined) query = query.limit(limit);
    return query.execute();
  }

  /** The task of one node in an upgrade, by node id, else by node name (one row, not the upgrade's list). */
  async findTaskOfNode(upgradeId: string, nodeRef: string): Promise<NodeTaskRecord | undefined> {
    const byId = await this.db
      .selectFrom('nodeTasks')
      .select(TASK_COLUMNS)
      .where('upgradeId', '=', upgradeId)
      .where('nodeId', '=', nodeRef)
      .executeTakeFirst();
    return (
      byId ??
      this.db
        .selectFrom('nodeTasks')
        .select(TASK_COLUMNS)
        .where('upgradeId', '=', upgradeId)
        .where('nodeName', '=', nodeRef)
        .executeTakeFirst()
    );
  }

  /** A page of an upgrade's tasks in the upgrade's order, after position `after`. */
  async pageTasks(upgradeId: string, after: number | null, limit: number): Promise<KeysetPage<NodeTaskRecord, number>> {
    let query = this.db
      .selectFrom('nodeTasks')
      .select([...TASK_COLUMNS, 'sortKey'])
      .where('upgradeId', '=', upgradeId);
    if (after !== null) query = query.where('sortKey', '>', after);
    const rows = await query
      .orderBy('sortKey')
      .limit(limit + 1)
      .execute();
    return keysetPage(rows, limit, toTask, (r) => Number(r.sortKey));
  }

  /** How many of the upgrade's tasks are in each state (every state present). */
  async taskCounts(upgradeId: string): Promise<Record<NodeTaskState, number>> {
    return this.countTasks(this.db.selectFrom('nodeTasks').where('upgradeId', '=', upgradeId));
  }

  /** Task counts by state among the tasks of one batch. */
  async batchTaskCounts(upgradeId: string, batchIndex: number): Promise<Record<NodeTaskState, number>> {
    return this.countTasks(this.db.selectFrom('nodeTasks').where('upgradeId', '=', upgradeId).where('batchIndex', '=', batchIndex));
  }

  /**
   * The tasks' counts by state as one row of filtered counts, not a `group by`: SQLite
   * prepares a `group by` with a bound value again on every run (store/agents.ts), and
   * the batch loop counts at every step.
   */
  private async countTasks(tasks: SelectQueryBuilder<Database, 'nodeTasks', object>): Promise<Record<NodeTaskState, number>> {
    const row = (await tasks
      .select((eb) => NODE_TASK_STATES.map((state) => eb.fn.countAll().filterWhere('state', '=', state).as(state)))
      .executeTakeFirstOrThrow()) as Record<NodeTaskState, number | string | bigint>;
    return Object.fromEntries(NODE_TASK_STATES.map((state) => [state, Number(row[state])])) as Record<NodeTaskState, number>;
  }

  /** Compare-and-set on a task: applies `patch` only if it is in `from` at `attempt`. */
  async casTask(id: string, from: NodeTaskState, attempt: number, patch: TaskPatch): Promise<boolean> {
    const result = await this.db
      .updateTable('nodeTasks')
      .set(setFields(patch, TASK_PATCH_FIELDS))
      .where('id', '=', id)
      .where('state', '=', from)
      .where('attempt', '=', attempt)
      .executeTakeFirst();
    return changed(result) === 1;
  }

  /**
   * Compare-and-set on many tasks at once: applies `patch` to those of `ids` that are in
   * `from` at `attempt`, and returns the ids that moved (one statement per 500, RETURNING).
   */
  async casTasks(ids: readonly string[], from: NodeTaskState, attempt: number, patch: TaskPatch): Promise<Set<string>> {
    const moved = new Set<string>();
    const fields = setFields(patch, TASK_PATCH_FIELDS);
    for (const slice of slices(ids)) {
      const rows = await this.db
        .updateTable('nodeTasks')
        .set(fields)
        .where('id', 'in', slice)
        .where('state', '=', from)
        .where('attempt', '=', attempt)
        .returning('id')
        .execute();
      for (const row of rows) moved.add(row.id);
    }
    return moved;
  }

  /** Moves every task of the upgrade in `from` to `to`; returns how many moved. */
  async moveTasks(upgradeId: string, from: NodeTaskState, to: NodeTaskState, finishedAt: string | null): Promise<number> {
    const result = await this.db
      .updateTable('nodeTasks')
      .set({ state: to, ...(finishedAt ? { finishedAt } : {}) })
      .where('upgradeId', '=', upgradeId)
      .where('state', '=', from)
      .executeTakeFirst();
    return changed(result);
  }

  // Batches.

  async insertBatch(batch: BatchRecord): Promise<void> {
    const { index, nodeIds, ...rest } = batch;
    await this.db
      .insertInto('batches')
      .values({ ...pick(rest, ['upgradeId', 'size', 'state', 'startedAt', 'finishedAt']), idx: index, nodeIds: JSON.stringify(nodeIds) })
      .execute();
  }

  /** The upgrade's batches, first to last. */
  async listBatches(upgradeId: string): Promise<BatchRecord[]> {
    const rows = await this.db.selectFrom('batches').select(BATCH_COLUMNS).where('upgradeId', '=', upgradeId).execute();
    return byIndex(rows).map(toBatch);
  }

  /**
   * The upgrade's batches, first to last, without their node lists: what the batch loop
   * reads at every step (a batch of a 100,000-node upgrade lists 10,000 node ids).
   */
  async listBatchStates(upgradeId: string): Promise<BatchProgress[]> {
    const rows = await this.db
      .selectFrom('batches')
      .select(['upgradeId', 'idx', 'size', 'state', 'startedAt', 'finishedAt'])
      .where('upgradeId', '=', upgradeId)
      .execute();
    return byIndex(rows).map((row) => ({
      upgradeId: row.upgradeId,
      index: row.idx,
      size: row.size,
      state: row.state,
      startedAt: row.startedAt,
      finishedAt: row.finishedAt,
    }));
  }

  /**
   * When and how long the latest finished batches of `component` upgrades in a cluster
   * took (other upgrades than `exceptUpgradeId`), newest first: what an upgrade's ETA is
   * made from before its own first batch ends.
   */
  async pastBatchDurations(clusterId: string, component: Component, exceptUpgradeId: string, limit = 50): Promise<number[]> {
    const rows = await this.db
      .selectFrom('batches')
      .innerJoin('upgrades', 'upgrades.id', 'batches.upgradeId')
      .select(['batches.startedAt', 'batches.finishedAt'])
      .where('upgrades.clusterId', '=', clusterId)
      .where('upgrades.component', '=', component)
      .where('upgrades.id', '!=', exceptUpgradeId)
      .where('batches.state', '=', 'succeeded')
      .orderBy('batches.finishedAt', 'desc')
      .limit(limit)
      .execute();
    return rows.flatMap((r) => (r.finishedAt ? [Date.parse(r.finishedAt) - Date.parse(r.startedAt)] : []));
  }

  /** Closes a running batch (compare-and-set on `running`); false when it was closed already. */
  async finishBatch(upgradeId: string, index: number, state: BatchState, finishedAt: string): Promise<boolean> {
    const result = await this.db
      .updateTable('batches')
      .set({ state, finishedAt })
      .where('upgradeId', '=', upgradeId)
      .where('idx', '=', index)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return changed(result) === 1;
  }

  // Snapshots.

  async insertSnapshots(snapshots: SnapshotRecord[]): Promise<void> {
    const rows = snapshots.map((s) => pick(s, SNAPSHOT_COLUMNS));
    for (const slice of slices(rows)) await this.db.insertInto('snapshots').values(slice).execute();
  }

  /** The upgrade's snapshots by node name. */
  async listSnapshots(upgradeId: string): Promise<SnapshotRecord[]> {
    return this.db.selectFrom('snapshots').select(SNAPSHOT_COLUMNS).where('upgradeId', '=', upgradeId).orderBy('nodeName').execute();
  }

  /** The snapshots of some of an upgrade's nodes (one page of its node list). */
  async snapshotsOfNodes(upgradeId: string, nodeIds: readonly string[]): Promise<SnapshotRecord[]> {
    const out: SnapshotRecord[] = [];
    for (const slice of slices(nodeIds)) {
      out.push(
        ...(await this.db
          .selectFrom('snapshots')
          .select(SNAPSHOT_COLUMNS)
          .where('upgradeId', '=', upgradeId)
          .where('nodeId', 'in', slice)
          .execute()),
      );
    }
    return out;
  }

  /** Compare-and-set on a snapshot's state: applies `patch` only if it is still `from`. */
  async casSnapshot(id: string, from: SnapshotState, patch: SnapshotPatch): Promise<boolean> {
    const result = await this.db
      .updateTable('snapshots')
      .set(setFields(patch, SNAPSHOT_PATCH_FIELDS))
      .where('id', '=', id)
      .where('state', '=', from)
      .executeTakeFirst();
    return changed(result) === 1;
  }
}
