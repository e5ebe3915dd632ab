import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from '../api/index.js';
import { ErrorCode, UpshiftError } from '../domain/errors.js';

/**
 * Paging of the lists that grow with the fleet (the contract is in api/common.ts). A
 * response is never larger than its page, whatever the size of the cluster, so that a few
 * viewers of a 100,000-node cluster cannot take the server's memory.
 *
 * A cursor is opaque to clients: base64url of `{l, s, a}`, the list it belongs to, the
 * cluster or upgrade it was given for, and the sort key of the last row it covered. The
 * server checks all three, so a cursor of another list is refused rather than misread.
 */

/** The lists that are paged, and the type of the key each is ordered by. */
interface PagedLists {
  /** A cluster's nodes, by the natural-sort key of their names. */
  nodes: string;
  /** An upgrade's node tasks, by their position in the upgrade's order. */
  tasks: number;
}

const keyIsValid: { [L in keyof PagedLists]: (key: unknown) => key is PagedLists[L] } = {
  nodes: (key): key is string => typeof key === 'string' && key.length > 0 && key.length <= 4096,
  tasks: (key): key is number => typeof key === 'number' && Number.isSafeInteger(key) && key >= 0,
};

/** `?limit=`: absent is the default; not a whole number is malformed (400); outside 1…5,000 is refused (422). */
export function pageLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PAGE_LIMIT;
  if (!/^[0-9]{1,12}$/.test(text)) {
    throw new UpshiftError(ErrorCode.BAD_REQUEST, `limit must be a whole number from 1 to ${MAX_PAGE_LIMIT}`);
  }
  const limit = Number(text);
  if (limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new UpshiftError(
      ErrorCode.VALIDATION_FAILED,
      `limit must be from 1 to ${MAX_PAGE_LIMIT}; ask for the rows after a page with its nextCursor`,
    );
  }
  return limit;
}

export function encodeCursor<L extends keyof PagedLists>(list: L, scope: string, key: PagedLists[L]): string {
  return Buffer.from(JSON.stringify({ l: list, s: scope, a: key }), 'utf8').toString('base64url');
}

const badCursor = () =>
  new UpshiftError(
    ErrorCode.BAD_REQUEST,
    'cursor is not one this list gave out: pass the nextCursor of the previous page as it is, or leave cursor out to start at the first page',
  );

/** The sort key a `?cursor=` of this list and scope carries; null without one (the first page). */
export function decodeCursor<L extends keyof PagedLists>(list: L, scope: string, text: string | undefined): PagedLists[L] | null {
  if (text === undefined) return null;
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(text)) throw badCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw badCursor();
  }
  if (typeof parsed !== 'object' || parsed === null) throw badCursor();
  const { l, s, a } = parsed as Record<string, unknown>;
  if (l !== list || s !== scope || !keyIsValid[list](a)) throw badCursor();
  return a;
}

/** `nextCursor` of a page whose store read said which key comes next (null: it was the last page). */
export function nextCursor<L extends keyof PagedLists>(list: L, scope: string, nextAfter: PagedLists[L] | null): string | null {
  return nextAfter === null ? null : encodeCursor(list, scope, nextAfter);
}
