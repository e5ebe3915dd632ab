import { useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, describeError } from '../api/client';
import type { NodeTaskState, NodeTaskView, UpgradeCommandName, UpgradeView } from '@upshift/api';
import { nodeTaskStates } from '@upshift/api/enums';
import { TaskStateBadge, UpgradeStateBadge } from '../components/Badges';
import { BatchTimeline } from '../components/BatchTimeline';
import { Dialog } from '../components/Dialog';
import { ErrorNotice, Loading, Notice } from '../components/Notice';
import { RoleNote } from '../components/RoleGate';
import { ProgressBar } from '../components/ProgressBar';
import { VirtualTable, type Column } from '../components/VirtualTable';
import { displayComponent, durationBetween, formatClock, formatDuration, formatTime, plural } from '../lib/format';
import { useLiveResource, useNow, useTitle } from '../lib/live';
import { usePagedLiveResource } from '../lib/paged';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';

interface Refusal {
  command: UpgradeCommandName;
  code: string;
  message: string;
}

const commandVerb: Record<UpgradeCommandName, string> = {
  pause: 'pause',
  resume: 'continue',
  cancel: 'cancel',
  continue: 'continue',
  quit: 'quit',
};

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

      <h2>Progress</h2>
      <ProgressBar counts={counts} />
      {u.snapshots && u.snapshots.total > 0 ? (
        <p className="muted" data-testid="snapshot-progress">
          Snapshots: {u.snapshots.succeeded} of {u.snapshots.total} taken
          {u.snapshots.running ? `, ${u.snapshots.running} running` : ''}
          {u.snapshots.failed ? `, ${u.snapshots.failed} failed` : ''}.
        </p>
      ) : null}

      <h2>Batches</h2>
      <BatchTimeline
        batches={u.batches}
        startedAt={u.createdAt}
        endedAt={u.finishedAt}
        now={now}
        backingUp={withSnapshots ? (u.state === 'BackingUp' || u.state === 'SnapshotFailed' ? 'open' : 'done') : null}
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

