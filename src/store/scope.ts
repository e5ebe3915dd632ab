import type { EventEmitter } from 'node:events';
import type { Kysely, Transaction } from 'kysely';
import type { UpshiftEvent } from '../domain/events.js';
import type { StoreAdapter } from './dialect.js';
import type { Database } from './schema.js';

/** The pool (outside a transaction) or the one connection of a transaction. */
export type Db = Kysely<Database> | Transaction<Database>;

/**
 * What every repository of one `Store` shares: the connection its statements run on, and
 * where the events they write are announced. A transaction makes a new scope on one
 * connection, so that all repositories of `store.tx(async (t) => …)` write in it; its
 * events are held back and published on `bus` only once it commits (a rolled-back
 * event was never written, and a listener must never see it).
 */
export class Scope {
  constructor(
    readonly adapter: StoreAdapter,
    readonly db: Db,
    /** `event` for every event written (after its commit); `remote-event` for those of other replicas. */
    readonly bus: EventEmitter,
    /** Tells this process's own replica notifications apart from other replicas'. */
    readonly origin: string,
    /** Events written in this scope's transaction, to publish after the commit; undefined outside one. */
    private readonly pending: UpshiftEvent[] | undefined,
  ) {}

  get inTransaction(): boolean {
    return this.pending !== undefined;
  }

  /** Runs `fn` in one transaction, or in the one this scope is already in; publishes its events after the commit. */
  async transaction<T>(fn: (scope: Scope) => Promise<T>): Promise<T> {
    if (this.pending) return fn(this);
    const events: UpshiftEvent[] = [];
    const result = await this.adapter.db.transaction().execute((trx) => fn(new Scope(this.adapter, trx, this.bus, this.origin, events)));
    for (const event of events) this.bus.emit('event', event);
    return result;
  }

  /** Announces written events: at once outside a transaction, after the commit inside one. */
  publish(events: readonly UpshiftEvent[]): void {
    if (this.pending) this.pending.push(...events);
    else for (const event of events) this.bus.emit('event', event);
  }
}
