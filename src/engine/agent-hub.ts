import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AgentFacts, AgentTask, JoinRequest, JoinResponse, TaskArtifact, TaskResultRequest } from '../domain/agent-protocol.js';
import type { Catalog } from '../domain/catalog.js';
import { findCatalogVersion } from '../domain/catalog.js';
import type { Component, ComponentVersions } from '../domain/components.js';
import { isComponent, kindHasAgents } from '../domain/components.js';
import { ErrorCode, UpshiftError, invalid, notFound } from '../domain/errors.js';
import { EventType } from '../domain/events.js';
import { newId } from '../domain/ids.js';
import type { ClusterRecord, JoinTokenState, NodeRecord } from '../domain/model.js';
import type { AgentPort, AgentTaskRequest, Clock } from '../domain/ports.js';
import { type TextShape, stripControls } from '../domain/text.js';
import { isValidVersion, releaseOf } from '../domain/versions.js';
import type { Store } from '../store/store.js';
import { validateName } from './fleet.js';
import type { Logger } from './types.js';
import { silentLogger } from './types.js';

/** Text an agent sent, as the server keeps it: no control characters (domain/text.ts), at most `max` characters. */
function agentText(value: string, max: number, shape: TextShape = {}): string {
  return stripControls(value.slice(0, max), shape);
}

export const hashSecret = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

export interface AgentHubOptions {
  store: Store;
  clock: Clock;
  logger?: Logger;
  heartbeatSeconds?: number;
  /** A task the agent has not finished after this long fails, even if the agent still heartbeats. */
  taskTimeoutMs?: number;
  /** sha256 of the agent bundle this server serves, for self-upgrades. */
  bundleSha256?: () => string | undefined;
  /** Lifetime of a join token created without an explicit one (the server's `--join-token-ttl`). Default 24 h. */
  joinTokenTtlSeconds?: number;
}

/** A new join token, shown once: only its hash is stored. */
export interface CreatedJoinToken {
  joinToken: string;
  expiresAt: string;
  singleUse: boolean;
}

/** What `resetNode` did, for the API's answer. */
export interface NodeReset {
  node: NodeRecord;
  clusterName: string;
  /** How many credentials were revoked (0: the node's agent had not joined, or it was reset already). */
  revokedCredentials: number;
  /** Task keys of the node's unfinished agent tasks, failed by the reset. */
  failedTasks: string[];
}

/** At most one `agent.join_refused` event per node and client address in this window; the rest are counted. */
const JOIN_REFUSAL_EVENT_WINDOW_MS = 60_000;
const JOIN_REFUSAL_KEYS_MAX = 10_000;

/**
 * The server's side of the agent protocol: join tokens, node credentials, heartbeats,
 * task delivery and results. It is also the `AgentPort` the hosts and swarm drivers use
 * to run a recipe on a node. Everything is in the database; the in-process emitter only
 * wakes long polls and waiters early (other replicas are found by polling).
 */
export class AgentHub implements AgentPort {
  private readonly store: Store;
  private readonly signals = new EventEmitter().setMaxListeners(0);
  private readonly log: Logger;
  readonly heartbeatSeconds: number;
  private readonly taskTimeoutMs: number;
  /** A node whose agent missed three heartbeats is unreachable: its open task fails. */
  readonly unreachableAfterMs: number;

  constructor(private readonly options: AgentHubOptions) {
    this.store = options.store;
    this.log = options.logger ?? silentLogger;
    this.heartbeatSeconds = options.heartbeatSeconds ?? 10;
    this.taskTimeoutMs = options.taskTimeoutMs ?? 30 * 60_000;
    this.unreachableAfterMs = 3 * this.heartbeatSeconds * 1000;
  }

  private nowIso(): string {
    return new Date(this.options.clock.now()).toISOString();
  }

  /** sha256 of the agent file new nodes install (`/install/upshift-agent.js`), when it is built. */
  agentBundleSha256(): string | undefined {
    return this.options.bundleSha256?.();
  }

