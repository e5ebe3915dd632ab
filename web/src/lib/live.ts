import { useCallback, useEffect, useRef, useState } from 'react';
import type { EventView } from '@upshift/api';
import { useSession } from './session';

export interface LiveOptions {
  /** Which events make this resource stale. */
  relevant: (event: EventView) => boolean;
  /** Quiet time after the last relevant event before re-fetching. */
  debounceMs?: number;
  /** Re-fetch at least this often while events keep coming. */
  maxWaitMs?: number;
}

export interface LiveResource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** Re-fetch now (after an action of this user). */
  reload: () => void;
}

/**
 * Loads a resource and keeps it fresh from the live stream: a relevant event schedules a
 * debounced re-fetch (never two at once; a change during a fetch fetches again after it).
 * After the stream comes back from a drop the resource is re-fetched as well.
 */
export function useLiveResource<T>(load: (signal: AbortSignal) => Promise<T>, key: string, options: LiveOptions): LiveResource<T> {
  const { stream } = useSession();
  const [state, setState] = useState<{ key: string; data: T | undefined; error: unknown; loading: boolean }>({
    key,
    data: undefined,
    error: undefined,
    loading: true,
  });
  const loadRef = useRef(load);
  loadRef.current = load;
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const reloadRef = useRef<() => void>(() => {});

  useEffect(() => {
    let disposed = false;
    let inFlight: AbortController | null = null;
    let dirty = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let firstPendingAt: number | undefined;
    setState((s) => (s.key === key ? { ...s, loading: true } : { key, data: undefined, error: undefined, loading: true }));

    const run = () => {
      if (disposed) return;
      if (inFlight) {
        dirty = true;
        return;
      }
      const controller = new AbortController();
      inFlight = controller;
      loadRef
        .current(controller.signal)
        .then(
          (data) => {
            if (!disposed) setState({ key, data, error: undefined, loading: false });
          },
          (error: unknown) => {
            if (!disposed && !controller.signal.aborted) setState((s) => ({ ...s, key, error, loading: false }));
          },
        )
        .finally(() => {
          inFlight = null;
          if (dirty && !disposed) {
            dirty = false;
            run();
          }
        });
    };

    const schedule = () => {
      const { debounceMs = 250, maxWaitMs = 1000 } = optionsRef.current;
      const now = Date.now();
      firstPendingAt ??= now;
      if (timer !== undefined) clearTimeout(timer);
      const delay = Math.max(0, Math.min(debounceMs, maxWaitMs - (now - firstPendingAt)));
      timer = setTimeout(() => {
        timer = undefined;
        firstPendingAt = undefined;
        run();
      }, delay);
    };

    reloadRef.current = run;
    run();
    const offEvent = stream.subscribe((event) => {
      if (optionsRef.current.relevant(event)) schedule();
    });
    const offReconnect = stream.onReconnect(schedule);
    return () => {
      disposed = true;
      inFlight?.abort();
      if (timer !== undefined) clearTimeout(timer);
      offEvent();
      offReconnect();
    };
  }, [key, stream]);

  const reload = useCallback(() => reloadRef.current(), []);
  const current = state.key === key;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading: current ? state.loading : true,
    reload,
  };
}

/** A clock that ticks every `intervalMs` while mounted: for countdowns and running bars. */
export function useNow(intervalMs = 1000, enabled = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!enabled) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs, enabled]);
  return now;
}

/** Sets the document title for the page. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Upshift` : 'Upshift';
  }, [title]);
}
