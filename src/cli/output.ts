import { stringify } from 'yaml';
import { formatDuration } from '../domain/duration.js';

/** `-o`: aligned tables (`table`, `wide` with more columns) for people; the API's objects as they are for programs. */
/** `manifests` is for `upgrade plan` (the Kubernetes manifests an upgrade would create); elsewhere it prints YAML. */
export const outputFormats = ['table', 'wide', 'json', 'yaml', 'manifests'] as const;
export type OutputFormat = (typeof outputFormats)[number];

/** ANSI colours, or nothing when colour is off. */
export interface Paint {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const sgr = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;
const colours: Paint = { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) };
const identity = (text: string) => text;
const plain: Paint = { bold: identity, dim: identity, red: identity, green: identity, yellow: identity, cyan: identity };

export function paintFor(color: boolean): Paint {
  return color ? colours : plain;
}

// eslint-disable-next-line no-control-regex
const ansiPattern = /\u001b\[[0-9;]*m/g;

export function visibleLength(text: string): number {
  return [...text.replace(ansiPattern, '')].length;
}

/**
 * kubectl's table: upper-case headers, columns left-aligned and separated by three
 * spaces, empty cells shown as `-`, no trailing blanks.
 */
export function formatTable(headers: readonly string[], rawRows: readonly (readonly string[])[]): string {
  const rows = rawRows.map((r) => headers.map((_, i) => (r[i] === undefined || r[i] === '' ? '-' : (r[i] as string))));
  const widths = headers.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: readonly string[]) => alignRow(cells, widths);
  return [line(headers.map((h) => h.toUpperCase())), ...rows.map(line)].join('\n') + '\n';
}

/** One line of a table whose column widths are known: cells padded, three spaces apart, no trailing blanks. */
function alignRow(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(cell)))))
    .join('   ')
    .trimEnd();
}

/** A column of a table: shown in `table` and `wide`, only in `wide` (`wide`), or only in `table` (`narrowOnly`: a summary that `wide` spells out in columns of its own). */
export interface Column<T> {
  header: string;
  value: (item: T) => string;
  wide?: boolean;
  narrowOnly?: boolean;
}

/** Where a command writes its results. */
export class Output {
  readonly format: OutputFormat;
  readonly color: boolean;
  readonly paint: Paint;
  private readonly stream: NodeJS.WritableStream;

  constructor(format: OutputFormat, color: boolean, stream: NodeJS.WritableStream = process.stdout) {
    this.format = format;
    this.color = color;
    this.paint = paintFor(color);
    this.stream = stream;
  }

  /** `-o json` or `-o yaml`: print API objects, nothing else. */
  get structured(): boolean {
    return this.format === 'json' || this.format === 'yaml' || this.format === 'manifests';
  }

  get wide(): boolean {
    return this.format === 'wide';
  }

  write(text: string): void {
    this.stream.write(text);
  }

  line(text = ''): void {
    this.stream.write(`${text}\n`);
  }

  /** An API object, exactly as the server sent it. */
  data(value: unknown): void {
    if (this.format === 'yaml' || this.format === 'manifests') this.stream.write(stringify(value, { lineWidth: 0 }));
    else this.stream.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  table<T>(columns: readonly Column<T>[], items: readonly T[]): void {
    const shown = columns.filter((c) => (this.wide ? !c.narrowOnly : !c.wide));
    this.stream.write(
      formatTable(
        shown.map((c) => c.header),
        items.map((item) => shown.map((c) => c.value(item))),
      ),
    );
  }

  /**
   * A table printed a page at a time, for lists the server pages: the header with the
   * first rows, then each page's rows as they arrive, so the first rows of a 100,000-node
   * list show at once and the CLI never holds the whole list. Columns fit the rows seen
   * so far and only widen, so a later, wider cell may push its own row out of line.
   */
  pagedTable<T>(columns: readonly Column<T>[]): { add(items: readonly T[]): void; readonly rows: number } {
    const shown = columns.filter((c) => (this.wide ? !c.narrowOnly : !c.wide));
    const headers = shown.map((c) => c.header.toUpperCase());
    let widths = headers.map(visibleLength);
    let rows = 0;
    const write = (text: string) => this.stream.write(text);
    return {
      add(items) {
        if (items.length === 0) return;
        const cells = items.map((item) => shown.map((c) => c.value(item) || '-'));
        widths = widths.map((w, i) => Math.max(w, ...cells.map((r) => visibleLength(r[i] ?? ''))));
        const lines = cells.map((r) => alignRow(r, widths));
        if (rows === 0) lines.unshift(alignRow(headers, widths));
        rows += items.length;
        write(`${lines.join('\n')}\n`);
      },
      get rows() {
        return rows;
      },
    };
  }

  /** Colours a state by what it means to an operator: done, moving, waiting for someone, or wrong. */
  state(state: string): string {
    switch (state) {
      case 'Completed':
      case 'Running':
      case 'Ready':
      case 'succeeded':
        return this.paint.green(state);
      case 'Upgrading':
      case 'BackingUp':
      case 'running':
        return this.paint.cyan(state);
      case 'Paused':
      case 'pending':
        return this.paint.yellow(state);
      case 'SnapshotFailed':
      case 'Canceled':
      case 'Unavailable':
      case 'Down':
      case 'failed':
        return this.paint.red(state);
      default:
        return state;
    }
  }
}

/** kubectl's AGE: `45s`, `3m12s`, `2h5m`, `4d2h`. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return '';
  const ms = now - at;
  return ms < 1000 ? '0s' : formatDuration(ms);
}

/** Time left until `iso`: `14d23h`, or `now` when it has passed. */
export function timeLeft(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  return ms <= 0 ? 'now' : formatDuration(ms);
}

/** An ISO timestamp to the second, for tables: `2026-11-22T03:15:45Z`. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '';
  return iso.replace(/\.\d+Z$/, 'Z');
}

/** Node names for one line: all of a few, else the first ones and how many more. */
export function nameList(names: readonly string[], max = 4): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max - 1).join(', ')} +${names.length - (max - 1)} more`;
}

export function plural(count: number, word: string, pluralWord = `${word}s`): string {
  return `${count} ${count === 1 ? word : pluralWord}`;
}
