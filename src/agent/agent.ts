// Whole on purpose (~440 lines): one class is the agent's lifecycle, and join, heartbeats, tasks and handover share its state (client, journal, stopping, wake-up signal).
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AgentFacts, AgentTask, JoinResponse, RecipeName, TaskResultRequest } from '../domain/agent-protocol.js';
import { AGENT_PROTOCOL_VERSION } from '../domain/agent-protocol.js';
import { MirrorArtifactSource } from './artifacts.js';
import type { AgentConfig } from './config.js';
import { ServerClient, ServerError, backoffMs, delay, retryAfterMs } from './client.js';
import type { StoredCredential } from './credential.js';
import { CredentialFile, explainJoinRefusal, forgetLegacyJoinToken, loadJoinSecret, tokenFingerprint } from './credential.js';
import { FactCollector } from './facts.js';
import type { FactSource } from './facts.js';
import { InstanceLock, parseHandover, procStartTime } from './instance-lock.js';
import type { JournalEntry } from './journal.js';
import { Journal, dispositionOf } from './journal.js';
import type { AgentLogger } from './log.js';
import { TaskLogStream } from './task-log.js';
import { TaskParamsError, isValidTaskKey, validateTaskEnvelope } from './params.js';
import type { AgentProgram } from './program.js';
import { successorArgv } from './program.js';
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

export interface AgentOptions {
  config: AgentConfig;
  version: string;
  logger: AgentLogger;
  /** The standalone agent this process runs from (self-upgrade replaces it); undefined inside the CLI. */
  program: AgentProgram | undefined;
  /** Seconds a task long poll waits on the server. */
  pollSeconds?: number;
  /**
   * Join (or check the stored credential), store the credential and return: what the
   * install script runs once, so that the join token never has to be written to disk.
   * Gives up after a few tries instead of waiting for an upgrade or an unreachable server.
   */
  joinOnly?: boolean;
  /**
   * Recipes that replace shipped ones of the same name. Only for benchmarks and tests that
   * run many agents on one machine: a stand-in must not touch the host's runtime.
   */
  recipes?: Partial<Record<RecipeName, Recipe>>;
  /** Where join and heartbeat facts come from; by default the host is probed (FactCollector). */
  facts?: FactSource;
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
  /** The long poll's length the server asked for, when its task polls count as heartbeats. */
  private serverPollSeconds: number | undefined;
  /** Whether the server keeps log lines sent with a result (it said `linesWithResult`). */
  private serverTakesResultLines = false;
  /** Whether the server records facts sent with a result as a heartbeat (it said `factsWithResult`). */
  private serverTakesResultFacts = false;
  /** Whether the server counts this agent's polls, log lines and results as heartbeats (it said `requestsCountAsHeartbeats`). */
  private serverCountsRequests = false;
  /** A task poll is waiting on the server: it stands for this agent's heartbeat there. */
  private pollOpen = false;
  /** The facts the server last acknowledged (JSON). */
  private factsSent: string | undefined;
  private heartbeatsPaused = false;
  private handedOver = false;
  private stopping = false;
  private readonly wake = new AbortController();
  private readonly lock: InstanceLock;
  private readonly credentialFile: CredentialFile;
  /** A refusal that ends the agent, found by a background loop; `run()` rethrows it. */
  private fatal: AgentFatalError | undefined;
  /** One recovery from a refused credential at a time (heartbeat loop and task code may both hit the 401). */
  private recovering: Promise<void> | undefined;
  /** Tries of a join or first heartbeat before giving up on a retryable error (join-only mode: a few). */
  private readonly maxAttempts: number;

  constructor(private readonly options: AgentOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.facts = options.facts ?? new FactCollector(this.config, options.version);
    this.lock = new InstanceLock(this.config.dataDir);
    this.credentialFile = new CredentialFile(this.config.dataDir);
    this.maxAttempts = options.joinOnly ? 5 : Number.POSITIVE_INFINITY;
  }

  /** Asks the agent to stop after the task it is running, if any. */
  stop(): void {
    this.stopping = true;
    this.wake.abort();
  }

