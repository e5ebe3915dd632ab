/**
 * What the Debian rootfs hosts (rootfs-hosts.ts) need around them to be upgraded with the
 * `apt` method through a real server, shared by test/hosts/debian.e2e.test.ts and the
 * bench's `apt` part (bench/real-apt.ts):
 *
 *   - an Upshift server on the testbed's bridge (testbed-server.ts), with a catalog of the
 *     Debian 13 versions, and both engines' Debian packages uploaded to its mirror, which
 *     serves them as a signed apt repository (`startDebianMirror`)
 *   - a host's agent configuration and the agent started inside the host (`rootfsAgentConfig`,
 *     `startRootfsAgent`)
 *
 *   const server = await startDebianMirror(fleet, token);
 *   await startRootfsAgent(fleet, fleet.hosts[0], server, joinToken, rootfsAgentConfig());
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { DebianRootfs } from './debian-rootfs.js';
import { DOCKER_SERVICE, type RootfsFleet, type RootfsHost } from './rootfs-hosts.js';
import { startTestbedServer, type TestbedServer } from './testbed-server.js';

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

/** The server the Debian hosts upgrade through: a testbed server whose mirror holds both engines' packages. */
export type MirrorServer = TestbedServer;

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
  const server = await startTestbedServer(fleet.bed, { token, catalog: debianCatalog(fleet.rootfs) });
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
