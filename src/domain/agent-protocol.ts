import type { Component, ComponentVersions } from './components.js';

/**
 * The wire protocol between `upshift agent` and the server. Agents dial out (nodes
 * behind NAT work); every call but `join` carries the node's own credential as
 * `Authorization: Bearer <credential>`; an agent acts only as its own node.
 *
 *   POST /api/v1/agent/join                  JoinRequest → JoinResponse        (join token in the body)
 *   POST /api/v1/agent/heartbeat             HeartbeatRequest → HeartbeatResponse
 *   GET  /api/v1/agent/tasks?waitSeconds=N   long poll → TaskPollResponse      (tasks not yet finished, oldest first)
 *   POST /api/v1/agent/tasks/{taskKey}/log   TaskLogRequest → 204
 *   POST /api/v1/agent/tasks/{taskKey}/result TaskResultRequest → 204          (idempotent: a second report is ignored)
 *   GET  /api/v1/agent/artifacts/{file}      the file's bytes (sha256 in the task's params; verify before use)
 *   GET  /api/v1/agent/bundle                the current agent bundle (self-upgrade), header x-upshift-sha256
 *
 * Task keys are idempotent: the server re-delivers a task until its result arrives, and
 * the agent keeps a journal of the task keys it has started, so that after a restart of
 * either side a task is resumed or its outcome reported, never run a second time.
 */
export const AGENT_PROTOCOL_VERSION = 1;

export interface AgentFacts {
  hostname: string;
  os: string;
  /**
   * The distribution, as the catalog names it (`debian-13`, `ubuntu-24.04`; agent/facts.ts
   * says how it is made). Absent from agents older than 1.1 and on hosts without
   * /etc/os-release: such nodes do not restrict which catalog versions are offered.
   */
  distribution?: string;
  arch: string;
  agentVersion: string;
  /** What the agent found: docker (Engine API `Version`), containerd, sandboxed-runtime (runsc release, e.g. `20240729`). */
  versions: ComponentVersions;
  /** The Engine API answered on the configured socket. */
  engineReachable: boolean;
  engineError?: string;
}

export interface JoinRequest {
  joinToken: string;
  /** Node name; defaults to the hostname. */
  name: string;
  facts: AgentFacts;
  protocol: number;
  /**
   * A random secret the agent made once and sends with every join (`upjs_…`; kept in
   * `<dataDir>/join-secret`, mode 0600). The server keeps its hash with the credential it
   * issues: a join presenting it again, before that credential was ever used, replaces
   * the credential instead of being refused (a join whose answer was lost; docs/design.md §9).
   */
  joinSecret?: string;
}

/** What a join secret looks like: `upjs_` and, as the agent makes it, 32 random bytes in base64url. */
export const JOIN_SECRET_PATTERN = /^upjs_[A-Za-z0-9_-]{20,100}$/;

export interface JoinResponse {
  nodeId: string;
  clusterId: string;
  clusterName: string;
  /** The node's own credential; the agent stores it (mode 0600) and never logs it. */
  credential: string;
  heartbeatSeconds: number;
}

export interface HeartbeatRequest {
  facts: AgentFacts;
}

export interface HeartbeatResponse {
  serverTime: string;
  heartbeatSeconds: number;
  /**
   * Servers that count a task poll as a heartbeat say so with the long poll's length
   * they ask for (an open poll keeps the node heard, so it may be longer than the
   * heartbeat interval). Such an agent sends a heartbeat only when its facts changed or
   * while no poll of its is open (during a task). Absent from older servers: the agent
   * then heartbeats every interval.
   */
  pollSeconds?: number;
  /**
   * Servers that keep log lines sent with a task's result (`TaskResultRequest.log`) in the
   * task's log, in the transaction that records the result, say so. Such an agent sends a
   * task's last lines with its result instead of in a request of their own before it.
   */
  linesWithResult?: boolean;
  /**
   * Servers that take the host's facts with a task's result (`TaskResultRequest.facts`)
   * and record them as that node's heartbeat say so. Such an agent sends its facts after
   * a task with the result instead of in a heartbeat of their own right after it.
   */
  factsWithResult?: boolean;
  /**
   * Servers that count an agent's other requests as heartbeats without news (a task
   * poll's answer, log lines, a result) say so. Such an agent skips a heartbeat whose
   * facts are those it sent last when one of these went through within half a heartbeat
   * interval: the server then hears the node at least every 1.5 intervals, well within the
   * three it allows.
   */
  requestsCountAsHeartbeats?: boolean;
}

