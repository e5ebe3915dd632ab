import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../../src/domain/catalog.js';
import type { NodeRecord } from '../../../src/domain/model.js';
import type { NodeTaskSpec, TaskContext } from '../../../src/domain/ports.js';
import { systemClock } from '../../../src/domain/ports.js';
import { KubernetesDriver } from '../../../src/drivers/kubernetes/index.js';
import { executorPodName } from '../../../src/drivers/kubernetes/manifests.js';
import { FakeKubeApiServer } from '../../support/fake-kube-apiserver.js';
import { GVISOR_INSTALLER, MemorySecrets, fastTuning, kubeCatalog, kubeClusterRecord } from '../../support/kube-engine.js';
import { waitFor } from '../../support/engine.js';

const LABEL = 'upshift.io/sandboxed-runtime-version';
const NS = 'runtime-upgrade';

let fake: FakeKubeApiServer;
let secrets: MemorySecrets;
let driver: KubernetesDriver;

beforeEach(async () => {
  fake = await FakeKubeApiServer.start({ enforcePodSecurity: true });
  secrets = new MemorySecrets();
  driver = new KubernetesDriver({ secrets, clock: systemClock, ...fastTuning });
});

afterEach(async () => {
  await driver.close();
  await fake.close();
});

function cluster(raw: Record<string, unknown> = {}, id = 'cl_aaaaaaaaaaaaaaaa') {
  secrets.set(id, 'kubeconfig', fake.kubeconfig());
  return kubeClusterRecord(driver, id, raw);
}

function nodeRecord(name: string, versions: NodeRecord['versions'] = { 'sandboxed-runtime': '20221219' }): NodeRecord {
  return {
    id: `nd_${name
      .replace(/[^a-z0-9]/g, '')
      .padEnd(16, '0')
      .slice(0, 16)}`,
    clusterId: 'cl',
    name,
    role: 'worker',
    status: 'Ready',
    versions,
    distribution: null,
    createdAt: '',
  };
}

function spec(node: NodeRecord, over: Partial<NodeTaskSpec> = {}): NodeTaskSpec {
  return {
    taskKey: 'nt_aaaaaaaaaaaaaaaa.1',
    nodeTaskId: 'nt_aaaaaaaaaaaaaaaa',
    upgradeId: 'upg_bbbbbbbbbbbbbbbb',
    node,
    component: 'sandboxed-runtime',
    fromVersion: node.versions['sandboxed-runtime'] ?? null,
    toVersion: '20240729',
    attempt: 1,
    startedAt: new Date().toISOString(),
    catalog: kubeCatalog,
    ...over,
  };
}

function context(signal: AbortSignal = new AbortController().signal): TaskContext & { lines: string[] } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line), logged: () => Promise.resolve(), signal };
}

function addGvisorNode(name: string, extra: Parameters<FakeKubeApiServer['addNode']>[0] = { name }) {
  return fake.addNode({ ...extra, name, labels: { [LABEL]: '20221219', ...(extra.labels ?? {}) } });
}

describe('kubernetes driver: configuration and secrets', () => {
  it('fills in defaults and names the offending field', () => {
    expect(driver.validateConfig({})).toEqual({
      namespace: 'runtime-upgrade',
      runtimeLabel: LABEL,
      drain: { enabled: false, timeoutSeconds: 300 },
      taskTimeoutSeconds: 1800,
      verifyTimeoutSeconds: 120,
      imagePullSecrets: [],
    });
    expect(() => driver.validateConfig({ namespace: 'Runtime_Upgrade' })).toThrow(/namespace must be a DNS label/);
    expect(() => driver.validateConfig({ drain: { enabled: 'yes' } })).toThrow(/drain.enabled/);
    expect(() => driver.validateConfig({ drain: { timeout: 3 } })).toThrow(/drain.timeout is not a known field/);
    expect(() => driver.validateConfig({ runtimeLabel: 'not a label' })).toThrow(/runtimeLabel/);
    expect(() => driver.validateConfig({ taskTimeoutSeconds: 0 })).toThrow(/taskTimeoutSeconds/);
    expect(() => driver.validateConfig({ simulation: {} })).toThrow(/unknown field "simulation"/);
  });

  it('requires a kubeconfig with a current context and a server', () => {
    expect(driver.secretFields).toEqual(['kubeconfig']);
    expect(() => driver.validateSecrets({})).toThrow(/kubeconfig is required/);
    expect(() => driver.validateSecrets({ kubeconfig: 'apiVersion: v1\nkind: Config\nclusters: []\n' })).toThrow(/current-context/);
    expect(() =>
      driver.validateSecrets({ kubeconfig: fake.kubeconfig().replace(/current-context: .*/, 'current-context: other') }),
    ).toThrow(/kubeconfig/);
    expect(() => driver.validateSecrets({ kubeconfig: fake.kubeconfig() })).not.toThrow();
  });

  it('refuses snapshots with a message that says what to do instead', async () => {
    const outcome = await driver.snapshotNode();
    expect(outcome).toEqual({ result: 'failed', error: expect.stringMatching(/not supported for kubernetes clusters.*CSI driver/) });
  });
});

