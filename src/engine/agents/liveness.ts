import type { EventEmitter } from 'node:events';
import type { AgentFacts, HeartbeatResponse, TaskResultRequest } from '../../domain/agent-protocol.js';
import type { ComponentVersions } from '../../domain/components.js';
import { EventType } from '../../domain/events.js';
import type { NodeRecord } from '../../domain/model.js';
import { type Clock, setAlignedTimer } from '../../domain/ports.js';
import type { Store } from '../../store/store.js';
import type { Logger } from '../types.js';
import { checkFacts, reportedVersions } from './agent-input.js';

/** Longest time a heartbeat's time waits in memory before it is written with the others. */
const MAX_FLUSH_MS = 1000;

/**
 * Longest wait of a task poll (task-delivery.ts), and the length agents are asked for: an
 * open poll keeps its node heard, so its length only decides how many requests an idle
 * fleet makes; it stays under the 60 s idle timeout of most load balancers and proxies.
 */
export const MAX_POLL_SECONDS = 50;

/**
 * Whether a node's agent is alive: its heartbeats (which also carry the versions the
 * node runs), a sweep that marks nodes Down whose agent missed three of them, and the
 * verdict on an open task whose agent went silent or ran past the task timeout.
 *
 * A heartbeat that changes nothing, and a task poll (which counts as one), cost no
 * database write of their own (docs/design.md §9): the time it was heard is kept in memory and written with every other node's in
 * one statement per flush interval (at most 1 s, never longer than a heartbeat). What
 * changed (versions, distribution, a node that was not Ready, facts other than the last
 * ones this replica wrote) is written at once, before the heartbeat is answered.
 *
 * While a task poll of the node's agent is open on this replica, the agent counts as heard
 * at every moment: its connection is alive, which TCP keep-alive probes check every few
 * seconds (routes/agent.ts), and a poll ends when its connection does. Each sweep writes
 * such nodes' time like a heartbeat's, so other replicas see them alive too.
 *
 * With several replicas an agent may heartbeat to any of them, so the database's time
 * may be one flush interval behind the latest heartbeat some replica heard. A replica
 * judges silence by the later of its own memory and the database, and where the
 * database is all it has it allows that interval more before it calls a node silent:
 * a replica that did not hear a heartbeat never marks the node lost for that alone.
 */
