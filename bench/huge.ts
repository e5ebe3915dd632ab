/**
 * One server upgrading a simulated cluster of 100,000 nodes (issue 17): the batches ramp
 * 1, 2, 4, … up to the cap of 10 % (10,000 nodes), each node taking `upgradeSeconds`.
 * What it measures is the server's peak resident memory (VmHWM of its process) and the
 * engine's overhead between batches (makespan / sum of batch durations).
 */
import { loadavg } from 'node:os';
import { startBenchServer } from './cleanup.js';
import { fmt, processStats, sleep, type Report } from './stats.js';

const NODES = 100_000;
const UPGRADE_SECONDS = 0.5;

export const HUGE_METHOD = `One server process (SQLite) and one simulated cluster of ${NODES.toLocaleString('en')} nodes, ${UPGRADE_SECONDS} s a node, upgraded from start to Completed with the default policy (batches 1, 2, 4, … 8,192, then the cap of 10 %: 10,000 nodes). The cluster is made first and the server restarted, so the upgrade's figures start from the server's everyday size; while it runs, the bench reads the upgrade once a second as a console would (\`GET /api/v1/upgrades/{id}\`, which lists every batch's nodes). The peak is the server's VmHWM (/proc/PID/status): the most memory it held at any moment, start included; the target is under 1 GiB. The makespan is the upgrade's createdAt → finishedAt; the sum of batch durations adds each batch's startedAt → finishedAt; the physical limit of the ratio is 1.`;

export async function benchHuge(report: Report): Promise<void> {
  const { s, done } = await startBenchServer();
  try {
    const t0 = Date.now();
    const cluster = await s.api('/api/v1/clusters', {
      body: {
        name: 'huge',
        kind: 'simulated',
        simulation: { nodes: NODES, upgradeSeconds: UPGRADE_SECONDS, versions: { agent: '1.1.0' } },
      },
    });
    if (cluster.status !== 201) throw new Error(`creating the cluster: ${cluster.status} ${cluster.text}`);
    const madePeak = processStats(s.child.pid as number).peakMiB;
    console.log(
      `  ${NODES.toLocaleString('en')} nodes made in ${fmt((Date.now() - t0) / 1000, 1)} s (server peak ${fmt(madePeak, 0)} MiB)`,
    );
    await s.stop();
    await s.restart();
    const pid = s.child.pid as number;
    await sleep(2000);
    const before = processStats(pid);
    const started = await s.api(`/api/v1/clusters/${cluster.body.id}/upgrades`, { body: { component: 'docker' } });
    if (started.status !== 201) throw new Error(`starting the upgrade: ${started.status} ${started.text}`);
    const deadline = Date.now() + 15 * 60_000;
    let upgrade;
    for (;;) {
      await sleep(1000);
      const read = await s.api(`/api/v1/upgrades/${started.body.id}`);
      if (read.status !== 200) throw new Error(`reading the upgrade: ${read.status} ${read.text}`);
      upgrade = read.body;
      if (upgrade.state === 'Completed') break;
      if (upgrade.state !== 'Upgrading') throw new Error(`the upgrade ended ${upgrade.state}: ${JSON.stringify(upgrade.pauseReason)}`);
      if (Date.now() > deadline) throw new Error('the upgrade did not finish in 15 minutes');
    }
    const after = processStats(pid);
    const batches = upgrade.batches as Array<{ size: number; startedAt: string; finishedAt: string }>;
    const makespan = (Date.parse(upgrade.finishedAt) - Date.parse(upgrade.createdAt)) / 1000;
    const sum = batches.reduce((a, b) => a + (Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000, 0);
    const load = loadavg()
      .map((x) => fmt(x, 1))
      .join(', ');
    report(
      `${NODES.toLocaleString('en')} simulated nodes in one cluster (${UPGRADE_SECONDS} s a node), SQLite: ${batches.length} batches (largest ${Math.max(...batches.map((b) => b.size)).toLocaleString('en')}), makespan ${fmt(makespan, 1)} s = ${fmt(makespan / sum, 3)} × the sum of batch durations (${fmt(sum, 1)} s; ideal ${fmt(batches.length * UPGRADE_SECONDS, 1)} s); server peak RSS ${fmt(after.peakMiB, 0)} MiB (target < 1024 MiB; ${fmt(before.rssMiB, 0)} MiB before the upgrade), server CPU ${fmt(after.cpuSeconds - before.cpuSeconds, 1)} s`,
    );
    report(
      `  making the cluster (one POST of ${NODES.toLocaleString('en')} nodes) took the server to ${fmt(madePeak, 0)} MiB; load average after the run ${load} (2 cores shared with other work)`,
    );
  } finally {
    await done();
  }
}
