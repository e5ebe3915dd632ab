import type { V1Pod } from '@kubernetes/client-node';
import type { Catalog } from '../../domain/catalog.js';
import type { Component } from '../../domain/components.js';
import { ErrorCode, UpshiftError, errorMessage, invalid } from '../../domain/errors.js';
import type { ClusterRecord, NodeRecord } from '../../domain/model.js';
import type {
  ClusterDriver,
  Clock,
  FailedPod,
  InventoryResult,
  InventoryNode,
  NodeTaskOutcome,
  NodeTaskSpec,
  SecretReader,
  SnapshotOutcome,
  TaskContext,
} from '../../domain/ports.js';
import { KubeClient, describeKubeError, isNotFound, kubeFailureReason, kubeconfigDigest, withDeadline } from './client.js';
import type { KubeconfigPolicy, KubernetesClusterConfig } from './config.js';
import { KUBECONFIG_FIELD, clusterConfig, parseKubeconfig, validateKubernetesConfig } from './config.js';
import { ExecutorRun } from './executor.js';
import { Labels, MANAGED_BY, executorPodManifest, imageArtifact, labelSafe, missingImageMessage, namespaceManifest } from './manifests.js';
import type { DriverLogger } from './node-watch.js';
import { NodeWatch } from './node-watch.js';
import { toInventoryNode } from './nodes.js';

export interface KubernetesDriverOptions {
  /** Reads the cluster's kubeconfig (`secrets.read(clusterId, 'kubeconfig')`), decrypted on demand. */
  secrets: SecretReader;
  clock: Clock;
  logger?: DriverLogger;
  /** Between reads of an executor pod's phase and of a node's reported version. Default 2000. */
  pollIntervalMs?: number;
  /** Between eviction attempts that a PodDisruptionBudget refused (429). Default 5000, as kubectl drain. */
  drainRetryMs?: number;
  /** Deadline of one API call. Default 30000. */
  requestTimeoutMs?: number;
  /** `timeoutSeconds` of each node watch request; the watch reconnects after it. Default 300. */
  watchTimeoutSeconds?: number;
  /** A cluster's node watch stops when its inventory was not asked for this long. Default 600000. */
  watchIdleMs?: number;
  /** Beyond a pod's deadline, how long to wait for a kubelet that reports nothing. Default 120000. */
  stuckGraceMs?: number;
  /** How long the log stream may take to deliver its tail after the pod ended. Default 5000. */
  logTailMs?: number;
  /** The operator's `--allow-link-local-targets`: API servers at link-local or metadata addresses. Default false. */
  allowLinkLocalTargets?: boolean;
}

const silent: DriverLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export const SNAPSHOTS_UNSUPPORTED =
  'snapshots are not supported for kubernetes clusters; take volume snapshots with your CSI driver, then continue or quit the upgrade';

/**
 * Kubernetes clusters, reached with a kubeconfig stored as an encrypted secret. Nodes
 * come from the Node API (kept current by a watch); each node task is one privileged
 * executor pod in the cluster's namespace (`runtime-upgrade` by default), pinned to its
 * node, running the installer image the catalog names for the target version. The pod
 * is named after the task key, so the work is never started twice; failed pods stay for
 * troubleshooting and block a resume until deleted (`deleteFailedPods`).
 *
 * Nothing in the namespace is touched but the executor pods Upshift created, and of
 * those only the failed ones of an upgrade (on request) and the succeeded ones.
 */
export class KubernetesDriver implements ClusterDriver {
  readonly kind = 'kubernetes' as const;
  readonly manualMembership = false;
  readonly secretFields = [KUBECONFIG_FIELD] as const;

  private readonly secrets: SecretReader;
  private readonly clock: Clock;
  private readonly logger: DriverLogger;
  private readonly tuning: Required<Omit<KubernetesDriverOptions, 'secrets' | 'clock' | 'logger' | 'allowLinkLocalTargets'>>;
  private readonly policy: KubeconfigPolicy;
  private readonly clients = new Map<string, KubeClient>();
  private readonly watches = new Map<string, NodeWatch>();
  private closed = false;

  constructor(options: KubernetesDriverOptions) {
    this.secrets = options.secrets;
    this.clock = options.clock;
    this.logger = options.logger ?? silent;
    this.policy = { allowLinkLocalTargets: options.allowLinkLocalTargets ?? false };
    this.tuning = {
      pollIntervalMs: options.pollIntervalMs ?? 2000,
      drainRetryMs: options.drainRetryMs ?? 5000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? 300,
      watchIdleMs: options.watchIdleMs ?? 600_000,
      stuckGraceMs: options.stuckGraceMs ?? 120_000,
      logTailMs: options.logTailMs ?? 5000,
    };
  }

