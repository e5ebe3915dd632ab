/**
 * Part `ansible`: the same rollout by Upshift and by Ansible `serial`, side by side.
 *
 * Same hosts: 100 of them. Upshift's are 100 real agents (bench/agents.ts); Ansible's are
 * 100 inventory hosts, each its own loopback address (127.0.1.1 … 127.0.1.100) of a
 * private sshd (7 of them: one sshd listens on at most 16 addresses), so each host has its
 * own SSH connection and ControlPersist master, as on a real fleet. Same per-node work:
 * one child process `sleep 2` on the node (the agent's stand-in recipe; Ansible's
 * `command` module). Same batches: the sizes Upshift's planner makes are the playbook's
 * `serial:` list, and `forks` is the largest of them. Ansible gets its best case:
 * pipelining, no fact gathering, a fixed interpreter, and SSH masters opened before the
 * timed runs, as Upshift's agents are joined and polling before its runs.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { batchCap, planBatches } from '../src/domain/batch-planner.js';
import { upgradePolicy } from '../src/domain/defaults.js';
import { freePort } from '../test/support/server.js';
import { nodeName, nodeTimelines, runUpgrade, seconds, waitJoined, withFleet, type FleetSpec } from './agents.js';
import { deferCleanup, descendants, pidsMentioning, terminate } from './cleanup.js';
import { cpuWithReapedChildren, fmt, median, pct, sleep, type Report } from './stats.js';

const HOSTS = 100;
const WORK_SECONDS = 2;
const RUNS = 3;

/** One timed run of either tool: total seconds and the elapsed seconds at the end of each batch. */
interface Run {
  makespan: number;
  batchEnds: number[];
  /** CPU seconds of the control side (server; ansible-playbook, ssh) and of the node side (agents; sshd sessions, modules). */
  cpu: { control: number; nodes: number };
  /** Ansible: seconds from the process start to its first batch (Python start, inventory, playbook). */
  firstBatchAt?: number;
}

/** Runs a program (no shell) and returns its stdout; throws with its output when it fails. */
const exec = (argv: string[], env?: NodeJS.ProcessEnv) =>
  execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });

const onPath = (cmd: string) => (process.env['PATH'] ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));

/** ansible-playbook and sshd, installed from the distribution's archive when missing (root only). */
function ensureTools(): void {
  if (['ansible', 'ansible-playbook', 'ssh', 'ssh-keygen'].every(onPath) && existsSync('/usr/sbin/sshd')) return;
  if (process.getuid?.() !== 0)
    throw new Error(
      'ansible-playbook or /usr/sbin/sshd is missing and the bench is not root: run `apt-get install -y ansible openssh-server` as root, or run the bench as root, or leave this part out (--only …)',
    );
  console.log('  installing ansible and openssh-server with apt-get …');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['apt-get', 'install', '-y', '--no-install-recommends', 'ansible', 'openssh-server'];
  try {
    exec(install, env);
  } catch {
    exec(['apt-get', 'update'], env);
    exec(install, env);
  }
}

/** The batch sizes the planner makes for HOSTS workers at the default cap. */
export function plannedSizes(hosts: number): number[] {
  const nodes = Array.from({ length: hosts }, (_, i) => ({ id: `n${i}`, name: nodeName(i, hosts), role: 'worker' as const }));
  return planBatches(nodes, batchCap(hosts, upgradePolicy.defaults.maxBatchPercent)).map((b) => b.length);
}

// ---- Upshift ---------------------------------------------------------------------------

async function upshiftRun(index: number, sizes: number[]): Promise<Run & { latencyP50: number; latencyP99: number }> {
  const spec: FleetSpec = { name: `side-by-side-${index}`, nodes: HOSTS, perProcess: 50, workSeconds: WORK_SECONDS, spreadMs: 2000 };
  return withFleet(['--agent-heartbeat', '10s'], spec, async (s, fleet) => {
    await waitJoined(s, fleet, HOSTS, 60_000);
    const server0 = cpuWithReapedChildren(s.child.pid as number);
    const agents0 = fleet.usage().cpuSeconds;
    const { view, tasks } = await runUpgrade(s, fleet.clusterId, 300_000);
    const cpu = { control: cpuWithReapedChildren(s.child.pid as number) - server0, nodes: fleet.usage().cpuSeconds - agents0 };
    const made = view.batches.map((b) => b.size);
    if (made.join() !== sizes.join()) throw new Error(`Upshift made batches ${made.join(', ')}, the planner says ${sizes.join(', ')}`);
    const lat = nodeTimelines(view, tasks, fleet).map((t) => t.toRecipe);
    return {
      makespan: seconds(view.createdAt, view.finishedAt),
      batchEnds: view.batches.map((b) => seconds(view.createdAt, b.finishedAt)),
      cpu,
      latencyP50: pct(lat, 50),
      latencyP99: pct(lat, 99),
    };
  });
}

