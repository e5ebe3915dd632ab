import type { UpshiftEvent } from './types';

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

export interface StreamOptions {
  url?: string;
  onUnauthorized?: () => void;
}

/** One parsed Server-Sent Events message. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Parses a text/event-stream incrementally (the WHATWG rules: fields `id`, `event`,
 * `data`, `retry`; comments start with `:`; a blank line dispatches). `push` takes any
 * chunk of text and returns the messages it completed.
 */
export class SseParser {
  private buffer = '';
  private id: string | undefined;
  private event = '';
  private data: string[] = [];
  private retry: number | undefined;

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (this.data.length > 0) out.push({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
        this.event = '';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      switch (field) {
        case 'id':
          if (!value.includes('\0')) this.id = value;
          break;
        case 'event':
          this.event = value;
          break;
        case 'data':
          this.data.push(value);
          break;
        case 'retry':
          if (/^\d+$/.test(value)) this.retry = Number(value);
          break;
        default:
          break;
      }
    }
    return out;
  }

  /** The reconnection delay the server announced since the last call (`retry: 2000`), if any. */
  takeRetry(): number | undefined {
    const retry = this.retry;
    this.retry = undefined;
    return retry;
  }
}

/**
 * The live event stream (`GET /api/v1/stream`), authenticated by the session cookie. It
 * is read with fetch and parsed here (EventSource cannot tell a 401 from a drop); after a
 * drop it reconnects with `Last-Event-ID` and the server replays what was missed. Listeners get every event;
 * `onReconnect` listeners are told when the stream is back after a gap, so that views
 * re-fetch what they show.
 */
export class EventStream {
  private readonly listeners = new Set<(event: UpshiftEvent) => void>();
  private readonly statusListeners = new Set<(status: StreamStatus) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private controller: AbortController | null = null;
  private lastEventId: string | undefined;
  private retryMs = 2000;
  private everConnected = false;
  status: StreamStatus = 'stopped';

  constructor(private readonly options: StreamOptions) {}

  subscribe(listener: (event: UpshiftEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatus(listener: (status: StreamStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  start(): void {
    if (this.controller) return;
    this.controller = new AbortController();
    void this.run(this.controller.signal);
  }

  stop(): void {
    this.controller?.abort();
    this.controller = null;
    this.setStatus('stopped');
  }

  private setStatus(status: StreamStatus): void {
    if (this.status === status) return;
    this.status = status;
    for (const listener of this.statusListeners) listener(status);
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.setStatus(this.everConnected ? 'reconnecting' : 'connecting');
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (this.lastEventId) headers['last-event-id'] = this.lastEventId;
        // The session cookie goes with it (same origin): no header to send.
        const res = await fetch(this.options.url ?? '/api/v1/stream', { headers, signal, cache: 'no-store', credentials: 'same-origin' });
        if (res.status === 401) {
          this.options.onUnauthorized?.();
          return;
        }
        if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
        const reconnected = this.everConnected;
        this.everConnected = true;
        this.setStatus('live');
        if (reconnected) for (const listener of this.reconnectListeners) listener();
        await this.read(res.body, signal);
      } catch {
        if (signal.aborted) return;
      }
      if (signal.aborted) return;
      this.setStatus('reconnecting');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.retryMs);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private async read(body: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    const abort = () => void reader.cancel().catch(() => {});
    signal.addEventListener('abort', abort);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const messages = parser.push(decoder.decode(value, { stream: true }));
        const retry = parser.takeRetry();
        if (retry !== undefined) this.retryMs = retry;
        for (const message of messages) {
          if (message.id !== undefined) this.lastEventId = message.id;
          // The server let this client go (too far behind): it resumes from the id given
          // with `reload`, and the reconnect listeners re-fetch what the views show.
          if (message.event === 'reload') continue;
          let event: UpshiftEvent;
          try {
            event = JSON.parse(message.data) as UpshiftEvent;
          } catch {
            continue;
          }
          for (const listener of this.listeners) listener(event);
        }
      }
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }
}
