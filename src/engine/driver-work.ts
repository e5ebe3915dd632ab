import { setMaxListeners } from 'node:events';
import { ErrorCode, UpshiftError } from '../domain/errors.js';

/**
 * The node tasks and snapshots this process has handed to drivers and awaits. Each runs
 * at most once at a time here (by its key: a task's id and attempt, a snapshot's id), so
 * that a reattach after a lease is regained does not start it twice; all of them listen
 * on one signal, aborted when the engine stops. An aborted piece of work records
 * nothing: the task stays running in the database and is reattached by the next start.
 */
export class DriverWork {
  private readonly inflight = new Map<string, Promise<void>>();
  private controller = new AbortController();

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** A fresh signal for a new start. */
  reset(): void {
    this.controller = new AbortController();
    // Every running task listens on the one signal; thousands may run at once.
    setMaxListeners(0, this.controller.signal);
  }

  /** Runs `work` under `key` unless work under that key is running already; `work` handles its own errors. */
  run(key: string, work: (signal: AbortSignal) => Promise<void>): void {
    if (this.inflight.has(key)) return;
    const running = work(this.controller.signal).finally(() => this.inflight.delete(key));
    this.inflight.set(key, running);
  }

  /** Aborts the signal: drivers stop waiting, nothing more is recorded. */
  abort(): void {
    this.controller.abort(new UpshiftError(ErrorCode.INTERNAL, 'the engine is stopping', { retryable: true }));
  }

  /** Resolves when every piece of work has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inflight.values()]);
  }
}
