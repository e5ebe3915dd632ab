/**
 * `npm run bench`: prints the engine's figures and writes BENCHMARKS.md. Medians and
 * ratios, since the machines are shared and noisy. Uses the real built server as a child
 * process, SQLite and a private PostgreSQL (started here when UPSHIFT_TEST_PG_URL is not set).
 *
 * Parts, in the order they run (all by default):
 *   planner   the batch planner on 100,000 nodes
 *   engine    makespan on 1,000 and 200 simulated nodes, SQLite
 *   fleet     100 simulated clusters upgrading at once, SQLite
 *   postgres  engine and fleet again on PostgreSQL
 *   huge      one simulated cluster of 100,000 nodes upgraded under one server, its peak RSS (bench/huge.ts)
 *   list      GET /api/v1/clusters with 1,000 clusters, side by side with a trivial route (GET /api/v1/session)
 *   paging    8 viewers paging through the node lists of a 100,000-node cluster, server RSS (bench/paging.ts)
 *   agents    1,000 real agents (20 processes × 50) on loopback, a docker upgrade (bench/agents.ts)
 *   agents5k  the same with 5,000 agents (50 processes × 100), batches of 100; only with --only
 *   ansible   side by side with Ansible `serial` on 100 hosts (bench/ansible.ts; root, installs
 *             ansible and openssh-server with apt-get when missing)
 *   apt       a real `apt` upgrade of Docker Engine on a Debian 13 rootfs host, Upshift against
 *             a bare apt-get (bench/real-apt.ts; root and the cached base, else skipped)
 *
 * `npm run bench -- --only agents,ansible` runs some parts; BENCHMARKS.md then keeps the
 * other parts' figures from its previous run (each part's block is marked in the file).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { batchCap, planBatches, type PlannableNode } from '../src/domain/batch-planner.js';
import type { ServerProcess } from '../test/support/server.js';
import { AGENTS_METHOD, benchAgents } from './agents.js';
import { benchSideBySide, SIDE_BY_SIDE_METHOD } from './ansible.js';
import { deferCleanup, runPendingCleanups, startBenchServer } from './cleanup.js';
import { benchHuge, HUGE_METHOD } from './huge.js';
import { benchPaging, PAGING_METHOD } from './paging.js';
import { benchRealApt, REAL_APT_METHOD } from './real-apt.js';
import { fmt, median, pct, processStats, sleep } from './stats.js';

function benchPlanner(): void {
  const nodes: PlannableNode[] = Array.from({ length: 100_000 }, (_, i) => ({
    id: `n${i}`,
    name: `node-${i + 1}`,
    role: i < 5 ? 'manager' : 'worker',
  }));
  const times: number[] = [];
  let batches = 0;
  for (let run = 0; run < 7; run++) {
    const t0 = performance.now();
    batches = planBatches(nodes, batchCap(nodes.length, 10)).length;
    times.push(performance.now() - t0);
  }
  report(`plan 100,000 nodes: median ${fmt(median(times), 1)} ms over 7 runs (${batches} batches)`);
}

async function upgradeMakespan(s: ServerProcess, name: string, nodes: number, seconds: number, policy?: Record<string, unknown>) {
  const cluster = await s.api('/api/v1/clusters', {
    body: { name, kind: 'simulated', simulation: { nodes, upgradeSeconds: seconds, versions: { agent: '1.1.0' } } },
  });
  if (cluster.status !== 201) throw new Error(cluster.text);
  const up = (await s.api(`/api/v1/clusters/${cluster.body.id}/upgrades`, { body: { component: 'docker', ...(policy ? { policy } : {}) } }))
    .body;
  let u;
  for (;;) {
    u = (await s.api(`/api/v1/upgrades/${up.id}`)).body;
    if (u.state === 'Completed') break;
    if (u.state !== 'Upgrading') throw new Error(`upgrade ended ${u.state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const makespan = (Date.parse(u.finishedAt) - Date.parse(u.createdAt)) / 1000;
  const batchSum = u.batches.reduce(
    (a: number, b: { startedAt: string; finishedAt: string }) => a + (Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000,
    0,
  );
  // The time the health gates' own checks took (each gate.passed/gate.failed event says), so
  // that a gated run's overhead can be split into the checks and what the engine adds.
  let gateSeconds = 0;
  if (policy?.['gates']) {
    const events = await s.api(`/api/v1/events?upgradeId=${up.id}&type=gate.passed,gate.failed&limit=500`);
    for (const e of events.body.items as { data?: { durationMs?: number } }[]) gateSeconds += (e.data?.durationMs ?? 0) / 1000;
  }
  return { makespan, batchSum, gateSeconds, batches: u.batches.length as number, ideal: u.batches.length * seconds };
}

async function benchEngine(label: string, database: string | undefined): Promise<void> {
  const { s, done } = await startBenchServer({ database });
  try {
    const ratios: number[] = [];
    for (let run = 0; run < 3; run++) {
      const r = await upgradeMakespan(s, `bench-${run}`, 1000, 0.2);
      ratios.push(r.makespan / r.batchSum);
      if (run === 0)
        console.log(
          `  1,000 nodes × 0.2 s on ${label}: ${r.batches} batches, makespan ${fmt(r.makespan)} s, sum of batch durations ${fmt(r.batchSum)} s`,
        );
    }
    report(
      `engine makespan / sum of batch durations, 1,000 simulated nodes, ${label}: median ${fmt(median(ratios), 3)} (runs: ${ratios.map((x) => fmt(x, 3)).join(', ')})`,
    );
    const checks: number[] = [];
    for (let run = 0; run < 3; run++) {
      const r = await upgradeMakespan(s, `check-${run}`, 200, 0.25);
      checks.push(r.makespan / r.ideal);
    }
    report(
      `200 nodes × 0.25 s on ${label}: makespan / (batches × 0.25 s) median ${fmt(median(checks), 3)} (target ≤ 1.1; runs: ${checks.map((x) => fmt(x, 3)).join(', ')})`,
    );
    // The same with a health gate that passes, checked before every batch (issue: rollout guards).
    const health = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
    await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(health.address() as AddressInfo).port}/healthz`;
      const gated: number[] = [];
      const engineOnly: number[] = [];
      const perCheck: number[] = [];
      for (let run = 0; run < 3; run++) {
        const r = await upgradeMakespan(s, `gated-${run}`, 200, 0.25, { gates: [{ kind: 'http', url }] });
        gated.push(r.makespan / r.ideal);
        engineOnly.push((r.makespan - r.gateSeconds) / r.ideal);
        perCheck.push((r.gateSeconds * 1000) / r.batches);
      }
      report(
        `same, with a passing http gate checked before every batch: median ${fmt(median(gated), 3)} (runs: ${gated.map((x) => fmt(x, 3)).join(', ')}); ${fmt(median(gated) / median(checks), 3)}× the ungated median; the checks themselves (a loopback GET each) took ${fmt(median(perCheck), 1)} ms a batch, and without them the ratio is ${fmt(median(engineOnly), 3)} (${fmt(median(engineOnly) / median(checks), 3)}× the ungated median)`,
      );
    } finally {
      health.close();
    }
  } finally {
    await done();
  }
}

/**
 * The cluster list against a trivial route, in one run: the same server, the same eight
 * clients in a second process, the same viewer token. Phases of one second alternate
 * between `GET /api/v1/clusters` (1,000 clusters) and `GET /api/v1/session` (who is signed
 * in: authentication, routing, hooks and serialisation, and nothing else), so that both
 * see the same machine: the ratio of the two is what the list itself costs, and it holds
 * on a noisy machine where the absolute times do not. Each phase waits for the requests of
 * the previous one to end, so that a session request never queues behind a list.
 */
