/**
 * Helpers shared by the hosts end-to-end tests: a testbed host prepared the way an operator
 * prepares a real one for the agent (a binary install root with `current`, a daemon config,
 * service control through test/support/testbed/testbed-service.sh), the Docker Engine binary
 * archive built from the package cache, the agent executable (a Node.js single executable,
 * as /install/agent.sh installs it) or the agent as one JavaScript file, and a PATH without
 * `node` for the agents: the hosts have no Node.js.
 *
 * The testbed harness (test/support/testbed/hosts.ts) is used as is: these helpers only add
 * files under each host's directory and processes in the testbed's cgroup subtree, so its
 * teardown and crash cleanup remove them too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, openSync, closeSync, statSync } from 'node:fs';
import { copyFile, link, mkdir, readFile, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { buildAgentExecutable } from '../../../scripts/agent-executable.mjs';
import type { PackageManifest, Testbed, TestHost } from './hosts.js';
import { run } from './hosts.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../../..');
export const SERVICE_SCRIPT = path.join(HERE, 'testbed-service.sh');
const STATE_ROOT = process.env.UPSHIFT_TESTBED_RUN ?? '/run/upshift-testbed';
const CACHE = process.env.UPSHIFT_HOSTS_E2E_CACHE ?? path.join(os.homedir(), '.cache', 'upshift-hosts-e2e');

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function trackingHierarchy(): Promise<string> {
  for (const candidate of ['/sys/fs/cgroup/pids', '/sys/fs/cgroup']) {
    if (existsSync(path.join(candidate, 'cgroup.procs'))) return candidate;
  }
  throw new Error('no usable cgroup hierarchy under /sys/fs/cgroup');
}

/** A testbed host prepared for the agent. */
export interface PreparedHost {
  host: TestHost;
  /** `versions/<v>/bin`, `current` → the running tree. */
  installRoot: string;
  /** dockerd's `--config-file`. */
  daemonConfig: string;
  /** The agent's data dir. */
  agentDataDir: string;
  /** Where the agent's config file goes. */
  agentConfigFile: string;
  /** The dockerd data root (may be a btrfs subvolume). */
  dataRoot: string;
  utsFile: string;
  /** cgroup.procs of the host's cgroup for its agent. */
  agentCgroupProcs: string;
  startArgv: string[];
  stopArgv: string[];
}

/**
 * Lays out a host: `<dir>/docker/versions/20.10.24/bin` (symlinks into the package cache,
 * what "installed" means on these hosts), `current` pointing at it, a daemon.json and the
 * service.env the service script reads. Does not start anything.
 */
export async function prepareHost(
  bed: Testbed,
  host: TestHost,
  options: { dataRoot?: string; daemonJson?: Record<string, unknown>; tcpHost?: string } = {},
): Promise<PreparedHost> {
  const tracking = await trackingHierarchy();
  const cgroup = `upshift-tb/${bed.prefix}/n${host.index}`;
  const installRoot = path.join(host.dir, 'docker');
  const v20 = path.join(installRoot, 'versions', '20.10.24', 'bin');
  await mkdir(v20, { recursive: true });
  const src = bed.packages.engines['20.10.24'].bin;
  for (const name of await readdir(src)) await symlink(path.join(src, name), path.join(v20, name)).catch(() => undefined);
  await rm(path.join(installRoot, 'current'), { force: true });
  await symlink(path.join('versions', '20.10.24'), path.join(installRoot, 'current'));
  const daemonConfig = path.join(host.dir, 'daemon.json');
  await writeDaemonJson(host, options.daemonJson ?? {});
  const dataRoot = options.dataRoot ?? host.dataRoot;
  const utsFile = path.join(STATE_ROOT, bed.prefix, `n${host.index}.uts`);
  const env = {
    NETNS: host.netns,
    UTS_FILE: utsFile,
    CGROUP_PROCS: path.join(tracking, cgroup, 'daemon', 'cgroup.procs'),
    CGROUP_PARENT: `/${cgroup}/ctr`,
    INSTALL_ROOT: installRoot,
    DATA_ROOT: dataRoot,
    SOCKET: host.dockerSocket,
    BIP: `10.200.${64 + host.index}.1/24`,
    // A second API endpoint (`tcp://IP:2376`, TLS settings in daemon.json), if any.
    ...(options.tcpHost ? { TCP_HOST: options.tcpHost } : {}),
  };
  await writeFile(
    path.join(host.dir, 'service.env'),
    Object.entries(env)
      .map(([k, v]) => `${k}='${v}'`)
      .join('\n') + '\n',
  );
  await mkdir(path.join(tracking, cgroup, 'agent'), { recursive: true });
  return {
    host,
    installRoot,
    daemonConfig,
    agentDataDir: path.join(host.dir, 'agent'),
    agentConfigFile: path.join(host.dir, 'agent.yaml'),
    dataRoot,
    utsFile,
    agentCgroupProcs: path.join(tracking, cgroup, 'agent', 'cgroup.procs'),
    startArgv: [SERVICE_SCRIPT, 'start', host.dir],
    stopArgv: [SERVICE_SCRIPT, 'stop', host.dir],
  };
}

