import { type RawBuilder, type Selectable, sql } from 'kysely';
import type { TaskResultRequest } from '../domain/agent-protocol.js';
import type { ComponentVersions } from '../domain/components.js';
import type { AgentTaskRecord, JoinTokenRecord, JoinTokenState, NodeRecord } from '../domain/model.js';
import type { AgentTaskRequest } from '../domain/ports.js';
import { NODE_COLUMNS, toNode } from './nodes.js';
import { changed, jsonOrNull, nowIso, parseJson, slices } from './rows.js';
import { PreparedQuery } from './prepared.js';
import type { AgentTasksTable } from './schema.js';
import type { Db, Scope } from './scope.js';

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

/** The PostgreSQL NOTIFY channel on which replicas announce agent tasks queued and finished. */
const AGENT_TASKS_CHANNEL = 'upshift_agent_tasks';

/** Node ids or task keys per notification: well under PostgreSQL's 8,000-byte payload. */
const IDS_PER_NOTIFICATION = 150;

/** What one replica tells the others about agent tasks: whose tasks were queued, which finished. */
export interface AgentTaskNews {
  queued: string[];
  finished: string[];
}

/** States of an agent task that has no result yet. */
const OPEN: AgentTaskRecord['state'][] = ['queued', 'delivered'];

/*
 * The statements every agent request runs, prepared once (prepared.ts): who a credential
 * is, a node's open tasks, one task, marking one delivered, one result, a heartbeat's facts.
 *
 * Neither the credential's lookup nor the open tasks' is written as a join or with an
 * `order by`: SQLite (3.54, as better-sqlite3 builds it) prepares a statement of either
 * shape again on every run when its `where` has a bound value. Measured on this schema:
 * 24 µs instead of 7 µs for the lookup, 44 µs instead of 7 µs for the open tasks. So the
 * lookup reads the credential in two scalar subqueries, and the open tasks are put in
 * order here (`oldestFirst`).
 */
const nodeOfCredential = new PreparedQuery<[string], unknown>(1, (db, tokenHash) =>
  db
    .selectFrom('nodes')
    .select([
      ...NODE_COLUMNS.map((c) => `nodes.${c}` as const),
      (eb) => eb.selectFrom('agentCredentials').select('usedAt').where('tokenHash', '=', tokenHash).as('credentialUsedAt'),
    ])
    .where('nodes.id', '=', (eb) => eb.selectFrom('agentCredentials').select('nodeId').where('tokenHash', '=', tokenHash)),
);
const openTasksOfNode = new PreparedQuery<[string], unknown>(1, (db, nodeId) =>
  db.selectFrom('agentTasks').select(AGENT_TASK_COLUMNS).where('nodeId', '=', nodeId).where('state', 'in', OPEN),
);
const taskByKey = new PreparedQuery<[string], unknown>(1, (db, taskKey) =>
  db.selectFrom('agentTasks').select(AGENT_TASK_COLUMNS).where('taskKey', '=', taskKey),
);
const finishOpenTask = new PreparedQuery<[string, string, string, string | null, string], unknown>(
  5,
  (db, taskKey, nodeId, state, result, at) =>
    db
      .updateTable('agentTasks')
      .set({ state: state as 'succeeded', result, finishedAt: at })
      .where('taskKey', '=', taskKey)
      .where('nodeId', '=', nodeId)
      .where('state', 'in', OPEN),
);

const markTaskDelivered = new PreparedQuery<[string, string], unknown>(2, (db, taskKey, at) =>
  db.updateTable('agentTasks').set({ state: 'delivered', deliveredAt: at }).where('taskKey', '=', taskKey),
);
const recordNodeHeartbeat = new PreparedQuery<[string, string, string, string | null, string], unknown>(
  5,
  (db, nodeId, facts, versions, distribution, at) =>
    db.updateTable('nodes').set({ facts, versions, distribution, status: 'Ready', lastSeenAt: at, updatedAt: at }).where('id', '=', nodeId),
);
/**
 * Sets each node's heard time from `seen`, a table of `(id, at)`, unless a later one is
 * stored (another replica may have written it). The pairs go as values, not as SQL: one
 * statement compiled once, where a `case` with a branch per node was built and compiled
 * anew for every flush (on SQLite 5-9 ms for 200 nodes against 0.7 ms).
 */
