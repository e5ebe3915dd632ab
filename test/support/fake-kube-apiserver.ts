/**
 * A faithful fake of the Kubernetes API paths the `kubernetes` driver uses, served over
 * real HTTPS on 127.0.0.1 with bearer-token authentication, plus simulated kubelets.
 * No API server can run on the development machines (TESTBED.md), so this is what the
 * driver is tested against. It is not a mock of the client: the driver talks to it
 * through @kubernetes/client-node exactly as it talks to a real cluster.
 *
 * Response shapes follow the Kubernetes API reference (v1.30) and real responses:
 * - Node, NodeList, Pod, PodList, Namespace: https://kubernetes.io/docs/reference/kubernetes-api/
 *   (cluster-resources/node-v1, workload-resources/pod-v1, cluster-resources/namespace-v1):
 *   lists carry `metadata.resourceVersion`; every object carries `metadata.uid`,
 *   `resourceVersion`, `creationTimestamp`.
 * - Errors are `Status` objects (common-definitions/status): `{kind:"Status",
 *   apiVersion:"v1", metadata:{}, status:"Failure", message, reason, details:{name,kind},
 *   code}`, with the reasons a real server sends: NotFound (404), AlreadyExists (409),
 *   Unauthorized (401), Forbidden (403), Invalid (422), TooManyRequests (429), Expired (410).
 * - Watch (using-api/api-concepts, "Efficient detection of changes"): `?watch=true`
 *   streams newline-delimited WatchEvent objects `{type, object}` (ADDED, MODIFIED,
 *   DELETED, ERROR); no bookmarks. From a `resourceVersion` it replays the changes after
 *   it; without one (or "0") it starts with an ADDED event per existing object. A
 *   resourceVersion older than the retained history (after `compact()`) gets, as from a
 *   real watch cache, HTTP 200 and one ERROR event whose object is a Status with code
 *   410, reason Expired, "too old resource version: X (Y)", and the stream ends; the
 *   `expiredWatch: 'http'` option answers with an HTTP 410 Status instead, as some
 *   servers and proxies do. `timeoutSeconds` ends the stream.
 * - Pod log (`GET …/pods/{name}/log`): text/plain; `follow=true` streams until the
 *   container terminates; a container that has not started answers 400 BadRequest
 *   `container "executor" in pod "…" is waiting to start: ContainerCreating`.
 * - Eviction (`POST …/pods/{name}/eviction`, policy/v1, concepts/scheduling-eviction/
 *   api-eviction): 201 with a Success Status; 429 TooManyRequests "Cannot evict pod as it
 *   would violate the pod's disruption budget." with a DisruptionBudget cause when a PDB
 *   allows no disruption; 404 when the pod is gone.
 * - Node PATCH accepts application/json-patch+json (RFC 6902) and
 *   application/merge-patch+json / strategic-merge-patch+json (RFC 7386 merge);
 *   anything else is 415.
 * - Optional Pod Security Admission (`enforcePodSecurity`): a privileged pod in a
 *   namespace not labelled `pod-security.kubernetes.io/enforce=privileged` is refused
 *   with 403 Forbidden "violates PodSecurity \"baseline:latest\"", as the `baseline` level does.
 *
 * Simplifications, stated: deletion is immediate (the returned object carries a
 * deletionTimestamp, but no graceful termination period is simulated); only equality
 * label selectors and the `spec.nodeName`, `metadata.name`, `status.phase` field
 * selectors are implemented; PDBs are held as `{matchLabels, disruptionsAllowed}`.
 *
 * Simulated kubelet: a pod created with `spec.nodeName` of a known node goes Pending
 * (ContainerCreating) → Running → Succeeded, writing log lines; its installer "reads"
 * the UPSHIFT_* environment the driver sets and, on success, the node then reports the
 * target version (`status.nodeInfo.containerRuntimeVersion` for containerd/docker, the
 * runtime label for the sandboxed runtime, as Node Feature Discovery would set it).
 * Per-node behaviours: fail (the first N attempts), hang (until `activeDeadlineSeconds`:
 * Failed/DeadlineExceeded, as the kubelet does), unresponsive (stays Pending, as on a
 * dead node), noVersionChange (succeeds but the node keeps reporting the old version).
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { selfSignedCert } from './tls.js';

type Obj = Record<string, any>;

export interface FakeNodeInit {
  name: string;
  /** `containerd://1.6.20` by default. */
  runtime?: string;
  labels?: Record<string, string>;
  controlPlane?: boolean;
  ready?: boolean;
  unschedulable?: boolean;
}

