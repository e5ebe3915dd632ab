import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type https from 'node:https';
import { ApiException, CoreV1Api, KubeConfig, Log, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node';
import type { RequestContext, V1Status } from '@kubernetes/client-node';
import { GuardedHttpsAgent, boundedLine, connectFailureReason } from '../../platform/target-guard.js';
import type { KubeconfigPolicy, SanitizedKubeconfig } from './config.js';
import { parseKubeconfig } from './config.js';

/**
 * A KubeConfig built only from a sanitized kubeconfig (never from the file's text, see
 * `parseKubeconfig`), whose every connection goes through one `GuardedHttpsAgent`: the
 * client library would otherwise make a fresh agent per request, without the target
 * checks, and follow a redirect to any address.
 */
type FetchOptions = Awaited<ReturnType<KubeConfig['applyToFetchOptions']>>;

class GuardedKubeConfig extends KubeConfig {
  constructor(
    sanitized: SanitizedKubeconfig,
    private readonly agent: GuardedHttpsAgent,
  ) {
    super();
    const { cluster, user, context } = sanitized;
    this.loadFromOptions({
      clusters: [cluster],
      users: [user],
      contexts: [{ name: context, cluster: cluster.name, user: user.name }],
      currentContext: context,
    });
  }

  override async applyToHTTPSOptions(opts: Parameters<KubeConfig['applyToHTTPSOptions']>[0]): Promise<void> {
    await super.applyToHTTPSOptions(opts);
    (opts as https.RequestOptions).agent = this.agent;
  }

  override async applyToFetchOptions(opts: https.RequestOptions): Promise<FetchOptions> {
    const init = await super.applyToFetchOptions(opts);
    return { ...init, agent: this.agent };
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    context.setAgent(this.agent);
  }
}

/**
 * One cluster's API clients, built from its sanitized kubeconfig. The driver keeps one
 * per cluster and rebuilds it when the stored kubeconfig changes (compared by digest, so
 * the plaintext is not kept around for the comparison).
 */
export class KubeClient {
  readonly core: CoreV1Api;
  readonly watch: Watch;
  readonly log: Log;
  readonly kubeconfig: KubeConfig;
  /** `host:port` of the API server, for messages. */
  readonly target: string;
  private readonly agent: GuardedHttpsAgent;

  constructor(
    sanitized: SanitizedKubeconfig,
    readonly digest: string,
    policy: KubeconfigPolicy,
  ) {
    const { cluster, user } = sanitized;
    // One agent for every call, with keep-alive: each call no longer pays a TLS handshake.
    this.agent = new GuardedHttpsAgent({
      keepAlive: true,
      allowLinkLocal: policy.allowLinkLocalTargets,
      ...(cluster.caData ? { ca: Buffer.from(cluster.caData, 'base64') } : {}),
      ...(user.certData ? { cert: Buffer.from(user.certData, 'base64') } : {}),
      ...(user.keyData ? { key: Buffer.from(user.keyData, 'base64') } : {}),
      ...(cluster.tlsServerName ? { servername: cluster.tlsServerName } : {}),
      ...(cluster.skipTLSVerify ? { rejectUnauthorized: false } : {}),
    });
    this.kubeconfig = new GuardedKubeConfig(sanitized, this.agent);
    const url = new URL(cluster.server);
    this.target = `${url.hostname}:${url.port || '443'}`;
    this.core = this.kubeconfig.makeApiClient(CoreV1Api);
    this.watch = new Watch(this.kubeconfig);
    this.log = new Log(this.kubeconfig);
  }

  /** Checks the kubeconfig again (the rules may be newer than the stored text) and builds the clients. */
  static fromText(text: string, policy: KubeconfigPolicy): KubeClient {
    return new KubeClient(parseKubeconfig(text, policy), kubeconfigDigest(text), policy);
  }

  /** Closes the idle connections; calls still running end with an error. */
  close(): void {
    this.agent.destroy();
  }

  get server(): string {
    return this.kubeconfig.getCurrentCluster()?.server ?? '(no server)';
  }
}

export function kubeconfigDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Request options for a JSON merge patch (RFC 7386); the client's default is a JSON patch. */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * The Status object of a failed call. A body counts as a Status only when it is one
 * (`kind: "Status"`), as a kube-apiserver sends: the answer of anything else at that
 * address is never read into a message.
 */
export function apiStatus(error: unknown): { code: number; reason?: string; message?: string; status?: V1Status } | undefined {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    let status: V1Status | undefined;
    let parsed: unknown = body;
    if (typeof body === 'string') {
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = undefined;
      }
    }
    if (typeof parsed === 'object' && parsed !== null && (parsed as { kind?: unknown }).kind === 'Status') status = parsed as V1Status;
    return {
      code: error.code,
      ...(typeof status?.reason === 'string' ? { reason: status.reason } : {}),
      ...(typeof status?.message === 'string' ? { message: status.message } : {}),
      ...(status ? { status } : {}),
    };
  }
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof code === 'number') return { code };
  return undefined;
}

