import type { ServerClient } from './client.js';

/**
 * Streams a task's log lines to the server in small batches (every half second, or at 200
 * lines). Lines that cannot be sent yet are kept (up to 5000) and sent with the next batch;
 * `close()` sends what is left before the result is reported.
 */
export class TaskLogStream {
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  private dropped = 0;

  constructor(
    private readonly client: ServerClient,
    private readonly taskKey: string,
    private readonly echo: (line: string) => void,
  ) {}

  write(line: string): void {
    this.echo(line);
    const stamped = `${new Date().toISOString().slice(11, 23)} ${line}`;
    if (this.buffer.length >= 5000) {
      this.buffer.shift();
      this.dropped++;
    }
    this.buffer.push(stamped);
    if (this.buffer.length >= 200) this.flushSoon(0);
    else this.flushSoon(500);
  }

  private flushSoon(ms: number): void {
    if (this.timer && ms > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.sending.then(() => this.send());
    }, ms);
  }

  private async send(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, 500);
      if (this.dropped > 0) batch.unshift(`(${this.dropped} log lines were dropped while the server was unreachable)`);
      try {
        await this.client.log(this.taskKey, batch);
        this.buffer.splice(0, this.dropped > 0 ? batch.length - 1 : batch.length);
        this.dropped = 0;
      } catch {
        return;
      }
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.sending;
    await this.send();
  }
}
