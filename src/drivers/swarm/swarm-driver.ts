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
  SnapshotOutcome,
  SnapshotSpec,
  TaskContext,
} from '../../domain/ports.js';
import { sleep } from '../../domain/ports.js';
import { isValidVersion, releaseOf, sameRelease } from '../../domain/versions.js';
import type { DockerApi } from '../../platform/docker-api.js';
import { DockerApiError, DockerUnreachableError } from '../../platform/docker-api.js';
import { snapshotThroughAgent, upgradeThroughAgent } from '../agent-tasks.js';
import type { SwarmClusterConfig, SwarmTargetPolicy } from './config.js';
import { TLS_KEY_FIELD, storedSwarmConfig, validateSwarmConfig, validateSwarmSecrets } from './config.js';
import { managerApi, swarmFailureReason } from './manager-api.js';
import type { SwarmNode, SwarmNodeSpec, SwarmService, SwarmTask } from './swarm-api.js';
import { ACTIVE_TASK_STATES, Label, nodeName, nodeStatus } from './swarm-api.js';

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

/** A node task that cannot go on, with the words an operator needs. */
class SwarmStepError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
    this.name = 'SwarmStepError';
  }
}

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
      nodes = await api.json<SwarmNode[]>('GET', '/nodes', { signal: signal });
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
    let drained: { id: string; previous: SwarmNodeSpec['Availability'] } | undefined;
    try {
      const node = await this.findNode(api, spec.node.name, ctx.signal);
      if (restarts && node.Spec.Role === 'manager') await this.checkQuorum(api, node, config.verifyTimeoutSeconds, ctx);
      if (drains) {
        drained = await this.setDrain(api, node, spec.taskKey, ctx);
        await this.waitMoved(api, node.ID, config.drain.timeoutSeconds, ctx);
      } else if (restarts)
        ctx.log(`drain is off for ${componentDisplayName[spec.component]}: the node's tasks are interrupted by the restart`);
      const outcome = await this.runAgent(spec, ctx);
      if (outcome.result === 'failed') {
        if (drained) await this.restoreAfterFailure(api, drained, spec, ctx);
        return outcome;
      }
      if (spec.component === 'docker') await this.verifyEngine(api, node.ID, spec.toVersion, config.verifyTimeoutSeconds, ctx);
      if (drained) await this.restore(api, drained.id, drained.previous, ctx);
      return outcome;
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      const step = error instanceof SwarmStepError ? `${error.step}: ` : '';
      const message = `${step}${errorMessage(error)}`;
      ctx.log(message);
      if (drained && !(error instanceof SwarmStepError && error.step === 'verify')) {
        await this.restore(api, drained.id, drained.previous, ctx).catch((e: unknown) =>
          ctx.log(`the node stays drained: restoring its availability failed: ${errorMessage(e)}`),
        );
      } else if (drained) {
        ctx.log(`the node stays drained (availability was ${drained.previous}): restore it once its engine is healthy`);
      }
      this.logger.warn({ clusterId: cluster.id, node: spec.node.name, err: message }, 'swarm node task failed');
      return { result: 'failed', error: message };
    }
  }

  private async findNode(api: DockerApi, name: string, signal: AbortSignal): Promise<SwarmNode> {
    const nodes = await api.json<SwarmNode[]>('GET', '/nodes', { signal: signal });
    const node = nodes.find((n) => nodeName(n) === name);
    if (!node) {
      throw new SwarmStepError(
        'preflight',
        `node ${name} is not in the swarm (its managers list ${nodes.map(nodeName).join(', ')}); the node name must be the host's hostname`,
      );
    }
    return node;
  }

  /**
   * Refuses to restart a manager while another manager is out of the raft: one more loss
   * could cost the quorum. Right after a manager restarted, the others may show as
   * unknown until they report to the (new) leader, so this waits up to `timeoutSeconds`.
   */
  private async checkQuorum(api: DockerApi, node: SwarmNode, timeoutSeconds: number, ctx: TaskContext): Promise<void> {
    const deadline = this.clock.now() + timeoutSeconds * 1000;
    for (;;) {
      let managers: SwarmNode[] | undefined;
      let problem: string;
      try {
        managers = (await api.json<SwarmNode[]>('GET', '/nodes', { signal: ctx.signal })).filter((n) => n.Spec.Role === 'manager');
        const others = managers.filter((n) => n.ID !== node.ID);
        const down = others.find((n) => n.ManagerStatus?.Reachability !== 'reachable' || n.Status.State !== 'ready');
        if (down === undefined) {
          ctx.log(
            `quorum: all ${others.length} other manager(s) reachable; ${others.length} of ${managers.length} stay up during the restart`,
          );
          return;
        }
        problem = `manager ${nodeName(down)} is ${down.ManagerStatus?.Reachability ?? 'unknown'} (state ${down.Status.State})`;
      } catch (error) {
        if (ctx.signal.aborted) throw error;
        problem = `the managers do not answer (${errorMessage(error)})`;
      }
      if (this.clock.now() >= deadline) {
        const total = managers?.length ?? 0;
        throw new SwarmStepError(
          'quorum',
          `${problem} for ${timeoutSeconds} s; restarting manager ${nodeName(node)} now could cost the swarm its quorum${total ? ` (${total} managers, ${Math.floor(total / 2) + 1} needed)` : ''}. Bring every manager back, then resume the upgrade`,
        );
      }
      await sleep(this.clock, this.pollIntervalMs, ctx.signal);
    }
  }

  private async updateNode(api: DockerApi, id: string, change: (spec: SwarmNodeSpec) => SwarmNodeSpec, signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const node = await api.json<SwarmNode>('GET', `/nodes/${encodeURIComponent(id)}`, { signal: signal });
      try {
        await api.request('POST', `/nodes/${encodeURIComponent(id)}/update?version=${node.Version.Index}`, {
          body: change(node.Spec),
          signal,
        });
        return;
      } catch (error) {
        // "update out of sequence": someone else updated the node in between; read it again.
        if (!(error instanceof DockerApiError) || attempt >= 4 || !/out of sequence/i.test(error.message)) throw error;
      }
    }
  }

  private async setDrain(
    api: DockerApi,
    node: SwarmNode,
    taskKey: string,
    ctx: TaskContext,
  ): Promise<{ id: string; previous: SwarmNodeSpec['Availability'] }> {
    const labels = node.Spec.Labels ?? {};
    // A drain this task set before a server restart: its label holds the availability to restore.
    const ours = labels[Label.task] === taskKey;
    const previous = ours
      ? ((labels[Label.previousAvailability] as SwarmNodeSpec['Availability'] | undefined) ?? 'active')
      : node.Spec.Availability;
    if (!ours) {
      await this.updateNode(
        api,
        node.ID,
        (s) => ({
          ...s,
          Availability: 'drain',
          Labels: { ...(s.Labels ?? {}), [Label.task]: taskKey, [Label.previousAvailability]: previous },
        }),
        ctx.signal,
      );
      ctx.log(`drain: availability ${previous} → drain`);
    } else {
      ctx.log(`drain: the node was drained by this task before a restart (availability was ${previous})`);
    }
    return { id: node.ID, previous };
  }

  private async waitMoved(api: DockerApi, id: string, timeoutSeconds: number, ctx: TaskContext): Promise<void> {
    const started = this.clock.now();
    const deadline = started + timeoutSeconds * 1000;
    const affected = new Set<string>();
    let lastReport = '';
    for (;;) {
      const [tasks, services] = await Promise.all([
        api.json<SwarmTask[]>('GET', `/tasks?filters=${encodeURIComponent(JSON.stringify({ node: [id] }))}`, { signal: ctx.signal }),
        api.json<SwarmService[]>('GET', '/services', { signal: ctx.signal }),
      ]);
      const byId = new Map(services.map((s) => [s.ID, s]));
      const isGlobal = (t: SwarmTask) => {
        const mode = byId.get(t.ServiceID)?.Spec.Mode;
        return mode?.Global !== undefined || mode?.GlobalJob !== undefined;
      };
      const staying = tasks.filter((t) => ACTIVE_TASK_STATES.has(t.Status.State) && !isGlobal(t));
      for (const t of staying) affected.add(t.ServiceID);
      // Moved: nothing but global tasks left here, and the services that had a task here
      // run their replicas elsewhere again.
      const short = staying.length === 0 ? await this.servicesShort(api, [...affected], byId, ctx.signal) : [];
      if (staying.length === 0 && short.length === 0) {
        ctx.log(`drain: tasks moved after ${((this.clock.now() - started) / 1000).toFixed(1)} s`);
        return;
      }
      const report =
        staying.length > 0 ? `${staying.length} task(s) still on the node` : `waiting for ${short.join(', ')} to run elsewhere`;
      if (report !== lastReport) ctx.log(`drain: ${report}`);
      lastReport = report;
      if (this.clock.now() >= deadline) {
        if (staying.length > 0) {
          throw new SwarmStepError(
            'drain',
            `${staying.length} task(s) did not leave the node within ${timeoutSeconds} s (drain.timeoutSeconds); check placement constraints and free capacity on the other nodes`,
          );
        }
        ctx.log(
          `drain: after ${timeoutSeconds} s ${short.join(', ')} still short of replicas elsewhere; going on (the node's own tasks are gone)`,
        );
        return;
      }
      await sleep(this.clock, this.pollIntervalMs, ctx.signal);
    }
  }

  /** Replicated services among `ids` whose running tasks are fewer than their replicas. */
  private async servicesShort(api: DockerApi, ids: string[], byId: Map<string, SwarmService>, signal: AbortSignal): Promise<string[]> {
    const short: string[] = [];
    for (const id of ids) {
      const service = byId.get(id);
      const replicas = service?.Spec.Mode?.Replicated?.Replicas;
      if (service === undefined || replicas === undefined) continue;
      const tasks = await api.json<SwarmTask[]>(
        'GET',
        `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [id], 'desired-state': ['running'] }))}`,
        { signal },
      );
      const running = tasks.filter((t) => t.Status.State === 'running').length;
      if (running < replicas) short.push(`${service.Spec.Name} (${running}/${replicas})`);
    }
    return short;
  }

  private runAgent(spec: NodeTaskSpec, ctx: TaskContext): Promise<NodeTaskOutcome> {
    return upgradeThroughAgent(this.agents, spec, ctx);
  }

  /** Polls the swarm until the node is Ready on `version` (and a manager is reachable again). */
  private async verifyEngine(api: DockerApi, id: string, version: string, timeoutSeconds: number, ctx: TaskContext): Promise<void> {
    const started = this.clock.now();
    const deadline = started + timeoutSeconds * 1000;
    let last = 'no answer from a manager yet';
    for (;;) {
      try {
        const node = await api.json<SwarmNode>('GET', `/nodes/${encodeURIComponent(id)}`, { signal: ctx.signal });
        const engine = node.Description?.Engine?.EngineVersion ?? 'unknown';
        const reachable = node.ManagerStatus === undefined || node.ManagerStatus.Reachability === 'reachable';
        if (node.Status.State === 'ready' && reachable && isValidVersion(engine) && sameRelease(engine, version)) {
          ctx.log(
            `verify: the swarm reports ${nodeName(node)} ready on Docker Engine ${engine}${node.ManagerStatus ? ' and reachable as a manager' : ''} (${((this.clock.now() - started) / 1000).toFixed(1)} s)`,
          );
          return;
        }
        last = `state ${node.Status.State}, engine ${engine}${node.ManagerStatus ? `, manager ${node.ManagerStatus.Reachability}` : ''}`;
      } catch (error) {
        if (ctx.signal.aborted) throw error;
        last = errorMessage(error);
      }
      if (this.clock.now() >= deadline) {
        throw new SwarmStepError('verify', `the swarm does not report the node ready on ${version} after ${timeoutSeconds} s (${last})`);
      }
      await sleep(this.clock, this.pollIntervalMs, ctx.signal);
    }
  }

  private async restore(api: DockerApi, id: string, previous: SwarmNodeSpec['Availability'], ctx: TaskContext): Promise<void> {
    await this.updateNode(
      api,
      id,
      (s) => {
        const labels = { ...(s.Labels ?? {}) };
        delete labels[Label.task];
        delete labels[Label.previousAvailability];
        return { ...s, Availability: previous, Labels: labels };
      },
      ctx.signal,
    );
    ctx.log(`restore: availability drain → ${previous}`);
  }

  /** After a failed agent task: back to the previous availability if the node's engine is healthy, else left drained. */
  private async restoreAfterFailure(
    api: DockerApi,
    drained: { id: string; previous: SwarmNodeSpec['Availability'] },
    spec: NodeTaskSpec,
    ctx: TaskContext,
  ): Promise<void> {
    try {
      const node = await api.json<SwarmNode>('GET', `/nodes/${encodeURIComponent(drained.id)}`, { signal: ctx.signal });
      if (node.Status.State === 'ready') {
        await this.restore(api, drained.id, drained.previous, ctx);
        return;
      }
      ctx.log(
        `the node stays drained (its state is ${node.Status.State}); set its availability back to ${drained.previous} once it is healthy`,
      );
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      ctx.log(`the node stays drained: ${errorMessage(error)}`);
    }
    this.logger.warn({ node: spec.node.name }, 'swarm node left drained after a failed upgrade');
  }

  snapshotNode(_cluster: ClusterRecord, spec: SnapshotSpec, ctx: TaskContext): Promise<SnapshotOutcome> {
    return snapshotThroughAgent(this.agents, spec, ctx);
  }
}