  /**
   * Runs until `stop()` or a handover; resolves with which of the two ended it. In
   * join-only mode it returns `joined` once the node holds a working credential.
   * Throws AgentFatalError for what waiting will not cure (a refused join or credential).
   */
  async run(): Promise<'stopped' | 'handed-over' | 'joined'> {
    await mkdir(this.config.dataDir, { recursive: true, mode: 0o700 });
    const handover = this.options.joinOnly ? undefined : parseHandover(process.env[HANDOVER_ENV]);
    delete process.env[HANDOVER_ENV];
    if (!handover) this.acquireLock(undefined);
    try {
      const client = await this.connect();
      await this.heartbeatOnce(client, true);
      const cleaned = forgetLegacyJoinToken(this.config.dataDir);
      if (cleaned) this.log.info(`removed the join token from ${cleaned}: this node holds its own credential`);
      if (this.options.joinOnly) return 'joined';
      if (handover) await this.takeOver(handover);
      this.journal = new Journal(this.config.dataDir);
      await this.journal.prune();
      for (const e of this.journal.unreported()) await this.report(client, e.taskKey, e.result as TaskResultRequest);
      const beating = this.heartbeatLoop(client);
      await this.pollLoop(client);
      this.stopping = true;
      await beating;
      if (this.fatal) throw this.fatal;
      return this.handedOver ? 'handed-over' : 'stopped';
    } finally {
      await this.journal?.flush();
      this.lock.release();
    }
  }

  private acquireLock(waitFor: number | undefined): void {
    const holder = this.lock.acquire(waitFor);
    if (holder !== undefined) {
      throw new AgentFatalError(`another agent (pid ${holder}) runs with the data dir ${this.config.dataDir}; stop it first`);
    }
  }