  validateSecrets(secrets: Record<string, string>): void {
    const text = secrets[KUBECONFIG_FIELD];
    if (text === undefined) {
      throw invalid('kubeconfig is required for a kubernetes cluster: pass the kubeconfig file’s content as a string', {
        field: KUBECONFIG_FIELD,
      });
    }
    parseKubeconfig(text, this.policy);
  }

  validateConfig(raw: Record<string, unknown>): Record<string, unknown> {
    return { ...validateKubernetesConfig(raw) };
  }

  initialNodes(): InventoryNode[] {
    return [];
  }

  newNodeVersions(): Record<string, never> {
    return {};
  }

  /**
   * The cluster's API client, rebuilt when its stored kubeconfig changed. The stored
   * text is checked again on every rebuild, so a kubeconfig stored before the current
   * rules (or before the operator changed `--allow-link-local-targets`) is refused here
   * with the same message as at creation, and nothing it names is run or read.
   */
  private async client(cluster: ClusterRecord): Promise<KubeClient> {
    const text = await this.secrets.read(cluster.id, KUBECONFIG_FIELD);
    if (text === undefined) {
      throw new UpshiftError(
        ErrorCode.CLUSTER_UNAVAILABLE,
        `no kubeconfig is stored for cluster ${cluster.name}: delete it and create it again with its kubeconfig`,
      );
    }
    const cached = this.clients.get(cluster.id);
    if (cached && cached.digest === kubeconfigDigest(text)) return cached;
    let client: KubeClient;
    try {
      client = KubeClient.fromText(text, this.policy);
    } catch (error) {
      throw new UpshiftError(
        ErrorCode.CLUSTER_UNAVAILABLE,
        `the stored ${errorMessage(error)}; delete cluster ${cluster.name} and create it again with an accepted kubeconfig`,
        { cause: error },
      );
    }
    this.clients.set(cluster.id, client);
    return client;
  }

  private watchFor(cluster: ClusterRecord, client: KubeClient): NodeWatch {
    const existing = this.watches.get(cluster.id);
    if (existing && !existing.isStopped && existing.digest === client.digest) return existing;
    existing?.stop();
    const watch = new NodeWatch(client, {
      clock: this.clock,
      logger: this.logger,
      clusterId: cluster.id,
      watchTimeoutSeconds: this.tuning.watchTimeoutSeconds,
      idleMs: this.tuning.watchIdleMs,
      requestTimeoutMs: this.tuning.requestTimeoutMs,
    });
    this.watches.set(cluster.id, watch);
    return watch;
  }

  /** The node watch of a cluster, for tests and diagnostics. */
  nodeWatch(clusterId: string): NodeWatch | undefined {
    return this.watches.get(clusterId);
  }

  async inventory(cluster: ClusterRecord, signal: AbortSignal): Promise<InventoryResult> {
    const config = clusterConfig(cluster.config);
    let client: KubeClient;
    try {
      client = await this.client(cluster);
    } catch (error) {
      return { reachable: false, reason: error instanceof Error ? error.message : String(error) };
    }
    if (this.closed) return { reachable: false, reason: 'the server is shutting down' };
    const watch = this.watchFor(cluster, client);
    watch.touch();
    try {
      const nodes = watch.fresh() ?? (await watch.list(signal));
      return { reachable: true, nodes: nodes.map((n) => toInventoryNode(n, config.runtimeLabel)).filter((n) => n.name !== '') };
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      return { reachable: false, reason: kubeFailureReason(error, client.target, 'GET /api/v1/nodes') };
    }
  }

  async runNodeTask(cluster: ClusterRecord, spec: NodeTaskSpec, ctx: TaskContext): Promise<NodeTaskOutcome> {
    const config = clusterConfig(cluster.config);
    const client = await this.client(cluster);
    return new ExecutorRun(client, config, spec, ctx, { clock: this.clock, ...this.tuning }).run();
  }

  async snapshotNode(): Promise<SnapshotOutcome> {
    return { result: 'failed', error: SNAPSHOTS_UNSUPPORTED };
  }

