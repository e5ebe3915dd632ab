/**
 * Part `apt`: what Upshift adds to a real `apt` upgrade of Docker Engine, measured.
 *
 * Each run starts three fresh Debian 13 rootfs hosts (test/support/testbed/rootfs-hosts.ts:
 * overlays of the cached base, so every run starts from Engine 26.1.5 with a clean dpkg
 * database) and a real server (SQLite) on their bridge, whose mirror serves both engines'
 * packages as its signed apt repository (test/support/testbed/debian-mirror.ts, the same
 * setup as test/hosts/debian.e2e.test.ts). Every host runs the agent single executable,
 * joined to a cluster of its own, so the hosts are identical; then, one after the other
 * (the order turns each run, since the machine's 2 cores are shared):
 *
 *   upshift    an `apt` upgrade 26.1.5 → 28.5.2 of that one host through the server; the
 *              time is the node task's startedAt → finishedAt (the agent reported it
 *              verified), and the task log's lines (`HH:MM:SS.mmm [step] …`, stamped by the
 *              agent) say how long each step took
 *   snapshot   the same with `snapshot: before` (the operator's command provider, a tarball
 *              of the dpkg status and /etc/docker); its time is the upgrade's createdAt →
 *              the node task's finishedAt, the snapshot phase included
 *   bare       by hand on the third host, with the same mirror as its only apt source (the
 *              files the agent writes: key, deb822 source, auth.conf with the node's
 *              credential): `apt-get update`, `apt-get install -y docker.io=VERSION`, stop
 *              and start dockerd with the host's service script, and poll `docker version`
 *              until it says 28.5.2 (every 250 ms, as the agent polls)
 *
 * Needs root (namespaces, overlay mounts, chroot) and the cached base
 * (scripts/testbed/debian-rootfs.sh); without them the part says what is missing and
 * how to get it, and measures nothing (BENCHMARKS.md keeps the previous figures).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir, loadavg } from 'node:os';
import path from 'node:path';
import { aptMirrorPaths, mirrorAuth, mirrorSource } from '../src/agent/recipes/apt-mirror.js';
import { rootfsAgentConfig, startDebianMirror, startRootfsAgent, type MirrorServer } from '../test/support/testbed/debian-mirror.js';
import { ensureBuilt } from '../test/support/testbed/host-agents.js';
import { DOCKER_SERVICE, createRootfsHosts, type RootfsFleet, type RootfsHost } from '../test/support/testbed/rootfs-hosts.js';
import { deferCleanup } from './cleanup.js';
import { fmt, median, sleep, type Report } from './stats.js';

const RUNS = 3;
const TOKEN = 'bench-apt-admin-token-3c9e1b7a5d2f4e6c8a0b1d3f5e7a9c2b';
const VARIANTS = ['upshift', 'snapshot', 'bare'] as const;
type Variant = (typeof VARIANTS)[number];

/** The recipe's steps, in order, as its log lines name them (`[step] …`; hooks count to their step). */
const STEPS = ['preflight', 'backup', 'stop', 'install', 'start', 'verify'] as const;
type Step = (typeof STEPS)[number];
const HOOK_STEP: Record<string, Step> = { preflight: 'preflight', beforeStop: 'stop', afterStart: 'verify' };

/** One Upshift upgrade of one host: seconds in all and where they went. */
interface UpshiftRun {
  /** The node task's startedAt → finishedAt. */
  task: number;
  /** The upgrade's createdAt → the node task's finishedAt (what an operator waits for). */
  total: number;
  /** createdAt → snapshot.succeeded (0 without a snapshot). */
  snapshot: number;
  /** createdAt → the node task's startedAt, after the snapshot. */
  toTask: number;
  /** The node task's startedAt → the agent's first log line. */
  dispatch: number;
  steps: Record<Step, number>;
  /** Within preflight: the mirror's `apt-get update` (from "apt source:" to the simulation's line). */
  aptUpdate: number;
  /** Within install: apt's downloads from the mirror (from the install line to apt's "Fetched …" line). */
  download: number;
  /** The Engine down: the stop step's first line → the verify step's first line (it answered again). */
  downtime: number;
  /** The agent's last log line → the node task's finishedAt (result reported, versions read). */
  report: number;
}

