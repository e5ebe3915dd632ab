/**
 * Real agents against the real server on loopback: a `hosts` cluster whose nodes are
 * `Agent` instances (src/agent/agent.ts), several per OS process (bench/agent-worker.ts),
 * each joining with the cluster's token, heartbeating and long-polling like an agent on
 * its own machine. Used by the 1,000-agent part and by the side by side with Ansible.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { build } from 'esbuild';
import { startServerProcess, repoRoot, type ServerProcess } from '../test/support/server.js';
import type { JoinRetryCause, WorkerEvent, WorkerSpec } from './agent-worker.js';
import { openSqlite } from '../src/store/dialect.js';
import { MAX_POLL_SECONDS } from '../src/engine/agents/liveness.js';
import { deferCleanup, serverProfileEnv } from './cleanup.js';
import { readAllPages } from './paging.js';
import { fmt, median, pct, processStats, sleep, type Report } from './stats.js';

export const FROM_DOCKER = '20.10.24';
export const TO_DOCKER = '26.1.5';

/** The upgrade as GET /api/v1/upgrades/{id} shows it (the fields the bench reads). */
export interface UpgradeView {
  id: string;
  state: string;
  createdAt: string;
  finishedAt: string | null;
  pauseReason: { message?: string } | null;
  batches: { index: number; size: number; state: string; nodes: string[]; startedAt: string | null; finishedAt: string | null }[];
}

/** One row of GET /api/v1/upgrades/{id}/nodes. */
export interface NodeTaskView {
  nodeId: string;
  nodeName: string;
  state: string;
  batchIndex: number | null;
  attempt: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
}

type RecipeEvent = Extract<WorkerEvent, { event: 'recipe' }>;

/** Join retries the agents made, by cause (bench/agent-worker.ts). */
export type JoinRetries = Record<JoinRetryCause, number>;

/** A running fleet of bench agents: what they did, and how to stop them. */
export interface Fleet {
  clusterId: string;
  processes: number;
  perProcess: number;
  /** Every recipe run, by node name (more than one means the task was delivered again). */
  recipes: Map<string, RecipeEvent[]>;
  /** Warnings and failures the agents reported, and workers that died. */
  problems: string[];
  joinRetries: JoinRetries;
  /** The worker processes' resident memory now, the sum of their peaks, and their CPU seconds so far. */
  usage(): { rssMiB: number; peakMiB: number; cpuSeconds: number };
  /** Stops every agent (stdin closes), then the processes; SIGKILL what is still there after 30 s. */
  stop(): Promise<void>;
}

export interface FleetSpec {
  /** Cluster name; node names are `node-0001`…, so their natural order is their batch order. */
  name: string;
  nodes: number;
  perProcess: number;
  workSeconds: number;
  /** Agents start over this many ms: joins, and so heartbeats, are spread as on a real fleet. */
  spreadMs: number;
}

/**
 * Bundles the worker like dist/agent.js is bundled (one file, no tsx loader in each
 * process), so the processes' memory is the agent's and not a TypeScript compiler's.
 */
