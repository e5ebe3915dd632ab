import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  DeliveryList,
  DeliveryQuery,
  NoContent,
  WebhookBody,
  WebhookList,
  WebhookRefParam,
  WebhookView,
  errorResponses,
} from '../../api/index.js';
import { invalid } from '../../domain/errors.js';
import type { DeliveryState, WebhookRecord } from '../../domain/webhooks.js';
import { type ApiDeps, actorOf } from './api-deps.js';

/** A webhook as the API shows it: never its secret, sealed or not; with its deliveries by state. */
function webhookView(webhook: WebhookRecord, counts: Record<DeliveryState, number> | undefined): WebhookView {
  return {
    id: webhook.id,
    name: webhook.name,
    url: webhook.url,
    events: webhook.events,
    format: webhook.format,
    createdBy: webhook.createdBy,
    createdAt: webhook.createdAt,
    pending: counts?.pending ?? 0,
    sent: counts?.sent ?? 0,
    failed: counts?.failed ?? 0,
  };
}

/** Webhooks and their deliveries, under /api/v1 (admin only; docs/webhooks.md). */
export const webhookRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { engine, store }) => {
  const countsOf = async () => new Map((await store.webhooks.counts()).map((c) => [c.webhookId, c.counts]));

  app.post(
    '/webhooks',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'],
        summary: 'Create a webhook: events of these types are POSTed to its URL, signed with its secret',
        body: WebhookBody,
        response: { 201: WebhookView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const created = await engine.webhooks.create(request.body, actorOf(request));
      return reply.code(201).send(webhookView(created, undefined));
    },
  );

  app.get(
    '/webhooks',
    {
      config: { access: 'admin' },
      schema: { tags: ['webhooks'], summary: 'List webhooks (never their secrets)', response: { 200: WebhookList, ...errorResponses } },
    },
    async () => {
      const counts = await countsOf();
      return { items: (await store.webhooks.list()).map((w) => webhookView(w, counts.get(w.id))) };
    },
  );

  app.get(
    '/webhooks/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'],
        summary: 'One webhook, by id or name (never its secret)',
        params: WebhookRefParam,
        response: { 200: WebhookView, ...errorResponses },
      },
    },
    async (request) => {
      const webhook = await engine.webhooks.resolve(request.params.id);
      return webhookView(webhook, (await countsOf()).get(webhook.id));
    },
  );

  app.delete(
    '/webhooks/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'],
        summary: 'Delete a webhook, by id or name, with its deliveries',
        params: WebhookRefParam,
        response: { 204: NoContent, ...errorResponses },
      },
    },
    async (request, reply) => {
      await engine.webhooks.delete(request.params.id, actorOf(request));
      return reply.code(204).send();
    },
  );

  app.get(
    '/webhooks/:id/deliveries',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['webhooks'],
        summary: 'A webhook’s deliveries, newest first, with every attempt: its time, HTTP status or error, and the next attempt',
        params: WebhookRefParam,
        querystring: DeliveryQuery,
        response: { 200: DeliveryList, ...errorResponses },
      },
    },
    async (request) => {
      const webhook = await engine.webhooks.resolve(request.params.id);
      const limit = request.query.limit === undefined ? 50 : Number(request.query.limit);
      if (limit < 1 || limit > 500) throw invalid('limit must be from 1 to 500', { field: 'limit' });
      const deliveries = await store.webhooks.listDeliveries(webhook.id, limit);
      return {
        items: deliveries.map((d) => ({
          id: d.id,
          eventId: d.eventId,
          eventType: d.eventType,
          upgradeId: d.event.upgradeId ?? null,
          clusterId: d.event.clusterId ?? null,
          message: d.event.message ?? '',
          state: d.state,
          createdAt: d.createdAt,
          nextAttemptAt: d.state === 'pending' ? d.nextAttemptAt : null,
          finishedAt: d.finishedAt,
          attempts: d.attemptList,
        })),
      };
    },
  );
};
