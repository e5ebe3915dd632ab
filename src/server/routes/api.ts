import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { UpshiftError, ErrorCode, invalid } from '../../domain/errors.js';
import { eventSelection } from '../../domain/events.js';
import { CatalogView, EventPage, EventQuery, errorResponses } from '../../api/index.js';
import type { ApiDeps } from './api-deps.js';
import { clusterRoutes } from './clusters.js';
import { upgradeRoutes } from './upgrades.js';
import { webhookRoutes } from './webhooks.js';
import { catalogView } from '../views.js';

export type { ApiDeps } from './api-deps.js';

/** The REST API under /api/v1 (docs/design.md §7). Handlers translate; the engine decides. */
export const apiRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const { engine, store } = deps;
  const catalog = engine.options.catalog;
  await app.register(clusterRoutes, deps);
  await app.register(upgradeRoutes, deps);
  await app.register(webhookRoutes, deps);

  app.get(
    '/events',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['events'],
        summary: 'Events, newest first',
        querystring: EventQuery,
        response: { 200: EventPage, ...errorResponses },
      },
    },
    async (request) => {
      const { upgradeId, type, actor, operations, cursor } = request.query;
      const selected = eventSelection({ type, actor, operations: operations === 'true' });
      if (!selected.ok) throw invalid(selected.message, { field: 'type' });
      // A cluster may be named by name here too, as everywhere else.
      const clusterId = request.query.clusterId ? (await engine.fleet.resolveCluster(request.query.clusterId)).id : undefined;
      const limit = request.query.limit === undefined ? 50 : Number(request.query.limit);
      if (limit < 1 || limit > 500) throw invalid('limit must be from 1 to 500');
      const { types, actor: onlyActor } = selected.selection;
      const items = await store.events.list({ clusterId, upgradeId, types, actor: onlyActor, before: cursor, limit });
      return { items, next: items.length === limit ? (items[items.length - 1]?.id ?? null) : null };
    },
  );

  app.get(
    '/catalog',
    {
      config: { access: 'viewer' },
      schema: { tags: ['catalog'], summary: 'The component catalog in use', response: { 200: CatalogView, ...errorResponses } },
    },
    async () => catalogView(catalog),
  );

  app.setNotFoundHandler(() => {
    throw new UpshiftError(ErrorCode.NOT_FOUND, 'no such API route; see /docs for the API');
  });
};
