import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { serverDefaults } from '../domain/defaults.js';
import { parseDuration } from '../domain/duration.js';

/**
 * The server's configuration, validated once at start and frozen. Precedence: flag >
 * environment > config file > default. An invalid value stops the server with a
 * message that names the key and where it came from.
 */
export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  /** `postgres://…` or a SQLite file path. */
  database: string;
  pausedTtlMs: number;
  catalogFile: string | null;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Interval of inventory syncs of real clusters. */
  inventoryIntervalMs: number;
  /** How long a replica's claim on an upgrade lasts without renewal (another takes over after). */
  leaseTtlMs: number;
  /** How often agents heartbeat; a node that misses three is unreachable and its open task fails. */
  agentHeartbeatSeconds: number;
  /** An agent task without a result after this long fails, even if its agent still heartbeats. */
  agentTaskTimeoutMs: number;
  /** Failed sign-ins per client address and minute before it is refused (429). */
  signInLimit: number;
  /** PEM files: when both are set the server speaks HTTPS only. */
  tlsCert: string | null;
  tlsKey: string | null;
  /**
   * Addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` is believed for
   * the client address (sign-in limits, audit). Empty: the peer address is the client.
   */
  trustedProxies: string[];
  /** The one Docker socket path a `swarm` cluster may name as its manager (`unix://PATH`); null: only tcp:// with TLS. */
  swarmSocket: string | null;
  /** Let clusters name link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10) as API targets. */
  allowLinkLocalTargets: boolean;
  /** Lifetime of a join token created without an explicit `ttlSeconds`. */
  joinTokenTtlSeconds: number;
  /**
   * The address users reach the server at (`https://upshift.example.com`), for the console
   * links in webhook payloads; null: the address the server listens on.
   */
  publicUrl: string | null;
  /** How long before the paused-TTL cancel `upgrade.auto_cancel_warning` is recorded (at most half the TTL). */
  autoCancelWarningMs: number;
}

