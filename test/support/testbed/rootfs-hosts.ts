/**
 * Test hosts with their own root file system: each is a testbed host (its own network
 * namespace, hostname, cgroup subtree; test/support/testbed/hosts.ts) plus a mount
 * namespace whose processes are chroot'ed into an overlay of the cached Debian 13 base
 * (lower, read-only, shared by every host) and the host's own upper/work directories. /proc,
 * /dev and /sys are mounted inside; dockerd, apt, dpkg and the agent run in there, so the
 * `apt` and `deb` methods change the host's own dpkg database and nothing of the machine's.
 *
 * Each host reaches only the Upshift server's address: its namespace has one route, to
 * the bridge address (where the test's server listens), and no other; the hosts do not
 * reach each other or anything else.
 *
 * Cleanup is the testbed's: every mount made here (the overlay, the pinned mount
 * namespace) is under the testbed's root and every process in its cgroup subtree, so the
 * testbed's teardown, its exit hooks and `cleanup.sh --stale` after a SIGKILL remove them
 * like its own (see README.md there, "Cleanup").
 *
 *   const fleet = await createRootfsHosts({ hosts: 4 });
 *   await fleet.exec(fleet.hosts[0], ['dpkg', '-l', 'docker.io']);
 *   await fleet.teardown();
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from './host-agents.js';
import { loadDebianRootfs, type DebianRootfs } from './debian-rootfs.js';
import { createTestbed, run, type ExecResult, type Testbed, type TestHost } from './hosts.js';

const STATE_ROOT = process.env.UPSHIFT_TESTBED_RUN ?? '/run/upshift-testbed';
const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Where a host sees the agent's files (bind-mounted read-only; see agentRuntime). */
const AGENT_DIR = '/opt/upshift';

export interface RootfsHost {
  host: TestHost;
  name: string;
  ip: string;
  /** The host's root file system as the machine sees it (the overlay's mount point). */
  merged: string;
  /** The Engine API socket, as the machine reaches it (`<merged>/run/docker.sock`). */
  dockerSocket: string;
  /** The pinned mount namespace (a bind mount of its nsfs file). */
  mntNs: string;
  utsFile: string;
  /** cgroup.procs of the host's cgroup for long-lived processes (the agent, and what it starts). */
  cgroupProcs: string;
  /** dockerd's --cgroup-parent: containers land in the host's cgroup subtree. */
  containerCgroup: string;
}

export interface RootfsFleet {
  bed: Testbed;
  rootfs: DebianRootfs;
  hosts: RootfsHost[];
  /** Runs a command inside the host (its namespaces, chroot'ed), with a clean environment. */
  exec(h: RootfsHost, argv: string[], options?: { timeoutMs?: number; env?: Record<string, string> }): Promise<ExecResult>;
  /** Starts a long-lived process inside the host, in its cgroup, output appended to `logFile` (outside the host). */
  spawnIn(h: RootfsHost, argv: string[], logFile: string, env?: Record<string, string>): number;
  /** The argv that runs the agent inside a host (see agentRuntime); empty with `agent: false`. */
  agentArgv: string[];
  /** Stops every host's dockerd, then the testbed's teardown removes everything. Idempotent. */
  teardown(): Promise<void>;
}