async function benchClusterList(): Promise<void> {
  const { s, done } = await startBenchServer();
  try {
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          s.api('/api/v1/clusters', { body: { name: `c-${String(i + j).padStart(4, '0')}`, kind: 'simulated', simulation: { nodes: 5 } } }),
        ),
      );
    }
    // What a viewer holds (the console's and the CLI's case): a token looked up per request.
    const token = await s.api('/api/v1/tokens', { body: { name: 'bench-viewer', role: 'viewer' } });
    if (token.status !== 201) throw new Error(`token: ${token.status} ${token.text}`);
    const listed = await s.api('/api/v1/clusters', { token: token.body.token as string });
    if (listed.status !== 200 || listed.body.items.length !== 1000)
      throw new Error(`the list answered ${listed.status} ${listed.text.slice(0, 200)}`);
    const loader = `
      const [base, token, pid] = process.argv.slice(1);
      const fs = require('node:fs');
      const routes = { list: base + '/api/v1/clusters', trivial: base + '/api/v1/session' };
      const lat = { list: [], trivial: [] }, cpu = { list: 0, trivial: 0 };
      const headers = { authorization: 'Bearer ' + token };
      // The server's CPU seconds (utime + stime), from /proc.
      const cpuNow = () => { const f = fs.readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
      async function client(route, end, keep) {
        while (Date.now() < end) {
          const t0 = performance.now();
          const r = await fetch(routes[route], { headers });
          await r.arrayBuffer();
          if (r.status !== 200) throw new Error(route + ': status ' + r.status);
          if (keep) lat[route].push(performance.now() - t0);
        }
      }
      async function phase(route, ms, keep) {
        const end = Date.now() + ms, before = cpuNow();
        await Promise.all(Array.from({ length: 8 }, () => client(route, end, keep)));
        if (keep) cpu[route] += cpuNow() - before;
      }
      (async () => {
        await phase('list', 1000, false); await phase('trivial', 1000, false);
        for (let i = 0; i < 8; i++) { await phase('list', 1000, true); await phase('trivial', 1000, true); }
        process.stdout.write(JSON.stringify({ lat, cpu }));
      })();
    `;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', loader, s.url, token.body.token as string, String(s.child.pid)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`loader exited ${code}`))));
    });
    const { lat, cpu } = JSON.parse(out) as { lat: { list: number[]; trivial: number[] }; cpu: { list: number; trivial: number } };
    const [l50, l99, t50, t99] = [pct(lat.list, 50), pct(lat.list, 99), pct(lat.trivial, 50), pct(lat.trivial, 99)];
    const perRequest = (route: 'list' | 'trivial') => (cpu[route] * 1000) / lat[route].length;
    report(
      `GET /api/v1/clusters with 1,000 clusters (5,000 nodes), 8 concurrent clients with a viewer token in a second process, 8 one-second phases: ${lat.list.length} requests, p50 ${fmt(l50, 1)} ms, p99 ${fmt(l99, 1)} ms; server CPU ${fmt(perRequest('list'), 2)} ms a request`,
    );
    report(
      `the trivial route GET /api/v1/session (authentication only), the same clients in 8 one-second phases between the list's: ${lat.trivial.length} requests, p50 ${fmt(t50, 1)} ms, p99 ${fmt(t99, 1)} ms; server CPU ${fmt(perRequest('trivial'), 2)} ms a request`,
    );
    report(
      `list / trivial: p50 ${fmt(l50 / t50, 1)}×, p99 ${fmt(l99 / t99, 1)}×, server CPU a request ${fmt(perRequest('list') / perRequest('trivial'), 1)}× (load average ${loadavg()
        .map((x) => fmt(x, 1))
        .join(', ')})`,
    );
  } finally {
    await done();
  }
}

