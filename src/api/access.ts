import { type Static, Type } from '@sinclair/typebox';
import { roles } from '../domain/roles.js';
import { ItemList, NullableString, StringEnum, Timestamp, View } from './common.js';

/** Access: API tokens (admins manage them), console sessions (sign-in with a token, then a cookie). */

export const TokenBody = Type.Object(
  { name: Type.String(), role: StringEnum(roles), expiresInSeconds: Type.Optional(Type.Integer({ minimum: 60 })) },
  { additionalProperties: false },
);
export type TokenBody = Static<typeof TokenBody>;

export const TokenIdParam = Type.Object({ id: Type.String({ pattern: '^tok_[A-Za-z0-9_-]{1,60}$' }) });
export type TokenIdParam = Static<typeof TokenIdParam>;

/** A new token: `token` is the secret, answered this once. */
export const CreatedTokenView = View(
  {
    id: Type.String(),
    name: Type.String(),
    role: StringEnum(roles),
    token: Type.String({ description: 'the secret: shown once, kept only as a hash' }),
    expiresAt: NullableString(),
  },
  { description: 'The new token, with its secret (shown once)' },
);
export type CreatedTokenView = Static<typeof CreatedTokenView>;

/** A token as admins list it (never its secret). */
export const ApiTokenView = View({
  id: Type.String(),
  name: Type.String(),
  role: StringEnum(roles),
  createdBy: Type.String(),
  createdAt: Timestamp(),
  expiresAt: NullableString(),
  revokedAt: NullableString(),
});
export type ApiTokenView = Static<typeof ApiTokenView>;

export const TokenList = ItemList(ApiTokenView, 'The tokens');
export type TokenList = Static<typeof TokenList>;

/** Who a request is made by: a token's name (the actor of what it does) and its role. */
export const PrincipalView = View({ name: Type.String(), role: StringEnum(roles) });
export type PrincipalView = Static<typeof PrincipalView>;

export const SignInBody = Type.Object({ token: Type.String({ maxLength: 600 }) }, { additionalProperties: false });
export type SignInBody = Static<typeof SignInBody>;

/** The answer to a sign-in (`POST /session`); the session itself is an httpOnly cookie. */
export const SignInView = View(
  {
    csrfToken: Type.String({ description: 'send it as x-csrf-token with every change' }),
    expiresAt: Timestamp(),
    principal: PrincipalView,
  },
  { description: 'Signed in; the session is a cookie' },
);
export type SignInView = Static<typeof SignInView>;

/** `GET /session`: who is signed in; for a console session also its CSRF token, so that a new tab can share it. */
export const CurrentSessionView = View(
  {
    principal: PrincipalView,
    csrfToken: Type.Optional(Type.String()),
    expiresAt: Type.Optional(Timestamp()),
  },
  { description: 'Who is signed in' },
);
export type CurrentSessionView = Static<typeof CurrentSessionView>;

/** An open console session as admins see it (never its secrets). */
export const SessionView = View({
  id: Type.String(),
  principal: Type.String(),
  role: StringEnum(roles),
  tokenId: NullableString({ description: 'the API token it was opened with; null for the bootstrap admin token' }),
  address: NullableString({ description: 'the address that signed in' }),
  createdAt: Timestamp(),
  expiresAt: Timestamp(),
});
export type SessionView = Static<typeof SessionView>;

export const SessionList = ItemList(SessionView, 'Open console sessions');
export type SessionList = Static<typeof SessionList>;

export const SessionIdParam = Type.Object({ id: Type.String({ pattern: '^ses_[A-Za-z0-9_-]{1,40}$' }) });
export type SessionIdParam = Static<typeof SessionIdParam>;
