/**
 * A real Docker Swarm of five testbed hosts (three managers, two workers) on dockerd
 * 20.10.24, each with its Upshift agent, driven through the server's API:
 *
 *   1. a replicated service published in host mode answers on the hosts' addresses; it is
 *      probed from the root namespace the whole time the engines are upgraded to 26.1.5
 *      (drain, agent recipe, verify through a manager, availability restored), while
 *      every manager's Engine API is polled: at least two must answer `/nodes` at every
 *      moment (quorum kept); the upgrade has a `swarm-services` health gate, which must
 *      pass before every batch after the first. Beforehand the gate's "Test now" sees a
 *      service that cannot place all its replicas (two, at most one per node, pinned to
 *      one node), then sees it whole once the pin is removed, and at 0/0 when scaled down
 *   2. gVisor runsc 20221219 → 20240729: a sandboxed container started before still runs
 *      on the old runsc after; a new one starts on the new runsc
 *
 *   npx vitest run test/swarm
 *
 * Needs root; skipped without it, failed under CI=true. Everything is torn down in
 * afterAll, and by the testbed's cleanup after a crash (agents, engines and the server
 * live in the testbed's cgroup subtree).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { makeEngineTls, type EngineTls } from '../support/swarm/tls.js';
import { createTestbed, engineJson, engineRequest, engineVersion, importBusybox, run, type Testbed } from '../support/testbed/hosts.js';
import {
  REPO,
  buildAgentBundle,
  dockerArchive,
  prepareHost,
  serverCgroupProcs,
  service,
  sha256File,
  startAgent,
  stopAgent,
  writeDaemonJson,
  type PreparedHost,
} from '../support/testbed/host-agents.js';

const isRoot = process.getuid?.() === 0;
const ci = process.env.CI === 'true';
const suite = isRoot || ci ? describe : describe.skip;
const TOKEN = 'swarm-e2e-admin-token-9e3b7d1f5a0c8e4b2d6f9a3c7e1b5d0f';
const PORT = 8080;

interface Upgrade {
  id: string;
  state: string;
  pauseReason: { kind: string; message: string; nodeId?: string } | null;
}
interface EventView {
  id: string;
  type: string;
  message: string;
  data?: Record<string, unknown>;
}
interface NodeView {
  id: string;
  name: string;
  role: string;
  status: string;
  versions: Record<string, string>;
}
interface Inspect {
  State: { Running: boolean; StartedAt: string; Pid: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One TCP exchange: connect, read what the service says, within `ms`. */
function ask(host: string, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: PORT });
    let data = '';
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), ms);
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(data.trim());
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

