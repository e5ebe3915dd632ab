import { invalid } from './errors.js';

/**
 * Maintenance windows: when an upgrade may start a batch (docs/design.md, "Rollout guards").
 *
 * A window opens on each of its `days` at `start`, wall-clock time in `timezone` (an IANA
 * zone name), and closes at `end`; an `end` at or before `start` closes on the next day
 * (a window across midnight belongs to the day it opens), and `end` equal to `start` is a
 * whole day. Daylight-saving changes follow the wall clock: a window that opens at 02:30
 * on the night the clocks skip from 02:00 to 03:00 opens at 03:00; one that opens within
 * the hour that repeats in autumn opens at the first of the two.
 *
 * Only the start of a batch is gated: a batch that started inside the window finishes
 * after it closes.
 */
export const weekdays = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof weekdays)[number];

export interface MaintenanceWindow {
  days: Weekday[];
  /** `HH:MM`, 24-hour wall-clock time in `timezone`. */
  start: string;
  end: string;
  /** IANA zone name such as `Europe/Berlin` or `UTC`. */
  timezone: string;
}

/** Whether the window is open at an instant, and until when; or when it opens next. */
export type WindowStatus = { open: true; closesAt: number } | { open: false; opensAt: number };

const DAY_MS = 86_400_000;
const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/**
 * A window as an operator types it on a command line: `sat,sun 02:00-06:00 Europe/Berlin`
 * (days, then start-end, then the zone). Returns the raw fields; `parseMaintenanceWindow`
 * checks them.
 */
export function windowFromText(text: string): Record<string, unknown> {
  const m = /^\s*([A-Za-z,]+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s+(\S+)\s*$/.exec(text);
  if (!m) throw invalid(`"${text}" is not a window: write DAYS START-END ZONE, such as "sat,sun 02:00-06:00 Europe/Berlin"`);
  return { days: (m[1] as string).split(',').filter(Boolean), start: m[2], end: m[3], timezone: m[4] };
}

/** Validates a window from a request or a cluster's settings; throws VALIDATION_FAILED naming the field. */
export function parseMaintenanceWindow(raw: unknown, field = 'window'): MaintenanceWindow {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalid(`${field} must be an object such as {"days":["sat","sun"],"start":"02:00","end":"06:00","timezone":"Europe/Berlin"}`);
  }
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!['days', 'start', 'end', 'timezone'].includes(key))
      throw invalid(`${field}.${key} is not a window field (days, start, end, timezone)`);
  }
  const days = r['days'];
  if (!Array.isArray(days) || days.length === 0) throw invalid(`${field}.days must list at least one of ${weekdays.join(', ')}`);
  const seen = new Set<Weekday>();
  for (const d of days) {
    const day = typeof d === 'string' ? d.toLowerCase() : d;
    if (!weekdays.includes(day as Weekday)) throw invalid(`${field}.days: "${String(d)}" is not one of ${weekdays.join(', ')}`);
    seen.add(day as Weekday);
  }
  for (const key of ['start', 'end'] as const) {
    const v = r[key];
    if (typeof v !== 'string' || !HHMM.test(v)) throw invalid(`${field}.${key} must be a 24-hour time HH:MM such as 02:00 or 23:30`);
  }
  const timezone = r['timezone'];
  if (typeof timezone !== 'string' || !isTimeZone(timezone)) {
    throw invalid(`${field}.timezone must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC`);
  }
  return {
    // Monday first, as operators write weeks.
    days: [...weekdays.slice(1), weekdays[0]].filter((d) => seen.has(d)),
    start: r['start'] as string,
    end: r['end'] as string,
    timezone: canonicalZone(timezone),
  };
}

function isTimeZone(name: string): boolean {
  if (name.length > 64 || !/^[A-Za-z0-9_+\-/]+$/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function canonicalZone(name: string): string {
  return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timezone, f);
  }
  return f;
}