export class AgentLiveness {
  /** A node whose agent missed three heartbeats is unreachable: its open task fails. */
  readonly unreachableAfterMs: number;
  /** How often heard times go to the database. */
  readonly flushMs: number;
  /** The long poll's length agents are asked for: their polls count as heartbeats. */
  readonly pollSeconds: number;
  private sweeper: (() => void) | undefined;
  private flusher: (() => void) | undefined;
  /** When this process last heard each node's agent (ms), since it started. */
  private readonly heard = new Map<string, number>();
  /** Task polls open on this replica, by node (an agent may hold two for a moment). */
  private readonly openPolls = new Map<string, number>();
  /** Times heard and not written yet. */
  private unflushed = new Map<string, number>();
  /** The facts this process last wrote for each node (JSON), to skip writing them again. */
  private readonly writtenFacts = new Map<string, string>();
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: {
      store: Store;
      clock: Clock;
      log: Logger;
      /** `heartbeat:<nodeId>` is emitted with the facts of each heartbeat. */
      signals: EventEmitter;
      heartbeatSeconds: number;
      /** A task the agent has not finished after this long fails, even if the agent still heartbeats. */
      taskTimeoutMs: number;
    },
  ) {
    this.unreachableAfterMs = 3 * ctx.heartbeatSeconds * 1000;
    this.flushMs = Math.min(MAX_FLUSH_MS, ctx.heartbeatSeconds * 1000);
    // An open poll keeps its node heard whatever its length (see above).
    this.pollSeconds = MAX_POLL_SECONDS;
  }

  async heartbeat(node: NodeRecord, rawFacts: unknown): Promise<HeartbeatResponse> {
    return this.heardWith(node, checkFacts(rawFacts));
  }

  /** A heartbeat whose facts were already checked (those a task's result carries). */
  async heardWith(node: NodeRecord, facts: AgentFacts): Promise<HeartbeatResponse> {
    const nowMs = this.ctx.clock.now();
    const now = new Date(nowMs).toISOString();
    const versions = reportedVersions(node.versions, facts);
    const distribution = facts.distribution ?? null;
    const factsJson = JSON.stringify(facts);
    if (
      node.status !== 'Ready' ||
      node.distribution !== distribution ||
      !sameVersions(node.versions, versions) ||
      this.writtenFacts.get(node.id) !== factsJson
    ) {
      await this.ctx.store.agents.recordHeartbeat(node.id, facts, versions, now, distribution);
      this.writtenFacts.set(node.id, factsJson);
      this.noteHeard(node.id, nowMs, true);
    } else {
      this.noteHeard(node.id, nowMs);
    }
    this.ctx.signals.emit(`heartbeat:${node.id}`, facts);
    return {
      serverTime: now,
      heartbeatSeconds: this.ctx.heartbeatSeconds,
      pollSeconds: this.pollSeconds,
      linesWithResult: true,
      factsWithResult: true,
      requestsCountAsHeartbeats: true,
    };
  }

  /**
   * A request of the node's agent (a task poll, log lines, a result): as good as a
   * heartbeat without news. Agents that were told `requestsCountAsHeartbeats` heartbeat
   * only when their facts change or none of these went through for half an interval. A
   * node that was not Ready is Ready again at once.
   */
  async heardFrom(node: NodeRecord): Promise<void> {
    const nowMs = this.ctx.clock.now();
    if (node.status !== 'Ready') {
      await this.ctx.store.agents.markReady(node.id, new Date(nowMs).toISOString());
      this.noteHeard(node.id, nowMs, true);
    } else {
      this.noteHeard(node.id, nowMs);
    }
  }

  /** A task poll from the node's agent: heard now, and at every moment while it is open. */
  async polled(node: NodeRecord): Promise<void> {
    await this.heardFrom(node);
    this.openPolls.set(node.id, (this.openPolls.get(node.id) ?? 0) + 1);
  }

  /**
   * A poll `polled` counted has ended (answered, or its connection closed): the node was
   * heard until now. Its agent counts the poll's answer as heard too.
   */
  pollEnded(nodeId: string): void {
    const open = (this.openPolls.get(nodeId) ?? 1) - 1;
    if (open > 0) this.openPolls.set(nodeId, open);
    else this.openPolls.delete(nodeId);
    this.noteHeard(nodeId, this.ctx.clock.now());
  }

  /** The node was heard at `atMs`: kept in memory, and written with the next flush unless it was `written` already. */
  private noteHeard(nodeId: string, atMs: number, written = false): void {
    this.heard.set(nodeId, atMs);
    if (written) this.unflushed.delete(nodeId);
    else this.unflushed.set(nodeId, atMs);
  }

  /** Writes the heard times held in memory, in one statement; resolves after every earlier flush too. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.unflushed.size === 0) return;
      const batch = this.unflushed;
      this.unflushed = new Map();
      const seen = [...batch].map(([nodeId, at]) => ({ nodeId, at: new Date(at).toISOString() }));
      try {
        await this.ctx.store.agents.recordLastSeen(seen);
      } catch (error) {
        // Kept for the next flush, unless a later heartbeat is there already.
        for (const [nodeId, at] of batch) if (!this.unflushed.has(nodeId)) this.unflushed.set(nodeId, at);
        this.ctx.log.warn({ err: error }, 'writing agents’ heartbeat times failed; retrying');
      }
    });
    return this.flushing;
  }

  /** Marks nodes Down whose agent missed three heartbeats, with an event for each. */
  async sweepSilentNodes(): Promise<void> {
    const { store, clock, heartbeatSeconds } = this.ctx;
    // Nodes whose poll is open here are heard now, and written so for the other replicas.
    const now = clock.now();
    for (const nodeId of this.openPolls.keys()) this.noteHeard(nodeId, now);
    await this.flush();
    // The database may lag the latest heartbeat some replica heard by one flush interval.
    const before = new Date(clock.now() - this.unreachableAfterMs - this.flushMs).toISOString();
    for (const node of await store.agents.markSilentNodesDown(before)) {
      await store.events.append({
        type: EventType.nodeDown,
        actor: 'engine',
        clusterId: node.clusterId,
        upgradeId: null,
        nodeId: node.id,
        message: `node ${node.name}: no heartbeat from its agent for ${3 * heartbeatSeconds} s; marked Down`,
      });
    }
  }

  /** Sweeps every heartbeat interval and writes heard times every flush interval, until `stopSweeper`. */
  startSweeper(): void {
    this.sweeper?.();
    this.sweeper = this.ctx.clock.setTimer(this.ctx.heartbeatSeconds * 1000, () => {
      void this.sweepSilentNodes()
        .catch((error: unknown) => this.ctx.log.warn({ err: error }, 'sweeping silent nodes failed'))
        .finally(() => this.startSweeper());
    });
    this.flusher ??= this.scheduleFlush();
  }

  private scheduleFlush(): () => void {
    return setAlignedTimer(this.ctx.clock, this.flushMs, () => {
      void this.flush().finally(() => {
        if (this.flusher) this.flusher = this.scheduleFlush();
      });
    });
  }

  /** Stops sweeping and writes the heard times still in memory. */
  async stopSweeper(): Promise<void> {
    this.sweeper?.();
    this.sweeper = undefined;
    this.flusher?.();
    this.flusher = undefined;
    await this.flush();
  }

  /**
   * When the node's agent was last heard from (ms), and whether that is sure: this
   * process's memory is the whole truth only on a database no other replica writes, and
   * only for a node it heard since it started; otherwise the database's time may be one
   * flush interval behind.
   */
  private async lastHeard(nodeId: string): Promise<{ at: number; sure: boolean }> {
    if (this.openPolls.has(nodeId)) return { at: this.ctx.clock.now(), sure: true };
    const inMemory = this.heard.get(nodeId);
    if (inMemory !== undefined && !this.ctx.store.sharedWithReplicas) return { at: inMemory, sure: true };
    const stored = Date.parse((await this.ctx.store.agents.lastSeen(nodeId)) ?? '') || 0;
    return { at: Math.max(stored, inMemory ?? 0), sure: false };
  }

  /**
   * Why an open task must end now, if it must: its agent went silent for three heartbeats
   * (counted from the later of its last heartbeat and the task's creation: the link is
   * cut, the host is down or the agent stopped), or the task ran past the task timeout.
   * What the task did on the node is then unknown; the node's next heartbeat tells its
   * versions, and a resume runs the task again (recipes skip what is already done).
   */
  async overdue(nodeId: string, state: string, createdAt: number, now: number): Promise<TaskResultRequest | undefined> {
    const { taskTimeoutMs } = this.ctx;
    const step = state === 'queued' ? 'delivery' : 'timeout';
    const heard = await this.lastHeard(nodeId);
    const silentMs = now - Math.max(heard.at, createdAt);
    if (silentMs > this.unreachableAfterMs + (heard.sure ? 0 : this.flushMs)) {
      return {
        result: 'failed',
        step: 'unreachable',
        error: `node unreachable: no heartbeat from its agent for ${Math.round(silentMs / 1000)} s during the task (link cut, host down or agent stopped); its outcome on the node is unknown. Check the node, then resume to run the task again`,
      };
    }
    if (now - createdAt > taskTimeoutMs) {
      return {
        result: 'failed',
        step,
        error: `the agent did not report a result within ${Math.round(taskTimeoutMs / 1000)} s (the task timeout)`,
      };
    }
    return undefined;
  }
}

/** Whether two version maps name the same versions (in any key order). */
function sameVersions(a: ComponentVersions, b: ComponentVersions): boolean {
  const keys = Object.keys(a) as Array<keyof ComponentVersions>;
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
