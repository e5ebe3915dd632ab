import YAML from 'yaml';
import { invalid } from '../../domain/errors.js';
import { refusedTargetReason } from '../../domain/network-targets.js';

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
 * The only parts of a kubeconfig the driver uses: one cluster reached over https:// and
 * one user who authenticates with what the file itself carries. Everything else a
 * kubeconfig can say (a command to run, a file to read, a proxy) is refused, so that a
 * kubeconfig cannot make the server run anything or read its own files.
 */
export interface SanitizedKubeconfig {
  context: string;
  cluster: { name: string; server: string; caData?: string; skipTLSVerify: boolean; tlsServerName?: string };
  user: { name: string; token?: string; certData?: string; keyData?: string };
}

/** What the server allows a kubeconfig to reach: the operator's `--allow-link-local-targets`. */
export interface KubeconfigPolicy {
  allowLinkLocalTargets: boolean;
}

type Yaml = Record<string, unknown>;

function refuse(message: string): never {
  throw invalid(`kubeconfig ${message}`, { field: KUBECONFIG_FIELD });
}

/** A name from the file, quoted and bounded, for messages. */
function quoted(name: unknown): string {
  const text = typeof name === 'string' ? name : '';
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}

/** Under the failsafe schema every scalar is a string; YAML's null spellings mean "not set". */
function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '' && value !== '~' && value !== 'null' && value !== 'Null' && value !== 'NULL';
}

function listOf(doc: Yaml, key: string): Yaml[] {
  const value = doc[key];
  if (!present(value)) return [];
  if (!Array.isArray(value) || !value.every(isRecord)) refuse(`${key} must be a list of {name, ${key.slice(0, -1)}} entries`);
  return value as Yaml[];
}

function flag(value: unknown, where: string): boolean {
  if (!present(value)) return false;
  if (value === 'true' || value === 'false') return value === 'true';
  return refuse(`${where} must be true or false`);
}

const base64 = /^[A-Za-z0-9+/\s]+={0,2}\s*$/;

function pemData(value: unknown, where: string, label: string): string {
  if (typeof value !== 'string' || !base64.test(value) || !Buffer.from(value, 'base64').toString('latin1').includes('-----BEGIN')) {
    return refuse(`${where} must be the base64 of a PEM ${label}, as kubectl config view --raw --flatten prints it`);
  }
  return value.replace(/\s+/g, '');
}

const embedHint = 'embed the credentials in the file instead (kubectl config view --raw --flatten --minify)';

/** Cluster fields: how each is handled. Unknown fields are refused. */
const clusterFieldsIgnored = new Set(['extensions', 'disable-compression']);
const clusterRefusals: Record<string, string> = {
  'certificate-authority': `names a file on the server; ${embedHint}`,
  'proxy-url': 'names a proxy; the server connects to the API server directly',
};

/** User fields that cannot be allowed, with why. */
const userRefusals: Record<string, string> = {
  exec: 'runs a command on the server; use a service-account token or a client certificate embedded in the file',
  'auth-provider': 'runs an authentication plugin on the server; use a service-account token or a client certificate embedded in the file',
  'token-file': `names a file on the server; ${embedHint}`,
  tokenFile: `names a file on the server; ${embedHint}`,
  'client-certificate': `names a file on the server; ${embedHint}`,
  'client-key': `names a file on the server; ${embedHint}`,
  username: 'uses a user name and password, which Upshift does not accept; use a token or a client certificate',
  password: 'uses a user name and password, which Upshift does not accept; use a token or a client certificate',
  as: 'impersonates another user, which Upshift does not support; give the kubeconfig user the permissions itself',
  'as-groups': 'impersonates groups, which Upshift does not support; give the kubeconfig user the permissions itself',
  'as-uid': 'impersonates another user, which Upshift does not support; give the kubeconfig user the permissions itself',
  'as-user-extra': 'impersonates another user, which Upshift does not support; give the kubeconfig user the permissions itself',
};
const userFieldsAllowed = new Set(['token', 'client-certificate-data', 'client-key-data', 'extensions']);

