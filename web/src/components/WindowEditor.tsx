import type { MaintenanceWindowView } from '@upshift/api';
import { formatDuration } from '@upshift/domain/duration.js';
import {
  describeWindow,
  describeWindowTime,
  type MaintenanceWindow,
  parseMaintenanceWindow,
  weekdays,
  windowStatus,
} from '@upshift/domain/maintenance-window.js';
import { Fragment, useEffect, useState } from 'react';

/** Monday first, as operators write weeks (and as the server returns the days). */
const week = [...weekdays.slice(1), weekdays[0]];

/** A window as the form holds it: every field as typed; the server checks it and says what to fix. */
export interface WindowDraft {
  days: string[];
  start: string;
  end: string;
  timezone: string;
}

/** The browser's own zone: what an operator most likely means by "02:00". */
export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export function newWindowDraft(from?: MaintenanceWindowView | null): WindowDraft {
  if (from) return { days: [...from.days], start: from.start, end: from.end, timezone: from.timezone };
  return { days: ['sat', 'sun'], start: '02:00', end: '06:00', timezone: browserZone() };
}

/** The request for a draft: the fields as typed, so a bad one comes back in the server's words. */
export function windowBody(d: WindowDraft): { days: string[]; start: string; end: string; timezone: string } {
  return { days: week.filter((day) => d.days.includes(day)), start: d.start, end: d.end, timezone: d.timezone.trim() };
}

/**
 * "open now until Sat 06:00 Europe/Berlin" or "opens Sat 02:00 Europe/Berlin, in 3h12m":
 * the domain's own reading of the window (the engine starts batches by the same rule).
 */
export function describeNextOpening(w: MaintenanceWindow, now: number): string {
  const status = windowStatus(w, now);
  if (status.open) return `open now until ${describeWindowTime(status.closesAt, w.timezone)}`;
  return `opens ${describeWindowTime(status.opensAt, w.timezone)}, in ${formatDuration(Math.max(0, status.opensAt - now))}`;
}

/** The same for a window as typed: what is wrong with it (the domain's message) while it is not a window yet. */
export function describeDraft(d: WindowDraft, now: number): { ok: boolean; text: string } {
  try {
    const w = parseMaintenanceWindow(windowBody(d));
    return { ok: true, text: `${describeWindow(w)}: ${describeNextOpening(w, now)}` };
  } catch (e) {
    return { ok: false, text: e instanceof Error ? e.message : String(e) };
  }
}

/** Opening and closing time: the same HH:MM text field twice, told apart by label and default. */
const clockFields: readonly { field: 'start' | 'end'; label: string; placeholder: string }[] = [
  { field: 'start', label: 'Opens at (HH:MM)', placeholder: '02:00' },
  { field: 'end', label: 'Closes at (HH:MM)', placeholder: '06:00' },
];