/** Recipes the agent ships with; the server only ever names one and passes validated parameters. */
export const RecipeName = {
  dockerEngine: 'docker-engine',
  containerd: 'containerd',
  gvisorRunsc: 'gvisor-runsc',
  agentSelfUpgrade: 'agent-self-upgrade',
  snapshot: 'snapshot',
} as const;
export type RecipeName = (typeof RecipeName)[keyof typeof RecipeName];
export const recipeNames: readonly RecipeName[] = Object.values(RecipeName);

export function recipeFor(component: Component): RecipeName {
  switch (component) {
    case 'docker':
      return RecipeName.dockerEngine;
    case 'containerd':
      return RecipeName.containerd;
    case 'sandboxed-runtime':
      return RecipeName.gvisorRunsc;
    case 'agent':
      return RecipeName.agentSelfUpgrade;
    default: {
      const never: never = component;
      return never;
    }
  }
}

/** How an agent installs an artifact (the catalog's install methods an agent runs). */
export const taskArtifactMethods = ['deb', 'apt', 'binary', 'agent-bundle'] as const;
export type TaskArtifactMethod = (typeof taskArtifactMethods)[number];

export interface TaskArtifact {
  method: TaskArtifactMethod;
  /** For deb/binary/agent-bundle: file name to fetch from /api/v1/agent/artifacts/{file} (or the bundle route). */
  file?: string;
  sha256?: string;
  /** For apt: the package and exact version to install from the node's own repositories. */
  package?: string;
  packageVersion?: string;
}

export interface UpgradeTaskParams {
  component: Component;
  fromVersion: string | null;
  toVersion: string;
  artifacts: TaskArtifact[];
}

export interface SnapshotTaskParams {
  /** Labels the snapshot (`upshift-<upgradeId>`). */
  label: string;
}

export interface AgentTask {
  taskKey: string;
  recipe: RecipeName;
  params: UpgradeTaskParams | SnapshotTaskParams;
  createdAt: string;
}

export interface TaskPollResponse {
  tasks: AgentTask[];
}

export interface TaskLogRequest {
  lines: string[];
}

/** How a task ended, as its agent reports it. */
export const taskResults = ['succeeded', 'failed'] as const;
export type TaskResult = (typeof taskResults)[number];

export interface TaskResultRequest {
  result: TaskResult;
  /** The failing step (`preflight`, `backup`, `stop`, `install`, `start`, `verify`, `rollback`) and its output. */
  error?: string;
  step?: string;
  /** What the node runs afterwards. */
  versions?: ComponentVersions;
  /** Snapshot tasks: the provider's handle to restore from. */
  ref?: string;
  /** True when a failed upgrade was rolled back to the previous version. */
  rolledBack?: boolean;
  /**
   * The task's last log lines, not sent yet (at most `MAX_RESULT_LOG_LINES`), to servers
   * that say `linesWithResult`: kept in the task's log with the result. Never journaled:
   * a result reported again after a restart comes without them.
   */
  log?: string[];
  /**
   * The host's facts after the task, to servers that say `factsWithResult`: recorded as a
   * heartbeat once the result is. Never journaled, like `log`.
   */
  facts?: AgentFacts;
}

/** Log lines a result may carry; more go to the log route first. */
export const MAX_RESULT_LOG_LINES = 500;
