import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { adminTokenBanner, terminalLog } from './log-format.js';
import YAML from 'yaml';
import type { Catalog } from '../domain/catalog.js';
import { defaultCatalog, mergeCatalog } from '../domain/catalog.js';
import { PRODUCT_VERSION } from '../domain/product-version.js';
import { errorMessage } from '../domain/errors.js';
import type { Clock } from '../domain/ports.js';
import { systemClock } from '../domain/ports.js';
import { HostsDriver } from '../drivers/hosts/index.js';
import { KubernetesDriver } from '../drivers/kubernetes/index.js';
import { SwarmDriver } from '../drivers/swarm/index.js';
import { SimulatedDriver } from '../drivers/simulated/index.js';
import { Engine, SecretBox } from '../engine/index.js';
import { openStoreAdapter } from '../store/dialect.js';
import { migrate } from '../store/migrate.js';
import { Store } from '../store/store.js';
import { type RouteRule, buildApp } from './app.js';
import { AccessControl, loadAdminToken } from './auth.js';
import type { ServerConfig } from './config.js';
import { ConfigError } from './config.js';
import { Metrics } from './metrics.js';
import { CHECK_RESPONSES_ENV } from './response-check.js';
import { loadAgentExecutable, loadAgentScript } from './agent-files.js';

export function loadCatalog(file: string | null): Catalog {
  if (!file) return defaultCatalog;
  let raw: unknown;
  try {
    raw = YAML.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`catalog file ${file} cannot be read: ${errorMessage(error)}`);
  }
  try {
    return mergeCatalog(defaultCatalog, raw);
  } catch (error) {
    throw new ConfigError(`catalog file ${file}: ${errorMessage(error)}`);
  }
}

/** Where the built console lives, relative to the bundle (dist/upshift.js → dist/web). */
export function defaultWebRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'web');
}

/**
 * The data dir 0700 and everything in it 0600 (directories 0700), also for a data dir
 * made by an earlier version with looser modes.
 */
export function makePrivate(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const walk = (path: string) => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return;
    if (stat.isDirectory()) {
      if ((stat.mode & 0o777) !== 0o700) chmodSync(path, 0o700);
      for (const entry of readdirSync(path)) walk(join(path, entry));
    } else if ((stat.mode & 0o777) !== 0o600) chmodSync(path, 0o600);
  };
  walk(dir);
}

/**
 * Connections the kernel holds for the server until it accepts them (Linux caps it at
 * net.core.somaxconn, 4096 by default since 5.4). Node's default of 511 overflows when
 * thousands of agents connect within seconds while the event loop is busy: the kernel
 * then drops their handshakes, and agents see connects that take seconds or time out, and
 * connection resets (docs/design.md §9).
 */
const LISTEN_BACKLOG = 4096;

export interface RunningServer {
  url: string;
  /** Every route with the role it needs (for the authorization matrix). */
  routes: RouteRule[];
  engine: Engine;
  store: Store;
  close(): Promise<void>;
}

