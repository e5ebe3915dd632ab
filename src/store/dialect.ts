import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

/**
 * Everything that differs between SQLite and PostgreSQL lives here, behind capability
 * flags; repositories and the engine never test a dialect's name.
 */
export interface StoreAdapter {
  readonly db: Kysely<Database>;
  /** Column type of an auto-incrementing 64-bit key. */
  readonly autoIncrementType: 'integer' | 'bigserial';
  /** `FOR UPDATE SKIP LOCKED` is available for claiming work. */
  readonly supportsSkipLocked: boolean;
  /**
   * The collation a text column needs to compare by bytes (keys built to sort that way,
   * such as nodes' natural-sort key), or undefined when text already does (SQLite's BINARY).
   */
  readonly bytewiseCollation: string | undefined;
  /** Runs `fn` while holding the database-wide migration lock. */
  withMigrationLock<T>(fn: () => Promise<T>): Promise<T>;
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

export function openSqlite(file: string): StoreAdapter {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const database = new BetterSqlite3(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return {
    db,
    autoIncrementType: 'integer',
    supportsSkipLocked: false,
    bytewiseCollation: undefined,
    // One process opens a SQLite file for writing at a time; BEGIN IMMEDIATE in the
    // migration transaction serialises two that start together.
    withMigrationLock: (fn) => fn(),
    isUniqueViolation: (error) =>
      typeof error === 'object' &&
      error !== null &&
      'code' in error &&
      (error.code === 'SQLITE_CONSTRAINT_UNIQUE' || error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'),
    description: `sqlite ${file}`,
    close: () => db.destroy(),
  };
}

const MIGRATION_LOCK_KEY = 74_829_113;

export function openPostgres(url: string, options: { schema?: string; max?: number } = {}): StoreAdapter {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // An idle client that loses its connection (PostgreSQL restarted) must not crash the
  // process; the pool replaces it.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const safe = new URL(url);
  safe.password = '';
  safe.username = safe.username ? '***' : '';
  return {
    db,
    autoIncrementType: 'bigserial',
    supportsSkipLocked: true,
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
