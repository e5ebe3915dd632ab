import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  describeWindowTime,
  instantOfWallClock,
  nextStart,
  parseMaintenanceWindow,
  wallClock,
  windowStatus,
  type MaintenanceWindow,
} from '../../src/domain/maintenance-window.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

describe('maintenance windows', () => {
  const weekend: MaintenanceWindow = { days: ['sat', 'sun'], start: '02:00', end: '06:00', timezone: 'Europe/Berlin' };

  it('is open inside, closed outside, and says when it opens or closes, in the zone given', () => {
    // Sat 2026-12-05 03:00 CET = 02:00Z
    expect(windowStatus(weekend, at('2026-12-05T02:00:00Z'))).toEqual({ open: true, closesAt: at('2026-12-05T05:00:00Z') });
    // Fri 23:00Z is Sat 00:00 CET: closed until Sat 02:00 CET.
    expect(windowStatus(weekend, at('2026-12-04T23:00:00Z'))).toEqual({ open: false, opensAt: at('2026-12-05T01:00:00Z') });
    // Sun 06:00 CET: just closed; next is Sat a week later.
    expect(windowStatus(weekend, at('2026-12-06T05:00:00Z'))).toEqual({ open: false, opensAt: at('2026-12-12T01:00:00Z') });
    expect(describeWindowTime(at('2026-12-12T01:00:00Z'), 'Europe/Berlin')).toBe('Sat 02:00 Europe/Berlin');
  });

  it('crosses midnight: a window opening Friday 22:00 lasts into Saturday', () => {
    const night: MaintenanceWindow = { days: ['fri'], start: '22:00', end: '04:00', timezone: 'UTC' };
    expect(windowStatus(night, at('2026-12-04T21:59:00Z'))).toEqual({ open: false, opensAt: at('2026-12-04T22:00:00Z') });
    expect(windowStatus(night, at('2026-12-05T01:00:00Z'))).toEqual({ open: true, closesAt: at('2026-12-05T04:00:00Z') });
    // Saturday 22:00 is not a Friday: the Saturday night is closed.
    expect(windowStatus(night, at('2026-12-05T23:00:00Z'))).toEqual({ open: false, opensAt: at('2026-12-11T22:00:00Z') });
  });

  it('merges adjoining openings: every day, all day, is always open', () => {
    const always: MaintenanceWindow = {
      days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'],
      start: '00:00',
      end: '00:00',
      timezone: 'UTC',
    };
    const s = windowStatus(always, at('2026-12-01T12:00:00Z'));
    expect(s.open).toBe(true);
    expect(s.open && s.closesAt - at('2026-12-01T12:00:00Z')).toBeGreaterThan(6 * 86_400_000);
  });

  it('follows the wall clock across daylight-saving changes', () => {
    // Europe/Berlin skips 02:00–03:00 on Sun 2026-03-29: a window opening at 02:30 opens at 03:00 CEST (01:00Z).
    const skipped: MaintenanceWindow = { days: ['sun'], start: '02:30', end: '05:00', timezone: 'Europe/Berlin' };
    expect(windowStatus(skipped, at('2026-03-28T12:00:00Z'))).toEqual({ open: false, opensAt: at('2026-03-29T01:00:00Z') });
    expect(windowStatus(skipped, at('2026-03-29T01:30:00Z'))).toEqual({ open: true, closesAt: at('2026-03-29T03:00:00Z') });
    // The week before, in winter time, the same window is 01:30Z–04:00Z.
    expect(windowStatus(skipped, at('2026-03-21T12:00:00Z'))).toEqual({ open: false, opensAt: at('2026-03-22T01:30:00Z') });
    // 02:00–03:00 repeats on Sun 2026-10-25: 02:30 opens at the first one (00:30Z, still CEST); 05:00 CET is 04:00Z.
    expect(windowStatus(skipped, at('2026-10-24T12:00:00Z'))).toEqual({ open: false, opensAt: at('2026-10-25T00:30:00Z') });
    expect(windowStatus(skipped, at('2026-10-25T03:30:00Z'))).toEqual({ open: true, closesAt: at('2026-10-25T04:00:00Z') });
    // New York: 2026-03-08 02:00 EST → 03:00 EDT.
    expect(instantOfWallClock(Date.UTC(2026, 2, 8, 2, 15), 'America/New_York')).toBe(at('2026-03-08T07:00:00Z'));
    expect(instantOfWallClock(Date.UTC(2026, 10, 1, 1, 30), 'America/New_York')).toBe(at('2026-11-01T05:30:00Z'));
  });

  it('never lets a batch start outside its window (property, random windows and zones)', () => {
    const zones = [
      'UTC',
      'Europe/Berlin',
      'America/New_York',
      'Australia/Lord_Howe',
      'Asia/Kolkata',
      'America/Santiago',
      'Pacific/Chatham',
    ];
    const hhmm = fc
      .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
      .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
    fc.assert(
      fc.property(
        fc.subarray(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const, { minLength: 1 }),
        hhmm,
        hhmm,
        fc.constantFrom(...zones),
        fc.integer({ min: at('2026-01-01T00:00:00Z'), max: at('2027-12-31T00:00:00Z') }),
        (days, start, end, timezone, now) => {
          const w = parseMaintenanceWindow({ days, start, end, timezone });
          const t = nextStart(w, now);
          expect(t).toBeGreaterThanOrEqual(now);
          expect(t - now).toBeLessThanOrEqual(8 * 86_400_000);
          const s = windowStatus(w, t);
          expect(s.open).toBe(true);
          // The local day the window opened on is one of its days (or the day before, for a window across midnight).
          const wall = new Date(wallClock(t, timezone));
          const day = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][wall.getUTCDay()] as (typeof days)[number];
          const before = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][(wall.getUTCDay() + 6) % 7] as (typeof days)[number];
          expect(days.includes(day) || (end <= start && days.includes(before))).toBe(true);
          // Just before the reported opening it was closed, unless it was already open at `now`.
          if (t > now) expect(windowStatus(w, t - 1000).open).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses bad windows with what to fix', () => {
    const ok = { days: ['mon'], start: '02:00', end: '04:00', timezone: 'Europe/Berlin' };
    expect(parseMaintenanceWindow({ ...ok, days: ['Mon', 'mon'] }).days).toEqual(['mon']);
    expect(() => parseMaintenanceWindow({ ...ok, timezone: 'Mars/Olympus' })).toThrow(/IANA time zone name/);
    expect(() => parseMaintenanceWindow({ ...ok, start: '2:00' })).toThrow(/window.start must be a 24-hour time HH:MM/);
    expect(() => parseMaintenanceWindow({ ...ok, end: '24:00' })).toThrow(/window.end must be/);
    expect(() => parseMaintenanceWindow({ ...ok, days: [] })).toThrow(/window.days must list at least one/);
    expect(() => parseMaintenanceWindow({ ...ok, days: ['funday'] })).toThrow(/"funday" is not one of/);
    expect(() => parseMaintenanceWindow({ ...ok, hours: 3 })).toThrow(/window.hours is not a window field/);
    expect(() => parseMaintenanceWindow('sat 02:00')).toThrow(/window must be an object/);
    expect(iso(nextStart(parseMaintenanceWindow(ok), at('2026-11-30T01:30:00Z')))).toBe('2026-11-30T01:30:00.000Z');
  });
});
