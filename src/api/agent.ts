import { type Static, Type } from '@sinclair/typebox';
import type {
  AgentTask,
  HeartbeatResponse as DomainHeartbeatResponse,
  JoinResponse as DomainJoinResponse,
  SnapshotTaskParams,
  TaskArtifact,
  TaskPollResponse as DomainTaskPollResponse,
  UpgradeTaskParams,
} from '../domain/agent-protocol.js';
import { recipeNames, taskArtifactMethods, taskResults } from '../domain/agent-protocol.js';
import { components } from '../domain/components.js';
import { type Equal, type Expect, NotJson, OneOf, NullableString, StringEnum, Timestamp, View } from './common.js';

/**
 * The agent's side of the API, under `/api/v1/agent` (see domain/agent-protocol.ts for
 * the protocol). The agent keeps the protocol's types in `domain`, as it imports nothing
 * else; the schemas here describe exactly those types, and the compiler says so below.
 */

/** Facts an agent reports about its host; checked key by key by the server, which keeps the known ones. */
const Facts = Type.Object({}, { additionalProperties: true });

export const JoinBody = Type.Object({
  joinToken: Type.String({ maxLength: 200 }),
  name: Type.String({ maxLength: 63 }),
  facts: Facts,
  protocol: Type.Optional(Type.Integer()),
  joinSecret: Type.Optional(
    Type.String({
      maxLength: 200,
      description: 'the agent’s own join secret: a join that presents it again before the credential was used gets a new credential',
    }),
  ),
});
export type JoinBody = Static<typeof JoinBody>;

export const JoinResponse = View(
  {
    nodeId: Type.String(),
    clusterId: Type.String(),
    clusterName: Type.String(),
    credential: Type.String({ description: 'the node’s own credential; the agent stores it and never logs it' }),
    heartbeatSeconds: Type.Number(),
  },
  { description: 'The node’s credential' },
);
export type JoinResponse = Static<typeof JoinResponse>;

export const HeartbeatBody = Type.Object({ facts: Facts });
export type HeartbeatBody = Static<typeof HeartbeatBody>;

export const HeartbeatResponse = View(
  {
    serverTime: Timestamp(),
    heartbeatSeconds: Type.Number(),
    pollSeconds: Type.Optional(
      Type.Number({
        description:
          'The long poll’s length the server asks for; its polls then count as heartbeats, and the agent heartbeats only when its facts change or no poll is open',
      }),
    ),
    linesWithResult: Type.Optional(
      Type.Boolean({ description: 'The server keeps the log lines a result carries (`log`) in the task’s log, with the result' }),
    ),
    factsWithResult: Type.Optional(
      Type.Boolean({ description: 'The server records the facts a result carries (`facts`) as the node’s heartbeat, after the result' }),
    ),
    requestsCountAsHeartbeats: Type.Optional(
      Type.Boolean({
        description:
          'The server counts a task poll’s answer, log lines and a result as heartbeats without news: the agent skips a heartbeat with unchanged facts when one of them went through within half a heartbeat interval',
      }),
    ),
  },
  { description: 'Acknowledged' },
);
export type HeartbeatResponse = Static<typeof HeartbeatResponse>;

export const TaskPollQuery = Type.Object({ waitSeconds: Type.Optional(Type.String({ pattern: '^[0-9]{1,2}$' })) });
export type TaskPollQuery = Static<typeof TaskPollQuery>;

export const TaskArtifactView = View({
  method: StringEnum(taskArtifactMethods),
  file: Type.Optional(Type.String({ description: 'deb, binary: the file to fetch from /api/v1/agent/artifacts/{file}' })),
  sha256: Type.Optional(Type.String()),
  package: Type.Optional(Type.String({ description: 'apt: the package to install from the node’s own repositories' })),
  packageVersion: Type.Optional(Type.String()),
});

export const UpgradeTaskParamsView = View({
  component: StringEnum(components),
  fromVersion: NullableString(),
  toVersion: Type.String(),
  artifacts: Type.Array(TaskArtifactView),
});

