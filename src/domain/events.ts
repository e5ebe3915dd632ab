import type { Timestamp } from './model.js';

/** Every operation becomes an event; their types, one list (docs/design.md §6). */
export const EventType = {
  upgradeStarted: 'upgrade.started',
  upgradePaused: 'upgrade.paused',
  upgradeAutoPaused: 'upgrade.auto_paused',
  upgradeResumed: 'upgrade.resumed',
  upgradeCanceled: 'upgrade.canceled',
  upgradeAutoCanceled: 'upgrade.auto_canceled',
  upgradeCompleted: 'upgrade.completed',
  upgradeContinued: 'upgrade.continued',
  upgradeSnapshotFailed: 'upgrade.snapshot_failed',
  upgradeRefused: 'upgrade.refused',
  batchStarted: 'batch.started',
  batchFinished: 'batch.finished',
  nodeStarted: 'node.started',
  nodeSucceeded: 'node.succeeded',
  nodeFailed: 'node.failed',
  nodeSkipped: 'node.skipped',
  nodeReattached: 'node.reattached',
  nodeDown: 'node.down',
  snapshotSucceeded: 'snapshot.succeeded',
  snapshotFailed: 'snapshot.failed',
  clusterCreated: 'cluster.created',
  clusterDeleted: 'cluster.deleted',
  clusterNodeAdded: 'cluster.node_added',
  clusterNodeRemoved: 'cluster.node_removed',
  clusterUnavailable: 'cluster.unavailable',
  clusterAvailable: 'cluster.available',
  requestRefused: 'request.refused',
  /** An agent claimed an existing node that held no credential (made by an inventory sync, or reset by an admin). */
  agentJoined: 'agent.joined',
  /** A join named a node whose agent holds a credential; the node, cluster and client address are in `data`. */
  agentJoinRefused: 'agent.join_refused',
  /** An admin revoked a node's credential; the next join under its name claims it. */
  nodeCredentialReset: 'node.credential_reset',
  artifactAdded: 'artifact.added',
  tokenCreated: 'token.created',
  tokenRevoked: 'token.revoked',
  authFailed: 'auth.failed',
  authSignedIn: 'auth.signed_in',
  sessionRevoked: 'session.revoked',
  auditRequest: 'audit.request',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];
export const eventTypes: readonly EventType[] = Object.values(EventType);

export interface UpshiftEvent {
  id: string;
  at: Timestamp;
  type: EventType;
  /** Who did it: `admin`, a token's name, `engine` for automatic steps. */
  actor: string;
  clusterId: string | null;
  upgradeId: string | null;
  nodeId: string | null;
  message: string;
  data?: Record<string, unknown> | undefined;
}

export type NewEvent = Omit<UpshiftEvent, 'id' | 'at'> & { at?: Timestamp };

/** The actor of what the engine does by itself. */
export const ENGINE_ACTOR = 'engine';
