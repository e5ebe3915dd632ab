import type { Catalog } from '../domain/catalog.js';
import type { ClusterKind, Component } from '../domain/components.js';
import type { ClusterDriver, Clock } from '../domain/ports.js';
import type { Store } from '../store/store.js';
import type { AgentHub, AgentHubSettings } from './agents/index.js';
import type { SecretBox, SecretVault } from './secrets.js';
import type { DispatcherOptions } from './webhooks.js';

/** The logging calls the engine makes; pino's logger fits. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** What the engine tells the metrics layer. */
export interface EngineObserver {
  nodeTaskFinished(component: Component, result: 'succeeded' | 'failed'): void;
  batchFinished(component: Component, seconds: number): void;
}

export type DriverRegistry = Partial<Record<ClusterKind, ClusterDriver>>;

/** What the engine gives the drivers that need it: the agent hub (hosts, swarm) and the secret vault (swarm, kubernetes). */
export interface DriverServices {
  agents: AgentHub;
  secrets: SecretVault;
}

export interface EngineOptions {
  store: Store;
  /** The drivers by cluster kind; a function of the engine's services when a driver needs them. */
  drivers: DriverRegistry | ((services: DriverServices) => DriverRegistry);
  catalog: Catalog;
  clock: Clock;
  /** A paused upgrade older than this is canceled and purged. */
  pausedTtlMs: number;
  /**
   * How long before that cancel `upgrade.auto_cancel_warning` is recorded, once per paused
   * period. Default 24 h; at most half the paused TTL (a longer one is clamped to that).
   */
  autoCancelWarningMs?: number;
  /** Webhook deliveries: the public URL their console links start with, and the attempts' limits. */
  webhooks?: DispatcherOptions;
  logger?: Logger;
  observer?: EngineObserver;
  /** How many snapshots one upgrade takes at once. */
  snapshotConcurrency?: number;
  /** The key cluster secrets are sealed with; without one, a cluster with secrets cannot be created. */
  secretBox?: SecretBox;
  /** The agent protocol's settings (heartbeat, task timeout, join token lifetime, the agent bundle). */
  agents?: AgentHubSettings;
  /**
   * How long a replica's claim on an upgrade lasts without renewal; another replica takes
   * the upgrade over after that (renewed every third of it). Default 15 s.
   */
  leaseTtlMs?: number;
  /** Let health gates connect to link-local and cloud metadata addresses (--allow-link-local-targets). */
  allowLinkLocalTargets?: boolean;
  /** How often real clusters' inventories are synced; 0 turns it off. */
  inventoryIntervalMs?: number;
}

/** What the engine's parts share: the database, the time, where they log and report, and the drivers. */
export interface EngineContext {
  store: Store;
  clock: Clock;
  log: Logger;
  observer: EngineObserver | undefined;
  catalog: Catalog;
  /** The driver of a cluster's kind; NOT_SUPPORTED when this build has none. */
  driverFor(kind: ClusterKind): ClusterDriver;
}

export const isoTime = (ms: number): string => new Date(ms).toISOString();
