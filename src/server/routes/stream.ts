import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { EventStream, RELOAD_EVENT, StreamQuery, errorResponses } from '../../api/index.js';
import { invalid, notFound } from '../../domain/errors.js';
import { type UpshiftEvent, eventSelection, selects } from '../../domain/events.js';
import { looksLikeId } from '../../domain/ids.js';
import type { Store } from '../../store/store.js';

/** Events replayed to a reconnecting client before it is told to reload instead. */
export const REPLAY_LIMIT = 10_000;
/** Bytes of live events queued for a client that does not read before it is let go. */
export const LIVE_QUEUE_BYTES = 4 * 1024 * 1024;
/** How long a client that was let go has to read what is queued for it before it is cut. */
const LET_GO_MS = 10_000;
const REPLAY_PAGE = 500;

/**
 * `GET /api/v1/stream`: Server-Sent Events of the event objects, live. A client that
 * reconnects with `Last-Event-ID` first gets what it missed, from the database, page by
 * page as its socket drains, up to `REPLAY_LIMIT` events; further behind, or not reading
 * live events (`LIVE_QUEUE_BYTES` waiting), it gets a `reload` event (with the current
 * id) and is disconnected, so one slow client costs the server a bounded amount of memory.
 */
export const streamRoutes: FastifyPluginAsyncTypebox<{ store: Store; streams: Set<() => void> }> = async (app, { store, streams }) => {
  app.get(
    '/stream',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['events'],
        summary: 'Live events (text/event-stream)',
        querystring: StreamQuery,
        response: { 200: EventStream, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { upgradeId, type, actor, operations } = request.query;
      const selected = eventSelection({ type, actor, operations: operations === 'true' });
      if (!selected.ok) throw invalid(selected.message, { field: 'type' });
      const selection = selected.selection;
      let clusterId = request.query.clusterId;
      if (clusterId && !looksLikeId(clusterId)) {
        const byName = await store.clusters.findByName(clusterId);
        if (!byName) throw notFound('cluster', clusterId);
        clusterId = byName.id;
      }
      const matches = (e: UpshiftEvent) =>
        (!clusterId || e.clusterId === clusterId) && (!upgradeId || e.upgradeId === upgradeId) && selects(selection, e);
      reply.hijack();
      const res = reply.raw;
      // Hijacked: the onSend hook does not run, so the answer carries its headers itself.
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
      });
      let closed = false;
      let lastSent = 0;
      const buffered: UpshiftEvent[] = [];
      let replaying = true;
      const format = (e: UpshiftEvent) => `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
      const heartbeat = setInterval(() => {
        if (!closed) res.write(': keep-alive\n\n');
      }, 15_000);
      const close = () => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        store.bus.off('event', onEvent);
        streams.delete(close);
        if (!res.writableEnded) res.end();
      };
      /**
       * The client is too far behind to be caught up event by event: it is told to reload
       * what it shows (and where the stream is now), then disconnected once what was written
       * has reached it. Cutting at once would drop the queued tail, `reload` included, from
       * a client that reads slowly; one that does not read at all is cut after `LET_GO_MS`.
       */
      const tooFarBehind = async (reason: string) => {
        if (closed) return;
        const [latest] = await store.events.list({ limit: 1 });
        if (closed) return;
        res.write(`${latest ? `id: ${latest.id}\n` : ''}event: ${RELOAD_EVENT}\ndata: ${JSON.stringify({ reason })}\n\n`);
        const socket = res.socket;
        const cut = setTimeout(() => res.destroy(), LET_GO_MS);
        cut.unref();
        res.once('finish', () => {
          clearTimeout(cut);
          socket?.end();
        });
        res.once('close', () => clearTimeout(cut));
        close();
      };
      const send = (e: UpshiftEvent) => {
        const id = Number(e.id);
        if (closed || id <= lastSent || !matches(e)) return;
        lastSent = id;
        res.write(format(e));
        // A client that does not read: its queue is bounded, then it is let go.
        if (res.writableLength > LIVE_QUEUE_BYTES)
          void tooFarBehind(`more than ${LIVE_QUEUE_BYTES} bytes of events were waiting for this client`);
      };
      const onEvent = (e: UpshiftEvent) => {
        if (!replaying) return send(e);
        buffered.push(e);
        if (buffered.length > REPLAY_LIMIT) void tooFarBehind(`more than ${REPLAY_LIMIT} events arrived while catching up`);
      };
      /** Waits until the socket has room again (back-pressure), or the client left. */
      const drained = () =>
        new Promise<void>((resolve) => {
          if (closed || !res.writableNeedDrain) return resolve();
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      store.bus.on('event', onEvent);
      streams.add(close);
      request.raw.on('close', close);
      res.on('close', close);
      res.write(': connected\nretry: 2000\n\n');
      const lastEventId = request.headers['last-event-id'];
      if (typeof lastEventId !== 'string') {
        // Tell a fresh client where the stream starts (an id-only block dispatches no event),
        // so that it can reconnect without a gap.
        const [latest] = await store.events.list({ limit: 1 });
        if (latest) res.write(`id: ${latest.id}\n\n`);
      }
      if (typeof lastEventId === 'string' && /^\d{1,19}$/.test(lastEventId)) {
        let after = lastEventId;
        let replayed = 0;
        while (!closed) {
          const missed = await store.events.list({ clusterId, upgradeId, type, after, limit: REPLAY_PAGE });
          for (const e of missed) send(e);
          replayed += missed.length;
          if (missed.length < REPLAY_PAGE) break;
          if (replayed >= REPLAY_LIMIT) {
            await tooFarBehind(`more than ${REPLAY_LIMIT} events were missed`);
            return;
          }
          after = missed[missed.length - 1]?.id ?? after;
          await drained();
        }
      }
      replaying = false;
      for (const e of buffered.splice(0)) send(e);
    },
  );
};
