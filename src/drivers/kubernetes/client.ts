import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { ApiException, CoreV1Api, type KubeConfig, Log, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node';
import type { V1Status } from '@kubernetes/client-node';
import { parseKubeconfig } from './config.js';

/**
 * One cluster's API clients, built from its kubeconfig. The driver keeps one per
 * cluster and rebuilds it when the stored kubeconfig changes (compared by digest, so
 * the plaintext is not kept around for the comparison).
 */
export class KubeClient {
  readonly core: CoreV1Api;
  readonly watch: Watch;
  readonly log: Log;

  constructor(
    readonly kubeconfig: KubeConfig,
    readonly digest: string,
  ) {
    this.core = kubeconfig.makeApiClient(CoreV1Api);
    this.watch = new Watch(kubeconfig);
    this.log = new Log(kubeconfig);
  }

  static fromText(text: string): KubeClient {
    return new KubeClient(parseKubeconfig(text), kubeconfigDigest(text));
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

/** The Status object of a failed call, when the API server sent one. */
export function apiStatus(error: unknown): { code: number; reason?: string; message?: string; status?: V1Status } | undefined {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    let status: V1Status | undefined;
    if (typeof body === 'string') {
      try {
        const parsed: unknown = JSON.parse(body);
        if (typeof parsed === 'object' && parsed !== null) status = parsed as V1Status;
      } catch {
        status = undefined;
      }
    } else if (typeof body === 'object' && body !== null) {
      status = body as V1Status;
    }
    return {
      code: error.code,
      ...(status?.reason ? { reason: status.reason } : {}),
      ...(status?.message ? { message: status.message } : {}),
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

/** One line an operator can act on: `403 Forbidden: pods is forbidden: …` or the network error. */
export function describeKubeError(error: unknown): string {
  const status = apiStatus(error);
  if (status) {
    const hint =
      status.code === 401
        ? ' (the kubeconfig credentials were refused: export a fresh kubeconfig)'
        : status.code === 403 && /PodSecurity/.test(status.message ?? '')
          ? ' (label the namespace pod-security.kubernetes.io/enforce=privileged, or let Upshift create it)'
          : status.code === 403
            ? ' (the kubeconfig user lacks a permission: see docs/kubernetes.md for the RBAC rules)'
            : '';
    const reason = status.reason ?? STATUS_CODES[status.code];
    return `${status.code}${reason ? ` ${reason}` : ''}: ${status.message ?? 'the API server refused the request'}${hint}`;
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const first = error.message.split('\n')[0] ?? error.message;
    return typeof code === 'string' && !first.includes(code) ? `${first} (${code})` : first;
  }
  return String(error);
}

/** An API call failed; the message names what was being done. */
export class KubeCallError extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what}: ${describeKubeError(cause)}`, { cause });
    this.name = 'KubeCallError';
  }
}

/**
 * The generated client takes no deadline, so a black-holed API server would hang the
 * caller forever; this bounds every call. The request itself is left to the socket's
 * own timeouts.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer from the API server within ${Math.round(ms / 1000)} s`)), ms);
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
