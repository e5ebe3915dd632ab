import { EventEmitter } from 'node:events';
import type {
  AgentTask,
  HeartbeatResponse,
  JoinRequest,
  JoinResponse,
  TaskArtifact,
  TaskResultRequest,
} from '../../domain/agent-protocol.js';
import type { Catalog } from '../../domain/catalog.js';
import type { Component } from '../../domain/components.js';
import type { NodeRecord } from '../../domain/model.js';
import type { AgentPort, AgentTaskRequest, Clock } from '../../domain/ports.js';
import type { Store } from '../../store/store.js';
import type { Logger } from '../types.js';
import { silentLogger } from '../types.js';
import { checkFacts } from './agent-input.js';
import { AgentLiveness } from './liveness.js';
import { type CreatedJoinToken, NodeIdentity, type NodeReset } from './node-identity.js';
import { AgentTaskDelivery } from './task-delivery.js';
import { AgentTaskLogs } from './task-logs.js';

/** The agent protocol's settings (the server's flags). */
export interface AgentHubSettings {
  heartbeatSeconds?: number;
  /** A task the agent has not finished after this long fails, even if the agent still heartbeats. */
  taskTimeoutMs?: number;
  /** sha256 of the agent bundle this server serves, for self-upgrades. */
  bundleSha256?: () => string | undefined;
  /** Lifetime of a join token created without an explicit one (the server's `--join-token-ttl`). Default 24 h. */
  joinTokenTtlSeconds?: number;
}

export interface AgentHubOptions extends AgentHubSettings {
  store: Store;
  clock: Clock;
  logger?: Logger;
}

/**
 * The server's side of the agent protocol, as the API's agent routes and the hosts and
 * swarm drivers (through `AgentPort`) see it. Its parts: who a node is (`NodeIdentity`:
 * join tokens, joins, credentials, resets), whether its agent is alive (`AgentLiveness`:
 * heartbeats, the Down sweep, overdue tasks), tasks to agents and results back
 * (`AgentTaskDelivery`), and the tasks' logs (`AgentTaskLogs`). They share the database
 * and one in-process emitter that wakes long polls and waiters early.
 */
export class AgentHub implements AgentPort {
  readonly heartbeatSeconds: number;
  private readonly identity: NodeIdentity;
  private readonly liveness: AgentLiveness;
  private readonly delivery: AgentTaskDelivery;
  private readonly logs: AgentTaskLogs;

  constructor(private readonly options: AgentHubOptions) {
    const { store, clock } = options;
    const log = options.logger ?? silentLogger;
    const signals = new EventEmitter().setMaxListeners(0);
    this.heartbeatSeconds = options.heartbeatSeconds ?? 10;
    const taskTimeoutMs = options.taskTimeoutMs ?? 30 * 60_000;
    const bundleSha256 = () => options.bundleSha256?.();
    this.identity = new NodeIdentity({
      store,
      clock,
      log,
      signals,
      heartbeatSeconds: this.heartbeatSeconds,
      joinTokenTtlSeconds: options.joinTokenTtlSeconds ?? 86_400,
    });
    this.liveness = new AgentLiveness({ store, clock, log, signals, heartbeatSeconds: this.heartbeatSeconds, taskTimeoutMs });
    this.logs = new AgentTaskLogs({ store, clock });
    this.delivery = new AgentTaskDelivery({
      store,
      clock,
      log,
      signals,
      liveness: this.liveness,
      logs: this.logs,
      taskTimeoutMs,
      bundleSha256,
    });
  }

  /** A node whose agent missed three heartbeats is unreachable: its open task fails. */
  get unreachableAfterMs(): number {
    return this.liveness.unreachableAfterMs;
  }

  /** sha256 of the agent file new nodes install (`/install/upshift-agent.js`), when it is built. */
  agentBundleSha256(): string | undefined {
    return this.options.bundleSha256?.();
  }

  // Join and node identity.

  createJoinToken(clusterId: string, options: { ttlSeconds?: number; singleUse?: boolean } = {}): Promise<CreatedJoinToken> {
    return this.identity.createJoinToken(clusterId, options);
  }

  join(request: JoinRequest, from: { address: string }): Promise<JoinResponse> {
    return this.identity.join(request, from);
  }

  resetNode(clusterId: string, nodeRef: string, actor: string): Promise<NodeReset> {
    return this.identity.resetNode(clusterId, nodeRef, actor);
  }

  authenticate(header: string | undefined): Promise<NodeRecord | undefined> {
    return this.identity.authenticate(header);
  }

  // Heartbeats and liveness.

  heartbeat(node: NodeRecord, rawFacts: unknown): Promise<HeartbeatResponse> {
    return this.liveness.heartbeat(node, rawFacts);
  }

  sweepSilentNodes(): Promise<void> {
    return this.liveness.sweepSilentNodes();
  }

  /** Starts the liveness sweep, the writing of heard times, and listening to other replicas' agent tasks. */
  start(): void {
    this.liveness.startSweeper();
    this.delivery.start();
  }

  /** Stops them; the heard times still in memory are written first. */
  async stop(): Promise<void> {
    await this.delivery.stop();
    await this.liveness.stopSweeper();
  }

  // Task delivery, results and logs.

  /** A task poll, which also counts as a heartbeat without news, and keeps its node heard while it is open. */
  async poll(node: NodeRecord, waitSeconds: number, signal: AbortSignal): Promise<AgentTask[]> {
    await this.liveness.polled(node);
    try {
      return await this.delivery.poll(node, waitSeconds, signal);
    } finally {
      this.liveness.pollEnded(node.id);
    }
  }

  /**
   * A task's result; facts it carries are checked before anything is recorded, and
   * recorded as the node's heartbeat once the result is (one request where an agent
   * would otherwise send its changed facts in a heartbeat right after). Without facts it
   * counts as a heartbeat without news.
   */
  async reportResult(node: NodeRecord, taskKey: string, raw: TaskResultRequest): Promise<void> {
    const facts = raw.facts === undefined ? undefined : checkFacts(raw.facts);
    await this.delivery.reportResult(node, taskKey, raw);
    if (facts) await this.liveness.heardWith(node, facts);
    else await this.liveness.heardFrom(node);
  }

  /** A task's log lines, which also count as a heartbeat without news. */
  async appendLog(node: NodeRecord, taskKey: string, lines: unknown): Promise<void> {
    await this.liveness.heardFrom(node);
    await this.logs.append(node, taskKey, lines);
  }

  // AgentPort, for the hosts and swarm drivers.

  runAgentTask(task: AgentTaskRequest, signal: AbortSignal): Promise<TaskResultRequest> {
    return this.delivery.runAgentTask(task, signal);
  }

  artifactsFor(component: Component, version: string, catalog: Catalog): Promise<TaskArtifact[]> {
    return this.delivery.artifactsFor(component, version, catalog);
  }
}
