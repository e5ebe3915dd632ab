/**
 * One incremental parser of `text/event-stream` (the WHATWG "server-sent events" format),
 * for every client of `GET /stream` (the CLI, the console): fields up to a blank line,
 * `data` lines joined with newlines, comments (`: keep-alive`) ignored, CRLF, LF or CR
 * line ends, in chunks cut anywhere. Text in, messages out: each client reads its
 * connection (and decodes its bytes) its own way.
 */

/**
 * The stream of `GET /stream`: each event as `id`, `event` (its type) and `data` (the
 * event as JSON). A client that reconnects with `Last-Event-ID` first gets what it
 * missed; one too far behind gets a `reload` event (with the current id) and is
 * disconnected: it re-reads what it shows, then follows from that id.
 *
 * This file imports nothing: the clients import it for its values without loading the
 * schemas (and TypeBox) of the rest of the contract.
 */
export const RELOAD_EVENT = 'reload';

/** One message of the stream. */
export interface SseMessage {
  /** The last event id the stream gave, as it stood when this message ended. */
  id: string | undefined;
  /** The event type (`event:`), `message` when none was given. */
  event: string;
  data: string;
  /** The reconnection delay the server asked for in this message, in ms. */
  retry: number | undefined;
}

export class SseParser {
  private buffer = '';
  private id: string | undefined;
  private event = '';
  private data: string[] = [];
  private retry: number | undefined;

  /** Takes the next chunk of text and returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    return this.takeLines(false);
  }

  /** The stream ended: a line end at the very end counts; a message without its blank line does not. */
  end(): SseMessage[] {
    return this.takeLines(true);
  }

  private takeLines(final: boolean): SseMessage[] {
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone CR at the end of a chunk may be the first half of a CRLF: wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1 && !final) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  /**
   * One line. A blank line ends a message: it is dispatched when it carries data or a
   * `retry` (which a client must see even without data); the id persists across
   * messages, as the format says.
   */
  private line(line: string): SseMessage | undefined {
    if (line === '') {
      const message =
        this.data.length > 0 || this.retry !== undefined
          ? { id: this.id, event: this.event || 'message', data: this.data.join('\n'), retry: this.retry }
          : undefined;
      this.event = '';
      this.data = [];
      this.retry = undefined;
      return message;
    }
    if (line.startsWith(':')) return undefined;
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
    return undefined;
  }
}
