import { invalid } from '../../domain/errors.js';
import { refusedTargetReason } from '../../domain/network-targets.js';

/**
 * The kind-specific settings of a `swarm` cluster, as stored in the cluster record and
 * returned by the API. Never a secret: the TLS client key is the secret field `tlsKey`.
 */
export interface SwarmClusterConfig {
  /**
   * Engine API endpoints of managers, tried in order: `tcp://host:2376` with TLS, or
   * `unix://` and the one socket path the operator allows (`--swarm-socket`). More than one lets the driver reach the swarm while the engine of
   * the first one is being upgraded.
   */
  managers: string[];
  /** PEM CA bundle and client certificate for `tcp://` endpoints (the key is the `tlsKey` secret). */
  tls: { ca: string; cert: string } | null;
  /**
   * Drain a node before its runtime restarts, wait until its tasks moved (bounded), then
   * restore its availability. `components` are the upgrades that drain (docker by default).
   */
  drain: { enabled: boolean; timeoutSeconds: number; components: string[] };
  /** How long a node may take, after the agent's task, to be Ready on the target version. */
  verifyTimeoutSeconds: number;
}

export const TLS_KEY_FIELD = 'tlsKey';

const topKeys = ['manager', 'tls', 'drain', 'verifyTimeoutSeconds'];
const drainable = ['docker', 'containerd', 'sandboxed-runtime'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function seconds(raw: unknown, field: string, fallback: number, min: number, max: number): number {
  const value = raw ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${field} must be a whole number of seconds from ${min} to ${max}`, { field });
  }
  return value;
}

/**
 * Where the server may reach a swarm's Engine API, set by the operator: the one Docker
 * socket path it allows (`--swarm-socket`; null: none) and whether link-local and
 * metadata addresses are allowed (`--allow-link-local-targets`).
 */
export interface SwarmTargetPolicy {
  swarmSocket: string | null;
  allowLinkLocalTargets: boolean;
}

const endpointHint =
  'tcp://HOST:2376 (with TLS client certificates) or unix:///var/run/docker.sock (the socket the server allows with --swarm-socket)';

/**
 * Checks one manager endpoint against the policy: an admin names it, the server connects
 * to it, so an endpoint may not reach a socket or an address the operator did not allow.
 */
function checkEndpoint(endpoint: unknown, policy: SwarmTargetPolicy): string {
  if (typeof endpoint !== 'string' || endpoint.length > 300) {
    throw invalid(`manager must be the Engine API endpoint of a swarm manager, ${endpointHint} (or a list of up to 7 of them)`, {
      field: 'manager',
    });
  }
  if (endpoint.startsWith('unix://')) {
    const path = endpoint.slice('unix://'.length);
    if (!/^\/[\x21-\x7e]*$/.test(path)) {
      throw invalid(`manager must be unix:// and an absolute socket path such as unix:///var/run/docker.sock`, { field: 'manager' });
    }
    if (policy.swarmSocket === null) {
      throw invalid(
        `manager ${endpoint}: this server allows no Docker socket; start it with --swarm-socket ${path || '/var/run/docker.sock'} to let swarm clusters use that socket, or give tcp://HOST:2376 with TLS`,
        { field: 'manager' },
      );
    }
    if (path !== policy.swarmSocket) {
      throw invalid(
        `manager ${endpoint}: the only Docker socket this server allows is unix://${policy.swarmSocket} (set with --swarm-socket)`,
        { field: 'manager' },
      );
    }
    return endpoint;
  }
  const match = /^tcp:\/\/([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):(\d{1,5})$/.exec(endpoint);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(`manager ${JSON.stringify(endpoint)} is not an endpoint Upshift accepts; give ${endpointHint}`, { field: 'manager' });
  }
  let host: string;
  try {
    host = new URL(`https://${match[1]}:${port}/`).hostname;
  } catch {
    throw invalid(`manager ${JSON.stringify(endpoint)}: ${match[1]} is not a host name or address`, { field: 'manager' });
  }
  const refused = refusedTargetReason(host, policy.allowLinkLocalTargets, `manager ${endpoint}:`);
  if (refused) throw invalid(refused, { field: 'manager' });
  return endpoint;
}

function pem(raw: unknown, field: string, label: string): string {
  if (typeof raw !== 'string' || !raw.includes(`-----BEGIN ${label}`)) {
    throw invalid(`${field} must be the PEM text of a ${label.toLowerCase()} (-----BEGIN ${label}-----)`, { field });
  }
  return raw;
}