  private async clusterWithAgents(clusterId: string): Promise<ClusterRecord> {
    const cluster = await this.store.clusters.get(clusterId);
    if (!cluster) throw new UpshiftError(ErrorCode.NOT_FOUND, `cluster ${clusterId} does not exist`);
    if (!kindHasAgents(cluster.kind) || cluster.kind === 'simulated') {
      throw new UpshiftError(ErrorCode.NOT_SUPPORTED, `nodes of a ${cluster.kind} cluster do not join with agents`);
    }
    return cluster;
  }

  /**
   * A new join token for a cluster with agents; only its hash is stored. Every token
   * expires: after `ttlSeconds`, else after the server's default lifetime, so that a
   * token left on a host or in a shell history stops admitting joins. A single-use token
   * admits exactly one join.
   */
  async createJoinToken(clusterId: string, options: { ttlSeconds?: number; singleUse?: boolean } = {}): Promise<CreatedJoinToken> {
    const cluster = await this.clusterWithAgents(clusterId);
    const ttlSeconds = options.ttlSeconds ?? this.options.joinTokenTtlSeconds ?? 86_400;
    const joinToken = `upj_${randomBytes(24).toString('base64url')}`;
    const expiresAt = new Date(this.options.clock.now() + ttlSeconds * 1000).toISOString();
    const singleUse = options.singleUse === true;
    await this.store.agents.insertJoinToken({ tokenHash: hashSecret(joinToken), clusterId: cluster.id, expiresAt, singleUse });
    return { joinToken, expiresAt, singleUse };
  }

  /**
   * What an agent reports about its host, as the server keeps it: known keys only,
   * versions that are valid version strings, and text without control characters (it
   * reaches events, the API and operators' terminals; see domain/text.ts).
   */
  private static checkFacts(raw: unknown): AgentFacts {
    if (typeof raw !== 'object' || raw === null) throw invalid('facts must be an object');
    const facts = raw as Record<string, unknown>;
    const versions: ComponentVersions = {};
    const reported = facts['versions'];
    if (typeof reported === 'object' && reported !== null) {
      for (const [key, value] of Object.entries(reported)) {
        if (!isComponent(key)) continue;
        if (typeof value !== 'string' || !isValidVersion(value)) throw invalid(`facts.versions.${key} is not a valid version`);
        versions[key] = value;
      }
    }
    const text = (key: string, max: number) => (typeof facts[key] === 'string' ? agentText(facts[key] as string, max) : '');
    return {
      hostname: text('hostname', 200),
      os: text('os', 200),
      arch: text('arch', 200),
      agentVersion: text('agentVersion', 200),
      versions,
      engineReachable: facts['engineReachable'] === true,
      ...(typeof facts['engineError'] === 'string' ? { engineError: text('engineError', 500) } : {}),
    };
  }

