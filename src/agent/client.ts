import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type {
  AgentTask,
  HeartbeatRequest,
  HeartbeatResponse,
  JoinRequest,
  JoinResponse,
  TaskResultRequest,
} from '../domain/agent-protocol.js';

/**
 * A refusal or failure from the server. `retryable` is true for what time may cure: the
 * server unreachable or restarting (network errors, 5xx, 429) and a cluster whose
 * membership is locked by a running upgrade (409 UPGRADE_IN_PROGRESS). `details` are the
 * machine-readable facts of the server's error envelope (`error.details`);
 * `retryAfterSeconds` its Retry-After header (in seconds), when it sent one.
 */
export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly details: Record<string, unknown> = {},
    readonly retryAfterSeconds: number | undefined = undefined,
  ) {
    super(message);
    this.name = 'ServerError';
  }
}

function retryableStatus(status: number, code: string): boolean {
  return status === 0 || status >= 500 || status === 429 || (status === 409 && code === 'UPGRADE_IN_PROGRESS');
}

export interface DownloadResult {
  sha256: string;
  size: number;
  /** The server's `x-upshift-sha256` header, when it sent one. */
  announcedSha256: string | undefined;
}

export interface ServerClientOptions {
  /**
   * PEM of the CA that signed the server's certificate (`--ca-file`). When set, it is the
   * only CA trusted for the server: a certificate from any other CA, public ones
   * included, is refused. Without it the system's CAs (and NODE_EXTRA_CA_CERTS) apply.
   */
  ca?: Buffer;
}

/** How long a join waits for its answer. */
export const JOIN_TIMEOUT_MS = 60_000;

/** A Retry-After header in seconds (the delay form; a date is not used by Upshift's server); undefined when absent or not a number. */
function retryAfterSeconds(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,5}$/.test(header.trim())) return undefined;
  return Number(header.trim());
}

/** Why a request never got an answer, in a few words (the error code when Node gives one). */
function transportReason(e: unknown): string {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return err.code ?? err.cause?.code ?? err.message ?? String(e);
}

/** The agent's side of domain/agent-protocol.ts over HTTP(S) (node:http, so that a pinned CA applies to every call). */
export class ServerClient {
  private credential: string | undefined;
  /**
   * When the server last heard this agent for certain (ms since the epoch): when a request
   * that it answered with success was sent, or a task poll's answer arrived (an open poll
   * is heard until its answer).
   */
  heardAt = 0;

  constructor(
    readonly baseUrl: string,
    private readonly options: ServerClientOptions = {},
  ) {}

  setCredential(credential: string | undefined): void {
    this.credential = credential;
  }

  /** The node credential in use: what apt sends, as a basic-auth password, to the mirror's apt repository. */
  currentCredential(): string | undefined {
    return this.credential;
  }