export function isNotFound(error: unknown): boolean {
  return apiStatus(error)?.code === 404;
}

export function isConflict(error: unknown): boolean {
  return apiStatus(error)?.code === 409;
}

/** What to do about an HTTP status, in Upshift's words. */
function statusHint(code: number, message: string | undefined): string {
  if (code === 401) return ' (the kubeconfig credentials were refused: export a fresh kubeconfig)';
  if (code === 403 && /PodSecurity/.test(message ?? '')) {
    return ' (label the namespace pod-security.kubernetes.io/enforce=privileged, or let Upshift create it)';
  }
  if (code === 403) return ' (the kubeconfig user lacks a permission: see docs/kubernetes.md for the RBAC rules)';
  return '';
}

/**
 * Why a call failed, in words Upshift wrote, for where anyone with read access can see
 * it (the cluster's status): the HTTP status and a hint, or how the connection failed.
 * Never a body, never an error's own message.
 */
export function kubeFailureReason(error: unknown, target: string, what: string): string {
  if (error instanceof KubeDeadlineError) return error.message;
  const status = apiStatus(error);
  if (status) {
    const reason = STATUS_CODES[status.code];
    return `the Kubernetes API at ${target} answered ${status.code}${reason ? ` ${reason}` : ''} to ${what}${statusHint(status.code, status.message)}`;
  }
  const connect = connectFailureReason(error, target);
  if (connect) return connect;
  return `${what} on ${target} failed: the answer was not a Kubernetes API response`;
}

/**
 * One line an operator can act on: `403 Forbidden: pods is forbidden: …`, or how the
 * connection failed. The API server's message is kept only when it sent a Status object.
 */
export function describeKubeError(error: unknown): string {
  if (error instanceof KubeDeadlineError || error instanceof KubeCallError) return error.message;
  const status = apiStatus(error);
  if (status) {
    const reason = status.reason ?? STATUS_CODES[status.code];
    const message = status.message ? boundedLine(status.message) : 'the API server refused the request';
    return `${status.code}${reason ? ` ${reason}` : ''}: ${message}${statusHint(status.code, status.message)}`;
  }
  return connectFailureReason(error, 'the API server') ?? 'the answer was not a Kubernetes API response';
}

/** An API call failed; the message names what was being done. */
export class KubeCallError extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what}: ${describeKubeError(cause)}`, { cause });
    this.name = 'KubeCallError';
  }
}

/** A call got no answer in time; its message is Upshift's own. */
export class KubeDeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeDeadlineError';
  }
}

/**
 * The generated client takes no deadline, so a black-holed API server would hang the
 * caller forever; this bounds every call. The request itself is left to the socket's
 * own timeouts.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new KubeDeadlineError(`${what}: no answer from the API server within ${Math.round(ms / 1000)} s`)),
      ms,
    );
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
