import { useMemo, useState } from 'react';
import type { ClusterView, Component } from '@upshift/api';
import { runtimeComponents } from '@upshift/api/enums';
import { ClusterStatusBadge } from '../components/Badges';
import { CreateClusterDialog } from '../components/CreateClusterDialog';
import { ErrorNotice, Loading } from '../components/Notice';
import { RoleButton, RoleNote } from '../components/RoleGate';
import { UpgradeDialog } from '../components/UpgradeDialog';
import { VersionSummary } from '../components/Versions';
import { compareNatural, displayComponent, plural, versionEntries } from '../lib/format';
import { useLiveResource, useTitle } from '../lib/live';
import { Link, navigate, useLocation } from '../lib/router';
import { useSession } from '../lib/session';

type SortKey = 'name' | 'kind' | 'status' | 'nodes' | Component;
const sortKeys: readonly SortKey[] = ['name', 'kind', 'status', 'nodes', 'agent', 'docker', 'containerd', 'sandboxed-runtime'];

/** The lowest version in use: a cluster is as old as its oldest node. */
function lowestVersion(cluster: ClusterView, component: Component): string {
  const entries = versionEntries(cluster.components[component]?.versions ?? {});
  return entries.length ? (entries[entries.length - 1] as [string, number])[0] : '';
}

function compareBy(key: SortKey): (a: ClusterView, b: ClusterView) => number {
  switch (key) {
    case 'name':
      return (a, b) => compareNatural(a.name, b.name);
    case 'kind':
      return (a, b) => compareNatural(a.kind, b.kind) || compareNatural(a.name, b.name);
    case 'status':
      return (a, b) => compareNatural(a.statusText, b.statusText) || compareNatural(a.name, b.name);
    case 'nodes':
      return (a, b) => a.nodeCount - b.nodeCount || compareNatural(a.name, b.name);
    default:
      return (a, b) => compareNatural(lowestVersion(a, key), lowestVersion(b, key)) || compareNatural(a.name, b.name);
  }
}

/**
 * Every cluster with its status ("Docker-Engine is upgrading"), its node count and the
 * versions of each component in use, with an Upgrade action where a newer version exists.
 */
