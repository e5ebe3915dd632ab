import { EventType, upgradeCourseEventTypes, type UpshiftEvent } from './events.js';
import type { Timestamp } from './model.js';

/**
 * Webhooks: an admin names a URL, the events it wants, a secret and a payload format;
 * every event of those types is delivered to it by a POST signed with the secret, through
 * an outbox in the database (docs/webhooks.md).
 */

/** The events a webhook may subscribe to: what a person may need to act on, not node chatter. */
export const webhookEventTypes = [
  ...upgradeCourseEventTypes,
  EventType.upgradeAutoCancelWarning,
  EventType.snapshotFailed,
  EventType.batchFinished,
  EventType.nodeFailed,
  EventType.nodeDown,
  EventType.clusterUnavailable,
  EventType.clusterAvailable,
  EventType.agentJoinRefused,
] as const satisfies readonly EventType[];
export type WebhookEventType = (typeof webhookEventTypes)[number];

export const webhookFormats = ['json', 'slack'] as const;
export type WebhookFormat = (typeof webhookFormats)[number];

export const deliveryStates = ['pending', 'sent', 'failed'] as const;
export type DeliveryState = (typeof deliveryStates)[number];

export function isWebhookEventType(type: string): type is WebhookEventType {
  return (webhookEventTypes as readonly string[]).includes(type);
}

/** A webhook as stored; `sealedSecret` never leaves the server. */
export interface WebhookRecord {
  id: string;
  name: string;
  url: string;
  events: WebhookEventType[];
  format: WebhookFormat;
  sealedSecret: string;
  createdBy: string;
  createdAt: Timestamp;
}

/** One try to deliver: when, and the HTTP status or the error; when the next one is due (null: none). */
export interface DeliveryAttempt {
  at: Timestamp;
  status: number | null;
  error: string | null;
  nextAttemptAt: Timestamp | null;
}

/** One event for one webhook, in the outbox until it is sent or given up. */
export interface DeliveryRecord {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: EventType;
  /** The event as it was recorded: the upgrade's history may be purged before delivery. */
  event: UpshiftEvent;
  state: DeliveryState;
  attempts: number;
  createdAt: Timestamp;
  nextAttemptAt: Timestamp | null;
  finishedAt: Timestamp | null;
}

/** How long a delivery is retried before it is marked failed. */
export const DELIVERY_GIVE_UP_MS = 24 * 3600_000;
/** The longest wait between two attempts. */
export const DELIVERY_MAX_BACKOFF_MS = 5 * 60_000;

/** The wait after the `attempt`-th failed attempt (1-based): 1 s, 2 s, 4 s, … capped at 5 min. */
export function retryDelayMs(attempt: number): number {
  return Math.min(DELIVERY_MAX_BACKOFF_MS, 1000 * 2 ** Math.min(20, Math.max(0, attempt - 1)));
}

export const WEBHOOK_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why a webhook URL cannot be used, or undefined: http or https only, with a host, no credentials in it. */
export function webhookUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `url "${url}" is not an absolute URL such as https://hooks.example.com/upshift`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return `url must be http:// or https://, not ${parsed.protocol}//; such as https://hooks.example.com/upshift`;
  if (parsed.hostname === '') return 'url has no host';
  // Credentials in the URL would be shown by every list of webhooks: the secret signs instead.
  if (parsed.username !== '' || parsed.password !== '')
    return 'url must not carry a user name or password; receivers check the X-Upshift-Signature header instead';
  if (url.length > 2000) return 'url is longer than 2000 characters';
  return undefined;
}

/** Why the subscribed event types cannot be used, or undefined. */
export function webhookEventsProblem(events: readonly string[]): string | undefined {
  if (events.length === 0) return `events must name at least one event type; known types: ${webhookEventTypes.join(', ')}`;
  const unknown = events.filter((e) => !isWebhookEventType(e));
  if (unknown.length > 0) return `unknown webhook event type ${unknown.join(', ')}; known types: ${webhookEventTypes.join(', ')}`;
  return undefined;
}

/** The JSON a receiver gets for one event (format `json`). */
export interface WebhookPayload {
  id: string;
  type: EventType;
  time: Timestamp;
  upgradeId: string | null;
  clusterId: string | null;
  nodeId: string | null;
  actor: string;
  message: string;
  /** The console page of the upgrade (or of the cluster, or the events page). */
  link: string;
  webhook: string;
  data?: Record<string, unknown>;
}

/** The console page an event points at, under the server's public URL. */
export function consoleLink(publicUrl: string, event: Pick<UpshiftEvent, 'upgradeId' | 'clusterId'>): string {
  const base = publicUrl.replace(/\/+$/, '');
  if (event.upgradeId) return `${base}/upgrades/${encodeURIComponent(event.upgradeId)}`;
  if (event.clusterId) return `${base}/clusters/${encodeURIComponent(event.clusterId)}`;
  return `${base}/events`;
}

/**
 * The raw body of one delivery: `json` is the event with its link; `slack` is the
 * `{"text": …}` that Slack and Mattermost incoming webhooks take, with the same fields
 * beside it for receivers that read them (the link is plain text, which both make a link).
 */
export function deliveryBody(event: UpshiftEvent, webhook: Pick<WebhookRecord, 'name' | 'format'>, publicUrl: string): string {
  const payload: WebhookPayload = {
    id: event.id,
    type: event.type,
    time: event.at,
    upgradeId: event.upgradeId,
    clusterId: event.clusterId,
    nodeId: event.nodeId,
    actor: event.actor,
    message: event.message,
    link: consoleLink(publicUrl, event),
    webhook: webhook.name,
    ...(event.data ? { data: event.data } : {}),
  };
  if (webhook.format === 'json') return JSON.stringify(payload);
  return JSON.stringify({ text: `Upshift ${event.type}: ${event.message}\n${payload.link}`, ...payload });
}
