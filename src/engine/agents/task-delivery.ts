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
import type { AgentTaskNews } from '../../store/agents.js';
import type { Store } from '../../store/store.js';
import type { Logger } from '../types.js';
import { agentText } from './agent-input.js';
import { GroupCommit } from './group-commit.js';
import { type AgentLiveness, MAX_POLL_SECONDS } from './liveness.js';
import type { AgentTaskLogs } from './task-logs.js';

/** The agent task `taskKey` if it is a task of `node`; NOT_FOUND otherwise (an agent sees only its own tasks). */
export async function taskOfNode(store: Store, node: NodeRecord, taskKey: string): Promise<AgentTaskRecord> {
  const task = await store.agents.getTask(taskKey);
  return ownTask(task, node, taskKey);
}

/** `task` if it is there and a task of `node`; NOT_FOUND otherwise. */
export function ownTask(task: AgentTaskRecord | undefined, node: NodeRecord, taskKey: string): AgentTaskRecord {
  if (!task || task.nodeId !== node.id) throw new UpshiftError(ErrorCode.NOT_FOUND, `task ${taskKey} is not a task of node ${node.name}`);
  return task;
}

/** How often a driver's wait for a result looks whether the node's agent went silent. */
const OVERDUE_CHECK_MS = 2000;

const envelope = (r: AgentTaskRecord): AgentTask => ({ taskKey: r.taskKey, recipe: r.recipe, params: r.params, createdAt: r.createdAt });

/** A long poll waiting in this process: handed tasks, or woken to look in the database. */
interface PollWaiter {
  handOver(tasks: AgentTask[]): void;
  wake(): void;
}

interface ReportedResult {
  node: NodeRecord;
  taskKey: string;
  result: TaskResultRequest & { result: 'succeeded' | 'failed' };
  /** The task's last log lines, sent with the result. */
  lines: string[];
}

/**
 * Tasks from the drivers to the agents and their results back: a driver queues a task
 * (`runAgentTask`, idempotent per task key) and waits; the node's agent long-polls for
 * it and reports its result; a task whose agent went silent or ran too long fails
 * (`AgentLiveness.overdue`). Everything is in the database; memory only carries what was
 * just written to whoever waits for it (docs/design.md §9):
 *
 * - The tasks a batch queues at once are written in one statement, and every long poll
 *   waiting here for one of their nodes is handed its tasks in the same pass (one more
 *   statement marks them delivered): no poll looks in the database again.
 * - Results that arrive together are written in one transaction (a group commit: while
 *   one commits, the next ones gather); each agent is answered only after its result
 *   committed, and the driver waiting for it gets the result from memory.
 * - With several replicas (PostgreSQL) the replica that wrote announces it (NOTIFY), and
 *   the others wake their long polls and waiters, which then read the database.
 */
export class AgentTaskDelivery {
  private readonly polls = new Map<string, Set<PollWaiter>>();
  /** The ends of the polls waiting here, by deadline (ms): one timer per deadline. */
  private readonly deadlines = new Map<number, { ends: Set<() => void>; timer: ReturnType<typeof setTimeout> }>();
  private readonly queueing: GroupCommit<AgentTaskRequest, AgentTaskRecord>;
  private readonly results: GroupCommit<ReportedResult, void>;
  /** Artifact lists being read, by component and version: the nodes of a batch share one read. */
  private readonly artifactReads = new Map<string, Promise<TaskArtifact[]>>();
  private stopListening: (() => Promise<void>) | undefined;
  /**
   * On a server that is its database's only writer (SQLite), the nodes that may have an
   * open task, each with the number of the last queueing for it: read from the database
   * at the first poll, then kept by this process, which queues every task. A poll of a
   * node not in it waits without reading the database (docs/design.md §9). A node leaves
   * it when a poll reads no open task for it and nothing was queued for it meanwhile.
   * Undefined while not loaded, and always with replicas (they queue tasks too).
   */
  private openTaskNodes: Promise<Map<string, number>> | undefined;
  private queueings = 0;

  constructor(
    private readonly ctx: {
      store: Store;
      clock: Clock;
      log: Logger;
      /** `finished:<taskKey>` wakes the task's waiter, with the result when this process recorded it. */
      signals: EventEmitter;
      liveness: AgentLiveness;
      logs: AgentTaskLogs;
      taskTimeoutMs: number;
      /** sha256 of the agent bundle this server serves, for self-upgrades. */
      bundleSha256: () => string | undefined;
    },
  ) {
    this.queueing = new GroupCommit((tasks) => this.queueMany(tasks));
    this.results = new GroupCommit((results) => this.recordResults(results));
  }

