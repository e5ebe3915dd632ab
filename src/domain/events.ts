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
  /** Recorded once per paused period, a configurable time (24 h) before the paused TTL cancels the upgrade. */
  upgradeAutoCancelWarning: 'upgrade.auto_cancel_warning',
  /** A health gate passed its check before a batch; `data`: {gateIndex, kind, ok, message, batchIndex}. */
  gatePassed: 'gate.passed',
  /** A health gate failed its check; `data` also has `retryUntil`, after which the upgrade pauses. */
  gateFailed: 'gate.failed',
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
  /** The cluster's default maintenance window was set or cleared. */
  clusterWindowChanged: 'cluster.window_changed',
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
  webhookCreated: 'webhook.created',
  webhookDeleted: 'webhook.deleted',
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

/**
 * An upgrade's course: started, paused, resumed, continued, canceled, completed or refused,
 * by a person or by the engine. Both the "operations" filter and what a webhook may subscribe
 * to (domain/webhooks.ts) start from this list, so that a new turn of an upgrade's course
 * is added once and reaches both.
 */
export const upgradeCourseEventTypes = [
  EventType.upgradeStarted,
  EventType.upgradePaused,
  EventType.upgradeAutoPaused,
  EventType.upgradeResumed,
  EventType.upgradeContinued,
  EventType.upgradeCanceled,
  EventType.upgradeAutoCanceled,
  EventType.upgradeCompleted,
  EventType.upgradeSnapshotFailed,
  EventType.upgradeRefused,
] as const satisfies readonly EventType[];

/**
 * "Operations": what people and the system decided, apart from node and batch chatter:
 * starts, pauses, resumes, continues, cancels, refusals, auto-pauses, auto-cancels and
 * completions, failed health gates, changes to clusters, their members and credentials, and access.
 */
export const operationEventTypes: readonly EventType[] = [
  ...upgradeCourseEventTypes,
  EventType.gateFailed,
  EventType.requestRefused,
  EventType.clusterCreated,
  EventType.clusterDeleted,
  EventType.clusterNodeAdded,
  EventType.clusterNodeRemoved,
  EventType.clusterWindowChanged,
  EventType.agentJoinRefused,
  EventType.nodeCredentialReset,
  EventType.tokenCreated,
  EventType.tokenRevoked,
  EventType.sessionRevoked,
  EventType.webhookCreated,
  EventType.webhookDeleted,
];

/** Which events a reader asked for: some types (none: every type but the audit trail), one actor. */
export interface EventSelection {
  types?: readonly EventType[];
  actor?: string;
}

/**
 * `?type=a,b&actor=x&operations=true` as a selection; an unknown type is an error that
 * names the known ones, rather than an empty answer. With `operations`, the types asked
 * for are narrowed to operations (all of them when none were named).
 */
export function eventSelection(query: {
  type?: string | undefined;
  actor?: string | undefined;
  operations?: boolean | undefined;
}): { ok: true; selection: EventSelection } | { ok: false; message: string } {
  let types: EventType[] | undefined;
  if (query.type !== undefined && query.type !== '') {
    const named = query.type
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
    const unknown = named.filter((t) => !(eventTypes as readonly string[]).includes(t));
    if (unknown.length > 0)
      return { ok: false, message: `unknown event type ${unknown.join(', ')}; known types: ${eventTypes.join(', ')}` };
    types = [...new Set(named)] as EventType[];
  }
  if (query.operations) types = types ? types.filter((t) => operationEventTypes.includes(t)) : [...operationEventTypes];
  return { ok: true, selection: { ...(types ? { types } : {}), ...(query.actor ? { actor: query.actor } : {}) } };
}

/** Whether an event is in a selection; the audit trail only when asked for by type. */
export function selects(selection: EventSelection, event: Pick<UpshiftEvent, 'type' | 'actor'>): boolean {
  if (selection.actor !== undefined && event.actor !== selection.actor) return false;
  return selection.types ? selection.types.includes(event.type) : event.type !== EventType.auditRequest;
}
