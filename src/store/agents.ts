import type { Selectable } from 'kysely';
import type { TaskResultRequest } from '../domain/agent-protocol.js';
import type { ComponentVersions } from '../domain/components.js';
import type { AgentTaskRecord, JoinTokenRecord, JoinTokenState, NodeRecord } from '../domain/model.js';
import type { AgentTaskRequest } from '../domain/ports.js';
import { NODE_COLUMNS, toNode } from './nodes.js';
import { changed, jsonOrNull, nowIso, parseJson } from './rows.js';
import type { AgentTasksTable } from './schema.js';
import type { Scope } from './scope.js';

const AGENT_TASK_COLUMNS = [
  'taskKey',
  'nodeId',
  'upgradeId',
  'nodeTaskId',
  'recipe',
  'params',
  'state',
  'result',
  'createdAt',
  'deliveredAt',
  'finishedAt',
] as const;

function toAgentTask(row: Pick<Selectable<AgentTasksTable>, (typeof AGENT_TASK_COLUMNS)[number]>): AgentTaskRecord {
  return {
    taskKey: row.taskKey,
    nodeId: row.nodeId,
    upgradeId: row.upgradeId,
    nodeTaskId: row.nodeTaskId,
    recipe: row.recipe,
    params: JSON.parse(row.params) as AgentTaskRecord['params'],
    state: row.state,
    result: parseJson<TaskResultRequest | null>(row.result, null),
    createdAt: row.createdAt,
    deliveredAt: row.deliveredAt,
    finishedAt: row.finishedAt,
  };
}

/** States of an agent task that has no result yet. */
const OPEN: AgentTaskRecord['state'][] = ['queued', 'delivered'];

/**
 * What the server knows of node agents: join tokens (hashes), each node's one credential
 * (hash), heartbeats (facts, last seen) and the tasks queued for agents under idempotent
 * keys with their results.
 */
export class AgentRepository {
  constructor(private readonly scope: Scope) {}

  private get db() {
    return this.scope.db;
  }

  // Join tokens.

  async insertJoinToken(token: { tokenHash: string; clusterId: string; expiresAt: string | null; singleUse: boolean }): Promise<void> {
    await this.db
      .insertInto('joinTokens')
      .values({
        tokenHash: token.tokenHash,
        clusterId: token.clusterId,
        createdAt: nowIso(),
        expiresAt: token.expiresAt,
        revokedAt: null,
        singleUse: token.singleUse ? 1 : 0,
        usedAt: null,
        usedByNode: null,
      })
      .execute();
  }

  /** A join token by its hash and whether it still admits a join at `now`; undefined when unknown. */
  async findJoinToken(tokenHash: string, now: string): Promise<JoinTokenRecord | undefined> {
    const row = await this.db
      .selectFrom('joinTokens')
      .select(['clusterId', 'expiresAt', 'revokedAt', 'singleUse', 'usedAt'])
      .where('tokenHash', '=', tokenHash)
      .executeTakeFirst();
    if (!row) return undefined;
    const singleUse = Number(row.singleUse) === 1;
    const state: JoinTokenState =
      row.revokedAt !== null
        ? 'revoked'
        : singleUse && row.usedAt !== null
          ? 'used'
          : row.expiresAt !== null && row.expiresAt <= now
            ? 'expired'
            : 'valid';
    return { clusterId: row.clusterId, expiresAt: row.expiresAt, singleUse, state };
  }

  /**
   * Spends a single-use join token: a compare-and-set on its use that also re-checks
   * expiry and revocation, so that of two joins racing with one token exactly one wins.
   * Run it in the join's transaction, which then rolls back with it if the join fails.
   */
  async consumeJoinToken(tokenHash: string, now: string, nodeId: string): Promise<boolean> {
    const result = await this.db
      .updateTable('joinTokens')
      .set({ usedAt: now, usedByNode: nodeId })
      .where('tokenHash', '=', tokenHash)
      .where('singleUse', '=', 1)
      .where('usedAt', 'is', null)
      .where('revokedAt', 'is', null)
      .where((eb) => eb.or([eb('expiresAt', 'is', null), eb('expiresAt', '>', now)]))
      .executeTakeFirst();
    return changed(result) === 1;
  }