/** Checks and fills in the settings of a create request (or a stored record); names the offending field. */
export function validateSwarmConfig(raw: Record<string, unknown>, policy: SwarmTargetPolicy): SwarmClusterConfig {
  for (const key of Object.keys(raw)) {
    if (!topKeys.includes(key)) {
      throw invalid(`unknown field ${JSON.stringify(key)} for a swarm cluster; known: ${topKeys.join(', ')}, ${TLS_KEY_FIELD}`, {
        field: key,
      });
    }
  }
  const given = raw['manager'];
  const list = typeof given === 'string' ? [given] : given;
  if (!Array.isArray(list) || list.length === 0 || list.length > 7) {
    throw invalid(`manager must be the Engine API endpoint of a swarm manager, ${endpointHint} (or a list of up to 7 of them)`, {
      field: 'manager',
    });
  }
  const managers = list.map((e: unknown) => checkEndpoint(e, policy));
  let tls: SwarmClusterConfig['tls'] = null;
  if (raw['tls'] !== undefined && raw['tls'] !== null) {
    const t = raw['tls'];
    if (!isRecord(t)) throw invalid('tls must be an object {ca, cert} of PEM texts', { field: 'tls' });
    for (const key of Object.keys(t)) {
      if (key !== 'ca' && key !== 'cert') {
        throw invalid(`tls.${key} is not a known field; known: ca, cert (the client key is the secret field ${TLS_KEY_FIELD})`, {
          field: `tls.${key}`,
        });
      }
    }
    tls = { ca: pem(t['ca'], 'tls.ca', 'CERTIFICATE'), cert: pem(t['cert'], 'tls.cert', 'CERTIFICATE') };
  }
  if (tls === null && managers.some((m) => m.startsWith('tcp://'))) {
    throw invalid(`a tcp:// manager endpoint needs TLS client certificates: pass tls: {ca, cert} and the client key as ${TLS_KEY_FIELD}`, {
      field: 'tls',
    });
  }
  const drainRaw = raw['drain'] ?? {};
  let drain: SwarmClusterConfig['drain'];
  if (typeof drainRaw === 'boolean') {
    drain = { enabled: drainRaw, timeoutSeconds: 300, components: ['docker'] };
  } else {
    if (!isRecord(drainRaw)) {
      throw invalid('drain must be false or an object such as {"enabled":true,"timeoutSeconds":300}', { field: 'drain' });
    }
    for (const key of Object.keys(drainRaw)) {
      if (key !== 'enabled' && key !== 'timeoutSeconds' && key !== 'components') {
        throw invalid(`drain.${key} is not a known field; known: enabled, timeoutSeconds, components`, { field: `drain.${key}` });
      }
    }
    const enabled = drainRaw['enabled'] ?? true;
    if (typeof enabled !== 'boolean') throw invalid('drain.enabled must be true or false', { field: 'drain.enabled' });
    const components = drainRaw['components'] ?? ['docker'];
    if (!Array.isArray(components) || !components.every((c) => typeof c === 'string' && drainable.includes(c))) {
      throw invalid(`drain.components must be a list of ${drainable.join(', ')}`, { field: 'drain.components' });
    }
    drain = {
      enabled,
      timeoutSeconds: seconds(drainRaw['timeoutSeconds'], 'drain.timeoutSeconds', 300, 1, 86_400),
      components: [...new Set(components as string[])],
    };
  }
  return { managers, tls, drain, verifyTimeoutSeconds: seconds(raw['verifyTimeoutSeconds'], 'verifyTimeoutSeconds', 180, 1, 3600) };
}

/** Normalised config as stored: `manager` is kept as the list of endpoints. */
export function storedSwarmConfig(config: SwarmClusterConfig): Record<string, unknown> {
  return {
    manager: config.managers.length === 1 ? config.managers[0] : config.managers,
    ...(config.tls ? { tls: config.tls } : {}),
    drain: config.drain,
    verifyTimeoutSeconds: config.verifyTimeoutSeconds,
  };
}

/** Checks the secret fields of a create request: a tcp:// manager needs the TLS client key. */
export function validateSwarmSecrets(secrets: Record<string, string>, config: SwarmClusterConfig): void {
  for (const key of Object.keys(secrets)) {
    if (key !== TLS_KEY_FIELD) throw invalid(`${key} is not a secret field of a swarm cluster`, { field: key });
  }
  const key = secrets[TLS_KEY_FIELD];
  if (key !== undefined && !/-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/.test(key)) {
    throw invalid(`${TLS_KEY_FIELD} must be the PEM text of the client's private key`, { field: TLS_KEY_FIELD });
  }
  if (key === undefined && config.managers.some((m) => m.startsWith('tcp://'))) {
    throw invalid(`a tcp:// manager endpoint needs the TLS client key: pass its PEM text as ${TLS_KEY_FIELD}`, { field: TLS_KEY_FIELD });
  }
}
