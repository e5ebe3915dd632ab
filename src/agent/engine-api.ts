import http from 'node:http';

/** One Engine API answer. */
export interface EngineResponse {
  status: number;
  body: string;
}

/**
 * The Docker Engine API over its unix socket, with Node's own http client: the agent
 * needs `/_ping`, `/version` and the container list, nothing a client library would add.
 */
export class EngineApi {
  constructor(readonly socketPath: string) {}

  request(method: string, path: string, timeoutMs = 10_000): Promise<EngineResponse> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, method, path, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`Engine API ${method} ${path} timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  async json<T>(path: string, timeoutMs?: number): Promise<T> {
    const r = await this.request('GET', path, timeoutMs);
    if (r.status < 200 || r.status >= 300) throw new Error(`Engine API GET ${path} answered ${r.status}: ${r.body.trim().slice(0, 300)}`);
    return JSON.parse(r.body) as T;
  }

  /** True when `/_ping` answers OK. */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    try {
      const r = await this.request('GET', '/_ping', timeoutMs);
      return r.status === 200 && r.body.trim() === 'OK';
    } catch {
      return false;
    }
  }

  /** The engine's `Version` as it reports it (Debian: `26.1.5+dfsg1`). */
  async version(): Promise<string> {
    const v = await this.json<{ Version?: unknown }>('/version');
    if (typeof v.Version !== 'string') throw new Error('the Engine API /version answer has no Version');
    return v.Version;
  }

  async containers(): Promise<ContainerSummary[]> {
    return this.json<ContainerSummary[]>('/containers/json?all=1');
  }

  async inspect(id: string): Promise<ContainerInspect> {
    return this.json<ContainerInspect>(`/containers/${encodeURIComponent(id)}/json`);
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