  /** Listens to the other replicas' news of tasks queued and finished (PostgreSQL; nothing on SQLite). */
  start(): void {
    this.stopListening ??= this.ctx.store.agents.listenToReplicas(
      (news) => this.hear(news),
      (error) => this.ctx.log.warn({ err: error }, 'listening to other replicas’ agent tasks failed; retrying'),
    );
  }

  async stop(): Promise<void> {
    const stop = this.stopListening;
    this.stopListening = undefined;
    await stop?.();
  }

  private knownOpenTaskNodes(): Promise<Map<string, number>> | undefined {
    const { store } = this.ctx;
    if (store.sharedWithReplicas) return undefined;
    this.openTaskNodes ??= store.agents.nodesWithOpenTasks().then(
      (ids) => new Map(ids.map((id) => [id, 0])),
      (error: unknown) => {
        this.openTaskNodes = undefined;
        throw error;
      },
    );
    return this.openTaskNodes;
  }

  private hear(news: AgentTaskNews): void {
    for (const nodeId of news.queued) for (const poll of this.polls.get(nodeId) ?? []) poll.wake();
    for (const taskKey of news.finished) this.ctx.signals.emit(`finished:${taskKey}`);
  }

  /**
   * Open tasks of the node; waits up to `waitSeconds` (at most `MAX_POLL_SECONDS`) for one
   * to be queued. A wait of 2 s or more ends on a whole second of the clock, up to a
   * second early: the polls that end in one second are answered together, in one wake-up
   * of the server instead of one each, and so are the polls their agents send next
   * (docs/design.md §9).
   */
  async poll(node: NodeRecord, waitSeconds: number, signal: AbortSignal): Promise<AgentTask[]> {
    const waitMs = Math.min(Math.max(waitSeconds, 0), MAX_POLL_SECONDS) * 1000;
    const deadline = waitMs >= 2000 ? Math.floor((Date.now() + waitMs) / 1000) * 1000 : Date.now() + waitMs;
    const known = await this.knownOpenTaskNodes();
    for (;;) {
      // Waiting is registered before the database is read: a task queued meanwhile is
      // handed to this poll, never missed until its deadline.
      const waiter = this.waitForTasks(node.id, deadline, signal);
      const queuedSeq = known?.get(node.id);
      let rows: AgentTaskRecord[];
      try {
        // A node this sole writer knows to have no open task has nothing to read.
        rows = known && queuedSeq === undefined ? [] : await this.ctx.store.agents.deliverOpenTasks([node.id]);
      } catch (error) {
        waiter.cancel();
        throw error;
      }
      // Nothing open, and nothing queued for the node while it was read: forget it.
      if (known && rows.length === 0 && queuedSeq !== undefined && known.get(node.id) === queuedSeq) known.delete(node.id);
      if (rows.length > 0 || Date.now() >= deadline || signal.aborted) {
        waiter.cancel();
        return rows.map(envelope);
      }
      const outcome = await waiter.outcome;
      // Woken by another replica's news: its tasks are in the database.
      if (outcome !== 'woken') return outcome;
    }
  }

  /** A registered long poll: its outcome is the tasks handed to it, `woken`, or nothing at its deadline or abort. */
  private waitForTasks(
    nodeId: string,
    deadline: number,
    signal: AbortSignal,
  ): { outcome: Promise<AgentTask[] | 'woken'>; cancel: () => void } {
    let settle!: (outcome: AgentTask[] | 'woken') => void;
    const outcome = new Promise<AgentTask[] | 'woken'>((resolve) => (settle = resolve));
    let waiters = this.polls.get(nodeId);
    if (!waiters) this.polls.set(nodeId, (waiters = new Set()));
    const done = (result: AgentTask[] | 'woken') => {
      endAtDeadline.cancel();
      signal.removeEventListener('abort', onAbort);
      waiters.delete(waiter);
      if (waiters.size === 0 && this.polls.get(nodeId) === waiters) this.polls.delete(nodeId);
      settle(result);
    };
    const waiter: PollWaiter = { handOver: (tasks) => done(tasks), wake: () => done('woken') };
    const onAbort = () => done([]);
    const endAtDeadline = this.atDeadline(deadline, () => done([]));
    signal.addEventListener('abort', onAbort, { once: true });
    waiters.add(waiter);
    return { outcome, cancel: () => done([]) };
  }

