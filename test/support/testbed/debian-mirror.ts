/**
 * What the Debian rootfs hosts (rootfs-hosts.ts) need around them to be upgraded with the
 * `apt` method through a real server, shared by test/hosts/debian.e2e.test.ts and the
 * bench's `apt` part (bench/real-apt.ts):
 *
 *   - an Upshift server (SQLite) on the testbed's bridge, the one address the hosts reach,
 *     with a catalog of the Debian 13 versions, in the testbed's cgroup so that its
 *     teardown also stops it, and both engines' Debian packages uploaded to its mirror,
 *     which serves them as a signed apt repository (`startDebianMirror`)
 *   - a host's agent configuration and the agent started inside the host (`rootfsAgentConfig`,
 *     `startRootfsAgent`)
 *
 *   const server = await startDebianMirror(fleet, token);
 *   await startRootfsAgent(fleet, fleet.hosts[0], server, joinToken, rootfsAgentConfig());
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { DebianRootfs } from './debian-rootfs.js';
import { REPO, serverCgroupProcs } from './host-agents.js';
import { DOCKER_SERVICE, type RootfsFleet, type RootfsHost } from './rootfs-hosts.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The catalog of the Debian 13 hosts: both engines and both containerd versions, with the exact package versions apt needs. */
function debianCatalog(rootfs: DebianRootfs): Record<string, unknown> {
  return {
    docker: [
      { version: '26.1.5', artifacts: [{ method: 'apt', file: 'docker.io', packageVersion: rootfs.docker26 }], notes: 'Debian 13' },
      {
        version: '28.5.2',
        artifacts: [{ method: 'apt', file: 'docker.io', packageVersion: rootfs.docker28 }],
        notes: 'Debian 13 (from sid)',
      },
    ],
    containerd: [
      { version: '1.7.24', artifacts: [{ method: 'apt', file: 'containerd', packageVersion: rootfs.containerd17 }], notes: 'Debian 13' },
      { version: '2.1.9', artifacts: [], notes: 'Debian 13 (from sid); the deb uploaded to the mirror' },
    ],
  };
}

