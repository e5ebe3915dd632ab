import { type CompiledQuery, type Compilable, type QueryResult, createQueryId } from 'kysely';
import type { StoreAdapter } from './dialect.js';
import type { Db, Scope } from './scope.js';

/** Stands for the i-th parameter while a prepared query is built (a value no caller passes). */
const placeholder = (i: number) => `\u0000upshift-parameter-${i}\u0000`;

/**
 * A query built and compiled to SQL once, run many times with other parameters: for the
 * statements every agent request runs (docs/design.md §9), where building Kysely's
 * operation tree and compiling it cost more CPU than the statement itself (and SQLite's
 * statement cache, keyed by the SQL text, then finds the very same string at once).
 *
 * `build` receives one placeholder per parameter and must use each as a bound value
 * (never in SQL text); a placeholder may be bound more than once, and other values the
 * query binds are its constants. Dialects differ in
 * their SQL, so the query is compiled once per database (adapter) it runs on, and run on
 * the scope's connection: the pool, or a transaction's.
 */
export class PreparedQuery<P extends readonly unknown[], R> {
  private readonly compiled = new WeakMap<StoreAdapter, { query: CompiledQuery<R>; positions: number[] }>();

  constructor(
    private readonly arity: P['length'],
    private readonly build: (db: Db, ...parameters: string[]) => Compilable<R>,
  ) {}

  private compile(adapter: StoreAdapter, db: Db): { query: CompiledQuery<R>; positions: number[] } {
    let entry = this.compiled.get(adapter);
    if (!entry) {
      const names = Array.from({ length: this.arity }, (_, i) => placeholder(i));
      const query = this.build(db, ...names).compile();
      // Each bound value is a parameter's placeholder or a constant of the query itself.
      const positions = query.parameters.map((p) => names.indexOf(p as string));
      entry = { query, positions };
      this.compiled.set(adapter, entry);
    }
    return entry;
  }

  /** Runs the query in `scope` (on the pool, or in its transaction) with these parameters. */
  execute(scope: Scope, ...parameters: P): Promise<QueryResult<R>> {
    const { db, adapter } = scope;
    const { query, positions } = this.compile(adapter, db);
    const bound = positions.map((at, i) => (at < 0 ? query.parameters[i] : parameters[at]));
    return db.executeQuery<R>({ ...query, queryId: createQueryId(), parameters: bound });
  }
}