describe('kubernetes driver: inventory', () => {
  it('reports nodes with role, readiness and versions from the Node API', async () => {
    fake.addNode({ name: 'cp-1', controlPlane: true, runtime: 'containerd://1.7.24' });
    addGvisorNode('worker-1');
    fake.addNode({ name: 'worker-2', runtime: 'docker://20.10.24', ready: false });
    const result = await driver.inventory(cluster(), new AbortController().signal);
    expect(result.reachable).toBe(true);
    if (!result.reachable) return;
    expect(result.nodes.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'cp-1', role: 'manager', status: 'Ready', versions: { containerd: '1.7.24' } },
      { name: 'worker-1', role: 'worker', status: 'Ready', versions: { containerd: '1.6.20', 'sandboxed-runtime': '20221219' } },
      { name: 'worker-2', role: 'worker', status: 'NotReady', versions: { docker: '20.10.24' } },
    ]);
  });

  it('honours a configured runtime label', async () => {
    fake.addNode({ name: 'n1', labels: { 'feature.node.kubernetes.io/runsc': '20240729' } });
    const result = await driver.inventory(cluster({ runtimeLabel: 'feature.node.kubernetes.io/runsc' }), new AbortController().signal);
    expect(result.reachable && result.nodes[0]?.versions).toEqual({ containerd: '1.6.20', 'sandboxed-runtime': '20240729' });
  });

  it('says why when the API server cannot be reached or refuses the credentials', async () => {
    fake.addNode({ name: 'n1' });
    const c = cluster();
    secrets.set(c.id, 'kubeconfig', fake.kubeconfig({ token: 'wrong' }));
    const refused = await driver.inventory(c, new AbortController().signal);
    expect(refused).toEqual({
      reachable: false,
      reason: expect.stringMatching(
        /^the Kubernetes API at 127\.0\.0\.1:\d+ answered 401 Unauthorized to GET \/api\/v1\/nodes \(the kubeconfig credentials were refused/,
      ),
    });
    secrets.set(c.id, 'kubeconfig', fake.kubeconfig());
    expect((await driver.inventory(c, new AbortController().signal)).reachable).toBe(true);
    await fake.stopListening();
    // The watch notices the closed connection at once; the next inventory lists and fails.
    const down = await waitFor(async () => {
      const r = await driver.inventory(c, new AbortController().signal);
      return r.reachable ? undefined : r;
    }, 5000);
    expect(down).toEqual({ reachable: false, reason: `connection refused by ${new URL(fake.url).host}` });
    const none = await driver.inventory({ ...c, id: 'cl_nokubeconfig000' }, new AbortController().signal);
    expect(none).toEqual({ reachable: false, reason: expect.stringMatching(/no kubeconfig is stored/) });
  });

  it('keeps the inventory current with a watch, without listing again', async () => {
    addGvisorNode('n1');
    const c = cluster();
    await driver.inventory(c, new AbortController().signal);
    await waitFor(async () => driver.nodeWatch(c.id)?.watching, 5000, 'the node watch');
    const lists = () => fake.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/nodes' && r.query['watch'] !== 'true').length;
    expect(lists()).toBe(1);
    fake.updateNode('n1', (n) => (n['metadata']['labels'][LABEL] = '20240729'));
    addGvisorNode('n2');
    await waitFor(async () => {
      const r = await driver.inventory(c, new AbortController().signal);
      return r.reachable && r.nodes.length === 2 && r.nodes.find((n) => n.name === 'n1')?.versions['sandboxed-runtime'] === '20240729';
    }, 5000);
    fake.deleteNode('n2');
    await waitFor(async () => {
      const r = await driver.inventory(c, new AbortController().signal);
      return r.reachable && r.nodes.length === 1;
    }, 5000);
    expect(lists()).toBe(1);
    const watches = fake.requests.filter((r) => r.query['watch'] === 'true');
    expect(watches[0]?.query).toMatchObject({
      resourceVersion: expect.stringMatching(/^\d+$/),
      timeoutSeconds: '300',
      allowWatchBookmarks: 'false',
    });
  });

  it('settles to one watch and no further lists when two lists overlap a live watch', async () => {
    addGvisorNode('n1');
    const c = cluster();
    await driver.inventory(c, new AbortController().signal);
    await waitFor(async () => driver.nodeWatch(c.id)?.watching && fake.openWatches === 1, 5000, 'the node watch');
    const watch = driver.nodeWatch(c.id)!;
    const lists = () => fake.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/nodes' && r.query['watch'] !== 'true').length;
    // Two inventory reads that both list, as when they overlap: each aborts the live watch.
    await watch.list();
    await watch.list();
    expect(lists()).toBe(3);
    await waitFor(async () => watch.watching && fake.openWatches === 1, 5000, 'the watch after the lists');
    const watchesBefore = fake.requests.filter((r) => r.query['watch'] === 'true').length;
    // The relist backoff starts at 1 s: over 3.5 s a loop would have listed three times.
    await new Promise((r) => setTimeout(r, 3500));
    expect(lists()).toBe(3);
    expect(watch.relists).toBe(3);
    expect(fake.openWatches).toBe(1);
    expect(fake.requests.filter((r) => r.query['watch'] === 'true').length).toBe(watchesBefore);
    expect(watch.watching).toBe(true);
  });

  for (const mode of ['event', 'http'] as const) {
    it(`relists when the watch's resourceVersion expired (410 Gone as ${mode === 'event' ? 'an ERROR event' : 'an HTTP status'})`, async () => {
      await fake.close();
      fake = await FakeKubeApiServer.start({ expiredWatch: mode });
      addGvisorNode('n1');
      const c = cluster();
      await driver.inventory(c, new AbortController().signal);
      await waitFor(async () => driver.nodeWatch(c.id)?.watching, 5000, 'the node watch');
      const watch = driver.nodeWatch(c.id)!;
      expect(watch.relists).toBe(1);
      // The server restarts and compacts its history; a change happens while no watch is open.
      fake.compact();
      fake.endWatches();
      addGvisorNode('n3');
      await waitFor(async () => watch.relists === 2, 5000, 'the relist after 410');
      await waitFor(async () => driver.nodeWatch(c.id)?.watching, 5000, 'the new watch');
      const r = await driver.inventory(c, new AbortController().signal);
      expect(r.reachable && r.nodes.map((n) => n.name).sort()).toEqual(['n1', 'n3']);
      const watchRequests = fake.requests.filter((q) => q.query['watch'] === 'true');
      expect(watchRequests.length).toBeGreaterThanOrEqual(3);
      // The watch after the relist starts from the new list's resourceVersion, not the expired one.
      const expired = watchRequests[1]!.query['resourceVersion'];
      expect(watchRequests.at(-1)!.query['resourceVersion']).not.toBe(expired);
    });
  }
});