  /**
   * Exchanges a join token for a node credential. A join creates a node, or claims an
   * existing node that holds no credential (one a Swarm inventory sync made, or
   * one an admin reset). It never replaces a credential: a join naming a node whose agent
   * holds one is refused with NODE_NAME_TAKEN and recorded with the client's address, so
   * that a host holding a join token cannot impersonate another node of its cluster. New
   * nodes are refused while the cluster is being upgraded (its membership is locked).
   */
  async join(request: JoinRequest, from: { address: string }): Promise<JoinResponse> {
    if (typeof request.joinToken !== 'string' || request.joinToken.length < 8) {
      throw new UpshiftError(ErrorCode.UNAUTHENTICATED, 'a join token is required', { details: { reason: 'missing' } });
    }
    const tokenHash = hashSecret(request.joinToken);
    const token = await this.store.agents.findJoinToken(tokenHash, this.nowIso());
    const cluster = token ? await this.store.clusters.get(token.clusterId) : undefined;
    if (!token || !cluster) {
      throw new UpshiftError(
        ErrorCode.UNAUTHENTICATED,
        'the join token is unknown to this server: ask an administrator for a new one (upshift cluster join-token CLUSTER)',
        { details: { reason: 'unknown' } },
      );
    }
    if (token.state !== 'valid') throw AgentHub.tokenRefusal(token.state, cluster.name, token.expiresAt);
    const name = validateName('node', request.name);
    const facts = AgentHub.checkFacts(request.facts);
    const credential = `upa_${randomBytes(32).toString('base64url')}`;
    const now = this.nowIso();
    const versions = { ...facts.versions, ...(isValidVersion(facts.agentVersion) ? { agent: facts.agentVersion } : {}) };
    const outcome = await this.store.tx(async (tx) => {
      await tx.clusters.lock(cluster.id);
      // One row by the (cluster, name) unique index: 1,000 agents joining must not read the
      // whole cluster 1,000 times.
      const existing = await tx.nodes.findByName(cluster.id, name);
      if (existing && (await tx.agents.nodeHasCredential(existing.id))) return { kind: 'taken' as const, node: existing };
      const active = await tx.upgrades.activeOf(cluster.id);
      if (!existing && active) {
        throw new UpshiftError(
          ErrorCode.UPGRADE_IN_PROGRESS,
          `cluster ${cluster.name} is being upgraded (upgrade ${active.id} is ${active.state}); a new node can join when it completes or is canceled`,
          { details: { cluster: cluster.name, upgradeId: active.id } },
        );
      }
      const id = existing?.id ?? newId('nd');
      // In this transaction: if the join fails after this, the token is not spent; if two
      // joins race with one token, the second finds it used and changes nothing.
      if (token.singleUse && !(await tx.agents.consumeJoinToken(tokenHash, now, id)))
        throw AgentHub.tokenRefusal('used', cluster.name, null);
      const origin = `agent ${facts.agentVersion || 'unknown'}, ${facts.os} ${facts.arch}, from ${from.address}`;
      if (!existing) {
        await tx.nodes.insert([{ id, clusterId: cluster.id, name, role: 'worker', status: 'Ready', versions, createdAt: now }]);
        await tx.events.append({
          type: EventType.clusterNodeAdded,
          actor: `agent:${name}`,
          clusterId: cluster.id,
          upgradeId: null,
          nodeId: id,
          message: `node ${name} joined ${cluster.name} (${origin})`,
          data: { address: from.address },
        });
      } else {
        await tx.events.append({
          type: EventType.agentJoined,
          actor: `agent:${name}`,
          clusterId: cluster.id,
          upgradeId: null,
          nodeId: id,
          message: `the agent of node ${name} joined ${cluster.name} and holds its credential now (${origin})`,
          data: { address: from.address },
        });
      }
      await tx.agents.recordHeartbeat(id, facts, existing ? { ...existing.versions, ...versions } : versions, now);
      await tx.agents.setCredential(id, hashSecret(credential));
      return { kind: 'joined' as const, nodeId: id };
    });
    if (outcome.kind === 'taken') {
      await this.recordJoinRefusal(cluster, outcome.node, from.address);
      throw new UpshiftError(
        ErrorCode.NODE_NAME_TAKEN,
        `a node named ${name} already holds a credential in cluster ${cluster.name}: if this host replaces it, an admin runs \`upshift node reset ${cluster.name} ${name}\`; otherwise start the agent with --name OTHER`,
        { details: { cluster: cluster.name, node: name } },
      );
    }
    const nodeId = outcome.nodeId;
    this.log.info({ clusterId: cluster.id, nodeId, name, address: from.address }, 'agent joined');
    return { nodeId, clusterId: cluster.id, clusterName: cluster.name, credential, heartbeatSeconds: this.heartbeatSeconds };
  }

