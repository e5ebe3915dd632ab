/**
 * One OS process of the agents benchmark (bench/agents.ts bundles and starts it): runs
 * several real `Agent` instances (src/agent/agent.ts), each with its own data dir, node
 * name, credential, journal, heartbeats and long poll, against the bench's server. A
 * thousand agent processes would need about 35 GB, so agents share a process; what they
 * share is the Node runtime and its HTTP connection pool, nothing of the agent's state.
 *
 * Only the host is a stand-in: facts say docker 20.10.24 until a task "upgrades" it, and
 * the docker-engine recipe runs a real child process (`sleep W`) instead of touching the
 * machine's engine. Events go to stdout as JSON lines (see WorkerEvent); the worker stops
 * its agents when stdin closes, so it never outlives the bench.
 */
import path from 'node:path';
import { Agent, AgentFatalError } from '../src/agent/agent.js';
import { parseAgentConfig } from '../src/agent/config.js';
import { runCommand } from '../src/platform/run-command.js';
import { debianArch } from '../src/agent/facts.js';
import type { FactSource } from '../src/agent/facts.js';
import type { AgentLogger } from '../src/agent/log.js';
import { validateUpgradeParams } from '../src/agent/params.js';
import type { Recipe, RecipeContext, RecipeOutcome } from '../src/agent/recipes/types.js';
import { agentVersion } from '../src/agent/agent-version.js';
import type { AgentFacts, AgentTask } from '../src/domain/agent-protocol.js';
import { RecipeName } from '../src/domain/agent-protocol.js';

/** What the bench tells a worker (argv[2], JSON). */
export interface WorkerSpec {
  server: string;
  joinToken: string;
  /** Each agent's node name and when it starts, so that joins and heartbeats are spread. */
  agents: { name: string; startAfterMs: number }[];
  /** Parent of the agents' data dirs (one per node name). */
  dataRoot: string;
  /** Seconds of `sleep` standing in for a node's upgrade. */
  workSeconds: number;
  /** The docker version the stand-in hosts start with. */
  dockerVersion: string;
}

/** One line on stdout. Times are the machine's clock (ms since the epoch), like the server's. */
export type WorkerEvent =
  | { event: 'recipe'; node: string; taskKey: string; startedAt: number; endedAt: number; ok: boolean }
  | { event: 'warn'; node: string; message: string }
  | { event: 'join-retry'; node: string; cause: JoinRetryCause }
  | { event: 'fatal'; node: string; message: string }
  | { event: 'stopped'; agents: number };

const emit = (e: WorkerEvent) => process.stdout.write(`${JSON.stringify(e)}\n`);

/** Why an agent tried its join again: the connection reset, the server busy (503), no answer in time, anything else. */
export type JoinRetryCause = 'ECONNRESET' | '503' | 'timeout' | 'other';

/** The cause of a join retry, from the agent's warning (`join: …; retrying in N s`). */
function joinRetryCause(message: string): JoinRetryCause {
  if (message.includes('ECONNRESET')) return 'ECONNRESET';
  if (/: 503 /.test(message)) return '503';
  if (message.includes('timed out')) return 'timeout';
  return 'other';
}

/** A host that runs nothing real but its version: what the recipe changed is what the next heartbeat says. */
class BenchHost implements FactSource {
  constructor(
    private readonly name: string,
    public docker: string,
  ) {}

  async collect(): Promise<AgentFacts> {
    const version = agentVersion();
    return {
      hostname: this.name,
      os: 'bench stand-in host',
      arch: debianArch(),
      agentVersion: version,
      versions: { agent: version, docker: this.docker },
      engineReachable: true,
    };
  }

  invalidate(): void {
    // Nothing is cached: the version is the host's own field.
  }
}

/**
 * Stands in for the docker-engine recipe: the same parameters are validated, then one real
 * child process (`sleep W`) is the node's work, then the host reports the target version.
 */
class SleepRecipe implements Recipe {
  constructor(
    private readonly host: BenchHost,
    private readonly node: string,
    private readonly seconds: number,
  ) {}

  async run(task: AgentTask, ctx: RecipeContext): Promise<RecipeOutcome> {
    const startedAt = Date.now();
    const params = validateUpgradeParams(task.recipe, task.params);
    ctx.log(`bench: \`sleep ${this.seconds}\` stands in for docker ${params.fromVersion ?? '?'} → ${params.toVersion}`);
    const r = await runCommand(['sleep', String(this.seconds)], { timeoutMs: (this.seconds + 60) * 1000, signal: ctx.signal });
    const ok = r.code === 0;
    if (ok) this.host.docker = params.toVersion;
    emit({ event: 'recipe', node: this.node, taskKey: task.taskKey, startedAt, endedAt: Date.now(), ok });
    return ok
      ? { result: 'succeeded', versions: { docker: params.toVersion } }
      : { result: 'failed', step: 'install', error: `sleep exited with code ${r.code}` };
  }

  /** The stand-in has nothing to inspect after a restart: run the work again. */
  resume(task: AgentTask, _entry: unknown, ctx: RecipeContext): Promise<RecipeOutcome> {
    return this.run(task, ctx);
  }
}

/** Warnings go to the bench (a few per agent, enough to see what went wrong); info is dropped. */
function benchLogger(node: string): AgentLogger {
  let left = 5;
  const warn = (message: string) => {
    // Every join retry is counted, also past the warnings shown.
    if (message.startsWith('join: ') && message.includes('; retrying in '))
      emit({ event: 'join-retry', node, cause: joinRetryCause(message) });
    if (left-- > 0) emit({ event: 'warn', node, message });
  };
  return { info: () => undefined, warn, error: warn };
}

async function runAgent(spec: WorkerSpec, name: string, startAfterMs: number, stopping: AbortSignal): Promise<Agent | undefined> {
  await new Promise((r) => setTimeout(r, startAfterMs));
  if (stopping.aborted) return undefined;
  const config = parseAgentConfig(
    { dataDir: path.join(spec.dataRoot, name), dockerSocket: path.join(spec.dataRoot, 'no-docker.sock') },
    { server: spec.server, joinToken: spec.joinToken, name },
  );
  const host = new BenchHost(name, spec.dockerVersion);
  return new Agent({
    config,
    version: agentVersion(),
    logger: benchLogger(name),
    program: undefined,
    facts: host,
    recipes: { [RecipeName.dockerEngine]: new SleepRecipe(host, name, spec.workSeconds) },
  });
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as WorkerSpec;
  const stopping = new AbortController();
  const agents: Agent[] = [];
  const stopAll = () => {
    stopping.abort();
    for (const a of agents) a.stop();
  };
  process.stdin.on('end', stopAll).on('close', stopAll).resume();
  process.on('SIGTERM', stopAll);
  const runs = spec.agents.map(async ({ name, startAfterMs }) => {
    const agent = await runAgent(spec, name, startAfterMs, stopping.signal);
    if (!agent) return;
    agents.push(agent);
    if (stopping.signal.aborted) agent.stop();
    try {
      await agent.run();
    } catch (e) {
      emit({ event: 'fatal', node: name, message: e instanceof AgentFatalError ? e.message : ((e as Error).stack ?? String(e)) });
    }
  });
  await Promise.all(runs);
  emit({ event: 'stopped', agents: agents.length });
}

main().catch((error: unknown) => {
  process.stderr.write(`bench agent worker: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