export function ClustersPage() {
  useTitle('Clusters');
  const { api, can } = useSession();
  const canUpgrade = can('operator');
  const { search } = useLocation();
  const clusters = useLiveResource((signal) => api.listClusters(signal), 'clusters', {
    relevant: (e) => e.clusterId !== null || e.type.startsWith('cluster.'),
    debounceMs: 300,
    maxWaitMs: 1000,
  });
  const [creating, setCreating] = useState(false);
  const [upgrading, setUpgrading] = useState<{ clusterId: string; component: Component } | null>(null);

  const q = search.get('q') ?? '';
  const sortParam = search.get('sort') ?? 'name';
  const descending = sortParam.startsWith('-');
  const sortKey = (sortKeys as readonly string[]).includes(sortParam.replace(/^-/, '')) ? (sortParam.replace(/^-/, '') as SortKey) : 'name';

  const setQuery = (next: { q?: string; sort?: string }) => {
    const params = new URLSearchParams(search);
    for (const [k, v] of Object.entries(next)) {
      if (v) params.set(k, v);
      else params.delete(k);
    }
    if (params.get('sort') === 'name') params.delete('sort');
    const text = params.toString();
    navigate(`/clusters${text ? `?${text}` : ''}`, { replace: true });
  };

  const rows = useMemo(() => {
    const needle = q.trim().toLowerCase();
    const list = (clusters.data ?? []).filter(
      (c) => !needle || [c.name, c.kind, c.statusText, c.id].some((v) => v.toLowerCase().includes(needle)),
    );
    list.sort(compareBy(sortKey));
    if (descending) list.reverse();
    return list;
  }, [clusters.data, q, sortKey, descending]);

  const upgradeTarget = upgrading ? clusters.data?.find((c) => c.id === upgrading.clusterId) : undefined;

  const header = (key: SortKey, label: string) => {
    const active = sortKey === key;
    return (
      <th scope="col" aria-sort={active ? (descending ? 'descending' : 'ascending') : 'none'}>
        <button type="button" className="sort" onClick={() => setQuery({ sort: active && !descending ? `-${key}` : key })}>
          {label}
          <span aria-hidden="true" className="sort-mark">
            {active ? (descending ? '▼' : '▲') : '↕'}
          </span>
        </button>
      </th>
    );
  };

  return (
    <section className="page" aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title">Clusters</h1>
        <div className="toolbar">
          <label className="narrow-only sort-select">
            <span>Sort by</span>
            <select value={descending ? `-${sortKey}` : sortKey} onChange={(e) => setQuery({ sort: e.target.value })}>
              {sortKeys.flatMap((key) => {
                const label =
                  key === 'name' || key === 'kind' || key === 'status' || key === 'nodes'
                    ? key[0]?.toUpperCase() + key.slice(1)
                    : displayComponent(key);
                return [
                  <option key={key} value={key}>
                    {label}, ascending
                  </option>,
                  <option key={`-${key}`} value={`-${key}`}>
                    {label}, descending
                  </option>,
                ];
              })}
            </select>
          </label>
          <label className="search">
            <span className="visually-hidden">Search clusters</span>
            <input type="search" placeholder="Search clusters" value={q} onChange={(e) => setQuery({ q: e.target.value })} />
          </label>
          <RoleButton need="admin" className="primary" onClick={() => setCreating(true)}>
            Create simulated cluster
          </RoleButton>
        </div>
      </div>
      <RoleNote need="operator" what="Upgrading a cluster" />
      <ErrorNotice error={clusters.error} prefix="Could not load the clusters" />
      {clusters.data === undefined && !clusters.error ? <Loading what="clusters" /> : null}
      {clusters.data !== undefined && clusters.data.length === 0 ? (
        <div className="empty card">
          <h2>No clusters yet</h2>
          <p>Add a Swarm, Docker-host or Kubernetes cluster with the CLI or the API, or create a simulated one here to try Upshift.</p>
          <RoleButton need="admin" className="primary" onClick={() => setCreating(true)}>
            Create simulated cluster
          </RoleButton>
        </div>
      ) : null}
      {clusters.data !== undefined && clusters.data.length > 0 ? (
        <>
          <p className="muted count-line" aria-live="polite">
            {rows.length === clusters.data.length
              ? plural(rows.length, 'cluster')
              : `${rows.length} of ${plural(clusters.data.length, 'cluster')} match “${q}”`}
          </p>
          <div className="table-wrap">
            <table className="clusters-table" data-testid="clusters-table">
              <thead>
                <tr>
                  {header('name', 'Name')}
                  {header('kind', 'Kind')}
                  {header('status', 'Status')}
                  {header('nodes', 'Nodes')}
                  {runtimeComponents.map((c) => (
                    <th key={c} scope="col" aria-sort={sortKey === c ? (descending ? 'descending' : 'ascending') : 'none'}>
                      <button type="button" className="sort" onClick={() => setQuery({ sort: sortKey === c && !descending ? `-${c}` : c })}>
                        {displayComponent(c)}
                        <span aria-hidden="true" className="sort-mark">
                          {sortKey === c ? (descending ? '▼' : '▲') : '↕'}
                        </span>
                      </button>
                    </th>
                  ))}
                  {header('agent', 'Agent')}
                </tr>
              </thead>
              <tbody>
                {rows.map((cluster) => (
                  <tr key={cluster.id} data-cluster={cluster.name}>
                    <th scope="row" data-label="Name">
                      <Link to={`/clusters/${cluster.id}`}>{cluster.name}</Link>
                    </th>
                    <td data-label="Kind">{cluster.kind}</td>
                    <td data-label="Status" data-testid="cluster-status">
                      <div className="status-cell">
                        <ClusterStatusBadge status={cluster.status} upgradeState={cluster.activeUpgradeState} />
                        {cluster.statusText !== cluster.status ? <span className="status-text">{cluster.statusText}</span> : null}
                        {cluster.activeUpgradeId ? (
                          <Link to={`/upgrades/${cluster.activeUpgradeId}`} className="small-link">
                            View upgrade
                          </Link>
                        ) : null}
                      </div>
                    </td>
                    <td data-label="Nodes" className="num">
                      {cluster.nodeCount.toLocaleString('en')}
                    </td>
                    {runtimeComponents.map((component) => (
                      <td key={component} data-label={displayComponent(component)} data-component={component}>
                        <div className="version-cell">
                          <VersionSummary summary={cluster.components[component]} />
                          {canUpgrade && cluster.components[component]?.upgradable ? (
                            <button
                              type="button"
                              className="action-chip"
                              title={`Upgrade to ${cluster.components[component]?.latest ?? 'the latest version'}`}
                              aria-label={`Upgrade ${displayComponent(component)} on ${cluster.name}`}
                              onClick={() => setUpgrading({ clusterId: cluster.id, component })}
                            >
                              Upgrade
                            </button>
                          ) : null}
                        </div>
                      </td>
                    ))}
                    <td data-label="Agent" data-component="agent">
                      <div className="version-cell">
                        <VersionSummary summary={cluster.components.agent} />
                        {canUpgrade && cluster.components.agent?.upgradable ? (
                          <button
                            type="button"
                            className="action-chip"
                            title={`Upgrade to ${cluster.components.agent.latest ?? 'the latest version'}`}
                            aria-label={`Upgrade Agent on ${cluster.name}`}
                            onClick={() => setUpgrading({ clusterId: cluster.id, component: 'agent' })}
                          >
                            Upgrade Agent
                          </button>
                        ) : null}
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
      {creating ? (
        <CreateClusterDialog
          onClose={() => setCreating(false)}
          onCreated={() => {
            setCreating(false);
            clusters.reload();
          }}
        />
      ) : null}
      {upgrading && upgradeTarget ? (
        <UpgradeDialog cluster={upgradeTarget} initialComponent={upgrading.component} onClose={() => setUpgrading(null)} />
      ) : null}
    </section>
  );
}