/**
 * Whether the API stays usable while the engine works: one client asks, one request at a
 * time, for `GET /api/v1/session` (authentication and routing only) and
 * `GET /api/v1/clusters` in turn, every 20 ms, until stopped; the latencies by route.
 */
function probeApi(s: ServerProcess): { stop: () => Promise<{ session: number[]; clusters: number[] }> } {
  const out = { session: [] as number[], clusters: [] as number[] };
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const [key, path] of [
        ['session', '/api/v1/session'],
        ['clusters', '/api/v1/clusters'],
      ] as const) {
        const t = performance.now();
        const r = await s.api(path);
        if (r.status !== 200) throw new Error(`${path} answered ${r.status} during the fleet's upgrade`);
        out[key].push(performance.now() - t);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return out;
    },
  };
}

const latencies = (xs: number[]) => `p50 ${fmt(pct(xs, 50), 1)} ms, p99 ${fmt(pct(xs, 99), 1)} ms (${xs.length} requests)`;

async function benchFleet(label: string, database: string | undefined): Promise<void> {
  const { s, done } = await startBenchServer({ database });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 100; i += 20) {
      const made = await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          s.api('/api/v1/clusters', {
            body: {
              name: `fleet-${String(i + j).padStart(3, '0')}`,
              kind: 'simulated',
              simulation: { nodes: 100, upgradeSeconds: 0.5, versions: { agent: '1.1.0' } },
            },
          }),
        ),
      );
      ids.push(...made.map((m) => m.body.id as string));
    }
    const pid = s.child.pid as number;
    const idleProbe = probeApi(s);
    await sleep(3000);
    const idle = await idleProbe.stop();
    const before = processStats(pid);
    const t0 = Date.now();
    const probe = probeApi(s);
    const ups = await Promise.all(ids.map((id) => s.api(`/api/v1/clusters/${id}/upgrades`, { body: { component: 'docker' } })));
    const upIds = ups.map((u) => u.body.id as string);
    let views: any[] = [];
    for (;;) {
      const list = (await s.api('/api/v1/upgrades?state=Completed')).body.items as any[];
      if (list.length >= 100) {
        views = list;
        break;
      }
      if (Date.now() - t0 > 600_000) throw new Error('the fleet did not finish in 10 minutes');
      await new Promise((r) => setTimeout(r, 250));
    }
    const wall = (Date.now() - t0) / 1000;
    const busy = await probe.stop();
    const after = processStats(pid);
    const ratios = views
      .filter((u) => upIds.includes(u.id))
      .map((u) => {
        const makespan = (Date.parse(u.finishedAt) - Date.parse(u.createdAt)) / 1000;
        const sum = u.batches.reduce(
          (a: number, b: { startedAt: string; finishedAt: string }) => a + (Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000,
          0,
        );
        return makespan / sum;
      });
    report(
      `10,000 simulated nodes in 100 clusters upgrading at once (0.5 s a node), ${label}: all done in ${fmt(wall, 1)} s; makespan / sum of batch durations median ${fmt(median(ratios), 3)} (p90 ${fmt(pct(ratios, 90), 3)}); server CPU ${fmt(after.cpuSeconds - before.cpuSeconds, 1)} s; peak memory ${fmt(after.peakMiB, 0)} MiB`,
    );
    report(
      `the API meanwhile (${label}; one client, a request every 20 ms): GET /api/v1/session ${latencies(busy.session)}, GET /api/v1/clusters (100 clusters) ${latencies(busy.clusters)}; before the upgrades, the same: ${latencies(idle.session)} and ${latencies(idle.clusters)}`,
    );
  } finally {
    await done();
  }
}

