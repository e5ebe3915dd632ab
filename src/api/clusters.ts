import { type Static, Type } from '@sinclair/typebox';
import { clusterKinds, components, nodeRoles } from '../domain/components.js';
import { clusterStatuses } from '../domain/fleet-summary.js';
import { upgradeStates } from '../domain/upgrade-state.js';
import { FreeObject, ItemList, keyed, NullableEnum, NullableString, OrNull, Page, Ref, StringEnum, Timestamp, View } from './common.js';
import { MaintenanceWindowBody, MaintenanceWindowView } from './maintenance-window.js';
import { JoinTokenView } from './join-tokens.js';

/** Clusters and their nodes: `/clusters`, `/clusters/{id}`, `/clusters/{id}/nodes`. */

/** Requests: types are checked by the schema (400); values of the right type but unacceptable give 422. */
export const IdParam = Type.Object({ id: Ref('id, or name for clusters') });
export type IdParam = Static<typeof IdParam>;

export const ClusterNodeParams = Type.Object({
  id: Ref('id, or name for clusters'),
  nodeId: Ref('node id, or node name'),
});
export type ClusterNodeParams = Static<typeof ClusterNodeParams>;

/** A new cluster: its name and kind, and the kind's own settings (`simulation`, an Engine endpoint, a kubeconfig, …). */
export const ClusterBody = Type.Object(
  {
    name: Type.String({ description: 'unique; letters, digits, . _ -' }),
    kind: StringEnum(clusterKinds),
    window: Type.Optional(
      Type.Union([MaintenanceWindowBody, Type.Null()], { description: 'the default maintenance window of its upgrades' }),
    ),
  },
  { additionalProperties: true },
);
export type ClusterBody = Static<typeof ClusterBody>;

/** What can change on a cluster after it is created: its default maintenance window (null: none). */
export const ClusterPatchBody = Type.Object(
  {
    window: Type.Union([MaintenanceWindowBody, Type.Null()], {
      description: 'batches of its upgrades start only in this window; null: any time',
    }),
  },
  { additionalProperties: false },
);
export type ClusterPatchBody = Static<typeof ClusterPatchBody>;

export const NodeBody = Type.Object({ name: Type.String() }, { additionalProperties: false });
export type NodeBody = Static<typeof NodeBody>;

/** The versions a node runs, by component; a component that is not installed is absent. */
export const ComponentVersionsView = View(keyed(components, Type.Optional(Type.String())));
export type ComponentVersionsView = Static<typeof ComponentVersionsView>;

export const ComponentSummaryView = View({
  versions: Type.Record(Type.String(), Type.Integer(), { description: 'how many nodes run each version' }),
  latest: NullableString({ description: 'the newest version in the catalog' }),
  upgradable: Type.Boolean({
    description: 'some node runs an older version than the newest that installs on the nodes’ distributions (the default target)',
  }),
});
export type ComponentSummaryView = Static<typeof ComponentSummaryView>;

export const ClusterView = View(
  {
    id: Type.String(),
    name: Type.String(),
    kind: StringEnum(clusterKinds),
    status: StringEnum(clusterStatuses),
    statusText: Type.String({ description: 'the status in a sentence, as the console shows it' }),
    nodeCount: Type.Integer(),
    activeUpgradeId: NullableString(),
    activeUpgradeState: NullableEnum(upgradeStates),
    activeUpgradeComponent: NullableEnum(components),
    components: View(keyed(components, ComponentSummaryView)),
    config: FreeObject({ description: 'the kind’s settings (never secrets)' }),
    window: OrNull(MaintenanceWindowView),
    createdAt: Timestamp(),
  },
  { description: 'A cluster' },
);
export type ClusterView = Static<typeof ClusterView>;

export const ClusterList = ItemList(ClusterView, 'The clusters');
export type ClusterList = Static<typeof ClusterList>;

/**
 * A new cluster. For `hosts` and `swarm` also a first join token and the commands that
 * use it (shown once).
 */
export const ClusterCreatedView = View(
  {
    ...ClusterView.properties,
    ...Type.Partial(JoinTokenView).properties,
  },
  { description: 'The new cluster; for hosts and swarm with its first join token' },
);
export type ClusterCreatedView = Static<typeof ClusterCreatedView>;

export const NodeView = View(
  {
    id: Type.String(),
    name: Type.String(),
    role: StringEnum(nodeRoles),
    status: Type.String({ description: 'Ready, Down, Unknown, Draining, …' }),
    versions: ComponentVersionsView,
    distribution: NullableString({
      description:
        "the distribution its agent reports (debian-13: os-release's ID-VERSION_ID); null without one (no agent, or an older one)",
    }),
    createdAt: Timestamp(),
  },
  { description: 'A node' },
);
export type NodeView = Static<typeof NodeView>;

export const NodePage = Page(NodeView, 'A page of the cluster’s nodes');
export type NodePage = Static<typeof NodePage>;

/** The answer to `POST /clusters/{id}/nodes/{nodeId}/reset`. */
export const NodeResetView = View(
  {
    node: NodeView,
    cluster: Type.String({ description: 'the cluster’s name' }),
    revokedCredentials: Type.Integer({ description: '0: the node’s agent had not joined, or it was reset already' }),
    failedTasks: Type.Array(Type.String(), { description: 'ids of the node’s open tasks, failed by the reset' }),
  },
  { description: 'The node whose credential was revoked' },
);
export type NodeResetView = Static<typeof NodeResetView>;