export async function bundleWorker(dir: string): Promise<string> {
  const outfile = join(dir, 'agent-worker.mjs');
  await build({
    entryPoints: [join(repoRoot, 'bench/agent-worker.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: 'import { createRequire as __benchRequire } from "node:module"; const require = __benchRequire(import.meta.url);' },
    logLevel: 'warning',
  });
  return outfile;
}

/** Uploads stand-in bytes for the target version to the mirror: the upgrade needs an artifact. */
export async function uploadArtifact(s: ServerProcess): Promise<void> {
  const bytes = Buffer.from(`bench stand-in for docker ${TO_DOCKER}`);
  const res = await fetch(`${s.url}/api/v1/artifacts/docker/${TO_DOCKER}/docker-${TO_DOCKER}.tgz?method=binary`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  if (res.status !== 201) throw new Error(`uploading the docker ${TO_DOCKER} artifact: ${res.status} ${await res.text()}`);
  const sha = ((await res.json()) as { sha256?: string }).sha256;
  if (sha !== createHash('sha256').update(bytes).digest('hex')) throw new Error('the mirror stored other bytes than were sent');
}

export const nodeName = (i: number, total: number) => `node-${String(i + 1).padStart(Math.max(3, String(total).length), '0')}`;

/** A worker's stdout line; anything else a library printed there is kept as a problem. */
function parseEvent(line: string): WorkerEvent {
  try {
    return JSON.parse(line) as WorkerEvent;
  } catch {
    return { event: 'warn', node: '(worker stdout)', message: line.slice(0, 500) };
  }
}

/** Creates the hosts cluster and starts its agents; resolves once the processes run (not yet joined). */
export async function startFleet(s: ServerProcess, workerFile: string, dataRoot: string, spec: FleetSpec): Promise<Fleet> {
  const created = await s.api('/api/v1/clusters', { body: { name: spec.name, kind: 'hosts' } });
  if (created.status !== 201) throw new Error(`creating cluster ${spec.name}: ${created.status} ${created.text}`);
  const processes = Math.ceil(spec.nodes / spec.perProcess);
  const recipes = new Map<string, RecipeEvent[]>();
  const problems: string[] = [];
  const joinRetries: JoinRetries = { ECONNRESET: 0, '503': 0, timeout: 0, other: 0 };
  const children: ChildProcess[] = [];
  let stopping = false;
  for (let p = 0; p < processes; p++) {
    const agents: WorkerSpec['agents'] = [];
    // Round robin: the processes start their agents side by side, not one after the other.
    for (let g = p; g < spec.nodes; g += processes)
      agents.push({ name: nodeName(g, spec.nodes), startAfterMs: (g * spec.spreadMs) / spec.nodes });
    const workerSpec: WorkerSpec = {
      server: s.url,
      joinToken: created.body.joinToken as string,
      agents,
      dataRoot,
      workSeconds: spec.workSeconds,
      dockerVersion: FROM_DOCKER,
    };
    const child = spawn(process.execPath, [workerFile, JSON.stringify(workerSpec)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: agentProfileEnv(),
    });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const e = parseEvent(line);
      if (e.event === 'recipe') recipes.set(e.node, [...(recipes.get(e.node) ?? []), e]);
      else if (e.event === 'join-retry') joinRetries[e.cause]++;
      else if (e.event === 'warn' || e.event === 'fatal') problems.push(`${e.node}: ${e.event === 'fatal' ? 'FATAL ' : ''}${e.message}`);
    });
    child.on('exit', (code, signal) => {
      if (!stopping || code !== 0) problems.push(`agent process ${p} (pid ${child.pid}) exited (${signal ?? code}): ${stderr.trim()}`);
    });
  }
  const alive = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  return {
    clusterId: created.body.id as string,
    processes,
    perProcess: spec.perProcess,
    recipes,
    problems,
    joinRetries,
    usage() {
      const sum = { rssMiB: 0, peakMiB: 0, cpuSeconds: 0 };
      for (const c of alive()) {
        const st = processStats(c.pid as number);
        sum.rssMiB += st.rssMiB;
        sum.peakMiB += st.peakMiB;
        sum.cpuSeconds += st.cpuSeconds;
      }
      return sum;
    },
    async stop() {
      stopping = true;
      for (const c of alive()) c.stdin?.end();
      const deadline = Date.now() + 30_000;
      while (alive().length > 0 && Date.now() < deadline) await sleep(100);
      for (const c of alive()) c.kill('SIGKILL');
      while (alive().length > 0) await sleep(50);
    },
  };
}

/** Waits until `n` nodes joined and the agents run; fails early when a worker reports a fatal error. */
export async function waitJoined(s: ServerProcess, fleet: Fleet, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nodes = await readAllPages<{ status: string }>(s, `/api/v1/clusters/${fleet.clusterId}/nodes`).catch(() => undefined);
    if ((nodes ?? []).filter((x) => x.status === 'Ready').length >= n) return;
    const fatal = fleet.problems.find((p) => p.includes('FATAL') || p.includes('exited'));
    if (fatal) throw new Error(`an agent failed while joining: ${fatal}`);
    if (Date.now() > deadline)
      throw new Error(
        `only ${nodes?.length ?? 0} of ${n} agents joined in ${timeoutMs / 1000} s; agents said: ${fleet.problems.slice(0, 5).join(' | ') || 'nothing'}`,
      );
    await sleep(500);
  }
}