/** The parts in the order they run; `--only` picks some. */
const PARTS = ['planner', 'engine', 'fleet', 'postgres', 'huge', 'list', 'paging', 'agents', 'agents5k', 'ansible', 'apt'] as const;
/** Parts a plain `npm run bench` leaves out, for their length: run them with `--only`. */
const ON_REQUEST: readonly Part[] = ['agents5k'];
type Part = (typeof PARTS)[number];

/** This run's figures by part: the report() lines, and Markdown that goes below them (a chart). */
const results = new Map<Part, { lines: string[]; markdown: string[] }>();
let current: Part = PARTS[0];

const resultsOf = (part: Part) => {
  const r = results.get(part) ?? { lines: [], markdown: [] };
  results.set(part, r);
  return r;
};

/** Prints a figure and keeps it for BENCHMARKS.md, under the part that is running. */
function report(line: string): void {
  console.log(line);
  resultsOf(current).lines.push(line);
}

async function benchPostgres(): Promise<void> {
  let pgUrl = process.env['UPSHIFT_TEST_PG_URL'];
  let stopPg = async (): Promise<void> => undefined;
  if (!pgUrl) {
    const pgDir = mkdtempSync(join(tmpdir(), 'upshift-bench-pg-'));
    stopPg = deferCleanup(() => {
      if (existsSync(join(pgDir, 'pg'))) execFileSync('bash', ['test/support/pg.sh', 'stop', join(pgDir, 'pg')]);
      rmSync(pgDir, { recursive: true, force: true });
    });
    const out = execFileSync('bash', ['test/support/pg.sh', 'start', join(pgDir, 'pg')], { encoding: 'utf8' });
    pgUrl = /UPSHIFT_TEST_PG_URL=(\S+)/.exec(out)?.[1];
  }
  try {
    if (!pgUrl) throw new Error('PostgreSQL could not be started');
    const { Client } = (await import('pg')).default;
    const admin = new Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query('drop database if exists upshift_bench with (force)');
    await admin.query('create database upshift_bench');
    await admin.end();
    const url = new URL(pgUrl);
    url.pathname = '/upshift_bench';
    await benchEngine('PostgreSQL', url.toString());
    const admin2 = new Client({ connectionString: pgUrl });
    await admin2.connect();
    await admin2.query('drop database if exists upshift_bench_fleet with (force)');
    await admin2.query('create database upshift_bench_fleet');
    await admin2.end();
    url.pathname = '/upshift_bench_fleet';
    await benchFleet('PostgreSQL', url.toString());
  } finally {
    await stopPg();
  }
}

