import type { Generated } from 'kysely';

/**
 * Row types as stored. JSON columns are text in both dialects (parsed by the
 * repositories), timestamps are ISO-8601 text, so that both dialects behave alike.
 */
export interface ClustersTable {
  id: string;
  name: string;
  kind: string;
  config: string;
  unavailable_reason: string | null;
  created_at: string;
  updated_at: string;
}

export interface NodesTable {
  facts: string | null;
  last_seen_at: string | null;
  id: string;
  cluster_id: string;
  name: string;
  role: string;
  status: string;
  versions: string;
  created_at: string;
  updated_at: string;
  /** `naturalSortKey(name)`: node lists are ordered and paged by it (migration 9). */
  sort_key: string;
}

export interface UpgradesTable {
  id: string;
  cluster_id: string;
  component: string;
  to_version: string;
  state: string;
  snapshot: string;
  policy: string;
  total: number;
  cap: number;
  ramp_start: number;
  pause_reason: string | null;
  created_by: string;
  created_at: string;
  paused_at: string | null;
  finished_at: string | null;
  next_batch_at: string | null;
  updated_at: string;
  /** The replica driving this upgrade, until `lease_expires_at`. */
  lease_owner: string | null;
  lease_expires_at: string | null;
}

export interface BatchesTable {
  upgrade_id: string;
  idx: number;
  size: number;
  state: string;
  node_ids: string;
  started_at: string;
  finished_at: string | null;
}

export interface NodeTasksTable {
  id: string;
  upgrade_id: string;
  node_id: string;
  node_name: string;
  role: string;
  sort_key: number;
  state: string;
  batch_index: number | null;
  attempt: number;
  started_at: string | null;
  finished_at: string | null;
  error: string | null;
  from_version: string | null;
  to_version: string;
}

export interface SnapshotsTable {
  id: string;
  upgrade_id: string;
  node_id: string;
  node_name: string;
  state: string;
  ref: string | null;
  error: string | null;
  started_at: string | null;
  finished_at: string | null;
}

export interface EventsTable {
  id: Generated<number>;
  at: string;
  type: string;
  actor: string;
  cluster_id: string | null;
  upgrade_id: string | null;
  node_id: string | null;
  message: string;
  data: string | null;
}

export interface NodeLogsTable {
  id: Generated<number>;
  upgrade_id: string;
  node_task_id: string;
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
 * A table of its own (not columns of node_tasks) so that log appends lock no row the
 * engine updates.
 */
export interface NodeLogSizesTable {
  node_task_id: string;
  head_bytes: Generated<number>;
  tail_bytes: Generated<number>;
  dropped_bytes: Generated<number>;
}

export interface JoinTokensTable {
  token_hash: string;
  cluster_id: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  /** 1: the token admits one join, then `used_at` is set. */
  single_use: Generated<number>;
  used_at: string | null;
  used_by_node: string | null;
}

export interface AgentCredentialsTable {
  token_hash: string;
  node_id: string;
  created_at: string;
}

export interface AgentTasksTable {
  task_key: string;
  node_id: string;
  upgrade_id: string | null;
  node_task_id: string | null;
  recipe: string;
  params: string;
  /** queued → delivered → succeeded | failed */
  state: string;
  result: string | null;
  created_at: string;
  delivered_at: string | null;
  finished_at: string | null;
}

export interface ArtifactsTable {
  file: string;
  component: string;
  version: string;
  method: string;
  sha256: string;
  size: number;
  created_at: string;
}

export interface ClusterSecretsTable {
  cluster_id: string;
  name: string;
  /** `v1:` + base64 of AES-256-GCM iv, tag and ciphertext; never plaintext. */
  sealed: string;
  created_at: string;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  role: string;
  /** sha256 hex of the token; the token itself is shown once and never stored. */
  token_hash: string;
  created_by: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

export interface SessionsTable {
  session_hash: string;
  csrf_hash: string;
  principal: string;
  role: string;
  token_id: string | null;
  created_at: string;
  expires_at: string;
  /** Public handle of the session for admins (`upshift session revoke ID`); never the secret. */
  id: string;
  /** Client address that signed in. */
  address: string | null;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: string;
}

export interface Database {
  clusters: ClustersTable;
  nodes: NodesTable;
  upgrades: UpgradesTable;
  batches: BatchesTable;
  node_tasks: NodeTasksTable;
  snapshots: SnapshotsTable;
  events: EventsTable;
  node_logs: NodeLogsTable;
  node_log_sizes: NodeLogSizesTable;
  schema_migrations: SchemaMigrationsTable;
  join_tokens: JoinTokensTable;
  agent_credentials: AgentCredentialsTable;
  agent_tasks: AgentTasksTable;
  artifacts: ArtifactsTable;
  cluster_secrets: ClusterSecretsTable;
  api_tokens: ApiTokensTable;
  sessions: SessionsTable;
}
