import { errorMessage } from '../domain/errors.js';
import { escapeControls, escapeControlsDeep } from '../domain/text.js';
import { ApiError, CliError, ExitCode } from './errors.js';

/** How long one API call may take before the server counts as unreachable. */
const REQUEST_TIMEOUT_MS = 30_000;

export type Query = Record<string, string | number | undefined>;

const multiLine = { tabs: true, newlines: true } as const;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  rawBody?: Uint8Array;
  signal?: AbortSignal;
}

/**
 * The HTTP client of the REST API (`/api/v1`). Every call sends the bearer token; an
 * error response becomes an `ApiError` carrying the server's message, a connection
 * failure a `CliError` with exit code 6.
 *
 * Whatever the server says reaches the operator's terminal through here, so every string
 * of an answer (objects, error messages, the log's text) comes out with its control
 * characters shown as escapes (`\x1b`, `\u202e`; domain/text.ts): a hostile agent's text
 * that the server stored cannot set the terminal's title, clear it or fake colours,
 * whichever command and output format shows it. Only a log, which is multi-line text,
 * keeps its newlines and tabs.
 */
export class ApiClient {
  readonly server: string;
  private readonly token: string | undefined;

  constructor(server: string, token: string | undefined) {
    this.server = server.replace(/\/+$/, '');
    this.token = token;
  }

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  url(path: string, query: Query = {}): string {
    const url = new URL(`${this.server}/api/v1${path}`);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== '') url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    return headers;
  }

  async get<T>(path: string, query?: Query): Promise<T> {
    return (await this.call('GET', path, query === undefined ? {} : { query })) as T;
  }

  async post<T>(path: string, body: unknown = {}): Promise<T> {
    return (await this.call('POST', path, { body })) as T;
  }

  async patch<T>(path: string, body: unknown): Promise<T> {
    return (await this.call('PATCH', path, { body })) as T;
  }

  /** Uploads bytes (an artifact) with PUT as application/octet-stream; no timeout, files can be large. */
  async put<T>(path: string, bytes: Uint8Array, query: Query = {}): Promise<T> {
    const response = await this.send('PUT', path, { query, rawBody: bytes }, {}, false);
    const text = await response.text();
    return (text ? escapeControlsDeep(JSON.parse(text) as unknown) : undefined) as T;
  }

  async delete(path: string): Promise<void> {
    await this.call('DELETE', path, {});
  }

  /** A text resource (a node task's log), as it arrives; newlines and tabs kept, other control characters escaped. */
  async *text(path: string): AsyncGenerator<string> {
    const response = await this.send('GET', path, {}, { accept: 'text/plain, application/json' });
    if (!response.body) return;
    const decoder = new TextDecoder();
    for await (const chunk of response.body) {
      const text = decoder.decode(chunk as Uint8Array, { stream: true });
      if (text) yield escapeControls(text, multiLine);
    }
    const rest = decoder.decode();
    if (rest) yield escapeControls(rest, multiLine);
  }

  /** Opens a long-lived response (the SSE stream); the caller reads and closes the body. */
  async open(path: string, query: Query, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    return this.send('GET', path, { query, signal }, headers, false);
  }

  private async call(method: string, path: string, options: RequestOptions): Promise<unknown> {
    const response = await this.send(method, path, options);
    if (response.status === 204) return undefined;
    const text = await response.text();
    if (text === '') return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      throw new CliError(
        ExitCode.apiError,
        `the server at ${this.server} answered ${method} ${path} with something that is not JSON: ${escapeControls(text.slice(0, 200))}`,
      );
    }
    return escapeControlsDeep(parsed);
  }

  private async send(
    method: string,
    path: string,
    options: RequestOptions,
    extraHeaders: Record<string, string> = {},
    timeout = true,
  ): Promise<Response> {
    const headers = this.headers(extraHeaders);
    let body: string | Uint8Array | undefined;
    if (options.rawBody !== undefined) {
      body = options.rawBody;
      headers['content-type'] = 'application/octet-stream';
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    const signals: AbortSignal[] = [];
    if (timeout) signals.push(AbortSignal.timeout(REQUEST_TIMEOUT_MS));
    if (options.signal) signals.push(options.signal);
    let response: Response;
    try {
      response = await fetch(this.url(path, options.query), {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(signals.length > 0 ? { signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) } : {}),
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw this.unreachable(error);
    }
    if (!response.ok) throw await this.apiError(response);
    return response;
  }

  /** A failed connection, DNS lookup or timeout: exit 6, with the low-level cause. */
  unreachable(error: unknown): CliError {
    const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    const detail = timedOut ? `no answer within ${REQUEST_TIMEOUT_MS / 1000}s` : errorMessage(cause);
    return new CliError(ExitCode.unreachable, `cannot reach the Upshift server at ${this.server}: ${detail}`, {
      hint: 'start it with `upshift server`, or point the CLI at it with --server, UPSHIFT_SERVER or a context (`upshift config set-context`)',
      cause: error,
    });
  }

  private async apiError(response: Response): Promise<ApiError> {
    const text = await response.text().catch(() => '');
    let code = `HTTP_${response.status}`;
    let message = `${response.status} ${escapeControls(response.statusText)}${text ? `: ${escapeControls(text.slice(0, 200))}` : ''}`;
    let details: Record<string, unknown> | undefined;
    try {
      const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
      if (parsed.error && typeof parsed.error.message === 'string') {
        message = escapeControls(parsed.error.message);
        if (typeof parsed.error.code === 'string') code = escapeControls(parsed.error.code);
        if (parsed.error.details && typeof parsed.error.details === 'object')
          details = escapeControlsDeep(parsed.error.details as Record<string, unknown>);
      }
    } catch {
      // Not the API's envelope (a proxy's page): the status line and the start of the body say enough.
    }
    let hint: string | undefined;
    if (response.status === 401 && this.token === undefined) {
      hint =
        'no token is configured: pass --token, set UPSHIFT_TOKEN, or save one with `upshift config set-context NAME --server URL --token TOKEN`';
    }
    return new ApiError(response.status, code, message, details, hint);
  }
}
