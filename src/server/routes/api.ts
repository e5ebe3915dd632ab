import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { publicUrl } from './install.js';
import { UpshiftError, ErrorCode, invalid, notFound } from '../../domain/errors.js';
import type { OperatorCommand } from '../../domain/upgrade-state.js';
import type { CreatedJoinToken, Engine } from '../../engine/index.js';
import { type LogCursor, type Store, logMarker } from '../../store/index.js';
import {
  CatalogView,
  ClusterBody,
  ClusterCreatedView,
  ClusterList,
  ClusterNodeParams,
  ClusterView,
  EventPage,
  EventQuery,
  IdParam,
  JoinTokenBody,
  JoinTokenView,
  NoContent,
  NodeBody,
  NodePage,
  NodeResetView,
  NodeTaskPage,
  NodeView,
  NotJson,
  PageQuery,
  PlanQuery,
  PlanView,
  ResumeBody,
  RevokedJoinTokens,
  UpgradeBody,
  UpgradeList,
  UpgradeListQuery,
  UpgradeView,
  errorResponses,
  upgradeCommands,
} from '../../api/index.js';
import { decodeCursor, nextCursor, pageLimit } from '../paging.js';
import { catalogView, clusterView, clusterViews, nodeTaskView, nodeView, upgradeView } from '../views.js';

export interface ApiDeps {
  engine: Engine;
  store: Store;
  pausedTtlMs: number;
}

