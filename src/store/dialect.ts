import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import {
  Kysely,
  PostgresDialect,
  PostgresQueryCompiler,
  type QueryCompiler,
  type RawBuilder,
  SqliteDialect,
  type SqliteDatabase,
  SqliteQueryCompiler,
  sql,
} from 'kysely';
import pg from 'pg';
import { CamelCaseRows, camelCaseCompiler } from './camel-case.js';
import type { Database } from './schema.js';

/**
 * Everything that differs between SQLite and PostgreSQL lives here, behind capability
 * flags; repositories and the engine never test a dialect's name.
 */
export interface StoreAdapter {
  /**
   * The database in camelCase: `clusterId` is written as the column `cluster_id` and read
   * back as `clusterId` (camel-case.ts), so no snake_case name leaves `src/store/`.
   */
  readonly db: Kysely<Database>;
  /**
   * The database's clock, `offsetMs` from now, as ISO-8601 UTC text of the shape
   * JavaScript's `toISOString()` writes (`2026-05-01T12:00:00.000Z`), so that it compares
   * with the timestamps the repositories store. Leases are taken and renewed by it
   * (leases.ts): replicas whose own clocks disagree still agree on when a lease ends.
   */
  clockIso(offsetMs?: number): RawBuilder<string>;
  /** Column type of an auto-incrementing 64-bit key. */
  readonly autoIncrementType: 'integer' | 'bigserial';
  /** `FOR UPDATE SKIP LOCKED` is available for claiming work. */
  readonly supportsSkipLocked: boolean;
  /**
   * `WITH` may hold `INSERT … RETURNING` (PostgreSQL's data-modifying CTEs), so that rows
   * written together and what follows from them (an event, its webhook deliveries and the
   * replicas' notification) go in one statement: one round trip instead of one each
   * (docs/design.md §8). SQLite has no such thing.
   */
  readonly dataModifyingCtes: boolean;
  /**
   * The collation a text column needs to compare by bytes (keys built to sort that way,
   * such as nodes' natural-sort key), or undefined when text already does (SQLite's BINARY).
   */
  readonly bytewiseCollation: string | undefined;
  /** Runs `fn` while holding the database-wide migration lock. */
  withMigrationLock<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Several transactions write at once (PostgreSQL), so that a row every writer updates
   * would serialise them, and deadlock those that update several such rows in different
   * orders; false where writes are serialised already (SQLite). Summaries kept on write
   * (nodes' version groups, migration 13) are then written per transaction and folded later.
   */
  readonly concurrentWriters: boolean;
  /**
   * Statements run in this process (SQLite): a statement costs no round trip, so many short
   * ones of one text, compiled once and kept, cost less than one long one compiled anew for
   * its row count. False where each statement is a round trip (PostgreSQL).
   */
  readonly statementsInProcess: boolean;
  /**
   * A lock on `key` held until the end of the transaction of `db`, for work that the
   * replicas take turns at (PostgreSQL advisory locks); `wait: false` answers false at once
   * when another holds it. Where one process owns the database, always true at once.
   */
  transactionLock(db: Kysely<any>, key: number, options: { wait: boolean }): Promise<boolean>;
  isUniqueViolation(error: unknown): boolean;
  /**
   * Cross-process notifications (PostgreSQL LISTEN/NOTIFY): `listen` calls back with each
   * payload on `channel` and reconnects by itself; undefined where there is no such thing
   * (SQLite: one process owns the file).
   */
  listen?(channel: string, onPayload: (payload: string) => void, onError: (error: unknown) => void): () => Promise<void>;
  /** A short description for logs, without credentials. */
  readonly description: string;
  close(): Promise<void>;
}

/** SQLite, its SQL written in the database's snake_case names (camel-case.ts). */
class CamelCaseSqliteDialect extends SqliteDialect {
  override createQueryCompiler(): QueryCompiler {
    return new SqliteCamelCaseCompiler();
  }
}
class SqliteCamelCaseCompiler extends camelCaseCompiler(SqliteQueryCompiler) {}

/** PostgreSQL, its SQL written in the database's snake_case names (camel-case.ts). */
class CamelCasePostgresDialect extends PostgresDialect {
  override createQueryCompiler(): QueryCompiler {
    return new PostgresCamelCaseCompiler();
  }
}
class PostgresCamelCaseCompiler extends camelCaseCompiler(PostgresQueryCompiler) {}

/** How many compiled statements a SQLite connection keeps (least recently used go first). */
export const SQLITE_STATEMENT_CACHE_SIZE = 256;

/**
 * The longest statement text kept compiled. A compiled statement's size grows with its
 * text: an insert of 500 rows of 14 columns holds some 0.7 MiB, an `in` list of 500 ids
 * some 40 KiB. Long texts are the multi-row inserts, whose row counts vary and whose
 * compiling is small beside their work, so keeping them would cost memory for little;
 * what is kept stays within a few MiB.
 */
export const SQLITE_STATEMENT_CACHE_MAX_TEXT = 2048;

/**
 * better-sqlite3 compiles SQL into a statement on every `prepare`, and Kysely prepares each
 * query it runs; the repositories run the same few hundred statement texts over and over.
 * This keeps the compiled statements by their text, least recently used out first when
 * more than `capacity` (texts that differ by the length of an `in (…)` list are distinct
 * statements, hence the bound), and texts longer than `maxText` not at all. SQLite
 * re-prepares a kept statement by itself when the schema changes. A statement still
 * iterating (a streamed query) is busy and cannot be run again meanwhile: a fresh one is
 * prepared for that call instead.
 */
export function cachingStatements(
  database: BetterSqlite3.Database,
  capacity = SQLITE_STATEMENT_CACHE_SIZE,
  maxText = SQLITE_STATEMENT_CACHE_MAX_TEXT,
): SqliteDatabase & { readonly size: number } {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    get size() {
      return cache.size;
    },
    prepare(text: string) {
      const kept = cache.get(text);
      if (kept && !kept.busy) {
        // Map keeps insertion order: moving the entry to the end marks it recently used.
        cache.delete(text);
        cache.set(text, kept);
        return kept;
      }
      const statement = database.prepare(text);
      if (kept || text.length > maxText) return statement;
      cache.set(text, statement);
      if (cache.size > capacity) cache.delete(cache.keys().next().value as string);
      return statement;
    },
    close() {
      cache.clear();
      database.close();
    },
  };
}

