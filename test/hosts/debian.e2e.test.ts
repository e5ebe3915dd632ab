/**
 * A Debian 13 cluster of four hosts with their own root file system (rootfs hosts:
 * test/support/testbed/rootfs-hosts.ts; each an overlay of the cached trixie base with
 * Docker Engine 26.1.5 installed by dpkg), upgraded to Docker Engine 28.5.2 through the
 * real server with the `apt` method, as an operator would:
 *
 *   1. the Debian packages of both engines are uploaded to the server's mirror, which
 *      serves them as a signed apt repository; each host's agent (aptSource: mirror)
 *      trusts the repository's key it fetched over its authenticated channel, and the
 *      hosts reach nothing but the server
 *   2. a docker upgrade with snapshots before: every host is snapshotted (the operator's
 *      command provider), then upgraded in batches with `apt-get install docker.io=VERSION`
 *   3. one host's operator health check (an afterStart hook) fails: that host is rolled
 *      back through dpkg to 26.1.5 (`dpkg -l` inside it says so), the upgrade pauses with
 *      the cause
 *   4. the cause removed and a resume complete the upgrade: every host runs 28.5.2, `dpkg
 *      -l docker.io` inside it shows 28.5.2, and the restart=always containers run again
 *   5. containerd 1.7.24 → 2.1.9 (sid's; Engine 28.5.2 runs on it) with the `deb` method:
 *      the package file from the mirror, checked by sha256, installed by apt/dpkg; one
 *      failing host rolled back to 1.7.24, then a resume completes it
 *
 *   npx vitest run test/hosts/debian.e2e.test.ts      (root; builds dist/ when stale)
 *
 * The time of each phase (base root file system, host start, upgrade) is printed.
 * Everything is torn down in afterAll, and by the testbed's cleanup after a crash.
 */
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootfsAgentConfig, startDebianMirror, startRootfsAgent, type MirrorServer } from '../support/testbed/debian-mirror.js';
import { ensureBuilt } from '../support/testbed/host-agents.js';
import { engineJson, engineVersion, importBusybox, run } from '../support/testbed/hosts.js';
import { createRootfsHosts, startSeconds, type RootfsFleet, type RootfsHost } from '../support/testbed/rootfs-hosts.js';

const isRoot = process.getuid?.() === 0;
const ci = process.env.CI === 'true';
const suite = isRoot || ci ? describe : describe.skip;
const TOKEN = 'debian-e2e-admin-token-5d1f7a9c3e0b8a6f2c4e7d9b1a3f5c8e';
/** A file whose presence makes a host's health check (afterStart hook) fail. */
const UNHEALTHY = '/etc/upshift-e2e-unhealthy';

