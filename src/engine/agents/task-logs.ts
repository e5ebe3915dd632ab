import { ErrorCode, UpshiftError, invalid } from '../../domain/errors.js';
import type { AgentTaskRecord, NodeRecord } from '../../domain/model.js';
import type { Clock } from '../../domain/ports.js';
import type { NewLogLine } from '../../store/node-logs.js';
import type { Store } from '../../store/store.js';
import { agentText } from './agent-input.js';
import { GroupCommit } from './group-commit.js';
import { ownTask } from './task-delivery.js';

interface LogLines {
  node: NodeRecord;
  taskKey: string;
  lines: string[];
}

/**
 * The log of an agent's task, kept with its node task's log (`store.logs`, capped per
 * node task) where operators read it: the lines an agent sends while the task runs, and
 * what an agent reports after its task already ended.
 */
export class AgentTaskLogs {
  /** Lines many agents send together are checked with one read and stored with one append. */
  private readonly appends = new GroupCommit<LogLines, void>((batch) => this.appendMany(batch));

  constructor(private readonly ctx: { store: Store; clock: Clock }) {}

  private nowIso(): string {
    return new Date(this.ctx.clock.now()).toISOString();
  }

  /**
   * Appends an agent's log lines to its task's log. Only a task the agent was given and
   * has not reported is open for lines (`409 TASK_ENDED` otherwise: an agent must not
   * write to the log of a task that is over). Each line loses its control characters
   * (tabs stay; a line holds no newline) and is cut at 4,000 characters; the store keeps
   * at most `LOG_CAP_BYTES` per node task (see store.logs.append).
   */
  async append(node: NodeRecord, taskKey: string, lines: unknown): Promise<void> {
    if (!Array.isArray(lines) || lines.length > 1000 || !lines.every((l) => typeof l === 'string')) {
      throw invalid('lines must be a list of at most 1000 strings');
    }
    await this.appends.add({ node, taskKey, lines: lines as string[] });
  }

  private async appendMany(batch: LogLines[]): Promise<Array<void | Error>> {
    const tasks = new Map((await this.ctx.store.agents.getTasks([...new Set(batch.map((b) => b.taskKey))])).map((t) => [t.taskKey, t]));
    const at = this.nowIso();
    const rows: NewLogLine[] = [];
    const answers = batch.map(({ node, taskKey, lines }) => {
      try {
        const task = ownTask(tasks.get(taskKey), node, taskKey);
        if (task.state !== 'delivered') {
          throw new UpshiftError(
            ErrorCode.TASK_ENDED,
            task.state === 'queued'
              ? `task ${taskKey} has not been delivered to the agent yet: it takes no log lines`
              : `task ${taskKey} is over (${task.state}): it takes no more log lines`,
          );
        }
        rows.push(...this.linesOf(task, lines, at));
        return undefined;
      } catch (error) {
        return error as Error;
      }
    });
    await this.ctx.store.logs.append(rows);
    return answers;
  }

  /**
   * The rows of `task`'s log for lines its agent sent (with a log request or its result):
   * each line loses its control characters (tabs stay) and is cut at 4,000 characters.
   */
  linesOf(task: AgentTaskRecord, lines: readonly string[], at = this.nowIso()): NewLogLine[] {
    const { upgradeId, nodeTaskId } = task;
    if (!upgradeId || !nodeTaskId) return [];
    return lines.map((line) => ({ upgradeId, nodeTaskId, at, line: agentText(line, 4000, { tabs: true }) }));
  }

  /**
   * A result for a task that had already ended (timed out, node unreachable) changes
   * nothing, but what the agent says it did is kept in the node's log, where the operator
   * looks before resuming.
   */
  async lateResult(
    task: AgentTaskRecord,
    result: 'succeeded' | 'failed',
    error: string | undefined,
    lines: readonly string[] = [],
  ): Promise<void> {
    if (!task.upgradeId || !task.nodeTaskId || task.state === result) return;
    const ended = task.result?.error ?? task.state;
    await this.ctx.store.logs.append([
      ...this.linesOf(task, lines),
      {
        upgradeId: task.upgradeId,
        nodeTaskId: task.nodeTaskId,
        at: this.nowIso(),
        line: agentText(`late result from the agent: ${result}${error ? ` (${error})` : ''}; the task had already ended: ${ended}`, 4000, {
          tabs: true,
        }),
      },
    ]);
  }
}
