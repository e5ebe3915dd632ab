import type { EventView } from '@upshift/api';
import { RELOAD_EVENT, SseParser } from '@upshift/api/sse';

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

export interface StreamOptions {
  url?: string;
  onUnauthorized?: () => void;
}

/**
 * The live event stream (`GET /api/v1/stream`), authenticated by the session cookie. It
 * is read with fetch (EventSource cannot tell a 401 from a drop) and parsed by the API's
 * one event-stream parser (src/api/sse.ts); after a drop it reconnects with `Last-Event-ID` and the server replays what was missed. Listeners get every event;
 * `onReconnect` listeners are told when the stream is back after a gap, so that views
 * re-fetch what they show.
 */
export class EventStream {
  private readonly listeners = new Set<(event: EventView) => void>();
  private readonly statusListeners = new Set<(status: StreamStatus) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private controller: AbortController | null = null;
  private lastEventId: string | undefined;
  private retryMs = 2000;
  private everConnected = false;
  status: StreamStatus = 'stopped';

  constructor(private readonly options: StreamOptions) {}

  subscribe(listener: (event: EventView) => void): () => void {
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
        for (const message of parser.push(decoder.decode(value, { stream: true }))) {
          if (message.retry !== undefined) this.retryMs = message.retry;
          if (message.id !== undefined) this.lastEventId = message.id;
          // The server let this client go (too far behind): it resumes from the id given
          // with `reload`, and the reconnect listeners re-fetch what the views show.
          if (message.event === RELOAD_EVENT || message.data === '') continue;
          let event: EventView;
          try {
            event = JSON.parse(message.data) as EventView;
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