// ---- Ansible ---------------------------------------------------------------------------

const address = (i: number) => `127.0.1.${i + 1}`;

/** OpenSSH's MAX_LISTEN_SOCKS: one sshd listens on at most 16 address:port pairs. */
const ADDRESSES_PER_SSHD = 16;
const sshdCount = Math.ceil(HOSTS / ADDRESSES_PER_SSHD);

interface Sshd {
  dir: string;
  port: number;
  pids: number[];
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** Writes the keys, sshd_config, known_hosts, inventory, playbook and ansible.cfg into `dir`. */
function writeAnsibleFiles(dir: string, port: number, sizes: number[]): void {
  exec(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  exec(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id_ed25519')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id_ed25519.pub')), { mode: 0o600 });
  const hostKey = readFileSync(join(dir, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const hosts = Array.from({ length: HOSTS }, (_, i) => i);
  for (let n = 0; n < sshdCount; n++) {
    const mine = hosts.slice(n * ADDRESSES_PER_SSHD, (n + 1) * ADDRESSES_PER_SSHD);
    writeFileSync(
      join(dir, `sshd_config.${n}`),
      [
        `Port ${port}`,
        ...mine.map((i) => `ListenAddress ${address(i)}`),
        `HostKey ${join(dir, 'host_key')}`,
        `PidFile ${join(dir, `sshd.${n}.pid`)}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        // The warm-up opens many connections at once; each pipelined task opens a session.
        'MaxStartups 200',
        'MaxSessions 100',
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
  }
  writeFileSync(join(dir, 'known_hosts'), hosts.map((i) => `[${address(i)}]:${port} ${hostKey}\n`).join(''));
  writeFileSync(
    join(dir, 'inventory.ini'),
    [
      '[fleet]',
      ...hosts.map((i) => `${nodeName(i, HOSTS)} ansible_host=${address(i)}`),
      '',
      '[fleet:vars]',
      'ansible_user=root',
      `ansible_port=${port}`,
      `ansible_ssh_private_key_file=${join(dir, 'id_ed25519')}`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'upgrade.yml'),
    [
      '- name: upgrade docker (bench stand-in)',
      '  hosts: fleet',
      '  gather_facts: false',
      `  serial: [${sizes.join(', ')}]`,
      '  tasks:',
      `    - name: sleep ${WORK_SECONDS} stands in for the upgrade`,
      `      ansible.builtin.command: sleep ${WORK_SECONDS}`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'ansible.cfg'),
    [
      '[defaults]',
      `inventory = ${join(dir, 'inventory.ini')}`,
      `forks = ${Math.max(...sizes)}`,
      'gathering = explicit',
      'host_key_checking = True',
      'interpreter_python = /usr/bin/python3',
      `local_tmp = ${join(dir, 'local-tmp')}`,
      `remote_tmp = ${join(dir, 'remote-tmp')}`,
      'retry_files_enabled = False',
      'nocolor = True',
      'deprecation_warnings = False',
      '',
      '[ssh_connection]',
      'pipelining = True',
      // Ansible's default ssh_args without -C: compressing loopback traffic only costs CPU.
      `ssh_args = -o ControlMaster=auto -o ControlPersist=1800s -o UserKnownHostsFile=${join(dir, 'known_hosts')} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
      `control_path_dir = ${join(dir, 'cp')}`,
      '',
    ].join('\n'),
  );
}

async function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** Starts `sshd_config.N` and waits until it accepts connections on its first and last address. */
async function startOneSshd(dir: string, n: number, port: number, pids: number[]): Promise<void> {
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, `sshd_config.${n}`)], { stdio: ['ignore', 'ignore', 'pipe'] });
  pids.push(child.pid as number);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const first = address(n * ADDRESSES_PER_SSHD);
  const last = address(Math.min(HOSTS, (n + 1) * ADDRESSES_PER_SSHD) - 1);
  const deadline = Date.now() + 10_000;
  while (!(await reachable(first, port)) || !(await reachable(last, port))) {
    if (child.exitCode !== null) throw new Error(`sshd ${n} exited with ${child.exitCode}: ${err.trim()}`);
    if (Date.now() > deadline) throw new Error(`sshd ${n} did not listen on ${first}:${port} in 10 s: ${err.trim()}`);
    await sleep(50);
  }
}

