import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
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
 * membership is locked by a running upgrade (409 UPGRADE_IN_PROGRESS).
 */
export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryable: boolean,
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

/** The agent's side of domain/agent-protocol.ts over HTTP (Node's fetch). */
export class ServerClient {
  private credential: string | undefined;

  constructor(readonly baseUrl: string) {}

  setCredential(credential: string | undefined): void {
    this.credential = credential;
  }

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json' };
    if (json) h['content-type'] = 'application/json';
    if (this.credential) h['authorization'] = `Bearer ${this.credential}`;
    return h;
  }

  private async call<T>(method: string, path: string, body: unknown, signal?: AbortSignal, timeoutMs = 30_000): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: this.headers(body !== undefined),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: combined,
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new ServerError(
        0,
        'UNREACHABLE',
        `${method} ${this.baseUrl}${path}: ${cause?.code ?? cause?.message ?? (e as Error).message}`,
        true,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let code = `HTTP_${res.status}`;
      let message = text.slice(0, 500);
      try {
        const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
        if (parsed.error?.code) code = parsed.error.code;
        if (parsed.error?.message) message = parsed.error.message;
      } catch {
        // not JSON: keep the raw text
      }
      throw new ServerError(res.status, code, `${method} ${path}: ${res.status} ${code}: ${message}`, retryableStatus(res.status, code));
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  join(request: JoinRequest, signal?: AbortSignal): Promise<JoinResponse> {
    return this.call('POST', '/api/v1/agent/join', request, signal);
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
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, { headers: this.headers(false), ...(signal ? { signal } : {}) });
    } catch (e) {
      throw new ServerError(0, 'UNREACHABLE', `GET ${path}: ${(e as Error).message}`, true);
    }
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      throw new ServerError(
        res.status,
        `HTTP_${res.status}`,
        `GET ${path}: ${res.status} ${text.slice(0, 300)}`,
        retryableStatus(res.status, ''),
      );
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
      await pipeline(
        Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>),
        counter,
        createWriteStream(dest, { mode: 0o600 }),
      );
    } catch (e) {
      await rm(dest, { force: true });
      throw e;
    }
    return { sha256: hash.digest('hex'), size, announcedSha256: res.headers.get('x-upshift-sha256') ?? undefined };
  }
}

/** Exponential backoff with jitter: 1 s, 2 s, 4 s, … capped at `maxMs`. */
export function backoffMs(attempt: number, maxMs = 30_000): number {
  const base = Math.min(maxMs, 1000 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.75 + Math.random() * 0.5));
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
