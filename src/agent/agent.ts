import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AgentTask, JoinResponse, RecipeName, TaskResultRequest } from '../domain/agent-protocol.js';
import { AGENT_PROTOCOL_VERSION } from '../domain/agent-protocol.js';
import { MirrorArtifactSource } from './artifacts.js';
import type { AgentConfig } from './config.js';
import { ServerClient, ServerError, backoffMs, delay } from './client.js';
import { FactCollector } from './facts.js';
import type { FactSource } from './facts.js';
import type { JournalEntry } from './journal.js';
import { Journal, dispositionOf } from './journal.js';
import type { AgentLogger } from './log.js';
import { TaskLogStream } from './task-log.js';
import { TaskParamsError, isValidTaskKey, validateTaskEnvelope } from './params.js';
import { isHandedOver, recipeBook } from './recipes/index.js';
import type { Recipe, RecipeOutcome } from './recipes/types.js';
import { HANDOVER_ENV, handoverReadyFile } from './recipes/self-upgrade.js';
import type { SelfUpgradeHost } from './recipes/self-upgrade.js';

/** A problem waiting will not cure (a rejected join token, another agent on the data dir). */
export class AgentFatalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentFatalError';
  }
}

/** What is stored in `<dataDir>/credential.json` (mode 0600). The credential is never logged. */
interface StoredCredential {
  server: string;
  nodeId: string;
  clusterId: string;
  clusterName: string;
  credential: string;
}

export interface AgentOptions {
  config: AgentConfig;
  version: string;
  logger: AgentLogger;
  /** The standalone agent file this process runs from (self-upgrade replaces it); undefined inside the CLI. */
  agentFile: string | undefined;
  /** Seconds a task long poll waits on the server. */
  pollSeconds?: number;
  /**
   * Recipes that replace shipped ones of the same name. Only for benchmarks and tests that
   * run many agents on one machine: a stand-in must not touch the host's runtime.
   */
  recipes?: Partial<Record<RecipeName, Recipe>>;
  /** Where join and heartbeat facts come from; by default the host is probed (FactCollector). */
  facts?: FactSource;
}

/** `<taskKey>:<pid>` from UPSHIFT_AGENT_HANDOVER, when this process takes over from an old agent. */
export function parseHandover(value: string | undefined): { taskKey: string; fromPid: number } | undefined {
  if (!value) return undefined;
  const i = value.lastIndexOf(':');
  const taskKey = value.slice(0, i);
  const fromPid = Number(value.slice(i + 1));
  if (i <= 0 || !isValidTaskKey(taskKey) || !Number.isInteger(fromPid) || fromPid <= 1) return undefined;
  return { taskKey, fromPid };
}

function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}