/**
 * Starts the private sshds (foreground, by absolute path as sshd requires): 16 addresses
 * each, since that is all one sshd can listen on. Their stop closes the SSH masters first
 * (`ssh -O exit`), then ends each sshd and its session processes by pid, then anything
 * still running from the temp dir, then removes the dir.
 */
async function startSshd(sizes: number[]): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'upshift-bench-ansible-'));
  const pids: number[] = [];
  const stop = deferCleanup(async () => {
    const cp = join(dir, 'cp');
    for (const socket of existsSync(cp) ? readdirSync(cp) : []) {
      try {
        exec(['ssh', '-o', `ControlPath=${join(cp, socket)}`, '-O', 'exit', 'bench-master']);
      } catch {
        // that master is gone already
      }
    }
    terminate(pids.flatMap((pid) => [...descendants(pid), pid]));
    for (let i = 0; i < 50 && pids.some((pid) => existsSync(`/proc/${pid}`)); i++) await sleep(100);
    terminate(pidsMentioning(dir));
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    // sshd refuses to start without its privilege separation directory. It is left in place
    // afterwards: it is the system's (other sshds on this machine use it), not a temp dir.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const port = await freePort();
    writeAnsibleFiles(dir, port, sizes);
    for (let n = 0; n < sshdCount; n++) await startOneSshd(dir, n, port, pids);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ANSIBLE_CONFIG: join(dir, 'ansible.cfg'),
      ANSIBLE_HOME: join(dir, 'ansible-home'),
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      PYTHONUNBUFFERED: '1',
    };
    return { dir, port, pids, env, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Opens every host's SSH master (ControlPersist), outside the timed runs. */
function warmUp(sshd: Sshd): number {
  const t0 = Date.now();
  try {
    exec(['ansible', 'fleet', '-m', 'ansible.builtin.raw', '-a', 'true', '--forks', '20'], sshd.env);
  } catch (e) {
    throw new Error(
      `ansible could not reach the hosts over ssh: ${(e as { stdout?: string }).stdout?.slice(-2000) ?? (e as Error).message}`,
    );
  }
  return (Date.now() - t0) / 1000;
}

/** CPU seconds of this process's ended children: ansible-playbook with its forks and ssh clients, once it ended. */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** The ssh ControlPersist masters: daemons, so nobody of the bench's tree reaps them. */
function mastersCpu(sshd: Sshd): number {
  return pidsMentioning(join(sshd.dir, 'cp')).reduce((a, pid) => a + cpuWithReapedChildren(pid), 0);
}

/** The "hosts": each sshd, its per-connection processes and what they ran (python modules, sleep). */
function nodeSideCpu(sshd: Sshd): number {
  return sshd.pids.flatMap((pid) => [pid, ...descendants(pid)]).reduce((a, pid) => a + cpuWithReapedChildren(pid), 0);
}

/** One timed ansible-playbook run; each output line is stamped when it arrives. */
async function ansibleRun(sshd: Sshd, sizes: number[]): Promise<Run> {
  const control0 = childrenCpu() + mastersCpu(sshd);
  const nodes0 = nodeSideCpu(sshd);
  const t0 = performance.now();
  const child = spawn('ansible-playbook', [join(sshd.dir, 'upgrade.yml')], { env: sshd.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = setTimeout(() => child.kill('SIGKILL'), 300_000);
  const lines: { at: number; text: string }[] = [];
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) =>
    lines.push({ at: (performance.now() - t0) / 1000, text }),
  );
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(kill);
  const makespan = (performance.now() - t0) / 1000;
  const cpu = { control: childrenCpu() + mastersCpu(sshd) - control0, nodes: nodeSideCpu(sshd) - nodes0 };
  const tail = () =>
    lines
      .slice(-15)
      .map((l) => l.text)
      .join('\n');
  if (code !== 0) throw new Error(`ansible-playbook exited with ${code}:\n${tail()}\n${err.trim()}`);
  const endOf = new Map<string, number>();
  for (const l of lines) {
    const m = /^changed: \[([^\]]+)\]/.exec(l.text);
    if (m?.[1]) endOf.set(m[1], l.at);
  }
  const plays = lines.filter((l) => l.text.startsWith('PLAY ['));
  if (endOf.size !== HOSTS || plays.length !== sizes.length)
    throw new Error(`ansible-playbook changed ${endOf.size} of ${HOSTS} hosts in ${plays.length} batches:\n${tail()}`);
  const batchEnds: number[] = [];
  let first = 0;
  for (const size of sizes) {
    const members = Array.from({ length: size }, (_, j) => nodeName(first + j, HOSTS));
    batchEnds.push(Math.max(...members.map((m) => endOf.get(m) ?? NaN)));
    first += size;
  }
  return { makespan, batchEnds, cpu, firstBatchAt: plays[0]?.at ?? NaN };
}

/** Every host has its own ControlPersist master, and the timed runs opened no new one (they reused them). */
function checkMasters(sshd: Sshd, when: string): void {
  const masters = readdirSync(join(sshd.dir, 'cp')).length;
  if (masters !== HOSTS) throw new Error(`${masters} SSH control masters for ${HOSTS} hosts ${when}; ControlPersist is not doing its job`);
}

const cpuText = (r: Run) => `${fmt(r.cpu.control, 1)} s control + ${fmt(r.cpu.nodes, 1)} s nodes`;

// ---- the part --------------------------------------------------------------------------

const medianOf = (runs: Run[], pick: (r: Run) => number) => median(runs.map(pick));

/** Per batch: the median over the runs of the elapsed seconds at its end. */
const medianEnds = (runs: Run[], batches: number) =>
  Array.from({ length: batches }, (_, k) => medianOf(runs, (r) => r.batchEnds[k] ?? NaN));

/** The chart (Mermaid, rendered by GitHub) and the same numbers as a table. */
function sideBySideMarkdown(sizes: number[], upshift: number[], ansible: number[]): string[] {
  const ideal = sizes.map((_, k) => (k + 1) * WORK_SECONDS);
  const top = Math.ceil(Math.max(...ansible, ...upshift) / 10) * 10;
  const series = (xs: number[]) => `[${xs.map((x) => fmt(x, 1)).join(', ')}]`;
  return [
    '```mermaid',
    '---',
    'config:',
    '  themeVariables:',
    '    xyChart:',
    '      plotColorPalette: "#2563eb, #dc2626, #9ca3af"',
    '---',
    'xychart-beta',
    `  title "${HOSTS} hosts, sleep ${WORK_SECONDS} per node: seconds at each batch's end (blue Upshift, red Ansible, grey ideal)"`,
    `  x-axis "batch (size)" [${sizes.map((n, k) => `"${k + 1} (${n})"`).join(', ')}]`,
    `  y-axis "seconds since start" 0 --> ${top}`,
    `  line ${series(upshift)}`,
    `  line ${series(ansible)}`,
    `  line ${series(ideal)}`,
    '```',
    '',
    `| batch | size | ideal (batch × ${WORK_SECONDS} s) | Upshift | Ansible \`serial\` |`,
    '|------:|-----:|------:|--------:|--------:|',
    ...sizes.map((n, k) => `| ${k + 1} | ${n} | ${ideal[k]} s | ${fmt(upshift[k] ?? NaN, 1)} s | ${fmt(ansible[k] ?? NaN, 1)} s |`),
  ];
}

/** How the two sides were run, for BENCHMARKS.md. */
export const SIDE_BY_SIDE_METHOD = `Same hosts, work and batches for both: ${HOSTS} hosts; on each node one child process \`sleep ${WORK_SECONDS}\` (Upshift: the agent's stand-in for the docker-engine recipe, run through its journal, with log lines and a result report; Ansible: \`ansible.builtin.command: sleep ${WORK_SECONDS}\`); the playbook's \`serial:\` list is the batch sizes Upshift's planner made, \`forks\` the largest. Upshift: ${HOSTS} real agents (2 processes × 50) joined and long-polling a server on SQLite; its time is the upgrade's createdAt → finishedAt. Ansible: every inventory host is its own loopback address (127.0.1.1 … 127.0.1.${HOSTS}) of a private sshd on one port (${sshdCount} sshd processes, since one listens on at most 16 addresses), so each host has its own SSH connection and ControlPersist master, pipelining on, gather_facts off, a fixed interpreter, and the ControlPersist masters opened before the timed runs (connections are not part of either tool's time); its time is the wall time of \`ansible-playbook\`, Python's start included. Everything ran on the same machine, control side and nodes sharing its cores. Median of ${RUNS} runs each, alternating the tools; the chart and table show per-batch medians.`;

/** Part `ansible`: reports the figures and returns the chart and table for BENCHMARKS.md. */
export async function benchSideBySide(report: Report): Promise<string[]> {
  ensureTools();
  const version = exec(['ansible-playbook', '--version']).split('\n')[0]?.trim() ?? 'ansible-playbook';
  const sizes = plannedSizes(HOSTS);
  const sshd = await startSshd(sizes);
  const upshift: (Run & { latencyP50: number; latencyP99: number })[] = [];
  const ansible: Run[] = [];
  try {
    const warm = warmUp(sshd);
    checkMasters(sshd, 'after the warm-up');
    console.log(
      `  ${version}; ${sshdCount} sshd processes (pids ${sshd.pids.join(', ')}; at most 16 listen addresses each) on ${address(0)}…${address(HOSTS - 1)}:${sshd.port}; SSH masters opened in ${fmt(warm, 1)} s`,
    );
    for (let i = 0; i < RUNS; i++) {
      const u = await upshiftRun(i, sizes);
      upshift.push(u);
      const a = await ansibleRun(sshd, sizes);
      ansible.push(a);
      console.log(
        `  run ${i + 1}: Upshift ${fmt(u.makespan, 1)} s (batch start → recipe start p50 ${fmt(u.latencyP50, 0)} ms, p99 ${fmt(u.latencyP99, 0)} ms; CPU ${cpuText(u)}), Ansible ${fmt(a.makespan, 1)} s (first batch at ${fmt(a.firstBatchAt ?? NaN, 1)} s; CPU ${cpuText(a)})`,
      );
    }
    checkMasters(sshd, 'after the timed runs');
  } finally {
    await sshd.stop();
  }
  const u = medianOf(upshift, (r) => r.makespan);
  const a = medianOf(ansible, (r) => r.makespan);
  const runs = (rs: Run[]) => rs.map((r) => fmt(r.makespan, 1)).join(', ');
  report(
    `side by side, ${HOSTS} hosts, \`sleep ${WORK_SECONDS}\` per node, batches ${sizes.join(', ')} (ideal ${sizes.length} × ${WORK_SECONDS} s = ${sizes.length * WORK_SECONDS} s): Upshift median ${fmt(u, 1)} s (runs ${runs(upshift)}), Ansible \`serial\` median ${fmt(a, 1)} s (runs ${runs(ansible)}); Ansible / Upshift = ${fmt(a / u, 2)}`,
  );
  report(
    `  what each includes: Upshift = upgrade createdAt → finishedAt with ${HOSTS} agents (2 processes × 50) already joined; Ansible (${version}) = ansible-playbook wall time, of which ${fmt(
      medianOf(ansible, (r) => r.firstBatchAt ?? NaN),
      1,
    )} s (median) before its first batch, SSH masters opened beforehand (pipelining, forks ${Math.max(...sizes)}, gather_facts false); medians of ${RUNS} runs each`,
  );
  const cpu = (rs: Run[], pick: (r: Run) => number) => fmt(medianOf(rs, pick), 1);
  // The 1-host batch is the one whose node-side work does not compete for the cores.
  const start = medianOf(ansible, (r) => r.firstBatchAt ?? NaN);
  const oneHost = medianOf(ansible, (r) => (r.batchEnds[0] ?? NaN) - (r.firstBatchAt ?? NaN));
  const estimate = start + sizes.length * oneHost;
  report(
    `  CPU seconds per run (median), all on this machine's ${cpus().length} cores: Upshift server ${cpu(upshift, (r) => r.cpu.control)} + agents ${cpu(upshift, (r) => r.cpu.nodes)}; Ansible control side (ansible-playbook, its forks, ssh) ${cpu(ansible, (r) => r.cpu.control)} + node side (sshd sessions, Python modules, sleep) ${cpu(ansible, (r) => r.cpu.nodes)}`,
  );
  report(
    `  caveat: Ansible's node side (${fmt(medianOf(ansible, (r) => r.cpu.nodes) / HOSTS, 2)} CPU s a host) runs on each host's own CPU in a real fleet, here on the same ${cpus().length} cores as everything else; Ansible's 1-host batch took ${fmt(oneHost, 1)} s, and if every batch took that long it would finish in about ${fmt(estimate, 1)} s (Ansible / Upshift ≈ ${fmt(estimate / u, 2)}): an estimate, not a measurement, and a low one, since the control side's work per batch grows with its size`,
  );
  return sideBySideMarkdown(sizes, medianEnds(upshift, sizes.length), medianEnds(ansible, sizes.length));
}
