/**
 * Real Docker hosts on one machine, for end-to-end tests that upgrade real engines.
 *
 * A testbed is a Linux bridge in the root network namespace plus N "hosts": each host is a
 * network namespace (with a veth on the bridge), a persistent UTS namespace (its own
 * hostname, so Swarm node names differ), its own directory tree and, when started, a real
 * `dockerd` with its managed `containerd`. The binaries come from per-version trees that
 * `scripts/testbed/fetch-packages.sh` unpacked from Debian's packages, so a host can be
 * switched between Docker Engine 20.10.24 and 26.1.5 on the same data-root — a real engine
 * upgrade or downgrade — without installing anything system-wide.
 *
 * Hosts share the filesystem and the PID space with the machine, so isolation is by
 * directories and by a cgroup subtree (`upshift-tb/<prefix>` in every cgroup hierarchy):
 * every process of a testbed (dockerd, containerd, shims, containers, gVisor sandboxes)
 * lives in that subtree, which is how leftovers are found after a crash — by the PIDs the
 * kernel records there, never by process name.
 *
 * Everything a testbed creates is recorded in a state file under `/run/upshift-testbed/<prefix>/`
 * *before* it is created, and `scripts/testbed/cleanup.sh <prefix>` removes exactly what is
 * recorded. `teardown()` stops the engines gracefully and then runs that same script, so a
 * normal teardown and the recovery after a crashed run share one implementation.
 *
 * Network rule: the only addresses used are 10.200.0.0/16 inside namespaces this module
 * creates and on the bridge it creates; each testbed claims its own /24 slot for the bridge.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, openSync, closeSync } from 'node:fs';
import {
  access,
  appendFile,
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  open,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Docker Engine versions the package cache provides. */
export type DockerVersion = '20.10.24' | '26.1.5';
export const DOCKER_VERSIONS: readonly DockerVersion[] = ['20.10.24', '26.1.5'];

/** gVisor releases the package cache provides: Debian 12's and bookworm-backports'. */
export type RunscRelease = 'old' | 'new';

