import type { ComponentVersions } from '../../domain/components.js';
import { componentDisplayName } from '../../domain/components.js';
import { errorMessage } from '../../domain/errors.js';
import type { ClusterRecord } from '../../domain/model.js';
import type {
  AgentPort,
  ClusterDriver,
  Clock,
  InventoryNode,
  InventoryResult,
  NodeTaskOutcome,
  NodeTaskSpec,
  SecretReader,
  ServiceReplicas,
  SnapshotOutcome,
  SnapshotSpec,
  TaskContext,
} from '../../domain/ports.js';
import { isValidVersion, releaseOf } from '../../domain/versions.js';
import type { DockerApi } from '../../platform/docker-api.js';
import { DockerUnreachableError } from '../../platform/docker-api.js';
import { snapshotThroughAgent, upgradeThroughAgent } from '../agent-tasks.js';
import type { SwarmClusterConfig, SwarmTargetPolicy } from './config.js';
import { TLS_KEY_FIELD, storedSwarmConfig, validateSwarmConfig, validateSwarmSecrets } from './config.js';
import { managerApi, swarmFailureReason } from './manager-api.js';
import type { Drained } from './node-steps.js';
import { SwarmNodeSteps, SwarmStepError } from './node-steps.js';
import type { SwarmNode, SwarmService, SwarmTask } from './swarm-api.js';
import { nodeName, nodeStatus } from './swarm-api.js';

export interface SwarmDriverLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SwarmDriverOptions {
  /** Runs recipes on the nodes' agents (the server's AgentHub). */
  agents: AgentPort;
  /** Reads the cluster's TLS client key (`secrets.read(clusterId, 'tlsKey')`), decrypted on demand. */
  secrets: SecretReader;
  clock: Clock;
  logger?: SwarmDriverLogger;
  /** Between reads of the swarm's nodes and tasks while draining and verifying. Default 1000. */
  pollIntervalMs?: number;
  /** The one Docker socket path a cluster may name as `unix://` manager (`--swarm-socket`); default none. */
  swarmSocket?: string | null;
  /** The operator's `--allow-link-local-targets`. Default false. */
  allowLinkLocalTargets?: boolean;
}

const silent: SwarmDriverLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Docker Swarm clusters. The inventory is the swarm's own node list, read from a
 * manager's Engine API (unix socket, or TCP with TLS client certificates whose key is a
 * secret); nodes are named by their hostname, which is also the name their agent joins
 * with, so the two meet on one node record. The work on a node is the node's agent's
 * recipe, as for plain hosts; around it the driver keeps the swarm's services up:
 *
 *   quorum   a manager is started only when every other manager is reachable
 *   drain    availability set to `drain` (the previous one remembered in a node label),
 *            then wait until the node's tasks moved (global services' tasks stay)
 *   agent    the recipe, under the node task's idempotent key
 *   verify   the node is Ready on the target engine version through a manager (and, for
 *            a manager, reachable in the raft again)
 *   restore  the previous availability, the labels removed
 *
 * Every step is safe to repeat, so a task reattached after a server restart picks up
 * where it was: the drain label names the task key that set it.
 */
export class SwarmDriver implements ClusterDriver {
  readonly kind = 'swarm' as const;
  readonly manualMembership = false;
  readonly secretFields = [TLS_KEY_FIELD] as const;

  private readonly agents: AgentPort;
  private readonly secrets: SecretReader;
  private readonly clock: Clock;
  private readonly logger: SwarmDriverLogger;
  private readonly pollIntervalMs: number;
  private readonly policy: SwarmTargetPolicy;

  constructor(options: SwarmDriverOptions) {
    this.agents = options.agents;
    this.secrets = options.secrets;
    this.clock = options.clock;
    this.logger = options.logger ?? silent;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.policy = { swarmSocket: options.swarmSocket ?? null, allowLinkLocalTargets: options.allowLinkLocalTargets ?? false };
  }

  validateConfig(raw: Record<string, unknown>): Record<string, unknown> {
    return storedSwarmConfig(validateSwarmConfig(raw, this.policy));
  }

  validateSecrets(secrets: Record<string, string>, config: Record<string, unknown>): void {
    validateSwarmSecrets(secrets, validateSwarmConfig(config, this.policy));
  }

  initialNodes(): InventoryNode[] {
    return [];
  }

  newNodeVersions(): Record<string, never> {
    return {};
  }

  /**
   * The Engine API client of a cluster. The stored config is checked against the current
   * policy each time, so a manager that the operator no longer allows (another
   * --swarm-socket, no --allow-link-local-targets) is refused with the same message as
   * at creation.
   */
  private async client(cluster: ClusterRecord): Promise<{ api: DockerApi; config: SwarmClusterConfig }> {
    const config = validateSwarmConfig(cluster.config, this.policy);
    let tls;
    if (config.tls) {
      const key = await this.secrets.read(cluster.id, TLS_KEY_FIELD);
      if (key !== undefined) tls = { ...config.tls, key };
    }
    return { api: managerApi(config.managers, tls, this.policy), config };
  }

