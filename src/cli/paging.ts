import type { Page } from '../api/index.js';
import { CliError, ExitCode } from './errors.js';
import type { ApiClient, Query } from './http.js';

/**
 * The largest page the server gives (docs/design.md §7: `?limit=` up to 5,000): what the CLI asks for
 * when it needs a whole list at once, so a big list costs few round trips.
 */
export const LARGEST_PAGE = 5000;

/**
 * Every page of a paged list (a cluster's nodes, an upgrade's nodes), in order, from the
 * first: follows `nextCursor` until it is null. A server older than paging answers the
 * whole list without `nextCursor`, which ends the walk after that one page.
 */
export async function* pagesOf<T>(client: ApiClient, path: string, query: Query = {}): AsyncGenerator<T[]> {
  let cursor: string | undefined;
  for (;;) {
    const page = await client.get<Page<T>>(path, { ...query, cursor });
    yield page.items;
    const next = page.nextCursor ?? null;
    if (next === null) return;
    if (next === cursor) {
      throw new CliError(ExitCode.apiError, `the server gave the same page of ${path} twice; stopped rather than loop`);
    }
    cursor = next;
  }
}

/** A whole paged list, read in the largest pages. */
export async function allItems<T>(client: ApiClient, path: string): Promise<T[]> {
  const items: T[] = [];
  for await (const page of pagesOf<T>(client, path, { limit: LARGEST_PAGE })) items.push(...page);
  return items;
}