/** An IPv4 or IPv6 address, optionally with a /prefix. */
export function isAddressOrCidr(text: string): boolean {
  const [address, prefix, ...rest] = text.split('/');
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface Key {
  flag: string;
  env: string;
  file: string;
}

const keys = {
  host: { flag: '--host', env: 'UPSHIFT_HOST', file: 'host' },
  port: { flag: '--port', env: 'UPSHIFT_PORT', file: 'port' },
  dataDir: { flag: '--data-dir', env: 'UPSHIFT_DATA_DIR', file: 'dataDir' },
  database: { flag: '--database', env: 'UPSHIFT_DATABASE_URL', file: 'database' },
  pausedTtl: { flag: '--paused-ttl', env: 'UPSHIFT_PAUSED_TTL', file: 'pausedTtl' },
  catalog: { flag: '--catalog', env: 'UPSHIFT_CATALOG', file: 'catalog' },
  logLevel: { flag: '--log-level', env: 'UPSHIFT_LOG_LEVEL', file: 'logLevel' },
  inventoryInterval: { flag: '--inventory-interval', env: 'UPSHIFT_INVENTORY_INTERVAL', file: 'inventoryInterval' },
  leaseTtl: { flag: '--lease-ttl', env: 'UPSHIFT_LEASE_TTL', file: 'leaseTtl' },
  agentHeartbeat: { flag: '--agent-heartbeat', env: 'UPSHIFT_AGENT_HEARTBEAT', file: 'agentHeartbeat' },
  agentTaskTimeout: { flag: '--agent-task-timeout', env: 'UPSHIFT_AGENT_TASK_TIMEOUT', file: 'agentTaskTimeout' },
  signInLimit: { flag: '--sign-in-limit', env: 'UPSHIFT_SIGN_IN_LIMIT', file: 'signInLimit' },
  tlsCert: { flag: '--tls-cert', env: 'UPSHIFT_TLS_CERT', file: 'tlsCert' },
  tlsKey: { flag: '--tls-key', env: 'UPSHIFT_TLS_KEY', file: 'tlsKey' },
  trustedProxies: { flag: '--trusted-proxies', env: 'UPSHIFT_TRUSTED_PROXIES', file: 'trustedProxies' },
  swarmSocket: { flag: '--swarm-socket', env: 'UPSHIFT_SWARM_SOCKET', file: 'swarmSocket' },
  allowLinkLocalTargets: { flag: '--allow-link-local-targets', env: 'UPSHIFT_ALLOW_LINK_LOCAL_TARGETS', file: 'allowLinkLocalTargets' },
  joinTokenTtl: { flag: '--join-token-ttl', env: 'UPSHIFT_JOIN_TOKEN_TTL', file: 'joinTokenTtl' },
  publicUrl: { flag: '--public-url', env: 'UPSHIFT_PUBLIC_URL', file: 'publicUrl' },
  autoCancelWarning: { flag: '--auto-cancel-warning', env: 'UPSHIFT_AUTO_CANCEL_WARNING', file: 'autoCancelWarning' },
} satisfies Record<string, Key>;
type KeyName = keyof typeof keys;

/** Every setting's flag, environment variable and config-file key: the sample config's test (test/packaging) checks it documents them all. */
export const serverConfigKeys: Readonly<Record<KeyName, Readonly<Key>>> = keys;

export type ServerFlags = Partial<Record<KeyName | 'config', string | undefined>>;

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`config file ${path} cannot be read: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`config file ${path} must hold a mapping of keys`);
  const known = new Set(Object.values(keys).map((k) => k.file));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new ConfigError(`config file ${path}: unknown key "${key}"; known keys: ${[...known].join(', ')}`);
  }
  return parsed as Record<string, unknown>;
}

export function loadServerConfig(flags: ServerFlags, env: NodeJS.ProcessEnv = process.env): Readonly<ServerConfig> {
  const configPath = flags.config ?? env['UPSHIFT_CONFIG'];
  const file = configPath ? readConfigFile(configPath) : {};
  const pick = (name: KeyName): { value: string | undefined; source: string } => {
    const key = keys[name];
    const flag = flags[name];
    if (flag !== undefined) return { value: flag, source: `flag ${key.flag}` };
    const fromEnv = env[key.env];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: `environment ${key.env}` };
    const fromFile = file[key.file];
    if (fromFile !== undefined && fromFile !== null) return { value: String(fromFile), source: `config file key ${key.file}` };
    return { value: undefined, source: 'default' };
  };
  const fail = (name: KeyName, source: string, message: string): never => {
    throw new ConfigError(`invalid configuration: ${keys[name].file} (${source}): ${message}`);
  };

  const host = pick('host');
  const hostValue = host.value ?? serverDefaults.host;
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(hostValue)) fail('host', host.source, `"${hostValue}" is not a host name or address`);

  const port = pick('port');
  const portValue = port.value === undefined ? serverDefaults.port : Number(port.value);
  if (!Number.isInteger(portValue) || portValue < 0 || portValue > 65535)
    fail('port', port.source, `must be a port number from 0 to 65535, got "${port.value}"`);

  const dataDir = resolve(pick('dataDir').value ?? serverDefaults.dataDir);

  const database = pick('database');
  const databaseValue = database.value ?? resolve(dataDir, 'upshift.db');
  if (database.value !== undefined && /^[a-z]+:\/\//.test(database.value) && !/^postgres(ql)?:\/\//.test(database.value)) {
    fail('database', database.source, 'must be a postgres:// URL or a SQLite file path');
  }

  const ttl = pick('pausedTtl');
  const ttlMs = parseDuration(ttl.value ?? serverDefaults.pausedTtl);
  if (ttlMs === undefined) fail('pausedTtl', ttl.source, `"${ttl.value}" is not a duration such as 500ms, 3s, 10m or 15d`);

  const inv = pick('inventoryInterval');
  const invMs = parseDuration(inv.value ?? serverDefaults.inventoryInterval);
  if (invMs === undefined) fail('inventoryInterval', inv.source, `"${inv.value}" is not a duration such as 15s`);

  const level = pick('logLevel');
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  const levelValue = level.value ?? serverDefaults.logLevel;
  if (!levels.includes(levelValue)) fail('logLevel', level.source, `must be one of ${levels.join(', ')}`);

  const catalog = pick('catalog').value;

  const lease = pick('leaseTtl');
  const leaseMs = parseDuration(lease.value ?? serverDefaults.leaseTtl);
  if (leaseMs === undefined || leaseMs < 600)
    fail('leaseTtl', lease.source, `"${lease.value}" is not a duration of at least 600ms, such as 15s`);

  const beat = pick('agentHeartbeat');
  const beatMs = parseDuration(beat.value ?? serverDefaults.agentHeartbeat);
  if (beatMs === undefined || beatMs < 1000 || beatMs > 300_000 || beatMs % 1000 !== 0)
    fail('agentHeartbeat', beat.source, `"${beat.value}" is not a whole number of seconds from 1s to 5m, such as 10s`);

  const taskTimeout = pick('agentTaskTimeout');
  const taskTimeoutMs = parseDuration(taskTimeout.value ?? serverDefaults.agentTaskTimeout);
  if (taskTimeoutMs === undefined || taskTimeoutMs < 10_000)
    fail('agentTaskTimeout', taskTimeout.source, `"${taskTimeout.value}" is not a duration of at least 10s, such as 30m`);

  const limit = pick('signInLimit');
  const limitValue = limit.value === undefined ? serverDefaults.signInLimit : Number(limit.value);
  if (!Number.isInteger(limitValue) || limitValue < 1)
    fail('signInLimit', limit.source, `must be a whole number of at least 1, got "${limit.value}"`);

  const cert = pick('tlsCert');
  const key = pick('tlsKey');
  if ((cert.value === undefined) !== (key.value === undefined)) {
    fail(
      cert.value === undefined ? 'tlsCert' : 'tlsKey',
      cert.value === undefined ? cert.source : key.source,
      'tlsCert and tlsKey go together: give both or neither',
    );
  }

  const proxies = pick('trustedProxies');
  const proxyList = (proxies.value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  for (const entry of proxyList) {
    if (!isAddressOrCidr(entry))
      fail('trustedProxies', proxies.source, `"${entry}" is not an IP address or CIDR range such as 10.0.0.0/8 (comma-separated)`);
  }

  const socket = pick('swarmSocket');
  if (socket.value !== undefined && !/^\/[A-Za-z0-9._/-]{1,200}$/.test(socket.value))
    fail('swarmSocket', socket.source, `"${socket.value}" is not an absolute socket path such as /var/run/docker.sock`);

  const linkLocal = pick('allowLinkLocalTargets');
  const linkLocalValue = linkLocal.value === undefined ? 'false' : linkLocal.value;
  if (!['true', 'false'].includes(linkLocalValue)) fail('allowLinkLocalTargets', linkLocal.source, 'must be true or false');

  const joinTtl = pick('joinTokenTtl');
  const joinTtlMs = parseDuration(joinTtl.value ?? serverDefaults.joinTokenTtl);
  if (joinTtlMs === undefined || joinTtlMs < 60_000 || joinTtlMs > 365 * 86_400_000 || joinTtlMs % 1000 !== 0)
    fail('joinTokenTtl', joinTtl.source, `"${joinTtl.value}" is not a duration from 1m to 365d, such as 24h`);

  const publicUrl = pick('publicUrl');
  let publicUrlValue: string | null = null;
  if (publicUrl.value !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(publicUrl.value);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '')
      fail('publicUrl', publicUrl.source, `"${publicUrl.value}" is not an http:// or https:// URL such as https://upshift.example.com`);
    publicUrlValue = publicUrl.value.replace(/\/+$/, '');
  }

  const warning = pick('autoCancelWarning');
  const warningMs = parseDuration(warning.value ?? serverDefaults.autoCancelWarning);
  if (warningMs === undefined || warningMs < 1000)
    fail('autoCancelWarning', warning.source, `"${warning.value}" is not a duration of at least 1s, such as 24h`);

  return Object.freeze({
    host: hostValue,
    port: portValue,
    dataDir,
    database: databaseValue,
    pausedTtlMs: ttlMs as number,
    catalogFile: catalog ? resolve(catalog) : null,
    logLevel: levelValue as ServerConfig['logLevel'],
    inventoryIntervalMs: invMs as number,
    signInLimit: limitValue,
    agentHeartbeatSeconds: (beatMs as number) / 1000,
    agentTaskTimeoutMs: taskTimeoutMs as number,
    leaseTtlMs: leaseMs as number,
    tlsCert: cert.value ? resolve(cert.value) : null,
    tlsKey: key.value ? resolve(key.value) : null,
    trustedProxies: proxyList,
    swarmSocket: socket.value ?? null,
    allowLinkLocalTargets: linkLocalValue === 'true',
    joinTokenTtlSeconds: (joinTtlMs as number) / 1000,
    publicUrl: publicUrlValue,
    autoCancelWarningMs: warningMs as number,
  });
}
