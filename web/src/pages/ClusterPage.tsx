import { useMemo, useRef, useState } from 'react';
import { describeError } from '../api/client';
import type { ClusterView, Component, NodeView } from '@upshift/api';
import { describeWindow } from '@upshift/domain/maintenance-window.js';
import { components } from '@upshift/api/enums';
import { ClusterStatusBadge, NodeStatusBadge } from '../components/Badges';
import { Dialog } from '../components/Dialog';
import { ErrorNotice, Loading, Notice } from '../components/Notice';
import { RoleButton, RoleNote } from '../components/RoleGate';
import { UpgradeDialog } from '../components/UpgradeDialog';
import { UpgradesTable } from '../components/UpgradesTable';
import { VersionSummary } from '../components/Versions';
import { VirtualTable, type Column } from '../components/VirtualTable';
import {
  describeNextOpening,
  newWindowDraft,
  useMinuteClock,
  type WindowDraft,
  WindowFields,
  windowBody,
} from '../components/WindowEditor';
import { compareNatural, displayComponent, formatTime } from '../lib/format';
import { useLiveResource, useTitle } from '../lib/live';
import { usePagedLiveResource } from '../lib/paged';
import { Link, navigate } from '../lib/router';
import { useSession } from '../lib/session';

/**
 * One cluster: its status, each component's versions with an Upgrade action, its
 * upgrades, and every node (role, status, versions) in a windowed table that stays fast
 * with 100,000 nodes: nodes load a page at a time as the table scrolls (all of them while
 * a filter is on, since it must see every node).
 */