/** Opens the database, migrates it, starts the engine and the HTTP server. */
export async function startServer(
  config: Readonly<ServerConfig>,
  options: {
    clock?: Clock;
    webRoot?: string;
    /** The agent as one JavaScript file; default dist/agent.js beside this bundle. */
    agentBundle?: string;
    /** The agent executable; default dist/agent/upshift-agent-linux-x64 beside this bundle. */
    agentExecutable?: string;
    /** Check every JSON answer against its schema (response-check.ts); default: UPSHIFT_CHECK_RESPONSES=1. */
    checkResponses?: boolean;
  } = {},
): Promise<RunningServer> {
  const logOptions = {
    level: config.logLevel,
    redact: {
      paths: ['req.headers.authorization', '*.token', '*.password', '*.secret', '*.joinSecret', 'headers.authorization'],
      censor: '[redacted]',
    },
  };
  // Lines for a person on a terminal; JSON for a log collector everywhere else.
  const logger = process.stdout.isTTY ? pino(logOptions, terminalLog(process.stdout)) : pino(logOptions);
  const catalog = loadCatalog(config.catalogFile);
  // Nothing the server writes is for other users of the host: the database holds the
  // fleet's state and sealed secrets, the data dir the key that unseals them.
  process.umask(0o077);
  makePrivate(config.dataDir);
  const admin = loadAdminToken(config.dataDir);
  const adapter = openStoreAdapter(config.database);
  const store = new Store(adapter);
  const { applied } = await migrate(adapter);
  if (applied.length > 0) logger.info({ applied, database: adapter.description }, 'database migrated');
  const clock = options.clock ?? systemClock;
  const metrics = new Metrics(store, { pausedTtlMs: config.pausedTtlMs, heartbeatMs: config.agentHeartbeatSeconds * 1000 });
  const dist = dirname(fileURLToPath(import.meta.url));
  const bundle = loadAgentScript(options.agentBundle ?? join(dist, 'agent.js'));
  // What installs and self-upgrades hand out, and whose sha256 join commands and tasks carry.
  const executable = loadAgentExecutable(options.agentExecutable ?? join(dist, 'agent', 'upshift-agent-linux-x64'));
  // The Kubernetes driver holds API clients and watches: closed with the server.
  let kubernetes: KubernetesDriver | undefined;
  // Known once the server listens; webhook deliveries start only after that.
  let listenUrl = `http://${config.host}:${config.port}`;
  const engine = new Engine({
    store,
    catalog,
    clock,
    pausedTtlMs: config.pausedTtlMs,
    autoCancelWarningMs: config.autoCancelWarningMs,
    webhooks: { publicUrl: () => config.publicUrl ?? listenUrl, allowLinkLocalTargets: config.allowLinkLocalTargets },
    secretBox: SecretBox.load(config.dataDir),
    agents: {
      heartbeatSeconds: config.agentHeartbeatSeconds,
      taskTimeoutMs: config.agentTaskTimeoutMs,
      bundleSha256: () => executable?.sha256,
      joinTokenTtlSeconds: config.joinTokenTtlSeconds,
    },
    drivers: ({ agents, secrets }) => ({
      simulated: new SimulatedDriver(catalog, clock),
      hosts: new HostsDriver(agents),
      swarm: new SwarmDriver({
        agents,
        secrets,
        clock,
        logger,
        swarmSocket: config.swarmSocket,
        allowLinkLocalTargets: config.allowLinkLocalTargets,
      }),
      kubernetes: (kubernetes = new KubernetesDriver({ secrets, clock, logger, allowLinkLocalTargets: config.allowLinkLocalTargets })),
    }),
    logger,
    observer: metrics,
    inventoryIntervalMs: config.inventoryIntervalMs,
    leaseTtlMs: config.leaseTtlMs,
    allowLinkLocalTargets: config.allowLinkLocalTargets,
  });
  await engine.start();
  const routes: RouteRule[] = [];
  const app = await buildApp(
    {
      engine,
      store,
      access: new AccessControl(store, admin.token),
      signInLimit: config.signInLimit,
      trustedProxies: config.trustedProxies,
      secureCookies: config.tlsCert !== null,
      ...(config.tlsCert && config.tlsKey ? { tls: { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } } : {}),
      metrics,
      pausedTtlMs: config.pausedTtlMs,
      logger,
      webRoot: options.webRoot ?? defaultWebRoot(),
      version: PRODUCT_VERSION,
      artifactDir: join(config.dataDir, 'artifacts'),
      bundle: () => bundle,
      executable: () => executable,
      checkResponses: options.checkResponses ?? process.env[CHECK_RESPONSES_ENV] === '1',
    },
    routes,
  );
  const address = await app.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG });
  // Listening on every address, the host's name is the best guess at one people reach.
  listenUrl = address.replace('0.0.0.0', hostname()).replace('[::]', hostname());
  logger.info(
    {
      address,
      database: adapter.description,
      pausedTtlMs: config.pausedTtlMs,
      agentExecutable: executable
        ? { version: executable.version, arch: executable.arch, node: executable.node, sha256: executable.sha256 }
        : null,
    },
    'upshift server listening',
  );
  if (admin.generated) {
    // Printed once, on a terminal only, never through the logger: under a service manager
    // stdout is a log, and a secret has no place there; it is in the file either way.
    if (process.stdout.isTTY) process.stdout.write(adminTokenBanner(admin.token, admin.file));
    else logger.info({ file: admin.file }, 'admin token generated and saved in the data dir (not printed: stdout is not a terminal)');
  }
  let closing: Promise<void> | undefined;
  return {
    url: address.replace('0.0.0.0', '127.0.0.1'),
    routes,
    engine,
    store,
    close() {
      closing ??= (async () => {
        await app.close();
        await engine.stop();
        await kubernetes?.close();
        await adapter.close();
      })();
      return closing;
    },
  };
}
