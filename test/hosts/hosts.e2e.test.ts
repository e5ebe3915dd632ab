/**
 * A `hosts` cluster of four real Docker hosts (network-namespace hosts of the testbed, each
 * with dockerd 20.10.24 on a btrfs data root and its own agent), driven through the real
 * server's API as an operator would:
 *
 *   1. four 1.0.0 agents join with the cluster's join token; a Docker upgrade is refused
 *      (AGENT_OUTDATED) until the agent component is upgraded to the server's agent. Every
 *      agent is the single executable that /install/agent.sh installs (a Node.js 24 SEA),
 *      run with a PATH that has no `node` on it; the self-upgrade swaps in the server's
 *      executable, which reports the Node.js 24 inside it, and keeps the old one
 *   2. the Docker Engine 26.1.5 binary archive is uploaded to the mirror; a docker upgrade
 *      with snapshots before: every host is snapshotted (btrfs), then upgraded in batches
 *   3. one host is broken (its daemon.json holds a key 26.1.5 refuses): the upgrade pauses
 *      with that cause, that host is rolled back and answers on 20.10.24
 *   4. the fix (the key removed) and a resume complete the upgrade: every Engine API
 *      reports 26.1.5 and the restart=always containers started before run again
 *
 * Two faults are injected into that Docker upgrade while tasks run (each host has an
 * operator post-start check that records that it ran and takes 3 s: the window):
 *   - the agent of the first host is killed -9 in the middle of its task and started
 *     again: it resumes the task from its journal, the outcome (succeeded) reaches the
 *     server, and the node is not upgraded twice
 *   - the last host's link is cut during its task: with heartbeats every 5 s the server
 *     fails the task as unreachable after three missed ones and the upgrade pauses with
 *     that cause; with the link back, a resume finds the work done and completes
 *
 *   npm run build && npx vitest run test/hosts
 *
 * Everything is torn down in afterAll, and by the testbed's cleanup after a crash (agents
 * and engines live in the testbed's cgroup subtree, the btrfs mount under its root).
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PRODUCT_VERSION } from '../../src/domain/product-version.js';
import { createTestbed, engineJson, engineVersion, importBusybox, run, type Testbed } from '../support/testbed/hosts.js';
import {
  REPO,
  agentConfig,
  agentPid,
  buildOldAgentExecutable,
  dockerArchive,
  ensureBuilt,
  installAgentFile,
  pathWithoutNode,
  prepareHost,
  service,
  sha256File,
  startAgent,
  stopAgent,
  writeDaemonJson,
  type AgentProcess,
  type PreparedHost,
} from '../support/testbed/host-agents.js';
import { startTestbedServer, type TestbedServer } from '../support/testbed/testbed-server.js';

const isRoot = process.getuid?.() === 0;
const ci = process.env.CI === 'true';
const suite = isRoot || ci ? describe : describe.skip;
const TOKEN = 'hosts-e2e-admin-token-2c8f4a6e0b9d3f7a1c5e8b2d6f0a4c9e';
const OLD_AGENT = '1.0.0';

interface Inspect {
  State: { Running: boolean; StartedAt: string };
}
interface Upgrade {
  id: string;
  state: string;
  pauseReason: { kind: string; message: string; nodeId?: string } | null;
  nodes: Record<string, number>;
}
/** The file the post-start check of a host appends the task key to, each time it runs. */
const checkMarks = (p: PreparedHost) => path.join(p.host.dir, 'post-start-check.marks');
const marksOf = async (p: PreparedHost) => (await readFile(checkMarks(p), 'utf8').catch(() => '')).split('\n').filter(Boolean);

