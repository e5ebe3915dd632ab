import { type Selectable, sql } from 'kysely';
import type { EventType, NewEvent, UpshiftEvent } from '../domain/events.js';
import { isWebhookEventType } from '../domain/webhooks.js';
import { jsonOrNull, nowIso, parseJson, slices } from './rows.js';
import type { EventsTable } from './schema.js';
import type { Scope } from './scope.js';
import { enqueueDeliveries } from './webhooks.js';

/** The PostgreSQL NOTIFY channel on which replicas announce the events they wrote. */
const EVENTS_CHANNEL = 'upshift_events';

const EVENT_COLUMNS = ['id', 'at', 'type', 'actor', 'clusterId', 'upgradeId', 'nodeId', 'message', 'data'] as const;

function toEvent(row: Pick<Selectable<EventsTable>, (typeof EVENT_COLUMNS)[number]>): UpshiftEvent {
  const event: UpshiftEvent = {
    id: String(row.id),
    at: row.at,
    type: row.type,
    actor: row.actor,
    clusterId: row.clusterId,
    upgradeId: row.upgradeId,
    nodeId: row.nodeId,
    message: row.message,
  };
  if (row.data !== null) event.data = parseJson<Record<string, unknown>>(row.data, {});
  return event;
}

function toRow(event: NewEvent) {
  return {
    at: event.at ?? nowIso(),
    type: event.type,
    actor: event.actor,
    clusterId: event.clusterId,
    upgradeId: event.upgradeId,
    nodeId: event.nodeId,
    message: event.message,
    data: jsonOrNull(event.data),
  };
}

export interface EventFilter {
  clusterId?: string | undefined;
  upgradeId?: string | undefined;
  type?: string | undefined;
  /** Only these types (wins over `type`); none given: every type but the audit trail. */
  types?: readonly string[] | undefined;
  /** Only events of this actor. */
  actor?: string | undefined;
  /** Only events with an id below this one (newest-first paging). */
  before?: string | undefined;
  /** Only events with an id above this one (replay after a reconnect). */
  after?: string | undefined;
  limit: number;
}

/**
 * The event log: every operation, in id order. Each event written is announced on the
 * store's `bus` (after its transaction commits) and, on PostgreSQL, to the other replicas
 * (NOTIFY, which PostgreSQL too delivers only on commit), so that every replica's streams
 * and engine see every replica's events.
 */
export class EventRepository {
  constructor(private readonly scope: Scope) {}

  private get db() {
    return this.scope.db;
  }

  /**
   * Writes one event, and its webhook deliveries (the outbox) in the same transaction: an
   * event a webhook may want is written in one, opened here when the caller has none
   * (where the event, its deliveries and the notification go in one statement, that
   * statement is the transaction).
   */
  async append(event: NewEvent): Promise<UpshiftEvent> {
    if (this.needsTransaction([event])) return this.scope.transaction((scope) => new EventRepository(scope).append(event));
    const [stored] = await this.write([event]);
    this.scope.publish([stored as UpshiftEvent]);
    return stored as UpshiftEvent;
  }

  /** Several events in one statement per 500 (a batch starting, a batch of outcomes), in order. */
  async appendMany(events: NewEvent[]): Promise<UpshiftEvent[]> {
    if (this.needsTransaction(events)) return this.scope.transaction((scope) => new EventRepository(scope).appendMany(events));
    const stored: UpshiftEvent[] = [];
    for (const slice of slices(events)) stored.push(...(await this.write(slice)));
    this.scope.publish(stored);
    return stored;
  }

  /** Whether writing these events takes several statements that must commit together, outside a transaction. */
  private needsTransaction(events: readonly NewEvent[]): boolean {
    return !this.scope.inTransaction && !this.scope.adapter.dataModifyingCtes && events.some((e) => isWebhookEventType(e.type));
  }

  /**
   * Writes up to 500 events with their webhook deliveries and tells the other replicas;
   * returns them in id order. On PostgreSQL that is one statement (data-modifying CTEs,
   * docs/design.md §8); elsewhere the insert, the deliveries and the notification follow
   * one another on this scope's connection.
   */
  private async write(events: readonly NewEvent[]): Promise<UpshiftEvent[]> {
    if (this.scope.adapter.dataModifyingCtes) return this.writeInOneStatement(events);
    const rows = await this.db.insertInto('events').values(events.map(toRow)).returning(EVENT_COLUMNS).execute();
    const stored = rows.map(toEvent).sort((a, b) => Number(a.id) - Number(b.id));
    await enqueueDeliveries(this.db, stored);
    await this.notifyReplicas(stored.map((e) => e.id));
    return stored;
  }