  /** Why a known join token admits no join, in words that say what to do. */
  private static tokenRefusal(state: Exclude<JoinTokenState, 'valid'>, clusterName: string, expiresAt: string | null): UpshiftError {
    const why =
      state === 'expired'
        ? `expired at ${expiresAt}`
        : state === 'used'
          ? 'was for one join only and has been used'
          : 'was revoked by an administrator';
    return new UpshiftError(
      ErrorCode.UNAUTHENTICATED,
      `the join token of cluster ${clusterName} ${why}: ask an administrator for a new one (upshift cluster join-token ${clusterName})`,
      { details: { reason: state, cluster: clusterName } },
    );
  }

  private readonly joinRefusals = new Map<string, { at: number; suppressed: number }>();

  /**
   * Records a refused takeover: the node, the cluster and the client's address. A host
   * retrying in a loop yields one event a minute per node and address (with the count of
   * the attempts in between), not one row per request.
   */
  private async recordJoinRefusal(cluster: ClusterRecord, node: NodeRecord, address: string): Promise<void> {
    const key = `${cluster.id}\u0000${node.id}\u0000${address}`;
    const now = this.options.clock.now();
    const seen = this.joinRefusals.get(key);
    if (seen && now - seen.at < JOIN_REFUSAL_EVENT_WINDOW_MS) {
      seen.suppressed++;
      return;
    }
    this.joinRefusals.delete(key);
    if (this.joinRefusals.size >= JOIN_REFUSAL_KEYS_MAX) {
      const oldest = this.joinRefusals.keys().next();
      if (!oldest.done) this.joinRefusals.delete(oldest.value);
    }
    this.joinRefusals.set(key, { at: now, suppressed: 0 });
    const more = seen && seen.suppressed > 0 ? ` (${seen.suppressed} more attempts since the last event)` : '';
    this.log.warn({ clusterId: cluster.id, nodeId: node.id, name: node.name, address }, 'join under a taken node name refused');
    await this.store.events.append({
      type: EventType.agentJoinRefused,
      actor: `address:${address}`,
      clusterId: cluster.id,
      upgradeId: null,
      nodeId: node.id,
      message: `join as node ${node.name} of ${cluster.name} from ${address} refused: the node's agent holds a credential; an admin resets the node to let another host take its place${more}`,
      data: { node: node.name, cluster: cluster.name, address, ...(seen && seen.suppressed > 0 ? { suppressed: seen.suppressed } : {}) },
    });
  }

  /**
   * Revokes a node's credential at once (its agent gets 401 on its next call) and lets the
   * next join under the node's name claim it. Exactly one join: that join sets a new
   * credential, and every later one is refused again.
   *
   * A reset is allowed at any time, also while the node runs a task of an active upgrade:
   * it is what an operator does when a host is compromised or replaced, and that must not
   * wait for an upgrade to end. The node's unfinished tasks fail at once with step `reset`
   * (their outcome on the node is unknown), so the upgrade pauses as it does for any failed
   * node, and no task half-run by the old agent is handed to the host that joins next.
   */
  async resetNode(clusterId: string, nodeRef: string, actor: string): Promise<NodeReset> {
    const cluster = await this.clusterWithAgents(clusterId);
    const result = await this.store.tx(async (tx) => {
      await tx.clusters.lock(cluster.id);
      const byId = await tx.nodes.get(nodeRef);
      const node = byId?.clusterId === cluster.id ? byId : await tx.nodes.findByName(cluster.id, nodeRef);
      if (!node) throw notFound('node', nodeRef);
      const revokedCredentials = await tx.agents.revokeCredentials(node.id);
      const failedTasks: string[] = [];
      for (const task of await tx.agents.unfinishedTasks(node.id)) {
        const failed: TaskResultRequest = {
          result: 'failed',
          step: 'reset',
          error: `the node's credential was reset by ${actor} during this task: its agent is locked out and what the task did on the node is unknown. Check the node, then resume to run the task again`,
        };
        if (await tx.agents.finishTask(task.taskKey, node.id, 'failed', failed)) failedTasks.push(task.taskKey);
      }
      await tx.events.append({
        type: EventType.nodeCredentialReset,
        actor,
        clusterId: cluster.id,
        upgradeId: null,
        nodeId: node.id,
        message:
          `node ${node.name} of ${cluster.name} reset by ${actor}: ` +
          (revokedCredentials > 0 ? 'its agent is locked out; ' : 'its agent held no credential; ') +
          `the next join as ${node.name} claims the node` +
          (failedTasks.length > 0 ? `; its unfinished task${failedTasks.length === 1 ? '' : 's'} ${failedTasks.join(', ')} failed` : ''),
        data: { revokedCredentials, failedTasks },
      });
      return { node, revokedCredentials, failedTasks };
    });
    for (const key of result.failedTasks) this.signals.emit(`finished:${key}`);
    this.log.info({ clusterId: cluster.id, nodeId: result.node.id, actor }, 'node credential reset');
    return { ...result, clusterName: cluster.name };
  }

