import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AgentFacts, AgentTask, JoinRequest, JoinResponse, TaskArtifact, TaskResultRequest } from '../domain/agent-protocol.js';
import type { Catalog } from '../domain/catalog.js';
import { findCatalogVersion } from '../domain/catalog.js';
import type { Component, ComponentVersions } from '../domain/components.js';
import { isComponent, kindHasAgents } from '../domain/components.js';
import { ErrorCode, UpshiftError, invalid } from '../domain/errors.js';
import { EventType } from '../domain/events.js';
import { newId } from '../domain/ids.js';
import type { NodeRecord } from '../domain/model.js';
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
}

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

  /** A new join token for a cluster with agents; only its hash is stored. */
  async createJoinToken(clusterId: string, ttlSeconds?: number): Promise<{ joinToken: string; expiresAt: string | null }> {
    const cluster = await this.store.getCluster(clusterId);
    if (!cluster) throw new UpshiftError(ErrorCode.NOT_FOUND, `cluster ${clusterId} does not exist`);
    if (!kindHasAgents(cluster.kind) || cluster.kind === 'simulated') {
      throw new UpshiftError(ErrorCode.NOT_SUPPORTED, `nodes of a ${cluster.kind} cluster do not join with agents`);
    }
    const joinToken = `upj_${randomBytes(24).toString('base64url')}`;
    const expiresAt = ttlSeconds ? new Date(this.options.clock.now() + ttlSeconds * 1000).toISOString() : null;
    await this.store.insertJoinToken({ tokenHash: hashSecret(joinToken), clusterId, expiresAt });
    return { joinToken, expiresAt };
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

  /** Exchanges a join token for a node credential. Refused while the cluster is being upgraded. */
  async join(request: JoinRequest): Promise<JoinResponse> {
    if (typeof request.joinToken !== 'string' || request.joinToken.length < 8) {
      throw new UpshiftError(ErrorCode.UNAUTHENTICATED, 'a join token is required');
    }
    const clusterId = await this.store.clusterOfJoinToken(hashSecret(request.joinToken), this.nowIso());
    if (!clusterId)
      throw new UpshiftError(
        ErrorCode.UNAUTHENTICATED,
        'the join token is unknown, expired or revoked: ask an administrator for a new one',
      );
    const cluster = await this.store.getCluster(clusterId);
    if (!cluster) throw new UpshiftError(ErrorCode.UNAUTHENTICATED, 'the join token’s cluster no longer exists');
    const name = validateName('node', request.name);
    const facts = AgentHub.checkFacts(request.facts);
    const credential = `upa_${randomBytes(32).toString('base64url')}`;
    const now = this.nowIso();
    const versions = { ...facts.versions, ...(isValidVersion(facts.agentVersion) ? { agent: facts.agentVersion } : {}) };
    const nodeId = await this.store.tx(async (tx) => {
      await tx.lockCluster(cluster.id);
      // One row by the (cluster, name) unique index: 1,000 agents joining must not read the
      // whole cluster 1,000 times.
      const existing = await tx.findNodeByName(cluster.id, name);
      const active = await tx.activeUpgradeOf(cluster.id);
      if (!existing && active) {
        throw new UpshiftError(
          ErrorCode.UPGRADE_IN_PROGRESS,
          `cluster ${cluster.name} is being upgraded (upgrade ${active.id} is ${active.state}); a new node can join when it completes or is canceled`,
        );
      }
      const id = existing?.id ?? newId('nd');
      if (!existing) {
        await tx.insertNodes([{ id, clusterId: cluster.id, name, role: 'worker', status: 'Ready', versions, createdAt: now }]);
        await tx.appendEvent({
          type: EventType.clusterNodeAdded,
          actor: `agent:${name}`,
          clusterId: cluster.id,
          upgradeId: null,
          nodeId: id,
          message: `node ${name} joined ${cluster.name} (agent ${facts.agentVersion || 'unknown'}, ${facts.os} ${facts.arch})`,
        });
      }
      await tx.recordHeartbeat(id, facts, existing ? { ...existing.versions, ...versions } : versions, now);
      await tx.setAgentCredential(id, hashSecret(credential));
      return id;
    });
    this.log.info({ clusterId: cluster.id, nodeId, name }, 'agent joined');
    return { nodeId, clusterId: cluster.id, clusterName: cluster.name, credential, heartbeatSeconds: this.heartbeatSeconds };
  }

  /** The node a credential belongs to, or undefined. */
  async authenticate(header: string | undefined): Promise<NodeRecord | undefined> {
    const match = header ? /^Bearer\s+(upa_[A-Za-z0-9_-]{20,100})\s*$/.exec(header) : null;
    if (!match?.[1]) return undefined;
    return this.store.nodeOfCredential(hashSecret(match[1]));
  }

  async heartbeat(node: NodeRecord, rawFacts: unknown): Promise<{ serverTime: string; heartbeatSeconds: number }> {
    const facts = AgentHub.checkFacts(rawFacts);
    const versions: ComponentVersions = { ...node.versions, ...facts.versions };
    if (isValidVersion(facts.agentVersion)) versions.agent = facts.agentVersion;
    const now = this.nowIso();
    await this.store.recordHeartbeat(node.id, facts, versions, now);
    this.signals.emit(`heartbeat:${node.id}`, facts);
    return { serverTime: now, heartbeatSeconds: this.heartbeatSeconds };
  }

  /** Open tasks of the node; waits up to `waitSeconds` for one to be queued. */
  async poll(node: NodeRecord, waitSeconds: number, signal: AbortSignal): Promise<AgentTask[]> {
    const deadline = Date.now() + Math.min(Math.max(waitSeconds, 0), 30) * 1000;
    for (;;) {
      const rows = await this.store.openAgentTasks(node.id);
      if (rows.length > 0 || Date.now() >= deadline || signal.aborted) {
        return rows.map((r) => ({
          taskKey: r.task_key,
          recipe: r.recipe as AgentTask['recipe'],
          params: JSON.parse(r.params),
          createdAt: r.created_at,
        }));
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
    const task = await this.store.getAgentTask(taskKey);
    if (!task || task.node_id !== node.id)
      throw new UpshiftError(ErrorCode.NOT_FOUND, `task ${taskKey} is not a task of node ${node.name}`);
    return task;
  }

  /**
   * Appends an agent's log lines to its task's log. Only a task the agent was given and
   * has not reported is open for lines (`409 TASK_ENDED` otherwise: an agent must not
   * write to the log of a task that is over). Each line loses its control characters
   * (tabs stay; a line holds no newline) and is cut at 4,000 characters; the store keeps
   * at most `LOG_CAP_BYTES` per node task (see store.appendLogs).
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
    if (!task.upgrade_id || !task.node_task_id) return;
    const at = this.nowIso();
    await this.store.appendLogs(
      (lines as string[]).map((line) => ({
        upgradeId: task.upgrade_id as string,
        nodeTaskId: task.node_task_id as string,
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
    if (await this.store.finishAgentTask(taskKey, node.id, raw.result, result)) {
      this.signals.emit(`finished:${taskKey}`);
      return;
    }
    // The task was already ended (timed out, node unreachable): keep what the agent says
    // it did in the node's log, where the operator looks before resuming.
    const task = await this.store.getAgentTask(taskKey);
    if (task?.upgrade_id && task.node_task_id && task.state !== raw.result) {
      const ended = (JSON.parse(task.result ?? '{}') as TaskResultRequest).error ?? task.state;
      await this.store.appendLogs([
        {
          upgradeId: task.upgrade_id,
          nodeTaskId: task.node_task_id,
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
    for (const node of await this.store.markSilentNodesDown(before)) {
      await this.store.appendEvent({
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
    await this.store.ensureAgentTask(task);
    this.signals.emit(`queued:${task.nodeId}`);
    for (;;) {
      const row = await this.store.getAgentTask(task.taskKey);
      if (!row) throw new UpshiftError(ErrorCode.INTERNAL, `agent task ${task.taskKey} vanished`);
      if (row.state === 'succeeded' || row.state === 'failed') return JSON.parse(row.result ?? '{}') as TaskResultRequest;
      const now = this.options.clock.now();
      const age = now - Date.parse(row.created_at);
      const ended = await this.overdue(task.nodeId, row.state, Date.parse(row.created_at), now);
      if (ended) {
        if (await this.store.finishAgentTask(task.taskKey, task.nodeId, 'failed', ended)) return ended;
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
    const lastSeen = Date.parse((await this.store.nodeLastSeen(nodeId)) ?? '') || 0;
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
    for (const a of await this.store.listArtifacts({ component })) {
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