const require = createRequire(import.meta.url);

/** How often the checkpointer thread copies the write-ahead log into the database file. */
export const SQLITE_CHECKPOINT_INTERVAL_MS = 250;
/** How often it looks while the log has had nothing new to copy. */
export const SQLITE_IDLE_CHECKPOINT_INTERVAL_MS = 1000;

/** The checkpointer thread's code (CommonJS, run with `eval`): its own connection, a passive checkpoint on a timer. */
const CHECKPOINTER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
// On whole multiples of the interval, so that an idle process wakes once for all its
// timers; a second apart while the log has nothing new.
let timer;
let lastLog = -1;
const next = (ms) => (timer = setTimeout(checkpoint, ms - (Date.now() % ms)));
const checkpoint = () => {
  const [done] = db.pragma('wal_checkpoint(PASSIVE)');
  const idle = done.log === lastLog && done.checkpointed === done.log;
  lastLog = done.log;
  next(idle ? workerData.idleIntervalMs : workerData.intervalMs);
};
next(workerData.intervalMs);
parentPort.once('message', () => {
  clearTimeout(timer);
  db.pragma('wal_checkpoint(PASSIVE)');
  db.close();
  parentPort.close();
});
`;

/**
 * Copies the write-ahead log into the database file from a thread of its own. SQLite does
 * it by itself in the connection that commits once the log passes 1,000 pages, and that
 * commit then writes and syncs the database file on the event loop's thread: measured
 * under the fleet part, half of the time spent in commits, during which no request was
 * answered. The main connection leaves checkpoints to this thread (`wal_autocheckpoint =
 * 0`); a passive checkpoint never blocks a writer, and a crash during one loses nothing
 * (the log stays valid until it is copied). Should the thread die, the main connection
 * checkpoints by itself again (docs/design.md §8).
 */
function startCheckpointer(file: string, database: BetterSqlite3.Database): () => Promise<void> {
  database.pragma('wal_autocheckpoint = 0');
  let stopping = false;
  const worker = new Worker(CHECKPOINTER_SOURCE, {
    eval: true,
    workerData: {
      module: require.resolve('better-sqlite3'),
      file,
      intervalMs: SQLITE_CHECKPOINT_INTERVAL_MS,
      idleIntervalMs: SQLITE_IDLE_CHECKPOINT_INTERVAL_MS,
    },
  });
  worker.unref();
  const fallBack = () => {
    if (!stopping && database.open) database.pragma('wal_autocheckpoint = 1000');
  };
  worker.on('error', fallBack);
  worker.on('exit', fallBack);
  return async () => {
    stopping = true;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('stop');
    await exited;
  };
}

export function openSqlite(file: string): StoreAdapter {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const database = new BetterSqlite3(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  const stopCheckpointer = file === ':memory:' ? undefined : startCheckpointer(file, database);
  const db = new Kysely<Database>({
    dialect: new CamelCaseSqliteDialect({ database: cachingStatements(database) }),
    plugins: [new CamelCaseRows()],
  });
  return {
    db,
    // One process owns a SQLite file, so the database's clock is this process's clock;
    // SQLite's own `'now'` reads it (with milliseconds) inside the statement. `'now'` is
    // the same for every use within one statement.
    clockIso: (offsetMs = 0) => sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`${offsetMs / 1000} seconds`})`,
    autoIncrementType: 'integer',
    supportsSkipLocked: false,
    dataModifyingCtes: false,
    bytewiseCollation: undefined,
    // One process opens a SQLite file for writing at a time; BEGIN IMMEDIATE in the
    // migration transaction serialises two that start together.
    withMigrationLock: (fn) => fn(),
    concurrentWriters: false,
    statementsInProcess: true,
    // Write transactions are serialised by SQLite itself.
    transactionLock: async () => true,
    isUniqueViolation: (error) =>
      typeof error === 'object' &&
      error !== null &&
      'code' in error &&
      (error.code === 'SQLITE_CONSTRAINT_UNIQUE' || error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'),
    description: `sqlite ${file}`,
    close: async () => {
      await stopCheckpointer?.();
      await db.destroy();
    },
  };
}