  /** The node a credential belongs to, or undefined. */
  async authenticate(header: string | undefined): Promise<NodeRecord | undefined> {
    const match = header ? /^Bearer\s+(upa_[A-Za-z0-9_-]{20,100})\s*$/.exec(header) : null;
    if (!match?.[1]) return undefined;
    return this.store.agents.nodeOfCredential(hashSecret(match[1]));
  }

  async heartbeat(node: NodeRecord, rawFacts: unknown): Promise<{ serverTime: string; heartbeatSeconds: number }> {
    const facts = AgentHub.checkFacts(rawFacts);
    const versions: ComponentVersions = { ...node.versions, ...facts.versions };
    if (isValidVersion(facts.agentVersion)) versions.agent = facts.agentVersion;
    const now = this.nowIso();
    await this.store.agents.recordHeartbeat(node.id, facts, versions, now);
    this.signals.emit(`heartbeat:${node.id}`, facts);
    return { serverTime: now, heartbeatSeconds: this.heartbeatSeconds };
  }

  /** Open tasks of the node; waits up to `waitSeconds` for one to be queued. */
  async poll(node: NodeRecord, waitSeconds: number, signal: AbortSignal): Promise<AgentTask[]> {
    const deadline = Date.now() + Math.min(Math.max(waitSeconds, 0), 30) * 1000;
    for (;;) {
      const rows = await this.store.agents.deliverOpenTasks(node.id);
      if (rows.length > 0 || Date.now() >= deadline || signal.aborted) {
        return rows.map((r) => ({ taskKey: r.taskKey, recipe: r.recipe, params: r.params, createdAt: r.createdAt }));
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.signals.off(`queued:${node.id}`, done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        // A task queued by this process wakes the poll at once. Another replica's task is
        // only seen by looking again: every 2 s on PostgreSQL. SQLite has one server, so
        // an idle poll costs no query until its deadline (1,000 idle agents: ~500
        // queries a second saved).
        const recheck = this.store.sharedWithReplicas ? 2000 : Number.POSITIVE_INFINITY;
        const timer = setTimeout(done, Math.min(recheck, Math.max(0, deadline - Date.now())));
        this.signals.once(`queued:${node.id}`, done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  private async ownTask(node: NodeRecord, taskKey: string) {
    const task = await this.store.agents.getTask(taskKey);
    if (!task || task.nodeId !== node.id) throw new UpshiftError(ErrorCode.NOT_FOUND, `task ${taskKey} is not a task of node ${node.name}`);
    return task;
  }

  /**
   * Appends an agent's log lines to its task's log. Only a task the agent was given and
   * has not reported is open for lines (`409 TASK_ENDED` otherwise: an agent must not
   * write to the log of a task that is over). Each line loses its control characters
   * (tabs stay; a line holds no newline) and is cut at 4,000 characters; the store keeps
   * at most `LOG_CAP_BYTES` per node task (see store.logs.append).
   */
  async appendLog(node: NodeRecord, taskKey: string, lines: unknown): Promise<void> {
    if (!Array.isArray(lines) || lines.length > 1000 || !lines.every((l) => typeof l === 'string')) {
      throw invalid('lines must be a list of at most 1000 strings');
    }
    const task = await this.ownTask(node, taskKey);
    if (task.state !== 'delivered') {
      throw new UpshiftError(
        ErrorCode.TASK_ENDED,
        task.state === 'queued'
          ? `task ${taskKey} has not been delivered to the agent yet: it takes no log lines`
          : `task ${taskKey} is over (${task.state}): it takes no more log lines`,
      );
    }
    const { upgradeId, nodeTaskId } = task;
    if (!upgradeId || !nodeTaskId) return;
    const at = this.nowIso();
    await this.store.logs.append(
      (lines as string[]).map((line) => ({
        upgradeId,
        nodeTaskId,
        at,
        line: agentText(line, 4000, { tabs: true }),
      })),
    );
  }

  async reportResult(node: NodeRecord, taskKey: string, raw: TaskResultRequest): Promise<void> {
    if (raw.result !== 'succeeded' && raw.result !== 'failed') throw invalid('result must be "succeeded" or "failed"');
    await this.ownTask(node, taskKey);
    const versions: ComponentVersions = {};
    for (const [key, value] of Object.entries(raw.versions ?? {})) {
      if (isComponent(key) && typeof value === 'string' && isValidVersion(value)) versions[key] = value;
    }
    // The error is multi-line text (a step's output); the step and the snapshot's ref are one line.
    const result: TaskResultRequest = {
      result: raw.result,
      ...(typeof raw.error === 'string' ? { error: agentText(raw.error, 4000, { tabs: true, newlines: true }) } : {}),
      ...(typeof raw.step === 'string' ? { step: agentText(raw.step, 40) } : {}),
      ...(typeof raw.ref === 'string' ? { ref: agentText(raw.ref, 500) } : {}),
      ...(raw.rolledBack === true ? { rolledBack: true } : {}),
      versions,
    };
    if (await this.store.agents.finishTask(taskKey, node.id, raw.result, result)) {
      this.signals.emit(`finished:${taskKey}`);
      return;
    }
    // The task was already ended (timed out, node unreachable): keep what the agent says
    // it did in the node's log, where the operator looks before resuming.
    const task = await this.store.agents.getTask(taskKey);
    if (task?.upgradeId && task.nodeTaskId && task.state !== raw.result) {
      const ended = task.result?.error ?? task.state;
      await this.store.logs.append([
        {
          upgradeId: task.upgradeId,
          nodeTaskId: task.nodeTaskId,
          at: this.nowIso(),
          line: agentText(
            `late result from the agent: ${raw.result}${result.error ? ` (${result.error})` : ''}; the task had already ended: ${ended}`,
            4000,
            { tabs: true },
          ),
        },
      ]);
    }
  }

  private sweeper: (() => void) | undefined;

  /** Marks nodes Down whose agent missed three heartbeats, with an event for each. */
  async sweepSilentNodes(): Promise<void> {
    const before = new Date(this.options.clock.now() - 3 * this.heartbeatSeconds * 1000).toISOString();
    for (const node of await this.store.agents.markSilentNodesDown(before)) {
      await this.store.events.append({
        type: EventType.nodeDown,
        actor: 'engine',
        clusterId: node.clusterId,
        upgradeId: null,
        nodeId: node.id,
        message: `node ${node.name}: no heartbeat from its agent for ${3 * this.heartbeatSeconds} s; marked Down`,
      });
    }
  }

  startSweeper(): void {
    this.sweeper?.();
    this.sweeper = this.options.clock.setTimer(this.heartbeatSeconds * 1000, () => {
      void this.sweepSilentNodes()
        .catch((error: unknown) => this.log.warn({ err: error }, 'sweeping silent nodes failed'))
        .finally(() => this.startSweeper());
    });
  }

  stopSweeper(): void {
    this.sweeper?.();
    this.sweeper = undefined;
  }

  // ---- AgentPort --------------------------------------------------------------------

  async runAgentTask(task: AgentTaskRequest, signal: AbortSignal): Promise<TaskResultRequest> {
    await this.store.agents.ensureTask(task);
    this.signals.emit(`queued:${task.nodeId}`);
    for (;;) {
      const row = await this.store.agents.getTask(task.taskKey);
      if (!row) throw new UpshiftError(ErrorCode.INTERNAL, `agent task ${task.taskKey} vanished`);
      if (row.state === 'succeeded' || row.state === 'failed') return row.result ?? { result: row.state };
      const now = this.options.clock.now();
      const age = now - Date.parse(row.createdAt);
      const ended = await this.overdue(task.nodeId, row.state, Date.parse(row.createdAt), now);
      if (ended) {
        if (await this.store.agents.finishTask(task.taskKey, task.nodeId, 'failed', ended)) return ended;
        continue;
      }
      if (signal.aborted) throw signal.reason;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.signals.off(`finished:${task.taskKey}`, done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(2000, Math.max(10, this.taskTimeoutMs - age)));
        this.signals.once(`finished:${task.taskKey}`, done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /**
   * Why an open task must end now, if it must: its agent went silent for three heartbeats
   * (counted from the later of its last heartbeat and the task's creation: the link is
   * cut, the host is down or the agent stopped), or the task ran past the task timeout.
   * What the task did on the node is then unknown; the node's next heartbeat tells its
   * versions, and a resume runs the task again (recipes skip what is already done).
   */
  private async overdue(nodeId: string, state: string, createdAt: number, now: number): Promise<TaskResultRequest | undefined> {
    const step = state === 'queued' ? 'delivery' : 'timeout';
    const lastSeen = Date.parse((await this.store.agents.lastSeen(nodeId)) ?? '') || 0;
    const silentMs = now - Math.max(lastSeen, createdAt);
    if (silentMs > this.unreachableAfterMs) {
      return {
        result: 'failed',
        step: 'unreachable',
        error: `node unreachable: no heartbeat from its agent for ${Math.round(silentMs / 1000)} s during the task (link cut, host down or agent stopped); its outcome on the node is unknown. Check the node, then resume to run the task again`,
      };
    }
    if (now - createdAt > this.taskTimeoutMs) {
      return {
        result: 'failed',
        step,
        error: `the agent did not report a result within ${Math.round(this.taskTimeoutMs / 1000)} s (the task timeout)`,
      };
    }
    return undefined;
  }

  async artifactsFor(component: Component, version: string, catalog: Catalog): Promise<TaskArtifact[]> {
    const out: TaskArtifact[] = [];
    if (component === 'agent') {
      const sha256 = this.options.bundleSha256?.();
      if (sha256) out.push({ method: 'agent-bundle', sha256 });
      return out;
    }
    const release = releaseOf(version);
    for (const a of await this.store.artifacts.list({ component })) {
      if (releaseOf(a.version) === release && (a.method === 'deb' || a.method === 'binary')) {
        out.push({ method: a.method, file: a.file, sha256: a.sha256 });
      }
    }
    for (const a of findCatalogVersion(catalog, component, version)?.artifacts ?? []) {
      if (a.method === 'apt' && a.file)
        out.push({ method: 'apt', package: a.file, ...(a.packageVersion ? { packageVersion: a.packageVersion } : {}) });
      if ((a.method === 'deb' || a.method === 'binary') && a.file && a.sha256 && !out.some((o) => o.file === a.file)) {
        out.push({ method: a.method, file: a.file, sha256: a.sha256 });
      }
    }
    return out;
  }
}
