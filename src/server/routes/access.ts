import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  CreatedTokenView,
  CurrentSessionView,
  NoContent,
  SessionIdParam,
  SessionList,
  SignInBody,
  SignInView,
  TokenBody,
  TokenIdParam,
  TokenList,
  errorResponses,
} from '../../api/index.js';
import { ErrorCode, UpshiftError } from '../../domain/errors.js';
import { EventType } from '../../domain/events.js';
import type { Role } from '../../domain/roles.js';
import type { Store } from '../../store/store.js';
import { type AccessControl, SESSION_COOKIE, SESSION_HOURS, bearerToken, csrfTokenOf, readCookie } from '../auth.js';
import { sendError } from '../errors.js';
import { actorOf } from './api-deps.js';

/** API tokens (admin) and console sessions (sign-in with a token, then an httpOnly cookie). */
export const accessRoutes: FastifyPluginAsyncTypebox<{
  access: AccessControl;
  store: Store;
  secureCookies: boolean;
  /** The sign-in limit, consulted before any token is compared. */
  isBlocked: (ip: string) => boolean;
  onSignInFailure: (ip: string) => Promise<boolean>;
}> = async (app, { access, store, secureCookies, isBlocked, onSignInFailure }) => {
  app.post(
    '/tokens',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['access'],
        summary: 'Create an API token (shown once)',
        body: TokenBody,
        response: { 201: CreatedTokenView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const created = await access.createToken(request.body, actorOf(request));
      await store.events.append({
        type: EventType.tokenCreated,
        actor: actorOf(request),
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `token ${created.name} (${created.role}) created${created.expiresAt ? `, expires ${created.expiresAt}` : ''}`,
      });
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/tokens',
    {
      config: { access: 'admin' },
      schema: { tags: ['access'], summary: 'List API tokens (never their secrets)', response: { 200: TokenList, ...errorResponses } },
    },
    async () => ({
      items: (await store.access.listTokens()).map((t) => ({
        id: t.id,
        name: t.name,
        role: t.role as Role,
        createdBy: t.createdBy,
        createdAt: t.createdAt,
        expiresAt: t.expiresAt,
        revokedAt: t.revokedAt,
      })),
    }),
  );

  app.delete(
    '/tokens/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['access'],
        summary: 'Revoke an API token and its console sessions',
        params: TokenIdParam,
        response: { 204: NoContent, ...errorResponses },
      },
    },
    async (request, reply) => {
      if (!(await store.access.revokeToken(request.params.id)))
        throw new UpshiftError(ErrorCode.NOT_FOUND, `token ${request.params.id} does not exist or is already revoked`);
      await store.events.append({
        type: EventType.tokenRevoked,
        actor: actorOf(request),
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `token ${request.params.id} revoked`,
      });
      return reply.code(204).send();
    },
  );

  /** Sign-in: a token in the body; answers with a CSRF token and sets the session cookie. */
  app.post(
    '/session',
    {
      config: { access: 'public' },
      schema: {
        tags: ['access'],
        summary: 'Console sign-in with an API token',
        body: SignInBody,
        response: { 200: SignInView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const tooMany = () => sendError(reply, 429, ErrorCode.TOO_MANY_REQUESTS, 'too many failed sign-ins from this address; wait a minute');
      // Before the token is even looked at: a blocked address learns nothing from a guess.
      if (isBlocked(request.ip)) return tooMany();
      const token = bearerToken(`Bearer ${request.body.token}`);
      const principal = token === undefined ? undefined : await access.authenticateToken(token);
      if (!principal) {
        return (await onSignInFailure(request.ip))
          ? tooMany()
          : sendError(reply, 401, ErrorCode.UNAUTHENTICATED, 'unknown, expired or revoked token');
      }
      const session = await access.createSession(principal, request.ip);
      await store.events.append({
        type: EventType.authSignedIn,
        actor: principal.name,
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `${principal.name} (${principal.role}) signed in to the console from ${request.ip}`,
      });
      reply.header(
        'set-cookie',
        `${SESSION_COOKIE}=${session.sessionId}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_HOURS * 3600}${secureCookies || request.protocol === 'https' ? '; Secure' : ''}`,
      );
      return { csrfToken: session.csrfToken, expiresAt: session.expiresAt, principal: { name: principal.name, role: principal.role } };
    },
  );

  app.get(
    '/session',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['access'],
        summary: 'Who is signed in; for a console session also its CSRF token, so that a new tab can share it',
        response: { 200: CurrentSessionView, ...errorResponses },
      },
    },
    async (request) => {
      // Set by the access check of every route but the public ones.
      if (!request.principal) throw new UpshiftError(ErrorCode.UNAUTHENTICATED, 'not signed in');
      const principal = { name: request.principal.name, role: request.principal.role };
      const sessionId = request.headers.authorization === undefined ? readCookie(request.headers.cookie, SESSION_COOKIE) : undefined;
      const session = sessionId ? await access.authenticateSession(sessionId, undefined) : undefined;
      if (!sessionId || !session) return { principal };
      return { principal, csrfToken: csrfTokenOf(sessionId), expiresAt: session.expiresAt };
    },
  );

  app.get(
    '/sessions',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['access'],
        summary: 'Open console sessions (never their secrets)',
        response: { 200: SessionList, ...errorResponses },
      },
    },
    async () => ({ items: await access.listSessions() }),
  );

  app.delete(
    '/sessions/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['access'],
        summary: 'End a console session',
        params: SessionIdParam,
        response: { 204: NoContent, ...errorResponses },
      },
    },
    async (request, reply) => {
      if (!(await access.revokeSession(request.params.id)))
        throw new UpshiftError(ErrorCode.NOT_FOUND, `session ${request.params.id} does not exist or has ended`);
      await store.events.append({
        type: EventType.sessionRevoked,
        actor: actorOf(request),
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `console session ${request.params.id} ended by ${actorOf(request)}`,
      });
      return reply.code(204).send();
    },
  );

  app.delete(
    '/session',
    { config: { access: 'viewer' }, schema: { tags: ['access'], summary: 'Sign out', response: { 204: NoContent, ...errorResponses } } },
    async (request, reply) => {
      const sessionId = readCookie(request.headers.cookie, SESSION_COOKIE);
      if (sessionId) await access.endSession(sessionId);
      reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
      return reply.code(204).send();
    },
  );
};
