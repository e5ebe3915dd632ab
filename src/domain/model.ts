import type { ClusterKind, Component, ComponentVersions, NodeRole } from './components.js';
import type { PauseReason, UpgradeState } from './upgrade-state.js';

/** Timestamps are ISO-8601 strings in UTC everywhere: in the database and in the API. */
export type Timestamp = string;

/** The `simulation` object of a simulated cluster (spec, POST /clusters). */
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
  createdAt: Timestamp;
}

export interface NodeRecord {
  id: string;
  clusterId: string;
  name: string;
  role: NodeRole;
  status: string;
  versions: ComponentVersions;
  createdAt: Timestamp;
}

export interface UpgradePolicy {
  maxBatchPercent: number;
  soakSeconds: number;
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
  pauseReason: PauseReason | null;
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