async function must(argv: string[], timeoutMs = 60_000): Promise<ExecResult> {
  const r = await run(argv, { timeoutMs });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

async function trackingHierarchy(): Promise<string> {
  for (const candidate of ['/sys/fs/cgroup/pids', '/sys/fs/cgroup']) {
    if (existsSync(path.join(candidate, 'cgroup.procs'))) return candidate;
  }
  throw new Error('no usable cgroup hierarchy under /sys/fs/cgroup');
}

/**
 * How the agent runs on a host, in one place: the single executable that `npm run build`
 * makes (dist/agent/upshift-agent-linux-x64), bind-mounted read-only into the host at
 * /opt/upshift/upshift-agent. The Debian base has no Node.js, so this also shows that the
 * agent needs none.
 */
export async function agentRuntime(h: RootfsHost): Promise<string[]> {
  const executable = path.join(REPO, 'dist/agent/upshift-agent-linux-x64');
  if (!existsSync(executable)) throw new Error(`${executable} is missing (npm ci; npm run build)`);
  await mkdir(path.join(h.merged, AGENT_DIR.slice(1)), { recursive: true });
  const inside = `${AGENT_DIR}/upshift-agent`;
  await writeFile(path.join(h.merged, inside.slice(1)), '');
  await must([
    'nsenter',
    `--mount=${h.mntNs}`,
    '--',
    'sh',
    '-c',
    'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2"',
    'sh',
    executable,
    path.join(h.merged, inside.slice(1)),
  ]);
  return [inside];
}

/**
 * dockerd as the host's service manager would run it (these hosts have no init system):
 * `start` launches it in the background with the host's flags, `stop` sends SIGTERM and
 * waits for it to exit. The agent's `command` service control calls this script.
 */
function dockerServiceScript(containerCgroup: string): string {
  return `#!/bin/sh
# The Docker service of this test host (no init system runs here): start | stop | status.
set -u
PIDFILE=/run/docker.pid
running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
case "\${1:-}" in
start)
  running && exit 0
  rm -f "$PIDFILE"
  setsid dockerd --iptables=false --ip6tables=false --bridge=none \\
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent=${containerCgroup} \\
    >>/var/log/dockerd.log 2>&1 </dev/null &
  exit 0 ;;
stop)
  running || exit 0
  pid="$(cat "$PIDFILE")"
  kill -TERM "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -gt 600 ] && { kill -KILL "$pid"; sleep 0.2; break; }
    sleep 0.1
  done
  exit 0 ;;
status) running ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
`;
}

export const DOCKER_SERVICE = '/usr/local/sbin/upshift-docker-service';

/**
 * Starts `hosts` rootfs hosts (dockerd 26.1.5 running on each) in parallel. `agent: false`
 * leaves /opt/upshift empty, for a test that installs the agent the way an operator does
 * (the install script writes /opt/upshift/upshift-agent, where the bind mount would be).
 */
export async function createRootfsHosts(opts: { hosts: number; prefix?: string; agent?: boolean }): Promise<RootfsFleet> {
  const t0 = Date.now();
  const rootfs = await loadDebianRootfs();
  const bed = await createTestbed({ hosts: opts.hosts, ...(opts.prefix ? { prefix: opts.prefix } : {}) });
  const tracking = await trackingHierarchy();
  const hosts: RootfsHost[] = [];
  let tornDown = false;

  const enter = (h: RootfsHost) => [
    'nsenter',
    `--mount=${h.mntNs}`,
    `--net=/run/netns/${h.host.netns}`,
    `--uts=${h.utsFile}`,
    '--',
    'chroot',
    h.merged,
    'env',
    '-i',
    `PATH=${HOST_PATH}`,
    'LANG=C.UTF-8',
    'HOME=/root',
  ];

  const fleet: RootfsFleet = {
    bed,
    rootfs,
    hosts,
    agentArgv: [],
    exec: (h, argv, options = {}) =>
      run([...enter(h), ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`), ...argv], {
        timeoutMs: options.timeoutMs ?? 120_000,
      }),
    spawnIn(h, argv, logFile, env = {}) {
      const fd = openSync(logFile, 'a');
      try {
        // sh joins the host's cgroup, then execs into the host: one PID throughout.
        const child = spawn(
          '/bin/sh',
          [
            '-c',
            'echo $$ > "$1" && shift && exec "$@"',
            'sh',
            h.cgroupProcs,
            ...enter(h),
            ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
            ...argv,
          ],
          { stdio: ['ignore', fd, fd], detached: true, env: { PATH: HOST_PATH } },
        );
        child.unref();
        if (child.pid === undefined) throw new Error(`${h.name}: could not spawn ${argv[0]}`);
        return child.pid;
      } finally {
        closeSync(fd);
      }
    },
    async teardown() {
      if (tornDown) return;
      tornDown = true;
      await Promise.allSettled(hosts.map((h) => fleet.exec(h, [DOCKER_SERVICE, 'stop'], { timeoutMs: 90_000 })));
      await bed.teardown();
    },
  };

  try {
    await Promise.all(
      bed.hosts.map(async (host) => {
        const base = path.join(host.dir, 'rootfs');
        const merged = path.join(base, 'merged');
        const nsDir = path.join(base, 'ns');
        for (const d of ['upper', 'work', 'merged', 'ns']) await mkdir(path.join(base, d), { recursive: true });
        await must([
          'mount',
          '-t',
          'overlay',
          'overlay',
          '-o',
          `lowerdir=${rootfs.rootfs},upperdir=${path.join(base, 'upper')},workdir=${path.join(base, 'work')}`,
          merged,
        ]);
        // A mount namespace is pinned by bind-mounting its nsfs file, which the kernel
        // allows only on a private mount: the ns directory is made one.
        await must(['mount', '--bind', nsDir, nsDir]);
        await must(['mount', '--make-private', nsDir]);
        const mntNs = path.join(nsDir, 'mnt');
        await writeFile(mntNs, '');
        await must([
          'unshare',
          `--mount=${mntNs}`,
          '--propagation',
          'private',
          '--',
          'sh',
          '-c',
          'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && mount --rbind /sys "$1/sys" && mount -t tmpfs -o mode=1777 tmpfs "$1/tmp"',
          'sh',
          merged,
        ]);
        // Only the server's address is reachable: the subnet route gives way to one host route.
        const subnetRoute = bed.subnet;
        await must(['ip', '-n', host.netns, 'route', 'del', subnetRoute]);
        await must(['ip', '-n', host.netns, 'route', 'add', `${bed.bridgeIp}/32`, 'dev', 'eth0']);
        const cgroup = `upshift-tb/${bed.prefix}/n${host.index}`;
        await mkdir(path.join(tracking, cgroup, 'host'), { recursive: true });
        const h: RootfsHost = {
          host,
          name: host.name,
          ip: host.ip,
          merged,
          dockerSocket: path.join(merged, 'run', 'docker.sock'),
          mntNs,
          utsFile: path.join(STATE_ROOT, bed.prefix, `n${host.index}.uts`),
          cgroupProcs: path.join(tracking, cgroup, 'host', 'cgroup.procs'),
          containerCgroup: `/${cgroup}/ctr`,
        };
        await writeFile(path.join(merged, DOCKER_SERVICE.slice(1)), dockerServiceScript(h.containerCgroup), { mode: 0o755 });
        await mkdir(path.join(merged, 'etc', 'docker'), { recursive: true });
        await writeFile(path.join(merged, 'etc', 'docker', 'daemon.json'), '{}\n');
        hosts.push(h);
      }),
    );
    hosts.sort((a, b) => a.host.index - b.host.index);
    if (opts.agent !== false) {
      fleet.agentArgv = await agentRuntime(hosts[0] as RootfsHost);
      for (const h of hosts.slice(1)) await agentRuntime(h);
    }
    // dockerd 26.1.5 (the base's own) started on every host, as its service would.
    await Promise.all(
      hosts.map(async (h) => {
        fleet.spawnIn(h, [DOCKER_SERVICE, 'start'], path.join(h.host.dir, 'service.log'));
        await waitForSocket(fleet, h, 60_000);
      }),
    );
  } catch (e) {
    await fleet.teardown();
    throw e;
  }
  startSeconds = (Date.now() - t0) / 1000;
  return fleet;
}

/** Seconds the latest createRootfsHosts took (base from the cache, hosts, dockerd answering). */
export let startSeconds = 0;

async function waitForSocket(fleet: RootfsFleet, h: RootfsHost, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fleet.exec(h, ['docker', 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
    if (r.code === 0 && r.stdout.trim() !== '') return;
    if (Date.now() > deadline) {
      const log = await fleet.exec(h, ['tail', '-20', '/var/log/dockerd.log']);
      throw new Error(`${h.name}: dockerd did not answer within ${timeoutMs / 1000} s: ${r.stderr}\n${log.stdout}`);
    }
    await new Promise((r2) => setTimeout(r2, 250));
  }
}
