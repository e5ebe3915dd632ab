import type { RecipeName, SnapshotTaskParams, TaskArtifact, TaskResultRequest, UpgradeTaskParams } from './agent-protocol.js';
import type { Catalog } from './catalog.js';
import type { ClusterKind, Component, ComponentVersions, NodeRole } from './components.js';
import type { ClusterRecord, NodeRecord } from './model.js';

/**
 * The seam between the engine and the world. One driver per cluster kind implements
 * `ClusterDriver`; the engine never knows which kind it is talking to.
 *
 * The contract that makes the engine restart-safe: `runNodeTask` is idempotent per
 * `taskKey`. Called for a task that the driver already started (before a crash of the
 * server, say), it reattaches and reports that run's outcome; it never starts the work
 * a second time. A Swarm or hosts driver keys the agent's task on it; a Kubernetes
 * driver names the executor pod after it; the simulated driver derives the outcome from
 * `startedAt`, so the simulation keeps running while the server is down.
 */
export interface NodeTaskSpec {
  /** Unique per node task and attempt: `${nodeTaskId}.${attempt}`. */
  taskKey: string;
  nodeTaskId: string;
  upgradeId: string;
  node: NodeRecord;
  component: Component;
  fromVersion: string | null;
  toVersion: string;
  attempt: number;
  /** When the engine marked the task running (persisted before the driver is called). */
  startedAt: string;
  catalog: Catalog;
}

export interface NodeTaskOutcome {
  result: 'succeeded' | 'failed';
  /** Why it failed, in words an operator can act on (the failing step and its output). */
  error?: string;
  /** What the node reports afterwards; the engine records it on the node. */
  versions?: ComponentVersions;
}

export interface TaskContext {
  /** Appends a line to the node task's log (lines are written a few at a time, see `logged`). */
  log(line: string): void;
  /**
   * Resolves once the lines logged so far are stored: before a driver hands the task to
   * another writer of the same log (an agent), so that the log keeps the order of events.
   */
  logged(): Promise<void>;
  /** Aborted when the server shuts down: stop waiting, the task will be reattached. */
  signal: AbortSignal;
}

export interface SnapshotSpec {
  snapshotId: string;
  upgradeId: string;
  node: NodeRecord;
  component: Component;
}

export interface SnapshotOutcome {
  result: 'succeeded' | 'failed';
  ref?: string;
  error?: string;
}

export interface InventoryNode {
  name: string;
  role: NodeRole;
  status: string;
  versions: ComponentVersions;
}

export type InventoryResult = { reachable: true; nodes: InventoryNode[] } | { reachable: false; reason: string };

/** A cluster's secrets (a kubeconfig, an Engine TLS key), decrypted on demand for its driver. */
export interface SecretReader {
  read(clusterId: string, name: string): Promise<string | undefined>;
}

export interface ClusterDriver {
  readonly kind: ClusterKind;
  /**
   * Top-level fields of a create request that are secrets: they are taken out before
   * `validateConfig`, checked by `validateSecrets`, stored encrypted, never returned by
   * the API, and read back through a `SecretReader`.
   */
  readonly secretFields?: readonly string[];
  /** `config` is what `validateConfig` returned, for rules that tie the two (a tcp:// manager needs its TLS key). */
  validateSecrets?(secrets: Record<string, string>, config: Record<string, unknown>): void;
  /**
   * Checks and normalises the kind-specific part of a create request. Throws a
   * VALIDATION_FAILED error that names the offending field.
   */
  validateConfig(raw: Record<string, unknown>): Record<string, unknown>;
  /** The nodes a new cluster starts with (a simulated cluster creates them). */
  initialNodes(cluster: ClusterRecord): InventoryNode[];
  /** Whether nodes can be added and removed through the API (true for simulated). */
  readonly manualMembership: boolean;
  /** Versions of a node added by hand. */
  newNodeVersions(cluster: ClusterRecord): ComponentVersions;
  /** The cluster as it reports itself now; `undefined` when the store is the truth (simulated). */
  inventory(cluster: ClusterRecord, signal: AbortSignal): Promise<InventoryResult | undefined>;
  runNodeTask(cluster: ClusterRecord, spec: NodeTaskSpec, ctx: TaskContext): Promise<NodeTaskOutcome>;
  snapshotNode(cluster: ClusterRecord, spec: SnapshotSpec, ctx: TaskContext): Promise<SnapshotOutcome>;
  /** Kubernetes: the manifests the driver would create for these nodes, for review (`plan --output manifests`). */
  renderManifests?(
    cluster: ClusterRecord,
    plan: { upgradeId: string; component: Component; toVersion: string; nodes: NodeRecord[]; catalog: Catalog },
  ): Promise<unknown[]>;
  /** Kubernetes: the failed executor pods of the upgrade still in the cluster (kept for troubleshooting); delete them when asked. */
  failedPods?(cluster: ClusterRecord, upgradeId: string): Promise<FailedPod[]>;
  deleteFailedPods?(cluster: ClusterRecord, upgradeId: string): Promise<void>;
  /** Swarm: every replicated service with its desired replicas and running tasks (the `swarm-services` health gate). */
  serviceReplicas?(cluster: ClusterRecord): Promise<ServiceReplicas[]>;
}

/** A replicated service as a health gate reads it: how many tasks it wants running, and how many run. */
export interface ServiceReplicas {
  name: string;
  desired: number;
  running: number;
}

/** A failed executor pod, as an operator looks it up with kubectl before deleting it. */
export interface FailedPod {
  namespace: string;
  name: string;
  /** The Kubernetes node it ran on. */
  node: string | null;
  /** The container's terminated reason and exit code, or the pod's own reason. */
  reason: string | null;
  finishedAt: string | null;
}

/** Time, injectable so that a test can pass 15 days in a millisecond. */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const handle = setTimeout(fn, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    return () => clearTimeout(handle);
  },
};

/**
 * Calls `fn` at the next whole multiple of `periodMs` on `clock` (ms since the epoch).
 * Periodic work that is due on the same multiples (a second, a quarter of one) runs in
 * one wake-up of the process: on an idle server each wake-up costs far more than the
 * little work it does, the caches being cold (docs/design.md §9).
 */
export function setAlignedTimer(clock: Clock, periodMs: number, fn: () => void): () => void {
  return clock.setTimer(periodMs - (clock.now() % periodMs), fn);
}

/** Resolves after `ms` on `clock`, or rejects when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = clock.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * How drivers of kinds with agents (hosts, swarm) reach a node's agent: a task is
 * queued under its idempotent key and its result awaited. The server's agent routes
 * deliver it and take the result; the engine never talks to agents directly.
 */
export interface AgentTaskRequest {
  taskKey: string;
  nodeId: string;
  upgradeId: string | null;
  nodeTaskId: string | null;
  recipe: RecipeName;
  params: UpgradeTaskParams | SnapshotTaskParams;
}

export interface AgentPort {
  /** Queues the task unless it exists, and resolves with its result (or a timeout failure). */
  runAgentTask(task: AgentTaskRequest, signal: AbortSignal): Promise<TaskResultRequest>;
  /** What a node can install `component` `version` from: mirror files first, then the catalog's methods. */
  artifactsFor(component: Component, version: string, catalog: Catalog): Promise<TaskArtifact[]>;
}
