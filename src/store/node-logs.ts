import { sql } from 'kysely';
import { PreparedQuery } from './prepared.js';
import { slices } from './rows.js';
import type { Scope } from './scope.js';

/**
 * The bound of a node task's log: 1 MiB of text as served, its first 512 KiB (how the
 * task started) and its last 512 KiB (how it ended), with one marker line between them
 * when lines were dropped. One task of a flooding agent costs at most that much.
 */
export const LOG_HEAD_BYTES = 512 * 1024;
export const LOG_TAIL_BYTES = 512 * 1024;

/**
 * One task's log sizes: where statements run in this process (SQLite), one short statement
 * per task, compiled once, costs less than one `case` over all of them compiled for its count.
 */
const setLogSizes = new PreparedQuery<[number, number, number, string], unknown>(4, (db, head, tail, dropped, nodeTaskId) =>
  db
    .updateTable('nodeLogSizes')
    .set({ headBytes: sql<number>`${head}`, tailBytes: sql<number>`${tail}`, droppedBytes: sql<number>`${dropped}` })
    .where('nodeTaskId', '=', nodeTaskId),
);

/*
 * Where statements run in this process (SQLite), an append's lists of tasks and lines go
 * as one JSON array each, through SQLite's `json_each`: each statement is then compiled
 * once whatever the count, where one with an `in` list or `values` row per item was built
 * and compiled anew for every append (about a third of what node logs cost the server
 * under an upgrade of 1,000 agents; BENCHMARKS.md).
 */
const jsonEach = (list: string) => sql<string>`(select value from json_each(${list}))`;
const ensureLogSizesOf = new PreparedQuery<[string], unknown>(1, (db, ids) =>
  db
    .insertInto('nodeLogSizes')
    .columns(['nodeTaskId'])
    .expression((eb) => eb.selectFrom('nodeTasks').select('id').where('id', 'in', jsonEach(ids)))
    .onConflict((oc) => oc.column('nodeTaskId').doNothing()),
);
const logSizesOf = new PreparedQuery<[string], unknown>(1, (db, ids) =>
  db.selectFrom('nodeLogSizes').select(['nodeTaskId', 'headBytes', 'tailBytes', 'droppedBytes']).where('nodeTaskId', 'in', jsonEach(ids)),
);
/** Rows as `[upgradeId, nodeTaskId, at, line, bytes, tail]` arrays, stored in the array's order. */
const insertLogRows = new PreparedQuery<[string], unknown>(1, (db, rows) =>
  db
    .insertInto('nodeLogs')
    .columns(['upgradeId', 'nodeTaskId', 'at', 'line', 'bytes', 'tail'])
    .expression(
      sql`select json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]') from json_each(${rows}) order by key`,
    ),
);

/** The line a log read shows where lines were dropped. */
export function logMarker(droppedBytes: number): string {
  return `… ${droppedBytes} bytes of log were dropped here (the log of a task keeps its first ${LOG_HEAD_BYTES / 1024} KiB and its last ${LOG_TAIL_BYTES / 1024} KiB) …`;
}

/** A log row's size as the log read serves it: `<at> <line>\n` in UTF-8. */
function servedBytes(at: string, line: string): number {
  return Buffer.byteLength(at, 'utf8') + Buffer.byteLength(line, 'utf8') + 2;
}

interface LogSizes {
  head: number;
  tail: number;
  dropped: number;
}

/** Where a log read stopped: the part (0 head, 1 tail) and id of its last row. */
export interface LogCursor {
  tail: number;
  id: number;
}

export interface LogLine extends LogCursor {
  at: string;
  line: string;
}

/** A line of a node task's log, as the engine and the agent hub hand it over. */
export interface NewLogLine {
  upgradeId: string;
  nodeTaskId: string;
  at: string;
  line: string;
}

/**
 * The node tasks' logs, each bounded to its head and tail (see `append`). They are kept
 * apart from the events: a log is read page by page for one task, never streamed.
 */
export class NodeLogRepository {
  constructor(private readonly scope: Scope) {}

  private get db() {
    return this.scope.db;
  }