/** Starts the docker upgrade and waits for Completed; any other end is an error that names why. */
export async function runUpgrade(
  s: ServerProcess,
  clusterId: string,
  timeoutMs: number,
  policy?: { maxBatchPercent: number },
): Promise<{ view: UpgradeView; tasks: NodeTaskView[] }> {
  const started = await s.api(`/api/v1/clusters/${clusterId}/upgrades`, {
    body: { component: 'docker', toVersion: TO_DOCKER, ...(policy ? { policy } : {}) },
  });
  if (started.status !== 201) throw new Error(`starting the upgrade: ${started.status} ${started.text}`);
  const id = started.body.id as string;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = (await s.api(`/api/v1/upgrades/${id}`)).body as UpgradeView;
    if (view.state === 'Completed') {
      const tasks = await readAllPages<NodeTaskView>(s, `/api/v1/upgrades/${id}/nodes`);
      return { view, tasks };
    }
    if (view.state !== 'Upgrading') throw new Error(`the upgrade ended ${view.state}: ${view.pauseReason?.message ?? 'no reason given'}`);
    if (Date.now() > deadline) throw new Error(`the upgrade did not complete in ${timeoutMs / 1000} s (state ${view.state})`);
    await sleep(250);
  }
}

export const seconds = (from: string | null, to: string | null) => (Date.parse(to ?? '') - Date.parse(from ?? '')) / 1000;

/** Where one node's time went, in ms: the phases of its task from its batch's start to the batch's end. */
export interface NodeTimeline {
  batchSize: number;
  /** Batch startedAt (server) → the agent's recipe starts: delivery through the long poll, the journal. */
  toRecipe: number;
  /** The recipe itself: `sleep W` as a child process. */
  work: number;
  /** Recipe end → the task's finishedAt (server): log flush, journal, result report, the engine's bookkeeping. */
  toResult: number;
  /** The task's finishedAt → its batch's finishedAt: waiting for the batch's slowest node, closing the batch. */
  toBatchEnd: number;
}

export function nodeTimelines(view: UpgradeView, tasks: NodeTaskView[], fleet: Fleet): NodeTimeline[] {
  return tasks.map((t) => {
    const batch = view.batches.find((b) => b.index === t.batchIndex);
    const first = fleet.recipes.get(t.nodeName)?.[0];
    if (!batch?.startedAt || !batch.finishedAt || !first || !t.finishedAt)
      throw new Error(`node ${t.nodeName}: its batch's times or its recipe run are missing`);
    return {
      batchSize: batch.size,
      toRecipe: first.startedAt - Date.parse(batch.startedAt),
      work: first.endedAt - first.startedAt,
      toResult: Date.parse(t.finishedAt) - first.endedAt,
      toBatchEnd: Date.parse(batch.finishedAt) - Date.parse(t.finishedAt),
    };
  });
}

/**
 * Where dispatch and result time goes between the server and the agents, per node (ms):
 * batch start → the server handed the task to the agent's poll (its `deliveredAt`) → the
 * recipe starts in the agent; the recipe ends → the server committed the result (the
 * agent task's `finishedAt`) → the engine finished the node task. Read from the server's
 * SQLite file after the upgrade (the server still runs; reading takes no write lock).
 */