  /**
   * The swarm's nodes with their role, status and engine version. Only the engine
   * version is the swarm's to report; the agent reports the others (agent, containerd,
   * runsc) with its heartbeats.
   */
  async inventory(cluster: ClusterRecord, signal: AbortSignal): Promise<InventoryResult> {
    let api: DockerApi;
    try {
      ({ api } = await this.client(cluster));
    } catch (error) {
      return { reachable: false, reason: `the stored configuration is refused: ${errorMessage(error)}` };
    }
    let nodes: SwarmNode[];
    try {
      nodes = await api.json<SwarmNode[]>('GET', '/nodes', { signal });
      if (!Array.isArray(nodes))
        throw new DockerUnreachableError('the managers answered GET /nodes with something that is not a node list');
    } catch (error) {
      if (signal.aborted) throw error;
      // Only a status and Upshift's words: the reason becomes the cluster's status, which every viewer reads.
      return { reachable: false, reason: swarmFailureReason(error) };
    }
    return {
      reachable: true,
      nodes: nodes.map((n) => {
        const engine = n.Description?.Engine?.EngineVersion;
        const versions: ComponentVersions = {};
        if (engine !== undefined && isValidVersion(engine)) versions.docker = releaseOf(engine);
        return { name: nodeName(n), role: n.Spec.Role === 'manager' ? 'manager' : 'worker', status: nodeStatus(n), versions };
      }),
    };
  }

  async runNodeTask(cluster: ClusterRecord, spec: NodeTaskSpec, ctx: TaskContext): Promise<NodeTaskOutcome> {
    const { api, config } = await this.client(cluster);
    const restarts = spec.component === 'docker' || config.drain.components.includes(spec.component);
    const drains = config.drain.enabled && config.drain.components.includes(spec.component);
    const steps = new SwarmNodeSteps(api, this.clock, this.pollIntervalMs, ctx);
    let drained: Drained | undefined;
    try {
      const node = await steps.findNode(spec.node.name);
      if (restarts && node.Spec.Role === 'manager') await steps.checkQuorum(node, config.verifyTimeoutSeconds);
      if (drains) {
        drained = await steps.setDrain(node, spec.taskKey);
        await steps.waitMoved(node.ID, config.drain.timeoutSeconds);
      } else if (restarts)
        ctx.log(`drain is off for ${componentDisplayName[spec.component]}: the node's tasks are interrupted by the restart`);
      const outcome = await this.runAgent(spec, ctx);
      if (outcome.result === 'failed') {
        if (drained && (await steps.restoreAfterFailure(drained))) {
          this.logger.warn({ node: spec.node.name }, 'swarm node left drained after a failed upgrade');
        }
        return outcome;
      }
      if (spec.component === 'docker') await steps.verifyDockerVersion(node.ID, spec.toVersion, config.verifyTimeoutSeconds);
      if (drained) await steps.restore(drained);
      return outcome;
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      const step = error instanceof SwarmStepError ? `${error.step}: ` : '';
      const message = `${step}${errorMessage(error)}`;
      ctx.log(message);
      if (drained && !(error instanceof SwarmStepError && error.step === 'verify')) {
        await steps
          .restore(drained)
          .catch((e: unknown) => ctx.log(`the node stays drained: restoring its availability failed: ${errorMessage(e)}`));
      } else if (drained) {
        ctx.log(`the node stays drained (availability was ${drained.previous}): restore it once its engine is healthy`);
      }
      this.logger.warn({ clusterId: cluster.id, node: spec.node.name, err: message }, 'swarm node task failed');
      return { result: 'failed', error: message };
    }
  }

  /**
   * Replicated services with their desired replicas and running tasks, for the
   * `swarm-services` gate: one list of services and one of the tasks that should run.
   */
  async serviceReplicas(cluster: ClusterRecord): Promise<ServiceReplicas[]> {
    const { api } = await this.client(cluster);
    const filter = encodeURIComponent(JSON.stringify({ 'desired-state': ['running'] }));
    let services: SwarmService[];
    let tasks: SwarmTask[];
    try {
      [services, tasks] = await Promise.all([
        api.json<SwarmService[]>('GET', '/services'),
        api.json<SwarmTask[]>('GET', `/tasks?filters=${filter}`),
      ]);
    } catch (error) {
      // Only a status and Upshift's words: the reason is shown in the gate's events.
      throw new DockerUnreachableError(swarmFailureReason(error));
    }
    if (!Array.isArray(services) || !Array.isArray(tasks))
      throw new DockerUnreachableError('the managers answered with something that is not a list');
    const running = new Map<string, number>();
    for (const t of tasks) if (t.Status.State === 'running') running.set(t.ServiceID, (running.get(t.ServiceID) ?? 0) + 1);
    // By name: the Engine lists services in no stable order, and the gate's message should not flicker.
    return services
      .flatMap((s) => {
        const replicated = s.Spec.Mode?.Replicated;
        if (!replicated) return [];
        return [{ name: s.Spec.Name, desired: replicated.Replicas ?? 1, running: running.get(s.ID) ?? 0 }];
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private runAgent(spec: NodeTaskSpec, ctx: TaskContext): Promise<NodeTaskOutcome> {
    return upgradeThroughAgent(this.agents, spec, ctx);
  }

  snapshotNode(_cluster: ClusterRecord, spec: SnapshotSpec, ctx: TaskContext): Promise<SnapshotOutcome> {
    return snapshotThroughAgent(this.agents, spec, ctx);
  }
}