export interface TestHost {
  /** Host name; also the hostname inside the host's UTS namespace. */
  readonly name: string;
  /** 1-based position in the testbed. */
  readonly index: number;
  /** Address on the testbed bridge (reachable from the root namespace and other hosts). */
  readonly ip: string;
  /** Network namespace name (`ip netns`), same as `name`. */
  readonly netns: string;
  /** The host's private directory (data-root, exec-root, socket, logs, CLI config). */
  readonly dir: string;
  /** Unix socket of the host's Docker Engine API. */
  readonly dockerSocket: string;
  /** dockerd's data-root: survives engine restarts and version switches. */
  readonly dataRoot: string;
  /** dockerd's log (stdout and stderr of every start, appended). */
  readonly logFile: string;
  /** PID of the running dockerd, if any. */
  pid(): number | undefined;
  /** Version whose binaries the running dockerd uses, if any. */
  dockerVersion(): DockerVersion | undefined;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the command's stdin (then closed). */
  input?: string | Buffer;
  /** Kill the command (SIGKILL) after this many milliseconds; default 120 000. */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

interface RunOptions extends ExecOptions {
  /** Use exactly `env` instead of adding it to this process's environment. */
  replaceEnv?: boolean;
}

export interface StartDockerdOptions {
  /** gVisor release registered as runtime `runsc`; default: the testbed's `withRunsc`. */
  runsc?: RunscRelease | false;
  /** Extra dockerd arguments. */
  extraArgs?: string[];
  /** Readiness timeout in milliseconds; default 60 000. */
  timeoutMs?: number;
}

export interface Testbed {
  readonly prefix: string;
  /** Temporary root holding every host's directory. */
  readonly root: string;
  /** Bridge interface in the root namespace. */
  readonly bridge: string;
  /** The bridge's address: where a control plane on this machine is reachable from hosts. */
  readonly bridgeIp: string;
  /** The testbed's /24 (CIDR). */
  readonly subnet: string;
  readonly hosts: TestHost[];
  readonly packages: PackageManifest;
  /** Starts dockerd with `version`'s binaries on the host's (possibly existing) data-root. */
  startDockerd(host: TestHost, version: DockerVersion, options?: StartDockerdOptions): Promise<void>;
  /** Stops dockerd gracefully (SIGTERM, then SIGKILL after the timeout) and its containerd. */
  stopDockerd(host: TestHost, timeoutMs?: number): Promise<void>;
  /**
   * Runs a command "on" the host: in its network and UTS namespaces, with the running (or
   * last used) engine's binaries first on PATH and DOCKER_HOST pointing at its socket, so
   * `['docker', 'ps']` talks to that host with the matching CLI.
   */
  exec(host: TestHost, argv: string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Every process of the host (dockerd, containerd, shims, containers), found through the
   * host's cgroup subtree, with the binary each one runs: lets a test prove which version's
   * binaries are really running after an upgrade.
   */
  processes(host: TestHost): Promise<HostProcess[]>;
  /** Stops every engine and removes everything the testbed created. Idempotent. */
  teardown(): Promise<void>;
}

export interface HostProcess {
  pid: number;
  /** Resolved `/proc/PID/exe` ('' if unreadable, e.g. the process just exited). */
  exe: string;
  /** Cgroup path relative to the host's subtree, e.g. `daemon` or `ctr/<container id>`. */
  cgroup: string;
}

export interface CreateTestbedOptions {
  /** Number of hosts (1–60). */
  hosts: number;
  /** Short name, [a-z0-9]{1,8}; default: random. Names every interface and namespace. */
  prefix?: string;
  /** Start dockerd of this version on every host right away; default: none started. */
  dockerVersion?: DockerVersion;
  /** Register gVisor as runtime `runsc` on every dockerd start (`true` means `'new'`). */
  withRunsc?: boolean | RunscRelease;
}

/** What `fetch-packages.sh` wrote to `<cache>/manifest.json`. */
export interface PackageManifest {
  cache: string;
  engines: Record<DockerVersion, { bin: string; dockerPackage: string; containerdPackage: string; runcPackage: string }>;
  gvisor: Record<RunscRelease, { version: string; bin: string }>;
  packages: Record<string, { version: string; root: string }>;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../../..');
const FETCH_SCRIPT = path.join(REPO, 'scripts/testbed/fetch-packages.sh');
const CLEANUP_SCRIPT = path.join(REPO, 'scripts/testbed/cleanup.sh');
/** tmpfs: records vanish with a reboot, exactly like the namespaces and processes they describe. */
const STATE_ROOT = process.env.UPSHIFT_TESTBED_RUN ?? '/run/upshift-testbed';
const CGROUP_NAME = 'upshift-tb';
const MAX_HOSTS = 60;
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function cacheDir(): string {
  return process.env.UPSHIFT_TESTBED_CACHE ?? path.join(os.homedir(), '.cache', 'upshift-testbed');
}

// ---------------------------------------------------------------------------------------
// Small process helpers
// ---------------------------------------------------------------------------------------

/** Runs a command outside any namespace and collects its output. Never throws for exit codes. */
export function run(argv: string[], options: RunOptions = {}): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error('run: empty argv'));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.replaceEnv ? { ...options.env } : { ...process.env, ...options.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : -1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => undefined); // the command may not read its stdin
    child.stdin.end(options.input ?? '');
  });
}

