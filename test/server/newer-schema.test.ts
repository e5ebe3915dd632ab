import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION } from '../../src/store/migrations/index.js';
import { dialects, freshPgDatabase } from '../support/databases.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * Upgrading replicas one at a time (docs/install.md): a replica that meets a database a
 * newer Upshift has migrated refuses to start, says so, exits 3 (which the systemd unit
 * does not restart: only upgrading it helps) and leaves the database as it was.
 */
for (const dialect of dialects) {
  describe(`a server on a schema newer than it knows, on ${dialect}`, () => {
    let server: ServerProcess | undefined;
    let drop: (() => Promise<void>) | undefined;
    afterAll(async () => {
      await server?.stop();
      server?.cleanup();
      await drop?.();
    });

    /** Runs SQL on the server's database while the server is stopped. */
    const sqlOn = async (database: string | undefined, dataDir: string, statement: string): Promise<unknown[]> => {
      if (database) {
        const client = new pg.Client({ connectionString: database });
        await client.connect();
        try {
          return (await client.query(statement)).rows;
        } finally {
          await client.end();
        }
      }
      const db = new Database(join(dataDir, 'upshift.db'));
      try {
        const prepared = db.prepare(statement);
        return prepared.reader ? prepared.all() : (prepared.run(), []);
      } finally {
        db.close();
      }
    };

    it('refuses to start with a message saying so, and changes nothing', async () => {
      let database: string | undefined;
      if (dialect === 'postgres') {
        const fresh = await freshPgDatabase();
        database = fresh.url;
        drop = fresh.drop;
      }
      server = await startServerProcess(database ? { database } : {});
      const created = await server.api('/api/v1/clusters', {
        body: { name: 'kept', kind: 'simulated', simulation: { nodes: 3, upgradeSeconds: 1 } },
      });
      expect(created.status).toBe(201);
      await server.stop();

      const future = LATEST_SCHEMA_VERSION + 1;
      await sqlOn(
        database,
        server.dataDir,
        `insert into schema_migrations (version, name, applied_at) values (${future}, 'from a newer Upshift', 'later')`,
      );
      const versionsBefore = await sqlOn(database, server.dataDir, 'select version from schema_migrations order by version');

      const refused = await server.restart().then(
        () => undefined,
        (error: Error) => error.message,
      );
      expect(refused).toBe(
        `server exited with 3: upshift server: cannot start: the database schema is at version ${future}, ` +
          `newer than this Upshift understands (${LATEST_SCHEMA_VERSION}): run a newer Upshift\n`,
      );
      expect(await sqlOn(database, server.dataDir, 'select version from schema_migrations order by version')).toEqual(versionsBefore);

      // The Upshift that knows that schema (here: the row taken away again) finds every row.
      await sqlOn(database, server.dataDir, `delete from schema_migrations where version = ${future}`);
      await server.restart();
      const kept = await server.api('/api/v1/clusters/kept');
      expect(kept.status).toBe(200);
      expect(kept.body.nodeCount).toBe(3);
    });
  });
}
