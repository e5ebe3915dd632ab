import type { KyselyPlugin } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { NewEvent, UpshiftEvent } from '../../src/domain/events.js';
import { newId } from '../../src/domain/ids.js';
import type { WebhookEventType, WebhookRecord } from '../../src/domain/webhooks.js';
import { Store } from '../../src/store/store.js';
import { openStoreAdapter } from '../../src/store/dialect.js';
import { dialects } from '../support/databases.js';
import { storeForSuite } from '../support/store.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(50);
  }
}

/**
 * The webhook outbox on each database: a delivery row is written with its event (and
 * never for a rolled-back one), claimed under a lease that another claimer cannot take
 * while it lasts but can once it ended, retried when due by the database's clock, and
 * claimed exactly once when two stores (two replicas) claim at the same time.
 */
for (const dialect of dialects) {
  describe(`webhook outbox on ${dialect}`, () => {
    const suite = storeForSuite(dialect);

    async function addWebhook(name: string, events: WebhookEventType[]): Promise<WebhookRecord> {
      const webhook: WebhookRecord = {
        id: newId('wh'),
        name,
        url: 'http://127.0.0.1:9/hook',
        events,
        format: 'json',
        sealedSecret: 'v1:sealed',
        createdBy: 'tester',
        createdAt: new Date().toISOString(),
      };
      await suite.store.webhooks.insert(webhook);
      return webhook;
    }
    const event = (over: Partial<NewEvent>): NewEvent => ({
      type: 'upgrade.auto_paused',
      actor: 'engine',
      clusterId: 'cl_x',
      upgradeId: 'upg_x',
      nodeId: null,
      message: 'paused by itself',
      ...over,
    });
    const outcome = (state: 'sent' | 'pending' | 'failed', status: number | null, retryInMs = 0) => ({
      attempt: { at: new Date().toISOString(), status, error: state === 'sent' ? null : 'refused' },
      state,
      retryInMs,
    });

    it('writes a delivery with each subscribed event, none for other types or a rolled-back event', async () => {
      const hook = await addWebhook('outbox-a', ['upgrade.auto_paused', 'upgrade.completed']);
      const other = await addWebhook('outbox-b', ['upgrade.completed']);
      const paused = await suite.store.events.append(event({ type: 'upgrade.auto_paused' }));
      const [completed] = await suite.store.events.appendMany([event({ type: 'upgrade.completed' }), event({ type: 'node.started' })]);
      await expect(
        suite.store.tx(async (t) => {
          await t.events.append(event({ type: 'upgrade.auto_paused', message: 'rolled back' }));
          throw new Error('rollback');
        }),
      ).rejects.toThrow('rollback');

      expect((await suite.store.webhooks.deliveriesOfEvent(paused.id)).map((d) => d.webhookId)).toEqual([hook.id]);
      expect((await suite.store.webhooks.deliveriesOfEvent(completed!.id)).map((d) => d.webhookId).sort()).toEqual(
        [hook.id, other.id].sort(),
      );
      const listed = await suite.store.webhooks.listDeliveries(hook.id, 50);
      expect(listed.map((d) => d.eventType)).toEqual(['upgrade.completed', 'upgrade.auto_paused']);
      expect(listed[1]).toMatchObject({
        state: 'pending',
        attempts: 0,
        attemptList: [],
        event: { id: paused.id, message: 'paused by itself' },
      });

      // Deleting a webhook takes its deliveries with it.
      expect(await suite.store.webhooks.delete(other.id)).toBe(true);
      expect((await suite.store.webhooks.deliveriesOfEvent(completed!.id)).map((d) => d.webhookId)).toEqual([hook.id]);
      expect(await suite.store.webhooks.delete(other.id)).toBe(false);
      await drain(suite.store, 'cleaner');
      await suite.store.webhooks.delete(hook.id);
    });

    /** Marks everything due as sent, so that the next test starts with an empty outbox. */
    async function drain(store: Store, owner: string) {
      for (const d of await store.webhooks.claimDue(owner, 60_000, 1000))
        await store.webhooks.finishAttempt(d.delivery.id, owner, outcome('sent', 200));
    }

    it('keeps in each delivery the event as recorded, and writes an event with its deliveries and notification in one statement where the database can', async () => {
      const hook = await addWebhook('outbox-json', ['upgrade.auto_paused', 'node.failed']);
      const other = new Store(openStoreAdapter(suite.t.database));
      const heard: UpshiftEvent[] = [];
      other.bus.on('remote-event', (e: UpshiftEvent) => heard.push(e));
      const stopListening = other.events.listenToReplicas(() => undefined);
      // Statements sent by `counted`, a store on the same database whose queries are counted.
      let statements = 0;
      const counting: KyselyPlugin = {
        transformQuery: (args) => {
          statements++;
          return args.node;
        },
        transformResult: async (args) => args.result,
      };
      const adapter = openStoreAdapter(suite.t.database);
      const counted = new Store({ ...adapter, db: adapter.db.withPlugin(counting) });
      try {
        // A listener connects in the background: wait until it hears a first event.
        if (suite.store.adapter.listen)
          await waitUntil(async () => {
            await suite.store.events.append(event({ type: 'cluster.created' }));
            return heard.length > 0;
          });
        const data = { nested: { list: [1, 'two', null], quote: 'say "hi"\n' }, unicode: 'é ✓', empty: {} };
        statements = 0;
        const withData = await counted.events.append(event({ type: 'upgrade.auto_paused', nodeId: 'nd_a', data }));
        // The insert, the outbox rows and the NOTIFY: one statement on PostgreSQL, one each on SQLite (in a transaction).
        expect(statements).toBe(suite.store.adapter.dataModifyingCtes ? 1 : 3);
        const [bare, unsubscribed] = await counted.events.appendMany([
          event({ type: 'node.failed', message: 'no data' }),
          event({ type: 'node.started', message: 'no webhook' }),
        ]);
        // Compared parsed: the database may space the JSON otherwise than JSON.stringify.
        for (const written of [withData, bare!]) {
          const [delivery] = await suite.store.webhooks.deliveriesOfEvent(written.id);
          expect(delivery).toMatchObject({ webhookId: hook.id, eventId: written.id, eventType: written.type, state: 'pending' });
          expect(delivery?.event).toStrictEqual(JSON.parse(JSON.stringify(written)));
          expect(delivery?.createdAt).toBe(written.at);
          expect(delivery?.nextAttemptAt).toBe(written.at);
        }
        expect(withData.data).toEqual(data);
        expect(await suite.store.webhooks.deliveriesOfEvent(unsubscribed!.id)).toEqual([]);
        // Another replica hears of all three, in order, and reads them as written.
        if (suite.store.adapter.listen) {
          const ids = new Set([withData.id, bare!.id, unsubscribed!.id]);
          const ours = () => heard.filter((e) => ids.has(e.id));
          await waitUntil(async () => ours().length >= 3);
          expect(ours()).toEqual([withData, bare, unsubscribed]);
        }
      } finally {
        await stopListening();
        await other.adapter.close();
        await adapter.close();
      }
      await drain(suite.store, 'cleaner');
      await suite.store.webhooks.delete(hook.id);
    });

    it('leases a claimed delivery: no one else takes it until it is finished, retried when due, or its lease ended', async () => {
      const hook = await addWebhook('outbox-lease', ['snapshot.failed']);
      const written = await suite.store.events.append(event({ type: 'snapshot.failed' }));
      const [claimed] = await suite.store.webhooks.claimDue('replica-a', 60_000, 10);
      expect(claimed?.delivery.eventId).toBe(written.id);
      expect(claimed?.webhook.name).toBe('outbox-lease');
      expect(await suite.store.webhooks.claimDue('replica-b', 60_000, 10)).toEqual([]);
      // Only the holder records the attempt.
      expect(await suite.store.webhooks.finishAttempt(claimed!.delivery.id, 'replica-b', outcome('sent', 200))).toBe(false);
      expect(await suite.store.webhooks.finishAttempt(claimed!.delivery.id, 'replica-a', outcome('pending', 500, 400))).toBe(true);
      // Due again only after its backoff, by the database's clock.
      expect(await suite.store.webhooks.claimDue('replica-b', 60_000, 10)).toEqual([]);
      await sleep(600);
      const [retry] = await suite.store.webhooks.claimDue('replica-b', 200, 10);
      expect(retry?.delivery).toMatchObject({ id: claimed!.delivery.id, attempts: 1 });
      // replica-b dies holding it: once its lease ends, replica-a takes it over and b has lost it.
      await sleep(400);
      const [takeover] = await suite.store.webhooks.claimDue('replica-a', 60_000, 10);
      expect(takeover?.delivery.id).toBe(claimed!.delivery.id);
      expect(await suite.store.webhooks.finishAttempt(claimed!.delivery.id, 'replica-b', outcome('sent', 200))).toBe(false);
      expect(await suite.store.webhooks.finishAttempt(claimed!.delivery.id, 'replica-a', outcome('sent', 204))).toBe(true);
      expect(await suite.store.webhooks.claimDue('replica-a', 60_000, 10)).toEqual([]);

      const [delivery] = await suite.store.webhooks.listDeliveries(hook.id, 10);
      expect(delivery).toMatchObject({ state: 'sent', attempts: 2 });
      expect(delivery?.finishedAt).not.toBeNull();
      expect(delivery?.attemptList.map((a) => [a.status, a.error])).toEqual([
        [500, 'refused'],
        [204, null],
      ]);
      expect(delivery?.attemptList[0]?.nextAttemptAt).not.toBeNull();
      expect(delivery?.attemptList[1]?.nextAttemptAt).toBeNull();
      const counts = (await suite.store.webhooks.counts()).find((c) => c.webhookId === hook.id);
      expect(counts?.counts).toEqual({ pending: 0, sent: 1, failed: 0 });
      await suite.store.webhooks.delete(hook.id);
    });

    it('gives each delivery to exactly one of two stores claiming at once', async () => {
      const hook = await addWebhook('outbox-race', ['node.failed']);
      const written = await suite.store.events.appendMany(
        Array.from({ length: 60 }, (_, i) => event({ type: 'node.failed', message: `n${i}` })),
      );
      const other = new Store(openStoreAdapter(suite.t.database));
      try {
        const claims = await Promise.all(
          Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? suite.store : other).webhooks.claimDue(`replica-${i}`, 60_000, 25)),
        );
        const ids = claims.flat().map((c) => c.delivery.eventId);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBeGreaterThan(0);
        const rest = await suite.store.webhooks.claimDue('replica-last', 60_000, 100);
        expect([...ids, ...rest.map((c) => c.delivery.eventId)].sort()).toEqual(written.map((e) => e.id).sort());
      } finally {
        await other.adapter.close();
      }
      await suite.store.webhooks.delete(hook.id);
    });
  });
}