export function ClusterPage({ clusterId }: { clusterId: string }) {
  const { api, can } = useSession();
  // The route may carry a name; events carry the id.
  const resolvedId = useRef(clusterId);
  const cluster = useLiveResource((signal) => api.getCluster(clusterId, signal), `cluster:${clusterId}`, {
    relevant: (e) => e.clusterId === resolvedId.current,
    debounceMs: 300,
    maxWaitMs: 1000,
  });
  const id = cluster.data?.id ?? clusterId;
  resolvedId.current = id;
  const big = (cluster.data?.nodeCount ?? 0) > 2000;
  const nodes = usePagedLiveResource((page, signal) => api.listNodes(clusterId, page, signal), `nodes:${clusterId}`, {
    relevant: (e) => e.clusterId === id && (e.type === 'node.succeeded' || e.type.startsWith('cluster.')),
    debounceMs: big ? 1500 : 300,
    maxWaitMs: big ? 5000 : 1000,
  });
  const upgrades = useLiveResource((signal) => api.listUpgrades({ clusterId }, signal), `upgrades:${clusterId}`, {
    relevant: (e) => e.clusterId === id && (e.type.startsWith('upgrade.') || e.type.startsWith('batch.')),
    debounceMs: 300,
    maxWaitMs: 1500,
  });
  useTitle(cluster.data?.name ?? 'Cluster');

  const [filter, setFilter] = useState('');
  const [role, setRole] = useState('');
  const [outdatedOnly, setOutdatedOnly] = useState<Component | ''>('');
  const [upgrading, setUpgrading] = useState<Component | null>(null);
  const [deleting, setDeleting] = useState(false);

  const c = cluster.data;
  const latest = (component: Component) => c?.components[component]?.latest ?? null;

  // A filter must see every node: while one is on, every page is loaded.
  const filtering = filter.trim() !== '' || role !== '' || outdatedOnly !== '';
  const rows = useMemo(() => {
    const needle = filter.trim().toLowerCase();
    const list = nodes.rows;
    if (!filtering) return list;
    return list.filter((n) => {
      if (needle && !n.name.toLowerCase().includes(needle)) return false;
      if (role && n.role !== role) return false;
      if (outdatedOnly) {
        const version = n.versions[outdatedOnly];
        const want = c?.components[outdatedOnly]?.latest;
        if (!version || !want || compareNatural(version, want) >= 0) return false;
      }
      return true;
    });
  }, [nodes.rows, filtering, filter, role, outdatedOnly, c]);
  // Without a filter the table has every node of the cluster, loaded or not.
  const total = nodes.complete ? nodes.rows.length : Math.max(c?.nodeCount ?? 0, nodes.rows.length);
  const { view } = nodes;
  const onRangeChange = useMemo(() => {
    if (!filtering) return (first: number, last: number) => view(first, last);
    const position = new Map(nodes.rows.map((n, i) => [n, i]));
    return (first: number, last: number) => {
      const from = rows[first] ? (position.get(rows[first]) ?? 0) : 0;
      const to = rows[last - 1] ? (position.get(rows[last - 1] as NodeView) ?? 0) + 1 : from;
      view(from, to, true);
    };
  }, [filtering, nodes.rows, rows, view]);

  const columns: Column<NodeView>[] = [
    { key: 'name', header: 'Node', width: 'minmax(8rem, 1.2fr)', render: (n) => <span className="mono">{n.name}</span> },
    { key: 'role', header: 'Role', width: '6rem', render: (n) => n.role },
    { key: 'status', header: 'Status', width: '7rem', render: (n) => <NodeStatusBadge status={n.status} /> },
    {
      key: 'distribution',
      header: 'Distribution',
      width: '8rem',
      // What the node's agent reports (os-release); a dash for nodes without one.
      render: (n) => (n.distribution ? <span className="mono">{n.distribution}</span> : <span className="muted">—</span>),
    },
    ...components.map<Column<NodeView>>((component) => ({
      key: component,
      header: displayComponent(component),
      width: component === 'sandboxed-runtime' ? 'minmax(11rem, 1fr)' : 'minmax(7rem, 1fr)',
      render: (n) => {
        const version = n.versions[component];
        if (!version) return <span className="muted">—</span>;
        const want = latest(component);
        const behind = want !== null && compareNatural(version, want) < 0;
        return (
          <span className={behind ? 'version outdated' : 'version'} title={behind ? `older than ${want}` : undefined}>
            {version}
          </span>
        );
      },
    })),
  ];

  if (!c) {
    return (
      <section className="page">
        <Breadcrumb name={clusterId} />
        {cluster.error ? <ErrorNotice error={cluster.error} prefix="Could not load the cluster" /> : <Loading what="the cluster" />}
      </section>
    );
  }

  return (
    <section className="page" aria-labelledby="page-title">
      <Breadcrumb name={c.name} />
      <div className="page-head">
        <div>
          <h1 id="page-title">{c.name}</h1>
          <p className="subtitle">
            <span className="tag">{c.kind}</span> <ClusterStatusBadge status={c.status} upgradeState={c.activeUpgradeState} />{' '}
            {c.statusText !== c.status ? <span data-testid="cluster-status-text">{c.statusText}</span> : null} ·{' '}
            {c.nodeCount.toLocaleString('en')} nodes
            {c.createdAt ? ` · created ${formatTime(c.createdAt)}` : ''}
          </p>
        </div>
        <div className="toolbar">
          <Link className="button" to={`/events?clusterId=${c.id}`}>
            Events
          </Link>
          <RoleButton need="admin" className="danger-outline" onClick={() => setDeleting(true)}>
            Delete cluster
          </RoleButton>
        </div>
      </div>
      <ErrorNotice error={cluster.error} prefix="Could not refresh the cluster" />
      {c.activeUpgradeId ? (
        <Notice tone="info" title={c.statusText} testId="active-upgrade">
          <Link to={`/upgrades/${c.activeUpgradeId}`}>Open the upgrade</Link> to follow it, pause it or cancel it.
        </Notice>
      ) : null}

      <MaintenanceWindowSection cluster={c} onChanged={cluster.reload} />

      <h2>Components</h2>
      <RoleNote need="operator" what="Upgrading a component" />
      <div className="component-grid">
        {components.map((component) => {
          const summary = c.components[component];
          const installed = Object.keys(summary?.versions ?? {}).length > 0;
          return (
            <article className="card component-card" key={component} data-component={component} aria-labelledby={`comp-${component}`}>
              <h3 id={`comp-${component}`}>{displayComponent(component)}</h3>
              <div className="component-versions">
                <VersionSummary summary={summary} />
              </div>
              <p className="muted small">
                {!installed ? 'Not installed on this cluster' : summary?.upgradable ? `Latest: ${summary.latest}` : 'Up to date'}
              </p>
              {summary?.upgradable && can('operator') ? (
                <button
                  type="button"
                  className="primary small"
                  onClick={() => setUpgrading(component)}
                  aria-label={`Upgrade ${displayComponent(component)}`}
                >
                  {component === 'agent' ? 'Upgrade Agent' : 'Upgrade'}
                </button>
              ) : null}
            </article>
          );
        })}
      </div>

      <h2>Upgrades</h2>
      {upgrades.data === undefined ? (
        upgrades.error ? (
          <ErrorNotice error={upgrades.error} />
        ) : (
          <Loading what="upgrades" />
        )
      ) : upgrades.data.length === 0 ? (
        <p className="muted">No upgrades on this cluster yet.</p>
      ) : (
        <UpgradesTable upgrades={upgrades.data.slice(0, 10)} showCluster={false} />
      )}
      {upgrades.data && upgrades.data.length > 10 ? (
        <p>
          <Link to={`/upgrades?clusterId=${c.id}`}>
            All {upgrades.data.length} upgrades of {c.name}
          </Link>
        </p>
      ) : null}

      <h2 id="nodes-title">Nodes</h2>
      <div className="toolbar filters">
        <label>
          <span>Name</span>
          <input type="search" value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="sim-042" />
        </label>
        <label>
          <span>Role</span>
          <select value={role} onChange={(e) => setRole(e.target.value)}>
            <option value="">Any</option>
            <option value="manager">Manager</option>
            <option value="worker">Worker</option>
          </select>
        </label>
        <label>
          <span>Outdated</span>
          <select value={outdatedOnly} onChange={(e) => setOutdatedOnly(e.target.value as Component | '')}>
            <option value="">Show all</option>
            {components.map((component) => (
              <option key={component} value={component}>
                {displayComponent(component)} older than latest
              </option>
            ))}
          </select>
        </label>
        <span className="muted count-line" data-testid="node-count" aria-live="polite">
          {nodes.loading
            ? ''
            : !filtering
              ? `${total.toLocaleString('en')} nodes`
              : nodes.complete
                ? `${rows.length.toLocaleString('en')} of ${total.toLocaleString('en')} nodes`
                : `${rows.length.toLocaleString('en')} of ${total.toLocaleString('en')} nodes (searching: ${nodes.rows.length.toLocaleString('en')} loaded)`}
        </span>
      </div>
      <ErrorNotice error={nodes.error} prefix="Could not load the nodes" />
      {nodes.loading && !nodes.error ? (
        <Loading what="nodes" />
      ) : (
        <VirtualTable
          rows={rows}
          columns={columns}
          rowKey={(n) => n.id}
          label="Nodes"
          testId="nodes-table"
          empty={nodes.complete ? 'No node matches.' : 'Searching the nodes…'}
          totalRows={filtering ? undefined : total}
          onRangeChange={onRangeChange}
        />
      )}

      {upgrading ? <UpgradeDialog cluster={c} initialComponent={upgrading} onClose={() => setUpgrading(null)} /> : null}
      {deleting ? <DeleteClusterDialog clusterId={c.id} name={c.name} onClose={() => setDeleting(false)} /> : null}
    </section>
  );
}