function Controls({
  upgrade: u,
  reload,
  now,
  onShowLog,
  nodeName,
  tasks,
}: {
  upgrade: UpgradeView;
  reload: () => void;
  now: number;
  onShowLog: (nodeId: string) => void;
  nodeName: (nodeId: string | null) => string | null;
  /** The tasks loaded so far (the failed snapshots named come from them). */
  tasks: readonly NodeTaskView[];
}) {
  const { api, can } = useSession();
  const operator = can('operator');
  const [busy, setBusy] = useState<UpgradeCommandName | null>(null);
  const [refusal, setRefusal] = useState<Refusal | null>(null);
  const [confirm, setConfirm] = useState<'cancel' | 'quit' | null>(null);

  const run = async (command: UpgradeCommandName, body?: Record<string, unknown>) => {
    setBusy(command);
    setRefusal(null);
    try {
      await api.command(u.id, command, body);
    } catch (e) {
      setRefusal({
        command,
        code: e instanceof ApiError ? e.code : 'ERROR',
        message: e instanceof ApiError ? e.message : describeError(e),
      });
    } finally {
      setBusy(null);
      reload();
    }
  };

  const s = u.state;
  const canPause = s === 'Upgrading' && u.nodes.pending > 0;
  const canContinue = s === 'Paused';
  const canCancel = s === 'Paused' || s === 'BackingUp';
  const final = s === 'Completed' || s === 'Canceled';
  const failedSnapshots = tasks.filter((t) => t.snapshot?.state === 'failed');

  let hint: string | null = null;
  if (s === 'Upgrading')
    hint =
      u.nodes.pending > 0
        ? 'To cancel, pause first: nodes already started finish, nothing new starts; then cancel.'
        : 'Every node has started; there is nothing left to pause. The upgrade finishes with the running nodes.';
  else if (s === 'BackingUp') hint = 'Snapshots are being taken and no node has been upgraded: pausing is not possible, cancel stops here.';
  else if (s === 'Paused')
    hint =
      'Continue starts again with a batch of one node and retries failed nodes. Cancel leaves upgraded nodes upgraded and skips the rest.';

  return (
    <div className="controls-area">
      {s === 'Paused' && u.pauseReason?.kind === 'error' ? (
        <Notice tone="bad" title="Paused automatically after a failure" testId="auto-pause-banner" alert>
          <p className="mono-wrap">{u.pauseReason.message}</p>
          <p>
            Troubleshoot the node, then Continue to retry it, or Cancel.{' '}
            {u.pauseReason.nodeId ? (
              <button
                type="button"
                className="link-button"
                onClick={() => onShowLog(u.pauseReason?.kind === 'error' && u.pauseReason.nodeId ? u.pauseReason.nodeId : '')}
              >
                Show the log of {nodeName(u.pauseReason.nodeId)}
              </button>
            ) : null}
          </p>
        </Notice>
      ) : null}
      {s === 'Paused' && u.pauseReason?.kind === 'user' ? (
        <Notice tone="warn" title={`Paused by ${u.pauseReason.actor}`} testId="pause-notice">
          {u.pauseReason.message.toLowerCase() !== `paused by ${u.pauseReason.actor}`.toLowerCase() ? <p>{u.pauseReason.message}</p> : null}
          <p>Nodes that had started finish; no other node starts until you continue.</p>
        </Notice>
      ) : null}
      {s === 'Paused' && u.autoCancelAt ? (
        <p className="auto-cancel" data-testid="auto-cancel">
          Paused since {formatTime(u.pausedAt)}. If it is not continued, it is canceled automatically in{' '}
          <strong>{formatDuration(Math.max(0, Date.parse(u.autoCancelAt) - now))}</strong> (at {formatTime(u.autoCancelAt)}), and its events
          and logs are deleted.
        </p>
      ) : null}

      {s === 'SnapshotFailed' ? (
        <Notice tone="warn" title="A snapshot failed" testId="snapshot-failed-prompt">
          <p>
            {u.snapshots ? `${u.snapshots.failed} of ${u.snapshots.total} snapshots failed` : 'Snapshots failed'}
            {failedSnapshots.length
              ? ` (${failedSnapshots
                  .slice(0, 5)
                  .map((t) => `${t.nodeName}: ${t.snapshot?.error ?? 'failed'}`)
                  .join('; ')}${failedSnapshots.length > 5 ? '; …' : ''})`
              : ''}
            . No node has been upgraded.
          </p>
          <p>Continue to upgrade without those snapshots, or Quit to give up the upgrade.</p>
          <RoleNote need="operator" what="Continuing or quitting the upgrade" />
          {operator ? (
            <div className="actions start">
              <button type="button" className="primary" disabled={busy !== null} onClick={() => run('continue')}>
                Continue
              </button>
              <button type="button" className="danger-outline" disabled={busy !== null} onClick={() => setConfirm('quit')}>
                Quit
              </button>
            </div>
          ) : null}
        </Notice>
      ) : null}

      {!final && s !== 'SnapshotFailed' && !operator ? (
        <RoleNote need="operator" what="Pausing, continuing or canceling the upgrade" />
      ) : null}
      {!final && s !== 'SnapshotFailed' && operator ? (
        <div className="controls" role="group" aria-label="Upgrade controls">
          <button type="button" disabled={!canPause || busy !== null} onClick={() => run('pause')}>
            {busy === 'pause' ? 'Pausing…' : 'Pause'}
          </button>
          <button type="button" className="primary" disabled={!canContinue || busy !== null} onClick={() => run('resume')}>
            {busy === 'resume' ? 'Continuing…' : 'Continue'}
          </button>
          <button
            type="button"
            className="danger-outline"
            disabled={!canCancel || busy !== null}
            onClick={() => setConfirm('cancel')}
            aria-describedby={hint ? 'controls-hint' : undefined}
          >
            Cancel upgrade
          </button>
          {hint ? (
            <p id="controls-hint" className="help" data-testid="controls-hint">
              {hint}
            </p>
          ) : null}
        </div>
      ) : null}
      {final ? (
        <Notice tone={s === 'Completed' ? 'ok' : 'info'} testId="final-notice">
          {s === 'Completed'
            ? `Every node runs ${displayComponent(u.component)} ${u.toVersion}.`
            : `Canceled. ${plural(u.nodes.succeeded, 'node')} upgraded stay upgraded; ${plural(u.nodes.skipped, 'node')} skipped.`}
        </Notice>
      ) : null}

      {refusal ? (
        <Notice tone="bad" title={`The server refused to ${commandVerb[refusal.command]}`} testId="refusal" alert>
          <p>
            {refusal.message} <span className="code">({refusal.code})</span>
          </p>
          <div className="actions start">
            {refusal.code === 'FAILED_PODS_PRESENT' ? (
              <button type="button" className="primary" onClick={() => run('resume', { deleteFailedPods: true })}>
                Delete the failed pods and continue
              </button>
            ) : null}
            <button type="button" onClick={() => setRefusal(null)}>
              Dismiss
            </button>
          </div>
        </Notice>
      ) : null}

      {confirm ? (
        <Dialog
          title={confirm === 'cancel' ? 'Cancel this upgrade?' : 'Quit this upgrade?'}
          onClose={() => setConfirm(null)}
          testId="confirm-dialog"
        >
          <p>
            {confirm === 'cancel'
              ? `Nodes already upgraded (${u.nodes.succeeded}) stay upgraded; the ${plural(u.nodes.pending, 'node')} not started will be skipped. This cannot be undone.`
              : 'Nothing has been upgraded. The upgrade ends as Canceled.'}
          </p>
          <div className="actions">
            <button type="button" autoFocus onClick={() => setConfirm(null)}>
              Keep the upgrade
            </button>
            <button
              type="button"
              className="danger"
              onClick={() => {
                const command = confirm;
                setConfirm(null);
                void run(command);
              }}
            >
              {confirm === 'cancel' ? 'Cancel upgrade' : 'Quit upgrade'}
            </button>
          </div>
        </Dialog>
      ) : null}
    </div>
  );
}

