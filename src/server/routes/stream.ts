import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { notFound } from '../../domain/errors.js';
import type { UpshiftEvent } from '../../domain/events.js';
import { looksLikeId } from '../../domain/ids.js';
import type { Store } from '../../store/store.js';
import { StreamQuery } from './schemas.js';

/**
 * `GET /api/v1/stream`: Server-Sent Events of the event objects, live. A client that
 * reconnects with `Last-Event-ID` first gets what it missed, from the database.
 */
export const streamRoutes: FastifyPluginAsyncTypebox<{ store: Store; streams: Set<() => void> }> = async (app, { store, streams }) => {
  app.get(
    '/stream',
    { schema: { tags: ['events'], summary: 'Live events (text/event-stream)', querystring: StreamQuery } },
    async (request, reply) => {
      const { upgradeId, type } = request.query;
      let clusterId = request.query.clusterId;
      if (clusterId && !looksLikeId(clusterId)) {
        const byName = await store.findClusterByName(clusterId);
        if (!byName) throw notFound('cluster', clusterId);
        clusterId = byName.id;
      }
      const matches = (e: UpshiftEvent) =>
        (!clusterId || e.clusterId === clusterId) &&
        (!upgradeId || e.upgradeId === upgradeId) &&
        // The audit trail is streamed only when asked for by type.
        (type ? e.type === type : e.type !== 'audit.request');
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(': connected\nretry: 2000\n\n');
      let lastSent = 0;
      const send = (e: UpshiftEvent) => {
        const id = Number(e.id);
        if (id <= lastSent || !matches(e)) return;
        lastSent = id;
        res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      };
      const buffered: UpshiftEvent[] = [];
      let replaying = true;
      const onEvent = (e: UpshiftEvent) => (replaying ? buffered.push(e) : send(e));
      store.bus.on('event', onEvent);
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      const close = () => {
        clearInterval(heartbeat);
        store.bus.off('event', onEvent);
        streams.delete(close);
        if (!res.writableEnded) res.end();
      };
      streams.add(close);
      request.raw.on('close', close);
      const lastEventId = request.headers['last-event-id'];
      if (typeof lastEventId !== 'string') {
        // Tell a fresh client where the stream starts (an id-only block dispatches no event),
        // so that it can reconnect without a gap.
        const [latest] = await store.listEvents({ limit: 1 });
        if (latest) res.write(`id: ${latest.id}\n\n`);
      }
      if (typeof lastEventId === 'string' && /^\d{1,19}$/.test(lastEventId)) {
        let after = lastEventId;
        for (;;) {
          const missed = await store.listEvents({ clusterId, upgradeId, type, after, limit: 500 });
          for (const e of missed) send(e);
          if (missed.length < 500) break;
          after = missed[missed.length - 1]?.id ?? after;
        }
      }
      replaying = false;
      for (const e of buffered) send(e);
    },
  );
};