export async function serverSplit(
  s: ServerProcess,
  view: UpgradeView,
  tasks: NodeTaskView[],
  fleet: Fleet,
): Promise<{ toDelivered: number[]; deliveredToRecipe: number[]; toCommitted: number[]; committedToFinished: number[] }> {
  const adapter = openSqlite(join(s.dataDir, 'upshift.db'));
  try {
    const rows = await adapter.db
      .selectFrom('agentTasks')
      .select(['nodeTaskId', 'deliveredAt', 'finishedAt'])
      .where('upgradeId', '=', view.id)
      .execute();
    const byNodeTask = new Map(rows.map((r) => [r.nodeTaskId, r]));
    const nodeTaskIds = new Map(
      (await adapter.db.selectFrom('nodeTasks').select(['id', 'nodeId']).where('upgradeId', '=', view.id).execute()).map((r) => [
        r.nodeId,
        r.id,
      ]),
    );
    const out = {
      toDelivered: [] as number[],
      deliveredToRecipe: [] as number[],
      toCommitted: [] as number[],
      committedToFinished: [] as number[],
    };
    for (const t of tasks) {
      const batch = view.batches.find((b) => b.index === t.batchIndex);
      const run = fleet.recipes.get(t.nodeName)?.[0];
      const row = byNodeTask.get(nodeTaskIds.get(t.nodeId) ?? '');
      if (!batch?.startedAt || !run || !row?.deliveredAt || !row.finishedAt || !t.finishedAt) continue;
      out.toDelivered.push(Date.parse(row.deliveredAt) - Date.parse(batch.startedAt));
      out.deliveredToRecipe.push(run.startedAt - Date.parse(row.deliveredAt));
      out.toCommitted.push(Date.parse(row.finishedAt) - run.endedAt);
      out.committedToFinished.push(Date.parse(t.finishedAt) - Date.parse(row.finishedAt));
    }
    return out;
  } finally {
    await adapter.close();
  }
}

/** "p50 a ms, p99 b ms" of a list of durations. */
const spread = (xs: number[]) => `p50 ${fmt(pct(xs, 50), 0)} ms, p99 ${fmt(pct(xs, 99), 0)} ms`;

/** Nodes whose recipe ran more than once (a task delivered again): there should be none. */
export const reruns = (fleet: Fleet) => [...fleet.recipes.values()].filter((r) => r.length > 1).length;

/** "p50 a ms, p99 b ms" of one phase. */
export function phase(timelines: NodeTimeline[], pick: (t: NodeTimeline) => number, withMax = false): string {
  const xs = timelines.map(pick);
  return `p50 ${fmt(pct(xs, 50), 0)} ms, p99 ${fmt(pct(xs, 99), 0)} ms${withMax ? `, max ${fmt(Math.max(...xs), 0)} ms` : ''}`;
}

/**
 * `UPSHIFT_BENCH_AGENT_NODE_OPTIONS` does for the agent processes what bench/cleanup.ts
 * `serverProfileEnv` does for servers (each writes
 * its own profile): to see what the agents' side of a task costs.
 */
function agentProfileEnv(): NodeJS.ProcessEnv {
  const options = process.env['UPSHIFT_BENCH_AGENT_NODE_OPTIONS'];
  return options ? { ...process.env, NODE_OPTIONS: options } : process.env;
}

/**
 * With a server profile asked for, prints when a phase begins on the monotonic clock in
 * µs, the clock the profile's timestamps are on, so that the profile can be cut by phase.
 */
export function markPhase(name: string): void {
  if (process.env['UPSHIFT_BENCH_SERVER_NODE_OPTIONS'] || process.env['UPSHIFT_BENCH_AGENT_NODE_OPTIONS'])
    console.log(`  phase ${name} at ${process.hrtime.bigint() / 1000n} µs (monotonic)`);
}

