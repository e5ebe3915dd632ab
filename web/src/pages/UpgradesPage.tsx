import { upgradeStates } from '@upshift/api/enums';
import { ErrorNotice, Loading } from '../components/Notice';
import { UpgradesTable } from '../components/UpgradesTable';
import { useLiveResource, useTitle } from '../lib/live';
import { navigate, useLocation } from '../lib/router';
import { useSession } from '../lib/session';

/** Every upgrade, newest first, filtered by cluster and state; progress updates live. */
export function UpgradesPage() {
  useTitle('Upgrades');
  const { api } = useSession();
  const { search } = useLocation();
  const clusterId = search.get('clusterId') ?? '';
  const state = search.get('state') ?? '';
  const clusters = useLiveResource((signal) => api.listClusters(signal), 'clusters', {
    relevant: (e) => e.type === 'cluster.created' || e.type === 'cluster.deleted',
  });
  const upgrades = useLiveResource(
    (signal) => api.listUpgrades({ clusterId: clusterId || undefined, state: state || undefined }, signal),
    `upgrades:${clusterId}:${state}`,
    {
      relevant: (e) => e.upgradeId !== null,
      debounceMs: 400,
      maxWaitMs: 1500,
    },
  );

  const set = (key: string, value: string) => {
    const params = new URLSearchParams(search);
    if (value) params.set(key, value);
    else params.delete(key);
    const text = params.toString();
    navigate(`/upgrades${text ? `?${text}` : ''}`, { replace: true });
  };

  return (
    <section className="page" aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title">Upgrades</h1>
        <div className="toolbar filters">
          <label>
            <span>Cluster</span>
            <select value={clusterId} onChange={(e) => set('clusterId', e.target.value)}>
              <option value="">All clusters</option>
              {(clusters.data ?? []).map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>State</span>
            <select value={state} onChange={(e) => set('state', e.target.value)}>
              <option value="">Any state</option>
              {upgradeStates.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
        </div>
      </div>
      <ErrorNotice error={upgrades.error} prefix="Could not load the upgrades" />
      {upgrades.data === undefined && !upgrades.error ? <Loading what="upgrades" /> : null}
      {upgrades.data && upgrades.data.length === 0 ? (
        <p className="muted">No upgrade matches. Start one from a cluster’s Upgrade action.</p>
      ) : null}
      {upgrades.data && upgrades.data.length > 0 ? <UpgradesTable upgrades={upgrades.data} showCluster /> : null}
    </section>
  );
}