/** cgroup.procs of a cgroup for the control plane inside the testbed's subtree (created here). */
export async function serverCgroupProcs(bed: Testbed): Promise<string> {
  const dir = path.join(await trackingHierarchy(), 'upshift-tb', bed.prefix, 'server');
  await mkdir(dir, { recursive: true });
  return path.join(dir, 'cgroup.procs');
}

/** dockerd's config file: the per-host trust key (as the harness does) plus `extra`. */
export async function writeDaemonJson(host: TestHost, extra: Record<string, unknown>): Promise<void> {
  await writeFile(
    path.join(host.dir, 'daemon.json'),
    JSON.stringify({ 'deprecated-key-path': path.join(host.dir, 'key.json'), ...extra }, null, 1),
  );
}

export async function service(p: PreparedHost, action: 'start' | 'stop'): Promise<void> {
  const r = await run(action === 'start' ? p.startArgv : p.stopArgv, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${p.host.name}: service ${action} failed (${r.code}): ${r.stdout}${r.stderr}`);
}

/**
 * The Docker Engine 26.1.5 binary archive (`bin/dockerd`, containerd, shims, the Debian 12
 * runc, …) made from the package cache, as an operator would repackage vendor binaries.
 * Cached between runs (building it takes ~12 s).
 */
export async function dockerArchive(packages: PackageManifest): Promise<{ file: string; sha256: string; name: string }> {
  const version = packages.engines['26.1.5'].dockerPackage;
  const name = `docker-engine-26.1.5-${process.arch === 'x64' ? 'amd64' : process.arch}.tar.gz`;
  const dir = path.join(CACHE, version);
  const file = path.join(dir, name);
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    const r = await run(['sh', '-c', 'tar -C "$1" -chf - bin | gzip -1 > "$2"', 'sh', path.dirname(packages.engines['26.1.5'].bin), tmp], {
      timeoutMs: 300_000,
    });
    if (r.code !== 0) throw new Error(`building ${name} failed: ${r.stderr}`);
    await rename(tmp, file);
  }
  return { file, sha256: await sha256File(file), name };
}

/** Builds the standalone agent bundle; `version` stamps it (an "old" 1.0.0 agent for the self-upgrade). */
export async function buildAgentBundle(outfile: string, version?: string): Promise<string> {
  await build({
    entryPoints: [path.join(REPO, 'src/agent/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: {
      js: "import { createRequire as __upshiftCreateRequire } from 'node:module'; const require = __upshiftCreateRequire(import.meta.url);",
    },
    ...(version ? { define: { 'globalThis.__UPSHIFT_AGENT_VERSION__': JSON.stringify(version) } } : {}),
    logLevel: 'warning',
  });
  return outfile;
}

/**
 * The agent executable stamped with `version` (an "old" agent for the self-upgrade), cached
 * between runs: the injection into the ~120 MB runtime is skipped when the agent's code and
 * the runtime did not change.
 */
export async function buildOldAgentExecutable(version: string): Promise<string> {
  const outfile = path.join(CACHE, `agent-${version}`, 'upshift-agent-linux-x64');
  await buildAgentExecutable({ outfile, version });
  return outfile;
}

/**
 * Puts `source` at `dest` as a host's own agent file: a hard link where both are on one file
 * system (a self-upgrade renames a new file over `dest`, which leaves `source` and the other
 * hosts' links alone), else a copy.
 */
export async function installAgentFile(source: string, dest: string): Promise<void> {
  await rm(dest, { force: true });
  try {
    await link(source, dest);
  } catch {
    await copyFile(source, dest);
  }
}

/**
 * A PATH for agents on hosts without Node.js: one directory of links to everything in the
 * machine's bin directories except Node.js and its package managers, under `root` (the
 * testbed's, so that its cleanup removes it).
 */
export async function pathWithoutNode(root: string): Promise<string> {
  const dir = path.join(root, 'no-node-bin');
  if (existsSync(dir)) return dir;
  await mkdir(dir);
  const skip = new Set(['node', 'nodejs', 'npm', 'npx', 'corepack']);
  for (const bin of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    for (const name of await readdir(bin).catch(() => [] as string[])) {
      if (skip.has(name) || existsSync(path.join(dir, name))) continue;
      await symlink(path.join(bin, name), path.join(dir, name)).catch(() => undefined);
    }
  }
  return dir;
}

/** The agent config of a testbed host (YAML is JSON). */
export function agentConfig(p: PreparedHost, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dataDir: p.agentDataDir,
    dockerSocket: p.host.dockerSocket,
    components: {
      docker: {
        methods: ['binary'],
        installRoot: p.installRoot,
        configFiles: [p.daemonConfig],
        service: { kind: 'command', start: p.startArgv, stop: p.stopArgv },
      },
    },
    timeouts: { startSeconds: 30, stopSeconds: 60, verifySeconds: 30, selfUpgradeSeconds: 45 },
    minFreeMegabytes: 256,
    ...extra,
  };
}

/** A running agent process of a host, in the host's namespaces and cgroup. */
export interface AgentProcess {
  child: ChildProcess;
  logFile: string;
}

/**
 * Starts an agent "on" the host: in its network and UTS namespaces (so it reports the host's
 * hostname and reaches the server through the testbed bridge) and in the host's cgroup (so
 * the harness's cleanup kills it, and anything it hands over to, after a crash). `program`
 * is the agent executable, run as it is, or a `.js` file, run by this Node.js. `env.PATH`
 * replaces the default (this process's PATH).
 */
export function startAgent(p: PreparedHost, program: string, args: string[], env: Record<string, string> = {}): AgentProcess {
  const argv = program.endsWith('.js') ? [process.execPath, program] : [program];
  const logFile = path.join(p.host.dir, 'agent.log');
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'echo $$ > "$1" && shift && exec "$@"',
        'sh',
        p.agentCgroupProcs,
        'nsenter',
        `--net=/run/netns/${p.host.netns}`,
        `--uts=${p.utsFile}`,
        '--',
        ...argv,
        ...args,
      ],
      { stdio: ['ignore', fd, fd], detached: true, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...env } },
    );
    child.unref();
    return { child, logFile };
  } finally {
    closeSync(fd);
  }
}

/** The PID in the agent's instance lock (the live agent, also after a self-upgrade handover). */
export async function agentPid(p: PreparedHost): Promise<number | undefined> {
  try {
    const held = JSON.parse(await readFile(path.join(p.agentDataDir, 'agent.pid'), 'utf8')) as { pid?: number };
    return typeof held.pid === 'number' ? held.pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops a host's agent by the PID it recorded (SIGTERM, then SIGKILL after `ms`). */
export async function stopAgent(p: PreparedHost, ms = 10_000): Promise<void> {
  const pid = await agentPid(p);
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** Builds dist/ (server and agent executable) when it is missing or older than the sources they are made of. */
export async function ensureBuilt(): Promise<void> {
  const bundle = path.join(REPO, 'dist', 'agent', 'upshift-agent-linux-x64');
  const server = path.join(REPO, 'dist', 'upshift.js');
  let newest = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (p.endsWith('.ts')) newest = Math.max(newest, (await stat(p)).mtimeMs);
    }
  };
  for (const d of ['agent', 'domain', 'platform', 'server', 'engine', 'api']) await walk(path.join(REPO, 'src', d));
  if (existsSync(bundle) && existsSync(server) && Math.min(statSync(bundle).mtimeMs, statSync(server).mtimeMs) >= newest) return;
  const r = await run([process.execPath, path.join(REPO, 'scripts/build.mjs'), '--no-web'], { timeoutMs: 300_000 });
  if (r.code !== 0 || !existsSync(bundle)) throw new Error(`the build (scripts/build.mjs --no-web) failed: ${r.stderr}${r.stdout}`);
}