interface BareRun {
  total: number;
  update: number;
  install: number;
  restart: number;
}

const cacheDir = () => process.env['UPSHIFT_TESTBED_CACHE'] ?? path.join(homedir(), '.cache', 'upshift-testbed');

/** Why this part cannot run here, with what to do about it; undefined when it can. */
function missing(): string | undefined {
  if (process.getuid?.() !== 0)
    return 'it needs root (network and mount namespaces, overlay mounts, chroot): run `sudo npm run bench -- --only apt`';
  const base = path.join(cacheDir(), 'debian13');
  if (!existsSync(path.join(base, 'rootfs', '.complete')) || !existsSync(path.join(base, 'manifest.json')))
    return `the cached Debian 13 base is missing (${base}): make it once with \`sudo scripts/testbed/debian-rootfs.sh\` (debootstrap, 1–2 min, reaches the Debian archive)`;
  if (!existsSync(path.join(cacheDir(), 'manifest.json')))
    return `the testbed's package cache is missing (${cacheDir()}): make it once with \`sudo scripts/testbed/fetch-packages.sh\``;
  return undefined;
}

/** `HH:MM:SS.mmm` stamped by the agent, on the day of the server's `at`: milliseconds since the epoch. */
function agentTime(at: string, stamp: string): number {
  const t = Date.parse(`${at.slice(0, 10)}T${stamp}Z`);
  const server = Date.parse(at);
  // A line stamped just before midnight and received just after it.
  return t - server > 12 * 3_600_000 ? t - 86_400_000 : t;
}

interface LogLine {
  t: number;
  step: Step | undefined;
  text: string;
}

/** A node task's log (`<server at> <agent HH:MM:SS.mmm> <line>`) as timed lines with their step. */
function parseTaskLog(log: string): LogLine[] {
  const out: LogLine[] = [];
  for (const raw of log.split('\n')) {
    const m = /^(\S+) (\d\d:\d\d:\d\d\.\d{3}) (.*)$/.exec(raw);
    if (!m) continue;
    const text = m[3] as string;
    const tag = /^\[(\w+)(?: (\w+))?\]/.exec(text);
    let step: Step | undefined;
    if (tag?.[1] === 'hook') step = HOOK_STEP[tag[2] ?? ''];
    else if ((STEPS as readonly string[]).includes(tag?.[1] ?? '')) step = tag?.[1] as Step;
    out.push({ t: agentTime(m[1] as string, m[2] as string), step, text });
  }
  return out;
}

/** Seconds per step: from its first line to the next step's first line; the last one ends at the log's last line. */
function stepTimes(lines: LogLine[]): Record<Step, number> {
  const first = new Map<Step, number>();
  for (const l of lines) if (l.step && !first.has(l.step)) first.set(l.step, l.t);
  const end = lines[lines.length - 1]?.t ?? 0;
  const out = Object.fromEntries(STEPS.map((s) => [s, 0])) as Record<Step, number>;
  const seen = STEPS.filter((s) => first.has(s));
  seen.forEach((s, i) => {
    const next = seen[i + 1];
    out[s] = ((next === undefined ? end : (first.get(next) as number)) - (first.get(s) as number)) / 1000;
  });
  return out;
}

