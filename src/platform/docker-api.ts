import http, { STATUS_CODES } from 'node:http';
import https from 'node:https';
import { GuardedHttpsAgent, boundedLine, connectFailureReason } from './target-guard.js';

/**
 * The one client of Docker's Engine API, over Node's own http/https: the agent asks its
 * host's engine (`/_ping`, `/version`, the containers) through the unix socket; the swarm
 * driver asks a swarm's managers through a unix socket or TCP with TLS client certificates.
 * Nothing a client library would add is needed, and this way every connection to a TCP
 * endpoint goes through a `GuardedHttpsAgent` (no link-local or metadata address, unless
 * allowed) and every answer is bounded in size.
 */

/** One Engine API answer. */
export interface DockerAnswer {
  status: number;
  body: string;
}

/** TLS client material for `tcp://` endpoints. */
export interface DockerTls {
  ca: string;
  cert: string;
  key: string;
}

export interface DockerApiOptions {
  /** `unix:///run/docker.sock` or `tcp://host:2376` (TLS), tried in order. */
  endpoints: readonly string[];
  /** Client certificates for `tcp://` endpoints; without them a TCP endpoint is refused. */
  tls?: DockerTls | undefined;
  /** Lets `tcp://` endpoints resolve to link-local or metadata addresses (`--allow-link-local-targets`). Default false. */
  allowLinkLocal?: boolean;
  /** A pinned API version as a path prefix (`v1.41`); absent, the engine's own current version answers. */
  apiVersion?: string;
  /** Per request, unless a call gives its own. Default 15 s. */
  timeoutMs?: number;
  /** Checked before every request: a reason, in the caller's words, refuses the endpoint. */
  refuseEndpoint?: (endpoint: string) => string | undefined;
  /** Advice added to an error status in `DockerApiError.shortReason` (e.g. what a 503 means for a swarm). */
  statusHint?: (status: number) => string;
  /** What an endpoint is, for messages: "no manager answered …". Default "Docker Engine". */
  endpointNoun?: string;
}

export interface DockerRequestOptions {
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortSignal | undefined;
  timeoutMs?: number;
}

/** An answer larger than this is not an Engine API answer Upshift needs; the request is cut off. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/**
 * An Engine API error answer (4xx/5xx). `message` carries the engine's own error text
 * (the `message` of its JSON answer, nothing else) for task logs; `shortReason` is the
 * status and Upshift's words only, for where anyone with read access sees it.
 */
export class DockerApiError extends Error {
  readonly shortReason: string;

  constructor(
    readonly status: number,
    readonly endpoint: string,
    method: string,
    path: string,
    engineMessage: string | undefined,
    context: { detail: string; short: string } | { hint: string },
  ) {
    const statusLine = `${status}${STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : ''}`;
    super(
      'detail' in context ? context.detail : `${method} ${path} on ${endpoint}: ${statusLine}${engineMessage ? `: ${engineMessage}` : ''}`,
    );
    this.name = 'DockerApiError';
    this.shortReason =
      'short' in context
        ? context.short
        : `the Docker Engine API at ${endpoint} answered ${statusLine} to ${method} ${path}${context.hint}`;
  }
}

/** No endpoint could be asked, or none answered usably; the message is Upshift's own words. */
export class DockerUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DockerUnreachableError';
  }
}

/** A failure whose message Upshift wrote (a timeout, a refused endpoint, an oversized answer). */
class DockerRequestError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'DockerRequestError';
  }
}

/** Why one endpoint could not be asked, in Upshift's words. */
function failureOf(error: unknown, endpoint: string): string {
  if (error instanceof DockerRequestError && error.code === undefined) return error.message;
  return connectFailureReason(error, endpoint) ?? `the request to ${endpoint} failed`;
}

/** The engine's own error text: the `message` of a JSON answer, on one bounded line; nothing from any other body. */
function engineMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return boundedLine(parsed.message);
  } catch {
    // not JSON: not an Engine API error answer, so nothing of it is shown
  }
  return undefined;
}

/**
 * Several endpoints are tried in order, the one that answered last first, so that a swarm
 * stays reachable while one manager's engine restarts. A connection failure or a 5xx (a
 * manager without quorum, or still starting) moves on to the next endpoint; a 4xx is the
 * engine's answer and is thrown as is.
 */
export class DockerApi {
  private preferred = 0;
  private readonly agent: https.Agent | undefined;
  private readonly endpoints: readonly string[];
  private readonly timeoutMs: number;
  private readonly noun: string;

  constructor(private readonly options: DockerApiOptions) {
    this.endpoints = options.endpoints;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.noun = options.endpointNoun ?? 'Docker Engine';
    const tls = options.tls;
    this.agent = tls
      ? new GuardedHttpsAgent({ allowLinkLocal: options.allowLinkLocal ?? false, ca: tls.ca, cert: tls.cert, key: tls.key })
      : undefined;
  }

  /** The local engine behind a unix socket: what the agent talks to. */
  static socket(socketPath: string, options: Omit<DockerApiOptions, 'endpoints'> = {}): DockerApi {
    return new DockerApi({ ...options, endpoints: [`unix://${socketPath}`] });
  }