const runners: Record<Part, () => Promise<void>> = {
  planner: async () => benchPlanner(),
  engine: () => benchEngine('SQLite', undefined),
  fleet: () => benchFleet('SQLite', undefined),
  postgres: benchPostgres,
  huge: () => benchHuge(report),
  list: benchClusterList,
  paging: () => benchPaging(report),
  agents: () => benchAgents(report),
  agents5k: () => benchAgents(report, { nodes: 5000, perProcess: 100, spreadMs: 25_000, maxBatchPercent: 2 }),
  ansible: async () => {
    resultsOf('ansible').markdown.push(...(await benchSideBySide(report)));
  },
  apt: () => benchRealApt(report),
};

/** `--only a,b` or `--only=a,b`; every part when absent. */
function selectedParts(argv: readonly string[]): Part[] {
  const i = argv.findIndex((a) => a === '--only' || a.startsWith('--only='));
  if (i < 0) return PARTS.filter((p) => !ON_REQUEST.includes(p));
  const flag = argv[i] as string;
  const value = flag.startsWith('--only=') ? flag.slice('--only='.length) : argv[i + 1];
  const names = (value ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(PARTS as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0)
    throw new Error(
      `--only takes a comma-separated list of parts (${PARTS.join(', ')})${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`,
    );
  return PARTS.filter((p) => names.includes(p));
}

async function main(): Promise<void> {
  const parts = selectedParts(process.argv.slice(2));
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      console.error(`\n${signal}: stopping the bench and cleaning up; BENCHMARKS.md is not written`);
      void runPendingCleanups().finally(() => process.exit(130));
    });
  }
  console.log(
    `Upshift bench on ${process.platform} ${process.arch}, node ${process.version}, ${cpus().length} cores; parts: ${parts.join(', ')}`,
  );
  const failed: Part[] = [];
  const took = new Map<Part, number>();
  for (const part of parts) {
    if (interrupted) return;
    current = part;
    const t0 = Date.now();
    console.log(`\n== ${part}`);
    try {
      await runners[part]();
      took.set(part, (Date.now() - t0) / 1000);
      console.log(`== ${part} took ${fmt((Date.now() - t0) / 1000, 0)} s`);
    } catch (error) {
      // The signal handler cleans up and exits; the part only failed because of it.
      if (interrupted) return;
      failed.push(part);
      results.delete(part);
      console.error(`== ${part} FAILED after ${fmt((Date.now() - t0) / 1000, 0)} s: ${(error as Error).stack ?? String(error)}`);
      await runPendingCleanups();
    }
  }
  writeBenchmarks(took);
  if (failed.length > 0) {
    console.error(`\nbench parts failed: ${failed.join(', ')} (their figures in BENCHMARKS.md are left as they were)`);
    process.exit(1);
  }
}

const BENCHMARKS = 'BENCHMARKS.md';

/** A part's block in BENCHMARKS.md: when it was measured, how long it took, its figures. */
interface Block {
  date: string;
  seconds: number | undefined;
  body: string;
}

/** Each part's block in BENCHMARKS.md: `<!-- bench:PART DATE [SECONDS] -->` … `<!-- /bench:PART -->`. */
function previousBlocks(): Map<string, Block> {
  const text = existsSync(BENCHMARKS) ? readFileSync(BENCHMARKS, 'utf8') : '';
  const out = new Map<string, Block>();
  for (const m of text.matchAll(/<!-- bench:(\w+) (\S+)(?: (\d+))? -->\n([\s\S]*?)<!-- \/bench:\1 -->/g)) {
    out.set(m[1] as string, { date: m[2] as string, seconds: m[3] === undefined ? undefined : Number(m[3]), body: m[4] as string });
  }
  return out;
}

/** This run's block of a part it measured. */
function freshBlock(part: Part, seconds: number): Block | undefined {
  const r = results.get(part);
  if (!r) return undefined;
  const body = [
    ...r.lines.map((l) => (l.startsWith('  ') ? `  - ${l.trim()}` : `- ${l}`)),
    ...(r.markdown.length ? ['', ...r.markdown] : []),
  ].join('\n');
  return { date: new Date().toISOString().slice(0, 10), seconds: Math.round(seconds), body };
}

