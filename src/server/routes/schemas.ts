import { Type } from '@sinclair/typebox';
import { components } from '../../domain/components.js';

/**
 * An id or a name in a path or a query: what ids and names are made of, nothing more,
 * so that no other byte (a NUL, a slash from `%2F`, a control character) reaches a lookup.
 */
const Ref = (description: string, maxLength = 128) =>
  Type.String({ pattern: `^[A-Za-z0-9][A-Za-z0-9._:-]{0,${maxLength - 1}}$`, description });

/** Request schemas shared by the routes. Types are checked here (400); values that are the right type but unacceptable give 422. */
export const IdParam = Type.Object({ id: Ref('id, or name for clusters') });
export const ClusterNodeParams = Type.Object({
  id: Ref('id, or name for clusters'),
  nodeId: Ref('node id, or node name'),
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
    clusterId: Type.Optional(Ref('cluster id or name')),
    state: Type.Optional(Type.String({ enum: ['BackingUp', 'SnapshotFailed', 'Upgrading', 'Paused', 'Canceled', 'Completed'] })),
  },
  { additionalProperties: false },
);

export const EventQuery = Type.Object(
  {
    clusterId: Type.Optional(Ref('cluster id or name')),
    upgradeId: Type.Optional(Ref('upgrade id')),
    type: Type.Optional(Ref('event type such as upgrade.paused', 64)),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '1 to 500, default 50' })),
  },
  { additionalProperties: false },
);

export const StreamQuery = Type.Object(
  {
    clusterId: Type.Optional(Ref('cluster id or name')),
    upgradeId: Type.Optional(Ref('upgrade id')),
    type: Type.Optional(Ref('event type such as upgrade.paused', 64)),
  },
  { additionalProperties: false },
);

export const ErrorEnvelope = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() }),
});