  private once(endpoint: string, method: string, path: string, request: DockerRequestOptions): Promise<DockerAnswer> {
    const { body, signal } = request;
    const timeout = request.timeoutMs ?? this.timeoutMs;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = payload
      ? { 'content-type': 'application/json', 'content-length': payload.length }
      : {};
    const fullPath = this.options.apiVersion ? `/${this.options.apiVersion}${path}` : path;
    return new Promise((resolve, reject) => {
      const refusal = this.options.refuseEndpoint?.(endpoint);
      if (refusal !== undefined) {
        reject(new DockerRequestError(refusal));
        return;
      }
      const onResponse = (res: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy(
              new DockerRequestError(`${endpoint} answered more than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB to ${method} ${path}`),
            );
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      };
      let req: http.ClientRequest;
      if (endpoint.startsWith('unix://')) {
        const socketPath = endpoint.slice('unix://'.length);
        req = http.request({ socketPath, method, path: fullPath, headers, timeout }, onResponse);
      } else if (endpoint.startsWith('tcp://')) {
        if (!this.agent) {
          reject(new DockerRequestError(`${endpoint} needs TLS client certificates`));
          return;
        }
        const url = new URL(endpoint.replace(/^tcp:/, 'https:'));
        req = https.request(
          {
            agent: this.agent,
            host: url.hostname.replace(/^\[|\]$/g, ''),
            port: Number(url.port),
            method,
            path: fullPath,
            headers,
            timeout,
          },
          onResponse,
        );
      } else {
        reject(new DockerRequestError(`${endpoint} is neither unix:// nor tcp://`));
        return;
      }
      const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('timeout', () => req.destroy(new DockerRequestError(`${method} ${path} on ${endpoint} timed out`, 'ETIMEDOUT')));
      req.on('error', reject);
      req.end(payload);
    });
  }

  private async answer(method: string, path: string, request: DockerRequestOptions): Promise<{ endpoint: string; body: string }> {
    const failures: string[] = [];
    let last: DockerApiError | undefined;
    for (let i = 0; i < this.endpoints.length; i++) {
      const index = (this.preferred + i) % this.endpoints.length;
      const endpoint = this.endpoints[index] as string;
      let answer: DockerAnswer;
      try {
        answer = await this.once(endpoint, method, path, request);
      } catch (error) {
        if (request.signal?.aborted) throw error;
        failures.push(failureOf(error, endpoint));
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) {
        this.preferred = index;
        return { endpoint, body: answer.body };
      }
      const error = new DockerApiError(answer.status, endpoint, method, path, engineMessage(answer.body), {
        hint: this.options.statusHint?.(answer.status) ?? '',
      });
      if (answer.status >= 500 && i < this.endpoints.length - 1) {
        failures.push(error.shortReason);
        last = error;
        continue;
      }
      this.preferred = index;
      throw error;
    }
    const summary = `no ${this.noun} answered ${method} ${path}: ${failures.join('; ')}`;
    if (last) throw new DockerApiError(last.status, last.endpoint, method, path, undefined, { detail: summary, short: summary });
    throw new DockerUnreachableError(summary);
  }

  /** Sends one request to the first endpoint that answers; throws DockerApiError for a 4xx/5xx answer. */
  async request(method: string, path: string, request: DockerRequestOptions = {}): Promise<string> {
    return (await this.answer(method, path, request)).body;
  }

  async json<T>(method: string, path: string, request: DockerRequestOptions = {}): Promise<T> {
    const { endpoint, body: text } = await this.answer(method, path, request);
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      // JSON.parse's message quotes the answer; this one does not.
      throw new DockerUnreachableError(
        `${endpoint} answered ${method} ${path} with something that is not JSON: is it a Docker Engine API?`,
      );
    }
  }

  /** True when `/_ping` answers OK. */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    try {
      return (await this.request('GET', '/_ping', { timeoutMs })).trim() === 'OK';
    } catch {
      return false;
    }
  }

  /** The engine's `Version` as it reports it (Debian: `26.1.5+dfsg1`). */
  async version(timeoutMs?: number): Promise<string> {
    const v = await this.json<{ Version?: unknown } | undefined>('GET', '/version', timeoutMs === undefined ? {} : { timeoutMs });
    if (typeof v?.Version !== 'string') throw new DockerUnreachableError('the Engine API /version answer has no Version');
    return v.Version;
  }

  /** Every container, running or not. */
  async containers(): Promise<ContainerSummary[]> {
    return this.json<ContainerSummary[]>('GET', '/containers/json?all=1');
  }

  async inspect(id: string): Promise<ContainerInspect> {
    return this.json<ContainerInspect>('GET', `/containers/${encodeURIComponent(id)}/json`);
  }
}

export interface ContainerSummary {
  Id: string;
  Names?: string[];
  Image?: string;
  State?: string;
  Status?: string;
}

export interface ContainerInspect {
  Id: string;
  Name?: string;
  State?: { Running?: boolean; Status?: string; StartedAt?: string };
  HostConfig?: { RestartPolicy?: { Name?: string; MaximumRetryCount?: number } };
}
