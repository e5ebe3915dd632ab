import { MAX_RESULT_LOG_LINES } from '../domain/agent-protocol.js';
import { type ServerClient, ServerError } from './client.js';

/** The server cuts longer lines; cutting them here keeps a batch's size known. */
const MAX_LINE_CHARS = 4000;
/** Lines per request (the server takes at most 1000). */
const MAX_BATCH_LINES = 500;
/** Characters per request, well under the server's 1 MiB body limit even for multi-byte text. */
const MAX_BATCH_CHARS = 256 * 1024;
/** Lines kept while the server is unreachable; older ones are dropped (and counted). */
const MAX_BUFFERED_LINES = 5000;
/**
 * How long a line waits for others before they are sent together. Every request costs the
 * server far more than its lines do, and a fleet's upgrades write their logs at once:
 * 1,000 nodes running a minute-long recipe send 500 requests a second at this interval,
 * 2,000 at half a second. Two seconds still follows a recipe's steps, which take seconds
 * to minutes, and a line is stamped when it was written, not when it was sent.
 */
export const LOG_FLUSH_MS = 2000;
/** Lines that go at once, without waiting: a burst of output is not held back. */
const FLUSH_AT_LINES = 200;

/**
 * Streams a task's log lines to the server in small batches (every `LOG_FLUSH_MS`, or at
 * once at 200 lines). Lines that cannot be sent yet are kept (up to 5000) and sent with the next batch;
 * `close()` sends what is left before the result is reported, or `rest()` hands it over
 * to go with the result, to a server that keeps such lines.
 *
 * The server takes lines only while the task is open: once it answers that the task is
 * over (409 TASK_ENDED: reported, or ended by the server as timed out or unreachable) or
 * unknown (404), the stream stops shipping and drops what it holds; the lines still go to
 * the agent's own log (`echo`). A batch the server refuses as such (400, 413, 422) is
 * dropped rather than sent again and again.
 */
export class TaskLogStream {
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  private dropped = 0;
  private ended = false;

  constructor(
    private readonly client: ServerClient,
    private readonly taskKey: string,
    private readonly echo: (line: string) => void,
  ) {}

  write(line: string): void {
    this.echo(line);
    if (this.ended) return;
    const stamped = `${new Date().toISOString().slice(11, 23)} ${line}`.slice(0, MAX_LINE_CHARS);
    if (this.buffer.length >= MAX_BUFFERED_LINES) {
      this.buffer.shift();
      this.dropped++;
    }
    this.buffer.push(stamped);
    if (this.buffer.length >= FLUSH_AT_LINES) this.flushSoon(0);
    else this.flushSoon(LOG_FLUSH_MS);
  }

  private flushSoon(ms: number): void {
    if (this.timer && ms > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.sending.then(() => this.send());
    }, ms);
  }

  /** The next request's lines: at most MAX_BATCH_LINES and MAX_BATCH_CHARS (one line at least). */
  private nextBatch(): string[] {
    const batch: string[] = [];
    let chars = 0;
    for (const line of this.buffer) {
      if (batch.length > 0 && (batch.length >= MAX_BATCH_LINES || chars + line.length > MAX_BATCH_CHARS)) break;
      batch.push(line);
      chars += line.length;
    }
    return batch;
  }

  private async send(): Promise<void> {
    while (this.buffer.length > 0 && !this.ended) if (!(await this.sendBatch())) return;
  }

  /** Sends the next batch; false when it could not be sent and was kept, or the stream ended. */
  private async sendBatch(): Promise<boolean> {
    const batch = this.nextBatch();
    const notice = this.dropped > 0 ? [`(${this.dropped} log lines were dropped while the server was unreachable)`] : [];
    try {
      await this.client.log(this.taskKey, [...notice, ...batch]);
    } catch (e) {
      if (e instanceof ServerError && (e.status === 409 || e.status === 404)) {
        this.ended = true;
        this.buffer = [];
        this.echo(`the server takes no more log lines for this task (${e.message}); they stay in this agent's own log`);
        return false;
      }
      if (e instanceof ServerError && (e.status === 400 || e.status === 413 || e.status === 422)) {
        this.buffer.splice(0, batch.length);
        this.echo(`the server refused ${batch.length} log lines (${e.message}); they stay in this agent's own log`);
        return true;
      }
      // Unreachable or restarting: keep the lines for the next try.
      return false;
    }
    this.buffer.splice(0, batch.length);
    this.dropped = 0;
    return true;
  }

  /**
   * Ends the stream and hands over the lines not sent yet, to go with the task's result
   * (at most `MAX_RESULT_LOG_LINES`, within one request's size): what does not fit is sent
   * first as usual. Lines still kept after that (the server unreachable) are counted as
   * dropped in a notice, the newest ones kept. Nothing once the server said the task is over.
   */
  async rest(): Promise<string[]> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.sending;
    while (!this.ended && (this.buffer.length >= MAX_RESULT_LOG_LINES || this.nextBatch().length < this.buffer.length)) {
      if (!(await this.sendBatch())) break;
    }
    if (this.ended) return [];
    this.ended = true;
    let lines = this.buffer;
    this.buffer = [];
    let chars = 0;
    let keep = 0;
    // The newest lines that fit, one notice line left for what was dropped.
    while (
      keep < lines.length &&
      keep < MAX_RESULT_LOG_LINES - 1 &&
      chars + (lines[lines.length - 1 - keep] as string).length <= MAX_BATCH_CHARS
    ) {
      chars += (lines[lines.length - 1 - keep] as string).length;
      keep++;
    }
    const dropped = this.dropped + lines.length - keep;
    lines = lines.slice(lines.length - keep);
    return dropped > 0 ? [`(${dropped} log lines were dropped while the server was unreachable)`, ...lines] : lines;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.sending;
    await this.send();
  }
}