const setSeenTimes = (db: Db, seen: RawBuilder<{ id: string; at: string }>) =>
  db
    .updateTable('nodes')
    .from(seen.as('seen'))
    .set({ lastSeenAt: sql<string>`seen.at` })
    .whereRef('nodes.id', '=', sql<string>`seen.id`)
    .where((eb) => eb.or([eb('nodes.lastSeenAt', 'is', null), eb('nodes.lastSeenAt', '<', sql<string>`seen.at`)]));
/** SQLite: the pairs as one JSON array of `[nodeId, at]` (`json_each`). */
const recordSeenJson = new PreparedQuery<[string], unknown>(1, (db, pairs) =>
  setSeenTimes(db, sql`(select json_extract(value, '$[0]') as id, json_extract(value, '$[1]') as at from json_each(${pairs}))`),
);
/** PostgreSQL: the ids and the times as two arrays (`unnest`). */
const recordSeenArrays = new PreparedQuery<[string[], string[]], unknown>(2, (db, ids, ats) =>
  setSeenTimes(db, sql`(select * from unnest(cast(${ids} as text[]), cast(${ats} as text[])) as pairs(id, at))`),
);

/** Agent tasks oldest first, ties by key (plain string order: both are ASCII, as SQLite's binary order). */
function oldestFirst<T extends { createdAt: string; taskKey: string }>(rows: T[]): T[] {
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return rows.sort((a, b) => order(a.createdAt, b.createdAt) || order(a.taskKey, b.taskKey));
}

type NodeRow = Parameters<typeof toNode>[0];

