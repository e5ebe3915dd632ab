import { defaultCatalog } from '../../src/domain/catalog.js';
import type { ClusterDriver, Clock } from '../../src/domain/ports.js';
import { SimulatedDriver } from '../../src/drivers/simulated/index.js';
import { Engine } from '../../src/engine/index.js';
import { openStoreAdapter } from '../../src/store/dialect.js';
import { migrate } from '../../src/store/migrate.js';
import { Store } from '../../src/store/store.js';
import { JumpClock } from './clock.js';
import { type DialectName, freshPgDatabase } from './databases.js';

export interface TestEngine {
  engine: Engine;
  store: Store;
  clock: JumpClock;
  /** Stops the engine and closes the database (keeps it, for a restart). */
  stop(): Promise<void>;
  /** A new engine on the same database, as after a restart. */
  restart(): Promise<TestEngine>;
  /** Stops and drops everything. */
  close(): Promise<void>;
}

export interface TestEngineOptions {
  pausedTtlMs?: number;
  autoCancelWarningMs?: number;
  wrapDriver?: (driver: ClusterDriver) => ClusterDriver;
}

/** The real engine, store and simulated driver, on SQLite (a temp file) or a fresh PostgreSQL database. */
export async function createTestEngine(dialect: DialectName, options: TestEngineOptions = {}): Promise<TestEngine> {
  let database: string;
  let drop: () => Promise<void>;
  if (dialect === 'postgres') {
    const pg = await freshPgDatabase();
    database = pg.url;
    drop = pg.drop;
  } else {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'upshift-engine-'));
    database = join(dir, 'upshift.db');
    drop = async () => rmSync(dir, { recursive: true, force: true });
  }
  const clock = new JumpClock();
  const open = async (): Promise<TestEngine> => {
    const adapter = openStoreAdapter(database);
    await migrate(adapter);
    const store = new Store(adapter);
    const sim = new SimulatedDriver(defaultCatalog, clock as Clock);
    const engine = new Engine({
      store,
      catalog: defaultCatalog,
      clock,
      pausedTtlMs: options.pausedTtlMs ?? 15 * 86_400_000,
      ...(options.autoCancelWarningMs !== undefined ? { autoCancelWarningMs: options.autoCancelWarningMs } : {}),
      drivers: { simulated: options.wrapDriver ? options.wrapDriver(sim) : sim },
      inventoryIntervalMs: 0,
    });
    await engine.start();
    const stop = async () => {
      await engine.stop();
      await adapter.close();
    };
    return {
      engine,
      store,
      clock,
      stop,
      restart: async () => {
        await stop();
        return open();
      },
      close: async () => {
        await stop();
        await drop();
      },
    };
  };
  return open();
}

/** Polls until `check` returns a value, or fails after `ms`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false>, ms = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