  /**
   * Appends log lines of many node tasks (one transaction, one insert per 500 rows),
   * keeping each task's log bounded: its first `LOG_HEAD_BYTES` (the head: how the task
   * started) and its last `LOG_TAIL_BYTES` (the tail: how it ended), sizes counted as
   * served (`<at> <line>\n`). Once the head is full every line goes to the tail, and
   * the oldest tail lines make room for the new ones; what was dropped between the two
   * is counted, and the log read shows a marker there (`logMarker`). The sizes are kept
   * per task in the table of log sizes, so an append reads and writes one small row per
   * task and deletes about as many old lines as it adds, never summing the log. Lines of
   * a task that no longer exists are dropped.
   */
  async append(rows: NewLogLine[]): Promise<void> {
    if (rows.length === 0) return;
    const byTask = new Map<string, NewLogLine[]>();
    for (const row of rows) {
      let list = byTask.get(row.nodeTaskId);
      if (!list) byTask.set(row.nodeTaskId, (list = []));
      list.push(row);
    }
    // Sorted, so that two appends lock the same tasks' sizes in the same order.
    const taskIds = [...byTask.keys()].sort();
    await this.scope.transaction((scope) => new NodeLogRepository(scope).appendIn(byTask, taskIds));
  }

  private async appendIn(byTask: Map<string, NewLogLine[]>, taskIds: string[]): Promise<void> {
    const inProcess = this.scope.adapter.statementsInProcess;
    const sizes = await this.lockSizes(taskIds);
    type Insert = { upgradeId: string; nodeTaskId: string; at: string; line: string; bytes: number; tail: number };
    const inserts: Insert[] = [];
    const resized: Array<[string, LogSizes]> = [];
    for (const taskId of taskIds) {
      const before = sizes.get(taskId);
      if (!before) continue;
      const after = { ...before };
      const tail: Insert[] = [];
      for (const r of byTask.get(taskId) ?? []) {
        const row = { upgradeId: r.upgradeId, nodeTaskId: taskId, at: r.at, line: r.line, bytes: servedBytes(r.at, r.line), tail: 0 };
        if (after.tail === 0 && after.dropped === 0 && tail.length === 0 && after.head + row.bytes <= LOG_HEAD_BYTES) {
          after.head += row.bytes;
          inserts.push(row);
        } else tail.push({ ...row, tail: 1 });
      }
      // New tail lines beyond the tail's size are dropped before they are written…
      let newBytes = tail.reduce((n, r) => n + r.bytes, 0);
      while (newBytes > LOG_TAIL_BYTES) {
        const oldest = tail.shift() as Insert;
        newBytes -= oldest.bytes;
        after.dropped += oldest.bytes;
      }
      // …and the oldest stored tail lines make room for the others.
      const excess = after.tail + newBytes - LOG_TAIL_BYTES;
      if (excess > 0) {
        const freed = await this.dropOldestTailLines(taskId, excess);
        after.tail -= freed;
        after.dropped += freed;
      }
      after.tail += newBytes;
      inserts.push(...tail);
      if (after.head !== before.head || after.tail !== before.tail || after.dropped !== before.dropped) resized.push([taskId, after]);
    }
    if (inProcess) {
      // Well-formed, as SQLite stores a bound string: JSON would carry a lone surrogate as
      // an escape that SQLite decodes to bytes that are not UTF-8.
      if (inserts.length > 0)
        await insertLogRows.execute(
          this.scope,
          JSON.stringify(inserts.map((r) => [r.upgradeId, r.nodeTaskId, r.at, r.line.toWellFormed(), r.bytes, r.tail])),
        );
      for (const [id, s] of resized) await setLogSizes.execute(this.scope, s.head, s.tail, s.dropped, id);
      return;
    }
    for (const slice of slices(inserts)) await this.db.insertInto('nodeLogs').values(slice).execute();
    for (const slice of slices(resized, 200)) {
      const pick = (column: 'headBytes' | 'tailBytes' | 'droppedBytes', value: (s: LogSizes) => number) =>
        sql<number>`case ${sql.ref('nodeTaskId')} ${sql.join(
          slice.map(([id, s]) => sql`when ${id} then cast(${value(s)} as bigint)`),
          sql` `,
        )} else ${sql.ref(column)} end`;
      await this.db
        .updateTable('nodeLogSizes')
        .set({
          headBytes: pick('headBytes', (s) => s.head),
          tailBytes: pick('tailBytes', (s) => s.tail),
          droppedBytes: pick('droppedBytes', (s) => s.dropped),
        })
        .where(
          'nodeTaskId',
          'in',
          slice.map(([id]) => id),
        )
        .execute();
    }
  }

