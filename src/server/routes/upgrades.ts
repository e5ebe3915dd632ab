import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Readable } from 'node:stream';
import { ErrorCode, UpshiftError, notFound } from '../../domain/errors.js';
import type { OperatorCommand } from '../../domain/upgrade-state.js';
import { type LogCursor, type Store, logMarker } from '../../store/index.js';
import {
  ClusterCatalogView,
  ClusterNodeParams,
  IdParam,
  FailedPodList,
  GateTestBody,
  GateTestView,
  NodeTaskPage,
  NotJson,
  PageQuery,
  PlanQuery,
  PlanView,
  ResumeBody,
  UpgradeBody,
  UpgradeList,
  UpgradeListQuery,
  UpgradeView,
  errorResponses,
  upgradeCommands,
} from '../../api/index.js';
import { type ApiDeps, actorOf } from './api-deps.js';
import { decodeCursor, nextCursor, pageLimit } from '../paging.js';
import { nodeTaskView, upgradeView } from '../views.js';

/** Plans, upgrades, their commands, node tasks and logs, under /api/v1 (docs/design.md §3, §7). */
export const upgradeRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { engine, store, pausedTtlMs }) => {
  app.post(
    '/clusters/:id/upgrades/plan',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['upgrades'],
        summary: 'Preview the batches without starting anything (?output=manifests adds the Kubernetes manifests)',
        params: IdParam,
        body: UpgradeBody,
        querystring: PlanQuery,
        response: { 200: PlanView, ...errorResponses },
      },
    },
    async (request) => engine.upgrades.plan(request.params.id, request.body, { manifests: request.query.output === 'manifests' }),
  );

  app.get(
    '/clusters/:id/catalog',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['catalog'],
        summary: 'The catalog as this cluster sees it: which versions install on its nodes, and why not',
        params: IdParam,
        response: { 200: ClusterCatalogView, ...errorResponses },
      },
    },
    async (request) => engine.upgrades.clusterCatalog(request.params.id),
  );

  app.post(
    '/gates/test',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['upgrades'],
        summary: 'Check one health gate once, now ("Test now"); clusterId for a swarm-services gate. Nothing is stored.',
        body: GateTestBody,
        response: { 200: GateTestView, ...errorResponses },
      },
    },
    async (request) => engine.upgrades.testGate(request.body.gate, request.body.clusterId),
  );

  app.post(
    '/clusters/:id/upgrades',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['upgrades'],
        summary: 'Start an upgrade',
        params: IdParam,
        body: UpgradeBody,
        response: { 201: UpgradeView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const upgrade = await engine.upgrades.start(request.params.id, request.body, actorOf(request));
      return reply.code(201).send(await upgradeView(store, upgrade, pausedTtlMs));
    },
  );

  app.get(
    '/upgrades',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['upgrades'],
        summary: 'List upgrades, newest first',
        querystring: UpgradeListQuery,
        response: { 200: UpgradeList, ...errorResponses },
      },
    },
    async (request) => {
      const { clusterId, state } = request.query;
      const resolved = clusterId ? (await engine.fleet.resolveCluster(clusterId)).id : undefined;
      const upgrades = await store.upgrades.list({ clusterId: resolved, state });
      return { items: await Promise.all(upgrades.map((u) => upgradeView(store, u, pausedTtlMs))) };
    },
  );

  app.get(
    '/upgrades/:id',
    {
      config: { access: 'viewer' },
      schema: { tags: ['upgrades'], summary: 'Get an upgrade', params: IdParam, response: { 200: UpgradeView, ...errorResponses } },
    },
    async (request) => upgradeView(store, await engine.upgrades.get(request.params.id), pausedTtlMs),
  );

  for (const type of upgradeCommands) {
    app.post(
      `/upgrades/:id/${type}`,
      {
        config: { access: 'operator' },
        schema: {
          tags: ['upgrades'],
          summary: `${type[0]?.toUpperCase()}${type.slice(1)} an upgrade`,
          params: IdParam,
          ...(type === 'resume' ? { body: ResumeBody } : {}),
          response: { 200: UpgradeView, ...errorResponses },
        },
        // The body is optional: a bare POST is the common case.
        preValidation: async (request) => {
          if (request.body === undefined || request.body === null) request.body = {};
        },
      },
      async (request) => {
        const body = (request.body ?? {}) as { deleteFailedPods?: boolean };
        const command: OperatorCommand = type === 'resume' ? { type, deleteFailedPods: body.deleteFailedPods === true } : { type };
        const upgrade = await engine.upgrades.command(request.params.id, command, actorOf(request));
        return upgradeView(store, upgrade, pausedTtlMs);
      },
    );
  }

  app.get(
    '/upgrades/:id/nodes',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['upgrades'],
        summary: 'The upgrade’s node tasks in the upgrade’s order, a page at a time (?limit=, ?cursor=)',
        params: IdParam,
        querystring: PageQuery,
        response: { 200: NodeTaskPage, ...errorResponses },
      },
    },
    async (request) => {
      const limit = pageLimit(request.query.limit);
      const upgrade = await engine.upgrades.get(request.params.id);
      const page = await store.upgrades.pageTasks(upgrade.id, decodeCursor('tasks', upgrade.id, request.query.cursor), limit);
      // Snapshots of this page's nodes only.
      const snapshots =
        upgrade.snapshot === 'before' && page.items.length > 0
          ? await store.upgrades.snapshotsOfNodes(
              upgrade.id,
              page.items.map((t) => t.nodeId),
            )
          : [];
      const byNode = new Map(snapshots.map((s) => [s.nodeId, s]));
      return {
        items: page.items.map((t) => nodeTaskView(t, byNode.get(t.nodeId))),
        nextCursor: nextCursor('tasks', upgrade.id, page.nextAfter),
      };
    },
  );

  app.get(
    '/upgrades/:id/failed-pods',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['upgrades'],
        summary:
          'The failed executor pods that block resuming this paused upgrade (Kubernetes); delete them with resume {deleteFailedPods: true}',
        params: IdParam,
        response: { 200: FailedPodList, ...errorResponses },
      },
    },
    async (request) => ({ items: await engine.upgrades.failedPods(request.params.id) }),
  );

  app.get(
    '/upgrades/:id/nodes/:nodeId/log',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['upgrades'],
        summary: 'A node task’s log as text',
        params: ClusterNodeParams,
        response: { 200: NotJson('text/plain', 'The log: one `<at> <line>` line each, streamed'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const upgrade = await engine.upgrades.get(request.params.id);
      const task = await store.upgrades.findTaskOfNode(upgrade.id, request.params.nodeId);
      if (!task) throw notFound('node in this upgrade', request.params.nodeId);
      // An empty answer would say "this node logged nothing"; the truth is that it was deleted.
      if (upgrade.endReason?.kind === 'auto_canceled') {
        throw new UpshiftError(ErrorCode.LOG_DELETED, `the log of ${task.nodeName} was deleted: ${upgrade.endReason.message}`);
      }
      // Streamed a page of rows at a time, as the client reads: a reader of a long log
      // holds one page, never the whole text.
      return reply.type('text/plain; charset=utf-8').send(Readable.from(logText(store, task.id), { objectMode: true, highWaterMark: 1 }));
    },
  );
};

/**
 * A node task's log as text, one chunk per page of 500 rows (`<at> <line>` lines), with
 * the marker line where lines were dropped between the head and the tail. Pulled by the
 * response stream, so a slow reader holds at most a page of it.
 */
async function* logText(store: Store, nodeTaskId: string): AsyncGenerator<string> {
  const dropped = await store.logs.droppedBytes(nodeTaskId);
  let marked = dropped === 0;
  let after: LogCursor | undefined;
  for (;;) {
    const page = await store.logs.readPage(nodeTaskId, after, 500);
    let text = '';
    for (const row of page) {
      if (!marked && row.tail === 1) {
        text += `${logMarker(dropped)}\n`;
        marked = true;
      }
      text += `${row.at} ${row.line}\n`;
    }
    if (text) yield text;
    const last = page[page.length - 1];
    if (!last || page.length < 500) break;
    after = last;
  }
  if (!marked) yield `${logMarker(dropped)}\n`;
}
