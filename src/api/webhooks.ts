import { type Static, Type } from '@sinclair/typebox';
import { deliveryStates, webhookEventTypes, webhookFormats } from '../domain/webhooks.js';
import { ItemList, NullableInteger, NullableString, Ref, StringEnum, Timestamp, View } from './common.js';

/**
 * Webhooks (admin only): where events are POSTed, signed with the webhook's secret. The
 * secret is write-only: no answer ever carries it. Names, URLs, event types and formats
 * are checked by the server with messages that say what to fix, so the body's schema
 * only bounds their sizes.
 */

export const WebhookBody = Type.Object(
  {
    name: Type.String({ maxLength: 63, description: 'lowercase letters, digits and dashes, such as ops-pager' }),
    url: Type.String({ maxLength: 2000, description: 'http:// or https:// URL the events are POSTed to' }),
    events: Type.Array(Type.String({ maxLength: 64 }), {
      maxItems: 64,
      description: `event types to deliver: ${webhookEventTypes.join(', ')}`,
    }),
    secret: Type.String({ maxLength: 1024, description: 'HMAC-SHA256 key of X-Upshift-Signature, 16 characters or more; never returned' }),
    format: Type.Optional(Type.String({ maxLength: 16, description: 'json (default) or slack (a Slack/Mattermost {"text": …} payload)' })),
  },
  { additionalProperties: false },
);
export type WebhookBody = Static<typeof WebhookBody>;

export const WebhookRefParam = Type.Object({ id: Ref('the webhook id or name', 100) });
export type WebhookRefParam = Static<typeof WebhookRefParam>;

export const WebhookView = View(
  {
    id: Type.String(),
    name: Type.String(),
    url: Type.String(),
    events: Type.Array(StringEnum(webhookEventTypes)),
    format: StringEnum(webhookFormats),
    createdBy: Type.String(),
    createdAt: Timestamp(),
    pending: Type.Integer({ description: 'deliveries not yet sent, retrying' }),
    sent: Type.Integer(),
    failed: Type.Integer({ description: 'deliveries given up after 24 h of failed attempts' }),
  },
  { description: 'A webhook (never its secret)' },
);
export type WebhookView = Static<typeof WebhookView>;

export const WebhookList = ItemList(WebhookView, 'Webhooks, by name');
export type WebhookList = Static<typeof WebhookList>;

export const DeliveryAttemptView = View({
  at: Timestamp(),
  status: NullableInteger({ description: 'the receiver’s HTTP status; null when no answer came' }),
  error: NullableString({ description: 'why the attempt failed; null when it succeeded' }),
  nextAttemptAt: NullableString({ description: 'when the next attempt was due after this one; null: none' }),
});
export type DeliveryAttemptView = Static<typeof DeliveryAttemptView>;

export const DeliveryView = View({
  id: Type.String(),
  eventId: Type.String({ description: 'also the X-Upshift-Event-Id header, the same on every attempt' }),
  eventType: Type.String(),
  upgradeId: NullableString(),
  clusterId: NullableString(),
  message: Type.String(),
  state: StringEnum(deliveryStates, { description: 'pending (retrying), sent, or failed (given up after 24 h)' }),
  createdAt: Timestamp(),
  nextAttemptAt: NullableString({ description: 'when the next attempt is due, while pending' }),
  finishedAt: NullableString(),
  attempts: Type.Array(DeliveryAttemptView),
});
export type DeliveryView = Static<typeof DeliveryView>;

export const DeliveryQuery = Type.Object({
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: 'at most this many, newest first (default 50, at most 500)' })),
});
export type DeliveryQuery = Static<typeof DeliveryQuery>;

export const DeliveryList = ItemList(DeliveryView, 'A webhook’s deliveries, newest first, each with its attempts');
export type DeliveryList = Static<typeof DeliveryList>;
