import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { publicUrl } from './install.js';
import type { CreatedJoinToken } from '../../engine/index.js';
import {
  ClusterBody,
  ClusterCreatedView,
  ClusterList,
  ClusterNodeParams,
  ClusterPatchBody,
  ClusterView,
  IdParam,
  JoinTokenBody,
  JoinTokenView,
  NoContent,
  NodeBody,
  NodePage,
  NodeResetView,
  NodeView,
  PageQuery,
  RevokedJoinTokens,
  errorResponses,
} from '../../api/index.js';
import { type ApiDeps, actorOf } from './api-deps.js';
import { decodeCursor, nextCursor, pageLimit } from '../paging.js';
import { ClusterListViews } from '../cluster-list.js';
import { clusterView, nodeView } from '../views.js';

/** Clusters, their join tokens and their nodes, under /api/v1 (docs/design.md §7). */
export const clusterRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, { engine, store }) => {
  const hub = engine.agents;
  const listViews = new ClusterListViews();

  const viewCluster = async (id: string) => {
    const cluster = await engine.fleet.resolveCluster(id);
    return clusterView(
      await engine.upgrades.installCatalog(),
      cluster,
      await store.nodes.versionGroups(cluster.id),
      await store.upgrades.activeOf(cluster.id),
    );
  };

  app.get(
    '/clusters',
    {
      config: { access: 'viewer' },
      schema: { tags: ['clusters'], summary: 'List clusters', response: { 200: ClusterList, ...errorResponses } },
    },
    async (_request, reply) => {
      const items = await listViews.list(store, await engine.upgrades.installCatalog());
      const serializeView = reply.compileSerializationSchema(ClusterView, '200');
      // Through the route's schema as ever, one cluster at a time, each cluster's JSON kept
      // while its view is unchanged (cluster-list.ts). Hooks still see the object (the
      // response check in tests); an error answered after this point is not a list.
      // A reply with its own serializer gets no JSON content type by itself.
      reply.type('application/json; charset=utf-8');
      reply.serializer((payload: { items?: unknown }) =>
        // Bytes are sent as they are (fastify takes a Buffer wherever it takes a string).
        payload.items === items ? (listViews.serialize(items, serializeView) as unknown as string) : JSON.stringify(payload),
      );
      return { items };
    },
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
      const cluster = await engine.fleet.createCluster(request.body, actorOf(request));
      const view = await viewCluster(cluster.id);
      if (cluster.kind === 'hosts' || cluster.kind === 'swarm') {
        // The join token is shown here once; only its hash is kept.
        return reply.code(201).send({ ...view, ...joinInstructions(request, await hub.createJoinToken(cluster.id)) });
      }
      return reply.code(201).send(view);
    },
  );

  app.patch(
    '/clusters/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['clusters'],
        summary: 'Set or clear (null) the default maintenance window of the cluster’s upgrades; running upgrades keep theirs',
        params: IdParam,
        body: ClusterPatchBody,
        response: { 200: ClusterView, ...errorResponses },
      },
    },
    async (request) => {
      const cluster = await engine.fleet.setWindow(request.params.id, request.body.window, actorOf(request));
      return viewCluster(cluster.id);
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
      await engine.fleet.deleteCluster(request.params.id, actorOf(request));
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
      const node = await engine.fleet.addNode(request.params.id, request.body, actorOf(request));
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
      await engine.fleet.removeNode(request.params.id, request.params.nodeId, actorOf(request));
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
      const reset = await hub.resetNode(cluster.id, request.params.nodeId, actorOf(request));
      return {
        node: nodeView(reset.node),
        cluster: reset.clusterName,
        revokedCredentials: reset.revokedCredentials,
        failedTasks: reset.failedTasks,
      };
    },
  );
};
