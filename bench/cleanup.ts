/**
 * What the bench must undo even when it is interrupted (SIGINT, SIGTERM): processes it
 * started that would outlive it (a private sshd, agent processes) and temp dirs. A part
 * registers an undo step when it creates something and runs it itself when it is done;
 * `runPendingCleanups` runs what is left when the bench is stopped from outside.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { startServerProcess, type ServerProcess, type StartOptions } from '../test/support/server.js';

const pending = new Set<() => void | Promise<void>>();

/**
 * Registers an undo step; the returned function runs it once. Later and concurrent calls
 * wait for that one run, so whoever exits the process after it exits after the undo.
 */
export function deferCleanup(step: () => void | Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  const once = () => {
    running ??= (async () => {
      try {
        await step();
      } finally {
        pending.delete(once);
      }
    })();
    return running;
  };
  pending.add(once);
  return once;
}

/** Runs every undo step not yet done (or waits for it), newest first; a failing step does not stop the others. */
export async function runPendingCleanups(): Promise<void> {
  for (const step of [...pending].reverse()) {
    try {
      await step();
    } catch (e) {
      console.error(`cleanup: ${(e as Error).message}`);
    }
  }
}

/** Parent pid of every process, from /proc (processes that vanish meanwhile are skipped). */
function parentPids(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      out.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  return out;
}

/** The pids below `pid` in the process tree (children, their children, …). */
export function descendants(pid: number): number[] {
  const parents = parentPids();
  const out: number[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next = [...parents].filter(([, ppid]) => frontier.includes(ppid)).map(([child]) => child);
    out.push(...next);
    frontier = next;
  }
  return out;
}

/** Pids of processes whose command line mentions `text` (a temp dir only this bench uses). */
export function pidsMentioning(text: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

/** SIGTERM to each pid that still exists. */
export function terminate(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/**
 * `UPSHIFT_BENCH_SERVER_NODE_OPTIONS` (for instance `--cpu-prof --cpu-prof-dir=/tmp/prof`)
 * is given to the bench's server processes only, as their NODE_OPTIONS: to profile a
 * server under a part's load without profiling the bench or the agents.
 */
export function serverProfileEnv(): Record<string, string> {
  const options = process.env['UPSHIFT_BENCH_SERVER_NODE_OPTIONS'];
  return options ? { NODE_OPTIONS: options } : {};
}

/** A server process that is stopped and its data dir removed by `done`, also when the bench is interrupted. */
export async function startBenchServer(options: StartOptions = {}): Promise<{ s: ServerProcess; done: () => Promise<void> }> {
  const s = await startServerProcess({ ...options, env: { ...serverProfileEnv(), ...options.env } });
  const done = deferCleanup(async () => {
    await s.stop();
    s.cleanup();
  });
  return { s, done };
}
