import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { Page } from '@upshift/api';
import type { PageRequest } from '../api/client';
import type { LiveOptions } from './live';
import { useSession } from './session';

/** Rows of a page asked for while the user scrolls (the server's default). */
export const PAGE_SIZE = 500;
/** The server's largest page: for jumps far ahead, and for reading a whole list (a filter is on). */
const LARGEST_PAGE = 5000;
/** Rows loaded beyond the end of the view, so that scrolling rarely meets a row still loading. */
const READ_AHEAD = 200;
/** After a failed request, the next try waits this long, doubling up to a minute. */
const RETRY_MS = 3000;
const MAX_RETRY_MS = 60_000;

export type LoadPage<T> = (page: PageRequest, signal: AbortSignal) => Promise<Page<T>>;

/** A page as loaded: where it started, how many rows it asked for, and whether an event has outdated it since. */
interface LoadedPage<T> {
  cursor: string | null;
  limit: number;
  items: T[];
  next: string | null;
  stale: boolean;
}

/** Load the page after the last one; or read again `count` pages from `index` on, as one request. */
type Job =
  | { kind: 'append'; cursor: string | null; limit: number }
  | { kind: 'refresh'; index: number; count: number; cursor: string | null; limit: number };

export interface PagedResource<T> {
  /** The rows loaded so far, in the server's order. */
  rows: readonly T[];
  /** The last page is loaded: `rows` is the whole list. */
  complete: boolean;
  /** Nothing loaded yet (the first page is on its way). */
  loading: boolean;
  error: unknown;
  /** Re-read the pages in view now (after an action of this user). */
  reload: () => void;
  /**
   * Rows `from` to `to` (indexes into `rows`; `to` may lie past the end) are in view:
   * load the pages up to there and re-read the outdated pages among them. `all` loads
   * every page (a filter is on, and it must see every row).
   */
  view: (from: number, to: number, all?: boolean) => void;
}

/**
 * A list that grows with the fleet, loaded a page at a time as the user scrolls, and
 * kept fresh from the live stream. The first page is asked for at once; further pages
 * when the view comes within READ_AHEAD rows of the end of what is loaded (in one larger
 * page for a jump far ahead, such as End on a 100,000-row table). A relevant event marks
 * every loaded page outdated (debounced, as `useLiveResource` does) and the pages in view
 * are read again at once (all of them while a filter is on); the others when they scroll
 * into view. Neighbouring pages are read again as one request of up to 5,000 rows. Pages
 * read again whose next cursor changed (a node joined or left) drop the pages after them,
 * which load again as needed. One request at a time; pages follow the server's cursors, so rows are never
 * shown twice or skipped.
 */