/** What a join needs to know of the credential a node holds (docs/design.md §9). */
export interface HeldCredential {
  /** sha256 of the join secret the agent joined with; null when it sent none. */
  joinSecretHash: string | null;
  /** The credential's first authenticated request; null: never used. */
  usedAt: string | null;
}
type AgentTaskRow = Parameters<typeof toAgentTask>[0];

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
      .select(['clusterId', 'expiresAt', 'revokedAt', 'singleUse', 'usedAt', 'usedByNode'])
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
    return { clusterId: row.clusterId, expiresAt: row.expiresAt, singleUse, state, usedByNode: row.usedByNode };
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

  /** The credential the node's agent holds, if any: a join under its name is then refused, or retried (§9). */
  async heldCredential(nodeId: string): Promise<HeldCredential | undefined> {
    return this.db.selectFrom('agentCredentials').select(['joinSecretHash', 'usedAt']).where('nodeId', '=', nodeId).executeTakeFirst();
  }

  /** Revokes every credential of the node at once; returns how many there were. */
  async revokeCredentials(nodeId: string): Promise<number> {
    return changed(await this.db.deleteFrom('agentCredentials').where('nodeId', '=', nodeId).executeTakeFirst());
  }

  /**
   * Sets the node's one credential (the node held none: first join, or a join after a
   * reset), with the hash of the join secret it was joined with, if the agent sent one.
   */
  async setCredential(nodeId: string, tokenHash: string, joinSecretHash: string | null = null): Promise<void> {
    await this.db.deleteFrom('agentCredentials').where('nodeId', '=', nodeId).execute();
    await this.insertCredential(nodeId, tokenHash, joinSecretHash);
  }

  /**
   * Replaces the node's credential with a new one, only if the one it holds was joined
   * with this join secret and has never been used: a compare-and-set, so that a first use
   * of the old credential and its replacement never both win (docs/design.md §9). False
   * when nothing was replaced.
   */
  async replaceUnusedCredential(nodeId: string, joinSecretHash: string, tokenHash: string): Promise<boolean> {
    const removed = await this.db
      .deleteFrom('agentCredentials')
      .where('nodeId', '=', nodeId)
      .where('joinSecretHash', '=', joinSecretHash)
      .where('usedAt', 'is', null)
      .executeTakeFirst();
    if (changed(removed) !== 1) return false;
    await this.insertCredential(nodeId, tokenHash, joinSecretHash);
    return true;
  }

  private async insertCredential(nodeId: string, tokenHash: string, joinSecretHash: string | null): Promise<void> {
    await this.db.insertInto('agentCredentials').values({ tokenHash, nodeId, createdAt: nowIso(), joinSecretHash, usedAt: null }).execute();
  }

  /**
   * The node a credential (by its hash) belongs to, if any, and whether this is the
   * credential's first use (no authenticated request marked it used yet).
   */
  async nodeOfCredential(tokenHash: string): Promise<{ node: NodeRecord; firstUse: boolean } | undefined> {
    const row = (await nodeOfCredential.execute(this.scope, tokenHash)).rows[0] as
      (NodeRow & { credentialUsedAt: string | null }) | undefined;
    return row ? { node: toNode(row), firstUse: row.credentialUsedAt === null } : undefined;
  }

  /**
   * Marks a credential used (its first authenticated request): from then on no join
   * replaces it. False when the credential is gone (a retried join or a reset replaced
   * it meanwhile).
   */
  async markCredentialUsed(tokenHash: string, at: string): Promise<boolean> {
    const result = await this.db
      .updateTable('agentCredentials')
      .set((eb) => ({ usedAt: eb.fn.coalesce('usedAt', eb.val(at)) }))
      .where('tokenHash', '=', tokenHash)
      .executeTakeFirst();
    return changed(result) === 1;
  }

  // Heartbeats.

  /**
   * What an agent reported that changed: the node is Ready, with these facts, versions
   * and distribution (null when the agent reports none: an older agent), seen at `at`.
   * A heartbeat that changes nothing is not written here: its time goes to
   * `recordLastSeen` with the others of its interval.
   */
  async recordHeartbeat(
    nodeId: string,
    facts: unknown,
    versions: ComponentVersions,
    at: string,
    distribution: string | null,
  ): Promise<void> {
    await recordNodeHeartbeat.execute(this.scope, nodeId, JSON.stringify(facts), JSON.stringify(versions), distribution, at);
  }

  /** The node's agent was heard from at `at` (a task poll) after the node was Down: it is Ready again. */
  async markReady(nodeId: string, at: string): Promise<void> {
    await this.db.updateTable('nodes').set({ status: 'Ready', lastSeenAt: at, updatedAt: at }).where('id', '=', nodeId).execute();
  }

  /**
   * When many nodes' agents were last heard from, in one statement per 1,000 nodes. A
   * time never moves back: another replica may have written a later one meanwhile.
   */
  async recordLastSeen(seen: ReadonlyArray<{ nodeId: string; at: string }>): Promise<void> {
    for (const slice of slices(seen, 1000)) {
      if (this.scope.adapter.statementsInProcess) {
        await recordSeenJson.execute(this.scope, JSON.stringify(slice.map((s) => [s.nodeId, s.at])));
      } else {
        await recordSeenArrays.execute(
          this.scope,
          slice.map((s) => s.nodeId),
          slice.map((s) => s.at),
        );
      }
    }
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

  /** Queues agent tasks, each unless one with the same key exists (idempotent), in one statement per slice. */
  async ensureTasks(tasks: readonly AgentTaskRequest[]): Promise<void> {
    const createdAt = nowIso();
    for (const slice of slices(tasks)) {
      await this.db
        .insertInto('agentTasks')
        .values(
          slice.map((task) => ({
            taskKey: task.taskKey,
            nodeId: task.nodeId,
            upgradeId: task.upgradeId,
            nodeTaskId: task.nodeTaskId,
            recipe: task.recipe,
            params: JSON.stringify(task.params),
            state: 'queued' as const,
            result: null,
            createdAt,
            deliveredAt: null,
            finishedAt: null,
          })),
        )
        .onConflict((oc) => oc.column('taskKey').doNothing())
        .execute();
    }
  }

  async getTask(taskKey: string): Promise<AgentTaskRecord | undefined> {
    const row = (await taskByKey.execute(this.scope, taskKey)).rows[0] as AgentTaskRow | undefined;
    return row ? toAgentTask(row) : undefined;
  }

  /** Agent tasks by key; the keys that are not there are missing from the answer. */
  async getTasks(taskKeys: readonly string[]): Promise<AgentTaskRecord[]> {
    const out: AgentTaskRecord[] = [];
    for (const slice of slices(taskKeys)) {
      const rows =
        slice.length === 1
          ? ((await taskByKey.execute(this.scope, slice[0] as string)).rows as AgentTaskRow[])
          : await this.db.selectFrom('agentTasks').select(AGENT_TASK_COLUMNS).where('taskKey', 'in', slice).execute();
      for (const row of rows) out.push(toAgentTask(row));
    }
    return out;
  }

  /** The nodes that have a task without a result (queued or delivered). */
  async nodesWithOpenTasks(): Promise<string[]> {
    const rows = await this.db.selectFrom('agentTasks').select('nodeId').distinct().where('state', 'in', OPEN).execute();
    return rows.map((r) => r.nodeId);
  }

  /**
   * Tasks of these nodes that have no result yet, oldest first; marks the queued ones
   * delivered. One select and at most one update per slice of nodes, however many.
   */
  async deliverOpenTasks(nodeIds: readonly string[]): Promise<AgentTaskRecord[]> {
    const out: AgentTaskRecord[] = [];
    for (const slice of slices(nodeIds)) {
      const rows = oldestFirst(
        slice.length === 1
          ? ((await openTasksOfNode.execute(this.scope, slice[0] as string)).rows as AgentTaskRow[])
          : await this.db
              .selectFrom('agentTasks')
              .select(AGENT_TASK_COLUMNS)
              .where('nodeId', 'in', slice)
              .where('state', 'in', OPEN)
              .execute(),
      );
      const queued = rows.filter((r) => r.state === 'queued').map((r) => r.taskKey);
      const deliveredAt = nowIso();
      if (queued.length === 1) await markTaskDelivered.execute(this.scope, queued[0] as string, deliveredAt);
      else if (queued.length > 1)
        await this.db.updateTable('agentTasks').set({ state: 'delivered', deliveredAt }).where('taskKey', 'in', queued).execute();
      for (const row of rows) out.push(toAgentTask(row.state === 'queued' ? { ...row, state: 'delivered', deliveredAt } : row));
    }
    return out;
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
    const outcome = await finishOpenTask.execute(this.scope, taskKey, nodeId, state, jsonOrNull(result), nowIso());
    return Number(outcome.numAffectedRows ?? 0n) === 1;
  }

  /**
   * Records the results of many agent tasks, each once (a compare-and-set on its open
   * state and its node, as `finishTask`); says of each whether its result was recorded.
   * Run it in one transaction: a group of agents' results costs one commit.
   */
  async finishTasks(
    results: ReadonlyArray<{ taskKey: string; nodeId: string; state: 'succeeded' | 'failed'; result: TaskResultRequest }>,
  ): Promise<boolean[]> {
    const won: boolean[] = [];
    for (const r of results) won.push(await this.finishTask(r.taskKey, r.nodeId, r.state, r.result));
    return won;
  }

  // Other replicas.

  /**
   * Tells the other replicas (PostgreSQL NOTIFY, delivered when the transaction commits,
   * or at once outside one) that these nodes have tasks queued and these tasks finished,
   * so that the long polls and waiters they hold wake without polling the database.
   * Nothing on SQLite, which has one server.
   */
  async announce(news: AgentTaskNews): Promise<void> {
    if (!this.scope.adapter.listen) return;
    const size = IDS_PER_NOTIFICATION;
    for (let i = 0; i < Math.max(news.queued.length, news.finished.length); i += size) {
      const payload = JSON.stringify({
        origin: this.scope.origin,
        queued: news.queued.slice(i, i + size),
        finished: news.finished.slice(i, i + size),
      });
      await sql`select pg_notify(${AGENT_TASKS_CHANNEL}, ${payload})`.execute(this.db);
    }
  }

  /** Receives what the other replicas announce (see `announce`); returns a stopper. */
  listenToReplicas(onNews: (news: AgentTaskNews) => void, onError: (error: unknown) => void): () => Promise<void> {
    const { adapter, origin } = this.scope;
    if (!adapter.listen) return async () => undefined;
    return adapter.listen(
      AGENT_TASKS_CHANNEL,
      (payload) => {
        let message: { origin?: unknown; queued?: unknown; finished?: unknown };
        try {
          message = JSON.parse(payload) as typeof message;
        } catch {
          return;
        }
        if (message.origin === origin) return;
        const strings = (xs: unknown) => (Array.isArray(xs) ? xs.filter((x): x is string => typeof x === 'string') : []);
        onNews({ queued: strings(message.queued), finished: strings(message.finished) });
      },
      onError,
    );
  }
}