  /** The pinned CA (`--ca-file`), if any: what apt must trust for the server too. */
  pinnedCa(): Buffer | undefined {
    return this.options.ca;
  }

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json' };
    if (json) h['content-type'] = 'application/json';
    if (this.credential) h['authorization'] = `Bearer ${this.credential}`;
    return h;
  }

  /** One exchange; resolves with the response once its headers arrived (the body is the caller's to read). */
  private send(method: string, path: string, body: string | undefined, signal: AbortSignal): Promise<http.IncomingMessage> {
    const url = new URL(`${this.baseUrl}${path}`);
    const secure = url.protocol === 'https:';
    const headers = this.headers(body !== undefined);
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    return new Promise((resolve, reject) => {
      const request = (secure ? https : http).request(
        url,
        { method, headers, signal, ...(secure && this.options.ca ? { ca: this.options.ca } : {}) },
        resolve,
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  private async call<T>(
    method: string,
    path: string,
    body: unknown,
    signal?: AbortSignal,
    timeoutMs = 30_000,
    heard: 'sent' | 'answered' = 'sent',
  ): Promise<T> {
    const sentAt = Date.now();
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let status: number;
    let text: string;
    let retryAfter: string | undefined;
    try {
      const res = await this.send(method, path, body === undefined ? undefined : JSON.stringify(body), combined);
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      status = res.statusCode ?? 0;
      text = Buffer.concat(chunks).toString('utf8');
      retryAfter = res.headers['retry-after'];
    } catch (e) {
      if (signal?.aborted) throw e;
      const why = timeout.aborted ? `timed out: no answer within ${Math.round(timeoutMs / 1000)} s` : transportReason(e);
      throw new ServerError(0, 'UNREACHABLE', `${method} ${this.baseUrl}${path}: ${why}`, true);
    }
    if (status < 200 || status >= 300) {
      let code = `HTTP_${status}`;
      let message = text.slice(0, 500);
      let details: Record<string, unknown> = {};
      try {
        const parsed = JSON.parse(text) as { error?: { code?: string; message?: string; details?: unknown } };
        if (parsed.error?.code) code = parsed.error.code;
        if (parsed.error?.message) message = parsed.error.message;
        if (typeof parsed.error?.details === 'object' && parsed.error.details !== null) {
          details = parsed.error.details as Record<string, unknown>;
        }
      } catch {
        // not JSON: keep the raw text
      }
      throw new ServerError(
        status,
        code,
        `${method} ${path}: ${status} ${code}: ${message}`,
        retryableStatus(status, code),
        details,
        retryAfterSeconds(retryAfter),
      );
    }
    this.heardAt = Math.max(this.heardAt, heard === 'sent' ? sentAt : Date.now());
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /**
   * A join waits up to 60 s for its answer: in a join storm the server may take long, and
   * an answer given up on costs a retry (which the join secret makes safe; docs/design.md §9).
   */
  join(request: JoinRequest, signal?: AbortSignal): Promise<JoinResponse> {
    return this.call('POST', '/api/v1/agent/join', request, signal, JOIN_TIMEOUT_MS);
  }

  heartbeat(request: HeartbeatRequest, signal?: AbortSignal): Promise<HeartbeatResponse> {
    return this.call('POST', '/api/v1/agent/heartbeat', request, signal);
  }

  async poll(waitSeconds: number, signal?: AbortSignal): Promise<AgentTask[]> {
    const r = await this.call<{ tasks?: unknown }>(
      'GET',
      `/api/v1/agent/tasks?waitSeconds=${waitSeconds}`,
      undefined,
      signal,
      (waitSeconds + 30) * 1000,
      'answered',
    );
    return Array.isArray(r?.tasks) ? (r.tasks as AgentTask[]) : [];
  }

  async log(taskKey: string, lines: string[], signal?: AbortSignal): Promise<void> {
    await this.call('POST', `/api/v1/agent/tasks/${encodeURIComponent(taskKey)}/log`, { lines }, signal);
  }

  async result(taskKey: string, result: TaskResultRequest, signal?: AbortSignal): Promise<void> {
    await this.call('POST', `/api/v1/agent/tasks/${encodeURIComponent(taskKey)}/result`, result, signal);
  }

  /** Streams `path` into `dest`, hashing on the way; removes `dest` when anything fails. */
  async download(path: string, dest: string, signal?: AbortSignal): Promise<DownloadResult> {
    let res: http.IncomingMessage;
    try {
      res = await this.send('GET', path, undefined, signal ?? new AbortController().signal);
    } catch (e) {
      throw new ServerError(0, 'UNREACHABLE', `GET ${path}: ${transportReason(e)}`, true);
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const chunks: Buffer[] = [];
      try {
        for await (const chunk of res) chunks.push(chunk as Buffer);
      } catch {
        // the body is only for the message
      }
      const text = Buffer.concat(chunks).toString('utf8');
      throw new ServerError(status, `HTTP_${status}`, `GET ${path}: ${status} ${text.slice(0, 300)}`, retryableStatus(status, ''));
    }
    const hash = createHash('sha256');
    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(res, counter, createWriteStream(dest, { mode: 0o600 }));
    } catch (e) {
      await rm(dest, { force: true });
      throw e;
    }
    const announced = res.headers['x-upshift-sha256'];
    return { sha256: hash.digest('hex'), size, announcedSha256: typeof announced === 'string' ? announced : undefined };
  }
}

/** Exponential backoff with jitter: 1 s, 2 s, 4 s, … capped at `maxMs`. */
export function backoffMs(attempt: number, maxMs = 30_000): number {
  const base = Math.min(maxMs, 1000 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** A server's Retry-After, with jitter: between the seconds it asked for and twice that. */
export function retryAfterMs(seconds: number): number {
  return Math.round(seconds * 1000 * (1 + Math.random()));
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
