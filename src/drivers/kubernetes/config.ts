import { KubeConfig } from '@kubernetes/client-node';
import { invalid } from '../../domain/errors.js';

/**
 * The kind-specific settings of a `kubernetes` cluster, as stored in the cluster record
 * and returned by the API. Never a secret: the kubeconfig is a secret field of its own.
 */
export interface KubernetesClusterConfig {
  /** Where executor pods run; created (with a privileged Pod Security label) when missing. */
  namespace: string;
  /** Node label that carries the sandboxed runtime's version (set by the installer or by Node Feature Discovery). */
  runtimeLabel: string;
  /** Cordon and drain each node before its executor pod runs; off by default (sandboxed workloads keep running). */
  drain: { enabled: boolean; timeoutSeconds: number };
  /** Upper bound of one executor pod's run: its `activeDeadlineSeconds`. */
  taskTimeoutSeconds: number;
  /** How long the node may take, after its executor pod succeeded, to report the target version. */
  verifyTimeoutSeconds: number;
  /** Names of image pull secrets in the namespace, for a private installer registry (references only). */
  imagePullSecrets: string[];
}

export const KUBECONFIG_FIELD = 'kubeconfig';
export const DEFAULT_NAMESPACE = 'runtime-upgrade';
export const DEFAULT_RUNTIME_LABEL = 'upshift.io/sandboxed-runtime-version';

const topKeys = ['namespace', 'runtimeLabel', 'drain', 'taskTimeoutSeconds', 'verifyTimeoutSeconds', 'imagePullSecrets'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const labelName = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A qualified label key: `[prefix/]name`, prefix a DNS subdomain up to 253, name up to 63. */
export function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !dnsSubdomain.test(prefix))) return false;
  return name.length > 0 && name.length <= 63 && labelName.test(name);
}

function seconds(raw: unknown, field: string, fallback: number, min: number, max: number): number {
  const value = raw ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${field} must be a whole number of seconds from ${min} to ${max}`, { field });
  }
  return value;
}

/** Checks and fills in the settings of a create request; names the offending field. */
export function validateKubernetesConfig(raw: Record<string, unknown>): KubernetesClusterConfig {
  for (const key of Object.keys(raw)) {
    if (!topKeys.includes(key)) {
      throw invalid(`unknown field ${JSON.stringify(key)} for a kubernetes cluster; known: kubeconfig, ${topKeys.join(', ')}`, {
        field: key,
      });
    }
  }
  const namespace = raw['namespace'] ?? DEFAULT_NAMESPACE;
  if (typeof namespace !== 'string' || namespace.length > 63 || !dnsLabel.test(namespace)) {
    throw invalid('namespace must be a DNS label (lower-case letters, digits and -, at most 63), such as runtime-upgrade', {
      field: 'namespace',
    });
  }
  const runtimeLabel = raw['runtimeLabel'] ?? DEFAULT_RUNTIME_LABEL;
  if (typeof runtimeLabel !== 'string' || !isLabelKey(runtimeLabel)) {
    throw invalid(`runtimeLabel must be a label key such as ${DEFAULT_RUNTIME_LABEL}`, { field: 'runtimeLabel' });
  }
  const drainRaw = raw['drain'] ?? {};
  if (!isRecord(drainRaw)) throw invalid('drain must be an object such as {"enabled":true,"timeoutSeconds":300}', { field: 'drain' });
  for (const key of Object.keys(drainRaw)) {
    if (key !== 'enabled' && key !== 'timeoutSeconds') {
      throw invalid(`drain.${key} is not a known field; known: enabled, timeoutSeconds`, { field: `drain.${key}` });
    }
  }
  const enabled = drainRaw['enabled'] ?? false;
  if (typeof enabled !== 'boolean') throw invalid('drain.enabled must be true or false', { field: 'drain.enabled' });
  const drainTimeout = seconds(drainRaw['timeoutSeconds'], 'drain.timeoutSeconds', 300, 1, 86_400);
  const taskTimeoutSeconds = seconds(raw['taskTimeoutSeconds'], 'taskTimeoutSeconds', 1800, 1, 86_400);
  const verifyTimeoutSeconds = seconds(raw['verifyTimeoutSeconds'], 'verifyTimeoutSeconds', 120, 0, 3600);
  const pullSecrets = raw['imagePullSecrets'] ?? [];
  if (!Array.isArray(pullSecrets) || !pullSecrets.every((s) => typeof s === 'string' && s.length <= 253 && dnsSubdomain.test(s))) {
    throw invalid('imagePullSecrets must be a list of secret names in the namespace, such as ["registry-credentials"]', {
      field: 'imagePullSecrets',
    });
  }
  return {
    namespace,
    runtimeLabel,
    drain: { enabled, timeoutSeconds: drainTimeout },
    taskTimeoutSeconds,
    verifyTimeoutSeconds,
    imagePullSecrets: [...(pullSecrets as string[])],
  };
}

/** The stored config of a cluster, with defaults for records written before a field existed. */
export function clusterConfig(config: Record<string, unknown>): KubernetesClusterConfig {
  return validateKubernetesConfig(config);
}

/**
 * Parses a kubeconfig the way the client will; refuses one without a current context,
 * a cluster or a server address, so that a mistake shows at creation and not at the
 * first inventory sync.
 */
export function parseKubeconfig(text: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (error) {
    throw invalid(`kubeconfig cannot be parsed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, {
      field: KUBECONFIG_FIELD,
    });
  }
  if (!kc.getCurrentContext()) {
    throw invalid('kubeconfig has no current-context: set one (kubectl config use-context NAME) before exporting it', {
      field: KUBECONFIG_FIELD,
    });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw invalid(`kubeconfig's current-context ${JSON.stringify(kc.getCurrentContext())} names no cluster in the file`, {
      field: KUBECONFIG_FIELD,
    });
  }
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw invalid(`kubeconfig cluster ${JSON.stringify(cluster.name)} has no valid server address`, { field: KUBECONFIG_FIELD });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalid(`kubeconfig cluster ${JSON.stringify(cluster.name)}: server must be an https:// address`, { field: KUBECONFIG_FIELD });
  }
  return kc;
}
