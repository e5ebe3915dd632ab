import type { TaskResultRequest } from './agent-protocol.js';
import type { ClusterKind, Component, ComponentVersions, NodeRole } from './components.js';
import type { MaintenanceWindow } from './maintenance-window.js';
import type { AgentTaskRequest } from './ports.js';
import type { Gate } from './gates.js';
import type { EndReason, PauseReason, UpgradeState } from './upgrade-state.js';

/** Timestamps are ISO-8601 strings in UTC everywhere: in the database and in the API. */
export type Timestamp = string;

/** The `simulation` object of a simulated cluster (POST /api/v1/clusters). */
export interface SimulationConfig {
  nodes: number;
  managers: number;
  versions: ComponentVersions;
  upgradeSeconds: number;
  failNodes: string[];
  snapshotFailNodes: string[];
}

export interface ClusterRecord {
  id: string;
  name: string;
  kind: ClusterKind;
  /** Kind-specific settings (the simulation object, an Engine endpoint, …); never secrets. */
  config: Record<string, unknown>;
  /** Set by inventory sync when the cluster could not be reached. */
  unavailableReason: string | null;
  /** The default maintenance window of its upgrades (an upgrade's `policy.window` overrides it). */
  window: MaintenanceWindow | null;
  createdAt: Timestamp;
}

export interface NodeRecord {
  id: string;
  clusterId: string;
  name: string;
  role: NodeRole;
  status: string;
  versions: ComponentVersions;
  /**
   * The distribution the node's agent reports (`debian-13`, see agent/facts.ts); null for
   * nodes without an agent or whose agent does not report one: they do not restrict which
   * catalog versions are offered (domain/installability.ts).
   */
  distribution: string | null;
  createdAt: Timestamp;
}

export interface UpgradePolicy {
  maxBatchPercent: number;
  soakSeconds: number;
  /** When batches may start (docs/design.md, "Rollout guards"); absent or null: any time. */
  window?: MaintenanceWindow | null;
  /** Health gates checked before each batch (docs/design.md, "Rollout guards"); absent or empty: none. */
  gates?: Gate[];
}

/** Whether an upgrade snapshots every node before it touches any (`before`). */
export const snapshotModes = ['none', 'before'] as const;
export type SnapshotMode = (typeof snapshotModes)[number];

export interface UpgradeRecord {
  id: string;
  clusterId: string;
  component: Component;
  toVersion: string;
  state: UpgradeState;
  snapshot: SnapshotMode;
  policy: UpgradePolicy;
  /** Nodes that needed the upgrade when it started. */
  total: number;
  /** Largest batch: max(1, floor(total × maxBatchPercent / 100)). */
  cap: number;
  /** Index of the first batch after the latest start or resume; the ramp counts from it. */
  rampStart: number;
  /** Why it is paused, while it is `Paused`; cleared when it resumes or ends (then `endReason` tells). */
  pauseReason: PauseReason | null;
  /** Why it ended, once it is `Completed` or `Canceled`. */
  endReason: EndReason | null;
  createdBy: string;
  createdAt: Timestamp;
  pausedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  /** Soak: the next batch may not start before this moment. */
  nextBatchAt: Timestamp | null;
}

/** A node's part in one upgrade. */
export const NodeTaskState = {
  pending: 'pending',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  skipped: 'skipped',
} as const;
export type NodeTaskState = (typeof NodeTaskState)[keyof typeof NodeTaskState];
export const nodeTaskStates: readonly NodeTaskState[] = Object.values(NodeTaskState);

export interface NodeTaskRecord {
  id: string;
  upgradeId: string;
  nodeId: string;
  nodeName: string;
  role: NodeRole;
  state: NodeTaskState;
  batchIndex: number | null;
  /** 0 until first started; +1 at each start (a retry after resume is attempt 2). */
  attempt: number;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  error: string | null;
  fromVersion: string | null;
  toVersion: string;
}

export const BatchState = { running: 'running', succeeded: 'succeeded', failed: 'failed' } as const;
export type BatchState = (typeof BatchState)[keyof typeof BatchState];
export const batchStates: readonly BatchState[] = Object.values(BatchState);

export interface BatchRecord {
  upgradeId: string;
  index: number;
  size: number;
  state: BatchState;
  nodeIds: string[];
  startedAt: Timestamp;
  finishedAt: Timestamp | null;
}

export const SnapshotState = { pending: 'pending', running: 'running', succeeded: 'succeeded', failed: 'failed' } as const;
export type SnapshotState = (typeof SnapshotState)[keyof typeof SnapshotState];
export const snapshotStates: readonly SnapshotState[] = Object.values(SnapshotState);

export interface SnapshotRecord {
  id: string;
  upgradeId: string;
  nodeId: string;
  nodeName: string;
  state: SnapshotState;
  /** Provider's handle to restore from (a subvolume path, a cloud snapshot id, …). */
  ref: string | null;
  error: string | null;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
}

/** An API token as stored: its sha256, never the token itself (shown once when it is made). */
export interface ApiTokenRecord {
  id: string;
  name: string;
  role: string;
  tokenHash: string;
  createdBy: string;
  createdAt: Timestamp;
  expiresAt: Timestamp | null;
  revokedAt: Timestamp | null;
}

/** A console session as stored: hashes of its cookie and CSRF token, never the secrets. */
export interface SessionRecord {
  /** Public handle for admins (`upshift session revoke ID`). */
  id: string;
  sessionHash: string;
  csrfHash: string;
  principal: string;
  role: string;
  /** The API token it was opened with (a digest for the bootstrap admin token), if any. */
  tokenId: string | null;
  /** Client address that signed in. */
  address: string | null;
  createdAt: Timestamp;
  expiresAt: Timestamp;
}

/**
 * Whether a join token admits a join: `valid`, or why not. Single-use tokens are `used`
 * once a join spent them; revocation wins over everything else.
 */
export type JoinTokenState = 'valid' | 'expired' | 'used' | 'revoked';

export interface JoinTokenRecord {
  clusterId: string;
  expiresAt: Timestamp | null;
  singleUse: boolean;
  state: JoinTokenState;
  /** The node whose join spent a single-use token; null while unused (and for multi-use tokens). */
  usedByNode: string | null;
}

/** An agent task's life: queued → delivered (an agent polled it) → succeeded | failed (its result). */
export const AgentTaskState = { queued: 'queued', delivered: 'delivered', succeeded: 'succeeded', failed: 'failed' } as const;
export type AgentTaskState = (typeof AgentTaskState)[keyof typeof AgentTaskState];

/** A task queued for a node's agent under its idempotent key, and its result once reported. */
export interface AgentTaskRecord extends AgentTaskRequest {
  state: AgentTaskState;
  result: TaskResultRequest | null;
  createdAt: Timestamp;
  deliveredAt: Timestamp | null;
  finishedAt: Timestamp | null;
}

/** A file of the artifact mirror (its bytes are kept by sha256 beside the database). */
export interface ArtifactRecord {
  file: string;
  component: string;
  version: string;
  method: string;
  sha256: string;
  size: number;
  createdAt: Timestamp;
}
