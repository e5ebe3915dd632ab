import { Listr, type ListrTask, type ListrTaskWrapper } from 'listr2';
import { formatElapsed } from '../../domain/duration.js';
import type { BatchView, EventView } from '../../api/index.js';
import type { Output } from '../output.js';
import { nameList, plural } from '../output.js';
import type { StreamStatus } from '../sse.js';
import { progressLine } from '../progress-text.js';
import { autoCancelText, nodeNames, pauseCause, snapshotFailures, type UpgradeSnapshot, type WatchOutcome } from './outcome.js';
import { describeUpgrade, type WatchView } from './views.js';

type Ending = { kind: 'ok' } | { kind: 'failed'; error: string } | { kind: 'skipped'; message: string };

// listr2's wrapper type, with whatever renderers it was built with.
type TaskWrapper = ListrTaskWrapper<unknown, any, any>;

/**
 * One line of the display (a batch, the snapshots, a pause, the end) backed by a
 * listr2 task that stays running until the line is settled. Title and output can
 * change before and while the task runs.
 */
class DisplayLine {
  private title: string;
  private output = '';
  private wrapper: TaskWrapper | undefined;
  private resolveEnding!: (ending: Ending) => void;
  private readonly ending: Promise<Ending>;
  settled = false;

  constructor(title: string) {
    this.title = title;
    this.ending = new Promise((resolve) => (this.resolveEnding = resolve));
  }

  set(title: string, output = ''): void {
    if (this.settled) return;
    if (title !== this.title && this.wrapper) this.wrapper.title = title;
    if (output !== this.output && this.wrapper) this.wrapper.output = output;
    this.title = title;
    this.output = output;
  }

  settle(ending: Ending, title?: string): void {
    if (this.settled) return;
    if (title !== undefined) this.set(title, '');
    this.settled = true;
    this.resolveEnding(ending);
  }

  task(): ListrTask<unknown> {
    return {
      title: this.title,
      task: async (_ctx, wrapper: TaskWrapper) => {
        this.wrapper = wrapper;
        wrapper.title = this.title;
        if (this.output) wrapper.output = this.output;
        const ending = await this.ending;
        wrapper.title = this.title;
        if (ending.kind === 'skipped') wrapper.skip(ending.message);
        else if (ending.kind === 'failed') throw new Error(ending.error);
      },
    };
  }
}

function seconds(from: string, to: string | null): string {
  if (!to) return '';
  return formatElapsed(Math.max(0, Date.parse(to) - Date.parse(from)));
}

/**
 * The live display on a terminal, drawn by listr2: a header, then one line per batch
 * with its nodes (spinner while it runs, with the running nodes and the overall count
 * under it; ✔ or ✖ when it ends), a line for the snapshots, a line while Paused with
 * the cause and the time left before auto-cancel, and the outcome.
 *
 * listr2 cannot add tasks to a list that is running, and batches appear one by one;
 * so lines are shown by a succession of short lists: when a list's lines have all
 * ended, it prints them for good and the next list takes the lines that appeared
 * meanwhile.
 */
export class TtyView implements WatchView {
  private readonly out: Output;
  private readonly throughPause: boolean;
  private readonly lines = new Map<string, DisplayLine>();
  private queued: DisplayLine[] = [];
  private running: Promise<void> | undefined;
  private notice = '';
  private readonly pauseTitles = new Map<string, string>();
  private readonly resumes: Array<{ actor: string; at: string }> = [];

  constructor(out: Output, throughPause: boolean) {
    this.out = out;
    this.throughPause = throughPause;
  }

  private line(key: string, title: string): DisplayLine {
    let line = this.lines.get(key);
    if (!line) {
      line = new DisplayLine(title);
      this.lines.set(key, line);
      this.queued.push(line);
      this.pump();
    }
    return line;
  }

  private pump(): void {
    if (this.running || this.queued.length === 0) return;
    const lines = this.queued;
    this.queued = [];
    const list = new Listr(
      lines.map((l) => l.task()),
      {
        concurrent: true,
        exitOnError: false,
        registerSignalListeners: false,
        renderer: 'default',
        rendererOptions: { collapseErrors: false, formatOutput: 'truncate' },
      },
    );
    this.running = list
      .run()
      .catch(() => undefined)
      .then(() => {
        this.running = undefined;
        this.pump();
      });
  }

  private async idle(): Promise<void> {
    while (this.running || this.queued.length > 0) {
      this.pump();
      await this.running;
    }
  }

  start(snapshot: UpgradeSnapshot): void {
    this.out.line(this.out.paint.bold(describeUpgrade(snapshot).replace(/^upgrade/, 'Upgrade')));
    this.update(snapshot);
  }

  event(event: EventView): void {
    // The display is drawn from snapshots; events only make the watch fetch one sooner,
    // and say who resumed a pause and when.
    if (event.type === 'upgrade.resumed') this.resumes.push({ actor: event.actor, at: event.at });
  }

  connection(status: StreamStatus, detail?: string): void {
    this.notice = status === 'reconnecting' ? `connection to the server lost${detail ? ` (${detail})` : ''}; reconnecting…` : '';
  }