  /**
   * What `runNodeTask` would create for these nodes: the namespace (created only when
   * missing) and one executor pod per node. Pod names are derived from task keys,
   * which exist only once the upgrade starts, so the planned names differ from the
   * real ones; everything else is what will be created. Nodes are read from the
   * cluster for their uids (the pods' owner).
   */
  async renderManifests(
    cluster: ClusterRecord,
    plan: { upgradeId: string; component: Component; toVersion: string; nodes: NodeRecord[]; catalog: Catalog },
  ): Promise<unknown[]> {
    const config = clusterConfig(cluster.config);
    const artifact = imageArtifact(plan.catalog, plan.component, plan.toVersion);
    if (!artifact) throw invalid(missingImageMessage(plan.component, plan.toVersion), { field: 'toVersion' });
    const client = await this.client(cluster);
    const uids = new Map<string, string>();
    try {
      const list = await withDeadline(client.core.listNode(), this.tuning.requestTimeoutMs, 'listing nodes');
      for (const node of list.items) if (node.metadata?.name && node.metadata.uid) uids.set(node.metadata.name, node.metadata.uid);
    } catch (error) {
      throw new UpshiftError(
        ErrorCode.CLUSTER_UNAVAILABLE,
        `cluster ${cluster.name} cannot be reached: ${kubeFailureReason(error, client.target, 'GET /api/v1/nodes')}`,
        {
          cause: error,
          retryable: true,
        },
      );
    }
    return [
      namespaceManifest(config.namespace),
      ...plan.nodes.map((node) =>
        executorPodManifest({
          config,
          taskKey: `${plan.upgradeId}.${node.id}.1`,
          upgradeId: plan.upgradeId,
          nodeId: node.id,
          nodeName: node.name,
          nodeUid: uids.get(node.name),
          component: plan.component,
          fromVersion: node.versions[plan.component] ?? null,
          toVersion: plan.toVersion,
          attempt: 1,
          artifact,
        }),
      ),
    ];
  }

  private async failedPodsOf(
    cluster: ClusterRecord,
    upgradeId: string,
  ): Promise<{ client: KubeClient; config: KubernetesClusterConfig; pods: V1Pod[] }> {
    const config = clusterConfig(cluster.config);
    const client = await this.client(cluster);
    try {
      const list = await withDeadline(
        client.core.listNamespacedPod({
          namespace: config.namespace,
          labelSelector: `${Labels.managedBy}=${MANAGED_BY},${Labels.upgradeId}=${labelSafe(upgradeId)}`,
        }),
        this.tuning.requestTimeoutMs,
        `listing the executor pods of upgrade ${upgradeId}`,
      );
      return { client, config, pods: list.items.filter((p) => p.status?.phase === 'Failed') };
    } catch (error) {
      throw new UpshiftError(
        ErrorCode.CLUSTER_UNAVAILABLE,
        `cannot check cluster ${cluster.name} for failed executor pods: ${describeKubeError(error)}; try again when it is reachable`,
        { cause: error, retryable: true },
      );
    }
  }

  async failedPods(cluster: ClusterRecord, upgradeId: string): Promise<FailedPod[]> {
    const { config, pods } = await this.failedPodsOf(cluster, upgradeId);
    return pods.map((pod) => {
      const terminated = pod.status?.containerStatuses?.map((c) => c.state?.terminated).find((t) => t !== undefined);
      const reason = terminated
        ? `${terminated.reason ?? 'terminated'}, exit code ${terminated.exitCode}`
        : (pod.status?.reason ?? pod.status?.message ?? null);
      const finished = terminated?.finishedAt;
      return {
        namespace: pod.metadata?.namespace ?? config.namespace,
        name: pod.metadata?.name ?? '',
        node: pod.spec?.nodeName ?? null,
        reason,
        finishedAt: finished ? new Date(finished).toISOString() : null,
      };
    });
  }

  /** Deletes this upgrade's failed executor pods, and nothing else. */
  async deleteFailedPods(cluster: ClusterRecord, upgradeId: string): Promise<void> {
    const { client, config, pods } = await this.failedPodsOf(cluster, upgradeId);
    for (const pod of pods) {
      const name = pod.metadata?.name ?? '';
      try {
        await withDeadline(
          client.core.deleteNamespacedPod({ name, namespace: config.namespace }),
          this.tuning.requestTimeoutMs,
          `deleting pod ${config.namespace}/${name}`,
        );
        this.logger.info({ clusterId: cluster.id, upgradeId, pod: `${config.namespace}/${name}` }, 'deleted failed executor pod');
      } catch (error) {
        if (isNotFound(error)) continue;
        throw new UpshiftError(
          ErrorCode.CLUSTER_UNAVAILABLE,
          `failed executor pod ${config.namespace}/${name} could not be deleted: ${describeKubeError(error)}`,
          { cause: error, retryable: true },
        );
      }
    }
  }

  /** Stops every node watch; idempotent. The server calls it on shutdown. */
  async close(): Promise<void> {
    this.closed = true;
    for (const watch of this.watches.values()) watch.stop();
    this.watches.clear();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
