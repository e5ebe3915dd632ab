import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { chmod, copyFile, link, mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AgentTask, TaskResultRequest } from '../../domain/agent-protocol.js';
import { RecipeName } from '../../domain/agent-protocol.js';
import { sameRelease } from '../../domain/versions.js';
import type { DownloadResult } from '../client.js';
import { outputTail, runCommand, startDetached } from '../../platform/run-command.js';
import type { JournalEntry } from '../journal.js';
import { taskKeyFileName, validateUpgradeParams } from '../params.js';
import type { AgentProgram } from '../program.js';
import type { Recipe, RecipeContext, RecipeOutcome } from './types.js';

/** What the self-upgrade needs from the running agent process. */
export interface SelfUpgradeHost {
  /** The standalone agent this process runs from; undefined when it runs inside the `upshift` CLI. */
  readonly program: AgentProgram | undefined;
  /** Fetches the server's agent executable (for this CPU) into `dest`. */
  downloadExecutable(dest: string, signal: AbortSignal): Promise<DownloadResult>;
  /** The program and arguments that start this agent again (from `program`). */
  successorArgv(program: AgentProgram): string[];
  /** Pauses (true) or resumes (false) this process's heartbeats, so that they do not report the old version beside the successor's. */
  quiesce(paused: boolean): void;
  /** Stops taking tasks; the process ends once the successor has taken over. */
  handOver(): void;
}

/** The environment variable that tells a new agent process it takes over from an old one: `<taskKey>:<pid>`. */
export const HANDOVER_ENV = 'UPSHIFT_AGENT_HANDOVER';

/**
 * The successor's check-in, or undefined while there is none yet. A successor of an older
 * release writes the file in place, so it can be seen empty or half written: that is
 * "not yet" too, and the next look sees it whole.
 */
async function readReady(file: string): Promise<{ pid?: number; version?: string } | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as { pid?: number; version?: string };
  } catch {
    return undefined;
  }
}

export function handoverReadyFile(dataDir: string, taskKey: string): string {
  return path.join(dataDir, 'handover', `${taskKeyFileName(taskKey)}.ready`);
}

/** The executable is ~120 MB: hashed as a stream, not read into memory. */
async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Backups of the executable are named `upshift-agent-<version>`; only the newest one is kept (see `keepBackup`). */
const BACKUP_PREFIX = 'upshift-agent-';

/**
 * The old agent into `backup`: a hard link when the data dir shares the file system with the
 * agent (no copy of ~120 MB; the rename that follows leaves the old bytes to the link), else
 * a copy (a reflink where the file system can).
 */
async function keepBackup(file: string, backup: string): Promise<void> {
  await rm(backup, { force: true });
  try {
    await link(file, backup);
  } catch {
    await copyFile(file, backup, constants.COPYFILE_FICLONE);
  }
  // The previous upgrades' backups: the one just made is what a rollback needs.
  for (const name of await readdir(path.dirname(backup))) {
    if (name.startsWith(BACKUP_PREFIX) && name !== path.basename(backup)) await rm(path.join(path.dirname(backup), name), { force: true });
  }
}

/** Why an agent that runs as a script does not replace itself, and what the operator does instead. */
export const SCRIPT_AGENT_REFUSAL =
  'this agent runs as a JavaScript file under the host’s Node.js, and the server’s agent is the single executable upshift-agent, which a self-upgrade cannot put in place of a script that the service starts with node: reinstall this node with the join command (upshift cluster join-token CLUSTER; the install script keeps the node’s name, data dir and credential, and removes the old agent.js)';