export interface MirrorServer {
  /** `http://<bridge address>:<port>`: what the hosts' agents and apt reach. */
  base: string;
  child: ChildProcess;
  /** Calls /api/v1 as the admin: JSON in and out, or `raw` bytes in (uploads). */
  api<T = any>(method: string, p: string, body?: unknown, raw?: Buffer): Promise<{ status: number; body: T }>;
  /** A text answer of /api/v1 (a node task's log). */
  text(p: string): Promise<string>;
  /** What the server printed so far (the last `chars`). */
  output(chars?: number): string;
  /** SIGTERM, then waits for the exit. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `bin/upshift.js server` (SQLite, its data dir under the testbed) on the testbed's
 * bridge address, with `catalog`, and waits until it answers /healthz.
 */
async function startMirrorServer(fleet: RootfsFleet, opts: { token: string; catalog: Record<string, unknown> }): Promise<MirrorServer> {
  const data = path.join(fleet.bed.root, 'server');
  await mkdir(data, { recursive: true });
  const catalogFile = path.join(fleet.bed.root, 'catalog.yaml');
  await writeFile(catalogFile, stringify(opts.catalog));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const base = `http://${fleet.bed.bridgeIp}:${port}`;
  // sh joins the testbed's server cgroup, then execs the server: one PID throughout.
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      'echo $$ > "$1" && shift && exec "$@"',
      'sh',
      await serverCgroupProcs(fleet.bed),
      process.execPath,
      path.join(REPO, 'bin/upshift.js'),
      'server',
      '--host',
      fleet.bed.bridgeIp,
      '--port',
      String(port),
      '--data-dir',
      data,
      '--catalog',
      catalogFile,
      '--log-level',
      'warn',
      '--agent-heartbeat',
      '5s',
    ],
    { env: { ...process.env, UPSHIFT_ADMIN_TOKEN: opts.token }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const headers = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${opts.token}`, ...extra });
  const server: MirrorServer = {
    base,
    child,
    async api<T>(method: string, p: string, body?: unknown, raw?: Buffer) {
      const res = await fetch(`${base}/api/v1${p}`, {
        method,
        headers: headers(
          raw ? { 'content-type': 'application/octet-stream' } : body !== undefined ? { 'content-type': 'application/json' } : {},
        ),
        ...(raw ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
    },
    async text(p) {
      const res = await fetch(`${base}/api/v1${p}`, { headers: headers() });
      if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
      return res.text();
    },
    output: (chars = 3000) => out.slice(-chars),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`${base}/healthz`).catch(() => undefined))?.ok) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await server.stop();
      throw new Error(`the server did not answer on ${base}/healthz within 30 s:\n${server.output()}`);
    }
    await sleep(250);
  }
  return server;
}

/** Uploads both engines' Debian packages (what installing 26.1.5 and upgrading to 28.5.2 fetch) to the server's mirror. */
async function uploadEngines(server: MirrorServer, rootfs: DebianRootfs): Promise<void> {
  for (const [set, version] of [
    ['engine-26', '26.1.5'],
    ['engine-28', '28.5.2'],
  ] as const) {
    for (const file of rootfs[set]) {
      const bytes = await readFile(path.join(rootfs.debs, set, file));
      const up = await server.api('PUT', `/artifacts/docker/${version}/${file}?method=deb`, undefined, bytes);
      if (up.status !== 201) throw new Error(`uploading ${file} to the mirror: ${up.status} ${JSON.stringify(up.body)}`);
    }
  }
}

/** A server on the fleet's bridge whose mirror holds both engines' packages (as the apt repository the hosts install from). */
export async function startDebianMirror(fleet: RootfsFleet, token: string): Promise<MirrorServer> {
  const server = await startMirrorServer(fleet, { token, catalog: debianCatalog(fleet.rootfs) });
  try {
    await uploadEngines(server, fleet.rootfs);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

/**
 * A rootfs host's agent configuration: apt from the server's repository, the Docker
 * service as these hosts run it (no init system), snapshots by the operator's command
 * (a tarball of the dpkg status and /etc/docker), and the given hooks.
 */
export function rootfsAgentConfig(hooks: Record<string, string[][]> = {}): Record<string, unknown> {
  const service = { kind: 'command', start: [DOCKER_SERVICE, 'start'], stop: [DOCKER_SERVICE, 'stop'] };
  return {
    dataDir: '/var/lib/upshift-agent',
    dockerSocket: '/run/docker.sock',
    aptSource: 'mirror',
    components: {
      docker: { methods: ['apt'], service, configFiles: ['/etc/docker/daemon.json'] },
      // dockerd runs its own containerd here (no init system): restarting the Docker
      // service restarts containerd on the newly installed binary.
      containerd: { methods: ['deb'], service, configFiles: [] },
    },
    snapshot: {
      provider: 'command',
      create: [
        '/bin/sh',
        '-c',
        'f="/var/backups/upshift-$UPSHIFT_SNAPSHOT_LABEL.tar.gz"; tar -C / -czf "$f" var/lib/dpkg/status etc/docker && echo "$f"',
      ],
    },
    hooks,
    timeouts: { startSeconds: 60, stopSeconds: 60, verifySeconds: 60 },
    minFreeMegabytes: 256,
  };
}

/** Writes `config` to the host's /etc/upshift/agent.yaml and starts the agent inside it, joining with `joinToken`; its log is `<host dir>/agent.log`. */
export async function startRootfsAgent(
  fleet: RootfsFleet,
  h: RootfsHost,
  server: MirrorServer,
  joinToken: string,
  config: Record<string, unknown>,
): Promise<void> {
  await mkdir(path.join(h.merged, 'etc/upshift'), { recursive: true });
  await writeFile(path.join(h.merged, 'etc/upshift/agent.yaml'), stringify(config));
  fleet.spawnIn(
    h,
    [...fleet.agentArgv, '--server', server.base, '--config', '/etc/upshift/agent.yaml'],
    path.join(h.host.dir, 'agent.log'),
    {
      UPSHIFT_JOIN_TOKEN: joinToken,
    },
  );
}