export interface KubeletBehavior {
  outcome: 'succeed' | 'fail' | 'hang' | 'unresponsive' | 'noVersionChange';
  /** With `fail`: only the first N executor pods on the node fail; later ones succeed. Default: all. */
  failAttempts?: number;
  exitCode?: number;
}

export interface FakeKubeOptions {
  token?: string;
  /** ms from creation to ContainerCreating, and from there to Running. */
  pendingMs?: number;
  /** ms the installer runs. */
  runMs?: number;
  expiredWatch?: 'event' | 'http';
  enforcePodSecurity?: boolean;
  /** Namespaces that exist from the start, besides default, kube-system and kube-public. */
  namespaces?: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  body?: unknown;
}

interface Pdb {
  namespace: string;
  name: string;
  matchLabels: Record<string, string>;
  disruptionsAllowed: number;
  minAvailable: number;
}

interface PodRuntime {
  timers: NodeJS.Timeout[];
  log: string[];
  followers: Set<ServerResponse>;
}

function status(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function matchLabels(labels: Record<string, string> | undefined, selector: string | undefined): boolean {
  if (!selector) return true;
  const have = labels ?? {};
  return selector.split(',').every((term) => {
    const t = term.trim();
    if (t === '') return true;
    const ne = /^([^!=]+)!=(.*)$/.exec(t);
    if (ne) return have[ne[1]!.trim()] !== ne[2]!.trim();
    const eq = /^([^=]+)==?(.*)$/.exec(t);
    if (eq) return have[eq[1]!.trim()] === eq[2]!.trim();
    if (t.startsWith('!')) return !(t.slice(1) in have);
    return t in have;
  });
}

function fieldOf(obj: Obj, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Obj)[k] : undefined), obj);
}

function matchFields(obj: Obj, selector: string | undefined): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const ne = /^([^!=]+)!=(.*)$/.exec(term);
    if (ne) return String(fieldOf(obj, ne[1]!) ?? '') !== ne[2];
    const eq = /^([^=]+)==?(.*)$/.exec(term);
    return eq ? String(fieldOf(obj, eq[1]!) ?? '') === eq[2] : true;
  });
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Obj = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function jsonPatch(doc: Obj, ops: unknown): Obj {
  if (!Array.isArray(ops)) throw new Error('a JSON patch must be a list of operations');
  const out = clone(doc);
  for (const op of ops as Obj[]) {
    const parts = String(op['path'])
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop();
    if (last === undefined) throw new Error('empty path');
    let parent: any = out;
    for (const p of parts) {
      if (parent[p] === undefined) throw new Error(`path ${String(op['path'])} does not exist`);
      parent = parent[p];
    }
    switch (op['op']) {
      case 'add':
      case 'replace':
        if (op['op'] === 'replace' && !(last in parent)) throw new Error(`path ${String(op['path'])} does not exist`);
        parent[last] = op['value'];
        break;
      case 'remove':
        if (!(last in parent)) throw new Error(`path ${String(op['path'])} does not exist`);
        delete parent[last];
        break;
      case 'test':
        if (JSON.stringify(parent[last]) !== JSON.stringify(op['value'])) throw new Error('test operation failed');
        break;
      default:
        throw new Error(`unsupported patch operation ${String(op['op'])}`);
    }
  }
  return out;
}

export class FakeKubeApiServer {
  readonly token: string;
  readonly requests: RecordedRequest[] = [];
  private server: Server;
  private readonly sockets = new Set<Socket>();
  private port = 0;
  private rv = 1000;
  /** Node history: changes after `compactedAt` can be replayed to a watch. */
  private history: Array<{ rv: number; type: string; object: Obj }> = [];
  private compactedAt = 1000;
  private readonly nodes = new Map<string, Obj>();
  private readonly pods = new Map<string, Obj>();
  private readonly namespaces = new Map<string, Obj>();
  private readonly pdbs: Pdb[] = [];
  private readonly kubelets = new Map<string, KubeletBehavior & { started: number }>();
  private readonly runtimes = new Map<string, PodRuntime>();
  private readonly watchers = new Set<{ res: ServerResponse; timer?: NodeJS.Timeout }>();
  private readonly options: Required<Omit<FakeKubeOptions, 'namespaces' | 'token'>>;

