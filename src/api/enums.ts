/**
 * The enumerations of the API, from `domain` where each is written once: upgrade and task
 * states, components, cluster kinds and statuses, roles, event types, the events a webhook
 * may subscribe to and its formats, error codes. The schemas use them; the clients import
 * their values from this file, which loads no TypeBox (see index.ts).
 */
export {
  type ClusterKind,
  type Component,
  type NodeRole,
  clusterKinds,
  componentDisplayName,
  components,
  nodeRoles,
  runtimeComponents,
} from '../domain/components.js';
export { type ErrorCode, errorCodes } from '../domain/errors.js';
export { type EventType, eventTypes } from '../domain/events.js';
export { type ClusterStatus, clusterStatuses } from '../domain/fleet-summary.js';
export {
  type BatchState,
  type NodeTaskState,
  type SnapshotMode,
  type SnapshotState,
  batchStates,
  nodeTaskStates,
  snapshotModes,
  snapshotStates,
} from '../domain/model.js';
export { type Role, roles } from '../domain/roles.js';
export {
  type DeliveryState,
  type WebhookEventType,
  type WebhookFormat,
  deliveryStates,
  webhookEventTypes,
  webhookFormats,
} from '../domain/webhooks.js';
export { type UpgradeState, activeStates, upgradeStates } from '../domain/upgrade-state.js';
