import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writePrivate } from './credential.js';
import { isValidTaskKey } from './params.js';

/**
 * One agent per data dir: `<dataDir>/agent.pid` names the process that holds the dir
 * with its start time, so that a pid reused by another program after a crash does not
 * count as a running agent. A self-upgrade hands the lock from the old process to its
 * successor (`UPSHIFT_AGENT_HANDOVER`, see recipes/self-upgrade.ts).
 */
export class InstanceLock {
  readonly file: string;
  private held = false;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'agent.pid');
  }

  /**
   * Takes the lock unless another live agent holds it; resolves to that agent's pid then.
   * `waitFor` is the pid of a predecessor whose lock this process takes over.
   */
  acquire(waitFor: number | undefined): number | undefined {
    let text: string | undefined;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      const holder = JSON.parse(text) as { pid?: number; start?: string };
      if (typeof holder.pid === 'number' && holder.pid !== process.pid && holder.pid !== waitFor) {
        const start = procStartTime(holder.pid);
        if (start !== undefined && start === holder.start) return holder.pid;
      }
    }
    writePrivate(this.file, JSON.stringify({ pid: process.pid, start: procStartTime(process.pid) ?? '' }));
    this.held = true;
    return undefined;
  }

  release(): void {
    if (!this.held) return;
    try {
      const holder = JSON.parse(readFileSync(this.file, 'utf8')) as { pid?: number };
      if (holder.pid === process.pid) rmSync(this.file, { force: true });
    } catch {
      // gone already
    }
    this.held = false;
  }
}

/** When process `pid` started (clock ticks since boot, from /proc), or undefined when it is gone or a zombie. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
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