const MIGRATION_LOCK_KEY = 74_829_113;

/**
 * PostgreSQL statements are sent unnamed (extended protocol, parameters bound by the
 * server): each is parsed and planned on every run. Named prepared statements are not
 * used: they live per pooled connection with no bound in pg (each distinct text, as `in
 * (…)` lists of every length, would stay on the server until the connection closes), and
 * a plan kept across a migration run by another replica fails with "cached plan must not
 * change result type". The repositories' statements are short and indexed, so a parse
 * costs little next to the round trip; the round trips are what they keep few (one
 * statement per 500 rows, compare-and-set with RETURNING).
 */
export function openPostgres(url: string, options: { schema?: string; max?: number } = {}): StoreAdapter {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // An idle client that loses its connection (PostgreSQL restarted) must not crash the
  // process; the pool replaces it.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new CamelCasePostgresDialect({ pool }), plugins: [new CamelCaseRows()] });
  const safe = new URL(url);
  safe.password = '';
  safe.username = safe.username ? '***' : '';
  return {
    db,
    // The server's clock at the start of the statement (`statement_timestamp()`: not the
    // start of a long transaction, and one value for the whole statement).
    clockIso: (offsetMs = 0) =>
      sql<string>`to_char((statement_timestamp() + interval '1 millisecond' * ${offsetMs}::float8) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
    autoIncrementType: 'bigserial',
    supportsSkipLocked: true,
    dataModifyingCtes: true,
    // The database's own collation (en_US.UTF-8, ICU, …) may ignore punctuation or case.
    bytewiseCollation: '"C"',
    async withMigrationLock(fn) {
      return db.connection().execute(async (conn) => {
        await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(conn);
        try {
          return await fn();
        } finally {
          await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn);
        }
      });
    },
    concurrentWriters: true,
    statementsInProcess: false,
    async transactionLock(trx, key, { wait }) {
      if (wait) {
        await sql`select pg_advisory_xact_lock(${key})`.execute(trx);
        return true;
      }
      const { rows } = await sql<{ got: boolean }>`select pg_try_advisory_xact_lock(${key}) as got`.execute(trx);
      return rows[0]?.got === true;
    },
    isUniqueViolation: (error) => typeof error === 'object' && error !== null && 'code' in error && error.code === '23505',
    listen(channel, onPayload, onError) {
      let client: pg.Client | undefined;
      let stopped = false;
      let retry: NodeJS.Timeout | undefined;
      const again = () => {
        if (!stopped) retry = setTimeout(() => void connect(), 1000);
      };
      const connect = async () => {
        if (stopped) return;
        const next = new pg.Client({ connectionString: url, ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}) });
        next.on('notification', (message) => {
          if (message.channel === channel && message.payload) onPayload(message.payload);
        });
        next.on('error', (error) => {
          onError(error);
          if (client === next) client = undefined;
          void next.end().catch(() => undefined);
          again();
        });
        try {
          await next.connect();
          await next.query(`LISTEN ${channel}`);
          client = next;
        } catch (error) {
          onError(error);
          void next.end().catch(() => undefined);
          again();
        }
      };
      void connect();
      return async () => {
        stopped = true;
        if (retry) clearTimeout(retry);
        await client?.end().catch(() => undefined);
      };
    },
    description: `postgres ${safe.host}${safe.pathname}${options.schema ? ` schema ${options.schema}` : ''}`,
    close: () => db.destroy(),
  };
}

/** `postgres://…` or `postgresql://…` opens PostgreSQL; anything else is a SQLite file path. */
export function openStoreAdapter(database: string, options: { schema?: string } = {}): StoreAdapter {
  if (/^postgres(ql)?:\/\//.test(database)) return openPostgres(database, options);
  return openSqlite(database.replace(/^sqlite:/, ''));
}