  private constructor(
    private readonly tls: { key: string; cert: string },
    options: FakeKubeOptions,
  ) {
    this.token = options.token ?? `fake-token-${randomUUID()}`;
    this.options = {
      pendingMs: options.pendingMs ?? 30,
      runMs: options.runMs ?? 150,
      expiredWatch: options.expiredWatch ?? 'event',
      enforcePodSecurity: options.enforcePodSecurity ?? false,
    };
    for (const ns of ['default', 'kube-system', 'kube-public', ...(options.namespaces ?? [])]) {
      this.namespaces.set(
        ns,
        this.stamp({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: ns },
          spec: { finalizers: ['kubernetes'] },
          status: { phase: 'Active' },
        }),
      );
    }
    this.server = this.makeServer();
  }

  static async start(options: FakeKubeOptions = {}): Promise<FakeKubeApiServer> {
    const fake = new FakeKubeApiServer(selfSignedCert('fake-kube-apiserver'), options);
    await fake.listen(0);
    return fake;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get caCert(): string {
    return this.tls.cert;
  }

  private makeServer(): Server {
    const server = createServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.send(res, 500, status(500, 'InternalError', String(error)));
        else res.end();
      });
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    return server;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** A kubeconfig for this server: its CA inline and the bearer token, as `kubectl config view --raw --minify` prints one. */
  kubeconfig(options: { token?: string; context?: string } = {}): string {
    const context = options.context ?? 'fake';
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- cluster:',
      `    certificate-authority-data: ${Buffer.from(this.tls.cert).toString('base64')}`,
      `    server: ${this.url}`,
      '  name: fake-cluster',
      'contexts:',
      '- context:',
      '    cluster: fake-cluster',
      '    user: fake-admin',
      `  name: ${context}`,
      `current-context: ${context}`,
      'preferences: {}',
      'users:',
      '- name: fake-admin',
      '  user:',
      `    token: ${options.token ?? this.token}`,
      '',
    ].join('\n');
  }

  // ---- fixtures and controls ----

  private stamp(obj: Obj): Obj {
    this.rv++;
    obj['metadata'] ??= {};
    obj['metadata']['uid'] ??= randomUUID();
    obj['metadata']['creationTimestamp'] ??= now();
    obj['metadata']['resourceVersion'] = String(this.rv);
    return obj;
  }

  private recordNode(type: 'ADDED' | 'MODIFIED' | 'DELETED', node: Obj): void {
    this.history.push({ rv: this.rv, type, object: clone(node) });
    for (const w of this.watchers) this.writeEvent(w.res, type, node);
  }

  addNode(init: FakeNodeInit): Obj {
    const labels: Record<string, string> = {
      'kubernetes.io/hostname': init.name,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      ...(init.controlPlane ? { 'node-role.kubernetes.io/control-plane': '' } : {}),
      ...(init.labels ?? {}),
    };
    const ready = init.ready ?? true;
    const node = this.stamp({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: init.name, labels, annotations: { 'node.alpha.kubernetes.io/ttl': '0' } },
      spec: {
        podCIDR: '10.244.0.0/24',
        ...(init.unschedulable ? { unschedulable: true } : {}),
        ...(init.controlPlane ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } : {}),
      },
      status: {
        capacity: { cpu: '2', memory: '8131280Ki', pods: '110' },
        allocatable: { cpu: '2', memory: '8028880Ki', pods: '110' },
        conditions: [
          {
            type: 'MemoryPressure',
            status: 'False',
            reason: 'KubeletHasSufficientMemory',
            message: 'kubelet has sufficient memory available',
          },
          { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' },
          { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' },
          ready
            ? { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }
            : { type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' },
        ].map((c) => ({ ...c, lastHeartbeatTime: now(), lastTransitionTime: now() })),
        addresses: [
          { type: 'InternalIP', address: `10.0.0.${this.nodes.size + 10}` },
          { type: 'Hostname', address: init.name },
        ],
        nodeInfo: {
          machineID: randomUUID().replace(/-/g, ''),
          systemUUID: randomUUID(),
          bootID: randomUUID(),
          kernelVersion: '6.1.0-18-amd64',
          osImage: 'Debian GNU/Linux 12 (bookworm)',
          containerRuntimeVersion: init.runtime ?? 'containerd://1.6.20',
          kubeletVersion: 'v1.30.2',
          kubeProxyVersion: 'v1.30.2',
          operatingSystem: 'linux',
          architecture: 'amd64',
        },
      },
    });
    this.nodes.set(init.name, node);
    this.recordNode('ADDED', node);
    return clone(node);
  }

  node(name: string): Obj | undefined {
    const node = this.nodes.get(name);
    return node ? clone(node) : undefined;
  }

  /** Changes a node as its kubelet or an operator would; watchers get a MODIFIED event. */
  updateNode(name: string, change: (node: Obj) => void): void {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    change(node);
    this.stamp(node);
    this.recordNode('MODIFIED', node);
  }

  deleteNode(name: string): void {
    const node = this.nodes.get(name);
    if (!node) return;
    this.nodes.delete(name);
    this.stamp(node);
    this.recordNode('DELETED', node);
  }

  kubelet(nodeName: string, behavior: KubeletBehavior): void {
    this.kubelets.set(nodeName, { ...behavior, started: 0 });
  }

  /** A workload pod already running on a node; owned by a ReplicaSet unless `owner` says otherwise. */
  addPod(init: {
    namespace: string;
    name: string;
    nodeName: string;
    labels?: Record<string, string>;
    owner?: { kind: string; name: string } | null;
    phase?: string;
  }): Obj {
    if (!this.namespaces.has(init.namespace))
      this.namespaces.set(
        init.namespace,
        this.stamp({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: init.namespace }, status: { phase: 'Active' } }),
      );
    const owner = init.owner === undefined ? { kind: 'ReplicaSet', name: `${init.name}-rs` } : init.owner;
    const pod = this.stamp({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: init.name,
        namespace: init.namespace,
        labels: init.labels ?? {},
        ...(owner
          ? {
              ownerReferences: [
                {
                  apiVersion: 'apps/v1',
                  kind: owner.kind,
                  name: owner.name,
                  uid: randomUUID(),
                  controller: true,
                  blockOwnerDeletion: true,
                },
              ],
            }
          : {}),
      },
      spec: { nodeName: init.nodeName, containers: [{ name: 'app', image: 'registry.example/app:1' }], restartPolicy: 'Always' },
      status: { phase: init.phase ?? 'Running', startTime: now(), qosClass: 'BestEffort' },
    });
    this.pods.set(`${init.namespace}/${init.name}`, pod);
    return clone(pod);
  }

  addPdb(pdb: {
    namespace: string;
    name: string;
    matchLabels: Record<string, string>;
    disruptionsAllowed: number;
    minAvailable?: number;
  }): void {
    this.pdbs.push({ minAvailable: 1, ...pdb });
  }

  setPdb(namespace: string, name: string, disruptionsAllowed: number): void {
    const pdb = this.pdbs.find((p) => p.namespace === namespace && p.name === name);
    if (!pdb) throw new Error(`no PDB ${namespace}/${name}`);
    pdb.disruptionsAllowed = disruptionsAllowed;
  }

  listPods(namespace?: string): Obj[] {
    return [...this.pods.values()].filter((p) => namespace === undefined || p.metadata.namespace === namespace).map(clone);
  }

  pod(namespace: string, name: string): Obj | undefined {
    const pod = this.pods.get(`${namespace}/${name}`);
    return pod ? clone(pod) : undefined;
  }

  namespace(name: string): Obj | undefined {
    const ns = this.namespaces.get(name);
    return ns ? clone(ns) : undefined;
  }

  /** Forgets the watch history, as etcd compaction does: any older resourceVersion now gets 410 Gone. */
  compact(): void {
    this.rv++;
    this.compactedAt = this.rv;
    this.history = [];
  }

  /** Ends every open watch stream, as an API server restart does. */
  endWatches(): void {
    for (const w of this.watchers) {
      if (w.timer) clearTimeout(w.timer);
      w.res.end();
    }
    this.watchers.clear();
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  /** Stops answering (connections refused) until `restart()`; the state is kept. */
  async stopListening(): Promise<void> {
    this.endWatches();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async restart(): Promise<void> {
    this.server = this.makeServer();
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    for (const rt of this.runtimes.values()) for (const t of rt.timers) clearTimeout(t);
    this.endWatches();
    for (const rt of this.runtimes.values()) for (const f of rt.followers) f.end();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  requestsMatching(method: string, pattern: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && pattern.test(r.path));
  }

  // ---- HTTP ----

  private send(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Audit-Id': randomUUID() });
    res.end(text);
  }

  private writeEvent(res: ServerResponse, type: string, object: Obj): void {
    res.write(`${JSON.stringify({ type, object })}\n`);
  }

  private async body(req: IncomingMessage): Promise<{ raw: string; json: unknown }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let json: unknown;
    try {
      json = raw.length > 0 ? JSON.parse(raw) : undefined;
    } catch {
      json = undefined;
    }
    return { raw, json };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const query = Object.fromEntries(url.searchParams.entries());
    const method = req.method ?? 'GET';
    const { raw, json } = await this.body(req);
    this.requests.push({
      method,
      path: url.pathname,
      query,
      contentType: req.headers['content-type'],
      ...(raw.length > 0 ? { body: json ?? raw } : {}),
    });
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      this.send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const path = url.pathname.replace(/\/+$/, '');
    let m: RegExpExecArray | null;
    if (path === '/api/v1/nodes' && method === 'GET') {
      if (query['watch'] === 'true' || query['watch'] === '1') return this.watchNodes(res, query);
      const items = [...this.nodes.values()].filter((n) => matchLabels(n.metadata.labels, query['labelSelector'])).map(clone);
      return this.send(res, 200, { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items });
    }
    if ((m = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path))) {
      const name = decodeURIComponent(m[1]!);
      const node = this.nodes.get(name);
      if (!node) return this.send(res, 404, status(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' }));
      if (method === 'GET') return this.send(res, 200, node);
      if (method === 'PATCH') return this.patchNode(res, node, req.headers['content-type'], json);
      return this.send(res, 405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
    }
    if (path === '/api/v1/namespaces' && method === 'POST') return this.createNamespace(res, json as Obj);
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path)) && method === 'GET') {
      const name = decodeURIComponent(m[1]!);
      const ns = this.namespaces.get(name);
      return ns
        ? this.send(res, 200, ns)
        : this.send(res, 404, status(404, 'NotFound', `namespaces "${name}" not found`, { name, kind: 'namespaces' }));
    }
    if (path === '/api/v1/pods' && method === 'GET') return this.listPodsResponse(res, undefined, query);
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path))) {
      const ns = decodeURIComponent(m[1]!);
      if (method === 'GET') return this.listPodsResponse(res, ns, query);
      if (method === 'POST') return this.createPod(res, ns, json as Obj);
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/log|\/eviction)?$/.exec(path))) {
      const ns = decodeURIComponent(m[1]!);
      const name = decodeURIComponent(m[2]!);
      const sub = m[3];
      const pod = this.pods.get(`${ns}/${name}`);
      if (!pod) return this.send(res, 404, status(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' }));
      if (sub === '/log' && method === 'GET') return this.podLog(res, pod, query);
      if (sub === '/eviction' && method === 'POST') return this.evict(res, pod, json as Obj);
      if (sub === undefined && method === 'GET') return this.send(res, 200, pod);
      if (sub === undefined && method === 'DELETE') return this.deletePod(res, pod);
    }
    this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
  }

  private watchNodes(res: ServerResponse, query: Record<string, string>): void {
    const from = query['resourceVersion'];
    if (from !== undefined && from !== '' && from !== '0' && Number(from) < this.compactedAt) {
      const gone = status(410, 'Expired', `too old resource version: ${from} (${this.compactedAt})`);
      if (this.options.expiredWatch === 'http') return this.send(res, 410, gone);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      this.writeEvent(res, 'ERROR', gone);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    if (from === undefined || from === '' || from === '0') {
      for (const node of this.nodes.values()) this.writeEvent(res, 'ADDED', node);
    } else {
      for (const event of this.history) if (event.rv > Number(from)) this.writeEvent(res, event.type, event.object);
    }
    const watcher: { res: ServerResponse; timer?: NodeJS.Timeout } = { res };
    const timeout = Number(query['timeoutSeconds'] ?? 0);
    if (timeout > 0) {
      watcher.timer = setTimeout(() => {
        this.watchers.delete(watcher);
        res.end();
      }, timeout * 1000);
    }
    this.watchers.add(watcher);
    res.on('close', () => {
      if (watcher.timer) clearTimeout(watcher.timer);
      this.watchers.delete(watcher);
    });
  }

  private patchNode(res: ServerResponse, node: Obj, contentType: string | undefined, body: unknown): void {
    const type = (contentType ?? '').split(';')[0]!.trim();
    let patched: Obj;
    try {
      if (type === 'application/json-patch+json') patched = jsonPatch(node, body);
      else if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json')
        patched = mergePatch(node, body) as Obj;
      else
        return this.send(
          res,
          415,
          status(
            415,
            'UnsupportedMediaType',
            `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
          ),
        );
    } catch (error) {
      return this.send(
        res,
        422,
        status(422, 'Invalid', `the server rejected our request due to an error in our request: ${String(error)}`),
      );
    }
    patched['metadata']['name'] = node['metadata']['name'];
    patched['metadata']['uid'] = node['metadata']['uid'];
    this.nodes.set(node['metadata']['name'], patched);
    this.stamp(patched);
    this.recordNode('MODIFIED', patched);
    this.send(res, 200, patched);
  }

  private createNamespace(res: ServerResponse, body: Obj | undefined): void {
    const name = body?.['metadata']?.['name'];
    if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
      return this.send(
        res,
        422,
        status(422, 'Invalid', `Namespace "${String(name)}" is invalid: metadata.name: Invalid value`, { name, kind: 'Namespace' }),
      );
    }
    if (this.namespaces.has(name))
      return this.send(res, 409, status(409, 'AlreadyExists', `namespaces "${name}" already exists`, { name, kind: 'namespaces' }));
    const ns = this.stamp({
      ...clone(body!),
      apiVersion: 'v1',
      kind: 'Namespace',
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    });
    ns['metadata']['labels'] = { ...(ns['metadata']['labels'] ?? {}), 'kubernetes.io/metadata.name': name };
    this.namespaces.set(name, ns);
    this.send(res, 201, ns);
  }

  private listPodsResponse(res: ServerResponse, namespace: string | undefined, query: Record<string, string>): void {
    const items = [...this.pods.values()]
      .filter((p) => namespace === undefined || p.metadata.namespace === namespace)
      .filter((p) => matchLabels(p.metadata.labels, query['labelSelector']))
      .filter((p) => matchFields(p, query['fieldSelector']))
      .map(clone);
    this.send(res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items });
  }

  private createPod(res: ServerResponse, namespace: string, body: Obj | undefined): void {
    const ns = this.namespaces.get(namespace);
    if (!ns)
      return this.send(res, 404, status(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' }));
    const name = body?.['metadata']?.['name'];
    const invalid = (message: string) =>
      this.send(res, 422, status(422, 'Invalid', `Pod "${String(name)}" is invalid: ${message}`, { name, kind: 'Pod' }));
    if (typeof name !== 'string' || name.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name))
      return invalid('metadata.name: Invalid value');
    if (body?.['metadata']?.['namespace'] && body['metadata']['namespace'] !== namespace) {
      return this.send(
        res,
        400,
        status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request'),
      );
    }
    const containers = body?.['spec']?.['containers'];
    if (!Array.isArray(containers) || containers.length === 0) return invalid('spec.containers: Required value');
    for (const c of containers as Obj[]) if (!c['name'] || !c['image']) return invalid('spec.containers[0].image: Required value');
    const restart = body?.['spec']?.['restartPolicy'];
    if (restart !== undefined && !['Always', 'OnFailure', 'Never'].includes(restart))
      return invalid('spec.restartPolicy: Unsupported value');
    for (const [k, v] of Object.entries((body?.['metadata']?.['labels'] ?? {}) as Obj)) {
      if (typeof v !== 'string' || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) {
        return invalid(
          `metadata.labels: Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters (${k})`,
        );
      }
    }
    if (this.pods.has(`${namespace}/${name}`))
      return this.send(res, 409, status(409, 'AlreadyExists', `pods "${name}" already exists`, { name, kind: 'pods' }));
    if (this.options.enforcePodSecurity && ns['metadata']?.['labels']?.['pod-security.kubernetes.io/enforce'] !== 'privileged') {
      const privileged = (containers as Obj[]).some((c) => c['securityContext']?.['privileged'] === true);
      const hostPath = ((body?.['spec']?.['volumes'] ?? []) as Obj[]).some((v) => v['hostPath']);
      if (privileged || body?.['spec']?.['hostPID'] || hostPath) {
        return this.send(
          res,
          403,
          status(
            403,
            'Forbidden',
            `pods "${name}" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostPID=true), privileged, hostPath volumes`,
            {
              name,
              kind: 'pods',
            },
          ),
        );
      }
    }
    const pod = this.stamp(clone(body!));
    pod['apiVersion'] = 'v1';
    pod['kind'] = 'Pod';
    pod['metadata']['namespace'] = namespace;
    pod['spec']['schedulerName'] ??= 'default-scheduler';
    pod['spec']['dnsPolicy'] ??= 'ClusterFirst';
    pod['spec']['restartPolicy'] ??= 'Always';
    const limits = containers.every((c: Obj) => c['resources']?.['limits']);
    pod['status'] = {
      phase: 'Pending',
      qosClass: limits ? 'Burstable' : 'BestEffort',
      ...(pod['spec']['nodeName'] ? { conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: now() }] } : {}),
    };
    this.pods.set(`${namespace}/${name}`, pod);
    this.send(res, 201, pod);
    this.startKubelet(pod);
  }

  private deletePod(res: ServerResponse, pod: Obj): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    this.pods.delete(key);
    const rt = this.runtimes.get(key);
    if (rt) {
      for (const t of rt.timers) clearTimeout(t);
      for (const f of rt.followers) f.end();
      this.runtimes.delete(key);
    }
    this.stamp(pod);
    pod['metadata']['deletionTimestamp'] = now();
    pod['metadata']['deletionGracePeriodSeconds'] = 0;
    this.send(res, 200, pod);
  }

  private evict(res: ServerResponse, pod: Obj, body: Obj | undefined): void {
    if (body?.['kind'] !== 'Eviction' || !String(body?.['apiVersion'] ?? '').startsWith('policy/')) {
      return this.send(res, 400, status(400, 'BadRequest', 'the body of an eviction must be a policy/v1 Eviction'));
    }
    const ns = pod.metadata.namespace as string;
    const budgets = this.pdbs.filter(
      (p) => p.namespace === ns && Object.entries(p.matchLabels).every(([k, v]) => pod.metadata.labels?.[k] === v),
    );
    if (budgets.length > 1) {
      return this.send(
        res,
        500,
        status(500, 'InternalError', 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.'),
      );
    }
    const pdb = budgets[0];
    if (pdb && pdb.disruptionsAllowed <= 0) {
      return this.send(
        res,
        429,
        status(429, 'TooManyRequests', "Cannot evict pod as it would violate the pod's disruption budget.", {
          causes: [
            {
              reason: 'DisruptionBudget',
              message: `The disruption budget ${pdb.name} needs ${pdb.minAvailable} healthy pods and has ${pdb.minAvailable} currently`,
            },
          ],
        }),
      );
    }
    if (pdb) pdb.disruptionsAllowed--;
    this.pods.delete(`${ns}/${pod.metadata.name}`);
    this.send(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
  }

  private podLog(res: ServerResponse, pod: Obj, query: Record<string, string>): void {
    const container = query['container'] ?? pod.spec.containers[0]?.name;
    if (!pod.spec.containers.some((c: Obj) => c['name'] === container)) {
      return this.send(res, 400, status(400, 'BadRequest', `container ${container} is not valid for pod ${pod.metadata.name}`));
    }
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const rt = this.runtimes.get(key);
    const state = pod.status?.containerStatuses?.[0]?.state;
    if (!rt || (!state?.running && !state?.terminated)) {
      const reason = state?.waiting?.reason ?? 'ContainerCreating';
      return this.send(
        res,
        400,
        status(400, 'BadRequest', `container "${container}" in pod "${pod.metadata.name}" is waiting to start: ${reason}`),
      );
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    if (rt.log.length > 0) res.write(rt.log.map((l) => `${l}\n`).join(''));
    if (query['follow'] !== 'true' || state.terminated) {
      res.end();
      return;
    }
    rt.followers.add(res);
    res.on('close', () => rt.followers.delete(res));
  }

  // ---- the simulated kubelet ----

  private setPodStatus(key: string, change: (status: Obj) => void): Obj | undefined {
    const pod = this.pods.get(key);
    if (!pod) return undefined;
    change(pod['status']);
    this.stamp(pod);
    return pod;
  }

  private startKubelet(pod: Obj): void {
    const nodeName = pod.spec.nodeName as string | undefined;
    if (!nodeName || !this.nodes.has(nodeName)) return;
    const behavior = this.kubelets.get(nodeName) ?? { outcome: 'succeed' as const, started: 0 };
    behavior.started++;
    this.kubelets.set(nodeName, behavior);
    if (behavior.outcome === 'unresponsive') return;
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const rt: PodRuntime = { timers: [], log: [], followers: new Set() };
    this.runtimes.set(key, rt);
    const container = pod.spec.containers[0] as Obj;
    const env = Object.fromEntries(((container['env'] ?? []) as Obj[]).map((e) => [e['name'], e['value']]));
    const component = String(env['UPSHIFT_COMPONENT'] ?? 'sandboxed-runtime');
    const to = String(env['UPSHIFT_TO_VERSION'] ?? '');
    const from = String(env['UPSHIFT_FROM_VERSION'] ?? '');
    const fails = behavior.outcome === 'fail' && behavior.started <= (behavior.failAttempts ?? Number.POSITIVE_INFINITY);
    const { pendingMs, runMs } = this.options;
    const at = (ms: number, fn: () => void) => rt.timers.push(setTimeout(fn, ms));
    const write = (line: string) => {
      rt.log.push(line);
      for (const f of rt.followers) f.write(`${line}\n`);
    };
    const containerID = `containerd://${randomUUID().replace(/-/g, '')}`;
    const startedAt = { value: '' };
    at(pendingMs, () =>
      this.setPodStatus(key, (s) => {
        s['hostIP'] = '10.0.0.10';
        s['startTime'] = now();
        s['conditions'] = [
          { type: 'Initialized', status: 'True', lastTransitionTime: now() },
          {
            type: 'Ready',
            status: 'False',
            reason: 'ContainersNotReady',
            message: `containers with unready status: [${container['name']}]`,
            lastTransitionTime: now(),
          },
          { type: 'PodScheduled', status: 'True', lastTransitionTime: now() },
        ];
        s['containerStatuses'] = [
          {
            name: container['name'],
            image: container['image'],
            imageID: '',
            ready: false,
            restartCount: 0,
            started: false,
            state: { waiting: { reason: 'ContainerCreating' } },
          },
        ];
      }),
    );
    at(pendingMs * 2, () => {
      startedAt.value = now();
      this.setPodStatus(key, (s) => {
        s['phase'] = 'Running';
        s['podIP'] = '10.244.0.17';
        s['conditions'] = s['conditions'].map((c: Obj) =>
          c['type'] === 'Ready' ? { type: 'Ready', status: 'True', lastTransitionTime: now() } : c,
        );
        s['containerStatuses'] = [
          {
            name: container['name'],
            image: container['image'],
            imageID: `${String(container['image'])}@sha256:${'0'.repeat(64)}`,
            containerID,
            ready: true,
            restartCount: 0,
            started: true,
            state: { running: { startedAt: startedAt.value } },
          },
        ];
      });
      write(`installer: ${component} ${from || '(none)'} -> ${to} on node ${nodeName}`);
      const deadline = Number(pod.spec.activeDeadlineSeconds ?? 0);
      if (deadline > 0) {
        at(deadline * 1000, () => {
          const current = this.pods.get(key);
          if (!current || current['status']['phase'] !== 'Running') return;
          this.finish(key, rt, {
            phase: 'Failed',
            reason: 'DeadlineExceeded',
            message: 'Pod was active on the node longer than the specified deadline',
            exitCode: 137,
            containerReason: 'Error',
            containerID,
            startedAt: startedAt.value,
          });
        });
      }
    });
    if (behavior.outcome === 'hang') {
      at(pendingMs * 2 + runMs / 2, () => write('installer: waiting for the runtime to stop…'));
      return;
    }
    at(pendingMs * 2 + runMs / 3, () => write(`installer: stopping ${component}`));
    at(pendingMs * 2 + (2 * runMs) / 3, () => write(`installer: installing ${component} ${to}`));
    at(pendingMs * 2 + runMs, () => {
      if (fails) {
        write(`error: ${component} ${to} did not start: exec format error`);
        this.finish(key, rt, {
          phase: 'Failed',
          exitCode: behavior.exitCode ?? 1,
          containerReason: 'Error',
          containerID,
          startedAt: startedAt.value,
        });
        return;
      }
      write(`installer: ${component} ${to} installed`);
      if (behavior.outcome !== 'noVersionChange') {
        this.updateNode(nodeName, (node) => {
          if (component === 'containerd' || component === 'docker')
            node['status']['nodeInfo']['containerRuntimeVersion'] = `${component}://${to}`;
          else node['metadata']['labels'][String(env['UPSHIFT_RUNTIME_LABEL'] ?? 'upshift.io/sandboxed-runtime-version')] = to;
        });
      }
      this.finish(key, rt, { phase: 'Succeeded', exitCode: 0, containerReason: 'Completed', containerID, startedAt: startedAt.value });
    });
  }

  private finish(
    key: string,
    rt: PodRuntime,
    end: {
      phase: string;
      reason?: string;
      message?: string;
      exitCode: number;
      containerReason: string;
      containerID: string;
      startedAt: string;
    },
  ): void {
    for (const t of rt.timers) clearTimeout(t);
    rt.timers = [];
    this.setPodStatus(key, (s) => {
      s['phase'] = end.phase;
      if (end.reason) s['reason'] = end.reason;
      if (end.message) s['message'] = end.message;
      s['conditions'] = (s['conditions'] ?? []).map((c: Obj) =>
        c['type'] === 'Ready'
          ? { type: 'Ready', status: 'False', reason: end.phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed', lastTransitionTime: now() }
          : c,
      );
      const cs = s['containerStatuses']?.[0] ?? {};
      s['containerStatuses'] = [
        {
          ...cs,
          ready: false,
          started: false,
          state: {
            terminated: {
              exitCode: end.exitCode,
              reason: end.containerReason,
              startedAt: end.startedAt,
              finishedAt: now(),
              containerID: end.containerID,
            },
          },
        },
      ];
    });
    for (const f of rt.followers) f.end();
    rt.followers.clear();
  }
}