  update(snapshot: UpgradeSnapshot): void {
    const u = snapshot.upgrade;
    const names = nodeNames(snapshot.tasks);
    const overall = `${progressLine(u)}${u.nodes.failed ? ` · ${u.nodes.failed} failed` : ''}${this.notice ? `\n${this.notice}` : ''}`;

    if (u.snapshot === 'before' && u.snapshots) {
      const s = u.snapshots;
      const title = `Snapshots    ${s.succeeded}/${s.total} taken${s.failed ? `, ${s.failed} failed` : ''}`;
      const line = this.line('snapshots', title);
      if (u.state === 'BackingUp') {
        const running = snapshot.tasks.filter((t) => t.snapshot?.state === 'running').map((t) => t.nodeName);
        line.set(title, `${running.length ? `taking ${nameList(running)}\n` : ''}${overall}`);
      } else if (s.failed > 0) {
        line.settle({ kind: 'failed', error: snapshotFailures(snapshot).join('; ') || 'a snapshot failed' }, title);
      } else {
        line.settle({ kind: 'ok' }, title);
      }
    }

    for (const batch of u.batches) this.updateBatch(batch, snapshot, names, overall);

    for (const [key, line] of this.lines) {
      if (!key.startsWith('pause:') || line.settled || (u.state === 'Paused' && key === `pause:${u.pausedAt}`)) continue;
      const title = this.pauseTitles.get(key) ?? 'Paused';
      // A pause is no success: it ends skipped, saying how long it lasted and who resumed it.
      const pausedAt = Date.parse(key.slice('pause:'.length));
      const resume = this.resumes.find((r) => Date.parse(r.at) >= pausedAt);
      const lasted = resume ? `, ${formatElapsed(Date.parse(resume.at) - pausedAt)} paused` : '';
      line.settle(
        { kind: 'skipped', message: u.state === 'Canceled' ? title : `${title} → resumed${resume ? ` by ${resume.actor}` : ''}${lasted}` },
        title,
      );
    }
    if (u.state === 'Paused' && u.pausedAt) {
      const key = `pause:${u.pausedAt}`;
      const title = `Paused       ${pauseCause(snapshot.upgrade, names)}`;
      this.pauseTitles.set(key, title);
      const line = this.line(key, title);
      const details = [autoCancelText(u)];
      if (u.nodes.running > 0) details.push(`waiting for ${plural(u.nodes.running, 'running node')} to finish`);
      if (this.throughPause) details.push(`resume with: upshift upgrade resume ${u.id}`);
      details.push(overall);
      line.set(title, details.filter((d) => d !== undefined).join('\n'));
    }
  }

  private updateBatch(batch: BatchView, snapshot: UpgradeSnapshot, names: Map<string, string>, overall: string): void {
    const batchNames = batch.nodes.map((id) => names.get(id) ?? id);
    const head = `Batch ${String(batch.index + 1).padEnd(6)} ${plural(batch.size, 'node').padEnd(9)} ${nameList(batchNames)}`;
    const line = this.line(`batch:${batch.index}`, head);
    const tasks = snapshot.tasks.filter((t) => t.batchIndex === batch.index && batch.nodes.includes(t.nodeId));
    if (batch.state === 'running') {
      const running = tasks.filter((t) => t.state === 'running').map((t) => t.nodeName);
      const done = tasks.filter((t) => t.state === 'succeeded' || t.state === 'failed').length;
      line.set(head, `${running.length ? `running ${nameList(running)} · ` : ''}${done}/${batch.size} done\n${overall}`);
      return;
    }
    const took = seconds(batch.startedAt, batch.finishedAt);
    if (batch.state === 'succeeded') {
      line.settle({ kind: 'ok' }, `${head}${took ? `  (${took})` : ''}`);
    } else {
      const failed = tasks.filter((t) => t.state === 'failed');
      const error = failed.length ? failed.map((t) => `${t.nodeName}: ${t.error ?? 'failed'}`).join('; ') : 'a node of this batch failed';
      line.settle({ kind: 'failed', error }, `${head}${took ? `  (${took})` : ''}`);
    }
  }

  async finish(outcome: WatchOutcome, snapshot: UpgradeSnapshot): Promise<void> {
    this.update(snapshot);
    const u = snapshot.upgrade;
    const end = (ending: Ending, title: string) => this.line('end', title).settle(ending, title);
    switch (outcome.kind) {
      case 'completed':
        end(
          { kind: 'ok' },
          `Completed    ${u.nodes.succeeded}/${u.nodes.total} nodes run ${u.toVersion}${u.finishedAt ? `  (${seconds(u.createdAt, u.finishedAt)})` : ''}`,
        );
        break;
      case 'paused': {
        const ttl = autoCancelText(u);
        this.lines.get(`pause:${u.pausedAt}`)?.settle({
          kind: 'skipped',
          message: `Paused       ${pauseCause(snapshot.upgrade, nodeNames(snapshot.tasks))}${ttl ? `\n${ttl}` : ''}`,
        });
        break;
      }
      case 'canceled':
        end(
          { kind: 'failed', error: 'nodes that had not started were skipped; upgraded nodes stay upgraded' },
          `Canceled     ${u.nodes.succeeded}/${u.nodes.total} nodes upgraded, ${u.nodes.skipped} skipped`,
        );
        break;
      case 'snapshotFailed':
        end({ kind: 'skipped', message: 'Waiting      a snapshot failed: continue or quit' }, 'Waiting');
        break;
      default: {
        const never: never = outcome.kind;
        return never;
      }
    }
    for (const line of this.lines.values()) line.settle({ kind: 'skipped', message: 'no longer watched' });
    await this.idle();
  }
}