interface Inspect {
  State: { Running: boolean; StartedAt: string };
}
interface Upgrade {
  id: string;
  state: string;
  pauseReason: { kind: string; message: string; nodeId?: string } | null;
}
suite(
  'Debian 13 rootfs hosts: Docker Engine 26.1.5 → 28.5.2 with apt from the server’s signed repository, rollback through dpkg, resume',
  () => {
    let fleet: RootfsFleet | undefined;
    let server: MirrorServer | undefined;
    let base = '';
    let clusterId = '';
    const timings: Record<string, number> = {};
    const startedBefore = new Map<string, string>();

    const api = <T = any>(method: string, p: string, body?: unknown, raw?: Buffer) => (server as MirrorServer).api<T>(method, p, body, raw);
    const nodes = () => (server as MirrorServer).nodes(clusterId);

    const diagnostics = async (): Promise<string> => {
      const parts = [`--- server ---\n${server?.output() ?? ''}`];
      for (const h of fleet?.hosts ?? []) {
        const log = await readFile(path.join(h.host.dir, 'agent.log'), 'utf8').catch(() => '');
        parts.push(`--- ${h.name} agent ---\n${log.split('\n').slice(-30).join('\n')}`);
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
    const waitUpgrade = (id: string, states: string[], timeoutMs: number) =>
      waitFor(
        `upgrade ${id} to reach ${states.join('/')}`,
        async () => {
          const u = (await api<Upgrade>('GET', `/upgrades/${id}`)).body;
          return states.includes(u.state) ? u : undefined;
        },
        timeoutMs,
      );

    /** `dpkg -l PKG` inside the host: the installed version, checked to be fully installed (`ii`). */
    const dpkgVersion = async (h: RootfsHost, pkg: string): Promise<string> => {
      const r = await (fleet as RootfsFleet).exec(h, ['dpkg', '-l', pkg]);
      expect(r.code, r.stderr).toBe(0);
      const line = r.stdout.split('\n').find((l) => l.split(/\s+/)[1] === pkg) ?? '';
      const [status, , version] = line.split(/\s+/);
      expect(status, line).toBe('ii');
      return version ?? '';
    };
    const dpkgDocker = (h: RootfsHost) => dpkgVersion(h, 'docker.io');
    /** Every package dpkg knows inside the host, with its state (`ii`, `rc`, …) and version. */
    const packageSet = async (h: RootfsHost): Promise<string[]> => {
      const r = await (fleet as RootfsFleet).exec(h, ['dpkg-query', '-W', '-f=${db:Status-Abbrev} ${Package} ${Version}\n']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.split('\n').filter(Boolean).sort();
    };

    beforeAll(async () => {
      if (!isRoot) throw new Error('the Debian hosts end-to-end test needs root (namespaces, overlay mounts, chroot)');
      await ensureBuilt();
      fleet = await createRootfsHosts({ hosts: 4 });
      const f = fleet;
      timings['base root file system build (cached after the first run)'] = f.rootfs.buildSeconds;
      timings['4 hosts started (overlays, namespaces, dockerd 26.1.5 answering)'] = startSeconds;

      // The server, on the testbed bridge: the one address the hosts reach; the packages
      // of both engines into its mirror: what apt resolves from.
      server = await startDebianMirror(f, TOKEN);
      base = server.base;

      const created = await api<{ id: string; joinToken: string }>('POST', '/clusters', { name: 'debian-hosts', kind: 'hosts' });
      expect(created.status).toBe(201);
      clusterId = created.body.id;

      await Promise.all(
        f.hosts.map(async (h) => {
          await importBusybox(h);
          const r = await f.exec(h, [
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
          expect(r.code, r.stderr).toBe(0);
          startedBefore.set(h.name, (await engineJson<Inspect>(h, 'GET', '/containers/keeper/json')).State.StartedAt);
          const unhealthy = `if [ -e ${UNHEALTHY} ]; then echo "health check failed: ${UNHEALTHY} is present" >&2; exit 1; fi`;
          await startRootfsAgent(
            f,
            h,
            server as MirrorServer,
            created.body.joinToken,
            rootfsAgentConfig({ afterStart: [['/bin/sh', '-c', unhealthy]] }),
          );
        }),
      );
      await waitFor(
        'four agents to join',
        async () => {
          const n = await nodes();
          return n.length === 4 && n.every((x) => x.versions['docker'] === '26.1.5') ? n : undefined;
        },
        60_000,
      );
    }, 900_000);

    afterAll(async () => {
      await server?.stop();
      if (fleet) await fleet.teardown();
      console.info(
        `Debian e2e phases:\n${Object.entries(timings)
          .map(([k, v]) => `  ${k}: ${v.toFixed(1)} s`)
          .join('\n')}`,
      );
    }, 180_000);

    it('hosts reach only the server, and run their own dpkg-installed Engine 26.1.5', async () => {
      const f = fleet as RootfsFleet;
      for (const h of f.hosts) {
        expect(await dpkgDocker(h)).toBe(f.rootfs.docker26);
        expect(await engineVersion(h)).toMatch(/^26\.1\.5/);
      }
      // No route but the one to the server: another host and the machine's other addresses are unreachable.
      const [a, b] = f.hosts as [RootfsHost, RootfsHost];
      const routes = await run(['ip', '-n', a.host.netns, 'route', 'show']);
      expect(routes.stdout.trim()).toBe(`${f.bed.bridgeIp} dev eth0 scope link`);
      const probe = await f.exec(a, ['bash', '-c', `exec 3<>/dev/tcp/${b.ip}/22`], { timeoutMs: 10_000 });
      expect(probe.code).not.toBe(0);
      expect(probe.stderr).toContain('Network is unreachable');
    });

    it('upgrades Docker Engine to 28.5.2 with apt from the mirror, with snapshots; a failing host is rolled back through dpkg and pauses the upgrade; a resume completes it', async () => {
      const f = fleet as RootfsFleet;
      const broken = f.hosts[2] as RootfsHost;
      await writeFile(path.join(broken.merged, UNHEALTHY.slice(1)), 'the e2e test makes this host fail its health check\n');
      const packagesBefore = await packageSet(broken);

      const t0 = Date.now();
      const started = await api<Upgrade>('POST', `/clusters/${clusterId}/upgrades`, {
        component: 'docker',
        toVersion: '28.5.2',
        snapshot: 'before',
        policy: { maxBatchPercent: 50 },
      });
      expect(started.status, JSON.stringify(started.body)).toBe(201);
      const id = started.body.id;
      const paused = await waitUpgrade(id, ['Paused', 'Completed', 'SnapshotFailed'], 600_000);
      timings['upgrade until the failed host paused it (snapshots, 2 hosts upgraded, 1 rolled back)'] = (Date.now() - t0) / 1000;
      expect(paused.state).toBe('Paused');
      expect(paused.pauseReason?.message).toContain(`${UNHEALTHY} is present`);
      const brokenNode = (await nodes()).find((x) => x.name === broken.name);
      expect(paused.pauseReason?.nodeId).toBe(brokenNode?.id);

      const events = (await api<{ items: { type: string }[] }>('GET', `/events?upgradeId=${id}&limit=200`)).body.items;
      expect(events.filter((e) => e.type === 'snapshot.succeeded')).toHaveLength(4);
      for (const h of f.hosts) {
        const snaps = await readdir(path.join(h.merged, 'var/backups'));
        expect(snaps.some((s) => s.startsWith('upshift-') && s.endsWith('.tar.gz'))).toBe(true);
      }

      // The failed host: rolled back through dpkg to 26.1.5, its engine and container back.
      expect(await dpkgDocker(broken)).toBe(f.rootfs.docker26);
      expect(await engineVersion(broken)).toMatch(/^26\.1\.5/);
      expect((await engineJson<Inspect>(broken, 'GET', '/containers/keeper/json')).State.Running).toBe(true);
      const tasks = (await api<{ items: { nodeId: string; state: string; error: string | null }[] }>('GET', `/upgrades/${id}/nodes`)).body
        .items;
      const failed = tasks.find((t) => t.nodeId === brokenNode?.id);
      expect(failed?.state).toBe('failed');
      expect(failed?.error).toMatch(/^verify: /);
      const log = await fetch(`${base}/api/v1/upgrades/${id}/nodes/${brokenNode?.id}/log`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      }).then((r) => r.text());
      expect(log).toContain(`apt-get install -y -q --allow-downgrades`);
      expect(log).toContain(`docker.io=${f.rootfs.docker28}`);
      expect(log).toContain(`docker.io=${f.rootfs.docker26}`);
      expect(log).toContain('Docker Engine 26.1.5 runs again');
      // What 28.5.2 newly installed (tini-static, systemd, …) went with the rollback, purged:
      // the host's package set is what it was, tini included.
      expect(log).toMatch(/removed what the upgrade had added: .*tini-static/);
      expect(await packageSet(broken)).toEqual(packagesBefore);
      // Hosts upgraded before the failure stay upgraded; the one after it was not started.
      const done = tasks.filter((t) => t.state === 'succeeded').length;
      expect(done).toBeGreaterThanOrEqual(1);

      await rm(path.join(broken.merged, UNHEALTHY.slice(1)));
      const t1 = Date.now();
      const resumed = await api<Upgrade>('POST', `/upgrades/${id}/resume`);
      expect(resumed.status).toBe(200);
      const completed = await waitUpgrade(id, ['Completed', 'Paused'], 600_000);
      timings['resume to completion'] = (Date.now() - t1) / 1000;
      timings['upgrade in all (4 hosts)'] = (Date.now() - t0) / 1000;
      expect(completed.pauseReason).toBeNull();
      expect(completed.state).toBe('Completed');

      for (const h of f.hosts) {
        expect(await dpkgDocker(h)).toBe(f.rootfs.docker28);
        expect(await engineVersion(h)).toMatch(/^28\.5\.2/);
        const keeper = await engineJson<Inspect>(h, 'GET', '/containers/keeper/json');
        expect(keeper.State.Running).toBe(true);
        expect(Date.parse(keeper.State.StartedAt)).toBeGreaterThan(Date.parse(startedBefore.get(h.name) ?? ''));
      }
      for (const x of await nodes()) expect(x.versions['docker']).toBe('28.5.2');
    }, 1_300_000);
    it('upgrades containerd 1.7.24 → 2.1.9 with the deb method (the package file from the mirror, checked by sha256) under Engine 28.5.2; a failing host is rolled back to 1.7.24', async () => {
      const f = fleet as RootfsFleet;
      const file = f.rootfs['containerd-2'].find((n) => n.startsWith('containerd_')) as string;
      const up = await api(
        'PUT',
        `/artifacts/containerd/2.1.9/${file}?method=deb`,
        undefined,
        await readFile(path.join(f.rootfs.debs, 'containerd-2', file)),
      );
      expect(up.status, JSON.stringify(up.body)).toBe(201);
      for (const x of await nodes()) expect(x.versions['containerd']).toBe('1.7.24');
      const broken = f.hosts[1] as RootfsHost;
      await writeFile(path.join(broken.merged, UNHEALTHY.slice(1)), 'the e2e test makes this host fail its health check\n');
      const before = new Map<string, string>();
      for (const h of f.hosts) before.set(h.name, (await engineJson<Inspect>(h, 'GET', '/containers/keeper/json')).State.StartedAt);

      const t0 = Date.now();
      const started = await api<Upgrade>('POST', `/clusters/${clusterId}/upgrades`, {
        component: 'containerd',
        toVersion: '2.1.9',
        policy: { maxBatchPercent: 100 },
      });
      expect(started.status, JSON.stringify(started.body)).toBe(201);
      const id = started.body.id;
      const paused = await waitUpgrade(id, ['Paused', 'Completed'], 600_000);
      timings['containerd upgrade until the failed host paused it'] = (Date.now() - t0) / 1000;
      expect(paused.state).toBe('Paused');
      expect(paused.pauseReason?.message).toContain(`${UNHEALTHY} is present`);
      expect(await dpkgVersion(broken, 'containerd')).toBe(f.rootfs.containerd17);
      const brokenNode = (await nodes()).find((x) => x.name === broken.name);
      const log = await fetch(`${base}/api/v1/upgrades/${id}/nodes/${brokenNode?.id}/log`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      }).then((r) => r.text());
      expect(log).toMatch(new RegExp(`${file.replace(/[.+~]/g, '\\$&')}: \\d+ bytes, sha256 [0-9a-f]{64} verified`));
      expect(log).toContain(`containerd=${f.rootfs.containerd17}`);
      expect(log).toContain('containerd 1.7.24 runs again');

      await rm(path.join(broken.merged, UNHEALTHY.slice(1)));
      const resumed = await api<Upgrade>('POST', `/upgrades/${id}/resume`);
      expect(resumed.status).toBe(200);
      const completed = await waitUpgrade(id, ['Completed', 'Paused'], 600_000);
      timings['containerd upgrade in all (4 hosts)'] = (Date.now() - t0) / 1000;
      expect(completed.pauseReason).toBeNull();
      expect(completed.state).toBe('Completed');
      for (const h of f.hosts) {
        expect(await dpkgVersion(h, 'containerd')).toBe(f.rootfs.containerd2);
        expect(await engineVersion(h)).toMatch(/^28\.5\.2/);
        const keeper = await engineJson<Inspect>(h, 'GET', '/containers/keeper/json');
        expect(keeper.State.Running).toBe(true);
        expect(Date.parse(keeper.State.StartedAt)).toBeGreaterThan(Date.parse(before.get(h.name) ?? ''));
        // A new container runs on containerd 2 too.
        const r = await f.exec(h, ['docker', 'run', '--rm', '--network', 'none', 'local/busybox:1', 'echo', 'runs on containerd 2']);
        expect(r.stdout.trim(), r.stderr).toBe('runs on containerd 2');
      }
      for (const x of await nodes()) expect(x.versions['containerd']).toBe('2.1.9');
    }, 1_300_000);
  },
);
