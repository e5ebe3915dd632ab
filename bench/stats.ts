import { readFileSync } from 'node:fs';

/**
 * Small helpers the bench parts share: order statistics (the machines are shared and
 * noisy, so figures are medians and percentiles) and what /proc says about a process.
 */

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

/** The nearest-rank percentile: a value that was really observed. */
export const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
};

export const fmt = (n: number, digits = 2) => n.toFixed(digits);

/** CPU seconds and peak resident memory of a process, from /proc. */
export function processStats(pid: number): { cpuSeconds: number; peakMiB: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { cpuSeconds: ticks / 100, peakMiB: kib('VmHWM') / 1024, rssMiB: kib('VmRSS') / 1024 };
}

/**
 * CPU seconds of a process and of its children it has reaped (utime, stime, cutime,
 * cstime); 0 when it is gone. Summed over a process tree, this counts every process that
 * ran in it, ended or not, as long as the tree's own processes reaped the ended ones.
 */
export function cpuWithReapedChildren(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return 0;
  }
}

/** A figure printed and kept for BENCHMARKS.md. */
export type Report = (line: string) => void;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
