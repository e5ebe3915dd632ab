/** Small helpers the repositories share for turning rows into domain records and back. */

export const nowIso = (): string => new Date().toISOString();

/*
 * Rows become records by object literals that name each field (`toNode` and the like),
 * not by spreading a row and overriding a field or by object rest: V8 builds a literal
 * some fifteen times faster, and the node and task lists read thousands of rows. Where
 * the row is the record column for column (tasks, snapshots, tokens, sessions), it is
 * returned as it comes.
 */

/** JSON text of a column, parsed; `fallback` for NULL. */
export function parseJson<T>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  return JSON.parse(text) as T;
}

/**
 * Parsed JSON texts that many rows repeat or that are read over and over unchanged (a
 * cluster's settings, a node group's versions), by their text: the cluster list reads
 * them for every cluster on every request. The values are frozen, since every caller
 * shares them; the texts go all at once when there are too many.
 */
export class FrozenJson {
  private readonly parsed = new Map<string, unknown>();

  constructor(private readonly capacity = 20_000) {}

  of<T>(text: string | null, fallback: T): T {
    if (text === null) return fallback;
    let value = this.parsed.get(text);
    if (value === undefined) {
      if (this.parsed.size >= this.capacity) this.parsed.clear();
      value = deepFreeze(JSON.parse(text));
      this.parsed.set(text, value);
    }
    return value as T;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** A value for a nullable JSON column. */
export function jsonOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

/**
 * How many rows a statement may carry in one go: an `in (…)` list or a multi-row insert of
 * this many rows stays well under both dialects' limits on bound parameters (SQLite 32,766;
 * PostgreSQL 65,535) for the widest table.
 */
export const ROWS_PER_STATEMENT = 500;

/** `items` in slices of `size` (the last one shorter). */
export function* slices<T>(items: readonly T[], size = ROWS_PER_STATEMENT): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** Rows a statement changed, from Kysely's bigint counts. */
export const changed = (result: { numUpdatedRows?: bigint; numDeletedRows?: bigint }): number =>
  Number(result.numUpdatedRows ?? result.numDeletedRows ?? 0n);

/** `count(*)` rows grouped by state, as a record with every state present (0 when none). */
export function countsByState<S extends string>(
  states: readonly S[],
  rows: ReadonlyArray<{ state: S; n: number | string | bigint }>,
): Record<S, number> {
  const counts = Object.fromEntries(states.map((s) => [s, 0])) as Record<S, number>;
  for (const row of rows) counts[row.state] = Number(row.n);
  return counts;
}

/**
 * One page of a list that grows with the fleet, read by key (`key > after ORDER BY key
 * LIMIT n`), never by offset: a page costs the same wherever it is, and rows added or
 * removed elsewhere do not shift the pages that follow. `nextAfter` is the key of the
 * page's last row when more rows follow, else null.
 */
export interface KeysetPage<T, K> {
  items: T[];
  nextAfter: K | null;
}

/** A page from `limit + 1` rows read in key order: the extra row only says that another page follows. */
export function keysetPage<R, T, K>(rows: R[], limit: number, toItem: (row: R) => T, keyOf: (row: R) => K): KeysetPage<T, K> {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { items: page.map(toItem), nextAfter: rows.length > limit && last !== undefined ? keyOf(last) : null };
}

/**
 * The named fields of a record, and no other: a record that carries more than its table's
 * columns (a caller's object with extra fields) must not turn them into column names.
 */
export function pick<T extends object, K extends keyof T>(record: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) out[key] = record[key];
  return out;
}
