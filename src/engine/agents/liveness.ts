import type { EventEmitter } from 'node:events';
import type { TaskResultRequest } from '../../domain/agent-protocol.js';
import { EventType } from '../../domain/events.js';
import type { NodeRecord } from '../../domain/model.js';
import type { Clock } from '../../domain/ports.js';
import type { Store } from '../../store/store.js';
import type { Logger } from '../types.js';
import { checkFacts, reportedVersions } from './agent-input.js';

/**
 * Whether a node's agent is alive: its heartbeats (which also carry the versions the
 * node runs), a sweep that marks nodes Down whose agent missed three of them, and the
 * verdict on an open task whose agent went silent or ran past the task timeout.
 */
export class AgentLiveness {
  /** A node whose agent missed three heartbeats is unreachable: its open task fails. */
  readonly unreachableAfterMs: number;
  private sweeper: (() => void) | undefined;

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
  }

  async heartbeat(node: NodeRecord, rawFacts: unknown): Promise<{ serverTime: string; heartbeatSeconds: number }> {
    const facts = checkFacts(rawFacts);
    const now = new Date(this.ctx.clock.now()).toISOString();
    await this.ctx.store.agents.recordHeartbeat(node.id, facts, reportedVersions(node.versions, facts), now, facts.distribution ?? null);
    this.ctx.signals.emit(`heartbeat:${node.id}`, facts);
    return { serverTime: now, heartbeatSeconds: this.ctx.heartbeatSeconds };
  }

  /** Marks nodes Down whose agent missed three heartbeats, with an event for each. */
  async sweepSilentNodes(): Promise<void> {
    const { store, clock, heartbeatSeconds } = this.ctx;
    const before = new Date(clock.now() - 3 * heartbeatSeconds * 1000).toISOString();
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

  /** Sweeps every heartbeat interval until `stopSweeper`. */
  startSweeper(): void {
    this.sweeper?.();
    this.sweeper = this.ctx.clock.setTimer(this.ctx.heartbeatSeconds * 1000, () => {
      void this.sweepSilentNodes()
        .catch((error: unknown) => this.ctx.log.warn({ err: error }, 'sweeping silent nodes failed'))
        .finally(() => this.startSweeper());
    });
  }

  stopSweeper(): void {
    this.sweeper?.();
    this.sweeper = undefined;
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
    const lastSeen = Date.parse((await this.ctx.store.agents.lastSeen(nodeId)) ?? '') || 0;
    const silentMs = now - Math.max(lastSeen, createdAt);
    if (silentMs > this.unreachableAfterMs) {
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