suite('swarm cluster: drain-aware Docker Engine upgrade under load, quorum kept, then gVisor', () => {
  let bed: Testbed | undefined;
  const hosts: PreparedHost[] = [];
  let serverChild: ChildProcess | undefined;
  let serverOut = '';
  let base = '';
  let clusterId = '';
  let tls!: EngineTls;

  const api = async <T = any>(method: string, p: string, body?: unknown, raw?: Buffer): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${base}/api/v1${p}`, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(raw ? { 'content-type': 'application/octet-stream' } : body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(raw ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const nodes = async (): Promise<NodeView[]> => (await api<{ items: NodeView[] }>('GET', `/clusters/${clusterId}/nodes`)).body.items;

  const diagnostics = async (): Promise<string> => {
    const parts = [`--- server ---\n${serverOut.slice(-3000)}`];
    for (const p of hosts) {
      const log = await readFile(path.join(p.host.dir, 'agent.log'), 'utf8').catch(() => '');
      parts.push(`--- ${p.host.name} agent ---\n${log.split('\n').slice(-15).join('\n')}`);
    }
    return parts.join('\n');
  };

  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const v = await probe();
        if (v !== undefined) return v;
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}\n${await diagnostics()}`);
      await sleep(500);
    }
  };

  const waitUpgrade = (id: string, timeoutMs: number) =>
    waitFor(
      `upgrade ${id} to finish`,
      async () => {
        const u = (await api<Upgrade>('GET', `/upgrades/${id}`)).body;
        return ['Completed', 'Paused', 'Canceled', 'SnapshotFailed'].includes(u.state) ? u : undefined;
      },
      timeoutMs,
    );

  const exec = async (p: PreparedHost, argv: string[]): Promise<string> => {
    const r = await (bed as Testbed).exec(p.host, argv, { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${p.host.name}: ${argv.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    if (!isRoot) throw new Error('the swarm end-to-end test needs root (network namespaces, cgroups)');
    for (const tool of ['nsenter', 'curl', 'tar', 'gzip']) {
      if ((await run(['sh', '-c', `command -v ${tool}`])).code !== 0)
        throw new Error(`${tool} is missing (scripts/testbed/fetch-packages.sh installs the testbed's packages)`);
    }
    bed = await createTestbed({ hosts: 5 });
    const b = bed;
    // The managers serve their Engine API on tcp://IP:2376 with TLS and require a client
    // certificate, as production managers do; the control plane reaches them only there.
    const tlsDir = path.join(b.root, 'tls');
    await mkdir(tlsDir);
    tls = await makeEngineTls(
      tlsDir,
      b.hosts.slice(0, 3).map((h) => h.ip),
    );
    for (const h of b.hosts) {
      // gVisor installed the way the agent's binary method expects: versions/<release>/bin/runsc,
      // `current` → the running one, registered with dockerd through `current` (ptrace, no network).
      const gvisorRoot = path.join(h.dir, 'gvisor');
      const old = path.join(gvisorRoot, 'versions', '20221219', 'bin');
      await mkdir(old, { recursive: true });
      await symlink(path.join(b.packages.gvisor.old.bin, 'runsc'), path.join(old, 'runsc'));
      await symlink(path.join('versions', '20221219'), path.join(gvisorRoot, 'current'));
      const server = tls.servers.get(h.ip);
      const p = await prepareHost(b, h, server ? { tcpHost: `tcp://${h.ip}:2376` } : {});
      await writeDaemonJson(h, {
        ...(server ? { tlsverify: true, tlscacert: tls.caFile, tlscert: server.cert, tlskey: server.key } : {}),
        runtimes: {
          runsc: { path: path.join(gvisorRoot, 'current', 'bin', 'runsc'), runtimeArgs: ['--platform=ptrace', '--network=none'] },
        },
      });
      hosts.push(p);
    }
    await Promise.all(hosts.map((p) => service(p, 'start')));
    await Promise.all(hosts.map((p) => importBusybox(p.host)));

    // The swarm: host 1 initialises it, hosts 2-3 join as managers, 4-5 as workers.
    const [m1, ...rest] = hosts as [PreparedHost, ...PreparedHost[]];
    await exec(m1, ['docker', 'swarm', 'init', '--advertise-addr', m1.host.ip, '--default-addr-pool', '10.200.128.0/18']);
    const managerToken = await exec(m1, ['docker', 'swarm', 'join-token', '-q', 'manager']);
    const workerToken = await exec(m1, ['docker', 'swarm', 'join-token', '-q', 'worker']);
    for (const [i, p] of rest.entries()) {
      await exec(p, [
        'docker',
        'swarm',
        'join',
        '--token',
        i < 2 ? managerToken : workerToken,
        '--advertise-addr',
        p.host.ip,
        `${m1.host.ip}:2377`,
      ]);
    }
    // Three replicas, at most one per node, each answering with its container's hostname.
    await exec(m1, [
      'docker',
      'service',
      'create',
      '--detach',
      '--name',
      'echo',
      '--replicas',
      '3',
      '--replicas-max-per-node',
      '1',
      '--endpoint-mode',
      'dnsrr',
      '--publish',
      `mode=host,target=${PORT},published=${PORT}`,
      '--no-resolve-image',
      'local/busybox:1',
      'nc',
      '-ll',
      '-p',
      String(PORT),
      '-e',
      'hostname',
    ]);
    await waitFor(
      'three replicas answering',
      async () => {
        const answers = await Promise.all(hosts.map((p) => ask(p.host.ip, 1000).catch(() => '')));
        return answers.filter((a) => a !== '').length === 3 ? true : undefined;
      },
      60_000,
    );

    serverChild = spawn(
      '/bin/sh',
      [
        '-c',
        'echo $$ > "$1" && shift && exec "$@"',
        'sh',
        await serverCgroupProcs(b),
        process.execPath,
        '--import',
        'tsx',
        path.join(REPO, 'test/support/swarm/server.ts'),
      ],
      {
        cwd: REPO,
        env: {
          ...process.env,
          UPSHIFT_ADMIN_TOKEN: TOKEN,
          UPSHIFT_HOST: b.bridgeIp,
          UPSHIFT_PORT: String(20000 + Math.floor(Math.random() * 20000)),
          UPSHIFT_DATA_DIR: path.join(b.root, 'server'),
          UPSHIFT_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    serverChild.stdout?.on('data', (d: Buffer) => (serverOut += d.toString()));
    serverChild.stderr?.on('data', (d: Buffer) => (serverOut += d.toString()));
    base = await waitFor('the server', async () => /listening (\S+)/.exec(serverOut)?.[1], 60_000);

    const created = await api<{ id: string; joinToken: string }>('POST', '/clusters', {
      name: 'swarm-e2e',
      kind: 'swarm',
      manager: hosts.slice(0, 3).map((p) => `tcp://${p.host.ip}:2376`),
      tls: { ca: tls.ca, cert: tls.clientCert },
      tlsKey: tls.clientKey,
      drain: { enabled: true, timeoutSeconds: 60 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    clusterId = created.body.id;

    const bundle = await buildAgentBundle(path.join(b.root, 'upshift-agent.js'));
    for (const p of hosts) {
      const gvisorRoot = path.join(p.host.dir, 'gvisor');
      const verifyScript = path.join(p.host.dir, 'verify-sandbox.sh');
      // The operator's afterStart hook: a sandboxed container must start on the new runsc.
      await writeFile(
        verifyScript,
        `#!/bin/sh\n[ "$UPSHIFT_COMPONENT" = sandboxed-runtime ] || exit 0\nout=$(curl -s --unix-socket ${p.host.dockerSocket} -X POST -H 'content-type: application/json' -d '{"Image":"local/busybox:1","Cmd":["dmesg"],"HostConfig":{"Runtime":"runsc","NetworkMode":"none"}}' http://engine/v1.41/containers/create) || exit 1\nid=$(echo "$out" | sed -n 's/.*"Id":"\\([0-9a-f]*\\)".*/\\1/p')\n[ -n "$id" ] || { echo "create failed: $out"; exit 1; }\ncurl -sf --unix-socket ${p.host.dockerSocket} -X POST http://engine/v1.41/containers/$id/start >/dev/null || exit 1\ncurl -s --unix-socket ${p.host.dockerSocket} -X POST "http://engine/v1.41/containers/$id/wait" >/dev/null\nlogs=$(curl -s --unix-socket ${p.host.dockerSocket} "http://engine/v1.41/containers/$id/logs?stdout=1" | tr -d '\\000-\\010')\ncurl -s --unix-socket ${p.host.dockerSocket} -X DELETE "http://engine/v1.41/containers/$id?force=1" >/dev/null\necho "$logs" | grep -q 'Starting gVisor' || { echo "no gVisor sandbox: $logs"; exit 1; }\necho "a sandboxed container started on the new runsc"\n`,
        { mode: 0o755 },
      );
      const config = {
        dataDir: p.agentDataDir,
        dockerSocket: p.host.dockerSocket,
        components: {
          docker: {
            methods: ['binary'],
            installRoot: p.installRoot,
            configFiles: [p.daemonConfig],
            service: { kind: 'command', start: p.startArgv, stop: p.stopArgv },
          },
          'sandboxed-runtime': { methods: ['binary'], installRoot: gvisorRoot, service: { kind: 'none' } },
        },
        hooks: { afterStart: [[verifyScript]] },
        timeouts: { startSeconds: 30, stopSeconds: 60, verifySeconds: 30 },
        minFreeMegabytes: 256,
      };
      await writeFile(p.agentConfigFile, stringify(config));
      // No --name: the agent joins under its hostname, which is the swarm node's hostname.
      startAgent(p, bundle, ['--server', base, '--config', p.agentConfigFile], { UPSHIFT_JOIN_TOKEN: created.body.joinToken });
    }
    await waitFor(
      'five nodes with agents, three of them managers',
      async () => {
        const n = await nodes();
        const ok =
          n.length === 5 &&
          n.filter((x) => x.role === 'manager').length === 3 &&
          n.every((x) => x.versions['docker'] === '20.10.24' && x.versions['agent'] && x.versions['sandboxed-runtime'] === '20221219');
        return ok ? n : undefined;
      },
      90_000,
    );
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled(hosts.map((p) => stopAgent(p)));
    if (serverChild && serverChild.exitCode === null) {
      serverChild.kill('SIGTERM');
      await Promise.race([new Promise((r) => serverChild?.once('exit', r)), sleep(10_000)]);
      if (serverChild.exitCode === null) serverChild.kill('SIGKILL');
    }
    await Promise.allSettled(hosts.map((p) => service(p, 'stop')));
    if (bed) await bed.teardown();
  }, 180_000);

  it('reaches the managers only over TCP with a TLS client certificate, and never shows the key', async () => {
    const view = await api<Record<string, unknown>>('GET', `/clusters/${clusterId}`);
    expect(JSON.stringify(view.body)).not.toContain('PRIVATE KEY');
    expect(JSON.stringify(view.body)).toContain(`tcp://${hosts[0]?.host.ip}:2376`);
    const ping = (withCert: boolean) =>
      new Promise<string>((resolve) => {
        const req = https.request(
          {
            host: hosts[0]?.host.ip,
            port: 2376,
            path: '/_ping',
            ca: tls.ca,
            ...(withCert ? { cert: tls.clientCert, key: tls.clientKey } : {}),
            timeout: 10_000,
          },
          (res) => {
            res.resume();
            resolve(`HTTP ${res.statusCode}`);
          },
        );
        req.on('error', (e) => resolve(`refused: ${e.message}`));
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.end();
      });
    expect(await ping(true)).toBe('HTTP 200');
    expect(await ping(false)).toMatch(/^refused: /);
  });

  it('the swarm-services gate names a service short of replicas, and passes once it is fixed', async () => {
    const m1 = hosts[0] as PreparedHost;
    const worker = (hosts[3] as PreparedHost).host.name;
    const test = () => api<{ ok: boolean; message: string }>('POST', '/gates/test', { gate: { kind: 'swarm-services' }, clusterId });
    /** "Test now" until its answer says `seen` (the swarm converges on its own time). */
    const gateSays = (what: string, seen: (r: { ok: boolean; message: string }) => boolean, ms: number) =>
      waitFor(
        what,
        async () => {
          const r = await test();
          return r.status === 200 && seen(r.body) ? r.body : undefined;
        },
        ms,
      );
    const t0 = Date.now();
    // Two replicas, at most one per node, only on one worker: one runs, the other stays pending.
    await exec(m1, [
      'docker',
      'service',
      'create',
      '--detach',
      '--name',
      'gate-short',
      '--replicas',
      '2',
      '--replicas-max-per-node',
      '1',
      '--constraint',
      `node.hostname==${worker}`,
      '--no-resolve-image',
      'local/busybox:1',
      'sleep',
      '100000',
    ]);
    try {
      const short = await gateSays('the gate to see gate-short at 1 of 2 replicas', (r) => r.message.includes('gate-short 1/2'), 60_000);
      expect(short).toEqual({ ok: false, message: '1 of 2 replicated services run fewer replicas than desired: gate-short 1/2' });

      await exec(m1, ['docker', 'service', 'update', '--detach', '--constraint-rm', `node.hostname==${worker}`, 'gate-short']);
      const whole = await gateSays('the gate to pass', (r) => r.ok, 60_000);
      expect(whole.message).toBe('all 2 replicated services run their desired replicas: echo 3/3, gate-short 2/2');

      // A service scaled to no replicas has all it wants.
      await exec(m1, ['docker', 'service', 'scale', '--detach', 'gate-short=0']);
      const none = await gateSays('the gate to see gate-short at 0 of 0', (r) => r.message.includes('gate-short 0/0'), 30_000);
      expect(none).toEqual({ ok: true, message: 'all 2 replicated services run their desired replicas: echo 3/3, gate-short 0/0' });
    } finally {
      await exec(m1, ['docker', 'service', 'rm', 'gate-short']);
    }
    // Removed: the gate checks the one service left.
    await gateSays('gate-short to be gone', (r) => r.message === 'all 1 replicated services run their desired replicas: echo 3/3', 30_000);
    console.log(`[swarm e2e] swarm-services gate, short service then fixed: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 180_000);

  it('upgrades every engine to 26.1.5 with drain while the service keeps answering and two managers stay reachable', async () => {
    const b = bed as Testbed;
    const archive = await dockerArchive(b.packages);
    const upload = await api(
      'PUT',
      `/artifacts/docker/26.1.5/${archive.name}?method=binary&sha256=${archive.sha256}`,
      undefined,
      await readFile(archive.file),
    );
    expect(upload.status).toBe(201);

    // Every batch after the first waits for the swarm's replicated services to run all their replicas.
    const policy = { maxBatchPercent: 20, gates: [{ kind: 'swarm-services' }] };
    const plan = await api<{ batches: string[][] }>('POST', `/clusters/${clusterId}/upgrades/plan`, {
      component: 'docker',
      toVersion: '26.1.5',
      policy,
    });
    const managerNames = new Set(hosts.slice(0, 3).map((p) => p.host.name));
    expect(plan.body.batches.slice(0, 3).every((batch) => batch.length === 1 && managerNames.has(batch[0] as string))).toBe(true);

    // Probes: every 100 ms a client that knows the five addresses (as an external load
    // balancer does) asks them in turn until one answers, within 1 s.
    let probing = true;
    let probes = 0;
    let answered = 0;
    let firstTry = 0;
    let next = 0;
    const prober = (async () => {
      while (probing) {
        const started = Date.now();
        probes++;
        for (let i = 0; i < hosts.length && Date.now() - started < 1000; i++) {
          const ip = (hosts[(next + i) % hosts.length] as PreparedHost).host.ip;
          const reply = await ask(ip, 300).catch(() => '');
          if (reply !== '') {
            answered++;
            if (i === 0) firstTry++;
            break;
          }
        }
        next = (next + 1) % hosts.length;
        await sleep(Math.max(0, 100 - (Date.now() - started)));
      }
    })();
    // Quorum watch, in two parts.
    // 1. Which manager engines are stopped, every 100 ms: an engine that refuses /_ping
    //    on its socket is stopped (a slow answer is not). Upshift decides which engines
    //    it stops, so the assertion is on this: never two managers at once, and each
    //    manager was seen stopped once (so the watch sees what it is meant to see).
    // 2. Which managers answer GET /nodes, every 250 ms: a manager answers it only while
    //    its raft has a leader; after the leader stops, the others hold the request or
    //    fail it until a new one is elected (up to 15 s waited here). How long an election
    //    takes is Docker's and grows on a loaded machine, so this is printed, with why each
    //    dip happened; that every manager answers again is checked after the upgrade.
    let watching = true;
    let minManagers = 3;
    let minAnswering = 3;
    let longestWait = 0;
    let pingSamples = 0;
    const seenStopped = new Set<number>();
    const dips: string[] = [];
    const t0 = Date.now();
    const stopped = async (p: PreparedHost): Promise<boolean> =>
      engineRequest(p.host, 'GET', '/_ping', undefined, { timeoutMs: 5_000 }).then(
        () => false,
        (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED' || e.code === 'ENOENT',
      );
    const answersNodes = async (p: PreparedHost): Promise<string> => {
      const asked = Date.now();
      const reply = await engineRequest(p.host, 'GET', '/v1.41/nodes', undefined, { timeoutMs: 15_000 }).catch((e: Error) => e);
      if (!(reply instanceof Error) && reply.status === 200) {
        longestWait = Math.max(longestWait, Date.now() - asked);
        return '';
      }
      return reply instanceof Error ? reply.message : `${reply.status} ${reply.body.trim().slice(0, 120)}`;
    };
    const engineWatcher = (async () => {
      while (watching) {
        const down = await Promise.all(hosts.slice(0, 3).map(stopped));
        down.forEach((d, i) => d && seenStopped.add(i));
        pingSamples++;
        minManagers = Math.min(minManagers, down.filter((d) => !d).length);
        await sleep(100);
      }
    })();
    const raftWatcher = (async () => {
      while (watching) {
        const why = await Promise.all(hosts.slice(0, 3).map(answersNodes));
        const answering = why.filter((w) => w === '').length;
        if (answering < 2)
          dips.push(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${why.map((w, i) => `m${i + 1}=${w === '' ? 'up' : w}`).join(' ')}`);
        minAnswering = Math.min(minAnswering, answering);
        await sleep(250);
      }
    })();
    const watcher = Promise.all([engineWatcher, raftWatcher]);

    const started = await api<Upgrade>('POST', `/clusters/${clusterId}/upgrades`, {
      component: 'docker',
      toVersion: '26.1.5',
      policy,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const done = await waitUpgrade(started.body.id, 300_000).finally(() => {
      probing = false;
      watching = false;
    });
    await Promise.all([prober, watcher]);
    const seconds = (Date.now() - t0) / 1000;
    const fraction = answered / Math.max(1, probes);
    console.log(
      `[swarm e2e] engine upgrade 20.10.24 → 26.1.5 of 5 nodes: ${seconds.toFixed(1)} s; probes answered ${answered}/${probes} = ${(fraction * 100).toFixed(2)} % (first address tried: ${((firstTry / Math.max(1, probes)) * 100).toFixed(1)} %); manager engines running: min ${minManagers} of 3 over ${pingSamples} samples (each seen stopped: ${[...seenStopped].map((i) => `m${i + 1}`).join(', ')}); managers answering /nodes: min ${minAnswering} of 3 (longest answer ${(longestWait / 1000).toFixed(1)} s, leader elections)`,
    );
    if (dips.length > 0) console.log(`[swarm e2e] samples with fewer than two managers answering /nodes:\n  ${dips.join('\n  ')}`);
    expect(done.pauseReason, JSON.stringify(done.pauseReason)).toBeNull();
    expect(done.state).toBe('Completed');
    // The gate passed before each batch after the first, and before that batch started.
    const events = (
      await api<{ items: EventView[] }>('GET', `/events?upgradeId=${started.body.id}&type=gate.passed,gate.failed,batch.started&limit=500`)
    ).body.items.reverse();
    const batchStarts = events.filter((e) => e.type === 'batch.started');
    expect(batchStarts.length).toBe(plan.body.batches.length);
    const failed = events.filter((e) => e.type === 'gate.failed');
    if (failed.length > 0)
      console.log(`[swarm e2e] gate checks that failed before passing:\n  ${failed.map((e) => e.message).join('\n  ')}`);
    for (let index = 1; index < batchStarts.length; index++) {
      const startAt = events.findIndex((e) => e.type === 'batch.started' && e.data?.['index'] === index);
      const passed = events.findIndex((e) => e.type === 'gate.passed' && e.data?.['batchIndex'] === index);
      expect(passed, `gate.passed before batch ${index + 1}`).toBeGreaterThanOrEqual(0);
      expect(passed).toBeLessThan(startAt);
      const pass = events[passed] as EventView;
      expect(pass.data?.['kind']).toBe('swarm-services');
      expect(pass.data?.['message']).toBe('all 1 replicated services run their desired replicas: echo 3/3');
    }

    expect(minManagers).toBeGreaterThanOrEqual(2);
    expect([...seenStopped].sort()).toEqual([0, 1, 2]);
    expect(fraction).toBeGreaterThanOrEqual(0.99);

    for (const p of hosts) expect(await engineVersion(p.host)).toMatch(/^26\.1\.5/);
    const swarmNodes = await engineJson<{ Spec: { Availability: string; Labels?: Record<string, string> }; Status: { State: string } }[]>(
      (hosts[0] as PreparedHost).host,
      'GET',
      '/v1.41/nodes',
    );
    for (const n of swarmNodes) {
      expect(n.Status.State).toBe('ready');
      expect(n.Spec.Availability).toBe('active');
      expect(Object.keys(n.Spec.Labels ?? {}).filter((k) => k.startsWith('io.upshift'))).toEqual([]);
    }
    // The raft kept its quorum: every manager answers GET /nodes again (a last election
    // may still be settling, so each is given up to a minute).
    for (const p of hosts.slice(0, 3)) {
      const deadline = Date.now() + 60_000;
      let why = await answersNodes(p);
      while (why !== '' && Date.now() < deadline) {
        await sleep(500);
        why = await answersNodes(p);
      }
      expect(why, `${p.host.name} answers GET /nodes`).toBe('');
    }
    const log = await fetch(
      `${base}/api/v1/upgrades/${started.body.id}/nodes/${(await nodes()).find((n) => n.name === hosts[3]?.host.name)?.id}/log`,
      {
        headers: { authorization: `Bearer ${TOKEN}` },
      },
    ).then((r) => r.text());
    expect(log).toContain('drain: availability active → drain');
    expect(log).toContain('restore: availability drain → active');
  }, 420_000);

  it('upgrades gVisor 20221219 → 20240729: a sandbox started before still runs, a new one starts on the new runsc', async () => {
    const b = bed as Testbed;
    const [m1, , , w1] = hosts as [PreparedHost, PreparedHost, PreparedHost, PreparedHost];
    const before = new Map<string, Inspect>();
    for (const p of [m1, w1]) {
      await exec(p, [
        'docker',
        'run',
        '-d',
        '--name',
        'sandboxed-before',
        '--runtime',
        'runsc',
        '--network',
        'none',
        'local/busybox:1',
        'sleep',
        '100000',
      ]);
      before.set(p.host.name, await engineJson<Inspect>(p.host, 'GET', '/v1.41/containers/sandboxed-before/json'));
    }
    // The runsc 20240729 binary archive (bin/runsc), uploaded to the mirror.
    const tarball = path.join(b.root, 'runsc-20240729.tar.gz');
    const staged = path.join(b.root, 'runsc-archive');
    await mkdir(path.join(staged, 'bin'), { recursive: true });
    const r = await run([
      'sh',
      '-c',
      'cp -L "$1" "$2/bin/runsc" && tar -C "$2" -cf - bin | gzip -1 > "$3"',
      'sh',
      path.join(b.packages.gvisor.new.bin, 'runsc'),
      staged,
      tarball,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const sha = await sha256File(tarball);
    const upload = await api(
      'PUT',
      `/artifacts/sandboxed-runtime/20240729/runsc-20240729.tar.gz?method=binary&sha256=${sha}`,
      undefined,
      await readFile(tarball),
    );
    expect(upload.status, JSON.stringify(upload.body)).toBe(201);

    const started = await api<Upgrade>('POST', `/clusters/${clusterId}/upgrades`, {
      component: 'sandboxed-runtime',
      toVersion: '20240729',
      policy: { maxBatchPercent: 100 },
    });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const done = await waitUpgrade(started.body.id, 240_000);
    expect(done.pauseReason, JSON.stringify(done.pauseReason)).toBeNull();
    expect(done.state).toBe('Completed');

    for (const p of hosts) {
      expect(await readlink(path.join(p.host.dir, 'gvisor', 'current'))).toBe(path.join('versions', '20240729'));
    }
    for (const p of [m1, w1]) {
      const old = before.get(p.host.name) as Inspect;
      const now = await engineJson<Inspect>(p.host, 'GET', '/v1.41/containers/sandboxed-before/json');
      expect(now.State.Running).toBe(true);
      expect(now.State.StartedAt).toBe(old.State.StartedAt);
      expect(now.State.Pid).toBe(old.State.Pid);
      // A new sandbox runs the new runsc: its gVisor kernel boots, and its sandbox process is the new binary.
      await exec(p, [
        'docker',
        'run',
        '-d',
        '--name',
        'sandboxed-after',
        '--runtime',
        'runsc',
        '--network',
        'none',
        'local/busybox:1',
        'sleep',
        '100000',
      ]);
      const after = await engineJson<Inspect>(p.host, 'GET', '/v1.41/containers/sandboxed-after/json');
      expect(after.State.Running).toBe(true);
      const exeOf = async (pid: number) => readlink(`/proc/${pid}/exe`).catch(() => '');
      const exeOld = await exeOf(old.State.Pid);
      const exeNew = await exeOf(after.State.Pid);
      console.log(`[swarm e2e] ${p.host.name}: sandbox before runs ${exeOld}; sandbox after runs ${exeNew}`);
      expect(exeOld).toContain('20221219');
      expect(exeNew).toContain('20240729');
      const dmesg = await exec(p, ['docker', 'exec', 'sandboxed-after', 'dmesg']);
      expect(dmesg).toContain('Starting gVisor');
    }
    for (const x of await nodes()) expect(x.versions['sandboxed-runtime']).toBe('20240729');
  }, 300_000);
});
