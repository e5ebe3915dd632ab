export { type StoreAdapter, openPostgres, openSqlite, openStoreAdapter } from './dialect.js';
export { type EventFilter, EventRepository } from './events.js';
export { migrate } from './migrate.js';
export {
  type LogCursor,
  type LogLine,
  LOG_HEAD_BYTES,
  LOG_TAIL_BYTES,
  type NewLogLine,
  NodeLogRepository,
  logMarker,
} from './node-logs.js';
export { type KeysetPage } from './rows.js';
export { Store } from './store.js';
export { type SnapshotPatch, type TaskPatch, type UpgradePatch, UpgradeRepository } from './upgrades.js';
export { AccessRepository } from './access.js';
export { AgentRepository } from './agents.js';
export { ArtifactRepository } from './artifacts.js';
export { ClusterRepository } from './clusters.js';
export { LeaseRepository } from './leases.js';
export { NodeRepository } from './nodes.js';
export { type AttemptOutcome, type DueDelivery, WebhookRepository } from './webhooks.js';