/** The REST API under /api/v1 (docs/design.md §7). Handlers translate; the engine decides. */
export const apiRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { engine, store, pausedTtlMs }) => {
  const hub = engine.agents;
  const catalog = engine.options.catalog;
  const actor = (request: { principal?: { name: string } }) => request.principal?.name ?? 'anonymous';

  const viewCluster = async (id: string) => {
    const cluster = await engine.fleet.resolveCluster(id);
    return clusterView(catalog, cluster, await store.nodes.versionGroups(cluster.id), await store.upgrades.activeOf(cluster.id));
  };

  app.get(
    '/clusters',
    {
      config: { access: 'viewer' },
      schema: { tags: ['clusters'], summary: 'List clusters', response: { 200: ClusterList, ...errorResponses } },
    },
    async () => ({
      items: await clusterViews(store, catalog, await store.clusters.list()),
    }),
  );

  /**
   * A new join token and the commands that use it. `agentSha256` is the checksum of the
   * agent file this server hands out; the install command carries it, so that the host
   * checks the download against what the admin was shown here rather than only against
   * a checksum served by the same (possibly plain-HTTP) server.
   */
  const joinInstructions = (request: FastifyRequest, token: CreatedJoinToken) => {
    const server = publicUrl(request) ?? 'http://SERVER:8420';
    const agentSha256 = hub.agentBundleSha256() ?? null;
    return {
      joinToken: token.joinToken,
      expiresAt: token.expiresAt,
      singleUse: token.singleUse,
      agentSha256,
      joinCommand: `curl -fsSL ${server}/install/agent.sh | sudo sh -s -- --join-token ${token.joinToken}${agentSha256 ? ` --sha256 ${agentSha256}` : ''}`,
      agentCommand: `upshift agent --server ${server} --join-token ${token.joinToken}`,
    };
  };

  app.post(
    '/clusters',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['clusters'],
        summary: 'Create a cluster (hosts and swarm: with a first join token, shown once)',
        body: ClusterBody,
        response: { 201: ClusterCreatedView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const cluster = await engine.fleet.createCluster(request.body, actor(request));
      const view = await viewCluster(cluster.id);
      if (cluster.kind === 'hosts' || cluster.kind === 'swarm') {
        // The join token is shown here once; only its hash is kept.
        return reply.code(201).send({ ...view, ...joinInstructions(request, await hub.createJoinToken(cluster.id)) });
      }
      return reply.code(201).send(view);
    },
  );

  app.post(
    '/clusters/:id/join-tokens',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['clusters'],
        summary: 'Create a join token for agents (shown once); it expires after ttlSeconds, else the server’s --join-token-ttl',
        params: IdParam,
        body: JoinTokenBody,
        response: { 201: JoinTokenView, ...errorResponses },
      },
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
    },
    async (request, reply) => {
      const cluster = await engine.fleet.resolveCluster(request.params.id);
      const token = await hub.createJoinToken(cluster.id, {
        ...(request.body.ttlSeconds !== undefined ? { ttlSeconds: request.body.ttlSeconds } : {}),
        singleUse: request.body.singleUse === true,
      });
      return reply.code(201).send(joinInstructions(request, token));
    },
  );

  app.delete(
    '/clusters/:id/join-tokens',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['clusters'],
        summary: 'Revoke every join token of the cluster',
        params: IdParam,
        response: { 200: RevokedJoinTokens, ...errorResponses },
      },
    },
    async (request) => {
      const cluster = await engine.fleet.resolveCluster(request.params.id);
      return { revoked: await store.agents.revokeJoinTokens(cluster.id) };
    },
  );

  app.get(
    '/clusters/:id',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['clusters'],
        summary: 'Get a cluster by id or name',
        params: IdParam,
        response: { 200: ClusterView, ...errorResponses },
      },
    },
    async (request) => viewCluster(request.params.id),
  );

  app.delete(
    '/clusters/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['clusters'],
        summary: 'Delete a cluster (refused while an upgrade is active)',
        params: IdParam,
        response: { 204: NoContent, ...errorResponses },
      },
    },
    async (request, reply) => {
      await engine.fleet.deleteCluster(request.params.id, actor(request));
      return reply.code(204).send();
    },
  );

  app.get(
    '/clusters/:id/nodes',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['nodes'],
        summary: 'List a cluster’s nodes in natural order of names, a page at a time (?limit=, ?cursor=)',
        params: IdParam,
        querystring: PageQuery,
        response: { 200: NodePage, ...errorResponses },
      },
    },
    async (request) => {
      const limit = pageLimit(request.query.limit);
      const cluster = await engine.fleet.resolveCluster(request.params.id);
      const page = await store.nodes.page(cluster.id, decodeCursor('nodes', cluster.id, request.query.cursor), limit);
      return { items: page.items.map(nodeView), nextCursor: nextCursor('nodes', cluster.id, page.nextAfter) };
    },
  );

  app.post(
    '/clusters/:id/nodes',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['nodes'],
        summary: 'Add a node (refused while an upgrade is active)',
        params: IdParam,
        body: NodeBody,
        response: { 201: NodeView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const node = await engine.fleet.addNode(request.params.id, request.body, actor(request));
      return reply.code(201).send(nodeView(node));
    },
  );

  app.delete(
    '/clusters/:id/nodes/:nodeId',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['nodes'],
        summary: 'Remove a node (refused while an upgrade is active)',
        params: ClusterNodeParams,
        response: { 204: NoContent, ...errorResponses },
      },
    },
    async (request, reply) => {
      await engine.fleet.removeNode(request.params.id, request.params.nodeId, actor(request));
      return reply.code(204).send();
    },
  );

  app.post(
    '/clusters/:id/nodes/:nodeId/reset',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['nodes'],
        summary: 'Revoke a node’s agent credential; the next join under its name claims the node (also during an upgrade)',
        params: ClusterNodeParams,
        response: { 200: NodeResetView, ...errorResponses },
      },
    },
    async (request) => {
      const cluster = await engine.fleet.resolveCluster(request.params.id);
      const reset = await hub.resetNode(cluster.id, request.params.nodeId, actor(request));
      return {
        node: nodeView(reset.node),
        cluster: reset.clusterName,
        revokedCredentials: reset.revokedCredentials,
        failedTasks: reset.failedTasks,
      };
    },
  );

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
      const upgrade = await engine.upgrades.start(request.params.id, request.body, actor(request));
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
        const upgrade = await engine.upgrades.command(request.params.id, command, actor(request));
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
      // Streamed a page of rows at a time, as the client reads: a reader of a long log
      // holds one page, never the whole text.
      return reply.type('text/plain; charset=utf-8').send(Readable.from(logText(store, task.id), { objectMode: true, highWaterMark: 1 }));
    },
  );

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
      const { upgradeId, type, cursor } = request.query;
      // A cluster may be named by name here too, as everywhere else.
      const clusterId = request.query.clusterId ? (await engine.fleet.resolveCluster(request.query.clusterId)).id : undefined;
      const limit = request.query.limit === undefined ? 50 : Number(request.query.limit);
      if (limit < 1 || limit > 500) throw invalid('limit must be from 1 to 500');
      const items = await store.events.list({ clusterId, upgradeId, type, before: cursor, limit });
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