  /** The successor's side of a self-upgrade handover (see recipes/self-upgrade.ts). */
  private async takeOver(h: { taskKey: string; fromPid: number }): Promise<void> {
    const ready = handoverReadyFile(this.config.dataDir, h.taskKey);
    await mkdir(path.dirname(ready), { recursive: true, mode: 0o700 });
    // Written beside it and renamed: the agent being replaced reads it whole or not at all.
    await writeFile(`${ready}.tmp`, JSON.stringify({ pid: process.pid, version: this.options.version, at: new Date().toISOString() }), {
      mode: 0o600,
    });
    await rename(`${ready}.tmp`, ready);
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

  private readCa(): Buffer | undefined {
    if (!this.config.caFile) return undefined;
    try {
      return readFileSync(this.config.caFile);
    } catch (e) {
      throw new AgentFatalError(`cannot read the CA file ${this.config.caFile} (--ca-file): ${(e as Error).message}`);
    }
  }

  private async connect(): Promise<ServerClient> {
    const stored = this.credentialFile.load();
    const server = this.config.server ?? stored?.server;
    if (!server) throw new AgentFatalError('no server: pass --server URL (or set server: in the config file)');
    const ca = this.readCa();
    const client = new ServerClient(server, ca ? { ca } : {});
    this.client = client;
    if (stored && stored.server === server) {
      client.setCredential(stored.credential);
      this.log.info(`node ${stored.name ?? stored.nodeId} (${stored.nodeId}) of cluster ${stored.clusterName}; server ${server}`);
      if (this.options.joinOnly && this.config.joinToken) {
        this.log.info('this host holds a credential already; the join token is used only if the server refuses it');
      }
      return client;
    }
    await this.join(client, server);
    return client;
  }

  private async join(client: ServerClient, server: string): Promise<void> {
    const joinToken = this.config.joinToken;
    if (!joinToken)
      throw new AgentFatalError(
        'this agent has no credential for this server yet: pass --join-token (from `upshift cluster join-token CLUSTER`, or the join command `upshift cluster create` printed)',
      );
    const name = this.config.name ?? os.hostname();
    // The same secret with every attempt: a join whose answer was lost (timed out here
    // while the server completed it) is then answered again instead of NODE_NAME_TAKEN
    // (docs/design.md §9). Undefined once a server older than the secret refused the field.
    let joinSecret: string | undefined = loadJoinSecret(this.config.dataDir);
    for (let attempt = 0; ; attempt++) {
      try {
        const facts = await this.facts.collect();
        const r: JoinResponse = await client.join({
          joinToken,
          name,
          facts,
          protocol: AGENT_PROTOCOL_VERSION,
          ...(joinSecret === undefined ? {} : { joinSecret }),
        });
        this.credentialFile.save({
          server,
          nodeId: r.nodeId,
          clusterId: r.clusterId,
          clusterName: r.clusterName,
          name,
          credential: r.credential,
          joinedWith: tokenFingerprint(joinToken),
        } satisfies StoredCredential);
        client.setCredential(r.credential);
        this.heartbeatSeconds = r.heartbeatSeconds;
        this.log.info(`joined cluster ${r.clusterName} as node ${name} (${r.nodeId}); credential stored in ${this.credentialFile.path}`);
        return;
      } catch (e) {
        if (e instanceof ServerError && e.status === 400 && joinSecret !== undefined) {
          joinSecret = undefined;
          this.log.warn(
            `join: the server refused the join secret (${e.status} ${e.code}; a server older than this agent); joining without it, so a join whose answer is lost cannot be asked again`,
          );
          continue;
        }
        if (e instanceof ServerError && !e.retryable) throw new AgentFatalError(`join refused: ${explainJoinRefusal(e, name)}`);
        // The install script's one-shot join must not wait hours for an upgrade to end.
        if (e instanceof ServerError && e.code === 'UPGRADE_IN_PROGRESS' && this.options.joinOnly) {
          throw new AgentFatalError(`join refused for now: ${explainJoinRefusal(e, name)}; run the install command again then`);
        }
        if (this.stopping) throw e;
        if (attempt + 1 >= this.maxAttempts) throw new AgentFatalError(`join failed ${attempt + 1} times: ${(e as Error).message}`);
        // A busy server says when to come back (SERVER_BUSY, Retry-After); the jitter keeps
        // the agents it turned away from coming back all at once.
        const wait =
          e instanceof ServerError && e.retryAfterSeconds !== undefined ? retryAfterMs(e.retryAfterSeconds) : backoffMs(attempt, 60_000);
        const why = e instanceof ServerError && e.code === 'UPGRADE_IN_PROGRESS' ? explainJoinRefusal(e, name) : (e as Error).message;
        this.log.warn(`join: ${why}; retrying in ${Math.round(wait / 1000)} s`);
        await delay(wait, this.wake.signal).catch(() => undefined);
      }
    }
  }

  /**
   * The server refused the node's credential (401): an admin reset the node, or removed
   * it. The agent joins again only with a join token it did not join with before (one
   * an operator gave it since, or any token in join-only mode, which an operator runs);
   * otherwise it stops and says what to do. It never retries in a loop.
   */
  private recoverCredential(client: ServerClient): Promise<void> {
    this.recovering ??= (async () => {
      const stored = this.credentialFile.load();
      const token = this.config.joinToken;
      const fresh =
        token !== undefined &&
        (this.options.joinOnly === true || (stored?.joinedWith !== undefined && stored.joinedWith !== tokenFingerprint(token)));
      const name = stored?.name ?? this.config.name ?? os.hostname();
      const cluster = stored?.clusterName ?? 'CLUSTER';
      if (!fresh) {
        throw new AgentFatalError(
          `the server refused this node's credential (node ${name} of cluster ${cluster}): an admin reset or removed the node. ` +
            `If this host should be node ${name} again, an admin runs \`upshift node reset ${cluster} ${name}\` (if the node still exists) ` +
            `and \`upshift cluster join-token ${cluster}\`; then run the join command it prints on this host ` +
            `(or the agent once with --join-only --join-token NEW)`,
        );
      }
      this.log.warn(
        `the server refused this node's credential (node ${name} of cluster ${cluster}); joining again with the join token given`,
      );
      this.credentialFile.remove();
      await this.join(client, client.baseUrl);
    })().finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  // ---- heartbeats --------------------------------------------------------------------

  /**
   * One heartbeat; with `retry` it keeps trying (backoff) until it is through. A refused
   * credential is recovered or ends the agent. With `onlyNews`, nothing is sent while the
   * facts are those the server acknowledged last and the server hears the agent anyway:
   * a poll is open to a server that counts polls as heartbeats, or a request to one that
   * counts requests went through within half an interval (domain/agent-protocol.ts).
   */
  private async heartbeatOnce(client: ServerClient, retry: boolean, onlyNews = false): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const facts = await this.facts.collect();
        const json = JSON.stringify(facts);
        if (onlyNews && json === this.factsSent) {
          if (this.serverPollSeconds !== undefined && this.pollOpen) return;
          if (this.serverCountsRequests && Date.now() - client.heardAt < (this.heartbeatSeconds * 1000) / 2) return;
        }
        const r = await client.heartbeat({ facts });
        this.factsSent = json;
        this.heartbeatSeconds = r.heartbeatSeconds > 0 ? r.heartbeatSeconds : this.heartbeatSeconds;
        this.serverPollSeconds = typeof r.pollSeconds === 'number' && r.pollSeconds > 0 ? r.pollSeconds : undefined;
        this.serverTakesResultLines = r.linesWithResult === true;
        this.serverTakesResultFacts = r.factsWithResult === true;
        this.serverCountsRequests = r.requestsCountAsHeartbeats === true;
        return;
      } catch (e) {
        if (e instanceof ServerError && e.status === 401) {
          await this.recoverCredential(client);
          continue;
        }
        if (!retry || this.stopping) throw e;
        if (attempt + 1 >= this.maxAttempts) throw new AgentFatalError(`heartbeat failed ${attempt + 1} times: ${(e as Error).message}`);
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
        await this.heartbeatOnce(client, false, true);
      } catch (e) {
        if (e instanceof AgentFatalError) {
          this.fatal = e;
          this.stop();
          return;
        }
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
        this.pollOpen = true;
        tasks = await client.poll(this.pollSeconds(), this.wake.signal);
        failures = 0;
      } catch (e) {
        this.pollOpen = false;
        if (this.stopping) return;
        const wait = backoffMs(failures++, 30_000);
        this.log.warn(`task poll: ${(e as Error).message}; retrying in ${Math.round(wait / 1000)} s`);
        await delay(wait, this.wake.signal).catch(() => undefined);
        continue;
      }
      this.pollOpen = false;
      for (const raw of tasks) {
        await this.handle(client, raw);
        if (this.handedOver) return;
      }
    }
  }

  /** How long a task poll waits: never longer than the server asked for when its polls stand for heartbeats. */
  private pollSeconds(): number {
    const asked = this.options.pollSeconds;
    const server = this.serverPollSeconds;
    if (server === undefined) return asked ?? 25;
    return Math.min(asked ?? server, server);
  }

  private selfUpgradeHost(client: ServerClient): SelfUpgradeHost {
    return {
      program: this.options.program,
      downloadExecutable: (dest, signal) => client.download(`/api/v1/agent/bundle?form=executable&arch=${process.arch}`, dest, signal),
      successorArgv,
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
        await journal.begin(key, String((raw as { recipe?: unknown }).recipe ?? 'unknown').slice(0, 40));
        const result: TaskResultRequest = { result: 'failed', step: 'preflight', error: `refused: ${(e as Error).message}` };
        await journal.finish(key, result);
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
      await journal.begin(task.taskKey, task.recipe);
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
    // The host's facts after the task go with the result where the server takes them there,
    // gathered while the journal is written.
    this.facts.invalidate();
    const factsAfter = this.serverTakesResultFacts ? this.facts.collect().catch(() => undefined) : Promise.resolve(undefined);
    // The last lines go with the result where the server keeps them: one request, one commit.
    const lastLines = this.serverTakesResultLines ? await stream.rest() : (await stream.close(), []);
    await journal.finish(task.taskKey, outcome);
    const facts = await factsAfter;
    const factsTaken = await this.report(client, task.taskKey, outcome, lastLines, facts);
    if (outcome.result === 'succeeded' && !factsTaken) await this.heartbeatOnce(client, false).catch(() => undefined);
  }

  /**
   * Reports a result (a few tries); an acknowledged one is marked in the journal, others
   * are reported on the next delivery. True when the server took `facts` with it.
   */
  private async report(
    client: ServerClient,
    taskKey: string,
    result: TaskResultRequest,
    lastLines: string[] = [],
    facts?: AgentFacts,
  ): Promise<boolean> {
    const journal = this.journal as Journal;
    const withLines = lastLines.length > 0 ? { ...result, log: lastLines } : result;
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        await client.result(taskKey, facts ? { ...withLines, facts } : withLines);
        journal.markReported(taskKey);
        this.log.info(`[${taskKey}] reported: ${result.result}`);
        if (facts) this.factsSent = JSON.stringify(facts);
        return facts !== undefined;
      } catch (e) {
        // Facts the server refuses must not cost the result: it goes again without them,
        // and the heartbeat after it says what the server refused.
        if (e instanceof ServerError && e.status === 422 && facts) {
          facts = undefined;
          attempt--;
          continue;
        }
        if (e instanceof ServerError && (e.status === 404 || e.status === 422)) {
          this.log.warn(`[${taskKey}] the server does not take this result (${e.message}); forgetting it`);
          journal.markReported(taskKey);
          return false;
        }
        if (this.stopping) break;
        await delay(backoffMs(attempt, 15_000), this.wake.signal).catch(() => undefined);
      }
    }
    this.log.warn(`[${taskKey}] the result could not be reported yet; it is reported when the task is delivered again`);
    return false;
  }
}
