import { escapeControls, escapeControlsDeep } from '../domain/text.js';
import type { UpshiftEvent } from './api-types.js';
import { ApiError, CliError, ExitCode } from './errors.js';
import type { ApiClient, Query } from './http.js';

/** One message of a `text/event-stream` (the WHATWG "server-sent events" format). */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
  retry: number | undefined;
}

/**
 * Parses a `text/event-stream` body into messages: fields up to a blank line, `data`
 * lines joined with newlines, comments (`: keep-alive`) ignored, CRLF, LF or CR line ends.
 */
export async function* parseEventStream(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  let retry: number | undefined;
  const takeLines = function* (final: boolean): Generator<string> {
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      // A lone CR at the end of a chunk may be the first half of a CRLF.
      if (!match || (match[0] === '\r' && match.index === buffer.length - 1 && !final)) return;
      yield buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
    }
  };
  const lineToMessage = (line: string): SseMessage | undefined => {
    if (line === '') {
      const message = data.length > 0 || retry !== undefined ? { id, event: event || 'message', data: data.join('\n'), retry } : undefined;
      event = '';
      data = [];
      retry = undefined;
      return message;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'id':
        if (!value.includes('\0')) id = value;
        break;
      case 'event':
        event = value;
        break;
      case 'data':
        data.push(value);
        break;
      case 'retry':
        if (/^\d+$/.test(value)) retry = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    for (const line of takeLines(false)) {
      const message = lineToMessage(line);
      if (message) yield message;
    }
  }
  buffer += decoder.decode();
  for (const line of takeLines(true)) {
    const message = lineToMessage(line);
    if (message) yield message;
  }
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
export async function* followEvents(client: ApiClient, options: FollowOptions): AsyncGenerator<UpshiftEvent> {
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
        if (message.event === 'reload') {
          // Too far behind for the server to catch this client up: go on from now, and say so.
          if (message.id !== undefined) lastEventId = message.id;
          options.onStatus?.(
            'reconnecting',
            'this client fell too far behind the server; events in between were skipped (list them with `upshift events`)',
          );
          continue;
        }
        // Shown as the API's other answers are: control characters escaped (see http.ts).
        const event = escapeControlsDeep(JSON.parse(message.data) as UpshiftEvent);
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
