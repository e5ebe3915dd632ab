import { type ExpressionBuilder, type RawBuilder, type Selectable, sql } from 'kysely';
import { ErrorCode, UpshiftError } from '../domain/errors.js';
import type { UpshiftEvent } from '../domain/events.js';
import {
  type DeliveryAttempt,
  type DeliveryRecord,
  type DeliveryState,
  type WebhookRecord,
  deliveryStates,
  isWebhookEventType,
} from '../domain/webhooks.js';
import { changed, countsByState, parseJson } from './rows.js';
import type { Database, WebhookDeliveriesTable, WebhooksTable } from './schema.js';
import type { Db, Scope } from './scope.js';

function toWebhook(row: Selectable<WebhooksTable>): WebhookRecord {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    events: parseJson<WebhookRecord['events']>(row.events, []),
    format: row.format,
    sealedSecret: row.sealedSecret,
    createdBy: row.createdBy,
    createdAt: row.createdAt,
  };
}

function toDelivery(row: Selectable<WebhookDeliveriesTable>): DeliveryRecord {
  return {
    id: String(row.id),
    webhookId: row.webhookId,
    eventId: row.eventId,
    eventType: row.eventType,
    event: parseJson<UpshiftEvent>(row.event, {} as UpshiftEvent),
    state: row.state,
    attempts: Number(row.attempts),
    createdAt: row.createdAt,
    nextAttemptAt: row.nextAttemptAt,
    finishedAt: row.finishedAt,
  };
}

/** A delivery claimed for sending, with the webhook it goes to. */
export interface DueDelivery {
  delivery: DeliveryRecord;
  webhook: WebhookRecord;
}

/** What one attempt came to: the delivery is `sent`, `failed` (given up), or `pending` again in `retryInMs`. */
export interface AttemptOutcome {
  attempt: { at: string; status: number | null; error: string | null };
  state: DeliveryState;
  /** For `pending`: when to try again, from the database's now. */
  retryInMs?: number;
}

/**
 * Writes the outbox rows of events just appended, on the same connection (so in the
 * same transaction): one per event and webhook subscribed to its type. Events no
 * webhook may subscribe to cost nothing here.
 */
export async function enqueueDeliveries(db: Db, events: readonly UpshiftEvent[]): Promise<void> {
  const wanted = events.filter((e) => isWebhookEventType(e.type));
  if (wanted.length === 0) return;
  const types = [...new Set(wanted.map((e) => e.type))];
  const subscriptions = await db
    .selectFrom('webhookSubscriptions')
    .select(['webhookId', 'eventType'])
    .where('eventType', 'in', types)
    .execute();
  if (subscriptions.length === 0) return;
  const rows = wanted.flatMap((event) =>
    subscriptions
      .filter((s) => s.eventType === event.type)
      .map((s) => ({
        webhookId: s.webhookId,
        eventId: event.id,
        eventType: event.type,
        event: JSON.stringify(event),
        state: 'pending' as const,
        createdAt: event.at,
        nextAttemptAt: event.at,
      })),
  );
  await db.insertInto('webhookDeliveries').values(rows).execute();
}

/**
 * Webhooks and their delivery outbox (migration 12). A delivery row is written with its
 * event (`enqueueDeliveries`, called by `events.append`), so none is lost to a crash
 * between the two. Sending is claimed by a lease on the row, like upgrades' leases
 * (leases.ts): the database's clock decides when a lease ended and when a retry is due,
 * so two replicas never send the same delivery at once, and a replica that died while
 * sending leaves its deliveries to another once the lease ends.
 */
export class WebhookRepository {
  constructor(private readonly scope: Scope) {}

  private get db() {
    return this.scope.db;
  }