function checkCluster(entry: Yaml, index: number, policy: KubeconfigPolicy): SanitizedKubeconfig['cluster'] {
  const name = entry['name'];
  if (typeof name !== 'string' || !present(name)) refuse(`clusters[${index}] has no name`);
  const where = `cluster ${quoted(name)}`;
  const cluster = entry['cluster'];
  if (!isRecord(cluster)) return refuse(`${where} has no cluster: {server: https://…} mapping`);
  for (const [key, value] of Object.entries(cluster)) {
    if (!present(value) || clusterFieldsIgnored.has(key)) continue;
    const refusal = clusterRefusals[key];
    if (refusal) refuse(`${where}: ${key} ${refusal}`);
    if (!['server', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name'].includes(key)) {
      refuse(`${where}: ${key} is not supported; known: server, certificate-authority-data, insecure-skip-tls-verify, tls-server-name`);
    }
  }
  const server = cluster['server'];
  if (typeof server !== 'string' || !present(server)) return refuse(`${where} has no server address`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return refuse(`${where} has no valid server address`);
  }
  if (url.protocol !== 'https:') refuse(`${where}: server must be an https:// address`);
  if (url.username !== '' || url.password !== '') refuse(`${where}: server must not carry a user name or password`);
  if (url.search !== '' || url.hash !== '') refuse(`${where}: server must not carry a query or a fragment`);
  const target = refusedTargetReason(url.hostname, policy.allowLinkLocalTargets, 'server');
  if (target) refuse(`${where}: ${target}`);
  const tlsServerName = cluster['tls-server-name'];
  if (present(tlsServerName) && (typeof tlsServerName !== 'string' || !/^[A-Za-z0-9.-]{1,253}$/.test(tlsServerName))) {
    refuse(`${where}: tls-server-name must be a host name`);
  }
  return {
    name,
    server: server.replace(/\/$/, ''),
    ...(present(cluster['certificate-authority-data'])
      ? { caData: pemData(cluster['certificate-authority-data'], `${where}: certificate-authority-data`, 'CA certificate') }
      : {}),
    skipTLSVerify: flag(cluster['insecure-skip-tls-verify'], `${where}: insecure-skip-tls-verify`),
    ...(present(tlsServerName) ? { tlsServerName: tlsServerName as string } : {}),
  };
}

function checkUser(entry: Yaml, index: number): SanitizedKubeconfig['user'] {
  const name = entry['name'];
  if (typeof name !== 'string' || !present(name)) refuse(`users[${index}] has no name`);
  const where = `user ${quoted(name)}`;
  const user = entry['user'];
  if (!present(user)) return { name };
  if (!isRecord(user)) return refuse(`${where}: user must be a mapping such as {token: …}`);
  for (const [key, value] of Object.entries(user)) {
    if (!present(value)) continue;
    const refusal = userRefusals[key];
    if (refusal) refuse(`${where}: ${key} ${refusal}`);
    if (!userFieldsAllowed.has(key)) refuse(`${where}: ${key} is not supported; known: token, client-certificate-data, client-key-data`);
  }
  const token = user['token'];
  if (present(token) && (typeof token !== 'string' || !/^[\x21-\x7e]{1,10000}$/.test(token))) {
    refuse(`${where}: token must be one line of printable characters`);
  }
  const hasCert = present(user['client-certificate-data']);
  const hasKey = present(user['client-key-data']);
  if (hasCert !== hasKey) refuse(`${where}: client-certificate-data and client-key-data go together; give both or neither`);
  return {
    name,
    ...(present(token) ? { token: token as string } : {}),
    ...(hasCert ? { certData: pemData(user['client-certificate-data'], `${where}: client-certificate-data`, 'certificate') } : {}),
    ...(hasKey ? { keyData: pemData(user['client-key-data'], `${where}: client-key-data`, 'private key') } : {}),
  };
}

const topLevelKeys = new Set(['apiVersion', 'kind', 'clusters', 'contexts', 'users', 'current-context', 'preferences', 'extensions']);

/**
 * Reads a kubeconfig without running or reading anything it names, and keeps only what
 * the driver needs. Every cluster and user of the file is checked, not only the current
 * context's, so that nothing refused sits in a stored kubeconfig. Refuses, with a 422
 * that names the field: `exec`, `auth-provider`, any file reference, a user name and
 * password, a proxy, a non-https server, a link-local or metadata server (unless the
 * operator allowed them), and a current user without an embedded token or client
 * certificate. The driver builds its client from the result on every use, so a
 * kubeconfig stored before these rules cannot run anything either.
 */
export function parseKubeconfig(text: string, policy: KubeconfigPolicy): SanitizedKubeconfig {
  let doc: unknown;
  try {
    doc = YAML.parse(text, { schema: 'failsafe', maxAliasCount: 100, prettyErrors: false });
  } catch (error) {
    const pos = (error as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
    refuse(
      `cannot be parsed as YAML${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: export it with kubectl config view --raw --flatten --minify`,
    );
  }
  if (!isRecord(doc)) refuse('must be a YAML mapping (apiVersion, clusters, contexts, users, current-context)');
  for (const key of Object.keys(doc)) {
    if (!topLevelKeys.has(key)) refuse(`has an unknown top-level field ${quoted(key)}`);
  }
  const clusters = listOf(doc, 'clusters').map((c, i) => checkCluster(c, i, policy));
  const users = listOf(doc, 'users').map((u, i) => checkUser(u, i));
  const contexts = listOf(doc, 'contexts');
  const current = doc['current-context'];
  if (typeof current !== 'string' || !present(current)) {
    refuse('has no current-context: set one (kubectl config use-context NAME) before exporting it');
  }
  const context = contexts.find((c) => c['name'] === current)?.['context'];
  if (!isRecord(context)) refuse(`current-context ${quoted(current)} names no context in the file`);
  const cluster = clusters.find((c) => c.name === context['cluster']);
  if (!cluster) refuse(`current-context ${quoted(current)} names no cluster in the file`);
  const user = users.find((u) => u.name === context['user']);
  if (!user) refuse(`current-context ${quoted(current)} names no user in the file`);
  if (user.token === undefined && user.certData === undefined) {
    refuse(
      `user ${quoted(user.name)} carries no credentials: embed a bearer token (a service-account token) or client-certificate-data and client-key-data`,
    );
  }
  return { context: current, cluster, user };
}
