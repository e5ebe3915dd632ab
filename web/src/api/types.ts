/** The API's representations (see the spec's REST contract and src/server/views.ts). */

export const componentIds = ['agent', 'docker', 'containerd', 'sandboxed-runtime'] as const;
export type ComponentId = (typeof componentIds)[number];
/** The runtime components: the ones gated on an up-to-date agent. */
export const runtimeComponents: readonly ComponentId[] = ['docker', 'containerd', 'sandboxed-runtime'];

export const componentName: Record<ComponentId, string> = {
  agent: 'Agent',
  docker: 'Docker-Engine',
  containerd: 'containerd',
  'sandboxed-runtime': 'Sandboxed-Container',
};

export const upgradeStates = ['BackingUp', 'SnapshotFailed', 'Upgrading', 'Paused', 'Canceled', 'Completed'] as const;
export type UpgradeState = (typeof upgradeStates)[number];
export const activeStates: readonly UpgradeState[] = ['BackingUp', 'SnapshotFailed', 'Upgrading', 'Paused'];

export type ClusterKind = 'simulated' | 'swarm' | 'hosts' | 'kubernetes';
export type ClusterStatus = 'Running' | 'Upgrading' | 'Unavailable';

export interface ComponentSummary {
  versions: Record<string, number>;
  latest: string | null;
  upgradable: boolean;
}

export interface Cluster {
  id: string;
  name: string;
  kind: ClusterKind;
  status: ClusterStatus;
  statusText: string;
  nodeCount: number;
  activeUpgradeId: string | null;
  activeUpgradeState?: UpgradeState | null;
  components: Record<ComponentId, ComponentSummary>;
  createdAt?: string;
}

export interface ClusterNode {
  id: string;
  name: string;
  role: 'manager' | 'worker';
  status: string;
  versions: Partial<Record<ComponentId, string>>;
}

/**
 * One page of a list that grows with the fleet (a cluster's nodes, an upgrade's nodes):
 * the rows after `?cursor=`, and the cursor of the rows after these (null on the last page).
 */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Where a page starts (`null`: the first) and how many rows it holds at most (1 to 5,000). */
export interface PageRequest {
  cursor: string | null;
  limit: number;
}

export type PauseReason = { kind: 'user'; actor: string; message: string } | { kind: 'error'; message: string; nodeId: string | null };

export type BatchState = 'running' | 'succeeded' | 'failed';
export interface Batch {
  index: number;
  size: number;
  state: BatchState;
  nodes: string[];
  startedAt: string | null;
  finishedAt: string | null;
}

export type NodeTaskState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';
export const nodeTaskStates: readonly NodeTaskState[] = ['pending', 'running', 'succeeded', 'failed', 'skipped'];

export interface Upgrade {
  id: string;
  clusterId: string;
  clusterName?: string | null;
  component: ComponentId;
  toVersion: string;
  state: UpgradeState;
  statusText?: string;
  pauseReason: PauseReason | null;
  createdAt: string;
  createdBy?: string;
  pausedAt: string | null;
  finishedAt: string | null;
  autoCancelAt?: string | null;
  nextBatchAt?: string | null;
  snapshot?: 'none' | 'before';
  policy?: { maxBatchPercent: number; soakSeconds: number };
  cap?: number;
  nodes: { total: number } & Record<NodeTaskState, number>;
  batches: Batch[];
  snapshots?: { total: number; pending: number; running: number; succeeded: number; failed: number } | null;
}

export interface NodeTask {
  nodeId: string;
  nodeName: string;
  role?: 'manager' | 'worker';
  state: NodeTaskState;
  batchIndex: number | null;
  attempt: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  fromVersion: string | null;
  toVersion: string;
  snapshot?: { state: 'pending' | 'running' | 'succeeded' | 'failed'; ref: string | null; error: string | null } | null;
}

export interface UpshiftEvent {
  id: string;
  at: string;
  type: string;
  actor: string;
  clusterId: string | null;
  upgradeId: string | null;
  nodeId: string | null;
  message: string;
  data?: Record<string, unknown>;
}

export interface Catalog {
  components: Record<ComponentId, { latest: string | null; versions: { version: string; notes: string | null; methods: string[] }[] }>;
}

export interface Plan {
  component?: string;
  toVersion?: string;
  total?: number;
  cap?: number;
  batches: string[][];
}

export interface UpgradeRequest {
  component: ComponentId;
  toVersion?: string;
  snapshot?: 'none' | 'before';
  policy?: { maxBatchPercent?: number; soakSeconds?: number };
}

/** The event types the spec names, and the extra ones the server emits; for the Events filter. */
export const eventTypes = [
  'upgrade.started',
  'upgrade.paused',
  'upgrade.auto_paused',
  'upgrade.resumed',
  'upgrade.continued',
  'upgrade.snapshot_failed',
  'upgrade.canceled',
  'upgrade.auto_canceled',
  'upgrade.completed',
  'upgrade.refused',
  'batch.started',
  'batch.finished',
  'node.started',
  'node.succeeded',
  'node.failed',
  'node.skipped',
  'node.reattached',
  'snapshot.succeeded',
  'snapshot.failed',
  'cluster.created',
  'cluster.deleted',
  'cluster.node_added',
  'cluster.node_removed',
  'cluster.unavailable',
  'cluster.available',
  'request.refused',
  'agent.joined',
  'agent.join_refused',
  'node.credential_reset',
  'token.created',
  'token.revoked',
  'auth.failed',
  'audit.request',
] as const;

/** Who may do what: `viewer` reads; `operator` also plans and runs upgrades; `admin` also manages clusters and tokens. */
export const roles = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof roles)[number];

export interface Principal {
  name: string;
  role: Role;
}

/** The answer to a sign-in (`POST /session`); the session itself is an httpOnly cookie. */
export interface SessionInfo {
  csrfToken: string;
  expiresAt: string;
  principal: Principal;
}

export interface ApiToken {
  id: string;
  name: string;
  role: Role;
  createdBy: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

/** A new token: `token` is the secret, answered once. */
export interface CreatedToken {
  id: string;
  name: string;
  role: Role;
  token: string;
  expiresAt: string | null;
}