export function usePagedLiveResource<T>(load: LoadPage<T>, key: string, options: LiveOptions): PagedResource<T> {
  const { stream } = useSession();
  const [snapshot, setSnapshot] = useState<{ key: string; pages: LoadedPage<T>[]; error: unknown }>({
    key,
    pages: [],
    error: undefined,
  });
  const loadRef = useRef(load);
  loadRef.current = load;
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const control = useRef<{ view: (from: number, to: number, all: boolean) => void; reload: () => void }>({
    view: () => {},
    reload: () => {},
  });

  useEffect(() => {
    let disposed = false;
    let pages: LoadedPage<T>[] = [];
    let wanted = { from: 0, to: 0, all: false };
    let inFlight: AbortController | null = null;
    let error: unknown = undefined;
    /** Counts the times every page was marked outdated; a page read across one stays outdated. */
    let generation = 0;
    let retryAt = 0;
    let retryDelay = RETRY_MS;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let eventTimer: ReturnType<typeof setTimeout> | undefined;
    let firstPendingAt: number | undefined;
    setSnapshot({ key, pages: [], error: undefined });

    const publish = () => {
      if (!disposed) setSnapshot({ key, pages, error });
    };

    const nextJob = (): Job | null => {
      const last = pages[pages.length - 1];
      if (!last) return { kind: 'append', cursor: null, limit: PAGE_SIZE };
      // Outdated pages in view are read again; with a filter on, every outdated page, since
      // any row may now match it or no longer. Neighbours go together, up to the largest page.
      const offsets: number[] = [];
      let offset = 0;
      for (const page of pages) {
        offsets.push(offset);
        offset += page.items.length;
      }
      const due = (index: number) => {
        const page = pages[index];
        const start = offsets[index] ?? 0;
        if (!page?.stale) return false;
        if (wanted.all) return true;
        const end = start + page.items.length;
        return page.items.length === 0 ? start >= wanted.from && start <= wanted.to : end > wanted.from && start < wanted.to;
      };
      const first = pages.findIndex((_, index) => due(index));
      if (first >= 0) {
        let count = 1;
        let limit = pages[first]?.limit ?? PAGE_SIZE;
        while (due(first + count) && limit + (pages[first + count]?.limit ?? 0) <= LARGEST_PAGE) {
          limit += pages[first + count]?.limit ?? 0;
          count++;
        }
        return { kind: 'refresh', index: first, count, cursor: pages[first]?.cursor ?? null, limit };
      }
      if (last.next === null) return null;
      if (wanted.all) return { kind: 'append', cursor: last.next, limit: LARGEST_PAGE };
      const missing = wanted.to + READ_AHEAD - offset;
      if (missing <= 0) return null;
      return { kind: 'append', cursor: last.next, limit: Math.min(LARGEST_PAGE, Math.ceil(missing / PAGE_SIZE) * PAGE_SIZE) };
    };

    const apply = (job: Job, page: Page<T>, startedIn: number) => {
      const loaded: LoadedPage<T> = {
        cursor: job.cursor,
        limit: job.limit,
        items: page.items,
        next: page.nextCursor ?? null,
        stale: startedIn !== generation,
      };
      if (job.kind === 'append') {
        pages = [...pages, loaded];
        return;
      }
      const last = pages[job.index + job.count - 1];
      // The rows after these start elsewhere now (a node joined or left): the pages after
      // them no longer follow on, and load again when needed.
      const after = last && last.next === loaded.next ? pages.slice(job.index + job.count) : [];
      pages = [...pages.slice(0, job.index), loaded, ...after];
    };

    const pump = () => {
      if (disposed || inFlight) return;
      const wait = retryAt - Date.now();
      if (wait > 0) {
        retryTimer ??= setTimeout(() => {
          retryTimer = undefined;
          pump();
        }, wait);
        return;
      }
      const job = nextJob();
      if (!job) return;
      const controller = new AbortController();
      const startedIn = generation;
      inFlight = controller;
      loadRef
        .current({ cursor: job.cursor, limit: job.limit }, controller.signal)
        .then(
          (page) => {
            if (disposed) return;
            apply(job, page, startedIn);
            error = undefined;
            retryAt = 0;
            retryDelay = RETRY_MS;
          },
          (failure: unknown) => {
            if (disposed || controller.signal.aborted) return;
            error = failure;
            retryAt = Date.now() + retryDelay;
            retryDelay = Math.min(MAX_RETRY_MS, retryDelay * 2);
          },
        )
        .finally(() => {
          if (inFlight === controller) inFlight = null;
          publish();
          pump();
        });
    };

    const outdateAll = () => {
      generation++;
      for (const page of pages) page.stale = true;
      retryAt = 0;
      pump();
    };

    const schedule = () => {
      const { debounceMs = 250, maxWaitMs = 1000 } = optionsRef.current;
      const now = Date.now();
      firstPendingAt ??= now;
      if (eventTimer !== undefined) clearTimeout(eventTimer);
      const delay = Math.max(0, Math.min(debounceMs, maxWaitMs - (now - firstPendingAt)));
      eventTimer = setTimeout(() => {
        eventTimer = undefined;
        firstPendingAt = undefined;
        outdateAll();
      }, delay);
    };

    control.current = {
      view(from, to, all) {
        if (wanted.from === from && wanted.to === to && wanted.all === all) return;
        wanted = { from, to, all };
        pump();
      },
      reload: outdateAll,
    };
    pump();
    const offEvent = stream.subscribe((event) => {
      if (optionsRef.current.relevant(event)) schedule();
    });
    const offReconnect = stream.onReconnect(schedule);
    return () => {
      disposed = true;
      inFlight?.abort();
      if (eventTimer !== undefined) clearTimeout(eventTimer);
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      offEvent();
      offReconnect();
    };
  }, [key, stream]);

  const current = snapshot.key === key;
  const pages = current ? snapshot.pages : [];
  const rows = useMemo(() => pages.flatMap((p) => p.items), [pages]);
  const view = useCallback((from: number, to: number, all = false) => control.current.view(from, to, all), []);
  const reload = useCallback(() => control.current.reload(), []);
  return {
    rows,
    complete: pages.length > 0 && pages[pages.length - 1]?.next === null,
    loading: pages.length === 0,
    error: current ? snapshot.error : undefined,
    reload,
    view,
  };
}
