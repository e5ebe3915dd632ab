import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { ConsolePage, HealthView, MetricsText, ReadyView, RedirectToDocs, errorResponses } from '../api/index.js';
import { ErrorCode } from '../domain/errors.js';
import type { Engine } from '../engine/index.js';
import type { Store } from '../store/store.js';
import { ArtifactMirror } from './artifact-mirror.js';
import { aptRoutes } from './routes/apt.js';
import { AuditTrail } from './audit.js';
import { type Role, isRole, roleAllows } from '../domain/roles.js';
import { type AccessControl, type Principal, SESSION_COOKIE, SignInLimiter, bearerToken, readCookie } from './auth.js';
import { accessRoutes } from './routes/access.js';
import { errorHandler, sendError } from './errors.js';
import { checkResponses } from './response-check.js';
import type { Metrics } from './metrics.js';
import { agentRoutes } from './routes/agent.js';
import { apiRoutes } from './routes/api.js';
import { artifactRoutes } from './routes/artifacts.js';
import type { AgentExecutable, AgentScript } from './agent-files.js';
import { installRoutes } from './routes/install.js';
import { streamRoutes } from './routes/stream.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /**
     * Who may call the route; every route declares it. `public`: anyone; `agent`: a node
     * credential; a role: a user token or console session with at least that role. A
     * route without it is refused (see `buildApp`).
     */
    access?: RouteAccess;
  }
}

export type RouteAccess = Role | 'public' | 'agent';

/** Every route with what it needs, as the router matches it. */
export interface RouteRule {
  method: string;
  url: string;
  access: RouteAccess | 'undeclared';
  /** The statuses (`200`, `4xx`) the route declares an answer for (`schema.response`). */
  responses: string[];
}

export interface AppDeps {
  engine: Engine;
  store: Store;
  access: AccessControl;
  /** Set the cookie's Secure flag (the server speaks TLS). */
  secureCookies?: boolean;
  signInLimit?: number;
  /** Proxies (addresses, CIDRs) whose X-Forwarded-For names the client; none by default. */
  trustedProxies?: readonly string[];
  /** HTTPS: PEM certificate and key. */
  tls?: { cert: Buffer; key: Buffer };
  metrics: Metrics;
  pausedTtlMs: number;
  logger?: PinoLogger | false;
  /** The built console (dist/web); served at `/` when present. */
  webRoot?: string;
  version: string;
  artifactDir: string;
  /** The agent as one JavaScript file (dist/agent.js), when built. */
  bundle: () => AgentScript | undefined;
  /** The agent executable (dist/agent/upshift-agent-linux-x64), when built: installs and self-upgrades. */
  executable: () => AgentExecutable | undefined;
  /** Window of the refused-request audit aggregation (tests shorten it). */
  auditWindowMs?: number;
  /** Check every JSON answer against its route's response schema (response-check.ts); on in tests. */
  checkResponses?: boolean;
}

/** Marks every route registered in a scope as public: the probes, the API docs, the console's files. */
function publicScope(scope: FastifyInstance<any, any, any, any, any>) {
  scope.addHook('onRoute', (route) => {
    route.config = { ...(route.config ?? {}), access: 'public' };
  });
}

const isChange = (method: string) => method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';

/**
 * The HTTP application. Who may call what is decided from the route the router matched
 * and the access it declares (`config.access`), never from the raw URL, so that no
 * spelling of a path (`/%61pi/…`, `//api`, `/api/v1/x/..`) reaches a handler other than
 * through that decision; a route that declares nothing is refused. See docs/design.md §7.
 */