  /** Stores a webhook and its subscriptions; ALREADY_EXISTS when the name is taken. */
  async insert(webhook: WebhookRecord): Promise<void> {
    await this.scope.transaction(async (scope) => {
      try {
        await scope.db
          .insertInto('webhooks')
          .values({
            id: webhook.id,
            name: webhook.name,
            url: webhook.url,
            events: JSON.stringify(webhook.events),
            format: webhook.format,
            sealedSecret: webhook.sealedSecret,
            createdBy: webhook.createdBy,
            createdAt: webhook.createdAt,
          })
          .execute();
      } catch (error) {
        if (this.scope.adapter.isUniqueViolation(error))
          throw new UpshiftError(
            ErrorCode.ALREADY_EXISTS,
            `a webhook named ${webhook.name} exists already; delete it or pick another name`,
          );
        throw error;
      }
      await scope.db
        .insertInto('webhookSubscriptions')
        .values(webhook.events.map((eventType) => ({ webhookId: webhook.id, eventType })))
        .execute();
    });
  }

  async list(): Promise<WebhookRecord[]> {
    return (await this.db.selectFrom('webhooks').selectAll().orderBy('name').execute()).map(toWebhook);
  }

  async get(id: string): Promise<WebhookRecord | undefined> {
    const row = await this.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toWebhook(row) : undefined;
  }

  async getByName(name: string): Promise<WebhookRecord | undefined> {
    const row = await this.db.selectFrom('webhooks').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toWebhook(row) : undefined;
  }

  /** Deletes the webhook with its subscriptions, deliveries and attempts; false when there is none. */
  async delete(id: string): Promise<boolean> {
    return this.scope.transaction(async (scope) => {
      const deliveries = scope.db.selectFrom('webhookDeliveries').select('id').where('webhookId', '=', id);
      await scope.db.deleteFrom('webhookAttempts').where('deliveryId', 'in', deliveries).execute();
      await scope.db.deleteFrom('webhookDeliveries').where('webhookId', '=', id).execute();
      await scope.db.deleteFrom('webhookSubscriptions').where('webhookId', '=', id).execute();
      return changed(await scope.db.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst()) === 1;
    });
  }

