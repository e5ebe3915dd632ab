import type { V1Node, V1NodeList } from '@kubernetes/client-node';
import type { Clock } from '../../domain/ports.js';
import type { KubeClient } from './client.js';
import { apiStatus, describeKubeError, withDeadline } from './client.js';

export interface DriverLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface NodeWatchOptions {
  clock: Clock;
  logger: DriverLogger;
  clusterId: string;
  /** Asked of the server on each watch request: it ends the stream after this long, and we reconnect. */
  watchTimeoutSeconds: number;
  /** A watch nobody asked about for this long stops at its next reconnect (its cluster was deleted, say). */
  idleMs: number;
  requestTimeoutMs: number;
}

/**
 * The cluster's Nodes, listed once and then kept current by a watch from the list's
 * `resourceVersion`, as an informer does:
 * - ADDED / MODIFIED / DELETED update the cache and the resourceVersion to resume from;
 * - the server ending the stream (`timeoutSeconds`, a restart) → watch again from there;
 * - `410 Gone` (an ERROR event whose Status has code 410, or a 410 response), the
 *   resourceVersion was compacted away → list again and watch from the new one;
 * - any other failure → the cache is no longer trusted; list again after a backoff
 *   (1 s doubling to 30 s).
 * `fresh()` is the cache when the watch is connected and recent; otherwise the caller
 * lists (which also restarts the watch), so a dead connection costs one list, never a
 * stale inventory.
 */
export class NodeWatch {
  private readonly nodes = new Map<string, V1Node>();
  private resourceVersion: string | undefined;
  private synced = false;
  private connected = false;
  private connectedAt = 0;
  private lastUsed: number;
  private generation = 0;
  private controller: AbortController | undefined;
  private cancelTimer: (() => void) | undefined;
  private backoffMs = 0;
  private stopped = false;
  /** How many full lists this watch made; tests read it to see a 410 handled. */
  relists = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly options: NodeWatchOptions,
  ) {
    this.lastUsed = options.clock.now();
  }

  get digest(): string {
    return this.client.digest;
  }

  /** Whether a watch stream is open now. */
  get watching(): boolean {
    return this.connected;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  touch(): void {
    this.lastUsed = this.options.clock.now();
  }

  /** The cached Nodes when the watch vouches for them; `undefined` means list. */
  fresh(): V1Node[] | undefined {
    if (!this.synced || !this.connected) return undefined;
    if (this.options.clock.now() - this.connectedAt > (this.options.watchTimeoutSeconds + 60) * 1000) return undefined;
    return [...this.nodes.values()];
  }

  /** Lists the Nodes, replaces the cache and (re)starts the watch from the list's resourceVersion. */
  async list(signal?: AbortSignal): Promise<V1Node[]> {
    const list: V1NodeList = await withDeadline(this.client.core.listNode(), this.options.requestTimeoutMs, 'listing nodes', signal);
    this.relists++;
    this.nodes.clear();
    for (const node of list.items) if (node.metadata?.name) this.nodes.set(node.metadata.name, node);
    this.resourceVersion = list.metadata?.resourceVersion;
    this.synced = true;
    this.backoffMs = 0;
    this.endWatch();
    this.startWatch();
    return list.items;
  }

  stop(): void {
    this.stopped = true;
    this.endWatch();
  }

  /**
   * Ends the current watch and any pending relist or rewatch. The generation moves on
   * *before* the abort: the client library reports an abort to `onDone` synchronously,
   * as a failure, and an `onDone` that still saw the current generation would schedule a
   * relist, whose own abort would schedule the next, once a second for ever.
   */
  private endWatch(): void {
    this.generation++;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const controller = this.controller;
    this.controller = undefined;
    this.connected = false;
    controller?.abort();
  }

  private startWatch(): void {
    if (this.stopped) return;
    if (this.options.clock.now() - this.lastUsed > this.options.idleMs) {
      this.stop();
      return;
    }
    const generation = ++this.generation;
    let expired = false;
    let finished = false;
    const startedAt = this.options.clock.now();
    const onEvent = (type: string, object: unknown) => {
      if (generation !== this.generation) return;
      const node = object as V1Node;
      switch (type) {
        case 'ADDED':
        case 'MODIFIED':
          if (node.metadata?.name) this.nodes.set(node.metadata.name, node);
          break;
        case 'DELETED':
          if (node.metadata?.name) this.nodes.delete(node.metadata.name);
          break;
        case 'BOOKMARK':
          break;
        case 'ERROR': {
          const status = object as { code?: number; message?: string };
          if (status.code === 410) expired = true;
          else this.options.logger.warn({ clusterId: this.options.clusterId, status }, 'node watch reported an error');
          return;
        }
        default:
          return;
      }
      if (node.metadata?.resourceVersion) this.resourceVersion = node.metadata.resourceVersion;
    };
    const onDone = (error: unknown) => {
      finished = true;
      if (generation !== this.generation || this.stopped) return;
      this.connected = false;
      if (expired || apiStatus(error)?.code === 410) {
        this.synced = false;
        this.options.logger.info({ clusterId: this.options.clusterId }, 'node watch: resourceVersion expired (410 Gone); relisting');
        this.relistSoon(0);
      } else if (error === null || error === undefined) {
        // The server ended the stream (timeoutSeconds, a restart): resume from where we were.
        const quick = this.options.clock.now() - startedAt < 1000;
        if (quick) this.rewatchSoon();
        else this.startWatch();
      } else {
        this.synced = false;
        this.options.logger.warn(
          { clusterId: this.options.clusterId, reason: describeKubeError(error) },
          'node watch failed; relisting after a backoff',
        );
        this.relistSoon(this.nextBackoff());
      }
    };
    const query: Record<string, string | number | boolean | undefined> = {
      allowWatchBookmarks: false,
      timeoutSeconds: this.options.watchTimeoutSeconds,
      ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}),
    };
    this.client.watch.watch('/api/v1/nodes', query, onEvent, onDone).then(
      (controller: AbortController) => {
        if (generation !== this.generation) {
          controller.abort();
          return;
        }
        this.controller = controller;
        if (!finished) {
          this.connected = true;
          this.connectedAt = this.options.clock.now();
        }
      },
      (error: unknown) => onDone(error ?? new Error('the node watch could not start')),
    );
  }

  private nextBackoff(): number {
    this.backoffMs = Math.min(30_000, this.backoffMs === 0 ? 1000 : this.backoffMs * 2);
    return this.backoffMs;
  }

  /** A stream that ends as soon as it opens should not become a busy loop. */
  private rewatchSoon(): void {
    this.cancelTimer?.();
    this.cancelTimer = this.options.clock.setTimer(this.nextBackoff(), () => {
      this.cancelTimer = undefined;
      this.startWatch();
    });
  }

  private relistSoon(ms: number): void {
    if (this.stopped) return;
    this.cancelTimer?.();
    this.cancelTimer = this.options.clock.setTimer(ms, () => {
      this.cancelTimer = undefined;
      if (this.stopped) return;
      if (this.options.clock.now() - this.lastUsed > this.options.idleMs) {
        this.stop();
        return;
      }
      this.list().catch((error: unknown) => {
        this.options.logger.warn(
          { clusterId: this.options.clusterId, reason: describeKubeError(error) },
          'listing nodes for the watch failed; retrying',
        );
        this.relistSoon(this.nextBackoff());
      });
    });
  }
}
