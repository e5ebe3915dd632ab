import type { Catalog } from '../domain/catalog.js';
import type { ClusterKind, Component } from '../domain/components.js';
import type { ClusterDriver, Clock } from '../domain/ports.js';
import type { Store } from '../store/store.js';

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

export interface EngineOptions {
  store: Store;
  drivers: DriverRegistry;
  catalog: Catalog;
  clock: Clock;
  /** A paused upgrade older than this is canceled and purged. */
  pausedTtlMs: number;
  logger?: Logger;
  observer?: EngineObserver;
  /** How many snapshots one upgrade takes at once. */
  snapshotConcurrency?: number;
  /** Encrypts a cluster secret for storage (SecretVault.seal). */
  sealSecret?: (plaintext: string) => string;
  /**
   * How long a replica's claim on an upgrade lasts without renewal; another replica takes
   * the upgrade over after that (renewed every third of it). Default 15 s.
   */
  leaseTtlMs?: number;
  /** How often real clusters' inventories are synced; 0 turns it off. */
  inventoryIntervalMs?: number;
}
