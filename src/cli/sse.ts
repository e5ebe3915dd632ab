import type { EventView } from '../api/index.js';
import { RELOAD_EVENT, SseParser, type SseMessage } from '../api/sse.js';
import { escapeControls, escapeControlsDeep } from '../domain/text.js';
import { ApiError, CliError, ExitCode } from './errors.js';
import type { ApiClient, Query } from './http.js';

/**
 * The messages of a `text/event-stream` body, as its bytes arrive: decoded here (a UTF-8
 * character may be split across chunks), parsed by the one parser of the API (api/sse.ts).
 */
export async function* parseEventStream(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  const parser = new SseParser();
  for await (const chunk of body) yield* parser.push(decoder.decode(chunk, { stream: true }));
  yield* parser.push(decoder.decode());
  yield* parser.end();
}

export type StreamStatus = 'connected' | 'reconnecting';

export interface FollowOptions {
  /** Filters of `GET /stream`: ids only (`clusterId`, `upgradeId`, `type`). */
  query: Query;
  /** Resume after this event id (sent as `Last-Event-ID`); `undefined`: only new events. */
  lastEventId: string | undefined;
  signal: AbortSignal;
  /** Give up after the server has been unreachable this long (exit 6). */
  giveUpAfterMs?: number;
  onStatus?: (status: StreamStatus, detail?: string) => void;
}

const DEFAULT_RETRY_MS = 2000;
const DEFAULT_GIVE_UP_MS = 120_000;

/**
 * The live events of `GET /api/v1/stream`, across reconnections: after a dropped
 * connection it waits the server's `retry` and reconnects with `Last-Event-ID`, so the
 * server replays what was missed and no event is lost or repeated. Ends when `signal`
 * aborts; throws when the server refuses the stream (401, 404) or stays unreachable.
 */
export async function* followEvents(client: ApiClient, options: FollowOptions): AsyncGenerator<EventView> {
  let lastEventId = options.lastEventId;
  let retryMs = DEFAULT_RETRY_MS;
  let failingSince: number | undefined;
  const giveUpAfter = options.giveUpAfterMs ?? DEFAULT_GIVE_UP_MS;
  while (!options.signal.aborted) {
    let problem: unknown;
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-cache' };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      const response = await client.open('/stream', options.query, headers, options.signal);
      if (!response.body) throw new CliError(ExitCode.apiError, 'the server sent an event stream without a body');
      failingSince = undefined;
      options.onStatus?.('connected');
      for await (const message of parseEventStream(response.body)) {
        if (message.retry !== undefined) retryMs = Math.min(message.retry, 10_000);
        if (message.data === '') continue;
        if (message.event === RELOAD_EVENT) {
          // Too far behind for the server to catch this client up: go on from now, and say so.
          if (message.id !== undefined) lastEventId = message.id;
          options.onStatus?.(
            'reconnecting',
            'this client fell too far behind the server; events in between were skipped (list them with `upshift events`)',
          );
          continue;
        }
        // Shown as the API's other answers are: control characters escaped (see http.ts).
        const event = escapeControlsDeep(JSON.parse(message.data) as EventView);
        if (message.id !== undefined) lastEventId = message.id;
        yield event;
      }
      problem = new Error('the server closed the event stream');
    } catch (error) {
      if (options.signal.aborted) return;
      if (error instanceof ApiError && error.status < 500) throw error;
      problem = error;
    }
    if (options.signal.aborted) return;
    failingSince ??= Date.now();
    if (Date.now() - failingSince > giveUpAfter) {
      throw problem instanceof CliError ? problem : client.unreachable(problem);
    }
    options.onStatus?.('reconnecting', escapeControls(problem instanceof Error ? problem.message : String(problem)));
    await sleep(retryMs, options.signal);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