/** The wall-clock time in `timezone` at an instant, as milliseconds of a UTC date with those fields. */
export function wallClock(instant: number, timezone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timezone).formatToParts(new Date(instant))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const ms = ((instant % 1000) + 1000) % 1000;
  return Date.UTC(
    parts['year'] ?? 1970,
    (parts['month'] ?? 1) - 1,
    parts['day'] ?? 1,
    parts['hour'] ?? 0,
    parts['minute'] ?? 0,
    parts['second'] ?? 0,
    ms,
  );
}

/**
 * The instant at which the wall clock in `timezone` shows `wall` (given as a UTC date with
 * those fields): the first of two in a repeated hour, the end of the gap in a skipped one.
 */
export function instantOfWallClock(wall: number, timezone: string): number {
  const offsets = new Set([-14, 0, 14].map((h) => wallClock(wall + h * 3_600_000, timezone) - (wall + h * 3_600_000)));
  const exact = [...offsets].map((o) => wall - o).filter((t) => wallClock(t, timezone) === wall);
  if (exact.length > 0) return Math.min(...exact);
  // In a gap: the first instant whose wall clock is at or after `wall`.
  let lo = wall - Math.max(...offsets);
  let hi = wall - Math.min(...offsets);
  if (lo > hi) [lo, hi] = [hi, lo];
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (wallClock(mid, timezone) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

function minutes(hhmm: string): number {
  const m = HHMM.exec(hhmm);
  return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
}

/** The openings of the window whose opening day is within [from, to] local dates around `instant`. */
function openings(w: MaintenanceWindow, instant: number, fromDay: number, toDay: number): Array<[number, number]> {
  const today = Math.floor(wallClock(instant, w.timezone) / DAY_MS) * DAY_MS;
  const start = minutes(w.start);
  const end = minutes(w.end);
  const out: Array<[number, number]> = [];
  for (let d = fromDay; d <= toDay; d++) {
    const day = today + d * DAY_MS;
    if (!w.days.includes(weekdays[new Date(day).getUTCDay()] as Weekday)) continue;
    const open = instantOfWallClock(day + start * 60_000, w.timezone);
    const closeDay = end > start ? day : day + DAY_MS;
    const close = instantOfWallClock(closeDay + end * 60_000, w.timezone);
    if (close > open) out.push([open, close]);
  }
  return out;
}

/** Whether a batch may start at `instant`, and until when (adjoining openings merged); else when the window opens next. */
export function windowStatus(w: MaintenanceWindow, instant: number): WindowStatus {
  const spans = openings(w, instant, -2, 8);
  const current = spans.find(([open, close]) => open <= instant && instant < close);
  if (current) {
    let closesAt = current[1];
    for (;;) {
      const next = spans.find(([open, close]) => open <= closesAt && close > closesAt);
      if (!next) break;
      closesAt = next[1];
    }
    return { open: true, closesAt };
  }
  const opensAt = Math.min(...spans.filter(([open]) => open > instant).map(([open]) => open));
  return { open: false, opensAt };
}

/** The earliest instant at or after `instant` when a batch may start. */
export function nextStart(w: MaintenanceWindow, instant: number): number {
  const s = windowStatus(w, instant);
  return s.open ? instant : s.opensAt;
}

/** "Mon 02:00 Europe/Berlin": an instant as the window's own clock shows it. */
export function describeWindowTime(instant: number, timezone: string): string {
  const wall = new Date(wallClock(instant, timezone));
  const day = weekdays[wall.getUTCDay()] as string;
  const hh = String(wall.getUTCHours()).padStart(2, '0');
  const mm = String(wall.getUTCMinutes()).padStart(2, '0');
  return `${day[0]?.toUpperCase()}${day.slice(1)} ${hh}:${mm} ${timezone}`;
}

/** "sat, sun 02:00–06:00 Europe/Berlin" */
export function describeWindow(w: MaintenanceWindow): string {
  const across = minutes(w.end) <= minutes(w.start) ? ' (next day)' : '';
  return `${w.days.join(', ')} ${w.start}–${w.end}${across} ${w.timezone}`;
}
