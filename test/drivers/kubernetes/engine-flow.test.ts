import { existsSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { UpshiftError } from '../../../src/domain/errors.js';
import type { UpgradeRecord } from '../../../src/domain/model.js';
import { clusterView } from '../../../src/server/views.js';
import { waitFor } from '../../support/engine.js';
import { FakeKubeApiServer } from '../../support/fake-kube-apiserver.js';
import { GVISOR_INSTALLER, type KubeTestEngine, createKubeTestEngine, kubeCatalog } from '../../support/kube-engine.js';

const LABEL = 'upshift.io/sandboxed-runtime-version';
const NS = 'runtime-upgrade';

let fake: FakeKubeApiServer;
let t: KubeTestEngine;

beforeEach(async () => {
  fake = await FakeKubeApiServer.start({ enforcePodSecurity: true });
  t = await createKubeTestEngine();
});

afterEach(async () => {
  await t.close();
  await fake.close();
});

async function waitState(id: string, states: string[], ms = 30_000): Promise<UpgradeRecord> {
  return waitFor(
    async () => {
      const u = await t.store.upgrades.get(id);
      return u && states.includes(u.state) ? u : undefined;
    },
    ms,
    `upgrade ${id} to reach ${states.join('/')}`,
  );
}

async function refused(p: Promise<unknown>): Promise<UpshiftError> {
  try {
    await p;
  } catch (error) {
    return error as UpshiftError;
  }
  throw new Error('expected a refusal');
}

async function createCluster() {
  const cluster = await t.engine.fleet.createCluster({ name: 'prod', kind: 'kubernetes', kubeconfig: fake.kubeconfig() }, 'admin');
  await t.engine.inventory.sync(cluster);
  return cluster;
}

describe('kubernetes cluster through the real engine', () => {
  it('upgrades the sandboxed runtime in batches; a failed pod auto-pauses and blocks resume until it is deleted', async () => {
    for (let i = 1; i <= 5; i++) fake.addNode({ name: `w-${i}`, labels: { [LABEL]: '20221219' } });
    fake.addNode({ name: 'plain-1' });
    fake.kubelet('w-3', { outcome: 'fail', failAttempts: 1 });

    const cluster = await createCluster();
    // The kubeconfig is a secret: not in the cluster record, its config, the API view, nor in clear in the database.
    expect(cluster.config).toEqual({
      namespace: NS,
      runtimeLabel: LABEL,
      drain: { enabled: false, timeoutSeconds: 300 },
      taskTimeoutSeconds: 1800,
      verifyTimeoutSeconds: 120,
      imagePullSecrets: [],
    });
    const stored = await t.store.clusters.get(cluster.id);
    const listed = await t.store.clusters.list();
    const view = clusterView(kubeCatalog, stored!, await t.store.nodes.versionGroups(cluster.id), undefined);
    for (const read of [cluster, stored, listed, view]) {
      const text = JSON.stringify(read);
      expect(text).not.toContain(fake.token);
      expect(text).not.toContain('certificate-authority-data');
      expect(text).not.toContain('kubeconfig');
    }
    const sealed = await t.store.clusters.getSecret(cluster.id, 'kubeconfig');
    expect(sealed).toMatch(/^v1:/);
    expect(t.box.open(sealed!)).toBe(fake.kubeconfig());
    await t.store.clusters.list();
    for (const file of [t.databaseFile, `${t.databaseFile}-wal`]) {
      if (existsSync(file)) expect(readFileSync(file).includes(Buffer.from(fake.token))).toBe(false);
    }

    // Inventory from the Node API.
    const nodes = await t.store.nodes.list(cluster.id);
    expect(nodes.map((n) => [n.name, n.versions['sandboxed-runtime'] ?? null]).sort()).toEqual([
      ['plain-1', null],
      ['w-1', '20221219'],
      ['w-2', '20221219'],
      ['w-3', '20221219'],
      ['w-4', '20221219'],
      ['w-5', '20221219'],
    ]);

    // Plan, with the manifests an operator reviews.
    const request = { component: 'sandboxed-runtime', policy: { maxBatchPercent: 40 } };
    const plan = await t.engine.upgrades.plan(cluster.id, request, { manifests: true });
    expect(plan.batches).toEqual([['w-1'], ['w-2', 'w-3'], ['w-4', 'w-5']]);
    const manifests = plan.manifests as Array<Record<string, any>>;
    expect(manifests.map((m) => m['kind'])).toEqual(['Namespace', 'Pod', 'Pod', 'Pod', 'Pod', 'Pod']);
    expect(manifests.slice(1).map((m) => m['spec']['nodeName'])).toEqual(['w-1', 'w-2', 'w-3', 'w-4', 'w-5']);
    expect(manifests[1]!['spec']['containers'][0]['image']).toBe(GVISOR_INSTALLER);
    expect(fake.requests.filter((r) => r.method !== 'GET')).toHaveLength(0);

    // Start: w-1 alone, then w-2 and w-3 together; w-3's pod fails and the upgrade pauses itself.
    const upgrade = await t.engine.upgrades.start(cluster.id, request, 'admin');
    const paused = await waitState(upgrade.id, ['Paused']);
    expect(paused.pauseReason).toMatchObject({ kind: 'error', message: expect.stringMatching(/w-3: executor pod .* failed/) });
    await waitFor(async () => (await t.store.upgrades.taskCounts(upgrade.id)).running === 0, 10_000, 'the batch to finish');
    const tasks = await t.store.upgrades.listTasks(upgrade.id);
    const byName = Object.fromEntries(tasks.map((task) => [task.nodeName, task]));
    expect(byName['w-1']?.state).toBe('succeeded');
    expect(byName['w-2']?.state).toBe('succeeded');
    expect(byName['w-3']?.state).toBe('failed');
    expect(byName['w-4']?.state).toBe('pending');
    expect(byName['w-3']?.error).toMatch(/the installer exited with code 1.*left in place for troubleshooting/);
    const podsAfterFailure = fake.listPods(NS);
    expect(podsAfterFailure.map((p) => [p['metadata']['annotations']['upshift.io/node-name'], p['status']['phase']])).toEqual([
      ['w-3', 'Failed'],
    ]);
    expect(podsAfterFailure[0]!['metadata']['labels']['upshift.io/upgrade-id']).toBe(upgrade.id);

    // The node log holds the installer's output, streamed from the pod.
    const log = (await t.store.logs.read(byName['w-3']!.id)).map((l) => l.line);
    expect(log).toContain('installer: sandboxed-runtime 20221219 -> 20240729 on node w-3');
    expect(log).toContain('error: sandboxed-runtime 20240729 did not start: exec format error');

    // An operator's own pod in the namespace must survive everything that follows.
    fake.addPod({ namespace: NS, name: 'operator-debug', nodeName: 'w-3', owner: null });

    // Resume is refused while the failed pod exists.
    const refusal = await refused(t.engine.upgrades.command(upgrade.id, { type: 'resume' }, 'admin'));
    expect(refusal.code).toBe('FAILED_PODS_PRESENT');
    expect(fake.pod(NS, podsAfterFailure[0]!['metadata']['name'])).toBeDefined();
    expect((await t.store.upgrades.get(upgrade.id))?.state).toBe('Paused');

    // Resume with deleteFailedPods: the failed pod goes, the upgrade completes.
    const resumed = await t.engine.upgrades.command(upgrade.id, { type: 'resume', deleteFailedPods: true }, 'admin');
    expect(resumed.state).toBe('Upgrading');
    const done = await waitState(upgrade.id, ['Completed']);
    expect(done.finishedAt).not.toBeNull();
    expect(fake.listPods(NS).map((p) => p['metadata']['name'])).toEqual(['operator-debug']);
    const deletes = fake.requestsMatching('DELETE', /\/pods\//).map((r) => r.path.split('/').pop());
    expect(deletes).toContain(podsAfterFailure[0]!['metadata']['name']);
    expect(deletes).not.toContain('operator-debug');
    // One executor pod per node task attempt: five first attempts and w-3's retry.
    expect(fake.requestsMatching('POST', /\/pods$/)).toHaveLength(6);

    const after = await t.store.nodes.list(cluster.id);
    expect(after.filter((n) => n.name.startsWith('w-')).every((n) => n.versions['sandboxed-runtime'] === '20240729')).toBe(true);
    expect(after.find((n) => n.name === 'plain-1')?.versions['sandboxed-runtime']).toBeUndefined();
    // The cluster itself reports the new versions at the next inventory sync.
    await t.engine.inventory.sync(cluster);
    expect((await t.store.nodes.list(cluster.id)).filter((n) => n.versions['sandboxed-runtime'] === '20240729')).toHaveLength(5);

    const types = (await t.store.events.list({ upgradeId: upgrade.id, limit: 1000 })).map((e) => e.type).reverse();
    expect(types).toEqual(
      expect.arrayContaining(['upgrade.started', 'node.failed', 'upgrade.auto_paused', 'upgrade.resumed', 'upgrade.completed']),
    );
    expect(types.indexOf('upgrade.auto_paused')).toBeLessThan(types.indexOf('upgrade.resumed'));
  });

  it('stops at SnapshotFailed when snapshots are asked for, and goes on when the operator continues', async () => {
    fake.addNode({ name: 'w-1', labels: { [LABEL]: '20221219' } });
    const cluster = await createCluster();
    const upgrade = await t.engine.upgrades.start(cluster.id, { component: 'sandboxed-runtime', snapshot: 'before' }, 'admin');
    await waitState(upgrade.id, ['SnapshotFailed']);
    const events = await t.store.events.list({ upgradeId: upgrade.id, type: 'snapshot.failed', limit: 10 });
    expect(events[0]?.message).toMatch(/snapshots are not supported for kubernetes clusters; take volume snapshots with your CSI driver/);
    await t.engine.upgrades.command(upgrade.id, { type: 'continue' }, 'admin');
    await waitState(upgrade.id, ['Completed']);
  });

  it('marks the cluster unavailable when its API server cannot be reached, and available again after', async () => {
    fake.addNode({ name: 'w-1', labels: { [LABEL]: '20221219' } });
    const cluster = await createCluster();
    await fake.stopListening();
    const reason = await waitFor(async () => {
      await t.engine.inventory.sync(cluster);
      return (await t.store.clusters.get(cluster.id))?.unavailableReason ?? undefined;
    }, 5000);
    expect(reason).toMatch(/^connection refused by 127\.0\.0\.1:\d+$/);
    await fake.restart();
    await t.engine.inventory.sync(cluster);
    expect((await t.store.clusters.get(cluster.id))?.unavailableReason).toBeNull();
  });

  it('refuses a create request without a kubeconfig or with unknown fields', async () => {
    await expect(t.engine.fleet.createCluster({ name: 'x', kind: 'kubernetes' }, 'admin')).rejects.toThrow(/kubeconfig is required/);
    await expect(
      t.engine.fleet.createCluster({ name: 'x', kind: 'kubernetes', kubeconfig: fake.kubeconfig(), namespaces: 'a' }, 'admin'),
    ).rejects.toThrow(/unknown field "namespaces"/);
    expect(await t.store.clusters.list()).toHaveLength(0);
  });
});
