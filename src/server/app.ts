import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { ErrorCode } from '../domain/errors.js';
import type { Engine } from '../engine/index.js';
import type { Store } from '../store/store.js';
import type { Authenticator, Principal } from './auth.js';
import { errorHandler, sendError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { AgentHub } from '../engine/agent-hub.js';
import { agentRoutes } from './routes/agent.js';
import { apiRoutes } from './routes/api.js';
import { artifactRoutes } from './routes/artifacts.js';
import { type AgentBundle, installRoutes } from './routes/install.js';
import { streamRoutes } from './routes/stream.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export interface AppDeps {
  engine: Engine;
  store: Store;
  auth: Authenticator;
  metrics: Metrics;
  pausedTtlMs: number;
  logger?: PinoLogger | false;
  /** The built console (dist/web); served at `/` when present. */
  webRoot?: string;
  version: string;
  hub: AgentHub;
  artifactDir: string;
  bundle: () => AgentBundle | undefined;
}

/** Paths that answer without a token: probes, the API docs and the console's static files. */
function isPublic(url: string): boolean {
  const path = url.split('?')[0] ?? '';
  return !path.startsWith('/api/') && path !== '/metrics';
}

/** Agent routes authenticate node credentials themselves (routes/agent.ts). */
function isAgentRoute(url: string): boolean {
  return url.startsWith('/api/v1/agent/');
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance<any, any, any, any, any>> {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, ErrorCode.NOT_FOUND, `no route ${request.method} ${request.url.split('?')[0]}`),
  );

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Upshift API', version: deps.version, description: 'Upgrades the container runtime of a fleet in growing batches.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  app.addHook('onRequest', async (request, reply) => {
    if (isPublic(request.url) || isAgentRoute(request.url)) return;
    const principal = deps.auth.authenticate(request.headers.authorization);
    if (!principal) {
      return sendError(
        reply,
        401,
        ErrorCode.UNAUTHENTICATED,
        'missing or unknown token: send "Authorization: Bearer <token>" (the admin token is printed at first start and kept in the data dir as admin-token)',
      );
    }
    request.principal = principal;
  });

  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const close of [...streams]) close();
  });

  await app.register(
    async (api) => {
      await api.register(apiRoutes, { engine: deps.engine, store: deps.store, pausedTtlMs: deps.pausedTtlMs, hub: deps.hub });
      await api.register(artifactRoutes, { store: deps.store, catalog: deps.engine.options.catalog, artifactDir: deps.artifactDir });
      await api.register(agentRoutes, {
        prefix: '/agent',
        hub: deps.hub,
        store: deps.store,
        artifactDir: deps.artifactDir,
        bundle: deps.bundle,
      });
      await api.register(streamRoutes, { store: deps.store, streams });
    },
    { prefix: '/api/v1' },
  );

  await app.register(installRoutes, { bundle: deps.bundle });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    try {
      await deps.store.ping();
    } catch (error) {
      return sendError(reply, 503, 'NOT_READY', `the database does not answer: ${(error as Error).message}`);
    }
    if (!deps.engine.orchestrator.isRunning) return sendError(reply, 503, 'NOT_READY', 'the engine is not running');
    return { status: 'ready' };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });

  const webRoot = deps.webRoot;
  if (webRoot && existsSync(join(webRoot, 'index.html'))) {
    await app.register(fastifyStatic, { root: webRoot, prefix: '/', wildcard: false, index: ['index.html'] });
    // Client-side routes of the console fall back to its index page.
    app.get('/*', { schema: { hide: true } }, (request, reply) => {
      if (request.url.startsWith('/api/')) return sendError(reply, 404, ErrorCode.NOT_FOUND, 'no such API route');
      return reply.sendFile('index.html');
    });
  } else {
    app.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect('/docs'));
  }
  return app;
}
