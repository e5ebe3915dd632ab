import { Writable } from 'node:stream';
import type { Clock } from '../../domain/ports.js';
import type { KubeClient } from './client.js';
import { describeKubeError, withDeadline } from './client.js';
import { EXECUTOR_CONTAINER } from './manifests.js';

/**
 * Follows the executor container's log into the node task's log. The follow stream
 * can end early (an API server restart, a proxy timeout); it is reopened and the lines
 * already written are skipped by count, and once the pod has ended one plain read
 * fetches whatever the stream did not deliver, so no line is lost or written twice.
 */
export class LogFollower {
  private emitted = 0;
  private following = false;
  private controller: AbortController | undefined;
  private streamEnded: Promise<void> = Promise.resolve();
  /** The last lines, for the failure message. */
  readonly tail: string[] = [];

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly pod: string,
    private readonly sink: (line: string) => void,
    private readonly requestTimeoutMs: number,
  ) {}

  private emit(line: string): void {
    this.sink(line);
    this.tail.push(line);
    if (this.tail.length > 5) this.tail.shift();
  }

  /** Opens the follow stream unless one is open; a container not started yet (400) is tried again at the next poll. */
  async follow(): Promise<void> {
    if (this.following) return;
    this.following = true;
    let seen = 0;
    let partial = '';
    let ended!: () => void;
    this.streamEnded = new Promise<void>((resolve) => (ended = resolve));
    const done = () => {
      this.following = false;
      ended();
    };
    const stream = new Writable({
      write: (chunk: Buffer | string, _encoding, callback) => {
        partial += chunk.toString();
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const raw of lines) {
          seen++;
          if (seen > this.emitted) {
            this.emitted = seen;
            this.emit(raw.replace(/\r$/, ''));
          }
        }
        callback();
      },
    });
    stream.on('finish', done);
    stream.on('error', done);
    try {
      this.controller = await withDeadline(
        this.client.log.log(this.namespace, this.pod, EXECUTOR_CONTAINER, stream, { follow: true }),
        this.requestTimeoutMs,
        `opening the log of pod ${this.pod}`,
      );
    } catch {
      done();
    }
  }

  /** After the pod ended: lets the stream deliver its tail, then reads the whole log once for anything it missed. */
  async finish(clock: Clock, tailMs: number): Promise<void> {
    if (this.following) {
      let cancel: (() => void) | undefined;
      await Promise.race([this.streamEnded, new Promise<void>((resolve) => (cancel = clock.setTimer(tailMs, resolve)))]);
      cancel?.();
    }
    this.close();
    try {
      const text = await withDeadline(
        this.client.core.readNamespacedPodLog({ name: this.pod, namespace: this.namespace, container: EXECUTOR_CONTAINER }),
        this.requestTimeoutMs,
        `reading the log of pod ${this.pod}`,
      );
      const lines = String(text).split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      for (let i = this.emitted; i < lines.length; i++) this.emit((lines[i] ?? '').replace(/\r$/, ''));
      this.emitted = Math.max(this.emitted, lines.length);
    } catch (error) {
      this.sink(`(the rest of the executor's log could not be read: ${describeKubeError(error)})`);
    }
  }

  close(): void {
    this.controller?.abort();
    this.controller = undefined;
    this.following = false;
  }
}
