import { type ExpressionBuilder, type RawBuilder, sql } from 'kysely';
import { changed } from './rows.js';
import type { Database } from './schema.js';
import type { Scope } from './scope.js';

/**
 * Which replica drives which upgrade: a lease on the upgrade's row, `(leaseOwner,
 * leaseExpiresAt)`, taken and renewed by `claim` every third of its time to live.
 *
 * Expiry is by the database's clock, never a replica's: `claim` computes both "now" and
 * the new expiry inside its statements (`adapter.clockIso`: PostgreSQL's
 * `statement_timestamp()`; on SQLite, which one process owns, SQLite's `'now'`, the
 * process's own clock). A replica whose clock runs behind therefore takes a dead
 * replica's upgrades over on time, and one whose clock runs ahead never steals a live
 * replica's lease. The expiry is stored as ISO-8601 UTC text of one fixed shape
 * (`YYYY-MM-DDTHH:MM:SS.sssZ`, as every timestamp of the schema), which orders as time
 * when compared by bytes; the comparison names the bytewise collation where the
 * database's own might not be (PostgreSQL). Replicas of an earlier version, which write
 * the same shape from their own clocks, keep working beside these during a rolling
 * replacement, with the clock caveat they always had.
 */
export class LeaseRepository {
  constructor(private readonly scope: Scope) {}

  private get db() {
    return this.scope.db;
  }

  /** The lease of `owner`, or one that is free or ended by the database's clock `now`. */
  private claimable(owner: string, now: RawBuilder<string>) {
    const collation = this.scope.adapter.bytewiseCollation;
    const ended = collation
      ? sql<boolean>`${sql.ref('leaseExpiresAt')} < ${now} collate ${sql.raw(collation)}`
      : sql<boolean>`${sql.ref('leaseExpiresAt')} < ${now}`;
    return (eb: ExpressionBuilder<Database, 'upgrades'>) => eb.or([eb('leaseOwner', 'is', null), eb('leaseOwner', '=', owner), ended]);
  }

  /**
   * Claims (or renews) upgrades for `owner` for `ttlMs` from the database's now: every
   * active upgrade, and every finished one that still has a running node, whose lease is
   * free, ended or already this owner's. Each claim is a conditional UPDATE of one row
   * (one row at a time, so that two replicas never wait on each other's locks in opposite
   * orders), so two replicas never hold the same upgrade. `only` restricts it to one
   * upgrade. Returns the upgrades `owner` holds now.
   */
  async claim(owner: string, ttlMs: number, only?: string): Promise<string[]> {
    const { adapter } = this.scope;
    let query = this.db
      .selectFrom('upgrades')
      .select('id')
      .where((eb) =>
        eb.or([
          eb('state', 'not in', ['Completed', 'Canceled']),
          eb('id', 'in', eb.selectFrom('nodeTasks').select('upgradeId').where('state', '=', 'running')),
        ]),
      )
      .where(this.claimable(owner, adapter.clockIso()));
    if (only) query = query.where('id', '=', only);
    const candidates = await query.execute();
    const claimed: string[] = [];
    for (const { id } of candidates) {
      const result = await this.db
        .updateTable('upgrades')
        .set({ leaseOwner: owner, leaseExpiresAt: adapter.clockIso(ttlMs) })
        .where('id', '=', id)
        .where(this.claimable(owner, adapter.clockIso()))
        .executeTakeFirst();
      if (changed(result) === 1) claimed.push(id);
    }
    return claimed;
  }

  /** Lets go of every lease of `owner` (a graceful stop): another replica takes over at once. */
  async release(owner: string): Promise<void> {
    await this.db.updateTable('upgrades').set({ leaseOwner: null, leaseExpiresAt: null }).where('leaseOwner', '=', owner).execute();
  }

  /** The replica that holds (or last held, until another claims it) the upgrade's lease. */
  async ownerOf(upgradeId: string): Promise<string | null> {
    const row = await this.db.selectFrom('upgrades').select('leaseOwner').where('id', '=', upgradeId).executeTakeFirst();
    return row?.leaseOwner ?? null;
  }
}
