import { type Static, Type } from '@sinclair/typebox';
import { NullableString, Timestamp, View } from './common.js';

/** Join tokens: what an agent presents once to join a cluster (`/clusters/{id}/join-tokens`). */

export const JoinTokenBody = Type.Object(
  {
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 31_536_000 })),
    singleUse: Type.Optional(Type.Boolean({ description: 'admit exactly one join' })),
  },
  { additionalProperties: false },
);
export type JoinTokenBody = Static<typeof JoinTokenBody>;

/** A new join token and the commands that use it (shown once; only its hash is kept). */
export const JoinTokenView = View(
  {
    joinToken: Type.String(),
    expiresAt: Timestamp(),
    singleUse: Type.Boolean(),
    agentSha256: NullableString({
      description: 'sha256 of the agent file the server hands out; null when the server has no agent bundle built',
    }),
    joinCommand: Type.String({ description: 'installs the agent as a service on a host and joins it' }),
    agentCommand: Type.String({ description: 'runs the agent in the foreground' }),
  },
  { description: 'A new join token and the commands that use it' },
);
export type JoinTokenView = Static<typeof JoinTokenView>;

export const RevokedJoinTokens = View(
  { revoked: Type.Integer({ description: 'how many join tokens were revoked' }) },
  { description: 'How many join tokens were revoked' },
);
export type RevokedJoinTokens = Static<typeof RevokedJoinTokens>;