/** A fleet with its own server, and everything torn down however it ends. */
export async function withFleet<T>(
  serverArgs: string[],
  spec: FleetSpec,
  body: (s: ServerProcess, fleet: Fleet) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'upshift-bench-agents-'));
  let s: ServerProcess | undefined;
  let fleet: Fleet | undefined;
  const teardown = deferCleanup(async () => {
    await fleet?.stop();
    await s?.stop();
    s?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    const workerFile = await bundleWorker(dir);
    s = await startServerProcess({ args: serverArgs, env: serverProfileEnv() });
    await uploadArtifact(s);
    fleet = await startFleet(s, workerFile, join(dir, 'agents'), spec);
    return await body(s, fleet);
  } catch (e) {
    if (fleet?.problems.length) console.error(`  agents reported: ${fleet.problems.slice(0, 10).join('\n    ')}`);
    if (fleet) console.error(`  ${joinRetryText(fleet.joinRetries)}`);
    throw e;
  } finally {
    await teardown();
  }
}

/** How the agents part is run, for BENCHMARKS.md. */
export const AGENTS_METHOD =
  "One server process (SQLite, agent heartbeat 10 s) and 1,000 real `Agent` instances (src/agent/agent.ts), 20 OS processes × 50 agents, since 1,000 Node processes would need about 35 GB; each agent has its own data dir, node name, credential, journal, heartbeat and long poll, and the agents of a process share only its Node runtime and HTTP connection pool. Only the host is a stand-in: its facts say docker 20.10.24 (agent version = the server's), and the docker-engine recipe runs a real child process `sleep 1` and reports 26.1.5. Recipe-start latency is from the batch's startedAt (server) to the recipe's start in the agent process, on the same machine clock. The idle figures are taken over one long poll's length (50 s, so each agent's poll falls in it once) once every agent has joined and a heartbeat interval has passed; the requests the server answered in that window are counted by route from its own `/metrics`. Part `agents5k` (not in the default run: `npm run bench -- --only agents5k`) does the same with 5,000 agents, 50 processes × 100, and `maxBatchPercent: 2`, so that its batches are of 100 nodes too, their starts spread over 25 s. The agents' join retries are counted by cause from their warnings: the connection reset (ECONNRESET), the server busy (503, which at most 64 joins at once leaves), no answer within the join's 60 s, other.";

const msOf = (x: number) => `${fmt(x * 1000, 0)} ms`;

