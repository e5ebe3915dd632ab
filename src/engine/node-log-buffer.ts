import { type Clock, setAlignedTimer } from '../domain/ports.js';
import type { Store } from '../store/store.js';
import type { Logger } from './types.js';
import { isoTime } from './types.js';

/**
 * The log lines drivers report for node tasks wait here briefly and are written many at
 * a time: every 250 ms, before a batch of outcomes is recorded (so a node's log is
 * complete when its result shows), and once more when the engine stops. A thousand
 * nodes logging at once cost a few inserts a second, not thousands.
 */
export class NodeLogBuffer {
  private lines: Array<{ upgradeId: string; nodeTaskId: string; at: string; line: string }> = [];
  private flushing: Promise<void> = Promise.resolve();
  private timer: (() => void) | undefined;
  private running = false;

  constructor(private readonly ctx: { store: Store; clock: Clock; log: Logger }) {}

  push(upgradeId: string, nodeTaskId: string, line: string): void {
    this.lines.push({ upgradeId, nodeTaskId, at: isoTime(this.ctx.clock.now()), line });
    if (this.timer === undefined) this.schedule();
  }

  /** Writes what is buffered; resolves after every earlier flush too. A failed write is logged, never thrown. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      const rows = this.lines;
      if (rows.length === 0) return;
      this.lines = [];
      await this.ctx.store.logs.append(rows).catch((error: unknown) => this.ctx.log.warn({ err: error }, 'could not store node log lines'));
    });
    return this.flushing;
  }

  start(): void {
    this.running = true;
    if (this.lines.length > 0) this.schedule();
  }

  /** Stops the periodic flush; the caller flushes once more when the last lines are in. */
  stop(): void {
    this.running = false;
    this.timer?.();
    this.timer = undefined;
  }

  /** A flush at the next quarter second while lines wait; none while there are none (an idle server sleeps). */
  private schedule(): void {
    if (!this.running) return;
    this.timer = setAlignedTimer(this.ctx.clock, 250, () => {
      void this.flush().finally(() => {
        this.timer = undefined;
        if (this.lines.length > 0) this.schedule();
      });
    });
  }
}
