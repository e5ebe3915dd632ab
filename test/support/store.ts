import { afterAll, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '../../src/domain/ids.js';
import type { ClusterRecord, NodeRecord, NodeTaskRecord, UpgradeRecord } from '../../src/domain/model.js';
import { type StoreAdapter, openStoreAdapter } from '../../src/store/dialect.js';
import { migrate } from '../../src/store/migrate.js';
import { Store } from '../../src/store/store.js';
import { type DialectName, freshPgDatabase } from './databases.js';

export interface TestStore {
  store: Store;
  adapter: StoreAdapter;
  /** Where the database is (a SQLite file or a PostgreSQL URL), to open it again. */
  database: string;
  close(): Promise<void>;
}

/** A migrated store on a database of its own: a temp SQLite file, or a fresh PostgreSQL database. */
export async function openTestStore(dialect: DialectName, options: { icuLocale?: 'en-US'; migrated?: boolean } = {}): Promise<TestStore> {
  let database: string;
  let drop: () => Promise<void>;
  if (dialect === 'postgres') {
    const pg = await freshPgDatabase(options.icuLocale ? { icuLocale: options.icuLocale } : {});
    database = pg.url;
    drop = pg.drop;
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'upshift-store-'));
    database = join(dir, 'upshift.db');
    drop = async () => rmSync(dir, { recursive: true, force: true });
  }
  const adapter = openStoreAdapter(database);
  if (options.migrated !== false) await migrate(adapter);
  return {
    store: new Store(adapter),
    adapter,
    database,
    close: async () => {
      await adapter.close();
      await drop();
    },
  };
}

/** A simulated cluster's record, stored. */
export async function addCluster(store: Store, name: string): Promise<ClusterRecord> {
  const cluster: ClusterRecord = {
    id: newId('cl'),
    name,
    kind: 'simulated',
    config: { simulation: { nodes: 0 } },
    unavailableReason: null,
    window: null,
    createdAt: new Date().toISOString(),
  };
  await store.clusters.insert(cluster);
  return cluster;
}

/** Worker nodes of a cluster with these names, stored, running docker 20.10.24. */
export async function addNodes(store: Store, clusterId: string, names: string[]): Promise<NodeRecord[]> {
  const createdAt = new Date().toISOString();
  const nodes: NodeRecord[] = names.map((name) => ({
    id: newId('nd'),
    clusterId,
    name,
    role: 'worker',
    status: 'Ready',
    versions: { docker: '20.10.24' },
    distribution: null,
    createdAt,
  }));
  await store.nodes.insert(nodes);
  return nodes;
}

/** A docker upgrade of these nodes, Upgrading, with one pending task per node in the given order; stored. */
export async function addUpgrade(
  store: Store,
  clusterId: string,
  nodes: NodeRecord[],
  overrides: Partial<UpgradeRecord> = {},
): Promise<{ upgrade: UpgradeRecord; tasks: NodeTaskRecord[] }> {
  const createdAt = new Date().toISOString();
  const upgrade: UpgradeRecord = {
    id: newId('upg'),
    clusterId,
    component: 'docker',
    toVersion: '26.1.5',
    state: 'Upgrading',
    snapshot: 'none',
    policy: { maxBatchPercent: 10, soakSeconds: 0 },
    total: nodes.length,
    cap: Math.max(1, Math.floor(nodes.length / 10)),
    rampStart: 0,
    pauseReason: null,
    endReason: null,
    createdBy: 'tester',
    createdAt,
    pausedAt: null,
    finishedAt: null,
    nextBatchAt: null,
    ...overrides,
  };
  const tasks: NodeTaskRecord[] = nodes.map((n) => ({
    id: newId('nt'),
    upgradeId: upgrade.id,
    nodeId: n.id,
    nodeName: n.name,
    role: n.role,
    state: 'pending',
    batchIndex: null,
    attempt: 0,
    startedAt: null,
    finishedAt: null,
    error: null,
    fromVersion: n.versions.docker ?? null,
    toVersion: upgrade.toVersion,
  }));
  await store.tx(async (t) => {
    await t.upgrades.insert(upgrade);
    await t.upgrades.insertTasks(tasks.map((task, sortKey) => ({ ...task, sortKey })));
  });
  return { upgrade, tasks };
}

/**
 * A store of its own for one `describe` block: opened before its tests, closed and dropped
 * after them. Read `.store` (or `.t`) inside the tests.
 */
export function storeForSuite(
  dialect: DialectName,
  options: { icuLocale?: 'en-US' } = {},
): { readonly store: Store; readonly t: TestStore } {
  let opened: TestStore | undefined;
  beforeAll(async () => {
    opened = await openTestStore(dialect, options);
  });
  afterAll(async () => opened?.close());
  return {
    get t() {
      if (!opened) throw new Error('the store opens before the suite’s tests');
      return opened;
    },
    get store() {
      return this.t.store;
    },
  };
}
