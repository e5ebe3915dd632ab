import { useMemo, useState } from 'react';
import type { NodeTaskState, NodeTaskView, UpgradeView } from '@upshift/api';
import { nodeTaskStates } from '@upshift/api/enums';
import { describeGate } from '@upshift/domain/gates.js';
import { describeWaiting } from '@upshift/domain/progress.js';
import { describeWindow } from '@upshift/domain/maintenance-window.js';
import { TaskStateBadge, UpgradeStateBadge } from '../components/Badges';
import { BatchTimeline } from '../components/BatchTimeline';
import { ErrorNotice, Loading } from '../components/Notice';
import { ProgressBar } from '../components/ProgressBar';
import { VirtualTable, type Column } from '../components/VirtualTable';
import { displayComponent, durationBetween, formatClock, formatDuration, formatTime, plural } from '../lib/format';
import { useLiveResource, useNow, useTitle } from '../lib/live';
import { usePagedLiveResource } from '../lib/paged';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';
import { Controls } from '../components/UpgradeControls';
import { LogViewer, type LogTarget } from '../components/NodeLogViewer';

/**
 * One upgrade as it runs: state and progress, the batches on a time line, every node's
 * task with its error and log (loaded a page at a time as the table scrolls), and the
 * operator's controls — enabled exactly when the lifecycle allows them, with the
 * server's word shown when it refuses.
 */
