import type { EventEmitter } from 'node:events';
import type { AgentTask, TaskArtifact, TaskResultRequest } from '../../domain/agent-protocol.js';
import type { Catalog } from '../../domain/catalog.js';
import { findCatalogVersion } from '../../domain/catalog.js';
import type { Component, ComponentVersions } from '../../domain/components.js';
import { isComponent } from '../../domain/components.js';
import { ErrorCode, UpshiftError, invalid } from '../../domain/errors.js';
import type { AgentTaskRecord, NodeRecord } from '../../domain/model.js';
import type { AgentTaskRequest, Clock } from '../../domain/ports.js';
import { isValidVersion, releaseOf } from '../../domain/versions.js';
import type { Store } from '../../store/store.js';
import { agentText } from './agent-input.js';
import type { AgentLiveness } from './liveness.js';
import type { AgentTaskLogs } from './task-logs.js';

/** The agent task `taskKey` if it is a task of `node`; NOT_FOUND otherwise (an agent sees only its own tasks). */
export async function taskOfNode(store: Store, node: NodeRecord, taskKey: string): Promise<AgentTaskRecord> {
  const task = await store.agents.getTask(taskKey);
  if (!task || task.nodeId !== node.id) throw new UpshiftError(ErrorCode.NOT_FOUND, `task ${taskKey} is not a task of node ${node.name}`);
  return task;
}

/**
 * Tasks from the drivers to the agents and their results back: a driver queues a task
 * (`runAgentTask`, idempotent per task key) and waits; the node's agent long-polls for
 * it and reports its result; a task whose agent went silent or ran too long fails
 * (`AgentLiveness.overdue`). Everything is in the database; the in-process emitter only
 * wakes long polls and waiters early (another replica's work is found by polling).
 */
export class AgentTaskDelivery {
  constructor(
    private readonly ctx: {
      store: Store;
      clock: Clock;
      /** `queued:<nodeId>` wakes the node's long poll, `finished:<taskKey>` the task's waiter. */
      signals: EventEmitter;
      liveness: AgentLiveness;
      logs: AgentTaskLogs;
      taskTimeoutMs: number;
      /** sha256 of the agent bundle this server serves, for self-upgrades. */
      bundleSha256: () => string | undefined;
    },
  ) {}

  /** Open tasks of the node; waits up to `waitSeconds` for one to be queued. */
  async poll(node: NodeRecord, waitSeconds: number, signal: AbortSignal): Promise<AgentTask[]> {
    const { store, signals } = this.ctx;
    const deadline = Date.now() + Math.min(Math.max(waitSeconds, 0), 30) * 1000;
    for (;;) {
      const rows = await store.agents.deliverOpenTasks(node.id);
      if (rows.length > 0 || Date.now() >= deadline || signal.aborted) {
        return rows.map((r) => ({ taskKey: r.taskKey, recipe: r.recipe, params: r.params, createdAt: r.createdAt }));
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signals.off(`queued:${node.id}`, done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        // A task queued by this process wakes the poll at once. Another replica's task is
        // only seen by looking again: every 2 s on PostgreSQL. SQLite has one server, so
        // an idle poll costs no query until its deadline (1,000 idle agents: ~500
        // queries a second saved).
        const recheck = store.sharedWithReplicas ? 2000 : Number.POSITIVE_INFINITY;
        const timer = setTimeout(done, Math.min(recheck, Math.max(0, deadline - Date.now())));
        signals.once(`queued:${node.id}`, done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  async reportResult(node: NodeRecord, taskKey: string, raw: TaskResultRequest): Promise<void> {
    const { store } = this.ctx;
    if (raw.result !== 'succeeded' && raw.result !== 'failed') throw invalid('result must be "succeeded" or "failed"');
    await taskOfNode(store, node, taskKey);
    const versions: ComponentVersions = {};
    for (const [key, value] of Object.entries(raw.versions ?? {})) {
      if (isComponent(key) && typeof value === 'string' && isValidVersion(value)) versions[key] = value;
    }
    // The error is multi-line text (a step's output); the step and the snapshot's ref are one line.
    const result: TaskResultRequest = {
      result: raw.result,
      ...(typeof raw.error === 'string' ? { error: agentText(raw.error, 4000, { tabs: true, newlines: true }) } : {}),
      ...(typeof raw.step === 'string' ? { step: agentText(raw.step, 40) } : {}),
      ...(typeof raw.ref === 'string' ? { ref: agentText(raw.ref, 500) } : {}),
      ...(raw.rolledBack === true ? { rolledBack: true } : {}),
      versions,
    };
    if (await store.agents.finishTask(taskKey, node.id, raw.result, result)) {
      this.ctx.signals.emit(`finished:${taskKey}`);
      return;
    }
    const ended = await store.agents.getTask(taskKey);
    if (ended) await this.ctx.logs.lateResult(ended, raw.result, result.error);
  }

  /** Queues the task for its node's agent (unless it is queued already) and waits for its result. */
  async runAgentTask(task: AgentTaskRequest, signal: AbortSignal): Promise<TaskResultRequest> {
    const { store, signals, clock, liveness, taskTimeoutMs } = this.ctx;
    await store.agents.ensureTask(task);
    signals.emit(`queued:${task.nodeId}`);
    for (;;) {
      const row = await store.agents.getTask(task.taskKey);
      if (!row) throw new UpshiftError(ErrorCode.INTERNAL, `agent task ${task.taskKey} vanished`);
      if (row.state === 'succeeded' || row.state === 'failed') return row.result ?? { result: row.state };
      const now = clock.now();
      const age = now - Date.parse(row.createdAt);
      const ended = await liveness.overdue(task.nodeId, row.state, Date.parse(row.createdAt), now);
      if (ended) {
        if (await store.agents.finishTask(task.taskKey, task.nodeId, 'failed', ended)) return ended;
        continue;
      }
      if (signal.aborted) throw signal.reason;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signals.off(`finished:${task.taskKey}`, done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(2000, Math.max(10, taskTimeoutMs - age)));
        signals.once(`finished:${task.taskKey}`, done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** What a node downloads for a component's version: the agent bundle, uploaded artifacts of the release, the catalog's. */
  async artifactsFor(component: Component, version: string, catalog: Catalog): Promise<TaskArtifact[]> {
    const out: TaskArtifact[] = [];
    if (component === 'agent') {
      const sha256 = this.ctx.bundleSha256();
      if (sha256) out.push({ method: 'agent-bundle', sha256 });
      return out;
    }
    const release = releaseOf(version);
    for (const a of await this.ctx.store.artifacts.list({ component })) {
      if (releaseOf(a.version) === release && (a.method === 'deb' || a.method === 'binary')) {
        out.push({ method: a.method, file: a.file, sha256: a.sha256 });
      }
    }
    for (const a of findCatalogVersion(catalog, component, version)?.artifacts ?? []) {
      if (a.method === 'apt' && a.file)
        out.push({ method: 'apt', package: a.file, ...(a.packageVersion ? { packageVersion: a.packageVersion } : {}) });
      if ((a.method === 'deb' || a.method === 'binary') && a.file && a.sha256 && !out.some((o) => o.file === a.file)) {
        out.push({ method: a.method, file: a.file, sha256: a.sha256 });
      }
    }
    return out;
  }
}