export const SnapshotTaskParamsView = View({ label: Type.String() });

export const AgentTaskView = View({
  taskKey: Type.String({ description: 'idempotent: the server re-delivers a task until its result arrives' }),
  recipe: StringEnum(recipeNames),
  params: OneOf([UpgradeTaskParamsView, SnapshotTaskParamsView]),
  createdAt: Timestamp(),
});

export const TaskPollResponse = View(
  { tasks: Type.Array(AgentTaskView, { description: 'open tasks, oldest first' }) },
  { description: 'The node’s open tasks' },
);
export type TaskPollResponse = Static<typeof TaskPollResponse>;

export const TaskKeyParams = Type.Object({ taskKey: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,200}$' }) });
export type TaskKeyParams = Static<typeof TaskKeyParams>;

export const TaskLogBody = Type.Object({ lines: Type.Array(Type.String(), { maxItems: 1000 }) });
export type TaskLogBody = Static<typeof TaskLogBody>;

/** A task's result: `result`, and the facts of domain/agent-protocol.ts TaskResultRequest, checked by the server. */
export const TaskResultBody = Type.Object(
  {
    result: StringEnum(taskResults),
    log: Type.Optional(Type.Array(Type.String(), { maxItems: 1000, description: 'The task’s last log lines, kept with the result' })),
    facts: Type.Optional(Facts),
  },
  { additionalProperties: true },
);
export type TaskResultBody = Static<typeof TaskResultBody>;

export const AgentFileParams = Type.Object({ file: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}$' }) });
export type AgentFileParams = Static<typeof AgentFileParams>;

/**
 * What an agent asks `/api/v1/agent/bundle` for: the executable for its CPU. Agents that run
 * as a JavaScript file (before 1.2, `node agent.js`) send neither and are refused with
 * AGENT_REINSTALL_NEEDED, which says how to move the host to the executable.
 */
export const AgentBundleQuery = Type.Object({
  form: Type.Optional(StringEnum(['executable'] as const)),
  arch: Type.Optional(Type.String({ pattern: '^[a-z0-9]{1,16}$', description: "the agent's CPU as Node.js names it (x64, arm64)" })),
});
export type AgentBundleQuery = Static<typeof AgentBundleQuery>;
export const AgentBundleFile = NotJson(
  'application/octet-stream',
  'The agent executable for self-upgrades; its sha256 in the x-upshift-sha256 header',
  'binary',
);
export const ArtifactFile = NotJson('application/octet-stream', 'The file’s bytes; its sha256 in the x-upshift-sha256 header', 'binary');

/** The compiler checks that the schemas and the agent's own types are the same. */
export type AgentProtocolMatches = [
  Expect<Equal<JoinResponse, DomainJoinResponse>>,
  Expect<Equal<HeartbeatResponse, DomainHeartbeatResponse>>,
  Expect<Equal<TaskPollResponse, DomainTaskPollResponse>>,
  Expect<Equal<Static<typeof AgentTaskView>, AgentTask>>,
  Expect<Equal<Static<typeof TaskArtifactView>, TaskArtifact>>,
  Expect<Equal<Static<typeof UpgradeTaskParamsView>, UpgradeTaskParams>>,
  Expect<Equal<Static<typeof SnapshotTaskParamsView>, SnapshotTaskParams>>,
];

/** The apt repository of the mirror (server/apt-repository.ts): one architecture's index, one pool file. */
export const AptArchParams = Type.Object({ arch: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,30}$' }) });
export type AptArchParams = Static<typeof AptArchParams>;
export const AptPoolParams = Type.Object({ file: Type.String({ pattern: '^[0-9a-f]{64}\\.deb$' }) });
export type AptPoolParams = Static<typeof AptPoolParams>;
export const AptText = NotJson('text/plain', 'An apt index file (Release, InRelease, Release.gpg, Packages)');
export const AptKey = NotJson('application/pgp-keys', 'The repository’s OpenPGP public key (binary), for a host’s Signed-By', 'binary');
export const AptPoolFile = NotJson('application/vnd.debian.binary-package', 'A package named by the index', 'binary');