  /** Runs `end` at `deadline`, with every other poll's end due at the same moment: one timer for them all. */
  private atDeadline(deadline: number, end: () => void): { cancel(): void } {
    let due = this.deadlines.get(deadline);
    if (!due) {
      const ends = new Set<() => void>();
      const timer = setTimeout(
        () => {
          this.deadlines.delete(deadline);
          for (const f of ends) f();
        },
        Math.max(0, deadline - Date.now()),
      );
      due = { ends, timer };
      this.deadlines.set(deadline, due);
    }
    const { ends, timer } = due;
    ends.add(end);
    return {
      cancel: () => {
        if (!ends.delete(end) || ends.size > 0 || this.deadlines.get(deadline)?.ends !== ends) return;
        clearTimeout(timer);
        this.deadlines.delete(deadline);
      },
    };
  }

  /** Queues many tasks in one statement, reads them back in one, and hands the open ones to the polls waiting here. */
  private async queueMany(tasks: AgentTaskRequest[]): Promise<AgentTaskRecord[]> {
    const { store } = this.ctx;
    // Known before the insert: a poll that starts meanwhile reads the database.
    const known = await this.knownOpenTaskNodes();
    const seq = ++this.queueings;
    for (const task of tasks) known?.set(task.nodeId, seq);
    await store.agents.ensureTasks(tasks);
    const rows = new Map((await store.agents.getTasks(tasks.map((t) => t.taskKey))).map((r) => [r.taskKey, r]));
    const nodeIds = [...new Set(tasks.map((t) => t.nodeId))];
    const waiting = nodeIds.filter((id) => this.polls.has(id));
    if (waiting.length > 0) {
      const byNode = new Map<string, AgentTask[]>();
      for (const row of await store.agents.deliverOpenTasks(waiting)) {
        let list = byNode.get(row.nodeId);
        if (!list) byNode.set(row.nodeId, (list = []));
        list.push(envelope(row));
        // The task rows given back to the drivers say delivered too.
        const queued = rows.get(row.taskKey);
        if (queued && queued.state === 'queued') rows.set(row.taskKey, row);
      }
      for (const [nodeId, list] of byNode) for (const poll of [...(this.polls.get(nodeId) ?? [])]) poll.handOver(list);
    }
    await store.agents.announce({ queued: nodeIds.filter((id) => !this.polls.has(id)), finished: [] });
    return tasks.map((t) => {
      const row = rows.get(t.taskKey);
      if (!row) throw new UpshiftError(ErrorCode.INTERNAL, `agent task ${t.taskKey} vanished`);
      return row;
    });
  }

  async reportResult(node: NodeRecord, taskKey: string, raw: TaskResultRequest): Promise<void> {
    if (raw.result !== 'succeeded' && raw.result !== 'failed') throw invalid('result must be "succeeded" or "failed"');
    const versions: ComponentVersions = {};
    for (const [key, value] of Object.entries(raw.versions ?? {})) {
      if (isComponent(key) && typeof value === 'string' && isValidVersion(value)) versions[key] = value;
    }
    // The error is multi-line text (a step's output); the step and the snapshot's ref are one line.
    const result = {
      result: raw.result,
      ...(typeof raw.error === 'string' ? { error: agentText(raw.error, 4000, { tabs: true, newlines: true }) } : {}),
      ...(typeof raw.step === 'string' ? { step: agentText(raw.step, 40) } : {}),
      ...(typeof raw.ref === 'string' ? { ref: agentText(raw.ref, 500) } : {}),
      ...(raw.rolledBack === true ? { rolledBack: true } : {}),
      versions,
    };
    const lines = Array.isArray(raw.log) ? raw.log.filter((l): l is string => typeof l === 'string').slice(0, 1000) : [];
    await this.results.add({ node, taskKey, result, lines });
  }

