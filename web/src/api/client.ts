import type {
  ClusterPatchBody,
  ClusterCatalogView,
  ClusterCreatedView,
  ClusterList,
  ClusterView,
  CreatedTokenView,
  CurrentSessionView,
  DeliveryList,
  EventPage,
  FailedPodList,
  GateTestBody,
  GateTestView,
  NodeTaskPage,
  NodePage,
  PlanView,
  Role,
  SignInView,
  TokenList,
  UpgradeBody,
  UpgradeCommandName,
  UpgradeList,
  UpgradeView,
  WebhookBody,
  WebhookList,
  WebhookView,
} from '@upshift/api';

/** A refusal or failure as the API reports it: `{"error":{"code","message"}}`, or a network failure (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Where a page starts (`null`: the first) and how many rows it holds at most (1 to 5,000). */
export interface PageRequest {
  cursor: string | null;
  limit: number;
}

export interface EventQuery {
  clusterId?: string;
  upgradeId?: string;
  /** Comma-separated types. */
  type?: string;
  actor?: string;
  operations?: 'true' | undefined;
  cursor?: string;
  limit?: number;
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Why the console lost its session: the server stopped accepting it (401), or this tab's CSRF token no longer matches (403). */
export type SessionLoss = 'unauthorized' | 'csrf';

/**
 * The REST client of the console. It authenticates with the httpOnly session cookie set
 * at sign-in (the browser sends it; the console never sees it) and sends the session's
 * CSRF token on every request that changes something. It never sends an API token. A 401
 * (or a CSRF refusal) calls `onSessionLost` (the console signs out) before the error
 * reaches the caller.
 */
export class ApiClient {
  constructor(
    private readonly csrfToken: string | null,
    private readonly onSessionLost: (why: SessionLoss) => void = () => {},
    readonly base = '/api/v1',
  ) {}

  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && method !== 'HEAD' && this.csrfToken) headers['x-csrf-token'] = this.csrfToken;
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        signal: signal ?? null,
        credentials: 'same-origin',
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new ApiError(0, 'NETWORK', `the server did not answer (${(error as Error).message})`);
    }
    if (res.status === 401) this.onSessionLost('unauthorized');
    const text = await res.text();
    if (!res.ok) {
      let code = `HTTP_${res.status}`;
      let message = text || res.statusText;
      let details: Record<string, unknown> | undefined;
      try {
        const parsed = JSON.parse(text) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
        if (parsed.error) {
          code = parsed.error.code ?? code;
          message = parsed.error.message ?? message;
          details = parsed.error.details;
        }
      } catch {
        // not JSON: keep the text
      }
      if (res.status === 403 && code === 'CSRF_FAILED') this.onSessionLost('csrf');
      throw new ApiError(res.status, code, message, details);
    }
    if (res.status === 204 || text === '') return undefined as T;
    const type = res.headers.get('content-type') ?? '';
    return (type.includes('json') ? JSON.parse(text) : text) as T;
  }

  /** Sign-in: trades an API token for the session cookie and a CSRF token; the API token is not kept. */
  signIn(token: string) {
    return this.request<SignInView>('POST', '/session', { token });
  }
  /** Who this session is (the role may differ from what was kept if the session was replaced). */
  /** The browser's open console session, if any: another tab signed in (cookie only). */
  openSession(signal?: AbortSignal) {
    return this.request<CurrentSessionView>('GET', '/session', undefined, signal);
  }
  whoAmI(signal?: AbortSignal) {
    return this.request<CurrentSessionView>('GET', '/session', undefined, signal).then((r) => r.principal);
  }
  signOut() {
    return this.request<void>('DELETE', '/session');
  }
  listTokens(signal?: AbortSignal) {
    return this.request<TokenList>('GET', '/tokens', undefined, signal).then((r) => r.items);
  }
  createToken(body: { name: string; role: Role; expiresInSeconds?: number }) {
    return this.request<CreatedTokenView>('POST', '/tokens', body);
  }
  revokeToken(id: string) {
    return this.request<void>('DELETE', `/tokens/${encodeURIComponent(id)}`);
  }
  listWebhooks(signal?: AbortSignal) {
    return this.request<WebhookList>('GET', '/webhooks', undefined, signal).then((r) => r.items);
  }
  getWebhook(ref: string, signal?: AbortSignal) {
    return this.request<WebhookView>('GET', `/webhooks/${encodeURIComponent(ref)}`, undefined, signal);
  }
  createWebhook(body: WebhookBody) {
    return this.request<WebhookView>('POST', '/webhooks', body);
  }
  deleteWebhook(ref: string) {
    return this.request<void>('DELETE', `/webhooks/${encodeURIComponent(ref)}`);
  }
  listDeliveries(ref: string, limit: number, signal?: AbortSignal) {
    return this.request<DeliveryList>('GET', `/webhooks/${encodeURIComponent(ref)}/deliveries${query({ limit })}`, undefined, signal).then(
      (r) => r.items,
    );
  }
  listClusters(signal?: AbortSignal) {
    return this.request<ClusterList>('GET', '/clusters', undefined, signal).then((r) => r.items);
  }
  getCluster(id: string, signal?: AbortSignal) {
    return this.request<ClusterView>('GET', `/clusters/${encodeURIComponent(id)}`, undefined, signal);
  }
  createCluster(body: Record<string, unknown>) {
    return this.request<ClusterCreatedView>('POST', '/clusters', body);
  }
  /** Sets or clears (null) the cluster's default maintenance window; admins only. */
  updateCluster(id: string, body: ClusterPatchBody) {
    return this.request<ClusterView>('PATCH', `/clusters/${encodeURIComponent(id)}`, body);
  }
  deleteCluster(id: string) {
    return this.request<void>('DELETE', `/clusters/${encodeURIComponent(id)}`);
  }
  /** One page of a cluster's nodes, in natural order of names. */
  listNodes(clusterId: string, page: PageRequest, signal?: AbortSignal) {
    const { cursor, limit } = page;
    return this.request<NodePage>(
      'GET',
      `/clusters/${encodeURIComponent(clusterId)}/nodes${query({ cursor: cursor ?? undefined, limit })}`,
      undefined,
      signal,
    );
  }
  /** The catalog as this cluster sees it: which versions install on its nodes' distributions, and why not. */
  clusterCatalog(clusterId: string, signal?: AbortSignal) {
    return this.request<ClusterCatalogView>('GET', `/clusters/${encodeURIComponent(clusterId)}/catalog`, undefined, signal);
  }
  plan(clusterId: string, body: UpgradeBody, signal?: AbortSignal) {
    return this.request<PlanView>('POST', `/clusters/${encodeURIComponent(clusterId)}/upgrades/plan`, body, signal);
  }
  /** One check of one gate, now ("Test now"); nothing is stored. */
  testGate(body: GateTestBody, signal?: AbortSignal) {
    return this.request<GateTestView>('POST', '/gates/test', body, signal);
  }
  startUpgrade(clusterId: string, body: UpgradeBody) {
    return this.request<UpgradeView>('POST', `/clusters/${encodeURIComponent(clusterId)}/upgrades`, body);
  }
  listUpgrades(params: { clusterId?: string; state?: string } = {}, signal?: AbortSignal) {
    return this.request<UpgradeList>('GET', `/upgrades${query(params)}`, undefined, signal).then((r) => r.items);
  }
  getUpgrade(id: string, signal?: AbortSignal) {
    return this.request<UpgradeView>('GET', `/upgrades/${encodeURIComponent(id)}`, undefined, signal);
  }
  /** The failed executor pods that block resuming a paused Kubernetes upgrade. */
  failedPods(id: string, signal?: AbortSignal) {
    return this.request<FailedPodList>('GET', `/upgrades/${encodeURIComponent(id)}/failed-pods`, undefined, signal).then((r) => r.items);
  }
  command(id: string, command: UpgradeCommandName, body?: Record<string, unknown>) {
    return this.request<UpgradeView>('POST', `/upgrades/${encodeURIComponent(id)}/${command}`, body ?? {});
  }
  /** One page of an upgrade's node tasks, in the upgrade's order. */
  upgradeNodes(id: string, page: PageRequest, signal?: AbortSignal) {
    const { cursor, limit } = page;
    return this.request<NodeTaskPage>(
      'GET',
      `/upgrades/${encodeURIComponent(id)}/nodes${query({ cursor: cursor ?? undefined, limit })}`,
      undefined,
      signal,
    );
  }
  nodeLog(id: string, nodeId: string, signal?: AbortSignal) {
    return this.request<string>('GET', `/upgrades/${encodeURIComponent(id)}/nodes/${encodeURIComponent(nodeId)}/log`, undefined, signal);
  }
  events(params: EventQuery, signal?: AbortSignal) {
    const { clusterId, upgradeId, type, actor, operations, cursor, limit } = params;
    return this.request<EventPage>(
      'GET',
      `/events${query({ clusterId, upgradeId, type, actor, operations, cursor, limit })}`,
      undefined,
      signal,
    );
  }
}

/** Says what went wrong in a sentence for the person at the console. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 0) return error.message;
    return `${error.message} (${error.code})`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