interface NodeTask {
  nodeId: string;
  state: string;
  startedAt: string;
  finishedAt: string;
  error: string | null;
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, why: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${await why()}`);
    await sleep(250);
  }
}

/** One fresh set of hosts and a server: the three variants one after the other. */
class Run {
  private constructor(
    readonly fleet: RootfsFleet,
    readonly server: MirrorServer,
    readonly clusters: Map<Variant, { id: string; host: RootfsHost }>,
  ) {}

  static async start(): Promise<{ run: Run; done: () => Promise<void> }> {
    const fleet = await createRootfsHosts({ hosts: VARIANTS.length });
    let server: MirrorServer | undefined;
    const done = deferCleanup(async () => {
      await server?.stop();
      await fleet.teardown();
    });
    try {
      server = await startDebianMirror(fleet, TOKEN);
      const clusters = new Map<Variant, { id: string; host: RootfsHost }>();
      for (const [i, variant] of VARIANTS.entries()) {
        const host = fleet.hosts[i] as RootfsHost;
        const made = await server.api<{ id: string; joinToken: string }>('POST', '/clusters', { name: `apt-${variant}`, kind: 'hosts' });
        if (made.status !== 201) throw new Error(`creating a cluster: ${made.status} ${JSON.stringify(made.body)}`);
        clusters.set(variant, { id: made.body.id, host });
        await startRootfsAgent(fleet, host, server, made.body.joinToken, rootfsAgentConfig());
      }
      const run = new Run(fleet, server, clusters);
      for (const { id, host } of clusters.values()) {
        await waitUntil(
          `${host.name}'s agent to join`,
          async () => {
            const items = (await server?.api<{ items: { versions: Record<string, string> }[] }>('GET', `/clusters/${id}/nodes`))?.body
              .items;
            return items?.length === 1 && items[0]?.versions['docker'] === '26.1.5' ? true : undefined;
          },
          60_000,
          () => run.diagnostics(),
        );
      }
      return { run, done };
    } catch (e) {
      await done();
      throw e;
    }
  }

  async diagnostics(): Promise<string> {
    const parts = [`--- server ---\n${this.server.output()}`];
    for (const h of this.fleet.hosts) {
      const log = await readFile(path.join(h.host.dir, 'agent.log'), 'utf8').catch(() => '');
      parts.push(`--- ${h.name} agent ---\n${log.split('\n').slice(-30).join('\n')}`);
    }
    return parts.join('\n');
  }

  private async dpkgDocker(h: RootfsHost): Promise<string> {
    const r = await this.fleet.exec(h, ['dpkg-query', '-W', '-f=${Status}\t${Version}', 'docker.io']);
    const [status, version] = r.stdout.split('\t');
    return status === 'install ok installed' ? (version ?? '') : `not installed (${r.stdout.trim() || r.stderr.trim()})`;
  }

  /** The host runs Engine 28.5.2 from the package the catalog names: anything else is a failed run, not a figure. */
  private async checkUpgraded(h: RootfsHost): Promise<void> {
    const v = await this.dpkgDocker(h);
    if (v !== this.fleet.rootfs.docker28) throw new Error(`${h.name}: dpkg says docker.io ${v}, not ${this.fleet.rootfs.docker28}`);
    const r = await this.fleet.exec(h, ['docker', 'version', '--format', '{{.Server.Version}}']);
    if (!r.stdout.startsWith('28.5.2')) throw new Error(`${h.name}: docker version says ${r.stdout.trim() || r.stderr.trim()}`);
  }

  async upshift(variant: 'upshift' | 'snapshot'): Promise<UpshiftRun> {
    const { id: clusterId, host } = this.clusters.get(variant) as { id: string; host: RootfsHost };
    const started = await this.server.api<{ id: string }>('POST', `/clusters/${clusterId}/upgrades`, {
      component: 'docker',
      toVersion: '28.5.2',
      ...(variant === 'snapshot' ? { snapshot: 'before' } : {}),
    });
    if (started.status !== 201) throw new Error(`starting the upgrade: ${started.status} ${JSON.stringify(started.body)}`);
    const id = started.body.id;
    const upgrade = await waitUntil(
      `upgrade ${id} to end`,
      async () => {
        const u = (await this.server.api<{ state: string; createdAt: string }>('GET', `/upgrades/${id}`)).body;
        return ['Upgrading', 'BackingUp'].includes(u.state) ? undefined : u;
      },
      600_000,
      () => this.diagnostics(),
    );
    const task = (await this.server.api<{ items: NodeTask[] }>('GET', `/upgrades/${id}/nodes`)).body.items[0];
    if (upgrade.state !== 'Completed' || !task || task.state !== 'succeeded')
      throw new Error(`upgrade ${id} ended ${upgrade.state} (node task ${task?.state}: ${task?.error})\n${await this.diagnostics()}`);
    await this.checkUpgraded(host);
    const events = (await this.server.api<{ items: { type: string; at: string }[] }>('GET', `/events?upgradeId=${id}&limit=200`)).body
      .items;
    const snap = events.find((e) => e.type === 'snapshot.succeeded');
    const lines = parseTaskLog(await this.server.text(`/upgrades/${id}/nodes/${task.nodeId}/log`));
    const createdAt = Date.parse(upgrade.createdAt);
    const startedAt = Date.parse(task.startedAt);
    const finishedAt = Date.parse(task.finishedAt);
    const firstLine = lines[0]?.t ?? startedAt;
    const lastLine = lines[lines.length - 1]?.t ?? finishedAt;
    const sourceLine = lines.find((l) => l.text.startsWith('[preflight] apt source:'))?.t;
    const planLine = lines.find((l) => l.text.startsWith('[preflight] apt will change'))?.t;
    const installLine = lines.find((l) => l.text.startsWith('[install] install:'))?.t;
    const fetchedLine = lines.find((l) => /^\[install\]\s+Fetched /.test(l.text))?.t;
    const stopLine = lines.find((l) => l.step === 'stop')?.t;
    const verifyLine = lines.find((l) => l.step === 'verify')?.t;
    return {
      task: (finishedAt - startedAt) / 1000,
      total: (finishedAt - createdAt) / 1000,
      snapshot: snap ? (Date.parse(snap.at) - createdAt) / 1000 : 0,
      toTask: (startedAt - createdAt) / 1000,
      dispatch: (firstLine - startedAt) / 1000,
      steps: stepTimes(lines),
      aptUpdate: sourceLine !== undefined && planLine !== undefined ? (planLine - sourceLine) / 1000 : NaN,
      download: installLine !== undefined && fetchedLine !== undefined ? (fetchedLine - installLine) / 1000 : NaN,
      downtime: stopLine !== undefined && verifyLine !== undefined ? (verifyLine - stopLine) / 1000 : NaN,
      report: (finishedAt - lastLine) / 1000,
    };
  }

  /**
   * The bare host's apt source is the same mirror, written as the agent writes it
   * (apt-mirror.ts): the repository's key, its deb822 source and the node's credential
   * for apt. Not timed: an operator's host has its sources already.
   */
  async configureBareSource(): Promise<void> {
    const { host } = this.clusters.get('bare') as { id: string; host: RootfsHost };
    const stored = JSON.parse(await readFile(path.join(host.merged, 'var/lib/upshift-agent/credential.json'), 'utf8')) as {
      credential: string;
    };
    const key = await fetch(`${this.server.base}/api/v1/agent/apt/key.gpg`, { headers: { authorization: `Bearer ${stored.credential}` } });
    if (!key.ok) throw new Error(`the mirror's key: ${key.status} ${await key.text()}`);
    const url = `${this.server.base}/api/v1/agent/apt`;
    const inside = aptMirrorPaths();
    const outside = aptMirrorPaths(path.join(host.merged, 'etc/apt'));
    for (const p of [outside.keyring, outside.sources, outside.auth]) await mkdir(path.dirname(p), { recursive: true });
    await writeFile(outside.keyring, Buffer.from(await key.arrayBuffer()), { mode: 0o644 });
    await writeFile(outside.sources, mirrorSource(url, inside.keyring), { mode: 0o644 });
    await writeFile(outside.auth, mirrorAuth(url, stored.credential), { mode: 0o600 });
  }

  async bare(): Promise<BareRun> {
    const { host } = this.clusters.get('bare') as { id: string; host: RootfsHost };
    const apt = async (argv: string[]) => {
      const r = await this.fleet.exec(host, argv, { timeoutMs: 600_000, env: { DEBIAN_FRONTEND: 'noninteractive' } });
      if (r.code !== 0) throw new Error(`${host.name}: ${argv.join(' ')} failed (${r.code}): ${r.stderr.slice(-2000)}`);
    };
    const t0 = Date.now();
    await apt(['apt-get', 'update', '-q']);
    const t1 = Date.now();
    await apt(['apt-get', 'install', '-y', '-q', `docker.io=${this.fleet.rootfs.docker28}`]);
    const t2 = Date.now();
    const stop = await this.fleet.exec(host, [DOCKER_SERVICE, 'stop'], { timeoutMs: 90_000 });
    if (stop.code !== 0) throw new Error(`${host.name}: stopping dockerd: ${stop.stderr}`);
    // Started in the host's cgroup, as its service manager (and the agent) would.
    this.fleet.spawnIn(host, [DOCKER_SERVICE, 'start'], path.join(host.host.dir, 'service.log'));
    await waitUntil(
      `${host.name}'s dockerd 28.5.2 to answer`,
      async () => {
        const r = await this.fleet.exec(host, ['docker', 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
        return r.code === 0 && r.stdout.startsWith('28.5.2') ? true : undefined;
      },
      120_000,
      async () => (await this.fleet.exec(host, ['tail', '-20', '/var/log/dockerd.log'])).stdout,
    );
    const t3 = Date.now();
    await this.checkUpgraded(host);
    return { total: (t3 - t0) / 1000, update: (t1 - t0) / 1000, install: (t2 - t1) / 1000, restart: (t3 - t2) / 1000 };
  }
}

const s = (x: number) => `${fmt(x, 1)} s`;
const med = <T>(runs: T[], f: (r: T) => number) => median(runs.map(f));

export async function benchRealApt(report: Report): Promise<void> {
  const why = missing();
  if (why) {
    console.log(`  skipped: ${why}; BENCHMARKS.md keeps this part's previous figures`);
    return;
  }
  await ensureBuilt();
  const loadBefore = loadavg();
  const ups: UpshiftRun[] = [];
  const snaps: UpshiftRun[] = [];
  const bares: BareRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    const { run, done } = await Run.start();
    try {
      await run.configureBareSource();
      // The order turns each run: none of the three always goes first on a warm cache.
      const order = VARIANTS.map((_, j) => VARIANTS[(i + j) % VARIANTS.length] as Variant);
      for (const variant of order) {
        if (variant === 'bare') {
          const b = await run.bare();
          bares.push(b);
          console.log(
            `  run ${i + 1} bare: ${s(b.total)} (apt-get update ${s(b.update)}, install ${s(b.install)}, restart → answer ${s(b.restart)})`,
          );
        } else {
          const u = await run.upshift(variant);
          (variant === 'upshift' ? ups : snaps).push(u);
          console.log(
            `  run ${i + 1} ${variant}: task ${s(u.task)}, upgrade start → verified ${s(u.total)} (snapshot ${s(u.snapshot)}; down ${s(u.downtime)}; apt's downloads ${s(u.download)}; ${STEPS.map((st) => `${st} ${s(u.steps[st])}`).join(', ')})`,
          );
        }
      }
    } finally {
      await done();
    }
  }
  const bare = med(bares, (b) => b.total);
  const task = med(ups, (u) => u.task);
  const total = med(ups, (u) => u.total);
  const snapTotal = med(snaps, (u) => u.total);
  const list = (xs: number[]) => xs.map((x) => fmt(x, 1)).join(', ');
  // Each run's hosts share the same few minutes of the machine's load: the ratio within a run is the steadier figure.
  const ratios = ups.map((u, i) => u.task / (bares[i] as BareRun).total);
  const load = [loadBefore, loadavg()].map((l) => l.map((x) => fmt(x, 1)).join(', '));
  report(
    `Docker Engine 26.1.5 → 28.5.2 with apt from the server's mirror, one Debian 13 host, medians of ${RUNS} runs on fresh hosts: Upshift ${s(task)} (node task start → verified; runs ${list(ups.map((u) => u.task))}), bare ${s(bare)} (runs ${list(bares.map((b) => b.total))}); Upshift / bare = ${fmt(task / bare, 2)}, within each run ${ratios.map((r) => fmt(r, 2)).join(', ')} (median ${fmt(median(ratios), 2)}; target ≤ 1.2)`,
  );
  report(
    `  bare (apt-get update; apt-get install -y docker.io=VERSION while dockerd runs; stop and start dockerd; poll docker version): apt-get update ${s(med(bares, (b) => b.update))}, install ${s(med(bares, (b) => b.install))}, restart → answer ${s(med(bares, (b) => b.restart))}`,
  );
  report(
    `  Upshift's task by step (medians): ${STEPS.map((st) => `${st} ${s(med(ups, (u) => u.steps[st]))}`).join(', ')}; in preflight, the mirror's apt-get update and apt's simulation ${s(med(ups, (u) => u.aptUpdate))}; in install, apt's downloads ${s(med(ups, (u) => u.download))}; task start → the agent's first line ${s(med(ups, (u) => u.dispatch))}, its last line → task finished ${s(med(ups, (u) => u.report))}`,
  );
  report(
    `  what Upshift adds to apt and the restart (preflight, backup, verify, dispatch and report): ${s(med(ups, (u) => u.steps.preflight + u.steps.backup + u.steps.verify + u.dispatch + u.report))} against bare's apt-get update ${s(med(bares, (b) => b.update))}; the rest is apt-get install and the restart, done by both`,
  );
  report(
    `  the Engine is down longer with Upshift: ${s(med(ups, (u) => u.downtime))} (stop → answering again: the recipe stops dockerd before apt-get install) against bare's ${s(med(bares, (b) => b.restart))} (apt-get install while dockerd runs, then a restart)`,
  );
  report(
    `  from the upgrade's start (POST) instead of the node task's: ${s(total)} (/ bare = ${fmt(total / bare, 2)}), of which start → node task ${s(med(ups, (u) => u.toTask))}; with snapshot: before, ${s(snapTotal)} (runs ${list(snaps.map((u) => u.total))}; / bare = ${fmt(snapTotal / bare, 2)}): snapshot taken ${s(med(snaps, (u) => u.snapshot))} after the start, node task ${s(med(snaps, (u) => u.task))}`,
  );
  report(`  load average (1, 5, 15 min) before ${load[0]}, after ${load[1]} (2 cores shared with other work)`);
}

export const REAL_APT_METHOD = `Each of ${RUNS} runs starts three fresh Debian 13 rootfs hosts (overlays of the cached base, so each starts from Docker Engine 26.1.5 with its own dpkg database; test/support/testbed/rootfs-hosts.ts) and a real server (SQLite) on their bridge, whose mirror serves both engines' Debian packages as its signed apt repository; every host runs the agent single executable, joined to a cluster of its own, and reaches only the server. Then, one after the other, in an order that turns each run: Upshift upgrades one host to 28.5.2 with the \`apt\` method (\`apt-get install docker.io=VERSION\` from the mirror; no containers on the hosts), timed from the node task's start to its finish (the agent reported the host verified); the same with \`snapshot: before\` on the second host, timed from the upgrade's start; and on the third host, by hand with the same mirror as its apt source: \`apt-get update\`, \`apt-get install -y docker.io=VERSION\`, stop and start dockerd, and \`docker version\` polled every 250 ms until it answers 28.5.2. Where Upshift's time goes is read from the task log, whose lines the agent stamps (\`[step]\` tags). 2 shared cores: read the medians and the ratio. Needs root and \`scripts/testbed/debian-rootfs.sh\`'s cached base; skipped with a message otherwise (\`npm run bench -- --only apt\`).`;