export function UpgradePage({ upgradeId }: { upgradeId: string }) {
  const { api } = useSession();
  const upgrade = useLiveResource((signal) => api.getUpgrade(upgradeId, signal), `upgrade:${upgradeId}`, {
    relevant: (e) => e.upgradeId === upgradeId,
    debounceMs: 200,
    maxWaitMs: 800,
  });
  const big = (upgrade.data?.nodes.total ?? 0) > 2000;
  const tasks = usePagedLiveResource((page, signal) => api.upgradeNodes(upgradeId, page, signal), `tasks:${upgradeId}`, {
    relevant: (e) => e.upgradeId === upgradeId,
    debounceMs: big ? 1500 : 300,
    maxWaitMs: big ? 5000 : 1000,
  });
  const events = useLiveResource((signal) => api.events({ upgradeId, limit: 8 }, signal), `upgrade-events:${upgradeId}`, {
    relevant: (e) => e.upgradeId === upgradeId,
    debounceMs: 300,
    maxWaitMs: 1000,
  });
  const gateCount = upgrade.data?.policy.gates?.length ?? 0;
  // Each gate's checks, newest first: the last one per gate is shown beside it.
  const gateChecks = useLiveResource(
    (signal) =>
      gateCount > 0
        ? api.events({ upgradeId, type: 'gate.passed,gate.failed', limit: 50 }, signal)
        : Promise.resolve({ items: [], next: null }),
    `upgrade-gates:${upgradeId}:${gateCount}`,
    { relevant: (e) => e.upgradeId === upgradeId && e.type.startsWith('gate.'), debounceMs: 300, maxWaitMs: 1000 },
  );
  const u = upgrade.data;
  useTitle(u ? `${displayComponent(u.component)} → ${u.toVersion} on ${u.clusterName ?? u.clusterId}` : 'Upgrade');
  const active = u ? !['Completed', 'Canceled'].includes(u.state) : false;
  const now = useNow(1000, active);

  const [selected, setSelected] = useState<string | null>(null);
  const [stateFilter, setStateFilter] = useState<NodeTaskState | ''>('');
  const [nameFilter, setNameFilter] = useState('');

  // A filter must see every task: while one is on, every page is loaded.
  const filtering = stateFilter !== '' || nameFilter.trim() !== '';
  const taskRows = useMemo(() => {
    const needle = nameFilter.trim().toLowerCase();
    if (!filtering) return tasks.rows;
    return tasks.rows.filter((t) => (!stateFilter || t.state === stateFilter) && (!needle || t.nodeName.toLowerCase().includes(needle)));
  }, [tasks.rows, filtering, stateFilter, nameFilter]);
  const { view } = tasks;
  const onRangeChange = useMemo(() => {
    if (!filtering) return (first: number, last: number) => view(first, last);
    const position = new Map(tasks.rows.map((t, i) => [t, i]));
    return (first: number, last: number) => {
      const from = taskRows[first] ? (position.get(taskRows[first]) ?? 0) : 0;
      const to = taskRows[last - 1] ? (position.get(taskRows[last - 1] as NodeTaskView) ?? 0) + 1 : from;
      view(from, to, true);
    };
  }, [filtering, tasks.rows, taskRows, view]);
  const nodeName = (nodeId: string | null) => (nodeId ? (tasks.rows.find((t) => t.nodeId === nodeId)?.nodeName ?? nodeId) : null);
  // The node whose log is open may be on a page not loaded (a pause names any node).
  const selectedTask: LogTarget | null = selected
    ? (tasks.rows.find((t) => t.nodeId === selected) ?? { nodeId: selected, nodeName: nodeName(selected) ?? selected })
    : null;

  if (!u) {
    return (
      <section className="page">
        {upgrade.error ? <ErrorNotice error={upgrade.error} prefix="Could not load the upgrade" /> : <Loading what="the upgrade" />}
      </section>
    );
  }

  const withSnapshots = u.snapshot === 'before';
  const columns: Column<NodeTaskView>[] = [
    { key: 'node', header: 'Node', width: 'minmax(7rem, 1fr)', render: (t) => <span className="mono">{t.nodeName}</span> },
    { key: 'batch', header: 'Batch', width: '4.5rem', align: 'end', render: (t) => (t.batchIndex === null ? '—' : `#${t.batchIndex + 1}`) },
    { key: 'state', header: 'State', width: '7.5rem', render: (t) => <TaskStateBadge state={t.state} /> },
    { key: 'attempt', header: 'Try', width: '3.5rem', align: 'end', render: (t) => (t.attempt > 0 ? t.attempt : '—') },
    {
      key: 'versions',
      header: 'Version',
      width: 'minmax(11.5rem, 1.2fr)',
      render: (t) => (
        <span className="mono small">
          {t.fromVersion ?? '?'} → {t.toVersion}
        </span>
      ),
    },
    ...(withSnapshots
      ? [
          {
            key: 'snapshot',
            header: 'Snapshot',
            width: '7.5rem',
            render: (t: NodeTaskView) =>
              t.snapshot ? (
                <span
                  className={`badge ${t.snapshot.state === 'failed' ? 'bad' : t.snapshot.state === 'succeeded' ? 'ok' : 'muted'}`}
                  title={t.snapshot.error ?? t.snapshot.ref ?? undefined}
                >
                  {t.snapshot.state}
                </span>
              ) : (
                '—'
              ),
          },
        ]
      : []),
    { key: 'started', header: 'Started', width: '6.5rem', render: (t) => formatClock(t.startedAt) },
    {
      key: 'duration',
      header: 'Took',
      width: '5rem',
      align: 'end',
      render: (t) => {
        const ms = durationBetween(t.startedAt, t.finishedAt, now);
        return ms === null ? '—' : formatDuration(ms);
      },
    },
    {
      key: 'error',
      header: 'Error',
      width: 'minmax(10rem, 2.5fr)',
      render: (t) =>
        t.error ? (
          <span className="error-text" title={t.error}>
            {t.error}
          </span>
        ) : t.snapshot?.error ? (
          <span className="error-text" title={t.snapshot.error}>
            snapshot: {t.snapshot.error}
          </span>
        ) : null,
    },
    {
      key: 'log',
      header: <span className="visually-hidden">Log</span>,
      width: '4.5rem',
      render: (t) =>
        t.attempt > 0 || t.startedAt ? (
          <button
            type="button"
            className="link-button"
            aria-label={`Log of ${t.nodeName}`}
            aria-pressed={selected === t.nodeId}
            onClick={() => setSelected(selected === t.nodeId ? null : t.nodeId)}
          >
            Log
          </button>
        ) : null,
    },
  ];

  const counts = u.nodes;
  return (
    <section className="page" aria-labelledby="page-title">
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <ol>
          <li>
            <Link to="/clusters">Clusters</Link>
          </li>
          <li>
            <Link to={`/clusters/${u.clusterId}`}>{u.clusterName ?? u.clusterId}</Link>
          </li>
          <li aria-current="page">Upgrade</li>
        </ol>
      </nav>
      <div className="page-head">
        <div>
          <h1 id="page-title">
            {displayComponent(u.component)} → {u.toVersion}
          </h1>
          <p className="subtitle">
            <UpgradeStateBadge state={u.state} /> <span data-testid="upgrade-status-text">{u.statusText ?? u.state}</span> · on{' '}
            <Link to={`/clusters/${u.clusterId}`}>{u.clusterName ?? u.clusterId}</Link> · started {formatTime(u.createdAt)}
            {u.createdBy ? ` by ${u.createdBy}` : ''}
            {u.finishedAt
              ? ` · finished ${formatTime(u.finishedAt)} (${formatDuration(Date.parse(u.finishedAt) - Date.parse(u.createdAt))})`
              : ''}
          </p>
          <p className="subtitle muted small">
            {withSnapshots ? 'Snapshots before upgrade' : 'Upgrade directly (no snapshots)'} · batches of up to {u.cap ?? '?'} nodes (
            {u.policy?.maxBatchPercent ?? 10}%)
            {u.policy?.soakSeconds ? ` · ${u.policy.soakSeconds} s between batches` : ''}
            {u.policy?.window ? <span data-testid="upgrade-window"> · maintenance window {describeWindow(u.policy.window)}</span> : null}
          </p>
        </div>
      </div>
      <ErrorNotice error={upgrade.error} prefix="Could not refresh the upgrade" />

      <Controls
        upgrade={u}
        reload={() => (upgrade.reload(), tasks.reload())}
        now={now}
        onShowLog={setSelected}
        nodeName={nodeName}
        tasks={tasks.rows}
      />

      {u.endReason ? (
        <p className={`notice ${u.endReason.kind === 'completed' ? 'ok' : 'warn'}`} data-testid="end-reason" role="status">
          {u.endReason.message} <span className="muted">({formatTime(u.endReason.at)})</span>
        </p>
      ) : null}

      <h2>Progress</h2>
      <p data-testid="upgrade-progress">{progressText(u, now)}</p>
      <ProgressBar counts={counts} />
      {u.snapshots && u.snapshots.total > 0 ? (
        <p className="muted" data-testid="snapshot-progress">
          Snapshots: {u.snapshots.succeeded} of {u.snapshots.total} taken
          {u.snapshots.running ? `, ${u.snapshots.running} running` : ''}
          {u.snapshots.failed ? `, ${u.snapshots.failed} failed (${u.snapshots.failedNodes.join(', ')})` : ''}.
        </p>
      ) : null}

      {u.policy.gates && u.policy.gates.length > 0 ? (
        <>
          <h2>Health gates</h2>
          <ol className="gate-list" data-testid="upgrade-gates">
            {u.policy.gates.map((g, i) => {
              const checks = (gateChecks.data?.items ?? []).filter((e) => e.data?.['gateIndex'] === i);
              const last = checks[0];
              return (
                <li key={i} data-testid="upgrade-gate">
                  <span className="mono-wrap">{describeGate(g)}</span>
                  <span className="muted small">
                    {' '}
                    · retried for {g.retrySeconds} s{g.bearerToken ? ' · bearer token set' : ''}
                  </span>
                  {last ? (
                    <p className="small" data-testid="gate-last-check">
                      <span className={`badge ${last.type === 'gate.passed' ? 'ok' : 'bad'}`}>
                        {last.type === 'gate.passed' ? 'passed' : 'failed'}
                      </span>{' '}
                      <time dateTime={last.at}>{formatClock(last.at)}</time> {String(last.data?.['message'] ?? '')}
                    </p>
                  ) : (
                    <p className="small muted">Not checked yet: it is checked before each batch.</p>
                  )}
                  {checks.length > 1 ? (
                    <details>
                      <summary>Earlier checks ({checks.length - 1})</summary>
                      <ol className="event-feed">
                        {checks.slice(1).map((e) => (
                          <li key={e.id}>
                            <time dateTime={e.at}>{formatClock(e.at)}</time> {e.type === 'gate.passed' ? 'passed' : 'failed'}:{' '}
                            {String(e.data?.['message'] ?? '')}
                          </li>
                        ))}
                      </ol>
                    </details>
                  ) : null}
                </li>
              );
            })}
          </ol>
        </>
      ) : null}

      <h2>Batches</h2>
      <BatchTimeline
        batches={u.batches}
        startedAt={u.createdAt}
        endedAt={u.finishedAt}
        now={now}
        backingUp={withSnapshots ? (u.state === 'BackingUp' || u.state === 'SnapshotFailed' ? 'open' : 'done') : null}
        planned={u.state === 'Completed' || u.state === 'Canceled' ? [] : u.progress.plannedSizes}
        etaAt={u.progress.etaAt}
      />
      {u.batches.length > 0 ? (
        <details className="batch-details">
          <summary>Batches as a table</summary>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Batch</th>
                  <th scope="col">Nodes</th>
                  <th scope="col">Result</th>
                  <th scope="col">Started</th>
                  <th scope="col">Took</th>
                </tr>
              </thead>
              <tbody>
                {u.batches.map((b) => {
                  const ms = durationBetween(b.startedAt, b.finishedAt, now);
                  return (
                    <tr key={b.index}>
                      <td>#{b.index + 1}</td>
                      <td className="num">{b.size}</td>
                      <td>{b.state}</td>
                      <td>{formatClock(b.startedAt)}</td>
                      <td>{ms === null ? '—' : formatDuration(ms)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </details>
      ) : null}

      <h2>Nodes</h2>
      <div className="toolbar filters">
        <label>
          <span>Node</span>
          <input type="search" value={nameFilter} onChange={(e) => setNameFilter(e.target.value)} placeholder="sim-007" />
        </label>
        <label>
          <span>State</span>
          <select
            value={stateFilter}
            onChange={(e) => setStateFilter(e.target.value as NodeTaskState | '')}
            data-testid="task-state-filter"
          >
            <option value="">All ({counts.total})</option>
            {nodeTaskStates.map((s) => (
              <option key={s} value={s}>
                {s} ({counts[s]})
              </option>
            ))}
          </select>
        </label>
        <span className="muted count-line" data-testid="task-count" aria-live="polite">
          {tasks.loading
            ? ''
            : !filtering
              ? plural(Math.max(counts.total, tasks.rows.length), 'node')
              : tasks.complete
                ? plural(taskRows.length, 'node')
                : `${plural(taskRows.length, 'node')} so far (searching: ${tasks.rows.length.toLocaleString('en')} of ${counts.total.toLocaleString('en')} loaded)`}
        </span>
      </div>
      <ErrorNotice error={tasks.error} prefix="Could not load the nodes" />
      {tasks.loading && !tasks.error ? (
        <Loading what="nodes" />
      ) : (
        <VirtualTable
          rows={taskRows}
          totalRows={filtering ? undefined : tasks.complete ? tasks.rows.length : Math.max(counts.total, tasks.rows.length)}
          onRangeChange={onRangeChange}
          columns={columns}
          rowKey={(t) => t.nodeId}
          label="Node tasks"
          testId="tasks-table"
          selectedKey={selected}
          rowClassName={(t) => (t.state === 'failed' ? 'row-failed' : undefined)}
          maxHeight="max(18rem, calc(100vh - 24rem))"
          minWidth="62rem"
          empty={tasks.complete ? 'No node matches.' : 'Searching the nodes…'}
        />
      )}
      {selectedTask ? <LogViewer upgradeId={u.id} task={selectedTask} onClose={() => setSelected(null)} /> : null}

      <h2>Recent events</h2>
      {events.data ? (
        events.data.items.length === 0 ? (
          <p className="muted">No events yet.</p>
        ) : (
          <ol className="event-feed" data-testid="upgrade-events">
            {events.data.items.map((e) => (
              <li key={e.id}>
                <time dateTime={e.at}>{formatClock(e.at)}</time> <span className={`type type-${e.type.split('.')[0]}`}>{e.type}</span>{' '}
                {e.message}
              </li>
            ))}
          </ol>
        )
      ) : (
        <ErrorNotice error={events.error} />
      )}
      <p>
        <Link to={`/events?upgradeId=${u.id}`}>All events of this upgrade</Link>
      </p>
    </section>
  );
}

/**
 * `Batch 4 of 12 · 17 of 50 nodes · about 3 m 10 s left (ends 14:32)`, or why there is no estimate;
 * `Batch 0 of 6 · 0 of 6 nodes · waiting for the maintenance window (opens Fri 02:00 UTC, in 2d20h) · …`.
 */
function progressText(u: UpgradeView, now: number): string {
  const p = u.progress;
  const head = `Batch ${p.batch} of ${p.batches} · ${p.nodesDone} of ${p.nodesTotal} nodes`;
  if (u.state === 'Completed') return `${head} · took ${formatDuration(p.elapsedSeconds * 1000)}`;
  if (u.state === 'Canceled') return `${head} · ran ${formatDuration(p.elapsedSeconds * 1000)}`;
  if (u.state === 'Paused' || u.state === 'SnapshotFailed') return `${head} · no estimate while it waits for an operator`;
  // What it waits for before the next batch (the soak, the maintenance window or a failing
  // gate) comes before the estimate: while a window is closed it is why nothing moves.
  const waiting = u.waiting ? ` · ${describeWaiting(u.waiting, u.policy.window, now, p.batch)}` : '';
  if (p.etaSeconds === null || p.etaAt === null) return `${head}${waiting} · estimate once a batch has ended`;
  const left = Math.max(0, Date.parse(p.etaAt) - now);
  return `${head}${waiting} · about ${formatDuration(left)} left (ends ${formatClock(p.etaAt)})`;
}