  /** A webhook's deliveries, newest first, each with its attempts in order. */
  async listDeliveries(webhookId: string, limit: number): Promise<Array<DeliveryRecord & { attemptList: DeliveryAttempt[] }>> {
    const rows = await this.db
      .selectFrom('webhookDeliveries')
      .selectAll()
      .where('webhookId', '=', webhookId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    if (rows.length === 0) return [];
    const attempts = await this.db
      .selectFrom('webhookAttempts')
      .select(['deliveryId', 'at', 'status', 'error', 'nextAttemptAt'])
      .where(
        'deliveryId',
        'in',
        rows.map((r) => Number(r.id)),
      )
      .orderBy('id')
      .execute();
    const byDelivery = new Map<string, DeliveryAttempt[]>();
    for (const a of attempts) {
      const list = byDelivery.get(String(a.deliveryId)) ?? [];
      list.push({ at: a.at, status: a.status === null ? null : Number(a.status), error: a.error, nextAttemptAt: a.nextAttemptAt });
      byDelivery.set(String(a.deliveryId), list);
    }
    return rows.map((row) => ({ ...toDelivery(row), attemptList: byDelivery.get(String(row.id)) ?? [] }));
  }

  /** Deliveries by webhook and state (metrics). */
  async counts(): Promise<Array<{ webhookId: string; name: string; counts: Record<DeliveryState, number> }>> {
    const [hooks, rows] = await Promise.all([
      this.db.selectFrom('webhooks').select(['id', 'name']).execute(),
      this.db
        .selectFrom('webhookDeliveries')
        .select(['webhookId', 'state', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy(['webhookId', 'state'])
        .execute(),
    ]);
    return hooks.map((h) => ({
      webhookId: h.id,
      name: h.name,
      counts: countsByState(
        deliveryStates,
        rows.filter((r) => r.webhookId === h.id),
      ),
    }));
  }

  /** Due and free (or with an ended lease), by the database's clock `now`. */
  private claimable(now: RawBuilder<string>) {
    const collation = this.scope.adapter.bytewiseCollation;
    const before = (column: 'nextAttemptAt' | 'leaseExpiresAt') =>
      collation ? sql<boolean>`${sql.ref(column)} <= ${now} collate ${sql.raw(collation)}` : sql<boolean>`${sql.ref(column)} <= ${now}`;
    return (eb: ExpressionBuilder<Database, 'webhookDeliveries'>) =>
      eb.and([eb('state', '=', 'pending'), before('nextAttemptAt'), eb.or([eb('leaseOwner', 'is', null), before('leaseExpiresAt')])]);
  }

  /**
   * Claims up to `limit` due deliveries for `owner` for `leaseMs` from the database's now,
   * oldest due first. Each claim is a conditional UPDATE of one row, so that of two
   * replicas claiming together exactly one wins each delivery.
   */
  async claimDue(owner: string, leaseMs: number, limit: number): Promise<DueDelivery[]> {
    const { adapter } = this.scope;
    const candidates = await this.db
      .selectFrom('webhookDeliveries')
      .select('id')
      .where(this.claimable(adapter.clockIso()))
      .orderBy('nextAttemptAt')
      .orderBy('id')
      .limit(limit)
      .execute();
    const claimed: DueDelivery[] = [];
    const hooks = new Map<string, WebhookRecord | undefined>();
    for (const { id } of candidates) {
      const result = await this.db
        .updateTable('webhookDeliveries')
        .set({ leaseOwner: owner, leaseExpiresAt: adapter.clockIso(leaseMs) })
        .where('id', '=', Number(id))
        .where(this.claimable(adapter.clockIso()))
        .executeTakeFirst();
      if (changed(result) !== 1) continue;
      const row = await this.db.selectFrom('webhookDeliveries').selectAll().where('id', '=', Number(id)).executeTakeFirst();
      if (!row) continue;
      if (!hooks.has(row.webhookId)) hooks.set(row.webhookId, await this.get(row.webhookId));
      const webhook = hooks.get(row.webhookId);
      if (webhook) claimed.push({ delivery: toDelivery(row), webhook });
    }
    return claimed;
  }

  /**
   * Records an attempt and its outcome and lets go of the lease, in one transaction;
   * false (and nothing written) when `owner` no longer holds the delivery's lease.
   */
  async finishAttempt(deliveryId: string, owner: string, outcome: AttemptOutcome): Promise<boolean> {
    const { adapter } = this.scope;
    return this.scope.transaction(async (scope) => {
      const retry = outcome.state === 'pending' ? adapter.clockIso(outcome.retryInMs ?? 0) : null;
      const result = await scope.db
        .updateTable('webhookDeliveries')
        .set((eb) => ({
          state: outcome.state,
          attempts: eb('attempts', '+', 1),
          nextAttemptAt: retry,
          finishedAt: outcome.state === 'pending' ? null : outcome.attempt.at,
          leaseOwner: null,
          leaseExpiresAt: null,
        }))
        .where('id', '=', Number(deliveryId))
        .where('leaseOwner', '=', owner)
        .where('state', '=', 'pending')
        .executeTakeFirst();
      if (changed(result) !== 1) return false;
      const next =
        outcome.state === 'pending'
          ? ((
              await scope.db.selectFrom('webhookDeliveries').select('nextAttemptAt').where('id', '=', Number(deliveryId)).executeTakeFirst()
            )?.nextAttemptAt ?? null)
          : null;
      await scope.db
        .insertInto('webhookAttempts')
        .values({
          deliveryId: Number(deliveryId),
          at: outcome.attempt.at,
          status: outcome.attempt.status,
          error: outcome.attempt.error,
          nextAttemptAt: next,
        })
        .execute();
      return true;
    });
  }

  /** Lets go of `owner`'s leases (a graceful stop): another replica sends them at once. */
  async release(owner: string): Promise<void> {
    await this.db
      .updateTable('webhookDeliveries')
      .set({ leaseOwner: null, leaseExpiresAt: null })
      .where('leaseOwner', '=', owner)
      .where('state', '=', 'pending')
      .execute();
  }

  /** Every delivery of one event (tests and support: "was it sent exactly once?"). */
  async deliveriesOfEvent(eventId: string): Promise<DeliveryRecord[]> {
    return (await this.db.selectFrom('webhookDeliveries').selectAll().where('eventId', '=', eventId).execute()).map(toDelivery);
  }
}