/** Like `run` but throws with the command's stderr when it fails. */
async function must(argv: string[], options: ExecOptions = {}): Promise<string> {
  const r = await run(argv, options);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A live process's start time (field 22 of /proc/PID/stat); undefined when it is gone or a
 * zombie. Recorded with every PID so that no cleanup ever signals a process that merely
 * reuses a recorded PID.
 */
async function procStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// Engine API over the unix socket (no client library: Node's http speaks to socketPath)
// ---------------------------------------------------------------------------------------

export interface EngineResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One raw Engine API request over the host's unix socket. */
export function engineRequest(
  host: Pick<TestHost, 'dockerSocket'>,
  method: string,
  urlPath: string,
  body?: string | Buffer | object,
  options: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<EngineResponse> {
  return new Promise((resolve, reject) => {
    let payload: Buffer | undefined;
    const headers: Record<string, string> = { ...options.headers };
    if (Buffer.isBuffer(body)) payload = body;
    else if (typeof body === 'string') payload = Buffer.from(body);
    else if (body !== undefined) {
      payload = Buffer.from(JSON.stringify(body));
      headers['Content-Type'] ??= 'application/json';
    }
    if (payload) headers['Content-Length'] = String(payload.length);
    const req = http.request(
      { socketPath: host.dockerSocket, method, path: urlPath, headers, timeout: options.timeoutMs ?? 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Engine API request that must answer 2xx with JSON. */
export async function engineJson<T>(host: Pick<TestHost, 'dockerSocket'>, method: string, urlPath: string, body?: object): Promise<T> {
  const r = await engineRequest(host, method, urlPath, body);
  if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${urlPath}: ${r.status} ${r.body.trim()}`);
  return (r.body === '' ? undefined : JSON.parse(r.body)) as T;
}

/** The engine's `Version` from `/version` (Debian's builds say e.g. `26.1.5+dfsg1`). */
export async function engineVersion(host: Pick<TestHost, 'dockerSocket'>): Promise<string> {
  const v = await engineJson<{ Version?: unknown }>(host, 'GET', '/version');
  if (typeof v.Version !== 'string') throw new Error('/version has no Version');
  return v.Version;
}

/**
 * Waits until the engine answers `/_ping` with OK and `/version` with a version: `_ping`
 * alone answers before the daemon has finished restoring containers on some versions.
 */
async function waitForEngine(host: TestHost, timeoutMs: number, exited: () => string | undefined): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const gone = exited();
    if (gone !== undefined) throw new Error(`${host.name}: dockerd exited before it was ready (${gone})`);
    try {
      const ping = await engineRequest(host, 'GET', '/_ping', undefined, { timeoutMs: 2_000 });
      if (ping.status === 200 && ping.body === 'OK') return await engineVersion(host);
      last = `/_ping ${ping.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${host.name}: engine not ready after ${timeoutMs} ms (${last})`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------
// Package cache
// ---------------------------------------------------------------------------------------

/**
 * Reads the package manifest, running `fetch-packages.sh` first when the cache is missing
 * or incomplete (it is idempotent and takes a fraction of a second when everything is cached).
 */
export async function loadPackages(): Promise<PackageManifest> {
  const file = path.join(cacheDir(), 'manifest.json');
  const read = async (): Promise<PackageManifest | undefined> => {
    try {
      const m = JSON.parse(await readFile(file, 'utf8')) as PackageManifest;
      const bins = [
        ...DOCKER_VERSIONS.map((v) => path.join(m.engines[v].bin, 'dockerd')),
        path.join(m.gvisor.old.bin, 'runsc'),
        path.join(m.gvisor.new.bin, 'runsc'),
      ];
      for (const b of bins) await access(b, fsConstants.X_OK);
      return m;
    } catch {
      return undefined;
    }
  };
  const cached = await read();
  if (cached) return cached;
  const r = await run(['bash', FETCH_SCRIPT], { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`fetch-packages.sh failed (${r.code}): ${r.stderr.slice(-2000)}`);
  const fetched = await read();
  if (!fetched) throw new Error(`fetch-packages.sh did not produce a usable ${file}`);
  return fetched;
}

// ---------------------------------------------------------------------------------------
// State file, cgroups, address slots
// ---------------------------------------------------------------------------------------

/** The hierarchy whose cgroup.procs lists every process of a subtree (v1: pids; v2: unified). */
async function trackingHierarchy(): Promise<string> {
  for (const candidate of ['/sys/fs/cgroup/pids', '/sys/fs/cgroup']) {
    try {
      await access(path.join(candidate, 'cgroup.procs'));
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('no usable cgroup hierarchy under /sys/fs/cgroup');
}

/** Appends one record to the testbed's state file; cleanup.sh reads these lines. */
async function record(stateFile: string, ...fields: (string | number)[]): Promise<void> {
  await appendFile(stateFile, fields.join(' ') + '\n');
}

/**
 * Claims a free /24 for the bridge: 10.200.S.0/24 with S in 1..63. A slot is free when no
 * other testbed holds its claim file and no interface of the root namespace uses it (other
 * tools may build bridges in 10.200.0.0/16 by hand). Slot 0 is left for such hand-made
 * setups (TESTBED.md uses 10.200.0.1). Inside the hosts, docker0 uses 10.200.(64+i).0/24 and
 * the default address pool 10.200.192.0/18, which never overlap a bridge slot; 10.200.128.0/18
 * stays free for Swarm's `--default-addr-pool`.
 */
async function claimSlot(prefix: string): Promise<number> {
  const slotDir = path.join(STATE_ROOT, 'slots');
  await mkdir(slotDir, { recursive: true });
  const used = await must(['ip', '-4', '-o', 'addr', 'show']);
  for (let s = 1; s < 64; s++) {
    if (used.includes(` 10.200.${s}.`)) continue;
    const claim = path.join(slotDir, String(s));
    if (await createExclusive(claim, prefix + '\n')) return s;
    // Held: reclaim it only if its testbed has no state file any more (a half-done cleanup).
    const owner = (await readFile(claim, 'utf8').catch(() => '')).trim();
    if (owner !== '' && (await exists(path.join(STATE_ROOT, owner, 'state')))) continue;
    await rm(claim, { force: true });
    if (await createExclusive(claim, prefix + '\n')) return s;
  }
  throw new Error('no free 10.200.S.0/24 slot for a testbed bridge (1..63 all in use)');
}

async function createExclusive(file: string, content: string): Promise<boolean> {
  try {
    await mkdir(path.dirname(file), { recursive: true });
    const fh = await open(file, 'wx');
    await fh.writeFile(content);
    await fh.close();
    return true;
  } catch {
    return false;
  }
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/** Prefixes of this process's testbeds that have not been torn down. */
const activeTestbeds = new Set<string>();
let hooksInstalled = false;

/**
 * Last resort when the process ends without `teardown()`: an uncaught error or
 * `process.exit` ('exit'), or Ctrl-C / a kill from a test runner (SIGINT, SIGTERM, SIGHUP,
 * whose default action would skip 'exit' handlers). Synchronous, because nothing
 * asynchronous runs once the process is exiting; then the signal is re-raised so the exit
 * status is the one the signal would have given.
 */
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const cleanAll = () => {
    for (const p of activeTestbeds) {
      // Not stdio 'inherit': the process may be dying because its stdout/stderr pipe closed.
      const r = spawnSync('bash', [CLEANUP_SCRIPT, p], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
      try {
        process.stderr.write(r.stderr);
      } catch {
        // nowhere to report to
      }
    }
    activeTestbeds.clear();
  };
  process.on('exit', cleanAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = () => {
      cleanAll();
      process.off(sig, handler);
      process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

/** Removes a testbed recorded under `prefix` (also one left by a crashed run). */
export async function cleanupPrefix(prefix: string): Promise<ExecResult> {
  return run(['bash', CLEANUP_SCRIPT, prefix], { timeoutMs: 300_000 });
}

/**
 * Testbeds whose creating process is gone are cleaned before a new one is made: nobody
 * else will ever tear them down, and their engines hold memory and addresses. Set
 * UPSHIFT_TESTBED_KEEP_STALE=1 to keep them for a post-mortem.
 */
async function cleanupStale(): Promise<void> {
  if (process.env.UPSHIFT_TESTBED_KEEP_STALE === '1') return;
  const r = await run(['bash', CLEANUP_SCRIPT, '--stale'], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`cleanup.sh --stale failed: ${r.stderr}`);
}

// ---------------------------------------------------------------------------------------
// Testbed
// ---------------------------------------------------------------------------------------

interface HostState {
  host: TestHost;
  child: ChildProcess | undefined;
  pid: number | undefined;
  version: DockerVersion | undefined;
  /** Version for `exec` PATH when no engine runs: the last one started. */
  lastVersion: DockerVersion;
  exitInfo: string | undefined;
  utsFile: string;
  cgroup: string;
}

export async function createTestbed(opts: CreateTestbedOptions): Promise<Testbed> {
  if (process.getuid?.() !== 0) throw new Error('the testbed needs root (namespaces, bridges, cgroups)');
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > MAX_HOSTS) {
    throw new Error(`hosts must be an integer in 1..${MAX_HOSTS}`);
  }
  const prefix = opts.prefix ?? 't' + randomBytes(4).readUInt32BE(0).toString(36).slice(0, 5);
  if (!/^[a-z0-9]{1,8}$/.test(prefix)) throw new Error(`prefix must match [a-z0-9]{1,8}: ${prefix}`);
  const runsc: RunscRelease | false = opts.withRunsc === true ? 'new' : (opts.withRunsc ?? false);

  const packages = await loadPackages();
  await cleanupStale();

  const stateDir = path.join(STATE_ROOT, prefix);
  const stateFile = path.join(stateDir, 'state');
  if (await exists(stateFile)) {
    // cleanup.sh --stale just removed every testbed whose owner is dead: this one is alive.
    throw new Error(`a testbed with prefix "${prefix}" is in use (${stateFile})`);
  }
  await mkdir(stateDir, { recursive: true });
  const selfStart = await procStartTime(process.pid);
  // Written whole then renamed: a concurrent `cleanup.sh --stale` must never see a state
  // file without its owner line (it would take the testbed for an orphan).
  await writeFile(`${stateFile}.new`, `owner ${process.pid} ${selfStart ?? '-'}\n`);
  await rename(`${stateFile}.new`, stateFile);

  const states: HostState[] = [];
  let tornDown = false;
  activeTestbeds.add(prefix);
  installExitHooks();

  const cgroupBase = `${CGROUP_NAME}/${prefix}`;
  const bridge = `up-${prefix}-br`;
  let root = '';
  let tracking = '';
  let slot = 0;
  let bridgeIp = '';

  const stateOf = (host: TestHost): HostState => {
    const st = states.find((s) => s.host === host);
    if (!st) throw new Error(`${host.name} is not a host of testbed ${prefix}`);
    return st;
  };

  const stopDockerd = async (host: TestHost, timeoutMs = 60_000): Promise<void> => {
    const st = stateOf(host);
    const pid = st.pid;
    if (pid === undefined) return;
    const containerdPidFile = path.join(host.dir, 'exec', 'containerd', 'containerd.pid');
    const containerdPid = Number((await readFile(containerdPidFile, 'utf8').catch(() => '')).trim()) || undefined;
    const containerdStart = containerdPid ? await procStartTime(containerdPid) : undefined;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const deadline = Date.now() + timeoutMs;
    while (st.exitInfo === undefined && alive(pid) && Date.now() < deadline) await sleep(50);
    if (st.exitInfo === undefined && alive(pid)) {
      process.kill(pid, 'SIGKILL');
      while (alive(pid) && st.exitInfo === undefined) await sleep(20);
    }
    // dockerd stops its managed containerd on the way out; make sure it did (same process only).
    if (containerdPid && containerdStart !== undefined) {
      const until = Date.now() + 10_000;
      while ((await procStartTime(containerdPid)) === containerdStart && Date.now() < until) await sleep(50);
      if ((await procStartTime(containerdPid)) === containerdStart) process.kill(containerdPid, 'SIGKILL');
    }
    st.pid = undefined;
    st.child = undefined;
    st.version = undefined;
  };

  const startDockerd = async (host: TestHost, version: DockerVersion, options: StartDockerdOptions = {}) => {
    const st = stateOf(host);
    if (st.pid !== undefined && alive(st.pid)) throw new Error(`${host.name}: dockerd already runs (pid ${st.pid})`);
    const engine = packages.engines[version];
    if (!engine) throw new Error(`unknown Docker version ${version}`);
    const withRunsc = options.runsc ?? runsc;
    const d = host.dir;
    const daemonCgroup = `${st.cgroup}/daemon`;
    await mkdir(path.join(tracking, daemonCgroup), { recursive: true });
    // The config file pins the trust key (20.10's engine ID) to the host: by default 20.10
    // uses /etc/docker/key.json, which every host would share (same engine ID everywhere).
    // 26.1.5 accepts the setting but ignores the key: it keeps a UUID in <data-root>/engine-id,
    // so the engine ID changes on the upgrade (measured; see README).
    await writeFile(path.join(d, 'daemon.json'), JSON.stringify({ 'deprecated-key-path': path.join(d, 'key.json') }));
    const args = [
      `--data-root=${host.dataRoot}`,
      `--exec-root=${path.join(d, 'exec')}`,
      `--pidfile=${path.join(d, 'docker.pid')}`,
      `--host=unix://${host.dockerSocket}`,
      `--config-file=${path.join(d, 'daemon.json')}`,
      '--storage-driver=overlay2',
      `--bip=10.200.${64 + host.index}.1/24`,
      '--default-address-pool=base=10.200.192.0/18,size=24',
      // Containers land under the testbed's cgroup subtree, next to the daemon.
      `--cgroup-parent=/${st.cgroup}/ctr`,
      '--exec-opt=native.cgroupdriver=cgroupfs',
    ];
    if (withRunsc) {
      // A per-host symlink to the chosen release's wrapper, so a sandboxed-runtime upgrade
      // test can retarget it (or replace the file) under a running dockerd.
      const wrapper = path.join(d, 'runsc-docker');
      await rm(wrapper, { force: true });
      await must(['ln', '-s', path.join(packages.gvisor[withRunsc].bin, 'runsc-docker'), wrapper]);
      args.push(`--add-runtime=runsc=${wrapper}`);
    }
    args.push(...(options.extraArgs ?? []));

    const logFd = openSync(host.logFile, 'a');
    let child: ChildProcess;
    try {
      // sh joins the tracking cgroup before exec'ing nsenter, which execs dockerd: one PID
      // throughout, inside the subtree from its first instruction (so every child is too).
      child = spawn(
        '/bin/sh',
        [
          '-c',
          'echo $$ > "$1" && shift && exec "$@"',
          'sh',
          path.join(tracking, daemonCgroup, 'cgroup.procs'),
          'nsenter',
          `--net=/run/netns/${host.netns}`,
          `--uts=${st.utsFile}`,
          '--',
          path.join(engine.bin, 'dockerd'),
          ...args,
        ],
        {
          detached: true,
          stdio: ['ignore', logFd, logFd],
          env: { PATH: `${engine.bin}:${SYSTEM_PATH}`, HOME: d, LANG: 'C.UTF-8' },
        },
      );
    } finally {
      closeSync(logFd);
    }
    const pid = child.pid;
    if (pid === undefined) throw new Error(`${host.name}: could not spawn dockerd`);
    st.exitInfo = undefined;
    child.on('exit', (code, signal) => {
      st.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
    });
    // Do not keep the test process alive for the daemon; teardown (or the exit hook) ends it.
    child.unref();
    st.child = child;
    st.pid = pid;
    st.version = version;
    st.lastVersion = version;
    await record(stateFile, 'pid', pid, (await procStartTime(pid)) ?? '-');
    try {
      const reported = await waitForEngine(host, options.timeoutMs ?? 60_000, () => st.exitInfo);
      if (!reported.startsWith(version)) throw new Error(`${host.name}: asked for ${version}, engine says ${reported}`);
    } catch (e) {
      const log = await readFile(host.logFile, 'utf8').catch(() => '');
      await stopDockerd(host, 5_000).catch(() => undefined);
      throw new Error(`${(e as Error).message}\n--- ${host.logFile} (tail) ---\n${log.split('\n').slice(-25).join('\n')}`);
    }
  };

  const processes = async (host: TestHost): Promise<HostProcess[]> => {
    const base = path.join(tracking, stateOf(host).cgroup);
    const out: HostProcess[] = [];
    const walk = async (dir: string): Promise<void> => {
      const procs = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const line of procs.split('\n')) {
        const pid = Number(line);
        if (!Number.isInteger(pid) || pid <= 0) continue;
        const exe = await readlink(`/proc/${pid}/exe`).catch(() => '');
        out.push({ pid, exe, cgroup: path.relative(base, dir) });
      }
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name));
    };
    await walk(base);
    return out;
  };

  const exec = (host: TestHost, argv: string[], options: ExecOptions = {}): Promise<ExecResult> => {
    const st = stateOf(host);
    const engine = packages.engines[st.version ?? st.lastVersion];
    // A clean environment: a DOCKER_CONTEXT or DOCKER_HOST of the caller must not leak in.
    return run(['nsenter', `--net=/run/netns/${host.netns}`, `--uts=${st.utsFile}`, '--', ...argv], {
      ...options,
      replaceEnv: true,
      env: {
        PATH: `${engine.bin}:${SYSTEM_PATH}`,
        HOME: host.dir,
        LANG: 'C.UTF-8',
        DOCKER_HOST: `unix://${host.dockerSocket}`,
        DOCKER_CONFIG: path.join(host.dir, 'cli'),
        ...options.env,
      },
    });
  };

  const teardown = async (): Promise<void> => {
    if (tornDown) return;
    // Graceful first: engines stop their containers and unmount their layers themselves.
    await Promise.allSettled(states.map((s) => stopDockerd(s.host, 30_000)));
    const r = await cleanupPrefix(prefix);
    if (r.code !== 0) throw new Error(`cleanup.sh ${prefix} failed (${r.code}): ${r.stderr}`);
    tornDown = true;
    activeTestbeds.delete(prefix);
  };

  try {
    // Run directories engines create on first start outside their exec-root; recorded when
    // they do not exist yet so the cleanup can remove them (children before parents).
    for (const d of ['/run/containerd/s', '/run/containerd', '/run/docker/plugins', '/run/docker']) {
      if (!(await exists(d))) await record(stateFile, 'dir', d);
    }
    root = await mkdtemp(path.join(os.tmpdir(), `upshift-tb-${prefix}-`));
    await record(stateFile, 'root', root);
    // mkdtemp makes it 0700; hosts are "machines" whose tools (gVisor's gofer, containers
    // with a non-root USER) may need to traverse it.
    await chmod(root, 0o755);
    tracking = await trackingHierarchy();
    await record(stateFile, 'cgroup', cgroupBase);

    slot = await claimSlot(prefix);
    await record(stateFile, 'slot', slot);
    bridgeIp = `10.200.${slot}.1`;
    await record(stateFile, 'bridge', bridge);
    await must(['ip', 'link', 'add', bridge, 'type', 'bridge']);
    await must(['ip', 'addr', 'add', `${bridgeIp}/24`, 'dev', bridge]);
    await must(['ip', 'link', 'set', bridge, 'up']);

    for (let i = 1; i <= opts.hosts; i++) {
      const name = `up-${prefix}-n${i}`;
      const veth = `up-${prefix}-v${i}`;
      const dir = path.join(root, `n${i}`);
      await mkdir(path.join(dir, 'cli'), { recursive: true });
      const utsFile = path.join(stateDir, `n${i}.uts`);
      const cgroup = `${cgroupBase}/n${i}`;

      await record(stateFile, 'netns', name);
      await must(['ip', 'netns', 'add', name]);
      await record(stateFile, 'veth', veth);
      await must(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
      await must(['ip', 'link', 'set', veth, 'master', bridge, 'up']);
      const ip = `10.200.${slot}.${10 + i}`;
      await must(['ip', '-n', name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      await must(['ip', '-n', name, 'link', 'set', 'eth0', 'up']);
      await must(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
      // A persistent UTS namespace (bind-mounted like `ip netns` does for network
      // namespaces) gives the host its own hostname for every dockerd start and every exec.
      await writeFile(utsFile, '');
      await record(stateFile, 'mount', utsFile);
      await must(['unshare', `--uts=${utsFile}`, 'hostname', name]);

      const host: TestHost = {
        name,
        index: i,
        ip,
        netns: name,
        dir,
        dockerSocket: path.join(dir, 'docker.sock'),
        dataRoot: path.join(dir, 'data'),
        logFile: path.join(dir, 'dockerd.log'),
        pid: () => {
          const s = states.find((x) => x.host === host);
          return s?.pid !== undefined && alive(s.pid) ? s.pid : undefined;
        },
        dockerVersion: () => {
          const s = states.find((x) => x.host === host);
          return s?.pid !== undefined && alive(s.pid) ? s.version : undefined;
        },
      };
      states.push({
        host,
        child: undefined,
        pid: undefined,
        version: undefined,
        lastVersion: opts.dockerVersion ?? '26.1.5',
        exitInfo: undefined,
        utsFile,
        cgroup,
      });
    }

    const bed: Testbed = {
      prefix,
      root,
      bridge,
      bridgeIp,
      subnet: `10.200.${slot}.0/24`,
      hosts: states.map((s) => s.host),
      packages,
      startDockerd,
      stopDockerd,
      exec,
      processes,
      teardown,
    };
    const version = opts.dockerVersion;
    if (version) await Promise.all(bed.hosts.map((h) => startDockerd(h, version)));
    return bed;
  } catch (e) {
    await teardown().catch((te: Error) => {
      (e as Error).message += `\n(teardown after the failure also failed: ${te.message})`;
    });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------
// Images without a registry
// ---------------------------------------------------------------------------------------

/** Where the busybox-static package puts its binary. */
const BUSYBOX = '/bin/busybox';

/**
 * Builds a rootfs tar holding busybox-static and one symlink per applet (no registry is
 * reachable here, so images are imported, not pulled). Built once per process.
 */
let busyboxTar: Promise<Buffer> | undefined;
function buildBusyboxTar(): Promise<Buffer> {
  busyboxTar ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'upshift-busybox-'));
    try {
      const rootfs = path.join(dir, 'rootfs');
      for (const sub of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var']) {
        await mkdir(path.join(rootfs, sub), { recursive: true });
      }
      await chmod(path.join(rootfs, 'tmp'), 0o1777);
      await copyFile(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
      await chmod(path.join(rootfs, 'bin', 'busybox'), 0o755);
      const applets = (await must([BUSYBOX, '--list'])).split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a));
      for (const a of applets) {
        if (a !== 'busybox') await symlink('busybox', path.join(rootfs, 'bin', a));
      }
      await writeFile(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
      await writeFile(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
      const tar = path.join(dir, 'rootfs.tar');
      await must(['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', tar, '.']);
      return await readFile(tar);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  busyboxTar.catch(() => {
    busyboxTar = undefined;
  });
  return busyboxTar;
}

/**
 * Imports the busybox rootfs as `local/busybox:1` (CMD `sh`) through the host's Engine API
 * (`POST /images/create?fromSrc=-`, what `docker import` does).
 */
export async function importBusybox(host: Pick<TestHost, 'dockerSocket' | 'name'>, ref = 'local/busybox:1'): Promise<void> {
  const colon = ref.lastIndexOf(':');
  const repo = colon > 0 ? ref.slice(0, colon) : ref;
  const tag = colon > 0 ? ref.slice(colon + 1) : 'latest';
  const tar = await buildBusyboxTar();
  const q = new URLSearchParams({ fromSrc: '-', repo, tag });
  q.append('changes', 'CMD ["sh"]');
  q.append('changes', 'ENV PATH=/bin');
  const r = await engineRequest(host, 'POST', `/images/create?${q.toString()}`, tar, {
    headers: { 'Content-Type': 'application/x-tar' },
    timeoutMs: 120_000,
  });
  // The answer is a stream of JSON progress messages; a failure is one with "error".
  const failed = r.body
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { error?: string })
    .find((m) => m.error);
  if (r.status !== 200 || failed) throw new Error(`${host.name}: import of ${ref} failed: ${failed?.error ?? r.body}`);
}

/** Reads every host's log; useful in test failure messages. */
export async function hostLogs(bed: Testbed): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of bed.hosts) out[h.name] = await readFile(h.logFile, 'utf8').catch(() => '');
  return out;
}

/** Lists the testbeds recorded on this machine (prefix → state file content). */
export async function listTestbeds(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const entries = await readdir(STATE_ROOT).catch(() => [] as string[]);
  for (const e of entries) {
    const s = await readFile(path.join(STATE_ROOT, e, 'state'), 'utf8').catch(() => undefined);
    if (s !== undefined) out[e] = s;
  }
  return out;
}
