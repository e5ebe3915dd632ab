import type { ClusterKind, Component, ComponentVersions, NodeRole } from '../domain/components.js';
import type { UpshiftEvent } from '../domain/events.js';
import type { NodeTaskState } from '../domain/model.js';
import type { PauseReason, UpgradeState } from '../domain/upgrade-state.js';

/**
 * The REST API's objects as the CLI reads them (SPEC.md, "REST API contract"). The CLI
 * is a client of the HTTP API: these describe the wire format, and JSON/YAML output
 * prints what the server sent, untouched.
 */

export interface ComponentSummaryView {
  versions: Record<string, number>;
  latest: string | null;
  upgradable: boolean;
}

export interface ClusterView {
  id: string;
  name: string;
  kind: ClusterKind;
  status: string;
  statusText: string;
  nodeCount: number;
  activeUpgradeId: string | null;
  activeUpgradeState?: UpgradeState | null;
  components: Partial<Record<Component, ComponentSummaryView>>;
  createdAt?: string;
}

/** A new join token and the commands that use it (`POST /clusters/{id}/join-tokens`, and `POST /clusters` for hosts and swarm). */
export interface JoinTokenView {
  joinToken: string;
  expiresAt: string;
  singleUse: boolean;
  /** sha256 of the agent file the server hands out; null when the server has no agent bundle built. */
  agentSha256: string | null;
  joinCommand: string;
  agentCommand: string;
}

/** The answer to `POST /clusters/{id}/nodes/{nodeId}/reset`. */
export interface NodeResetView {
  node: NodeView;
  cluster: string;
  revokedCredentials: number;
  failedTasks: string[];
}

export interface NodeView {
  id: string;
  name: string;
  role: NodeRole;
  status: string;
  versions: ComponentVersions;
  createdAt?: string;
}

export interface BatchView {
  index: number;
  size: number;
  state: 'running' | 'succeeded' | 'failed';
  /** Node ids. */
  nodes: string[];
  startedAt: string;
  finishedAt: string | null;
}

export interface SnapshotCounts {
  total: number;
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
}

export interface UpgradeView {
  id: string;
  clusterId: string;
  clusterName?: string | null;
  component: Component;
  toVersion: string;
  state: UpgradeState;
  statusText?: string;
  pauseReason: PauseReason | null;
  createdAt: string;
  createdBy?: string;
  pausedAt: string | null;
  finishedAt: string | null;
  /** While Paused: when the paused TTL cancels the upgrade. */
  autoCancelAt?: string | null;
  nextBatchAt?: string | null;
  snapshot?: 'none' | 'before';
  policy?: { maxBatchPercent: number; soakSeconds: number };
  cap?: number;
  nodes: { total: number } & Record<NodeTaskState, number>;
  batches: BatchView[];
  snapshots?: SnapshotCounts | null;
}

export interface NodeTaskView {
  nodeId: string;
  nodeName: string;
  role?: NodeRole;
  state: NodeTaskState;
  batchIndex: number | null;
  attempt: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  fromVersion: string | null;
  toVersion: string;
  snapshot?: { state: string; ref: string | null; error: string | null } | null;
}

export interface PlanView {
  component?: Component;
  toVersion?: string;
  total?: number;
  cap?: number;
  batches: string[][];
}

export interface ItemList<T> {
  items: T[];
}

/**
 * One page of a list that grows with the fleet (`/clusters/{id}/nodes`,
 * `/upgrades/{id}/nodes`): ask again with `?cursor=nextCursor` until it is null.
 */
export interface Page<T> extends ItemList<T> {
  nextCursor: string | null;
}

export interface EventPage {
  items: UpshiftEvent[];
  next: string | null;
}

export type { UpshiftEvent };