suite('hosts cluster: agents, self-upgrade, Docker Engine upgrade with snapshots, rollback and resume', () => {
  let bed: Testbed | undefined;
  const hosts: PreparedHost[] = [];
  const agents: AgentProcess[] = [];
  let server: TestbedServer | undefined;
  let btrfsMount = '';
  let base = '';
  let clusterId = '';
  let joinToken = '';
  /** The agents' PATH: no `node` on it. */
  let agentPath = '';
  const startedBefore = new Map<string, string>();

  const api = <T = any>(method: string, p: string, body?: unknown, raw?: Buffer) => (server as TestbedServer).api<T>(method, p, body, raw);
  const nodes = () => (server as TestbedServer).nodes(clusterId);

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

  const waitUpgrade = (id: string, states: string[], timeoutMs: number) =>
    waitFor(
      `upgrade ${id} to reach ${states.join('/')}`,
      async () => {
        const u = (await api<Upgrade>('GET', `/upgrades/${id}`)).body;
        return states.includes(u.state) ? u : undefined;
      },
      timeoutMs,
    );

  const diagnostics = async (): Promise<string> => {
    const parts = [`--- server ---\n${server?.output() ?? ''}`];
    for (const p of hosts) {
      const log = await readFile(path.join(p.host.dir, 'agent.log'), 'utf8').catch(() => '');
      parts.push(`--- ${p.host.name} agent ---\n${log.split('\n').slice(-25).join('\n')}`);
    }
    return parts.join('\n');
  };

  beforeAll(async () => {
    if (!isRoot) throw new Error('the hosts end-to-end test needs root (network namespaces, cgroups, loop mounts)');
    for (const tool of ['nsenter', 'mkfs.btrfs', 'btrfs', 'curl', 'tar']) {
      if ((await run(['sh', '-c', `command -v ${tool}`])).code !== 0)
        throw new Error(`${tool} is missing (scripts/testbed/fetch-packages.sh installs the testbed's packages)`);
    }
    await ensureBuilt();
    bed = await createTestbed({ hosts: 4 });
    const b = bed;

    // One btrfs file system under the testbed root (its cleanup unmounts it), one
    // subvolume per host holding that host's Docker data root: what is snapshotted.
    const img = path.join(b.root, 'btrfs.img');
    btrfsMount = path.join(b.root, 'btrfs');
    await mkdir(btrfsMount);
    for (const argv of [
      ['truncate', '-s', '3G', img],
      ['mkfs.btrfs', '-q', img],
      ['mount', '-o', 'loop', img, btrfsMount],
    ]) {
      const r = await run(argv);
      if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    }
    for (const h of b.hosts) {
      const sub = path.join(btrfsMount, `${h.name}-data`);
      const r = await run(['btrfs', 'subvolume', 'create', sub]);
      if (r.code !== 0) throw new Error(r.stderr);
      hosts.push(await prepareHost(b, h, { dataRoot: sub }));
    }
    await Promise.all(hosts.map((p) => service(p, 'start')));
    await Promise.all(
      hosts.map(async (p) => {
        expect(await engineVersion(p.host)).toMatch(/^20\.10\.24/);
        await importBusybox(p.host);
        const r = await b.exec(p.host, [
          'docker',
          'run',
          '-d',
          '--name',
          'keeper',
          '--restart',
          'always',
          '--network',
          'none',
          'local/busybox:1',
          'sleep',
          '100000',
        ]);
        if (r.code !== 0) throw new Error(`${p.host.name}: docker run: ${r.stderr}`);
        startedBefore.set(p.host.name, (await engineJson<Inspect>(p.host, 'GET', '/containers/keeper/json')).State.StartedAt);
      }),
    );

    // The server, on the testbed bridge so that the hosts reach it. Its data dir is under
    // the testbed root and it runs in the testbed's cgroup subtree, so the testbed's
    // cleanup removes both even after a crash of this process.
    server = await startTestbedServer(b, { token: TOKEN });
    base = server.base;

    const created = await api<{ id: string; joinToken: string; joinCommand: string }>('POST', '/clusters', {
      name: 'docker-hosts',
      kind: 'hosts',
    });
    expect(created.status).toBe(201);
    expect(created.body.joinCommand).toContain(created.body.joinToken);
    clusterId = created.body.id;
    joinToken = created.body.joinToken;

    // Each host gets its own old (1.0.0) agent executable: a self-upgrade replaces the file
    // it runs from, and the hosts share one file system.
    const old = await buildOldAgentExecutable(OLD_AGENT);
    agentPath = await pathWithoutNode(b.root);
    expect((await run(['sh', '-c', 'command -v node || echo none'], { env: { PATH: agentPath } })).stdout).toBe('none\n');
    for (const p of hosts) {
      const file = path.join(p.host.dir, 'upshift-agent');
      await installAgentFile(old, file);
      await writeFile(
        p.agentConfigFile,
        stringify(
          agentConfig(p, {
            snapshot: { provider: 'btrfs', paths: [p.dataRoot] },
            hooks: { afterStart: [['/bin/sh', '-c', 'echo "$UPSHIFT_TASK_KEY" >> "$0"; sleep 3', checkMarks(p)]] },
          }),
        ),
      );
      // The join token goes in the environment, where `ps` does not show it.
      agents.push(
        startAgent(p, file, ['--server', base, '--config', p.agentConfigFile], { PATH: agentPath, UPSHIFT_JOIN_TOKEN: joinToken }),
      );
    }
    await waitFor(
      'four agents to join',
      async () => {
        const n = await nodes();
        return n.length === 4 && n.every((x) => x.versions['agent'] === OLD_AGENT && x.versions['docker'] === '20.10.24') ? n : undefined;
      },
      60_000,
    );
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled(hosts.map((p) => stopAgent(p)));
    for (const a of agents) if (a.child.exitCode === null && a.child.pid) process.kill(a.child.pid, 'SIGKILL');
    await server?.stop();
    await Promise.allSettled(hosts.map((p) => service(p, 'stop')));
    if (btrfsMount) await run(['umount', btrfsMount]);
    if (bed) await bed.teardown();
  }, 180_000);

  it('joined every host with its hostname, facts and versions', async () => {
    const n = await nodes();
    expect(n.map((x) => x.name).sort()).toEqual(hosts.map((p) => p.host.name).sort());
    for (const x of n) expect(x.versions['containerd']).toBe('1.6.20');
    // The credential is stored privately and never printed.
    for (const p of hosts) {
      expect((await stat(path.join(p.agentDataDir, 'credential.json'))).mode & 0o777).toBe(0o600);
      const cred = JSON.parse(await readFile(path.join(p.agentDataDir, 'credential.json'), 'utf8')) as { credential: string };
      expect(await readFile(path.join(p.host.dir, 'agent.log'), 'utf8')).not.toContain(cred.credential);
    }
  });

  it('refuses a Docker upgrade until the agents are current, then upgrades the agents in place', async () => {
    const refused = await api<{ error: { code: string; message: string } }>('POST', `/clusters/${clusterId}/upgrades`, {
      component: 'docker',
      toVersion: '26.1.5',
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('AGENT_OUTDATED');

    const pidsBefore = await Promise.all(hosts.map((p) => agentPid(p)));
    const started = await api<Upgrade>('POST', `/clusters/${clusterId}/upgrades`, { component: 'agent', policy: { maxBatchPercent: 100 } });
    expect(started.status).toBe(201);
    const done = await waitUpgrade(started.body.id, ['Completed', 'Paused'], 180_000);
    expect(done.pauseReason).toBeNull();
    expect(done.state).toBe('Completed');
    for (const x of await nodes()) expect(x.versions['agent']).toBe(PRODUCT_VERSION);
    const served = JSON.parse(await readFile(path.join(REPO, 'dist/agent/upshift-agent-linux-x64.json'), 'utf8')) as { sha256: string };
    for (const [i, p] of hosts.entries()) {
      // The executable now in place is the server's: Node.js 24 inside, run without a node on PATH.
      const file = path.join(p.host.dir, 'upshift-agent');
      const v = await run([file, '--version', '--verbose'], { env: { PATH: agentPath } });
      expect(JSON.parse(v.stdout)).toMatchObject({ version: PRODUCT_VERSION, node: expect.stringMatching(/^v24\./), form: 'executable' });
      expect(await sha256File(file)).toBe(served.sha256);
      // The old one is kept for a rollback, and still runs.
      const backup = path.join(p.agentDataDir, 'agent-backups', `upshift-agent-${OLD_AGENT}`);
      expect((await run([backup, '--version'], { env: { PATH: agentPath } })).stdout).toBe(`${OLD_AGENT}\n`);
      // The running agent is that executable, in its process table as such.
      const pid = await agentPid(p);
      expect(pid).toBeDefined();
      expect(pid).not.toBe(pidsBefore[i]);
      expect((await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0]).toBe(file);
      const env = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
      expect(env).toContain(`PATH=${agentPath}`);
    }
  }, 240_000);

  it('upgrades Docker Engine to 26.1.5 from the mirror with snapshots; survives an agent killed mid-task and a host cut off mid-task; a broken host pauses the upgrade and is rolled back; resumes complete', async () => {
    const b = bed as Testbed;
    const archive = await dockerArchive(b.packages);
    const upload = await api<{ sha256: string }>(
      'PUT',
      `/artifacts/docker/26.1.5/${archive.name}?method=binary&sha256=${archive.sha256}`,
      undefined,
      await readFile(archive.file),
    );
    expect(upload.status).toBe(201);
    expect(upload.body.sha256).toBe(archive.sha256);

    // Host 3 holds a daemon option that 20.10.24 accepts and 26.1.5 refuses at start.
    const broken = hosts[2] as PreparedHost;
    await writeDaemonJson(broken.host, { 'oom-score-adjust': -500 });

    const started = await api<Upgrade>('POST', `/clusters/${clusterId}/upgrades`, {
      component: 'docker',
      toVersion: '26.1.5',
      snapshot: 'before',
      policy: { maxBatchPercent: 50 },
    });
    expect(started.status).toBe(201);
    const id = started.body.id;

    // Fault: the first host's agent dies (kill -9) during its task's post-start check, and
    // is started again as its service manager would.
    const victim = await waitFor(
      'the first host to reach its post-start check',
      async () => {
        for (const p of hosts) if ((await marksOf(p)).length > 0) return p;
        return undefined;
      },
      240_000,
    );
    const killed = (await agentPid(victim)) as number;
    process.kill(killed, 'SIGKILL');
    await waitFor(
      'the killed agent to be gone',
      async () => {
        try {
          process.kill(killed, 0);
          return undefined;
        } catch {
          return true;
        }
      },
      10_000,
    );
    agents.push(
      startAgent(victim, path.join(victim.host.dir, 'upshift-agent'), ['--server', base, '--config', victim.agentConfigFile], {
        PATH: agentPath,
      }),
    );

    const paused = await waitUpgrade(id, ['Paused', 'Completed', 'SnapshotFailed'], 240_000);
    expect(paused.state).toBe('Paused');
    expect(paused.pauseReason?.kind).toBe('error');
    expect(paused.pauseReason?.message).toContain('oom-score-adjust');
    const brokenNode = (await nodes()).find((x) => x.name === broken.host.name);
    expect(paused.pauseReason?.nodeId).toBe(brokenNode?.id);

    // Snapshots were taken of every host before anything was upgraded.
    const events = (await api<{ items: { type: string }[] }>('GET', `/events?upgradeId=${id}&limit=200`)).body.items;
    expect(events.filter((e) => e.type === 'snapshot.succeeded')).toHaveLength(4);
    for (const p of hosts) {
      const snap = path.join(btrfsMount, '.upshift-snapshots', `${path.basename(p.dataRoot)}@upshift-${id}`);
      expect((await run(['btrfs', 'subvolume', 'show', snap])).code, snap).toBe(0);
    }

    // The broken host is back on 20.10.24 with its container running; the log says why.
    expect(await engineVersion(broken.host)).toMatch(/^20\.10\.24/);
    expect((await engineJson<Inspect>(broken.host, 'GET', '/containers/keeper/json')).State.Running).toBe(true);
    const tasks = (await api<{ items: { nodeId: string; state: string; error: string | null }[] }>('GET', `/upgrades/${id}/nodes`)).body
      .items;
    const failed = tasks.find((t) => t.nodeId === brokenNode?.id);
    expect(failed?.state).toBe('failed');
    expect(failed?.error).toMatch(/^start: /);
    expect(failed?.error).toContain('rolled back');
    const log = await fetch(`${base}/api/v1/upgrades/${id}/nodes/${brokenNode?.id}/log`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).then((r) => r.text());
    expect(log).toContain('[rollback]');
    expect(log).toContain('Docker Engine 20.10.24 runs again');

    // The killed agent's task was resumed from its journal, not run again: one attempt,
    // succeeded, the post-start check ran twice (before the kill and in the resume).
    const victimNode = (await nodes()).find((x) => x.name === victim.host.name);
    const victimTask = (
      await api<{ items: { nodeId: string; state: string; attempt: number }[] }>('GET', `/upgrades/${id}/nodes`)
    ).body.items.find((t) => t.nodeId === victimNode?.id);
    expect(victimTask).toMatchObject({ state: 'succeeded', attempt: 1 });
    const victimLog = await fetch(`${base}/api/v1/upgrades/${id}/nodes/${victimNode?.id}/log`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).then((r) => r.text());
    expect(victimLog).toMatch(/resumes docker-engine .* at verifying/);
    expect(victimLog).toContain('the interrupted upgrade had completed');
    const victimEvents = (await api<{ items: { type: string; nodeId: string | null }[] }>('GET', `/events?upgradeId=${id}&limit=500`)).body
      .items;
    expect(victimEvents.filter((e) => e.type === 'node.started' && e.nodeId === victimNode?.id)).toHaveLength(1);
    expect(await marksOf(victim)).toHaveLength(2);
    expect(new Set(await marksOf(victim)).size).toBe(1);
    expect(await engineVersion(victim.host)).toMatch(/^26\.1\.5/);

    // The fix, then a resume: the failed host is retried, the rest go on. Fault: the last
    // host's link is cut during its task's post-start check.
    await writeDaemonJson(broken.host, {});
    const last = hosts[hosts.length - 1] as PreparedHost;
    expect(last).not.toBe(victim);
    expect(await marksOf(last)).toHaveLength(0);
    const resumed = await api<Upgrade>('POST', `/upgrades/${id}/resume`);
    expect(resumed.status).toBe(200);
    await waitFor(
      'the last host to reach its post-start check',
      async () => ((await marksOf(last)).length > 0 ? true : undefined),
      240_000,
    );
    const cutAt = Date.now();
    expect((await b.exec(last.host, ['ip', 'link', 'set', 'eth0', 'down'])).code).toBe(0);
    const cut = await waitUpgrade(id, ['Paused', 'Completed'], 120_000);
    const detectedAfter = (Date.now() - cutAt) / 1000;
    console.info(`hosts e2e: the cut link paused the upgrade ${detectedAfter.toFixed(1)} s after the cut`);
    expect((await b.exec(last.host, ['ip', 'link', 'set', 'eth0', 'up'])).code).toBe(0);
    expect(cut.state).toBe('Paused');
    expect(cut.pauseReason?.message).toContain(`${last.host.name}: unreachable: node unreachable: no heartbeat from its agent`);
    // Three missed 5 s heartbeats counted from the last one (up to 5 s before the cut),
    // plus the server's 2 s check interval and this poll.
    expect(detectedAfter).toBeGreaterThan(8);
    expect(detectedAfter).toBeLessThan(40);
    // With the link back the agent heartbeats again, and its node shows what the task did.
    await waitFor(
      'the cut host to be heard from again',
      async () => {
        const n = (await nodes()).find((x) => x.name === last.host.name);
        return n?.status === 'Ready' && n.versions['docker'] === '26.1.5' ? n : undefined;
      },
      90_000,
    );
    const again = await api<Upgrade>('POST', `/upgrades/${id}/resume`);
    expect(again.status).toBe(200);
    const done = await waitUpgrade(id, ['Completed', 'Paused'], 240_000);
    expect(done.pauseReason).toBeNull();
    expect(done.state).toBe('Completed');

    for (const p of hosts) {
      expect(await engineVersion(p.host)).toMatch(/^26\.1\.5/);
      const keeper = await engineJson<Inspect>(p.host, 'GET', '/containers/keeper/json');
      expect(keeper.State.Running).toBe(true);
      expect(Date.parse(keeper.State.StartedAt)).toBeGreaterThan(Date.parse(startedBefore.get(p.host.name) ?? ''));
    }
    for (const x of await nodes()) expect(x.versions['docker']).toBe('26.1.5');
  }, 420_000);
});