  /**
   * Records results reported together in one transaction, each a compare-and-set on its
   * task being open and the reporting node's; then wakes their waiters with them. A
   * result that lost (the task ended already, timed out or unreachable) changes nothing
   * but the node's log; one for a task that is not the node's is refused.
   */
  private async recordResults(results: ReportedResult[]): Promise<Array<void | Error>> {
    const { store, signals } = this.ctx;
    const won = await store.tx(async (tx) => {
      const won = await tx.agents.finishTasks(
        results.map((r) => ({ taskKey: r.taskKey, nodeId: r.node.id, state: r.result.result, result: r.result })),
      );
      // The lines a result carries reach its task's log in the commit that records it.
      const carrying = results.filter((r, i) => won[i] && r.lines.length > 0);
      if (carrying.length > 0) {
        const tasks = new Map((await tx.agents.getTasks(carrying.map((r) => r.taskKey))).map((t) => [t.taskKey, t]));
        await tx.logs.append(carrying.flatMap((r) => this.ctx.logs.linesOf(tasks.get(r.taskKey) as AgentTaskRecord, r.lines)));
      }
      return won;
    });
    const lost = results.filter((_, i) => !won[i]);
    const ended = new Map(lost.length > 0 ? (await store.agents.getTasks(lost.map((r) => r.taskKey))).map((t) => [t.taskKey, t]) : []);
    await store.agents.announce({ queued: [], finished: results.filter((_, i) => won[i]).map((r) => r.taskKey) });
    const outcomes: Array<void | Error> = [];
    for (const [i, r] of results.entries()) {
      if (won[i]) {
        signals.emit(`finished:${r.taskKey}`, r.result);
        outcomes.push(undefined);
        continue;
      }
      try {
        const task = ownTask(ended.get(r.taskKey), r.node, r.taskKey);
        await this.ctx.logs.lateResult(task, r.result.result, r.result.error, r.lines);
        outcomes.push(undefined);
      } catch (error) {
        outcomes.push(error as Error);
      }
    }
    return outcomes;
  }

  /** Queues the task for its node's agent (unless it is queued already) and waits for its result. */
  async runAgentTask(task: AgentTaskRequest, signal: AbortSignal): Promise<TaskResultRequest> {
    const { store, clock, liveness } = this.ctx;
    let row = await this.queueing.add(task);
    for (;;) {
      if (row.state === 'succeeded' || row.state === 'failed') return row.result ?? { result: row.state };
      const ended = await liveness.overdue(task.nodeId, row.state, Date.parse(row.createdAt), clock.now());
      if (ended) {
        // The state read before may be stale (delivered since): read it again to say why it ended.
        const fresh = await store.agents.getTask(task.taskKey);
        if (!fresh) throw new UpshiftError(ErrorCode.INTERNAL, `agent task ${task.taskKey} vanished`);
        if (fresh.state !== row.state) {
          row = fresh;
          continue;
        }
        if (await store.agents.finishTask(task.taskKey, task.nodeId, 'failed', ended)) return ended;
        row = fresh;
        continue;
      }
      if (signal.aborted) throw signal.reason;
      const reported = await this.waitForResult(task.taskKey, signal);
      if (reported) return reported;
      // Another replica may have recorded it (its news wakes this wait without the result),
      // or the task is only older now: look again.
      if (store.sharedWithReplicas || reported === null) {
        const fresh = await store.agents.getTask(task.taskKey);
        if (!fresh) throw new UpshiftError(ErrorCode.INTERNAL, `agent task ${task.taskKey} vanished`);
        row = fresh;
      }
    }
  }

  /**
   * Waits for the task's result: the result when this process recorded it, null when
   * another replica announced it, undefined after the overdue check's interval or an abort.
   */
  private waitForResult(taskKey: string, signal: AbortSignal): Promise<TaskResultRequest | null | undefined> {
    const { signals, taskTimeoutMs } = this.ctx;
    return new Promise((resolve) => {
      const done = (result?: TaskResultRequest | null) => {
        clearTimeout(timer);
        signals.off(`finished:${taskKey}`, onFinished);
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const onFinished = (result?: TaskResultRequest) => done(result ?? null);
      const onAbort = () => done(undefined);
      const timer = setTimeout(() => done(undefined), Math.min(OVERDUE_CHECK_MS, Math.max(10, taskTimeoutMs)));
      signals.once(`finished:${taskKey}`, onFinished);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** What a node downloads for a component's version: the agent bundle, uploaded artifacts of the release, the catalog's. */
  artifactsFor(component: Component, version: string, catalog: Catalog): Promise<TaskArtifact[]> {
    const key = `${component}@${version}`;
    let read = this.artifactReads.get(key);
    if (!read) {
      read = this.readArtifacts(component, version, catalog).finally(() => this.artifactReads.delete(key));
      this.artifactReads.set(key, read);
    }
    return read;
  }

  private async readArtifacts(component: Component, version: string, catalog: Catalog): Promise<TaskArtifact[]> {
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