/** Whose log to show: a task of a loaded page, or only a node named elsewhere (a pause's cause). */
type LogTarget = Pick<NodeTaskView, 'nodeId' | 'nodeName'> & Partial<Pick<NodeTaskView, 'attempt' | 'state'>>;

function LogViewer({ upgradeId, task, onClose }: { upgradeId: string; task: LogTarget; onClose: () => void }) {
  const { api } = useSession();
  const log = useLiveResource((signal) => api.nodeLog(upgradeId, task.nodeId, signal), `log:${upgradeId}:${task.nodeId}`, {
    relevant: (e) => e.upgradeId === upgradeId && e.nodeId === task.nodeId,
    debounceMs: 200,
    maxWaitMs: 600,
  });
  const heading = useRef<HTMLHeadingElement>(null);
  const pre = useRef<HTMLPreElement>(null);
  const running = task.state === 'running';
  const { reload } = log;

  // A running node writes its log without events: poll while it runs.
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(reload, 1000);
    return () => clearInterval(timer);
  }, [running, reload]);

  useEffect(() => {
    heading.current?.focus();
    heading.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }, [task.nodeId]);

  useEffect(() => {
    const element = pre.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [log.data]);

  return (
    <section className="log-viewer card" aria-labelledby="log-title" data-testid="log-viewer">
      <div className="log-head">
        <h3 id="log-title" ref={heading} tabIndex={-1}>
          Log of {task.nodeName}{' '}
          <span className="muted small">
            attempt {task.attempt || '—'}
            {task.state ? ` · ${task.state}` : ''}
          </span>
        </h3>
        <div className="actions start">
          <a
            className="button small"
            href={`data:text/plain;charset=utf-8,${encodeURIComponent(log.data ?? '')}`}
            download={`${task.nodeName}-${upgradeId}.log`}
          >
            Download
          </a>
          <button type="button" className="small" onClick={onClose}>
            Close log
          </button>
        </div>
      </div>
      <ErrorNotice error={log.error} prefix="Could not load the log" />
      <pre ref={pre} className="log" tabIndex={0} aria-label={`Log of ${task.nodeName}`}>
        {log.data === undefined ? 'Loading…' : log.data || 'The log is empty.'}
      </pre>
    </section>
  );
}