/**
 * `agent-self-upgrade`: the agent replaces its own executable and hands over to the new one.
 *
 * The handover, step by step (old process A, new process B):
 * 1. A downloads `/api/v1/agent/bundle?form=executable` beside its file and checks the
 *    sha256 against the task's parameter and the `x-upshift-sha256` header, then runs
 *    `NEW --version`, which must print the target version (a file that cannot even start
 *    on this host is never swapped in).
 * 2. A keeps its own file as `<dataDir>/agent-backups/upshift-agent-<version>` (the only
 *    backup kept), journals `swapped` with the backup's path, and renames the new file
 *    over its own: one atomic rename(2).
 * 3. A spawns B from that file with the same arguments (detached, same stdout/stderr) and
 *    `UPSHIFT_AGENT_HANDOVER=<taskKey>:<A's pid>`. A stops taking tasks.
 * 4. B loads the credential and heartbeats with its version: that heartbeat is the
 *    check-in the server sees. B then writes `<dataDir>/handover/<task>.ready`.
 * 5. A sees the ready file and exits. B waits for A to be gone, takes the instance lock,
 *    reads the journal (A never writes it after step 2), and, when the task is delivered
 *    again, resumes it: it runs the target version, so it reports success.
 * 6. If B exits, or no ready file appears before `timeouts.selfUpgradeSeconds`, A kills B
 *    (by the PID it spawned), renames the backup back over the file, reports the task
 *    failed with that cause and goes on working as the old version.
 *
 * Under systemd (`KillMode=control-group`, `Restart=always`), A's exit also stops B; the
 * unit restarts the file, which is now the checked-in new version, and it reports the
 * task. A restart at any point is resumed from the journal: the version that runs decides
 * success, and an old version restores the backup if the file was already swapped.
 *
 * An agent that runs as a script (`node agent.js`) refuses with SCRIPT_AGENT_REFUSAL: the
 * server hands out the executable only, and the service that starts the script with node
 * would not start an executable put in its place.
 */
export class SelfUpgradeRecipe implements Recipe {
  constructor(private readonly host: SelfUpgradeHost) {}