  /** Revokes every join token of the cluster still in force; returns how many. */
  async revokeJoinTokens(clusterId: string): Promise<number> {
    const result = await this.db
      .updateTable('joinTokens')
      .set({ revokedAt: nowIso() })
      .where('clusterId', '=', clusterId)
      .where('revokedAt', 'is', null)
      .executeTakeFirst();
    return changed(result);
  }

  // Credentials.

  /** Whether the node's agent holds a credential: a join under its name is then refused. */
  async nodeHasCredential(nodeId: string): Promise<boolean> {
    const row = await this.db.selectFrom('agentCredentials').select('nodeId').where('nodeId', '=', nodeId).executeTakeFirst();
    return row !== undefined;
  }

  /** Revokes every credential of the node at once; returns how many there were. */
  async revokeCredentials(nodeId: string): Promise<number> {
    return changed(await this.db.deleteFrom('agentCredentials').where('nodeId', '=', nodeId).executeTakeFirst());
  }

  /** Sets the node's one credential (the node held none: first join, or a join after a reset). */
  async setCredential(nodeId: string, tokenHash: string): Promise<void> {
    await this.db.deleteFrom('agentCredentials').where('nodeId', '=', nodeId).execute();
    await this.db.insertInto('agentCredentials').values({ tokenHash, nodeId, createdAt: nowIso() }).execute();
  }

  /** The node a credential (by its hash) belongs to, if any. */
  async nodeOfCredential(tokenHash: string): Promise<NodeRecord | undefined> {
    const row = await this.db
      .selectFrom('agentCredentials')
      .innerJoin('nodes', 'nodes.id', 'agentCredentials.nodeId')
      .select(NODE_COLUMNS.map((c) => `nodes.${c}` as const))
      .where('agentCredentials.tokenHash', '=', tokenHash)
      .executeTakeFirst();
    return row ? toNode(row) : undefined;
  }

  // Heartbeats.

  /**
   * What an agent reported: the node is Ready, with these facts, versions and distribution
   * (null when the agent reports none: an older agent), seen at `at`.
   */
  async recordHeartbeat(
    nodeId: string,
    facts: unknown,
    versions: ComponentVersions,
    at: string,
    distribution: string | null,
  ): Promise<void> {
    await this.db
      .updateTable('nodes')
      .set({
        facts: JSON.stringify(facts),
        versions: JSON.stringify(versions),
        distribution,
        status: 'Ready',
        lastSeenAt: at,
        updatedAt: at,
      })
      .where('id', '=', nodeId)
      .execute();
  }

  /**
   * Per cluster: how many of its nodes' agents have been heard from since `since`, and
   * when the least recently heard one was last heard from (for alerting on silent agents).
   */
  async heartbeatSummary(since: string): Promise<Array<{ clusterId: string; connected: number; oldestLastSeenAt: string | null }>> {
    const rows = await this.db
      .selectFrom('nodes')
      .select((eb) => [
        'clusterId',
        eb.fn.countAll<number>().filterWhere('lastSeenAt', '>=', since).as('connected'),
        eb.fn.min<string | null>('lastSeenAt').as('oldestLastSeenAt'),
      ])
      .where('lastSeenAt', 'is not', null)
      .groupBy('clusterId')
      .execute();
    return rows.map((r) => ({ clusterId: r.clusterId, connected: Number(r.connected), oldestLastSeenAt: r.oldestLastSeenAt }));
  }

