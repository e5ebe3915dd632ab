import http, { STATUS_CODES } from 'node:http';
import https from 'node:https';
import { GuardedHttpsAgent, boundedLine, connectFailureReason } from '../target-guard.js';
import type { SwarmTargetPolicy } from './config.js';

/** One Engine API answer. */
export interface EngineAnswer {
  status: number;
  body: string;
}

/** TLS client material for `tcp://` endpoints. */
export interface EngineTls {
  ca: string;
  cert: string;
  key: string;
}

/** The API version both engines of a 20.10 → 26.x upgrade speak (20.10 tops out at 1.41). */
export const ENGINE_API_VERSION = 'v1.41';

/** An answer larger than this is not an Engine API answer Upshift needs; the request is cut off. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** What to do about an HTTP status, in Upshift's words. */
function statusHint(status: number): string {
  if (status === 401 || status === 403) return ' (the TLS client certificate was refused: check tls.cert and tlsKey)';
  if (status === 503) return ' (the engine is not a swarm manager, or the swarm has lost its quorum)';
  if (status === 404) return ' (is this the Engine API of a swarm manager?)';
  return '';
}

/**
 * An Engine API error answer (4xx/5xx). `message` carries the engine's own error text
 * (the `message` of its JSON answer, nothing else) for task logs; `shortReason` is the
 * status and Upshift's words only, for where anyone with read access sees it.
 */
export class EngineApiError extends Error {
  readonly shortReason: string;

  constructor(
    readonly status: number,
    readonly endpoint: string,
    method: string,
    path: string,
    engineMessage: string | undefined,
    context?: { detail: string; short: string },
  ) {
    const statusLine = `${status}${STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : ''}`;
    super(context ? context.detail : `${method} ${path} on ${endpoint}: ${statusLine}${engineMessage ? `: ${engineMessage}` : ''}`);
    this.name = 'EngineApiError';
    this.shortReason = context
      ? context.short
      : `the Docker Engine API at ${endpoint} answered ${statusLine} to ${method} ${path}${statusHint(status)}`;
  }
}

/** No manager could be asked, or none answered usably; the message is Upshift's own words. */
export class EngineUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineUnreachableError';
  }
}

/** A failure whose message Upshift wrote (a timeout, a refused socket, an oversized answer). */
class EngineRequestError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'EngineRequestError';
  }
}

/** Why one endpoint could not be asked, in Upshift's words. */
function failureOf(error: unknown, endpoint: string): string {
  if (error instanceof EngineRequestError && error.code === undefined) return error.message;
  return connectFailureReason(error, endpoint) ?? `the request to ${endpoint} failed`;
}

/**
 * Why an Engine API call failed, for the cluster's status: a status and Upshift's words,
 * or how the connection failed; never what the endpoint answered.
 */
export function engineFailureReason(error: unknown): string {
  if (error instanceof EngineApiError) return error.shortReason;
  if (error instanceof EngineUnreachableError) return error.message;
  return 'the swarm managers could not be read';
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
 * A swarm manager's Engine API over Node's own http/https: the one unix socket the
 * operator allows, or TCP with TLS client certificates through a `GuardedHttpsAgent`
 * (no link-local or metadata address, unless allowed). Several endpoints are tried in
 * order, the one that answered last first, so that the swarm stays reachable while one
 * manager's engine restarts. A connection failure or a 5xx (a manager without quorum, or
 * still starting) moves on to the next endpoint; a 4xx is the swarm's answer and is
 * returned as is.
 */
export class EngineClient {
  private preferred = 0;
  private readonly agent: https.Agent | undefined;

  constructor(
    private readonly endpoints: readonly string[],
    tls: EngineTls | undefined,
    private readonly policy: SwarmTargetPolicy,
    private readonly timeoutMs = 15_000,
  ) {
    this.agent = tls
      ? new GuardedHttpsAgent({ allowLinkLocal: policy.allowLinkLocalTargets, ca: tls.ca, cert: tls.cert, key: tls.key })
      : undefined;
  }

  private once(endpoint: string, method: string, path: string, body: unknown, signal: AbortSignal | undefined): Promise<EngineAnswer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = payload
      ? { 'content-type': 'application/json', 'content-length': payload.length }
      : {};
    const fullPath = `/${ENGINE_API_VERSION}${path}`;
    return new Promise((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy(
              new EngineRequestError(`${endpoint} answered more than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB to ${method} ${path}`),
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
        // Checked when the cluster was created; checked again here, as the operator may have changed --swarm-socket since.
        if (socketPath !== this.policy.swarmSocket) {
          reject(new EngineRequestError(`${endpoint} is not the Docker socket this server allows (--swarm-socket)`));
          return;
        }
        req = http.request({ socketPath, method, path: fullPath, headers, timeout: this.timeoutMs }, onResponse);
      } else {
        if (!this.agent) {
          reject(new EngineRequestError(`${endpoint} needs the TLS client key: the cluster has no tlsKey secret`));
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
            timeout: this.timeoutMs,
          },
          onResponse,
        );
      }
      const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('timeout', () => req.destroy(new EngineRequestError(`${method} ${path} on ${endpoint} timed out`, 'ETIMEDOUT')));
      req.on('error', reject);
      req.end(payload);
    });
  }

  private async answer(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<{ endpoint: string; body: string }> {
    const failures: string[] = [];
    let last: EngineApiError | undefined;
    for (let i = 0; i < this.endpoints.length; i++) {
      const index = (this.preferred + i) % this.endpoints.length;
      const endpoint = this.endpoints[index] as string;
      let answer: EngineAnswer;
      try {
        answer = await this.once(endpoint, method, path, body, signal);
      } catch (error) {
        if (signal?.aborted) throw error;
        failures.push(failureOf(error, endpoint));
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) {
        this.preferred = index;
        return { endpoint, body: answer.body };
      }
      const error = new EngineApiError(answer.status, endpoint, method, path, engineMessage(answer.body));
      if (answer.status >= 500 && i < this.endpoints.length - 1) {
        failures.push(error.shortReason);
        last = error;
        continue;
      }
      this.preferred = index;
      throw error;
    }
    if (last) {
      throw new EngineApiError(last.status, last.endpoint, method, path, undefined, {
        detail: `no manager answered ${method} ${path}: ${failures.join('; ')}`,
        short: `no manager answered ${method} ${path}: ${failures.join('; ')}`,
      });
    }
    throw new EngineUnreachableError(`no manager answered ${method} ${path}: ${failures.join('; ')}`);
  }

  /** Sends one request to the first endpoint that answers; throws EngineApiError for a 4xx/5xx answer. */
  async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<string> {
    return (await this.answer(method, path, body, signal)).body;
  }

  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const { endpoint, body: text } = await this.answer(method, path, body, signal);
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      // JSON.parse's message quotes the answer; this one does not.
      throw new EngineUnreachableError(
        `${endpoint} answered ${method} ${path} with something that is not JSON: is it a Docker Engine API?`,
      );
    }
  }
}