function Breadcrumb({ name }: { name: string }) {
  return (
    <nav aria-label="Breadcrumb" className="breadcrumb">
      <ol>
        <li>
          <Link to="/clusters">Clusters</Link>
        </li>
        <li aria-current="page">{name}</li>
      </ol>
    </nav>
  );
}

function DeleteClusterDialog({ clusterId, name, onClose }: { clusterId: string; name: string; onClose: () => void }) {
  const { api } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.deleteCluster(clusterId);
      onClose();
      navigate('/clusters');
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Delete ${name}?`} onClose={onClose}>
      <p>Upshift forgets the cluster, its nodes and its upgrade history. Nothing is changed on the nodes themselves.</p>
      {error ? (
        <Notice tone="bad" alert>
          {error}
        </Notice>
      ) : null}
      <div className="actions">
        <button type="button" onClick={onClose} autoFocus>
          Keep it
        </button>
        <button type="button" className="danger" onClick={remove} disabled={busy}>
          Delete cluster
        </button>
      </div>
    </Dialog>
  );
}

/**
 * The cluster's default maintenance window: its upgrades start batches only while it is
 * open unless one sets its own. Admins set or clear it (`PATCH /clusters/{id}`); upgrades
 * already running keep the window they started with.
 */
function MaintenanceWindowSection({ cluster, onChanged }: { cluster: ClusterView; onChanged: () => void }) {
  const { api } = useSession();
  const now = useMinuteClock();
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const clear = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.updateCluster(cluster.id, { window: null });
      onChanged();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="window-title" data-testid="cluster-window">
      <h2 id="window-title">Maintenance window</h2>
      <p data-testid="cluster-window-text">
        {cluster.window ? (
          <>
            Upgrades start batches only {describeWindow(cluster.window)}{' '}
            <span className="muted">({describeNextOpening(cluster.window, now)})</span>, unless an upgrade sets its own.
          </>
        ) : (
          'None: batches of this cluster’s upgrades start at any time, unless an upgrade sets its own window.'
        )}
      </p>
      <div className="toolbar">
        <RoleButton need="admin" onClick={() => setEditing(true)} disabled={busy}>
          {cluster.window ? 'Change the window' : 'Set a window'}
        </RoleButton>
        {cluster.window ? (
          <RoleButton need="admin" onClick={clear} disabled={busy}>
            Clear the window
          </RoleButton>
        ) : null}
      </div>
      {error ? (
        <Notice tone="bad" alert testId="cluster-window-error">
          {error}
        </Notice>
      ) : null}
      {editing ? (
        <WindowDialog
          cluster={cluster}
          onClose={() => setEditing(false)}
          onSaved={() => {
            setEditing(false);
            onChanged();
          }}
        />
      ) : null}
    </section>
  );
}

function WindowDialog({ cluster, onClose, onSaved }: { cluster: ClusterView; onClose: () => void; onSaved: () => void }) {
  const { api } = useSession();
  const [draft, setDraft] = useState<WindowDraft>(() => newWindowDraft(cluster.window));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.updateCluster(cluster.id, { window: windowBody(draft) });
      onSaved();
    } catch (e) {
      // The server's refusal in its words: it names the field and what to write.
      setError(describeError(e));
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Maintenance window of ${cluster.name}`} onClose={onClose} testId="window-dialog">
      <p className="help">
        Batches of this cluster&apos;s upgrades start only while the window is open; a batch that has started finishes. Upgrades running now
        keep the window they started with.
      </p>
      <WindowFields draft={draft} onChange={setDraft} idPrefix="cw" />
      {error ? (
        <Notice tone="bad" alert testId="window-error">
          {error}
        </Notice>
      ) : null}
      <div className="actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
        <button type="button" className="primary" onClick={save} disabled={busy}>
          {busy ? 'Saving…' : 'Save window'}
        </button>
      </div>
    </Dialog>
  );
}
