/**
 * `npm run bench`: prints the engine's figures. Medians and ratios, since the machines
 * are shared and noisy. Uses the real built server as a child process, SQLite and a
 * private PostgreSQL (started here when UPSHIFT_TEST_PG_URL is not set).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { batchCap, planBatches, type PlannableNode } from '../src/domain/batch-planner.js';
import { startServerProcess, type ServerProcess } from '../test/support/server.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
};
const fmt = (n: number, digits = 2) => n.toFixed(digits);

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
  const line = `plan 100,000 nodes: median ${fmt(median(times), 1)} ms over 7 runs (${batches} batches)`;
  console.log(line);
  results.push(line);
}

async function upgradeMakespan(s: ServerProcess, name: string, nodes: number, seconds: number) {
  const cluster = await s.api('/api/v1/clusters', {
    body: { name, kind: 'simulated', simulation: { nodes, upgradeSeconds: seconds, versions: { agent: '1.1.0' } } },
  });
  if (cluster.status !== 201) throw new Error(cluster.text);
  const up = (await s.api(`/api/v1/clusters/${cluster.body.id}/upgrades`, { body: { component: 'docker' } })).body;
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
  return { makespan, batchSum, batches: u.batches.length as number, ideal: u.batches.length * seconds };
}

async function benchEngine(label: string, database: string | undefined): Promise<void> {
  const s = await startServerProcess({ database });
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
  } finally {
    await s.stop();
    s.cleanup();
  }
}

async function benchClusterList(): Promise<void> {
  const s = await startServerProcess();
  try {
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          s.api('/api/v1/clusters', { body: { name: `c-${String(i + j).padStart(4, '0')}`, kind: 'simulated', simulation: { nodes: 5 } } }),
        ),
      );
    }
    const loader = `
      const url = process.argv[1], token = process.argv[2], concurrency = 8, durationMs = 8000;
      const lat = []; const end = Date.now() + durationMs;
      async function worker() { while (Date.now() < end) { const t0 = performance.now(); const r = await fetch(url, { headers: { authorization: 'Bearer ' + token } }); await r.arrayBuffer(); if (r.status !== 200) throw new Error('status ' + r.status); lat.push(performance.now() - t0); } }
      Promise.all(Array.from({ length: concurrency }, worker)).then(() => { process.stdout.write(JSON.stringify(lat)); });
    `;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', loader, `${s.url}/api/v1/clusters`, s.token], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`loader exited ${code}`))));
    });
    const lat = JSON.parse(out) as number[];
    const listLine = `GET /api/v1/clusters with 1,000 clusters (5,000 nodes), 8 concurrent clients in a second process for 8 s: ${lat.length} requests, p50 ${fmt(pct(lat, 50), 1)} ms, p99 ${fmt(pct(lat, 99), 1)} ms`;
    console.log(listLine);
    results.push(listLine);
  } finally {
    await s.stop();
    s.cleanup();
  }
}

/** CPU seconds and peak resident memory of a process, from /proc. */
function processStats(pid: number): { cpuSeconds: number; peakMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return { cpuSeconds: ticks / 100, peakMiB: hwm / 1024 };
}

async function benchFleet(label: string, database: string | undefined): Promise<void> {
  const s = await startServerProcess({ database });
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
    const before = processStats(pid);
    const t0 = Date.now();
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
    const line = `10,000 simulated nodes in 100 clusters upgrading at once (0.5 s a node), ${label}: all done in ${fmt(wall, 1)} s; makespan / sum of batch durations median ${fmt(median(ratios), 3)} (p90 ${fmt(pct(ratios, 90), 3)}); server CPU ${fmt(after.cpuSeconds - before.cpuSeconds, 1)} s; peak memory ${fmt(after.peakMiB, 0)} MiB`;
    console.log(line);
    results.push(line);
  } finally {
    await s.stop();
    s.cleanup();
  }
}

const results: string[] = [];

/** Prints a figure and keeps it for BENCHMARKS.md. */
function report(line: string): void {
  console.log(line);
  results.push(line);
}

async function main(): Promise<void> {
  console.log(
    `Upshift bench on ${process.platform} ${process.arch}, node ${process.version}, ${(await import('node:os')).cpus().length} cores`,
  );
  benchPlanner();
  await benchEngine('SQLite', undefined);
  await benchFleet('SQLite', undefined);
  let pgUrl = process.env['UPSHIFT_TEST_PG_URL'];
  let pgDir: string | undefined;
  if (!pgUrl) {
    pgDir = mkdtempSync(join(tmpdir(), 'upshift-bench-pg-'));
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
    if (pgDir) {
      execFileSync('bash', ['test/support/pg.sh', 'stop', join(pgDir, 'pg')]);
      rmSync(pgDir, { recursive: true, force: true });
    }
  }
  await benchClusterList();
  writeBenchmarks();
}

/** BENCHMARKS.md: the figures of this run, the machine and the command. */
function writeBenchmarks(): void {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${process.platform} ${release()}, node ${process.version}`;
  const text = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}. Machine: ${machine}; other work was running, so read medians and ratios, not absolute times.`,
    '',
    ...results.map((r) => `- ${r}`),
    '',
    'Command: `npm run bench` (it starts its own server processes and a private PostgreSQL unless `UPSHIFT_TEST_PG_URL` is set).',
    '',
    'Not measured yet: 1,000 agent processes on loopback, and the side-by-side run with Ansible `serial` (see the open issue).',
    '',
  ].join('\n');
  writeFileSync('BENCHMARKS.md', text);
  console.log('wrote BENCHMARKS.md');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