describe('kubernetes driver: executor pods', () => {
  it('creates one pinned, privileged executor pod with the catalog image, streams its log and verifies the node', async () => {
    const fakeNode = addGvisorNode('worker-1', { name: 'worker-1', labels: { [LABEL]: '20221219' } });
    const c = cluster();
    const ctx = context();
    const outcome = await driver.runNodeTask(c, spec(nodeRecord('worker-1')), ctx);
    expect(outcome).toEqual({ result: 'succeeded', versions: { containerd: '1.6.20', 'sandboxed-runtime': '20240729' } });

    // The namespace was created, labelled so Pod Security Admission admits the privileged pod.
    expect(fake.namespace(NS)?.['metadata']['labels']).toMatchObject({
      'app.kubernetes.io/managed-by': 'upshift',
      'pod-security.kubernetes.io/enforce': 'privileged',
    });
    const creates = fake.requestsMatching('POST', /\/namespaces\/runtime-upgrade\/pods$/);
    expect(creates).toHaveLength(1);
    const pod = creates[0]!.body as Record<string, any>;
    const name = executorPodName('nt_aaaaaaaaaaaaaaaa.1');
    expect(name).toBe('upshift-nt-aaaaaaaaaaaaaaaa-1');
    expect(pod['metadata']).toMatchObject({
      name,
      namespace: NS,
      labels: {
        'app.kubernetes.io/managed-by': 'upshift',
        'upshift.io/upgrade-id': 'upg_bbbbbbbbbbbbbbbb',
        'upshift.io/node-id': nodeRecord('worker-1').id,
        'upshift.io/task-key': 'nt_aaaaaaaaaaaaaaaa.1',
      },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'worker-1', uid: fakeNode['metadata']['uid'] }],
    });
    expect(pod['spec']).toMatchObject({
      nodeName: 'worker-1',
      hostPID: true,
      restartPolicy: 'Never',
      activeDeadlineSeconds: 1800,
      automountServiceAccountToken: false,
      tolerations: [{ operator: 'Exists' }],
      volumes: [{ name: 'host-root', hostPath: { path: '/', type: 'Directory' } }],
    });
    const container = pod['spec']['containers'][0];
    expect(container).toMatchObject({
      name: 'executor',
      image: GVISOR_INSTALLER,
      command: ['/install.sh'],
      securityContext: { privileged: true },
      volumeMounts: [{ name: 'host-root', mountPath: '/host' }],
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
    });
    expect(container.env).toContainEqual({ name: 'UPSHIFT_TO_VERSION', value: '20240729' });
    // No secret of any kind in the spec: no token, no kubeconfig, no secret references.
    const text = JSON.stringify(pod);
    expect(text).not.toContain(fake.token);
    expect(text).not.toMatch(/secretKeyRef|secretRef|"secret"|serviceAccountName|certificate-authority/);

    // The installer's log, in order, once each.
    const installer = ctx.lines.filter((l) => l.startsWith('installer:'));
    expect(installer).toEqual([
      'installer: sandboxed-runtime 20221219 -> 20240729 on node worker-1',
      'installer: stopping sandboxed-runtime',
      'installer: installing sandboxed-runtime 20240729',
      'installer: sandboxed-runtime 20240729 installed',
    ]);
    expect(ctx.lines).toContain(`verified: node worker-1 reports Sandboxed-Container 20240729`);
    // The succeeded pod is cleaned up; the node carries the new version.
    expect(fake.pod(NS, name)).toBeUndefined();
    expect(fake.node('worker-1')?.['metadata']['labels'][LABEL]).toBe('20240729');
  });

  it('reattaches to the pod of the same task key after a restart instead of creating a second one', async () => {
    addGvisorNode('worker-1');
    const c = cluster();
    const first = new AbortController();
    const ctx1 = context(first.signal);
    const running = driver.runNodeTask(c, spec(nodeRecord('worker-1')), ctx1).catch((e: unknown) => e);
    await waitFor(async () => ctx1.lines.some((l) => l.startsWith('installer:')), 5000, 'the pod to run');
    first.abort(new Error('server shutting down'));
    expect(await running).toBeInstanceOf(Error);

    // A new driver, as after a restart of the server.
    const restarted = new KubernetesDriver({ secrets, clock: systemClock, ...fastTuning });
    const ctx2 = context();
    const outcome = await restarted.runNodeTask(c, spec(nodeRecord('worker-1')), ctx2);
    await restarted.close();
    expect(outcome.result).toBe('succeeded');
    expect(fake.requestsMatching('POST', /\/pods$/)).toHaveLength(1);
    expect(ctx2.lines[0]).toMatch(/^reattached to executor pod runtime-upgrade\/upshift-nt-aaaaaaaaaaaaaaaa-1 \(Running/);

    // Once more with the same key: the pod is gone and the node reports the target, so nothing is started.
    const ctx3 = context();
    expect((await driver.runNodeTask(c, spec(nodeRecord('worker-1')), ctx3)).result).toBe('succeeded');
    expect(fake.requestsMatching('POST', /\/pods$/)).toHaveLength(1);
    expect(ctx3.lines).toContain('node worker-1 already reports Sandboxed-Container 20240729; nothing to do');
  });

  it('leaves a failed pod in place, reports why, and deletes only failed pods of that upgrade on request', async () => {
    addGvisorNode('worker-1');
    addGvisorNode('worker-2');
    fake.kubelet('worker-1', { outcome: 'fail', exitCode: 3 });
    fake.kubelet('worker-2', { outcome: 'fail' });
    const c = cluster();
    const outcome = await driver.runNodeTask(c, spec(nodeRecord('worker-1')), context());
    expect(outcome.result).toBe('failed');
    expect(outcome.error).toMatch(
      /executor pod runtime-upgrade\/upshift-nt-aaaaaaaaaaaaaaaa-1 failed: the installer exited with code 3 \(Error\)/,
    );
    expect(outcome.error).toMatch(/last log line: error: sandboxed-runtime 20240729 did not start/);
    expect(outcome.error).toMatch(/left in place for troubleshooting/);
    const failedName = 'upshift-nt-aaaaaaaaaaaaaaaa-1';
    expect(fake.pod(NS, failedName)?.['status']['phase']).toBe('Failed');

    // A failed pod of another upgrade and a pod the operator put in the namespace stay untouched.
    const other = await driver.runNodeTask(
      c,
      spec(nodeRecord('worker-2'), {
        taskKey: 'nt_cccccccccccccccc.1',
        nodeTaskId: 'nt_cccccccccccccccc',
        upgradeId: 'upg_otherupgrade0000',
      }),
      context(),
    );
    expect(other.result).toBe('failed');
    fake.addPod({
      namespace: NS,
      name: 'operator-debug',
      nodeName: 'worker-1',
      phase: 'Failed',
      labels: { 'upshift.io/upgrade-id': 'upg_bbbbbbbbbbbbbbbb' },
    });

    expect(await driver.failedPods(c, 'upg_bbbbbbbbbbbbbbbb')).toEqual([
      { namespace: NS, name: failedName, node: 'worker-1', reason: 'Error, exit code 3', finishedAt: expect.any(String) },
    ]);
    expect(await driver.failedPods(c, 'upg_nonexistent00000')).toEqual([]);
    await driver.deleteFailedPods(c, 'upg_bbbbbbbbbbbbbbbb');
    expect(await driver.failedPods(c, 'upg_bbbbbbbbbbbbbbbb')).toEqual([]);
    expect(
      fake
        .listPods(NS)
        .map((p) => p['metadata']['name'])
        .sort(),
    ).toEqual(['operator-debug', 'upshift-nt-cccccccccccccccc-1']);
    expect(fake.requestsMatching('DELETE', /\/pods\//).map((r) => r.path)).toEqual([`/api/v1/namespaces/${NS}/pods/${failedName}`]);
  });

  it('cordons, drains through the Eviction API (retrying while a PodDisruptionBudget refuses), and uncordons', async () => {
    addGvisorNode('worker-1');
    addGvisorNode('worker-2');
    fake.addPod({ namespace: 'shop', name: 'web-1', nodeName: 'worker-1', labels: { app: 'web' } });
    fake.addPod({ namespace: 'shop', name: 'web-2', nodeName: 'worker-2', labels: { app: 'web' } });
    fake.addPod({ namespace: 'shop', name: 'cache-1', nodeName: 'worker-1', labels: { app: 'cache' } });
    fake.addPod({
      namespace: 'kube-system',
      name: 'kube-proxy-x1',
      nodeName: 'worker-1',
      owner: { kind: 'DaemonSet', name: 'kube-proxy' },
    });
    fake.addPdb({ namespace: 'shop', name: 'web-pdb', matchLabels: { app: 'web' }, disruptionsAllowed: 0 });
    const c = cluster({ drain: { enabled: true, timeoutSeconds: 20 } });
    const ctx = context();
    const run = driver.runNodeTask(c, spec(nodeRecord('worker-1')), ctx);
    await waitFor(async () => ctx.lines.some((l) => l.includes('refused by a PodDisruptionBudget')), 5000, 'the 429');
    expect(fake.node('worker-1')?.['spec']['unschedulable']).toBe(true);
    expect(fake.requestsMatching('POST', /\/pods$/)).toHaveLength(0);
    // The replacement of web-1 became ready elsewhere: the budget allows one disruption now.
    fake.setPdb('shop', 'web-pdb', 1);
    const outcome = await run;
    expect(outcome.result).toBe('succeeded');
    expect(ctx.lines.join('\n')).toMatch(
      /cordoned node worker-1[\s\S]*evicted pod shop\/web-1[\s\S]*drained node worker-1[\s\S]*created executor pod[\s\S]*uncordoned node worker-1/,
    );
    const evictions = fake.requestsMatching('POST', /\/eviction$/);
    expect(new Set(evictions.map((r) => r.path))).toEqual(
      new Set(['/api/v1/namespaces/shop/pods/web-1/eviction', '/api/v1/namespaces/shop/pods/cache-1/eviction']),
    );
    expect(evictions.filter((r) => r.path.endsWith('web-1/eviction')).length).toBeGreaterThan(1);
    expect(fake.pod('kube-system', 'kube-proxy-x1')).toBeDefined();
    expect(fake.pod('shop', 'web-2')).toBeDefined();
    const node = fake.node('worker-1')!;
    expect(node['spec']['unschedulable']).toBe(false);
    expect(node['metadata']['annotations']['upshift.io/cordoned-by']).toBeUndefined();
    const patches = fake.requestsMatching('PATCH', /\/nodes\/worker-1$/);
    expect(patches.map((p) => p.contentType)).toEqual(['application/merge-patch+json', 'application/merge-patch+json']);
  });

  it('gives up a drain that a PodDisruptionBudget blocks past the timeout, uncordons and leaves the runtime alone', async () => {
    addGvisorNode('worker-1');
    fake.addPod({ namespace: 'shop', name: 'web-1', nodeName: 'worker-1', labels: { app: 'web' } });
    fake.addPdb({ namespace: 'shop', name: 'web-pdb', matchLabels: { app: 'web' }, disruptionsAllowed: 0 });
    const c = cluster({ drain: { enabled: true, timeoutSeconds: 1 } });
    const outcome = await driver.runNodeTask(c, spec(nodeRecord('worker-1')), context());
    expect(outcome.result).toBe('failed');
    expect(outcome.error).toMatch(
      /drain of node worker-1 timed out after 1 s: shop\/web-1 could not be evicted .*429 TooManyRequests: Cannot evict pod/,
    );
    expect(outcome.error).toMatch(/the runtime was not touched and the node is uncordoned again/);
    expect(fake.node('worker-1')?.['spec']['unschedulable']).toBe(false);
    expect(fake.requestsMatching('POST', /\/pods$/)).toHaveLength(0);
  });

  it('refuses to drain a node whose pods no controller owns, and leaves a node an operator cordoned cordoned', async () => {
    addGvisorNode('worker-1', { name: 'worker-1', unschedulable: true });
    fake.addPod({ namespace: 'default', name: 'hand-made', nodeName: 'worker-1', owner: null });
    const c = cluster({ drain: { enabled: true, timeoutSeconds: 5 } });
    const ctx = context();
    const outcome = await driver.runNodeTask(c, spec(nodeRecord('worker-1')), ctx);
    expect(outcome.error).toMatch(/drain of node worker-1 refused: default\/hand-made is not managed by a controller/);
    expect(ctx.lines).toContain('node worker-1 was already cordoned by someone else; Upshift will leave it cordoned afterwards');
    expect(fake.node('worker-1')?.['spec']['unschedulable']).toBe(true);
    expect(fake.requestsMatching('PATCH', /\/nodes\//)).toHaveLength(0);
  });

  it('leaves an existing namespace alone and explains a Pod Security refusal, uncordoning the node', async () => {
    await fake.close();
    fake = await FakeKubeApiServer.start({ enforcePodSecurity: true, namespaces: [NS] });
    addGvisorNode('worker-1');
    const c = cluster({ drain: { enabled: true, timeoutSeconds: 5 } });
    await expect(driver.runNodeTask(c, spec(nodeRecord('worker-1')), context())).rejects.toThrow(
      /creating pod runtime-upgrade\/upshift-nt-aaaaaaaaaaaaaaaa-1: 403 Forbidden: .*violates PodSecurity.*label the namespace pod-security.kubernetes.io\/enforce=privileged/,
    );
    expect(fake.requestsMatching('POST', /\/namespaces$/)).toHaveLength(0);
    expect(fake.namespace(NS)?.['metadata']['labels'] ?? {}).not.toHaveProperty('pod-security.kubernetes.io/enforce');
    expect(fake.node('worker-1')?.['spec']['unschedulable']).toBe(false);
  });

  it('reports a pod the kubelet stopped at its deadline, and gives up on a pod no kubelet reports on', async () => {
    addGvisorNode('hung');
    addGvisorNode('dead');
    fake.kubelet('hung', { outcome: 'hang' });
    fake.kubelet('dead', { outcome: 'unresponsive' });
    const c = cluster({ taskTimeoutSeconds: 1 });
    const [hung, dead] = await Promise.all([
      driver.runNodeTask(c, spec(nodeRecord('hung')), context()),
      driver.runNodeTask(c, spec(nodeRecord('dead'), { taskKey: 'nt_dddddddddddddddd.1', nodeTaskId: 'nt_dddddddddddddddd' }), context()),
    ]);
    expect(hung.error).toMatch(/failed: it ran longer than taskTimeoutSeconds \(1 s\) and the kubelet stopped it/);
    expect(fake.pod(NS, 'upshift-nt-aaaaaaaaaaaaaaaa-1')?.['status']).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded' });
    expect(dead.error).toMatch(/did not finish within 1 s: it is still Pending.*the pod was deleted so that it cannot start later/);
    expect(fake.pod(NS, 'upshift-nt-dddddddddddddddd-1')).toBeUndefined();
  });

  it('fails when the pod succeeded but the node does not report the target version', async () => {
    addGvisorNode('worker-1');
    fake.kubelet('worker-1', { outcome: 'noVersionChange' });
    const outcome = await driver.runNodeTask(cluster({ verifyTimeoutSeconds: 0 }), spec(nodeRecord('worker-1')), context());
    expect(outcome.result).toBe('failed');
    expect(outcome.error).toMatch(
      /succeeded but node worker-1 does not report Sandboxed-Container 20240729 after 0 s \(label upshift.io\/sandboxed-runtime-version=20221219\)/,
    );
  });

  it('upgrades containerd and verifies it from status.nodeInfo.containerRuntimeVersion', async () => {
    fake.addNode({ name: 'worker-1', runtime: 'containerd://1.6.20' });
    const catalog = structuredClone(kubeCatalog);
    catalog.containerd
      .find((v) => v.version === '1.7.24')!
      .artifacts.push({ method: 'image', image: 'registry.example/containerd-installer:1.7.24' });
    const outcome = await driver.runNodeTask(
      cluster(),
      spec(nodeRecord('worker-1', { containerd: '1.6.20' }), {
        component: 'containerd',
        fromVersion: '1.6.20',
        toVersion: '1.7.24',
        catalog,
      }),
      context(),
    );
    expect(outcome).toEqual({ result: 'succeeded', versions: { containerd: '1.7.24' } });
  });

  it('fails without touching the cluster when the catalog has no installer image', async () => {
    addGvisorNode('worker-1');
    const outcome = await driver.runNodeTask(cluster(), spec(nodeRecord('worker-1'), { catalog: defaultCatalog }), context());
    expect(outcome.error).toMatch(/the catalog has no image artifact for Sandboxed-Container 20240729/);
    expect(fake.requests.filter((r) => r.method !== 'GET')).toHaveLength(0);
  });

  it('renders the manifests it would create, for review', async () => {
    const node = addGvisorNode('worker-1');
    const manifests = (await driver.renderManifests(cluster(), {
      upgradeId: 'upg_plan',
      component: 'sandboxed-runtime',
      toVersion: '20240729',
      nodes: [nodeRecord('worker-1')],
      catalog: kubeCatalog,
    })) as Array<Record<string, any>>;
    expect(manifests.map((m) => m['kind'])).toEqual(['Namespace', 'Pod']);
    expect(manifests[1]).toMatchObject({
      metadata: { namespace: NS, ownerReferences: [{ kind: 'Node', uid: node['metadata']['uid'] }] },
      spec: { nodeName: 'worker-1', containers: [{ image: GVISOR_INSTALLER }] },
    });
    await expect(
      driver.renderManifests(cluster(), {
        upgradeId: 'upg_plan',
        component: 'sandboxed-runtime',
        toVersion: '20240729',
        nodes: [],
        catalog: defaultCatalog,
      }),
    ).rejects.toThrow(/no image artifact/);
  });
});
