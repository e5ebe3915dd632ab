import type { SnapshotMode, UpgradePolicy } from './model.js';

/**
 * Every default Upshift applies when the user says nothing, written once (as pg-boss keeps
 * its job options' defaults in one object): the code that applies a default and the text
 * that announces it (the API's schema descriptions, `--help`, the console's forms) both
 * read it here, so the two cannot drift apart.
 */

/** An upgrade's batch policy when the request leaves it out, and what a request may ask for. */
export const upgradePolicy = {
  defaults: { maxBatchPercent: 10, soakSeconds: 0 } satisfies UpgradePolicy,
  bounds: {
    /** Largest batch, in percent of the nodes to upgrade. */
    maxBatchPercent: { min: 1, max: 100 },
    /** Wait after each batch before the next one starts, in seconds (a day at most). */
    soakSeconds: { min: 0, max: 86_400 },
  },
} as const;

/** Snapshots are taken only when asked for. */
export const defaultSnapshotMode: SnapshotMode = 'none';

/**
 * `upshift server`'s settings when neither flag, environment nor config file sets them.
 * Durations are written as a user would write them, so that `--help` shows them as they are.
 */
export const serverDefaults = {
  host: '127.0.0.1',
  port: 8420,
  dataDir: './.upshift',
  pausedTtl: '15d',
  inventoryInterval: '15s',
  leaseTtl: '15s',
  agentHeartbeat: '10s',
  agentTaskTimeout: '30m',
  signInLimit: 20,
  joinTokenTtl: '24h',
  autoCancelWarning: '24h',
  logLevel: 'info',
} as const;

/** Where the CLI finds a server when no context, flag or environment names one: the server's own default address. */
export const defaultServerUrl = `http://${serverDefaults.host}:${serverDefaults.port}`;

/** The agent's settings when its flags and config file leave them out (the server's install script uses the same data dir). */
export const agentDefaults = {
  dataDir: '/var/lib/upshift-agent',
  dockerSocket: '/var/run/docker.sock',
} as const;
