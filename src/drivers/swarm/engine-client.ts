import http from 'node:http';
import https from 'node:https';

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

/** An Engine API error answer (4xx/5xx) with the engine's own message. */
export class EngineApiError extends Error {
  constructor(
    readonly status: number,
    readonly endpoint: string,
    message: string,
  ) {
    super(message);
    this.name = 'EngineApiError';
  }
}

/**
 * A swarm manager's Engine API over Node's own http/https: a unix socket, or TCP with
 * TLS client certificates. Several endpoints are tried in order, the one that answered
 * last first, so that the swarm stays reachable while one manager's engine restarts.
 * A connection failure or a 5xx (a manager without quorum, or still starting) moves on
 * to the next endpoint; a 4xx is the swarm's answer and is returned as is.
 */
export class EngineClient {
  private preferred = 0;

  constructor(
    private readonly endpoints: readonly string[],
    private readonly tls: EngineTls | undefined,
    private readonly timeoutMs = 15_000,
  ) {}

  private once(endpoint: string, method: string, path: string, body: unknown, signal: AbortSignal | undefined): Promise<EngineAnswer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = payload
      ? { 'content-type': 'application/json', 'content-length': payload.length }
      : {};
    const fullPath = `/${ENGINE_API_VERSION}${path}`;
    return new Promise((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      };
      let req: http.ClientRequest;
      if (endpoint.startsWith('unix://')) {
        req = http.request(
          { socketPath: endpoint.slice('unix://'.length), method, path: fullPath, headers, timeout: this.timeoutMs },
          onResponse,
        );
      } else {
        const url = new URL(endpoint.replace(/^tcp:/, 'https:'));
        if (!this.tls) {
          reject(new Error(`${endpoint} needs the TLS client key: the cluster has no ${'tlsKey'} secret`));
          return;
        }
        req = https.request(
          {
            host: url.hostname.replace(/^\[|\]$/g, ''),
            port: Number(url.port),
            method,
            path: fullPath,
            headers,
            timeout: this.timeoutMs,
            ca: this.tls.ca,
            cert: this.tls.cert,
            key: this.tls.key,
          },
          onResponse,
        );
      }
      const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} on ${endpoint} timed out after ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Sends one request to the first endpoint that answers; throws EngineApiError for a 4xx/5xx answer. */
  async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<string> {
    const failures: string[] = [];
    let lastAnswer: { endpoint: string; answer: EngineAnswer } | undefined;
    for (let i = 0; i < this.endpoints.length; i++) {
      const index = (this.preferred + i) % this.endpoints.length;
      const endpoint = this.endpoints[index] as string;
      let answer: EngineAnswer;
      try {
        answer = await this.once(endpoint, method, path, body, signal);
      } catch (error) {
        if (signal?.aborted) throw error;
        failures.push(`${endpoint}: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      if (answer.status >= 500 && i < this.endpoints.length - 1) {
        failures.push(`${endpoint}: ${answer.status} ${engineMessage(answer.body)}`);
        lastAnswer = { endpoint, answer };
        continue;
      }
      this.preferred = index;
      if (answer.status < 200 || answer.status >= 300) {
        throw new EngineApiError(
          answer.status,
          endpoint,
          `${method} ${path} on ${endpoint}: ${answer.status} ${engineMessage(answer.body)}`,
        );
      }
      return answer.body;
    }
    if (lastAnswer) {
      throw new EngineApiError(
        lastAnswer.answer.status,
        lastAnswer.endpoint,
        `no manager answered ${method} ${path}: ${failures.join('; ')}`,
      );
    }
    throw new Error(`no manager answered ${method} ${path}: ${failures.join('; ')}`);
  }

  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const text = await this.request(method, path, body, signal);
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

function engineMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 300);
}
