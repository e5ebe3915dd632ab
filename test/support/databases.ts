import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * The store and engine suites run on both dialects. SQLite always; PostgreSQL from
 * `UPSHIFT_TEST_PG_URL` (scripts/test.sh starts a private one). Under CI=true a missing
 * PostgreSQL is a failure, not a skip.
 */
export const pgUrl = process.env['UPSHIFT_TEST_PG_URL'];

if (!pgUrl && process.env['CI'] === 'true') {
  throw new Error('UPSHIFT_TEST_PG_URL is not set: CI must run the PostgreSQL suites (scripts/test.sh starts PostgreSQL)');
}

export type DialectName = 'sqlite' | 'postgres';
export const dialects: DialectName[] = pgUrl ? ['sqlite', 'postgres'] : ['sqlite'];

/**
 * A fresh PostgreSQL database of its own for one test file; returns its URL and a dropper.
 * `icuLocale` makes its default collation an ICU one (`en-US`: `B` sorts after `a`, and
 * punctuation is ignored at first), under which text does not compare by bytes.
 */
export async function freshPgDatabase(options: { icuLocale?: 'en-US' } = {}): Promise<{ url: string; drop(): Promise<void> }> {
  if (!pgUrl) throw new Error('no PostgreSQL');
  const name = `upshift_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(
    options.icuLocale
      ? `create database ${name} template template0 locale_provider icu icu_locale '${options.icuLocale}' locale 'C.UTF-8'`
      : `create database ${name}`,
  );
  await admin.end();
  const url = new URL(pgUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: pgUrl });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}
