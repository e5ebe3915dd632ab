import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Catalog } from '../../src/domain/catalog.js';
import { defaultCatalog, mergeCatalog } from '../../src/domain/catalog.js';
import type { ClusterRecord } from '../../src/domain/model.js';
import type { Clock, SecretReader } from '../../src/domain/ports.js';
import type { KubernetesDriverOptions } from '../../src/drivers/kubernetes/index.js';
import { KubernetesDriver } from '../../src/drivers/kubernetes/index.js';
import { Engine } from '../../src/engine/index.js';
import { SecretBox, SecretVault } from '../../src/engine/secrets.js';
import { openStoreAdapter } from '../../src/store/dialect.js';
import { migrate } from '../../src/store/migrate.js';
import { Store } from '../../src/store/store.js';
import { stringify } from 'yaml';
import { JumpClock } from './clock.js';
import { FakeKubeApiServer } from './fake-kube-apiserver.js';

export const GVISOR_INSTALLER = 'registry.example/upshift/gvisor-installer:20240729';

/** The built-in catalog plus an installer image for the newest sandboxed runtime, as a user catalog file adds it. */
export const kubeCatalog: Catalog = mergeCatalog(defaultCatalog, {
  'sandboxed-runtime': [
    {
      version: '20240729',
      notes: 'gVisor runsc, installed by an executor pod',
      artifacts: [
        { method: 'apt', file: 'runsc', packageVersion: '0.0~20240729.0-1~bpo12+1' },
        { method: 'image', image: GVISOR_INSTALLER, command: ['/install.sh'] },
      ],
    },
  ],
});

/** Fast settings for tests: the fake kubelet finishes a pod in a few hundred ms. */
export const fastTuning: Omit<KubernetesDriverOptions, 'secrets' | 'clock'> = {
  pollIntervalMs: 40,
  drainRetryMs: 60,
  requestTimeoutMs: 5000,
  stuckGraceMs: 300,
  logTailMs: 500,
};

/** Secrets held in memory, for tests of the driver alone. */
export class MemorySecrets implements SecretReader {
  readonly values = new Map<string, string>();
  set(clusterId: string, name: string, value: string): void {
    this.values.set(`${clusterId}/${name}`, value);
  }
  async read(clusterId: string, name: string): Promise<string | undefined> {
    return this.values.get(`${clusterId}/${name}`);
  }
}

/** A cluster record as the engine would store it, with the config validated by the driver. */
export function kubeClusterRecord(driver: KubernetesDriver, id: string, raw: Record<string, unknown> = {}): ClusterRecord {
  return {
    id,
    name: id,
    kind: 'kubernetes',
    config: driver.validateConfig(raw),
    unavailableReason: null,
    window: null,
    createdAt: new Date().toISOString(),
  };
}

export interface KubeTestEngine {
  engine: Engine;
  store: Store;
  driver: KubernetesDriver;
  clock: JumpClock;
  box: SecretBox;
  /** The SQLite file (and its -wal), to check what is at rest. */
  databaseFile: string;
  close(): Promise<void>;
}

/**
 * The real engine and store on SQLite, with the Kubernetes driver reading its
 * kubeconfig through a SecretVault, as `upshift server` wires them.
 */
export async function createKubeTestEngine(
  tuning: Omit<KubernetesDriverOptions, 'secrets' | 'clock'> = fastTuning,
): Promise<KubeTestEngine> {
  const dir = mkdtempSync(join(tmpdir(), 'upshift-kube-'));
  const databaseFile = join(dir, 'upshift.db');
  const adapter = openStoreAdapter(databaseFile);
  await migrate(adapter);
  const store = new Store(adapter);
  const clock = new JumpClock();
  const box = SecretBox.fromKey(Buffer.alloc(32, 7));
  const vault = new SecretVault(store, box);
  const driver = new KubernetesDriver({ secrets: vault, clock: clock as Clock, ...tuning });
  const engine = new Engine({
    store,
    catalog: kubeCatalog,
    clock,
    pausedTtlMs: 15 * 86_400_000,
    drivers: { kubernetes: driver },
    secretBox: box,
    inventoryIntervalMs: 0,
  });
  await engine.start();
  return {
    engine,
    store,
    driver,
    clock,
    box,
    databaseFile,
    close: async () => {
      await engine.stop();
      await driver.close();
      await adapter.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * For tests through a server process: a fake Kubernetes API server with three gVisor nodes
 * whose `w-2` executor pod fails once, and the catalog file (the installer image of the
 * newest sandboxed runtime, as an operator's catalog adds it) to pass as `--catalog`.
 */
export async function failingKubeFleet(): Promise<{ fake: FakeKubeApiServer; serverArgs: string[]; close(): Promise<void> }> {
  const fake = await FakeKubeApiServer.start();
  for (let i = 1; i <= 3; i++) fake.addNode({ name: `w-${i}`, labels: { 'upshift.io/sandboxed-runtime-version': '20221219' } });
  fake.kubelet('w-2', { outcome: 'fail', failAttempts: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'upshift-kube-catalog-'));
  const catalog = join(dir, 'catalog.yaml');
  writeFileSync(
    catalog,
    stringify({
      'sandboxed-runtime': [{ version: '20240729', artifacts: [{ method: 'image', image: GVISOR_INSTALLER, command: ['/install.sh'] }] }],
    }),
  );
  return {
    fake,
    serverArgs: ['--catalog', catalog],
    async close() {
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
