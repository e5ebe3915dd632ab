/**
 * Paged node lists under load: a simulated cluster of 100,000 nodes and a (paused)
 * upgrade of all of them, and eight viewers at once walking both lists from the first
 * page to the last with the default page size, as the console and the CLI do. The
 * server's resident memory (VmRSS of its process) is sampled every 100 ms; before paging,
 * eight viewers of such a cluster took the server from 180 MB to 877 MB.
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { startServerProcess, type ServerProcess } from '../test/support/server.js';
import { deferCleanup } from './cleanup.js';
import { fmt, median, pct, processStats, sleep, type Report } from './stats.js';

export const PAGING_METHOD =
  'One server process (SQLite) holding a simulated cluster of 100,000 nodes and an upgrade of all of them, paused after its first batch so that the engine is idle, restarted after making them so that it starts from its everyday size. Eight viewers in a second Node process (fetch, one request at a time each) walk the cluster’s node list and then the upgrade’s node list from the first page to the last, following `nextCursor`, with the default `limit` (500): 200 pages of each list per viewer, 3,200 requests in all. The server’s VmRSS (/proc/PID/status) is sampled every 100 ms from before the viewers start until 3 s after they finish; the growth is the peak minus the value before, and the target is at most 100 MB. The machine is shared and noisy (2 cores, other work running), so read the memory figures, not the absolute times.';

const NODES = 100_000;
const VIEWERS = 8;

/** Every row of a paged list (`{items, nextCursor}`), in pages of `limit`. */
export async function readAllPages<T>(s: ServerProcess, path: string, limit = 5000): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const res = await s.api(`${path}?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.text}`);
    items.push(...(res.body.items as T[]));
    cursor = res.body.nextCursor as string | null;
  } while (cursor !== null);
  return items;
}

/**
 * The viewers, run in a child process so that the bench's own work stays out of the
 * server's way as much as two cores allow. Prints `{pages: {nodes: ms[], tasks: ms[]}, rows}`.
 */
const viewerScript = `
  const [base, token, clusterId, upgradeId, viewers, limit] = process.argv.slice(1);
  const lat = { nodes: [], tasks: [] };
  const rows = { nodes: [], tasks: [] };
  async function walk(kind, path) {
    let cursor = null, count = 0;
    do {
      const url = base + path + '?limit=' + limit + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
      const t0 = performance.now();
      const r = await fetch(url, { headers: { authorization: 'Bearer ' + token } });
      const body = await r.json();
      lat[kind].push(performance.now() - t0);
      if (r.status !== 200) throw new Error(url + ': ' + r.status + ' ' + JSON.stringify(body));
      count += body.items.length;
      cursor = body.nextCursor;
    } while (cursor !== null);
    rows[kind].push(count);
  }
  async function viewer() {
    await walk('nodes', '/api/v1/clusters/' + clusterId + '/nodes');
    await walk('tasks', '/api/v1/upgrades/' + upgradeId + '/nodes');
  }
  Promise.all(Array.from({ length: Number(viewers) }, viewer)).then(
    () => process.stdout.write(JSON.stringify({ lat, rows })),
    (e) => { console.error(e); process.exit(1); },
  );
`;

function runViewers(s: ServerProcess, clusterId: string, upgradeId: string, limit: number) {
  return new Promise<{ lat: { nodes: number[]; tasks: number[] }; rows: { nodes: number[]; tasks: number[] } }>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', viewerScript, s.url, s.token, clusterId, upgradeId, String(VIEWERS), String(limit)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(text)) : reject(new Error(`the viewers exited ${code}`))));
  });
}

/** VmRSS of a process, sampled every 100 ms until stopped. */
function sampleRss(pid: number) {
  const samples: number[] = [];
  const take = () => samples.push(processStats(pid).rssMiB);
  take();
  const timer = setInterval(take, 100);
  return {
    samples,
    stop() {
      clearInterval(timer);
      take();
    },
  };
}

const mb = (mib: number) => (mib * 1024 * 1024) / 1e6;

export async function benchPaging(report: Report): Promise<void> {
  const s = await startServerProcess();
  const done = deferCleanup(async () => {
    await s.stop();
    s.cleanup();
  });
  try {
    const t0 = Date.now();
    const cluster = await s.api('/api/v1/clusters', {
      body: { name: 'viewed', kind: 'simulated', simulation: { nodes: NODES, upgradeSeconds: 600, versions: { agent: '1.1.0' } } },
    });
    if (cluster.status !== 201) throw new Error(`creating the cluster: ${cluster.status} ${cluster.text}`);
    const started = await s.api(`/api/v1/clusters/${cluster.body.id}/upgrades`, { body: { component: 'docker' } });
    if (started.status !== 201) throw new Error(`starting the upgrade: ${started.status} ${started.text}`);
    const paused = await s.api(`/api/v1/upgrades/${started.body.id}/pause`, { method: 'POST' });
    if (paused.status !== 200) throw new Error(`pausing the upgrade: ${paused.status} ${paused.text}`);
    console.log(`  ${NODES.toLocaleString('en')} nodes and their upgrade made in ${fmt((Date.now() - t0) / 1000, 1)} s`);
    // A server as it runs day to day, holding the cluster, not one still digesting its creation.
    await s.stop();
    await s.restart();

    const pid = s.child.pid as number;
    for (const limit of [500, 5000]) {
      // Let the server settle (the cluster's creation, the previous round) before measuring.
      await sleep(3000);
      const rss = sampleRss(pid);
      await sleep(1000);
      const before = median(rss.samples);
      const from = rss.samples.length;
      const t1 = Date.now();
      const result = await runViewers(s, cluster.body.id as string, started.body.id as string, limit);
      const wall = (Date.now() - t1) / 1000;
      await sleep(3000);
      rss.stop();
      const during = rss.samples.slice(from);
      const peak = Math.max(...during);
      const after = rss.samples[rss.samples.length - 1] ?? NaN;
      const walked = [...result.rows.nodes, ...result.rows.tasks];
      if (walked.some((n) => n !== NODES)) throw new Error(`a viewer did not see every node: ${walked.join(', ')}`);
      const all = [...result.lat.nodes, ...result.lat.tasks];
      const label = limit === 500 ? 'the default limit (500)' : 'the largest limit (5,000)';
      const load = loadavg()
        .map((x) => fmt(x, 1))
        .join(', ');
      report(
        `${VIEWERS} concurrent viewers walking all ${NODES.toLocaleString('en')} nodes of a cluster and of its upgrade with ${label}: server RSS before ${fmt(mb(before), 0)} MB, peak during ${fmt(mb(peak), 0)} MB, after ${fmt(mb(after), 0)} MB; growth ${fmt(mb(peak - before), 0)} MB (target ≤ 100 MB)${limit === 500 ? '' : ' — for comparison'}`,
      );
      report(
        `  ${all.length.toLocaleString('en')} pages in ${fmt(wall, 1)} s; time per page: cluster nodes median ${fmt(median(result.lat.nodes), 1)} ms, p99 ${fmt(pct(result.lat.nodes, 99), 1)} ms; upgrade nodes median ${fmt(median(result.lat.tasks), 1)} ms, p99 ${fmt(pct(result.lat.tasks, 99), 1)} ms (${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} shared with other work, load average ${load})`,
      );
    }
  } finally {
    await done();
  }
}