  async run(task: AgentTask, ctx: RecipeContext): Promise<RecipeOutcome> {
    const params = validateUpgradeParams(RecipeName.agentSelfUpgrade, task.params);
    if (sameRelease(ctx.agentVersion, params.toVersion)) {
      ctx.log(`this agent runs ${ctx.agentVersion} already`);
      return { result: 'succeeded', versions: { agent: ctx.agentVersion } };
    }
    const bundle = params.artifacts.find((a) => a.method === 'agent-bundle');
    const program = this.host.program;
    if (!program) {
      return {
        result: 'failed',
        step: 'preflight',
        error:
          'this agent runs inside the upshift CLI, which it cannot replace: install the standalone agent (curl SERVER/install/agent.sh | sh) to let it upgrade itself',
      };
    }
    if (program.form !== 'executable') return { result: 'failed', step: 'preflight', error: SCRIPT_AGENT_REFUSAL };
    const agentFile = program.file;
    if (!bundle?.sha256) return { result: 'failed', step: 'preflight', error: 'the task carries no agent-bundle artifact with a sha256' };

    // Beside the agent: the rename below must not cross file systems.
    const staged = `${agentFile}.new-${process.pid}`;
    await ctx.journal.checkpoint('downloading');
    try {
      ctx.log(`downloading the agent executable to ${staged}`);
      const d = await this.host.downloadExecutable(staged, ctx.signal);
      if (d.sha256 !== bundle.sha256 || (d.announcedSha256 !== undefined && d.announcedSha256 !== d.sha256)) {
        await rm(staged, { force: true });
        return {
          result: 'failed',
          step: 'preflight',
          error: `checksum mismatch for the agent executable: the task expects sha256 ${bundle.sha256}, the server announced ${d.announcedSha256 ?? '(nothing)'}, the file hashes to ${d.sha256}`,
        };
      }
      ctx.log(`agent executable: ${d.size} bytes, sha256 ${d.sha256} verified`);
      await chmod(staged, 0o755);
      const probe = await runCommand([staged, '--version'], { timeoutMs: 30_000 });
      const printed = probe.stdout.trim().split('\n').pop() ?? '';
      if (probe.code !== 0 || !sameRelease(printed, params.toVersion)) {
        await rm(staged, { force: true });
        return {
          result: 'failed',
          step: 'preflight',
          error: `the new agent executable does not report ${params.toVersion}: ${outputTail(probe)}`,
        };
      }
    } catch (e) {
      await rm(staged, { force: true });
      return { result: 'failed', step: 'preflight', error: `the agent executable could not be fetched: ${(e as Error).message}` };
    }

    const backupDir = path.join(ctx.config.dataDir, 'agent-backups');
    await mkdir(backupDir, { recursive: true, mode: 0o700 });
    const backup = path.join(backupDir, `${BACKUP_PREFIX}${ctx.agentVersion}`);
    await keepBackup(agentFile, backup);
    const oldSha = await sha256Of(backup);
    await ctx.journal.checkpoint('swapped', { agentFile, backup, oldSha, fromVersion: ctx.agentVersion, toVersion: params.toVersion });
    await rename(staged, agentFile);
    ctx.log(`${agentFile} is now ${params.toVersion} (the ${ctx.agentVersion} file is kept as ${backup}); starting it`);

    const ready = handoverReadyFile(ctx.config.dataDir, task.taskKey);
    await mkdir(path.dirname(ready), { recursive: true, mode: 0o700 });
    await rm(ready, { force: true });
    this.host.quiesce(true);
    const child = startDetached(this.host.successorArgv(program), { env: { [HANDOVER_ENV]: `${task.taskKey}:${process.pid}` } });
    const deadline = Date.now() + ctx.config.timeouts.selfUpgradeSeconds * 1000;
    while (child.exitReason() === undefined && Date.now() < deadline) {
      const info = await readReady(ready);
      if (info && info.pid === child.pid && typeof info.version === 'string' && sameRelease(info.version, params.toVersion)) {
        ctx.log(`the new agent ${info.version} (pid ${info.pid}) checked in; handing over`);
        this.host.handOver();
        return { handedOver: true };
      }
      await sleep(200);
    }
    const exited = child.exitReason();
    const cause =
      exited !== undefined
        ? `the new agent ${params.toVersion} exited (${exited}) before it checked in`
        : `the new agent ${params.toVersion} did not check in within ${ctx.config.timeouts.selfUpgradeSeconds} s`;
    if (exited === undefined && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // it exited meanwhile
      }
    }
    await this.restore(agentFile, backup);
    this.host.quiesce(false);
    ctx.log(`${cause}; restored ${ctx.agentVersion} in ${agentFile}`);
    return {
      result: 'failed',
      step: 'verify',
      error: `${cause}; the agent ${ctx.agentVersion} was restored and keeps running`,
      rolledBack: true,
      versions: { agent: ctx.agentVersion },
    };
  }

  private async restore(agentFile: string, backup: string): Promise<void> {
    const tmp = `${agentFile}.restore-${process.pid}`;
    await rm(tmp, { force: true });
    try {
      await link(backup, tmp);
    } catch {
      await copyFile(backup, tmp, constants.COPYFILE_FICLONE);
    }
    await chmod(tmp, 0o755);
    await rename(tmp, agentFile);
  }

  async resume(task: AgentTask, entry: JournalEntry, ctx: RecipeContext): Promise<TaskResultRequest> {
    const params = validateUpgradeParams(RecipeName.agentSelfUpgrade, task.params);
    await rm(handoverReadyFile(ctx.config.dataDir, task.taskKey), { force: true });
    if (sameRelease(ctx.agentVersion, params.toVersion)) {
      ctx.log(`the agent ${ctx.agentVersion} took over and checked in`);
      return { result: 'succeeded', versions: { agent: ctx.agentVersion } };
    }
    const { agentFile, backup, oldSha } = entry.data as { agentFile?: string; backup?: string; oldSha?: string };
    let restored = '';
    if (entry.step === 'swapped' && agentFile && backup && oldSha && (await sha256Of(agentFile).catch(() => '')) !== oldSha) {
      await this.restore(agentFile, backup);
      restored = `; ${agentFile} was restored to ${ctx.agentVersion}`;
    }
    return {
      result: 'failed',
      step: entry.step === 'swapped' ? 'verify' : 'preflight',
      error: `the agent restarted during its self-upgrade (at ${entry.step ?? 'the start'}) and runs ${ctx.agentVersion}, not ${params.toVersion}${restored}`,
      rolledBack: entry.step === 'swapped',
      versions: { agent: ctx.agentVersion },
    };
  }
}
