import { useEffect, useMemo, useState } from 'react';
import type { EventView } from '@upshift/api';
import { eventTypes } from '@upshift/api/enums';
import { eventSelection, selects } from '@upshift/domain/events.js';
import { ErrorNotice, Loading } from '../components/Notice';
import { displayComponent, formatTime } from '../lib/format';
import { useLiveResource, useTitle } from '../lib/live';
import { Link, navigate, useLocation } from '../lib/router';
import { useSession } from '../lib/session';

const pageSize = 50;

/**
 * Every operation as an event, newest first: filter by cluster, upgrade and type, page
 * back with "Load more" (the API's cursor), and new events arrive at the top live.
 */
export function EventsPage() {
  useTitle('Events');
  const { api, stream } = useSession();
  const { search } = useLocation();
  const clusterId = search.get('clusterId') ?? '';
  const upgradeId = search.get('upgradeId') ?? '';
  const type = search.get('type') ?? '';
  const actor = search.get('actor') ?? '';
  const operations = search.get('operations') === 'true';
  // The same selection the server applies, for the live events added on top.
  const selection = useMemo(() => {
    const selected = eventSelection({ type, actor, operations });
    return selected.ok ? selected.selection : {};
  }, [type, actor, operations]);

  const clusters = useLiveResource((signal) => api.listClusters(signal), 'clusters', {
    relevant: (e) => e.type === 'cluster.created' || e.type === 'cluster.deleted',
  });
  const upgrades = useLiveResource(
    (signal) => api.listUpgrades({ clusterId: clusterId || undefined }, signal),
    `event-upgrades:${clusterId}`,
    {
      relevant: (e) => e.type === 'upgrade.started',
    },
  );

  const [items, setItems] = useState<EventView[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [fresh, setFresh] = useState<Set<string>>(new Set());

  const matches = useMemo(
    () => (e: EventView) => (!clusterId || e.clusterId === clusterId) && (!upgradeId || e.upgradeId === upgradeId) && selects(selection, e),
    [clusterId, upgradeId, selection],
  );

  // First page for these filters, then live events on top.
  useEffect(() => {
    const controller = new AbortController();
    const buffered: EventView[] = [];
    let loaded = false;
    setItems(null);
    setNext(null);
    setError(null);
    setFresh(new Set());
    const known = new Set<string>();
    const merge = (incoming: EventView[]) => {
      const added = incoming.filter((e) => !known.has(e.id));
      if (added.length === 0) return;
      for (const e of added) known.add(e.id);
      setFresh((f) => new Set([...f, ...added.map((e) => e.id)]));
      setItems((current) => [...added, ...(current ?? [])].sort((a, b) => Number(b.id) - Number(a.id)));
    };
    const off = stream.subscribe((e) => {
      if (!matches(e)) return;
      if (loaded) merge([e]);
      else buffered.push(e);
    });
    const offReconnect = stream.onReconnect(() => {
      api
        .events({ clusterId, upgradeId, type, actor, operations: operations ? 'true' : undefined, limit: pageSize }, controller.signal)
        .then(
          (page) => merge(page.items),
          () => {},
        );
    });
    api.events({ clusterId, upgradeId, type, actor, operations: operations ? 'true' : undefined, limit: pageSize }, controller.signal).then(
      (page) => {
        loaded = true;
        for (const e of page.items) known.add(e.id);
        setItems(page.items);
        setNext(page.next);
        if (buffered.length) merge(buffered);
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setError(e);
      },
    );
    return () => {
      controller.abort();
      off();
      offReconnect();
    };
  }, [api, stream, matches, clusterId, upgradeId, type, actor, operations]);

  const loadMore = async () => {
    if (!next) return;
    setLoadingMore(true);
    try {
      const page = await api.events({
        clusterId,
        upgradeId,
        type,
        actor,
        operations: operations ? 'true' : undefined,
        cursor: next,
        limit: pageSize,
      });
      setItems((current) => {
        const list = current ?? [];
        const known = new Set(list.map((e) => e.id));
        return [...list, ...page.items.filter((e) => !known.has(e.id))];
      });
      setNext(page.next);
    } catch (e) {
      setError(e);
    } finally {
      setLoadingMore(false);
    }
  };

  const set = (changes: Record<string, string>) => {
    const params = new URLSearchParams(search);
    for (const [key, value] of Object.entries(changes)) {
      if (value) params.set(key, value);
      else params.delete(key);
    }
    const text = params.toString();
    navigate(`/events${text ? `?${text}` : ''}`, { replace: true });
  };

  const clusterName = new Map((clusters.data ?? []).map((c) => [c.id, c.name]));
  const upgradeOptions = upgrades.data ?? [];
  const upgradeLabel = new Map(upgradeOptions.map((u) => [u.id, `${displayComponent(u.component)} → ${u.toVersion}`]));

  return (
    <section className="page" aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title">Events</h1>
        <div className="toolbar filters" role="search" aria-label="Filter events">
          <label>
            <span>Cluster</span>
            <select value={clusterId} onChange={(e) => set({ clusterId: e.target.value, upgradeId: '' })} data-testid="filter-cluster">
              <option value="">All clusters</option>
              {(clusters.data ?? []).map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>Upgrade</span>
            <select value={upgradeId} onChange={(e) => set({ upgradeId: e.target.value })} data-testid="filter-upgrade">
              <option value="">All upgrades</option>
              {upgradeId && !upgradeOptions.some((u) => u.id === upgradeId) ? <option value={upgradeId}>{upgradeId}</option> : null}
              {upgradeOptions.map((u) => (
                <option key={u.id} value={u.id}>
                  {`${u.clusterName ?? u.clusterId}: ${displayComponent(u.component)} → ${u.toVersion} (${formatTime(u.createdAt)}, ${u.state})`}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>Type</span>
            <select value={type} onChange={(e) => set({ type: e.target.value })} data-testid="filter-type">
              <option value="">All types</option>
              {eventTypes.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>Actor</span>
            <input
              type="search"
              defaultValue={actor}
              placeholder="admin, engine, token:…"
              onKeyDown={(e) => {
                if (e.key === 'Enter') set({ actor: e.currentTarget.value.trim() });
              }}
              onBlur={(e) => set({ actor: e.currentTarget.value.trim() })}
              data-testid="filter-actor"
            />
          </label>
          <label className="checkbox">
            <input
              type="checkbox"
              checked={operations}
              onChange={(e) => set({ operations: e.target.checked ? 'true' : '' })}
              data-testid="filter-operations"
            />
            <span>Operations only</span>
          </label>
          {clusterId || upgradeId || type || actor || operations ? (
            <button
              type="button"
              className="ghost"
              onClick={() => set({ clusterId: '', upgradeId: '', type: '', actor: '', operations: '' })}
            >
              Clear filters
            </button>
          ) : null}
        </div>
      </div>
      {error ? <ErrorNotice error={error} prefix="Could not load the events" /> : null}
      {items === null && !error ? <Loading what="events" /> : null}
      {items && items.length === 0 ? (
        <p className="muted">No event matches these filters yet. New ones appear here as they happen.</p>
      ) : null}
      {items && items.length > 0 ? (
        <div className="table-wrap">
          <table className="events-table" data-testid="events-table">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Type</th>
                <th scope="col">Actor</th>
                <th scope="col">Cluster</th>
                <th scope="col">Upgrade</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id} className={fresh.has(e.id) ? 'fresh' : undefined} data-type={e.type}>
                  <td className="nowrap">
                    <time dateTime={e.at}>{formatTime(e.at)}</time>
                  </td>
                  <td className="nowrap">
                    <span
                      className={`type type-${e.type.split('.')[0]}${e.type.includes('fail') || e.type.includes('refused') ? ' type-bad' : ''}`}
                    >
                      {e.type}
                    </span>
                  </td>
                  <td>{e.actor}</td>
                  <td className="nowrap">
                    {e.clusterId ? <Link to={`/clusters/${e.clusterId}`}>{clusterName.get(e.clusterId) ?? e.clusterId}</Link> : '—'}
                  </td>
                  <td className="nowrap">
                    {e.upgradeId ? <Link to={`/upgrades/${e.upgradeId}`}>{upgradeLabel.get(e.upgradeId) ?? e.upgradeId}</Link> : '—'}
                  </td>
                  <td>{e.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {items && next ? (
        <p className="center">
          <button type="button" onClick={loadMore} disabled={loadingMore}>
            {loadingMore ? 'Loading…' : 'Load more'}
          </button>
        </p>
      ) : null}
      {items && items.length > 0 && !next ? (
        <p className="muted center">
          That is every event{clusterId || upgradeId || type || actor || operations ? ' matching these filters' : ''}.
        </p>
      ) : null}
    </section>
  );
}
