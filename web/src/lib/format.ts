import type { Component } from '@upshift/api';
import { componentDisplayName } from '@upshift/api/enums';

/** Compares versions the way people read them: numbers as numbers (20.10.24 < 26.1.5). */
export function compareNatural(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' });
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `2026-11-22 03:15:48`, in the browser's time zone. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Only the clock part, for dense tables. */
export function formatClock(iso: string | null | undefined): string {
  if (!iso) return '—';
  return formatTime(iso).slice(11);
}

/** `850 ms`, `4.2 s`, `3 m 04 s`, `2 h 05 m`, `14 d 23 h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const negative = ms < 0;
  const abs = Math.abs(ms);
  let text: string;
  if (abs < 1000) text = `${Math.round(abs)} ms`;
  else if (abs < 60_000) text = `${(abs / 1000).toFixed(abs < 10_000 ? 1 : 0)} s`;
  else if (abs < 3_600_000) text = `${Math.floor(abs / 60_000)} m ${pad(Math.floor((abs % 60_000) / 1000))} s`;
  else if (abs < 86_400_000) text = `${Math.floor(abs / 3_600_000)} h ${pad(Math.floor((abs % 3_600_000) / 60_000))} m`;
  else
    text = `${Math.floor(abs / 86_400_000)} d ${Math.floor((abs % 86_400_000) / 3_600_000)} h ${pad(Math.floor((abs % 3_600_000) / 60_000))} m`;
  return negative ? `-${text}` : text;
}

export function durationBetween(start: string | null | undefined, end: string | null | undefined, now = Date.now()): number | null {
  if (!start) return null;
  const from = Date.parse(start);
  const to = end ? Date.parse(end) : Math.max(now, from);
  return to - from;
}

/** Versions in use, highest first: `[['26.1.5', 20], ['20.10.24', 30]]`. */
export function versionEntries(versions: Record<string, number>): [string, number][] {
  return Object.entries(versions).sort((a, b) => compareNatural(b[0], a[0]));
}

export function displayComponent(component: string): string {
  return componentDisplayName[component as Component] ?? component;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
}

/** The batch sizes in short: `1, 2, 4, 5 × 9, 3`. */
export function summariseSizes(sizes: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < sizes.length;) {
    let j = i;
    while (j + 1 < sizes.length && sizes[j + 1] === sizes[i]) j++;
    const run = j - i + 1;
    parts.push(run > 2 ? `${sizes[i]} × ${run}` : Array(run).fill(sizes[i]).join(', '));
    i = j + 1;
  }
  return parts.join(', ');
}