function writePrivate(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/**
 * The node agent. Lifecycle:
 *
 *   start      take the data dir's instance lock (`agent.pid`), load the stored credential
 *              or exchange the join token for one (retrying while the server is away or the
 *              cluster's membership is locked by an upgrade), heartbeat once
 *   work       heartbeat every `heartbeatSeconds`; long-poll tasks; run each through the
 *              journal (run, resume or only report) and report its result
 *   stop       SIGTERM: finish the running task, report it, release the lock, exit
 *   hand over  self-upgrade: a new process from the new file took over; exit without
 *              touching the journal again (see recipes/self-upgrade.ts)
 */
export class Agent {
  private readonly config: AgentConfig;
  private readonly log: AgentLogger;
  private readonly facts: FactSource;
  private client: ServerClient | undefined;
  private journal: Journal | undefined;
  private heartbeatSeconds = 10;
  private heartbeatsPaused = false;
  private handedOver = false;
  private stopping = false;
  private readonly wake = new AbortController();
  private readonly lockFile: string;
  private readonly credentialFile: string;
  private holdsLock = false;

  constructor(private readonly options: AgentOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.facts = options.facts ?? new FactCollector(this.config, options.version);
    this.lockFile = path.join(this.config.dataDir, 'agent.pid');
    this.credentialFile = path.join(this.config.dataDir, 'credential.json');
  }

  /** Asks the agent to stop after the task it is running, if any. */
  stop(): void {
    this.stopping = true;
    this.wake.abort();
  }

  /** Runs until `stop()` or a handover; resolves with which of the two ended it. */
  async run(): Promise<'stopped' | 'handed-over'> {
    await mkdir(this.config.dataDir, { recursive: true, mode: 0o700 });
    const handover = parseHandover(process.env[HANDOVER_ENV]);
    delete process.env[HANDOVER_ENV];
    if (!handover) this.acquireLock(undefined);
    try {
      const client = await this.connect();
      await this.heartbeatOnce(client, true);
      if (handover) await this.takeOver(handover);
      this.journal = new Journal(this.config.dataDir);
      this.journal.prune();
      for (const e of this.journal.unreported()) await this.report(client, e.taskKey, e.result as TaskResultRequest);
      const beating = this.heartbeatLoop(client);
      await this.pollLoop(client);
      this.stopping = true;
      await beating;
      return this.handedOver ? 'handed-over' : 'stopped';
    } finally {
      this.releaseLock();
    }
  }

  // ---- instance lock -----------------------------------------------------------------

  private acquireLock(waitFor: number | undefined): void {
    const text = (() => {
      try {
        return readFileSync(this.lockFile, 'utf8');
      } catch {
        return undefined;
      }
    })();
    if (text !== undefined) {
      const held = JSON.parse(text) as { pid?: number; start?: string };
      if (typeof held.pid === 'number' && held.pid !== process.pid && held.pid !== waitFor) {
        const start = procStartTime(held.pid);
        if (start !== undefined && start === held.start) {
          throw new AgentFatalError(`another agent (pid ${held.pid}) runs with the data dir ${this.config.dataDir}; stop it first`);
        }
      }
    }
    writePrivate(this.lockFile, JSON.stringify({ pid: process.pid, start: procStartTime(process.pid) ?? '' }));
    this.holdsLock = true;
  }

  private releaseLock(): void {
    if (!this.holdsLock) return;
    try {
      const held = JSON.parse(readFileSync(this.lockFile, 'utf8')) as { pid?: number };
      if (held.pid === process.pid) rmSync(this.lockFile, { force: true });
    } catch {
      // gone already
    }
    this.holdsLock = false;
  }

  /** The successor's side of a self-upgrade handover (see recipes/self-upgrade.ts). */
  private async takeOver(h: { taskKey: string; fromPid: number }): Promise<void> {
    const ready = handoverReadyFile(this.config.dataDir, h.taskKey);
    await mkdir(path.dirname(ready), { recursive: true, mode: 0o700 });
    await writeFile(ready, JSON.stringify({ pid: process.pid, version: this.options.version, at: new Date().toISOString() }), {
      mode: 0o600,
    });
    this.log.info(`checked in as ${this.options.version}; waiting for the previous agent (pid ${h.fromPid}) to exit`);
    const start = procStartTime(h.fromPid);
    const deadline = Date.now() + 60_000;
    while (start !== undefined && procStartTime(h.fromPid) === start && Date.now() < deadline) await delay(100);
    if (start !== undefined && procStartTime(h.fromPid) === start) {
      this.log.warn(`the previous agent (pid ${h.fromPid}) did not exit within 60 s; stopping it`);
      try {
        process.kill(h.fromPid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    this.acquireLock(h.fromPid);
    this.log.info('took over from the previous agent');
  }

  // ---- join and credential -----------------------------------------------------------

  private loadCredential(): StoredCredential | undefined {
    try {
      const c = JSON.parse(readFileSync(this.credentialFile, 'utf8')) as StoredCredential;
      if (typeof c.credential === 'string' && typeof c.server === 'string') return c;
    } catch {
      // none yet
    }
    return undefined;
  }

  private async connect(): Promise<ServerClient> {
    const stored = this.loadCredential();
    const server = this.config.server ?? stored?.server;
    if (!server) throw new AgentFatalError('no server: pass --server URL (or set server: in the config file)');
    const client = new ServerClient(server);
    this.client = client;
    if (stored && stored.server === server) {
      client.setCredential(stored.credential);
      this.log.info(`node ${stored.nodeId} of cluster ${stored.clusterName}; server ${server}`);
      return client;
    }
    await this.join(client, server);
    return client;
  }

  private async join(client: ServerClient, server: string): Promise<void> {
    const joinToken = this.config.joinToken;
    if (!joinToken)
      throw new AgentFatalError(
        'this agent has no credential for this server yet: pass --join-token (from `upshift cluster create NAME --kind hosts`)',
      );
    const name = this.config.name ?? os.hostname();
    for (let attempt = 0; ; attempt++) {
      try {
        const facts = await this.facts.collect();
        const r: JoinResponse = await client.join({ joinToken, name, facts, protocol: AGENT_PROTOCOL_VERSION });
        writePrivate(
          this.credentialFile,
          JSON.stringify({
            server,
            nodeId: r.nodeId,
            clusterId: r.clusterId,
            clusterName: r.clusterName,
            credential: r.credential,
          } satisfies StoredCredential),
        );
        client.setCredential(r.credential);
        this.heartbeatSeconds = r.heartbeatSeconds;
        this.log.info(`joined cluster ${r.clusterName} as node ${name} (${r.nodeId}); credential stored in ${this.credentialFile}`);
        return;
      } catch (e) {
        if (e instanceof ServerError && !e.retryable) {
          throw new AgentFatalError(`the server refused to let ${name} join: ${e.message}`);
        }
        if (this.stopping) throw e;
        const wait = backoffMs(attempt, 60_000);
        const why =
          e instanceof ServerError && e.code === 'UPGRADE_IN_PROGRESS'
            ? 'the cluster is being upgraded; new nodes join when it is done'
            : (e as Error).message;
        this.log.warn(`join: ${why}; retrying in ${Math.round(wait / 1000)} s`);
        await delay(wait, this.wake.signal).catch(() => undefined);
      }
    }
  }

  // ---- heartbeats --------------------------------------------------------------------

  /** One heartbeat; with `retry` it keeps trying (backoff) until it is through. A rejected credential rejoins. */
  private async heartbeatOnce(client: ServerClient, retry: boolean): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await client.heartbeat({ facts: await this.facts.collect() });
        this.heartbeatSeconds = r.heartbeatSeconds > 0 ? r.heartbeatSeconds : this.heartbeatSeconds;
        return;
      } catch (e) {
        if (e instanceof ServerError && e.status === 401 && this.config.joinToken) {
          this.log.warn('the server no longer knows this node credential; joining again');
          rmSync(this.credentialFile, { force: true });
          await this.join(client, client.baseUrl);
          continue;
        }
        if (!retry || this.stopping) throw e;
        const wait = backoffMs(attempt, 30_000);
        this.log.warn(`heartbeat: ${(e as Error).message}; retrying in ${Math.round(wait / 1000)} s`);
        await delay(wait, this.wake.signal).catch(() => undefined);
      }
    }
  }

  private async heartbeatLoop(client: ServerClient): Promise<void> {
    while (!this.stopping) {
      await delay(this.heartbeatSeconds * 1000, this.wake.signal).catch(() => undefined);
      if (this.stopping) return;
      if (this.heartbeatsPaused) continue;
      try {
        await this.heartbeatOnce(client, false);
      } catch (e) {
        this.log.warn(`heartbeat: ${(e as Error).message}`);
      }
    }
  }

  // ---- tasks -------------------------------------------------------------------------

  private async pollLoop(client: ServerClient): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let tasks: AgentTask[];
      try {
        tasks = await client.poll(this.options.pollSeconds ?? 25, this.wake.signal);
        failures = 0;
      } catch (e) {
        if (this.stopping) return;
        const wait = backoffMs(failures++, 30_000);
        this.log.warn(`task poll: ${(e as Error).message}; retrying in ${Math.round(wait / 1000)} s`);
        await delay(wait, this.wake.signal).catch(() => undefined);
        continue;
      }
      for (const raw of tasks) {
        await this.handle(client, raw);
        if (this.handedOver) return;
      }
    }
  }

  private selfUpgradeHost(client: ServerClient): SelfUpgradeHost {
    return {
      agentFile: this.options.agentFile,
      downloadBundle: (dest, signal) => client.download('/api/v1/agent/bundle', dest, signal),
      successorArgv: () => [process.execPath, ...process.execArgv, this.options.agentFile ?? '', ...process.argv.slice(2)],
      quiesce: (paused) => {
        this.heartbeatsPaused = paused;
      },
      handOver: () => {
        this.handedOver = true;
        this.stopping = true;
        this.wake.abort();
      },
    };
  }

  /** One delivered task, through the journal: run it, resume it, or only report it again. */
  private async handle(client: ServerClient, raw: unknown): Promise<void> {
    const journal = this.journal as Journal;
    let task: AgentTask;
    try {
      task = validateTaskEnvelope(raw);
    } catch (e) {
      const key = (raw as { taskKey?: unknown })?.taskKey;
      if (typeof key === 'string' && isValidTaskKey(key) && !journal.get(key)) {
        journal.begin(key, String((raw as { recipe?: unknown }).recipe ?? 'unknown').slice(0, 40));
        const result: TaskResultRequest = { result: 'failed', step: 'preflight', error: `refused: ${(e as Error).message}` };
        journal.finish(key, result);
        await this.report(client, key, result);
      } else this.log.warn(`ignoring a malformed task: ${(e as Error).message}`);
      return;
    }
    const entry = journal.get(task.taskKey);
    const disposition = dispositionOf(entry);
    if (disposition === 'report') {
      await this.report(client, task.taskKey, (entry as JournalEntry).result as TaskResultRequest);
      return;
    }
    const stream = new TaskLogStream(client, task.taskKey, (l) => this.log.info(`[${task.taskKey}] ${l}`));
    const recipe: Recipe = this.options.recipes?.[task.recipe] ?? recipeBook(this.selfUpgradeHost(client))[task.recipe];
    const ctx = {
      config: this.config,
      taskKey: task.taskKey,
      log: (line: string) => stream.write(line),
      artifacts: new MirrorArtifactSource(client, path.join(this.config.dataDir, 'artifacts')),
      journal: { checkpoint: (step: string, data?: Record<string, unknown>) => journal.checkpoint(task.taskKey, step, data) },
      agentVersion: this.options.version,
      // Recipes are not interrupted by a stop request: a half-done upgrade is worse than a late exit.
      signal: new AbortController().signal,
    };
    let outcome: RecipeOutcome;
    if (disposition === 'run') {
      journal.begin(task.taskKey, task.recipe);
      stream.write(`agent ${this.options.version} runs ${task.recipe} (task ${task.taskKey})`);
    } else {
      stream.write(
        `agent ${this.options.version} resumes ${task.recipe} (task ${task.taskKey}, started ${entry?.startedAt}, at ${entry?.step ?? 'the start'})`,
      );
    }
    try {
      outcome = disposition === 'run' ? await recipe.run(task, ctx) : await recipe.resume(task, entry as JournalEntry, ctx);
    } catch (e) {
      const step = e instanceof TaskParamsError ? 'preflight' : 'internal';
      outcome = {
        result: 'failed',
        step,
        error:
          e instanceof TaskParamsError ? `invalid parameters: ${e.message}` : `the agent failed unexpectedly: ${(e as Error).stack ?? e}`,
      };
    }
    if (isHandedOver(outcome)) {
      await stream.close();
      return;
    }
    stream.write(
      outcome.result === 'succeeded'
        ? 'succeeded'
        : `failed at ${outcome.step ?? 'an unknown step'}${outcome.rolledBack ? ' (rolled back)' : ''}`,
    );
    await stream.close();
    journal.finish(task.taskKey, outcome);
    this.facts.invalidate();
    await this.report(client, task.taskKey, outcome);
    if (outcome.result === 'succeeded') await this.heartbeatOnce(client, false).catch(() => undefined);
  }

  /** Reports a result (a few tries); an acknowledged one is marked in the journal, others are reported on the next delivery. */
  private async report(client: ServerClient, taskKey: string, result: TaskResultRequest): Promise<void> {
    const journal = this.journal as Journal;
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        await client.result(taskKey, result);
        journal.markReported(taskKey);
        this.log.info(`[${taskKey}] reported: ${result.result}`);
        return;
      } catch (e) {
        if (e instanceof ServerError && (e.status === 404 || e.status === 422)) {
          this.log.warn(`[${taskKey}] the server does not take this result (${e.message}); forgetting it`);
          journal.markReported(taskKey);
          return;
        }
        if (this.stopping) break;
        await delay(backoffMs(attempt, 15_000), this.wake.signal).catch(() => undefined);
      }
    }
    this.log.warn(`[${taskKey}] the result could not be reported yet; it is reported when the task is delivered again`);
  }
}
