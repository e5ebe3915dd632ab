import { Type } from '@sinclair/typebox';
import { components } from '../../domain/components.js';

/** Request schemas shared by the routes. Types are checked here (400); values that are the right type but unacceptable give 422. */
export const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, description: 'id, or name for clusters' }) });
export const ClusterNodeParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128 }),
  nodeId: Type.String({ minLength: 1, maxLength: 128 }),
});

export const VersionString = Type.String({
  pattern: '^[0-9A-Za-z][0-9A-Za-z.+~:_-]{0,63}$',
  description: 'a catalog version such as 26.1.5',
});

export const UpgradeBody = Type.Object(
  {
    component: Type.String({ enum: [...components], description: 'agent, docker, containerd or sandboxed-runtime' }),
    toVersion: Type.Optional(VersionString),
    snapshot: Type.Optional(Type.String({ enum: ['none', 'before'] })),
    policy: Type.Optional(
      Type.Object(
        {
          maxBatchPercent: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
          soakSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 86400 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const ClusterBody = Type.Object(
  {
    name: Type.String({ description: 'unique; letters, digits, . _ -' }),
    kind: Type.String({ enum: ['simulated', 'hosts', 'swarm', 'kubernetes'] }),
  },
  { additionalProperties: true },
);

export const NodeBody = Type.Object({ name: Type.String() }, { additionalProperties: false });

export const ResumeBody = Type.Object({ deleteFailedPods: Type.Optional(Type.Boolean()) }, { additionalProperties: false });

export const UpgradeListQuery = Type.Object(
  {
    clusterId: Type.Optional(Type.String({ maxLength: 128 })),
    state: Type.Optional(Type.String({ enum: ['BackingUp', 'SnapshotFailed', 'Upgrading', 'Paused', 'Canceled', 'Completed'] })),
  },
  { additionalProperties: false },
);

export const EventQuery = Type.Object(
  {
    clusterId: Type.Optional(Type.String({ maxLength: 128 })),
    upgradeId: Type.Optional(Type.String({ maxLength: 128 })),
    type: Type.Optional(Type.String({ maxLength: 64 })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '1 to 500, default 50' })),
  },
  { additionalProperties: false },
);

export const StreamQuery = Type.Object(
  {
    clusterId: Type.Optional(Type.String({ maxLength: 128 })),
    upgradeId: Type.Optional(Type.String({ maxLength: 128 })),
    type: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export const ErrorEnvelope = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
});