/** Requests the server answered so far, by route (`upshift_http_request_duration_seconds_count` of its /metrics). */
async function requestsByRoute(s: ServerProcess): Promise<Map<string, number>> {
  const text = (await s.api('/metrics')).text;
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^upshift_http_request_duration_seconds_count\{([^}]*)\} (\d+)/gm)) {
    const route = /route="([^"]*)"/.exec(m[1] ?? '')?.[1] ?? '?';
    const method = /method="([^"]*)"/.exec(m[1] ?? '')?.[1] ?? '?';
    const key = `${method} ${route}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[2]));
  }
  return out;
}

/** The requests answered between two counts, by route. */
function answeredBetween(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  return new Map([...after].map(([key, n]) => [key, n - (before.get(key) ?? 0)]));
}

/** "n heartbeats/s, m task polls/s" of an idle window, from two counts of requests by route. */
function agentRequestRates(before: Map<string, number>, after: Map<string, number>, seconds: number): string {
  const answered = answeredBetween(before, after);
  const rate = (key: string) => (answered.get(key) ?? 0) / seconds;
  const heartbeats = rate('POST /api/v1/agent/heartbeat');
  const polls = rate('GET /api/v1/agent/tasks');
  return `${fmt(heartbeats, 1)} heartbeats/s and ${fmt(polls, 1)} task polls/s answered`;
}

/** "n a node (route a, route b, …)": the requests answered between two counts, per node, the most frequent routes first. */
function requestsPerNode(before: Map<string, number>, after: Map<string, number>, nodes: number): string {
  const routes = [...answeredBetween(before, after)].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const total = routes.reduce((sum, [, n]) => sum + n, 0);
  const each = routes.map(([key, n]) => `${key} ${fmt(n / nodes, 2)}`).join(', ');
  return `${fmt(total / nodes, 2)} a node (${each})`;
}

/** The agents parts: how many agents, how they are spread over processes, the batch policy. */
interface AgentsRun {
  nodes: number;
  perProcess: number;
  spreadMs: number;
  maxBatchPercent?: number;
}

/** Part `agents` (1,000 agents) and `agents5k` (5,000): real agents, one server, a docker upgrade with `sleep 1` per node. */
export async function benchAgents(report: Report, run: AgentsRun = { nodes: 1000, perProcess: 50, spreadMs: 10_000 }): Promise<void> {
  const spec: FleetSpec = { name: 'bench-agents', nodes: run.nodes, perProcess: run.perProcess, workSeconds: 1, spreadMs: run.spreadMs };
  await withFleet(['--agent-heartbeat', '10s'], spec, async (s, fleet) => {
    const pid = s.child.pid as number;
    const t0 = Date.now();
    await waitJoined(s, fleet, spec.nodes, 180_000 + spec.nodes * 60);
    const joined = (Date.now() - t0) / 1000;
    // A full heartbeat period with every agent joined, then the steady load of an idle fleet.
    await sleep(12_000);
    markPhase('idle');
    const requests0 = await requestsByRoute(s);
    const idle0 = processStats(pid);
    const agents0 = fleet.usage();
    // One whole poll period, so that every agent's poll is counted once whatever its phase.
    const idleWindow = MAX_POLL_SECONDS;
    await sleep(idleWindow * 1000);
    const idle1 = processStats(pid);
    const agents1 = fleet.usage();
    const requests1 = await requestsByRoute(s);
    markPhase('upgrade');
    const policy = run.maxBatchPercent === undefined ? undefined : { maxBatchPercent: run.maxBatchPercent };
    const { view, tasks } = await runUpgrade(s, fleet.clusterId, 600_000 + spec.nodes * 200, policy);
    markPhase('end');
    const after = processStats(pid);
    const agents2 = fleet.usage();
    const requests2 = await requestsByRoute(s);
    const nodes = nodeTimelines(view, tasks, fleet);
    const split = await serverSplit(s, view, tasks, fleet);
    const makespan = seconds(view.createdAt, view.finishedAt);
    const batches = view.batches.length;
    const rerun = reruns(fleet);
    const how = `${fleet.processes} processes × ${fleet.perProcess} real Agent instances`;
    const idleServer = (idle1.cpuSeconds - idle0.cpuSeconds) / idleWindow;
    report(
      `${spec.nodes.toLocaleString('en')} agents (${how}) on loopback, SQLite, heartbeat 10 s: all joined ${fmt(joined, 1)} s after the first start (starts spread over ${spec.spreadMs / 1000} s; ${joinRetryText(fleet.joinRetries)}); idle (${spec.nodes} agents, ${agentRequestRates(requests0, requests1, idleWindow)}): server CPU ${fmt(idleServer * 100, 1)} % of one core (${fmt((idleServer * 100 * 1000) / spec.nodes, 1)} % per 1,000 agents), the agent processes ${fmt(((agents1.cpuSeconds - agents0.cpuSeconds) / idleWindow) * 100, 0)} % of one core`,
    );
    report(
      `docker ${FROM_DOCKER} → ${TO_DOCKER} on those ${spec.nodes.toLocaleString('en')} agents${policy ? ` (maxBatchPercent ${policy.maxBatchPercent})` : ''}, \`sleep ${spec.workSeconds}\` per node: ${batches} batches (${batchSizes(view)}), makespan ${fmt(makespan, 1)} s = ${fmt(makespan / (batches * spec.workSeconds), 2)} × (batches × ${spec.workSeconds} s)`,
    );
    const small = nodes.filter((t) => t.batchSize <= 8);
    const full = nodes.filter((t) => t.batchSize === 100);
    report(
      `batch start → the agent's recipe start, per node (${nodes.length} nodes): ${phase(nodes, (t) => t.toRecipe, true)}; in batches of ≤ 8 nodes ${phase(small, (t) => t.toRecipe)}, of 100 nodes ${phase(full, (t) => t.toRecipe)}${rerun ? `; ${rerun} nodes ran their recipe more than once` : ''}`,
    );
    report(
      `where it goes: batch start → the server hands the task to the agent's poll ${spread(split.toDelivered)}, → the agent's recipe starts ${spread(split.deliveredToRecipe)}; recipe end → the server committed the result ${spread(split.toCommitted)}, → the engine finished the node task ${spread(split.committedToFinished)}`,
    );
    report(
      `the rest of a node's batch time: the recipe (\`sleep ${spec.workSeconds}\` as a child process) ${phase(nodes, (t) => t.work)}; recipe end → task finished on the server ${phase(nodes, (t) => t.toResult)} (batches of ≤ 8: ${phase(small, (t) => t.toResult)}; of 100: ${phase(full, (t) => t.toResult)}); task finished → batch finished ${phase(nodes, (t) => t.toBatchEnd)}; gaps between batches median ${msOf(median(gaps(view)))}`,
    );
    const upgradeCpu = after.cpuSeconds - idle1.cpuSeconds;
    report(
      `during the upgrade (${fmt(makespan, 1)} s): server ${fmt(upgradeCpu, 1)} CPU s (${fmt((upgradeCpu * 1000) / spec.nodes, 1)} ms per node upgraded; ${fmt(((upgradeCpu - idleServer * makespan) * 1000) / spec.nodes, 1)} ms without the idle fleet's share), peak RSS ${fmt(after.peakMiB, 0)} MiB; the ${fleet.processes} agent processes ${fmt(agents2.cpuSeconds - agents1.cpuSeconds, 1)} CPU s, ${fmt(agents2.rssMiB, 0)} MiB RSS in total (${fmt(agents2.rssMiB / spec.nodes, 1)} MiB per agent, ${fmt(agents2.rssMiB / fleet.processes, 0)} MiB per process; their peaks sum to ${fmt(agents2.peakMiB, 0)} MiB); the machine has ${cpus().length} cores`,
    );
    report(`requests the server answered during the upgrade: ${requestsPerNode(requests1, requests2, spec.nodes)}`);
    if (fleet.problems.length)
      console.log(`  the agents warned ${fleet.problems.length} times, e.g. ${fleet.problems.slice(0, 3).join(' | ')}`);
  });
}

/** "n join retries (ECONNRESET a, 503 b, timeout c, other d)". */
function joinRetryText(r: JoinRetries): string {
  const total = r.ECONNRESET + r['503'] + r.timeout + r.other;
  return `${total} join retries (ECONNRESET ${r.ECONNRESET}, 503 ${r['503']}, timeout ${r.timeout}, other ${r.other})`;
}

/** Batch sizes, runs of one size shortened (`100 × 45`). */
function batchSizes(view: UpgradeView): string {
  const runs: Array<{ size: number; count: number }> = [];
  for (const b of view.batches) {
    const last = runs[runs.length - 1];
    if (last && last.size === b.size) last.count++;
    else runs.push({ size: b.size, count: 1 });
  }
  return runs.map((r) => (r.count > 2 ? `${r.size} × ${r.count}` : Array(r.count).fill(r.size).join(', '))).join(', ');
}

/** Seconds from one batch's end to the next one's start. */
export function gaps(view: UpgradeView): number[] {
  const out: number[] = [];
  for (let i = 1; i < view.batches.length; i++)
    out.push(seconds(view.batches[i - 1]?.finishedAt ?? null, view.batches[i]?.startedAt ?? null));
  return out;
}
