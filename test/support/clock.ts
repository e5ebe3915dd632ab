import type { Clock } from '../../src/domain/ports.js';

/**
 * Real time that a test can jump forward: timers fire at their real moment, or at once
 * when `advance` moves the clock past them. This is how a test passes 15 days.
 */
export class JumpClock implements Clock {
  private offset = 0;
  private readonly timers = new Set<{ due: number; fn: () => void; handle: NodeJS.Timeout }>();

  now(): number {
    return Date.now() + this.offset;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer = {
      due: this.now() + ms,
      fn,
      handle: setTimeout(
        () => {
          this.timers.delete(timer);
          fn();
        },
        Math.max(0, Math.min(ms, 2 ** 31 - 1)),
      ),
    };
    this.timers.add(timer);
    return () => {
      clearTimeout(timer.handle);
      this.timers.delete(timer);
    };
  }

  advance(ms: number): void {
    this.offset += ms;
    const now = this.now();
    for (const timer of [...this.timers]) {
      if (timer.due <= now) {
        clearTimeout(timer.handle);
        this.timers.delete(timer);
        timer.fn();
      }
    }
  }
}
