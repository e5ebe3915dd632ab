import { type Static, Type } from '@sinclair/typebox';
import { components, nodeRoles } from '../domain/components.js';
import { batchStates, nodeTaskStates, snapshotModes, snapshotStates } from '../domain/model.js';
import { errorCodes } from '../domain/errors.js';
import { gateKinds } from '../domain/gates.js';
import { endReasonKinds, upgradeStates } from '../domain/upgrade-state.js';
import {
  ItemList,
  keyed,
  NullableInteger,
  NullableNumber,
  NullableString,
  OneOf,
  OneOfOrNull,
  OrNull,
  Page,
  Ref,
  StringEnum,
  Timestamp,
  View,
} from './common.js';
import { MaintenanceWindowBody, MaintenanceWindowView } from './maintenance-window.js';

/** Upgrades: plans, starting, steering (`/upgrades/{id}/{command}`) and their node tasks. */

export const VersionString = Type.String({
  pattern: '^[0-9A-Za-z][0-9A-Za-z.+~:_-]{0,63}$',
  description: 'a catalog version such as 26.1.5',
});

/**
 * A health gate as a request gives it (docs/design.md, "Rollout guards"): the shapes are
 * checked here; the values (URLs, bounds, which fields a kind takes) by the engine, whose
 * errors say what to fix.
 */
export const GateBody = Type.Object(
  {
    kind: StringEnum(gateKinds, { description: 'http, prometheus or swarm-services (Swarm clusters only)' }),
    url: Type.Optional(Type.String({ description: 'http/prometheus: an http:// or https:// URL' })),
    expectStatus: Type.Optional(Type.Integer({ description: 'http: the status that passes (default 200)' })),
    timeoutSeconds: Type.Optional(Type.Number({ description: 'http/prometheus: the whole request (default 10)' })),
    bodyContains: Type.Optional(Type.String({ description: 'http: a text the body must contain' })),
    query: Type.Optional(Type.String({ description: 'prometheus: a PromQL instant query' })),
    max: Type.Optional(Type.Number({ description: 'prometheus: every value must be at most this' })),
    min: Type.Optional(Type.Number({ description: 'prometheus: every value must be at least this' })),
    allowEmpty: Type.Optional(Type.Boolean({ description: 'prometheus: no result passes (default false: it fails)' })),
    bearerToken: Type.Optional(Type.String({ description: 'prometheus: sent as Authorization: Bearer; stored sealed, never returned' })),
    retrySeconds: Type.Optional(
      Type.Number({ description: 'how long a failing gate is checked again before the upgrade pauses (default 60)' }),
    ),
  },
  { additionalProperties: false },
);
export type GateBody = Static<typeof GateBody>;
export const GateView = View({
  kind: StringEnum(gateKinds),
  url: Type.Optional(Type.String()),
  expectStatus: Type.Optional(Type.Integer()),
  timeoutSeconds: Type.Optional(Type.Number()),
  bodyContains: Type.Optional(Type.String()),
  query: Type.Optional(Type.String()),
  max: Type.Optional(Type.Number()),
  min: Type.Optional(Type.Number()),
  allowEmpty: Type.Optional(Type.Boolean()),
  bearerToken: Type.Optional(Type.Literal('(set)', { description: 'a bearer token is stored (sealed); it is never returned' })),
  retrySeconds: Type.Number(),
});
export type GateView = Static<typeof GateView>;

/** `POST /gates/test`: one check of one gate, now; `clusterId` for a swarm-services gate. */
export const GateTestBody = Type.Object(
  { gate: GateBody, clusterId: Type.Optional(Ref('cluster id or name')) },
  { additionalProperties: false },
);
export type GateTestBody = Static<typeof GateTestBody>;
export const GateTestView = View(
  { ok: Type.Boolean(), message: Type.String({ description: 'what the check found: the status, the value, the query and the bounds' }) },
  { description: 'The result of one check of a gate' },
);
export type GateTestView = Static<typeof GateTestView>;

