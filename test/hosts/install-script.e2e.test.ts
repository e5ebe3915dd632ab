/**
 * The install script run for real, as an operator runs it: inside Debian 13 rootfs hosts
 * (test/support/testbed/rootfs-hosts.ts; no init system runs in them, no Node.js is
 * installed, their only route is to the server) the join command that `cluster create`
 * prints is piped from curl into sh:
 *
 *   curl -fsSL http://SERVER/install/agent.sh | sh -s -- --join-token TOKEN --sha256 HEX [--foreground]
 *
 *   1. a wrong --sha256 installs nothing and joins nothing
 *   2. without a choice, the script installs and joins, says that no init system runs here
 *      and offers the foreground and a supervisor; an installed `systemctl` does not make
 *      it think systemd runs; with --supervisor it prints the command line, and that line,
 *      started as a supervisor would, brings the node online
 *   3. with --foreground the script becomes the agent: the node comes online with its
 *      facts (the Engine's version from the host's own dockerd), and stays so
 *
 *   npx vitest run test/hosts/install-script.e2e.test.ts      (root; builds dist/ when stale)
 *
 * The agent executable the server serves is the one `npm run build` makes. Long-lived
 * processes (the server, the agents) run in the testbed's cgroup subtree, so its teardown
 * ends them by cgroup and PID; everything is torn down in afterAll.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCT_VERSION } from '../../src/domain/product-version.js';
import { REPO, ensureBuilt } from '../support/testbed/host-agents.js';
import { createRootfsHosts, type RootfsFleet, type RootfsHost } from '../support/testbed/rootfs-hosts.js';
import { startTestbedServer, type TestbedServer } from '../support/testbed/testbed-server.js';

const isRoot = process.getuid?.() === 0;
const ci = process.env.CI === 'true';
const suite = isRoot || ci ? describe : describe.skip;
const TOKEN = 'install-e2e-admin-token-8c2e4a6f1b3d5e7a9c0b2d4f6a8e1c3b';
const EXECUTABLE = path.join(REPO, 'dist', 'agent', 'upshift-agent-linux-x64');

suite('the install script run for real inside Debian 13 hosts without an init system', () => {
  let fleet: RootfsFleet | undefined;
  let server: TestbedServer | undefined;
  let base = '';
  let clusterId = '';
  let joinCommand = '';
  let sha256 = '';

  const api = <T = any>(method: string, p: string, body?: unknown) => (server as TestbedServer).api<T>(method, p, body);
  const nodes = () => (server as TestbedServer).nodes(clusterId);
  const logOf = (h: RootfsHost) => readFile(path.join(h.host.dir, 'install.log'), 'utf8').catch(() => '');

  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, more?: () => Promise<string>) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}\n--- server ---\n${server?.output(2000) ?? ''}\n${more ? await more() : ''}`);
      await sleep(500);
    }
  };
  /** The node online in the API: Ready, with the versions its agent reported from the host. */
  const online = (h: RootfsHost) =>
    waitFor(
      `${h.name} online with its facts`,
      async () => (await nodes()).find((n) => n.name === h.name && n.status === 'Ready' && n.versions['docker'] !== undefined),
      60_000,
      async () => `--- ${h.name} ---\n${(await logOf(h)).slice(-3000)}`,
    );
  /** Command lines of the processes in the host's cgroup that run the installed agent executable. */
  const agentProcesses = async (h: RootfsHost): Promise<string[]> => {
    const pids = (await readFile(h.cgroupProcs, 'utf8')).trim().split('\n').filter(Boolean);
    const lines = await Promise.all(
      pids.map((p) =>
        readFile(`/proc/${p}/cmdline`, 'utf8').then(
          (c) => c.split('\0').filter(Boolean).join(' '),
          () => '',
        ),
      ),
    );
    return lines.filter((l) => l.startsWith('/opt/upshift/upshift-agent '));
  };
  /** The printed join command, run in the host as root (the base has no sudo, and root needs none). */
  const joinAs = (extra: string) => {
    const command = joinCommand.replace('| sudo sh -s --', '| sh -s --');
    return extra ? `${command} ${extra}` : command;
  };

  beforeAll(async () => {
    if (!isRoot) throw new Error('the install script end-to-end test needs root (namespaces, overlay mounts, chroot)');
    await ensureBuilt();
    // Hosts with nothing of the agent on them: the script installs it.
    fleet = await createRootfsHosts({ hosts: 2, agent: false });
    const f = fleet;
    server = await startTestbedServer(f.bed, { token: TOKEN });
    base = server.base;

    const created = await api<{ id: string; joinToken: string; joinCommand: string; agentSha256: string }>('POST', '/clusters', {
      name: 'installed',
      kind: 'hosts',
    });
    expect(created.status).toBe(201);
    clusterId = created.body.id;
    joinCommand = created.body.joinCommand;
    sha256 = created.body.agentSha256;
    // What the server serves is what npm run build made.
    expect(sha256).toBe(
      createHash('sha256')
        .update(await readFile(EXECUTABLE))
        .digest('hex'),
    );
    expect(joinCommand).toBe(
      `curl -fsSL ${base}/install/agent.sh | sudo sh -s -- --join-token ${created.body.joinToken} --sha256 ${sha256}`,
    );
  }, 900_000);

  afterAll(async () => {
    await server?.stop();
    if (fleet) await fleet.teardown();
  }, 180_000);

  it('the hosts have curl, no Node.js, no agent and no init system', async () => {
    const f = fleet as RootfsFleet;
    for (const h of f.hosts) {
      const r = await f.exec(h, [
        'sh',
        '-c',
        'command -v curl; command -v node || echo no-node; test -e /opt/upshift || echo no-agent; test -d /run/systemd/system || echo no-systemd',
      ]);
      expect(r.stdout).toBe('/usr/bin/curl\nno-node\nno-agent\nno-systemd\n');
    }
  });

  it('a wrong --sha256 installs nothing and joins nothing', async () => {
    const f = fleet as RootfsFleet;
    const h = f.hosts[0] as RootfsHost;
    const wrong = sha256.replace(/^./, sha256.startsWith('0') ? '1' : '0');
    const r = await f.exec(h, ['sh', '-c', joinAs('').replace(`--sha256 ${sha256}`, `--sha256 ${wrong}`)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `checksum mismatch: the agent from ${base} has sha256 ${sha256}, but --sha256 is ${wrong}; nothing was installed`,
    );
    expect(await readdir(path.join(h.merged, 'opt/upshift'))).toEqual([]);
    expect(existsSync(path.join(h.merged, 'var/lib/upshift-agent/credential.json'))).toBe(false);
    expect(await nodes()).toEqual([]);
  });

  it('without an init system it installs and joins, says so and offers the foreground or a supervisor; the supervisor’s command line brings the node online', async () => {
    const f = fleet as RootfsFleet;
    const h = f.hosts[0] as RootfsHost;
    // An installed systemctl (Debian's docker.io 28 pulls in the systemd package) is not a running systemd.
    const calls = '/var/log/systemctl-calls';
    await writeFile(path.join(h.merged, 'usr/local/bin/systemctl'), `#!/bin/sh\necho "$*" >> ${calls}\nexit 1\n`, { mode: 0o755 });

    const r = await f.exec(h, ['sh', '-c', joinAs('')]);
    expect(r.code, r.stderr).toBe(0);
    const runScript = '/opt/upshift/upshift-agent-run';
    const cmd = `/opt/upshift/upshift-agent agent --server ${base} --data-dir /var/lib/upshift-agent`;
    expect(r.stdout).toBe(
      [
        `upshift agent ${PRODUCT_VERSION} installed as /opt/upshift/upshift-agent and joined ${base} with a node credential; the join token was not stored on this host`,
        'no init system runs here (/run/systemd/system does not exist), so the agent was not started. Start it one of these ways:',
        `  in the foreground (your shell or the container's entrypoint keeps it): ${runScript}`,
        '    or run this install command again with --foreground',
        '  under a supervisor (runit, s6, supervisord, tini, ...): give it the command line',
        `    ${cmd}`,
        `    (the same as ${runScript}); run this install command again with --supervisor to see it for each`,
        '',
      ].join('\n'),
    );
    expect(existsSync(path.join(h.merged, calls.slice(1)))).toBe(false);
    expect(existsSync(path.join(h.merged, 'etc/systemd/system/upshift-agent.service'))).toBe(false);
    expect(await readFile(path.join(h.merged, runScript.slice(1)), 'utf8')).toContain(`\nexec ${cmd}\n`);
    expect((await stat(path.join(h.merged, runScript.slice(1)))).mode & 0o777).toBe(0o755);
    // Joined, not started: the node exists, no agent runs.
    expect((await nodes()).map((n) => n.name)).toEqual([h.name]);
    expect(await agentProcesses(h)).toEqual([]);
    // The join token is nowhere on the host.
    const token = joinCommand.split('--join-token ')[1]?.split(' ')[0] as string;
    const grep = await f.exec(h, ['grep', '-rlF', token, '/opt/upshift', '/var/lib/upshift-agent', '/etc', '/root']);
    expect(grep.stdout).toBe('');

    // --supervisor: the same install, the command line for each supervisor, nothing started.
    const sup = await f.exec(h, ['sh', '-c', joinAs('--supervisor')]);
    expect(sup.code, sup.stderr).toBe(0);
    expect(sup.stderr).toContain('this host holds a credential already');
    const lines = sup.stdout.split('\n');
    expect(lines[1]).toBe(
      'no init system runs here (/run/systemd/system does not exist): nothing was started (--supervisor). Run the agent under your supervisor with this command line; it stays in the foreground and logs to stderr:',
    );
    expect(lines[2]).toBe(`  ${cmd}`);
    expect(sup.stdout).toContain(
      `  runit:        mkdir -p /etc/service/upshift-agent && ln -s ${runScript} /etc/service/upshift-agent/run\n`,
    );
    expect(sup.stdout).toContain(`  supervisord:  [program:upshift-agent] command=${runScript} autorestart=unexpected exitcodes=0,2\n`);
    expect(sup.stdout).toContain(`  tini:         tini -- ${runScript}   (a container's ENTRYPOINT ["tini", "--", "${runScript}"])\n`);

    // Nothing runs the agent: three heartbeats after the join's one, the node is Down.
    expect(await agentProcesses(h)).toEqual([]);
    await waitFor(`${h.name} marked Down (no agent runs)`, async () => ((await nodes())[0]?.status === 'Down' ? true : undefined), 60_000);
    // The printed command line, run as a supervisor runs it: the node comes online again.
    f.spawnIn(h, (lines[2] as string).trim().split(' '), path.join(h.host.dir, 'install.log'));
    const node = await online(h);
    expect(node.versions).toMatchObject({ agent: PRODUCT_VERSION, docker: '26.1.5', containerd: '1.7.24' });
    expect(await logOf(h)).toContain(`node ${h.name} (${node.id}) of cluster installed; server ${base}`);
  });

  it('with --foreground the script becomes the agent: the node comes online with its facts and heartbeats', async () => {
    const f = fleet as RootfsFleet;
    const h = f.hosts[1] as RootfsHost;
    f.spawnIn(h, ['sh', '-c', joinAs('--foreground')], path.join(h.host.dir, 'install.log'));
    const node = await online(h);
    expect(node.versions).toMatchObject({ agent: PRODUCT_VERSION, docker: '26.1.5', containerd: '1.7.24' });
    // The join alone makes the node Ready with its facts, a moment before the script prints
    // and execs the agent: wait for the script's last line rather than read the log at once.
    const log = await waitFor(
      `${h.name}: the script handing over to the agent`,
      async () => {
        const text = await logOf(h);
        return text.includes('the agent runs in the foreground now (--foreground)') ? text : undefined;
      },
      30_000,
      async () => `--- ${h.name} ---\n${(await logOf(h)).slice(-3000)}`,
    );
    expect(log).toContain(
      `upshift agent ${PRODUCT_VERSION} installed as /opt/upshift/upshift-agent and joined ${base} with a node credential; the join token was not stored on this host\n`,
    );
    expect(log).toContain(
      'no init system runs here (/run/systemd/system does not exist): the agent runs in the foreground now (--foreground); stop it with SIGTERM or Ctrl-C. To start it again later: /opt/upshift/upshift-agent-run\n',
    );
    // One join (by the script), then the agent on the credential: the exec'd agent did not join again.
    expect(log.match(/joined cluster installed as node/g)).toHaveLength(1);
    // The agent is what the script became: one process in the host's cgroup runs the installed executable.
    expect(await agentProcesses(h)).toEqual([`/opt/upshift/upshift-agent agent --server ${base} --data-dir /var/lib/upshift-agent`]);
    // Still Ready after more than three heartbeats (5 s each): the join's one heartbeat alone would be Down by then.
    await sleep(20_000);
    expect((await nodes()).find((n) => n.name === h.name)?.status).toBe('Ready');
  });
});