  /**
   * The log sizes of these tasks (a row made for a task that has none yet), locked for
   * the append where the database locks rows; tasks that no longer exist are missing.
   */
  private async lockSizes(taskIds: string[]): Promise<Map<string, LogSizes>> {
    const sizes = new Map<string, LogSizes>();
    const keep = (r: { nodeTaskId: string; headBytes: unknown; tailBytes: unknown; droppedBytes: unknown }) =>
      sizes.set(r.nodeTaskId, { head: Number(r.headBytes), tail: Number(r.tailBytes), dropped: Number(r.droppedBytes) });
    if (this.scope.adapter.statementsInProcess) {
      const ids = JSON.stringify(taskIds);
      await ensureLogSizesOf.execute(this.scope, ids);
      for (const r of (await logSizesOf.execute(this.scope, ids)).rows as Array<Parameters<typeof keep>[0]>) keep(r);
      return sizes;
    }
    for (const slice of slices(taskIds)) {
      await this.db
        .insertInto('nodeLogSizes')
        .columns(['nodeTaskId'])
        .expression((eb) => eb.selectFrom('nodeTasks').select('id').where('id', 'in', slice))
        .onConflict((oc) => oc.column('nodeTaskId').doNothing())
        .execute();
      let query = this.db.selectFrom('nodeLogSizes').selectAll().where('nodeTaskId', 'in', slice).orderBy('nodeTaskId');
      if (this.scope.adapter.supportsSkipLocked) query = query.forUpdate();
      for (const r of await query.execute()) keep(r);
    }
    return sizes;
  }

  /** Deletes the oldest tail lines of a task until at least `bytes` are freed (or the tail is empty); returns the bytes freed. */
  private async dropOldestTailLines(nodeTaskId: string, bytes: number): Promise<number> {
    let freed = 0;
    let last: number | undefined;
    while (freed < bytes) {
      let query = this.db
        .selectFrom('nodeLogs')
        .select(['id', 'bytes'])
        .where('nodeTaskId', '=', nodeTaskId)
        .where('tail', '=', 1)
        .orderBy('id')
        .limit(1000);
      if (last !== undefined) query = query.where('id', '>', last);
      const rows = await query.execute();
      if (rows.length === 0) break;
      for (const row of rows) {
        freed += Number(row.bytes);
        last = row.id;
        if (freed >= bytes) break;
      }
    }
    if (last !== undefined) {
      await this.db.deleteFrom('nodeLogs').where('nodeTaskId', '=', nodeTaskId).where('tail', '=', 1).where('id', '<=', last).execute();
    }
    return freed;
  }

  /** How many bytes of a node task's log were dropped between its head and its tail (0: none, the log is whole). */
  async droppedBytes(nodeTaskId: string): Promise<number> {
    const row = await this.db.selectFrom('nodeLogSizes').select('droppedBytes').where('nodeTaskId', '=', nodeTaskId).executeTakeFirst();
    return Number(row?.droppedBytes ?? 0);
  }

  /**
   * One page of a node task's log in order (head, then tail), after `after` (the last
   * row of the previous page): a reader holds one page at a time, whatever the log's size.
   */
  async readPage(nodeTaskId: string, after: LogCursor | undefined, limit: number): Promise<LogLine[]> {
    let query = this.db
      .selectFrom('nodeLogs')
      .select(['id', 'at', 'line', 'tail'])
      .where('nodeTaskId', '=', nodeTaskId)
      .orderBy('tail')
      .orderBy('id')
      .limit(limit);
    if (after) {
      const { tail, id } = after;
      query = query.where((eb) => eb.or([eb('tail', '>', tail), eb.and([eb('tail', '=', tail), eb('id', '>', id)])]));
    }
    const rows = await query.execute();
    return rows.map((r) => ({ id: Number(r.id), at: r.at, line: r.line, tail: Number(r.tail) }));
  }

  /** A node task's whole log (without the marker), page by page: at most the bound (1 MiB) for logs written since migration 8. */
  async read(nodeTaskId: string): Promise<Array<{ at: string; line: string }>> {
    const out: Array<{ at: string; line: string }> = [];
    let after: LogCursor | undefined;
    for (;;) {
      const page = await this.readPage(nodeTaskId, after, 1000);
      for (const { at, line } of page) out.push({ at, line });
      const last = page[page.length - 1];
      if (!last || page.length < 1000) return out;
      after = last;
    }
  }
}