export const UpgradeBody = Type.Object(
  {
    component: StringEnum(components, { description: 'agent, docker, containerd or sandboxed-runtime' }),
    toVersion: Type.Optional(VersionString),
    snapshot: Type.Optional(StringEnum(snapshotModes)),
    policy: Type.Optional(
      Type.Object(
        {
          maxBatchPercent: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
          soakSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 86400 })),
          window: Type.Optional(Type.Union([MaintenanceWindowBody, Type.Null()])),
          gates: Type.Optional(Type.Array(GateBody, { description: 'health gates checked before each batch' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type UpgradeBody = Static<typeof UpgradeBody>;

export const PlanQuery = Type.Object({ output: Type.Optional(StringEnum(['manifests'] as const)) }, { additionalProperties: false });
export type PlanQuery = Static<typeof PlanQuery>;

/** What an operator can ask of an upgrade: `POST /upgrades/{id}/{command}`. */
export const upgradeCommands = ['pause', 'resume', 'cancel', 'continue', 'quit'] as const;
export type UpgradeCommandName = (typeof upgradeCommands)[number];

export const ResumeBody = Type.Object({ deleteFailedPods: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type ResumeBody = Static<typeof ResumeBody>;

export const UpgradeListQuery = Type.Object(
  {
    clusterId: Type.Optional(Ref('cluster id or name')),
    state: Type.Optional(StringEnum(upgradeStates)),
  },
  { additionalProperties: false },
);
export type UpgradeListQuery = Static<typeof UpgradeListQuery>;

/** Why an upgrade is paused: by a person, or by the engine after a failure. */
const UserPause = View({ kind: Type.Literal('user'), actor: Type.String(), message: Type.String() });
const ErrorPause = View({ kind: Type.Literal('error'), message: Type.String(), nodeId: NullableString() });
const GatePause = View({
  kind: Type.Literal('gate'),
  gate: GateView,
  gateIndex: Type.Integer({ description: '0-based index of the gate in policy.gates' }),
  message: Type.String({ description: "what the gate's last check found: the status, the value, the query and the bounds" }),
});
export const PauseReasonView = OneOf([UserPause, ErrorPause, GatePause]);
export type PauseReasonView = Static<typeof PauseReasonView>;

/** Why an upgrade ended: kept on it for good (docs/design.md §3). */
export const EndReasonView = View(
  {
    kind: StringEnum(endReasonKinds, {
      description: 'completed, canceled (by an operator), quit (after a failed snapshot), auto_canceled (paused too long)',
    }),
    actor: Type.String({ description: 'who ended it; engine for the system' }),
    at: Timestamp(),
    message: Type.String(),
  },
  { description: 'Why the upgrade ended' },
);
export type EndReasonView = Static<typeof EndReasonView>;

/** Where an upgrade stands and when it should end. */
export const ProgressView = View(
  {
    batch: Type.Integer({ description: '1-based number of the batch running, or of the last one started; 0 before the first' }),
    batches: Type.Integer({
      description: 'batches started plus those planned for the nodes still to do (the ramp restarts at 1 after a resume)',
    }),
    plannedSizes: Type.Array(Type.Integer(), { description: 'sizes of the batches still to start, in order' }),
    nodesDone: Type.Integer({ description: 'nodes upgraded' }),
    nodesTotal: Type.Integer(),
    elapsedSeconds: Type.Number({ description: 'since the start, until the end once it ended' }),
    etaSeconds: NullableNumber({
      description:
        "expected seconds to the end, from this upgrade's batch durations (median) plus soak, else from the same component's earlier upgrades of this cluster; null while paused or when nothing is known",
    }),
    etaAt: NullableString({ description: 'the expected end, as a time' }),
  },
  { description: 'Progress and the expected end' },
);
export type ProgressView = Static<typeof ProgressView>;

export const PolicyView = View({
  maxBatchPercent: Type.Integer({ description: 'the largest batch, in percent of the nodes to upgrade' }),
  soakSeconds: Type.Number({ description: 'the wait after a batch before the next one starts' }),
  window: Type.Optional(OrNull(MaintenanceWindowView)),
  gates: Type.Optional(Type.Array(GateView, { description: 'health gates checked before each batch' })),
});

/** What an upgrade that is Upgrading with no batch running waits for, and until when. */
export const WaitingView = View({
  reason: StringEnum(['soak', 'window', 'gate'] as const, {
    description: 'soak: the wait after a batch; window: the maintenance window is closed; gate: a health gate fails and is checked again',
  }),
  until: Timestamp('soak, window: when it ends; gate: when the failing gate pauses the upgrade unless it passes first'),
});
export type WaitingView = Static<typeof WaitingView>;
export type PolicyView = Static<typeof PolicyView>;

export const BatchView = View({
  index: Type.Integer(),
  size: Type.Integer(),
  state: StringEnum(batchStates),
  nodes: Type.Array(Type.String(), { description: 'node ids' }),
  startedAt: Timestamp(),
  finishedAt: NullableString(),
});
export type BatchView = Static<typeof BatchView>;

export const SnapshotCounts = View({
  total: Type.Integer(),
  ...keyed(snapshotStates, Type.Integer()),
  failedNodes: Type.Array(Type.String(), { description: 'names of the nodes whose snapshot failed' }),
});
export type SnapshotCounts = Static<typeof SnapshotCounts>;

export const TaskCounts = View({
  total: Type.Integer(),
  ...keyed(nodeTaskStates, Type.Integer()),
});
export type TaskCounts = Static<typeof TaskCounts>;

export const UpgradeView = View(
  {
    id: Type.String(),
    clusterId: Type.String(),
    clusterName: NullableString({ description: 'null when the cluster was deleted since' }),
    component: StringEnum(components),
    toVersion: Type.String(),
    state: StringEnum(upgradeStates),
    statusText: Type.String({ description: 'the state in a sentence, as the console shows it' }),
    pauseReason: OneOfOrNull([UserPause, ErrorPause, GatePause]),
    endReason: OrNull(EndReasonView),
    progress: ProgressView,
    createdAt: Timestamp(),
    createdBy: Type.String(),
    pausedAt: NullableString(),
    finishedAt: NullableString(),
    autoCancelAt: NullableString({ description: 'while Paused or SnapshotFailed: when the paused TTL cancels the upgrade' }),
    nextBatchAt: NullableString({ description: 'soak: the next batch starts no earlier' }),
    waiting: OrNull(WaitingView),
    snapshot: StringEnum(snapshotModes),
    policy: PolicyView,
    cap: Type.Integer({ description: 'the largest batch, in nodes' }),
    nodes: TaskCounts,
    batches: Type.Array(BatchView),
    snapshots: OrNull(SnapshotCounts),
    drivenBy: NullableString({ description: 'the server replica driving it (host:pid:…), while one does' }),
  },
  { description: 'An upgrade' },
);
export type UpgradeView = Static<typeof UpgradeView>;

export const UpgradeList = ItemList(UpgradeView, 'Upgrades, newest first');
export type UpgradeList = Static<typeof UpgradeList>;

/** A node's part in an upgrade. */
export const NodeTaskView = View({
  nodeId: Type.String(),
  nodeName: Type.String(),
  role: StringEnum(nodeRoles),
  state: StringEnum(nodeTaskStates),
  batchIndex: NullableInteger(),
  attempt: Type.Integer({ description: '0 until first started; a retry after resume is attempt 2' }),
  startedAt: NullableString(),
  finishedAt: NullableString(),
  error: NullableString(),
  fromVersion: NullableString(),
  toVersion: Type.String(),
  snapshot: OrNull(View({ state: StringEnum(snapshotStates), ref: NullableString(), error: NullableString() })),
});
export type NodeTaskView = Static<typeof NodeTaskView>;

export const NodeTaskPage = Page(NodeTaskView, 'A page of the upgrade’s node tasks');
export type NodeTaskPage = Static<typeof NodeTaskPage>;

/** A failed executor pod kept for troubleshooting; it blocks a resume until deleted (Kubernetes). */
export const FailedPodView = View({
  namespace: Type.String(),
  name: Type.String(),
  node: NullableString({ description: 'the Kubernetes node it ran on' }),
  reason: NullableString({ description: 'the container’s terminated reason and exit code' }),
  finishedAt: NullableString(),
});
export type FailedPodView = Static<typeof FailedPodView>;
export const FailedPodList = View(
  { items: Type.Array(FailedPodView) },
  { description: 'The failed executor pods of a paused upgrade that a resume would refuse for; empty otherwise' },
);
export type FailedPodList = Static<typeof FailedPodList>;

/** The batches an upgrade would run, by node name; nothing is started. */
export const PlanView = View(
  {
    component: StringEnum(components),
    toVersion: Type.String(),
    total: Type.Integer({ description: 'nodes to upgrade' }),
    cap: Type.Integer({ description: 'the largest batch, in nodes' }),
    batches: Type.Array(Type.Array(Type.String())),
    estimatedSeconds: NullableNumber({
      description:
        "how long it should take: the median of this component's batch durations in the cluster's earlier upgrades per batch, plus soak; null without such history",
    }),
    notOffered: Type.Array(View({ version: Type.String(), reason: Type.String() }), {
      description: "the component's catalog versions that do not install on the nodes an upgrade to them would touch, with why",
    }),
    gates: Type.Array(GateView, { description: 'the health gates checked before each batch' }),
    refusal: OrNull(
      View(
        { code: StringEnum(errorCodes), message: Type.String() },
        { description: 'what a start with this request would be refused with now (an active upgrade first), or null' },
      ),
    ),
    manifests: Type.Optional(
      Type.Array(Type.Unknown(), { description: 'with ?output=manifests: what the driver would create (Kubernetes executor pods)' }),
    ),
  },
  { description: 'The batches the upgrade would run' },
);
export type PlanView = Static<typeof PlanView>;