  /**
   * The insert, the outbox rows of the webhooks subscribed to each event's type (the
   * event's JSON built by the database: the same fields as `JSON.stringify` of the event,
   * spaced otherwise) and the NOTIFY, as `WITH ins AS (INSERT … RETURNING *), d AS
   * (INSERT INTO webhook_deliveries SELECT … FROM ins JOIN webhook_subscriptions …), n AS
   * (SELECT pg_notify(…)) SELECT … FROM ins, n` (a CTE that only reads runs only when the
   * final select reads it, hence `n` in its FROM). The deliveries are left out when no
   * event is of a webhook type, the notification where no replica listens.
   */
  private async writeInOneStatement(events: readonly NewEvent[]): Promise<UpshiftEvent[]> {
    const { adapter, origin } = this.scope;
    const ref = (column: keyof EventsTable) => sql.ref(`ins.${column}`);
    // The event's fields as `toEvent` names them (`id` as text, `data` only when there is some).
    const fields = sql.join(
      EVENT_COLUMNS.filter((column) => column !== 'data').map(
        (column) => sql`${sql.lit(column)}, ${column === 'id' ? sql`${ref('id')}::text` : ref(column)}`,
      ),
    );
    const eventJson = sql<string>`(case when ${ref('data')} is null then json_build_object(${fields}) else json_build_object(${fields}, 'data', ${ref('data')}::json) end)::text`;
    const notice = sql<string>`json_build_object('origin', ${origin}::text, 'ids', (select json_agg(${ref('id')}::text order by ${ref('id')}) from ins))::text`;
    let query = this.db.with('ins', (db) => db.insertInto('events').values(events.map(toRow)).returningAll());
    if (events.some((e) => isWebhookEventType(e.type)))
      query = query.with('d', (db) =>
        db
          .insertInto('webhookDeliveries')
          .columns(['webhookId', 'eventId', 'eventType', 'event', 'state', 'createdAt', 'nextAttemptAt'])
          .expression((eb) =>
            eb
              .selectFrom('ins')
              .innerJoin('webhookSubscriptions as s', 's.eventType', 'ins.type')
              .select([
                's.webhookId',
                sql<string>`${ref('id')}::text`.as('eventId'),
                'ins.type',
                eventJson.as('event'),
                sql<'pending'>`'pending'`.as('state'),
                'ins.at as createdAt',
                'ins.at as nextAttemptAt',
              ]),
          ),
      ) as unknown as typeof query; // `d` adds nothing the final select reads
    const notify = adapter.listen ? sql<string>`pg_notify(${EVENTS_CHANNEL}, ${notice})::text` : sql<string>`null::text`;
    const rows = await query
      .with('n', (db) => db.selectNoFrom(notify.as('notified')))
      .selectFrom(['ins', 'n'])
      .select(EVENT_COLUMNS.map((column) => `ins.${column}` as const))
      .orderBy('ins.id')
      .execute();
    return rows.map(toEvent);
  }

  /**
   * Events matching the filter: newest first, or oldest first after `after` (a replay).
   * The audit trail (one event per mutating request) is listed only when asked for by type.
   */
  async list(filter: EventFilter): Promise<UpshiftEvent[]> {
    let query = this.db.selectFrom('events').select(EVENT_COLUMNS);
    if (filter.clusterId) query = query.where('clusterId', '=', filter.clusterId);
    if (filter.upgradeId) query = query.where('upgradeId', '=', filter.upgradeId);
    if (filter.types)
      query = filter.types.length === 0 ? query.where(sql<boolean>`false`) : query.where('type', 'in', filter.types as EventType[]);
    else if (filter.type) query = query.where('type', '=', filter.type as EventType);
    else query = query.where('type', '!=', 'audit.request');
    if (filter.actor !== undefined) query = query.where('actor', '=', filter.actor);
    if (filter.before) query = query.where('id', '<', Number(filter.before));
    if (filter.after) query = query.where('id', '>', Number(filter.after));
    const rows = await query
      .orderBy('id', filter.after ? 'asc' : 'desc')
      .limit(filter.limit)
      .execute();
    return rows.map(toEvent);
  }

  /** The paused-TTL purge: the upgrade's events and node logs go; returns how many of each. */
  async purgeUpgradeHistory(upgradeId: string): Promise<{ events: number; logLines: number }> {
    const events = await this.db.deleteFrom('events').where('upgradeId', '=', upgradeId).executeTakeFirst();
    const logs = await this.db.deleteFrom('nodeLogs').where('upgradeId', '=', upgradeId).executeTakeFirst();
    await this.db
      .deleteFrom('nodeLogSizes')
      .where('nodeTaskId', 'in', (eb) => eb.selectFrom('nodeTasks').select('id').where('upgradeId', '=', upgradeId))
      .execute();
    return { events: Number(events.numDeletedRows), logLines: Number(logs.numDeletedRows) };
  }

  /**
   * Tells the other replicas (PostgreSQL NOTIFY, delivered when the transaction commits)
   * which events were written, so that their streams and engines see them at once.
   */
  private async notifyReplicas(ids: string[]): Promise<void> {
    if (!this.scope.adapter.listen || ids.length === 0) return;
    const payload = JSON.stringify({ origin: this.scope.origin, ids });
    await sql`select pg_notify(${EVENTS_CHANNEL}, ${payload})`.execute(this.db);
  }

  /**
   * Receives the other replicas' events and emits them on the bus as `event` (for
   * streams) and `remote-event` (for the engine). Returns a stopper.
   */
  listenToReplicas(onError: (error: unknown) => void): () => Promise<void> {
    const { adapter, bus, origin } = this.scope;
    if (!adapter.listen) return async () => undefined;
    return adapter.listen(
      EVENTS_CHANNEL,
      (payload) => {
        let message: { origin?: string; ids?: string[] };
        try {
          message = JSON.parse(payload) as { origin?: string; ids?: string[] };
        } catch {
          return;
        }
        if (message.origin === origin || !Array.isArray(message.ids) || message.ids.length === 0) return;
        const ids = message.ids.map(Number).filter(Number.isFinite);
        void adapter.db
          .selectFrom('events')
          .select(EVENT_COLUMNS)
          .where('id', 'in', ids)
          .orderBy('id')
          .execute()
          .then((rows) => {
            for (const row of rows) {
              const event = toEvent(row);
              bus.emit('event', event);
              bus.emit('remote-event', event);
            }
          })
          .catch(onError);
      },
      onError,
    );
  }
}
