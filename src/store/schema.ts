import type { Generated } from 'kysely';
import type { RecipeName } from '../domain/agent-protocol.js';
import type { ClusterKind, Component, NodeRole } from '../domain/components.js';
import type { EventType } from '../domain/events.js';
import type {
  AgentTaskState,
  ApiTokenRecord,
  ArtifactRecord,
  BatchState,
  NodeTaskState,
  SessionRecord,
  SnapshotState,
} from '../domain/model.js';
import type { UpgradeState } from '../domain/upgrade-state.js';
import type { DeliveryState, WebhookFormat } from '../domain/webhooks.js';

/**
 * Row types as stored, in the camelCase the repositories write: the query compiler
 * (camel-case.ts) writes `clusterId` as the column `cluster_id` and reads it back as
 * `clusterId`, so snake_case names exist only in the migrations and in raw SQL inside
 * `src/store/`. JSON columns are
 * text in both dialects (encoded and parsed by the repositories), timestamps are ISO-8601
 * text, so that both dialects behave alike. Columns that hold one of the domain's string
 * unions are typed as that union: what the repositories write is checked, what they read
 * is trusted (only they write these tables).
 */
export interface ClustersTable {
  id: string;
  name: string;
  kind: ClusterKind;
  config: string;
  unavailableReason: string | null;
  /** JSON of the default maintenance window, or null. */
  maintenanceWindow: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface NodesTable {
  facts: string | null;
  lastSeenAt: string | null;
  id: string;
  clusterId: string;
  name: string;
  role: NodeRole;
  status: string;
  versions: string;
  createdAt: string;
  updatedAt: string;
  /** `naturalSortKey(name)`: node lists are ordered and paged by it (migration 9). */
  sortKey: string;
  /** What the node's agent last reported (`debian-13`), null without one (migration 11). */
  distribution: string | null;
}

/**
 * How many nodes of a cluster run the same versions on the same distribution, kept by
 * triggers on `nodes` (migration 13) so that the cluster views read a few rows per cluster
 * instead of grouping every node. `distribution` is '' for none (a key column cannot be
 * null). `writer` is '' for the folded count; on a database with concurrent writers each
 * transaction adds its changes under its own id, and a reader sums the rows of a group.
 */
export interface ClusterVersionGroupsTable {
  clusterId: string;
  versions: string;
  distribution: string;
  writer: string;
  nodeCount: number;
}

/**
 * One row (id 1) whose revision moves with every write to what the cluster list shows,
 * kept by triggers where writes are serialised (SQLite; migration 13).
 */
export interface ClusterListRevisionTable {
  id: number;
  revision: number;
}

export interface UpgradesTable {
  id: string;
  clusterId: string;
  component: Component;
  toVersion: string;
  state: UpgradeState;
  snapshot: 'none' | 'before';
  policy: string;
  total: number;
  cap: number;
  rampStart: number;
  pauseReason: string | null;
  /** JSON of the domain's EndReason, once the upgrade ended (migration 10). */
  endReason: string | null;
  createdBy: string;
  createdAt: string;
  pausedAt: string | null;
  finishedAt: string | null;
  nextBatchAt: string | null;
  updatedAt: string;
  /** The replica driving this upgrade, until `leaseExpiresAt` by the database's clock (leases.ts). */
  leaseOwner: string | null;
  leaseExpiresAt: string | null;
}

export interface BatchesTable {
  upgradeId: string;
  idx: number;
  size: number;
  state: BatchState;
  nodeIds: string;
  startedAt: string;
  finishedAt: string | null;
}

export interface NodeTasksTable {
  id: string;
  upgradeId: string;
  nodeId: string;
  nodeName: string;
  role: NodeRole;
  sortKey: number;
  state: NodeTaskState;
  batchIndex: number | null;
  attempt: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  fromVersion: string | null;
  toVersion: string;
}

export interface SnapshotsTable {
  id: string;
  upgradeId: string;
  nodeId: string;
  nodeName: string;
  state: SnapshotState;
  ref: string | null;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface EventsTable {
  id: Generated<number>;
  at: string;
  type: EventType;
  actor: string;
  clusterId: string | null;
  upgradeId: string | null;
  nodeId: string | null;
  message: string;
  data: string | null;
}

export interface NodeLogsTable {
  id: Generated<number>;
  upgradeId: string;
  nodeTaskId: string;
  at: string;
  line: string;
  /** The line's size as served (`<at> <line>\n`, UTF-8); 0 on lines from before migration 8. */
  bytes: Generated<number>;
  /** 1 for a line of the log's tail, 0 for its head (store.appendLogs). */
  tail: Generated<number>;
}

/**
 * How much log a node task holds, kept beside its lines so that appending never sums
 * them: the head's and the tail's bytes as served and the bytes dropped between them.
 * A table of its own (not columns of nodeTasks) so that log appends lock no row the
 * engine updates.
 */
export interface NodeLogSizesTable {
  nodeTaskId: string;
  headBytes: Generated<number>;
  tailBytes: Generated<number>;
  droppedBytes: Generated<number>;
}

export interface JoinTokensTable {
  tokenHash: string;
  clusterId: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  /** 1: the token admits one join, then `usedAt` is set. */
  singleUse: Generated<number>;
  usedAt: string | null;
  usedByNode: string | null;
}

export interface AgentCredentialsTable {
  tokenHash: string;
  nodeId: string;
  createdAt: string;
  /** sha256 of the join secret the agent joined with; null: it sent none (an older agent). */
  joinSecretHash: string | null;
  /** The credential's first authenticated request; null: never used, so a retried join may replace it. */
  usedAt: string | null;
}

export interface AgentTasksTable {
  taskKey: string;
  nodeId: string;
  upgradeId: string | null;
  nodeTaskId: string | null;
  recipe: RecipeName;
  params: string;
  /** queued → delivered → succeeded | failed */
  state: AgentTaskState;
  result: string | null;
  createdAt: string;
  deliveredAt: string | null;
  finishedAt: string | null;
}

/** A row of the mirror's index is the domain's record, column for column. */
export type ArtifactsTable = ArtifactRecord;

export interface ClusterSecretsTable {
  clusterId: string;
  name: string;
  /** `v1:` + base64 of AES-256-GCM iv, tag and ciphertext; never plaintext. */
  sealed: string;
  createdAt: string;
}

/**
 * API tokens and console sessions are stored as the domain's records, column for column:
 * hashes of the secrets only (a token or session id is shown once and never stored).
 */
export type ApiTokensTable = ApiTokenRecord;
export type SessionsTable = SessionRecord;

export interface WebhooksTable {
  id: string;
  name: string;
  url: string;
  /** JSON array of the subscribed event types (also one row each in webhookSubscriptions). */
  events: string;
  format: WebhookFormat;
  /** The signing secret, sealed like cluster secrets (`v1:` + AES-256-GCM); never plaintext. */
  sealedSecret: string;
  createdBy: string;
  createdAt: string;
}

export interface WebhookSubscriptionsTable {
  webhookId: string;
  eventType: string;
}

/** The outbox (migration 12): one row per event and webhook, leased by the replica sending it. */
export interface WebhookDeliveriesTable {
  id: Generated<number>;
  webhookId: string;
  eventId: string;
  eventType: EventType;
  /** JSON of the event as recorded. */
  event: string;
  state: DeliveryState;
  attempts: Generated<number>;
  createdAt: string;
  nextAttemptAt: string | null;
  finishedAt: string | null;
  leaseOwner: string | null;
  leaseExpiresAt: string | null;
}

export interface WebhookAttemptsTable {
  id: Generated<number>;
  deliveryId: number;
  at: string;
  status: number | null;
  error: string | null;
  nextAttemptAt: string | null;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  appliedAt: string;
}

export interface Database {
  clusters: ClustersTable;
  nodes: NodesTable;
  clusterVersionGroups: ClusterVersionGroupsTable;
  clusterListRevision: ClusterListRevisionTable;
  upgrades: UpgradesTable;
  batches: BatchesTable;
  nodeTasks: NodeTasksTable;
  snapshots: SnapshotsTable;
  events: EventsTable;
  nodeLogs: NodeLogsTable;
  nodeLogSizes: NodeLogSizesTable;
  schemaMigrations: SchemaMigrationsTable;
  joinTokens: JoinTokensTable;
  agentCredentials: AgentCredentialsTable;
  agentTasks: AgentTasksTable;
  artifacts: ArtifactsTable;
  clusterSecrets: ClusterSecretsTable;
  apiTokens: ApiTokensTable;
  sessions: SessionsTable;
  webhooks: WebhooksTable;
  webhookSubscriptions: WebhookSubscriptionsTable;
  webhookDeliveries: WebhookDeliveriesTable;
  webhookAttempts: WebhookAttemptsTable;
}