/**
 * Hand-written sections of BENCHMARKS.md that a run keeps as they are: comparisons across
 * runs (such as one Node.js against another), between `<!-- kept:NAME -->` and
 * `<!-- /kept:NAME -->`.
 */
function keptSections(): string[] {
  const text = existsSync(BENCHMARKS) ? readFileSync(BENCHMARKS, 'utf8') : '';
  return [...text.matchAll(/<!-- kept:(\w+) -->\n[\s\S]*?<!-- \/kept:\1 -->\n/g)].map((m) => m[0]);
}

/**
 * BENCHMARKS.md: the figures by part, the machine and the commands. Parts this run did not
 * measure (left out with --only, or failed) keep their block from the previous file.
 */
function writeBenchmarks(took: Map<Part, number>): void {
  const previous = previousBlocks();
  const blocks = new Map<Part, Block>();
  for (const part of PARTS) {
    const seconds = took.get(part);
    const block = (seconds !== undefined ? freshBlock(part, seconds) : undefined) ?? previous.get(part);
    blocks.set(part, block ?? { date: 'never', seconds: undefined, body: `- not measured yet: \`npm run bench -- --only ${part}\`` });
  }
  const render = (part: Part) => {
    const b = blocks.get(part) as Block;
    return [
      `<!-- bench:${part} ${b.date}${b.seconds === undefined ? '' : ` ${b.seconds}`} -->`,
      b.body.trimEnd(),
      `<!-- /bench:${part} -->`,
    ];
  };
  const when = (ps: Part[]) =>
    ps
      .map((p) => {
        const b = blocks.get(p) as Block;
        return `${p} ${b.date}${b.seconds === undefined ? '' : ` (${b.seconds} s)`}`;
      })
      .join(', ');
  /** A section of one part: its title, when it was measured, how, and its figures. */
  const section = (title: string, part: Part, method: string) => [
    `## ${title}`,
    '',
    `Measured on: ${when([part])}. ${method}`,
    '',
    ...render(part),
    '',
  ];
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${process.platform} ${release()}, node ${process.version}`;
  const engineParts: Part[] = ['planner', 'engine', 'fleet', 'postgres', 'list'];
  const text = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\`. Machine: ${machine}; other work was running, so read medians and ratios, not absolute times.`,
    '',
    '## Engine and API, simulated clusters',
    '',
    `Measured on (and how long the part took): ${when(engineParts)}.`,
    '',
    ...engineParts.flatMap(render),
    '',
    ...section('A 100,000-node cluster under one server', 'huge', HUGE_METHOD),
    ...section('Paged node lists: eight viewers of a 100,000-node cluster', 'paging', PAGING_METHOD),
    ...section('1,000 agents on loopback', 'agents', AGENTS_METHOD),
    ...section('5,000 agents on loopback', 'agents5k', AGENTS_METHOD),
    ...section('Side by side with Ansible `serial`', 'ansible', SIDE_BY_SIDE_METHOD),
    ...section('What Upshift adds to a real `apt` upgrade', 'apt', REAL_APT_METHOD),
    ...keptSections(),
    '## Commands',
    '',
    '`npm run bench` runs every part but agents5k; it starts its own server processes, agent processes, sshd and a private PostgreSQL (unless `UPSHIFT_TEST_PG_URL` is set), and stops them and removes their temp dirs also when it fails or is interrupted. `npm run bench -- --only agents,ansible` runs some parts and keeps the other figures in this file; the parts are planner, engine, fleet, postgres, huge, list, paging, agents, agents5k (5,000 agents, only when named), ansible and apt (see bench/run.ts). The ansible part needs root the first time, to install `ansible` and `openssh-server` with apt-get. The apt part needs root and the cached Debian 13 base (`scripts/testbed/debian-rootfs.sh`); without them it is skipped with a message and its figures are kept.',
    '',
  ].join('\n');
  writeFileSync(BENCHMARKS, text);
  console.log(`wrote ${BENCHMARKS} (fresh: ${[...took.keys()].join(', ') || 'nothing'})`);
}

main().catch((error: unknown) => {
  console.error(error);
  void runPendingCleanups().finally(() => process.exit(1));
});