export async function buildApp(deps: AppDeps, routeTable: RouteRule[] = []): Promise<FastifyInstance<any, any, any, any, any>> {
  const app = Fastify({
    ...(deps.tls ? { https: deps.tls } : {}),
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    return503OnClosing: true,
    trustProxy: deps.trustedProxies && deps.trustedProxies.length > 0 ? [...deps.trustedProxies] : false,
    // Artifact names are up to 201 characters; longer path parameters are refused.
    routerOptions: { maxParamLength: 256 },
    // A request the HTTP parser cannot read (a request target without a leading slash, a
    // bad header) is answered in the error envelope too, then the connection is closed.
    clientErrorHandler: (error, socket) => {
      if ((error as { code?: string }).code === 'ECONNRESET' || socket.destroyed) return;
      const tooLarge = (error as { code?: string }).code === 'HPE_HEADER_OVERFLOW';
      const body = JSON.stringify({
        error: { code: ErrorCode.BAD_REQUEST, message: tooLarge ? 'the request headers are too large' : 'the request is not valid HTTP' },
      });
      socket.end(
        `HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n${body}`,
      );
    },
    frameworkErrors: (error, _request, reply) => {
      const code = (error as { code?: string }).code;
      if (code === 'FST_ERR_BAD_URL') return sendError(reply, 400, ErrorCode.BAD_REQUEST, 'the path is not validly percent-encoded');
      if (code === 'FST_ERR_MAX_PARAM_LENGTH')
        return sendError(reply, 414, ErrorCode.BAD_REQUEST, 'a path parameter is longer than 256 characters');
      return sendError(reply, 400, ErrorCode.BAD_REQUEST, `the request is malformed: ${error.message}`);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Bodies are JSON (and octet streams where a route says so); a text body is refused (415).
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, ErrorCode.NOT_FOUND, `no route ${request.method} ${boundedUrl(request.url)}`),
  );

  // The route table: the authorization matrix test walks it, so a new route is checked.
  const declared: Array<{ route: { method: string | string[]; url: string; config?: unknown; schema?: { response?: unknown } } }> = [];
  app.addHook('onRoute', (route) => {
    declared.push({ route });
  });
  if (deps.checkResponses) checkResponses(app);

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Upshift API', version: deps.version, description: 'Upgrades the container runtime of a fleet in growing batches.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  // Audit: every change that went through is an event with its actor (never its body);
  // refusals, anonymous ones included, are counted per kind and minute (audit.ts).
  const audit = new AuditTrail(deps.store, (error) => app.log.warn({ err: error }, 'could not record the audit event'), deps.auditWindowMs);
  audit.start();
  app.addHook('onClose', async () => audit.stop());

  const limiter = new SignInLimiter(deps.signInLimit ?? 20);
  const signInFailure = async (ip: string): Promise<boolean> => {
    await audit.recordSignInFailure(ip, limiter.fail(ip));
    return limiter.isBlocked(ip);
  };
  const tooMany = (reply: FastifyReply) =>
    sendError(reply, 429, ErrorCode.TOO_MANY_REQUESTS, 'too many failed sign-ins from this address; wait a minute');

  /** A user principal from the bearer token or the console session, with at least `need`. */
  const authenticateUser = async (request: FastifyRequest, reply: FastifyReply, need: Role) => {
    const header = request.headers.authorization;
    if (header !== undefined) {
      // Checked before any token is compared: a blocked address learns nothing. Only token
      // attempts are held back; an open console session (an unguessable cookie) from the
      // same address keeps working.
      if (limiter.isBlocked(request.ip)) return tooMany(reply);
      const token = bearerToken(header);
      const principal = token === undefined ? undefined : await deps.access.authenticateToken(token);
      if (!principal) {
        if (await signInFailure(request.ip)) return tooMany(reply);
        return sendError(
          reply,
          401,
          ErrorCode.UNAUTHENTICATED,
          'unknown, expired or revoked token: check --token / UPSHIFT_TOKEN, or ask an admin for a new one (upshift token create)',
        );
      }
      request.principal = principal;
    } else {
      const sessionId = readCookie(request.headers.cookie, SESSION_COOKIE);
      if (!sessionId)
        return sendError(
          reply,
          401,
          ErrorCode.UNAUTHENTICATED,
          'missing token: send "Authorization: Bearer <token>" (the admin token is printed at first start and kept in the data dir as admin-token)',
        );
      const csrf = request.headers['x-csrf-token'];
      const session = await deps.access.authenticateSession(sessionId, typeof csrf === 'string' ? csrf : undefined);
      if (!session) return sendError(reply, 401, ErrorCode.UNAUTHENTICATED, 'the console session expired or was ended: sign in again');
      if (isChange(request.method) && !session.csrfOk)
        return sendError(
          reply,
          403,
          ErrorCode.CSRF_FAILED,
          'a change made with a session cookie needs the x-csrf-token header from sign-in',
        );
      request.principal = session.principal;
    }
    // The role is checked before the body is even parsed: a caller without the role
    // learns nothing about what the route would have accepted.
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
    // No route matched: the not-found handler answers, and nothing is behind it.
    if (request.is404) return undefined;
    const access = request.routeOptions.config.access;
    if (access === 'public') return undefined;
    if (access === 'agent') {
      const node = await deps.engine.agents.authenticate(request.headers.authorization);
      if (!node) return sendError(reply, 401, ErrorCode.UNAUTHENTICATED, 'missing or unknown node credential: the agent must join first');
      request.agentNode = node;
      return undefined;
    }
    if (isRole(access)) return authenticateUser(request, reply, access);
    request.log.error({ route: request.routeOptions.url }, 'route declares no access; refused');
    return sendError(reply, 403, ErrorCode.FORBIDDEN, 'this route declares who may call it nowhere, so nobody may');
  });

  // Every answer: no framing (clickjacking), no type sniffing, no referrer, a strict
  // content policy; API answers are never cached (some carry new secrets).
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-frame-options', 'DENY');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    const docs = !request.is404 && (request.routeOptions.url ?? '').startsWith('/docs');
    reply.header('content-security-policy', docs ? DOCS_CSP : CONSOLE_CSP);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    // By the matched route's pattern, never the raw path: a bounded set of series.
    deps.metrics.httpRequest(
      request.method,
      request.is404 ? '(no route)' : (request.routeOptions.url ?? '(no route)'),
      String(status),
      reply.elapsedTime / 1000,
    );
    const refused = status === 401 || status === 403 || status === 429 || (request.is404 && isChange(request.method));
    if (!refused && (!isChange(request.method) || !request.principal)) return;
    await audit.record({
      method: request.method,
      route: request.is404 ? undefined : request.routeOptions.url,
      path: request.url,
      status,
      actor: request.principal?.name,
      address: request.ip,
      refused,
    });
  });

  const mirror = new ArtifactMirror(deps.artifactDir, deps.store);
  await mirror.adoptLegacyFiles((message) => app.log.warn(message));

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
        isBlocked: (ip: string) => limiter.isBlocked(ip),
        onSignInFailure: signInFailure,
      });
      await api.register(apiRoutes, { engine: deps.engine, store: deps.store, pausedTtlMs: deps.pausedTtlMs });
      await api.register(artifactRoutes, { store: deps.store, catalog: deps.engine.options.catalog, mirror });
      await api.register(agentRoutes, {
        prefix: '/agent',
        hub: deps.engine.agents,
        store: deps.store,
        mirror,
        executable: deps.executable,
      });
      await api.register(aptRoutes, { prefix: '/agent/apt', mirror });
      await api.register(streamRoutes, { store: deps.store, streams });
    },
    { prefix: '/api/v1' },
  );

  await app.register(async (scope) => {
    publicScope(scope);
    await scope.register(fastifySwaggerUi, { routePrefix: '/docs' });
    await scope.register(installRoutes, { bundle: deps.bundle, executable: deps.executable });
    scope.get('/healthz', { schema: { hide: true, response: { 200: HealthView, ...errorResponses } } }, async () => ({
      status: 'ok' as const,
    }));
    scope.get('/readyz', { schema: { hide: true, response: { 200: ReadyView, ...errorResponses } } }, async (_request, reply) => {
      try {
        await deps.store.ping();
      } catch (error) {
        return sendError(reply, 503, ErrorCode.NOT_READY, `the database does not answer: ${(error as Error).message}`);
      }
      if (!deps.engine.isRunning) return sendError(reply, 503, ErrorCode.NOT_READY, 'the engine is not running');
      return { status: 'ready' as const };
    });
    const webRoot = deps.webRoot;
    if (webRoot && existsSync(join(webRoot, 'index.html'))) {
      await scope.register(fastifyStatic, { root: webRoot, prefix: '/', wildcard: false, index: ['index.html'] });
      // The console's own client-side routes fall back to its index page; any other path
      // (an unknown API route, another spelling of one) is not found.
      scope.get('/*', { schema: { hide: true, response: { 200: ConsolePage, ...errorResponses } } }, (request, reply) => {
        const rest = (request.params as { '*'?: string })['*'] ?? '';
        if (!CONSOLE_ROUTE.test(rest))
          return sendError(reply, 404, ErrorCode.NOT_FOUND, `nothing at ${boundedUrl(request.url)}; the API is under /api/v1 (see /docs)`);
        return reply.sendFile('index.html');
      });
    } else {
      scope.get('/', { schema: { hide: true, response: { 302: RedirectToDocs } } }, (_request, reply) => reply.redirect('/docs'));
    }
  });

  app.get(
    '/metrics',
    { config: { access: 'viewer' }, schema: { hide: true, response: { 200: MetricsText, ...errorResponses } } },
    async (_request, reply) => {
      const body = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(body);
    },
  );

  await app.ready();
  for (const { route } of declared) {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const access = (route.config as { access?: RouteAccess } | undefined)?.access;
    const responses = Object.keys((route.schema?.response as Record<string, unknown> | undefined) ?? {});
    for (const method of methods) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      routeTable.push({ method, url: route.url, access: access ?? 'undeclared', responses });
    }
  }
  return app;
}

/** Paths of the console's pages (web/src/App.tsx), as the router decoded them. */
const CONSOLE_ROUTE = /^(?:(?:clusters|upgrades|webhooks)(?:\/(?!\.\.?$)[^/]{1,256})?|events|tokens)$/;

/** The console's policy: its own scripts and styles only, talks to its own origin, never framed. */
const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Swagger UI (at /docs) sets inline styles; everything else as strict as the console. */
const DOCS_CSP = CONSOLE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

function boundedUrl(url: string): string {
  const path = url.split('?')[0] ?? '';
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}
