import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { ErrorCode } from '../domain/errors.js';
import type { Engine } from '../engine/index.js';
import type { Store } from '../store/store.js';
import {
  type AccessControl,
  type Principal,
  type Role,
  SESSION_COOKIE,
  SignInLimiter,
  bearerToken,
  readCookie,
  roleAllows,
} from './auth.js';
import { accessRoutes } from './routes/access.js';
import { EventType } from '../domain/events.js';
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
  interface FastifyContextConfig {
    role?: Role;
    public?: boolean;
  }
}

/** Every route with the role it needs; `public` and `agent` routes authenticate otherwise. */
export interface RouteRule {
  method: string;
  url: string;
  role: Role | 'public' | 'agent';
}

export interface AppDeps {
  engine: Engine;
  store: Store;
  access: AccessControl;
  /** Set the cookie's Secure flag (the server speaks TLS). */
  secureCookies?: boolean;
  signInLimit?: number;
  /** HTTPS: PEM certificate and key. */
  tls?: { cert: Buffer; key: Buffer };
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

export async function buildApp(deps: AppDeps, routeTable: RouteRule[] = []): Promise<FastifyInstance<any, any, any, any, any>> {
  const app = Fastify({
    ...(deps.tls ? { https: deps.tls } : {}),
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

  // Every route's required role: GET needs viewer, other methods operator, unless the
  // route says otherwise (admin for clusters, nodes, tokens, artifacts). The table is
  // what the authorization matrix test walks, so a new route cannot be forgotten.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      const url = route.url ?? route.path;
      const config = (route.config ?? {}) as { role?: Role; public?: boolean };
      const role: Role | 'public' | 'agent' =
        config.public || isPublic(url)
          ? 'public'
          : isAgentRoute(url)
            ? 'agent'
            : (config.role ?? (method === 'GET' ? 'viewer' : 'operator'));
      routeTable.push({ method, url, role });
    }
  });

  const limiter = new SignInLimiter(deps.signInLimit ?? 20);
  const signInFailure = async (ip: string): Promise<boolean> => {
    const count = limiter.fail(ip);
    // Recorded, but not one event per attempt of a flood.
    if (count <= 3 || count % 20 === 0) {
      await deps.store.appendEvent({
        type: EventType.authFailed,
        actor: `address:${ip}`,
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `failed sign-in from ${ip} (${count} in the last minute)`,
      });
    }
    return limiter.isBlocked(ip);
  };

  // The role check runs with authentication, before the body is even parsed: a caller
  // without the role learns nothing about what the route would have accepted.
  const authorize = (request: FastifyRequest, reply: FastifyReply) => {
    const config = request.routeOptions.config as { role?: Role; public?: boolean };
    if (!request.principal || config.public) return;
    const need: Role = config.role ?? (request.method === 'GET' || request.method === 'HEAD' ? 'viewer' : 'operator');
    if (!roleAllows(request.principal.role, need)) {
      return sendError(
        reply,
        403,
        ErrorCode.FORBIDDEN,
        `this needs the ${need} role; ${request.principal.name} is ${request.principal.role}`,
      );
    }
    return undefined;
  };

  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (isPublic(path) || isAgentRoute(path) || (path === '/api/v1/session' && request.method === 'POST')) return;
    const header = request.headers.authorization;
    if (header !== undefined) {
      // Only token attempts are held back after failures; an open console session (an
      // unguessable cookie) from the same address keeps working.
      if (limiter.isBlocked(request.ip)) {
        return sendError(reply, 429, 'TOO_MANY_REQUESTS', 'too many failed sign-ins from this address; wait a minute');
      }
      const token = bearerToken(header);
      const principal = token === undefined ? undefined : await deps.access.authenticateToken(token);
      if (!principal) {
        if (await signInFailure(request.ip))
          return sendError(reply, 429, 'TOO_MANY_REQUESTS', 'too many failed sign-ins from this address; wait a minute');
        return sendError(
          reply,
          401,
          ErrorCode.UNAUTHENTICATED,
          'unknown, expired or revoked token: check --token / UPSHIFT_TOKEN, or ask an admin for a new one (upshift token create)',
        );
      }
      request.principal = principal;
      return authorize(request, reply);
    }
    const sessionId = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (sessionId) {
      const csrf = request.headers['x-csrf-token'];
      const session = await deps.access.authenticateSession(sessionId, typeof csrf === 'string' ? csrf : undefined);
      if (!session) return sendError(reply, 401, ErrorCode.UNAUTHENTICATED, 'the console session expired or was ended: sign in again');
      const safe = request.method === 'GET' || request.method === 'HEAD';
      if (!safe && !session.csrfOk)
        return sendError(reply, 403, 'CSRF_FAILED', 'a change made with a session cookie needs the x-csrf-token header from sign-in');
      request.principal = session.principal;
      return authorize(request, reply);
    }
    return sendError(
      reply,
      401,
      ErrorCode.UNAUTHENTICATED,
      'missing token: send "Authorization: Bearer <token>" (the admin token is printed at first start and kept in the data dir as admin-token)',
    );
  });

  // Audit: every mutating API request becomes an event with its actor (never its body).
  app.addHook('onResponse', async (request, reply) => {
    if (request.method === 'GET' || request.method === 'HEAD' || !request.principal) return;
    const route = request.routeOptions.url ?? request.url.split('?')[0];
    await deps.store
      .appendEvent({
        type: EventType.auditRequest,
        actor: request.principal.name,
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `${request.method} ${route} → ${reply.statusCode}`,
        data: { method: request.method, route, status: reply.statusCode, address: request.ip },
      })
      .catch((error: unknown) => request.log.warn({ err: error }, 'could not record the audit event'));
  });

  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const close of [...streams]) close();
  });

  await app.register(
    async (api) => {
      await api.register(accessRoutes, {
        access: deps.access,
        store: deps.store,
        secureCookies: deps.secureCookies ?? false,
        onSignInFailure: signInFailure,
      });
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