  /** When the node's agent was last heard from (join or heartbeat), if ever. */
  async lastSeen(nodeId: string): Promise<string | null> {
    const row = await this.db.selectFrom('nodes').select('lastSeenAt').where('id', '=', nodeId).executeTakeFirst();
    return row?.lastSeenAt ?? null;
  }

  /** Marks nodes Down whose agent has not been heard from since `before`; returns them. */
  async markSilentNodesDown(before: string): Promise<NodeRecord[]> {
    const rows = await this.db
      .selectFrom('nodes')
      .select(NODE_COLUMNS)
      .where('lastSeenAt', '<', before)
      .where('status', '!=', 'Down')
      .execute();
    if (rows.length > 0) {
      await this.db
        .updateTable('nodes')
        .set({ status: 'Down', updatedAt: nowIso() })
        .where(
          'id',
          'in',
          rows.map((r) => r.id),
        )
        .execute();
    }
    return rows.map(toNode);
  }

  // Agent tasks.

  /** Queues an agent task unless one with the same key exists (idempotent). */
  async ensureTask(task: AgentTaskRequest): Promise<void> {
    const existing = await this.db.selectFrom('agentTasks').select('taskKey').where('taskKey', '=', task.taskKey).executeTakeFirst();
    if (existing) return;
    try {
      await this.db
        .insertInto('agentTasks')
        .values({
          taskKey: task.taskKey,
          nodeId: task.nodeId,
          upgradeId: task.upgradeId,
          nodeTaskId: task.nodeTaskId,
          recipe: task.recipe,
          params: JSON.stringify(task.params),
          state: 'queued',
          result: null,
          createdAt: nowIso(),
          deliveredAt: null,
          finishedAt: null,
        })
        .execute();
    } catch (error) {
      if (!this.scope.adapter.isUniqueViolation(error)) throw error;
    }
  }

  async getTask(taskKey: string): Promise<AgentTaskRecord | undefined> {
    const row = await this.db.selectFrom('agentTasks').select(AGENT_TASK_COLUMNS).where('taskKey', '=', taskKey).executeTakeFirst();
    return row ? toAgentTask(row) : undefined;
  }

  /** Tasks of a node that have no result yet, oldest first; marks the queued ones delivered. */
  async deliverOpenTasks(nodeId: string): Promise<AgentTaskRecord[]> {
    const rows = await this.db
      .selectFrom('agentTasks')
      .select(AGENT_TASK_COLUMNS)
      .where('nodeId', '=', nodeId)
      .where('state', 'in', OPEN)
      .orderBy('createdAt')
      .execute();
    const queued = rows.filter((r) => r.state === 'queued').map((r) => r.taskKey);
    if (queued.length > 0) {
      await this.db.updateTable('agentTasks').set({ state: 'delivered', deliveredAt: nowIso() }).where('taskKey', 'in', queued).execute();
    }
    return rows.map(toAgentTask);
  }

  /** The node's tasks without a result (queued or delivered), without marking them delivered. */
  async unfinishedTasks(nodeId: string): Promise<Array<Pick<AgentTaskRecord, 'taskKey' | 'upgradeId' | 'nodeTaskId'>>> {
    return this.db
      .selectFrom('agentTasks')
      .select(['taskKey', 'upgradeId', 'nodeTaskId'])
      .where('nodeId', '=', nodeId)
      .where('state', 'in', OPEN)
      .orderBy('createdAt')
      .execute();
  }

  /** Records an agent task's result once; returns false when it already had one. */
  async finishTask(taskKey: string, nodeId: string, state: 'succeeded' | 'failed', result: TaskResultRequest): Promise<boolean> {
    const outcome = await this.db
      .updateTable('agentTasks')
      .set({ state, result: jsonOrNull(result), finishedAt: nowIso() })
      .where('taskKey', '=', taskKey)
      .where('nodeId', '=', nodeId)
      .where('state', 'in', OPEN)
      .executeTakeFirst();
    return changed(outcome) === 1;
  }
}