let zones: string[] | null = null;
function zoneNames(): string[] {
  if (zones) return zones;
  const supported = (Intl as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf;
  zones = supported ? supported('timeZone') : [];
  if (!zones.includes('UTC')) zones = ['UTC', ...zones];
  return zones;
}

/** A clock read again every 30 s, so that "in 3h12m" stays true while the form is open. */
export function useMinuteClock(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

/**
 * The fields of one window: day checkboxes Mon…Sun, start and end (an end at or before the
 * start closes the next day), and an IANA zone with the browser's zone as default. Below
 * them, in words, when the window opens next; or what to fix. `idPrefix` keeps the labels
 * unique when two editors are on one page.
 */
export function WindowFields({ draft, onChange, idPrefix }: { draft: WindowDraft; onChange: (d: WindowDraft) => void; idPrefix: string }) {
  const now = useMinuteClock();
  const id = (field: string) => `${idPrefix}-${field}`;
  const described = describeDraft(draft, now);
  const toggle = (day: string, on: boolean) =>
    onChange({ ...draft, days: on ? [...draft.days.filter((d) => d !== day), day] : draft.days.filter((d) => d !== day) });
  return (
    <div className="window-fields" data-testid="window-fields">
      <fieldset className="window-days">
        <legend>Days</legend>
        {week.map((day) => (
          <label key={day} className="window-day">
            <input type="checkbox" checked={draft.days.includes(day)} onChange={(e) => toggle(day, e.target.checked)} />
            {day[0]?.toUpperCase()}
            {day.slice(1)}
          </label>
        ))}
      </fieldset>
      <div className="form-grid">
        {/* Text, not type="time": the window is written HH:MM (24-hour) everywhere, whatever the browser's locale. */}
        {clockFields.map(({ field, label, placeholder }) => (
          <Fragment key={field}>
            <label htmlFor={id(field)}>{label}</label>
            <input
              id={id(field)}
              inputMode="numeric"
              placeholder={placeholder}
              spellCheck={false}
              value={draft[field]}
              onChange={(e) => onChange({ ...draft, [field]: e.target.value })}
            />
          </Fragment>
        ))}
        <label htmlFor={id('zone')}>Time zone</label>
        <input
          id={id('zone')}
          list={id('zones')}
          spellCheck={false}
          autoComplete="off"
          placeholder="Europe/Berlin"
          value={draft.timezone}
          onChange={(e) => onChange({ ...draft, timezone: e.target.value })}
        />
        <datalist id={id('zones')}>
          {zoneNames().map((z) => (
            <option key={z} value={z} />
          ))}
        </datalist>
      </div>
      <p className={described.ok ? 'help' : 'help bad'} role="status" data-testid="window-next">
        {described.text}
      </p>
    </div>
  );
}

/** Which window an upgrade gets: the cluster's default (the request leaves it out), none, or its own. */
export type WindowChoice = 'cluster' | 'none' | 'custom';

/** `policy.window` for a choice: absent keeps the cluster's, null is none. */
export function windowPolicy(choice: WindowChoice, draft: WindowDraft): { window?: ReturnType<typeof windowBody> | null } {
  if (choice === 'none') return { window: null };
  if (choice === 'custom') return { window: windowBody(draft) };
  return {};
}

/** The confirmation's words for the window the upgrade gets. */
export function describeChoice(choice: WindowChoice, draft: WindowDraft, clusterWindow: MaintenanceWindowView | null): string {
  if (choice === 'custom') {
    try {
      return `only in its maintenance window ${describeWindow(parseMaintenanceWindow(windowBody(draft)))}`;
    } catch {
      return 'only in the maintenance window set above';
    }
  }
  if (choice === 'cluster' && clusterWindow) return `only in the cluster's maintenance window ${describeWindow(clusterWindow)}`;
  return 'at any time (no maintenance window)';
}

/**
 * The Upgrade dialog's "Maintenance window" section: the cluster's default window with when
 * it opens next, and the choice to keep it, run without one, or set one for this upgrade.
 */
export function WindowEditor({
  clusterWindow,
  choice,
  draft,
  onChoice,
  onDraft,
}: {
  clusterWindow: MaintenanceWindowView | null;
  choice: WindowChoice;
  draft: WindowDraft;
  onChoice: (c: WindowChoice) => void;
  onDraft: (d: WindowDraft) => void;
}) {
  const now = useMinuteClock();
  return (
    <div className="window-editor" data-testid="window-editor">
      <p className="help">
        Batches start only while the window is open; a batch that has started finishes after it closes. While it is closed the upgrade stays
        Upgrading and says when it opens.
      </p>
      <div role="radiogroup" aria-label="Maintenance window" className="window-choice">
        <label>
          <input type="radio" name="ud-window" checked={choice === 'cluster'} onChange={() => onChoice('cluster')} />
          {clusterWindow ? (
            <span>
              The cluster&apos;s: <span data-testid="cluster-window">{describeWindow(clusterWindow)}</span>{' '}
              <span className="muted">({describeNextOpening(clusterWindow, now)})</span>
            </span>
          ) : (
            <span>The cluster&apos;s (none set: batches start at any time)</span>
          )}
        </label>
        <label>
          <input type="radio" name="ud-window" checked={choice === 'none'} onChange={() => onChoice('none')} />
          None for this upgrade: batches start at any time
        </label>
        <label>
          <input type="radio" name="ud-window" checked={choice === 'custom'} onChange={() => onChoice('custom')} />
          Set one for this upgrade
        </label>
      </div>
      {choice === 'custom' ? <WindowFields draft={draft} onChange={onDraft} idPrefix="ud-window" /> : null}
    </div>
  );
}
