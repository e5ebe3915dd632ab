import { describeGate } from '@upshift/domain/gates.js';
import { useState } from 'react';
import { ApiError, describeError } from '../api/client';
import type { NodeTaskView, UpgradeCommandName, UpgradeView } from '@upshift/api';
import { Dialog } from './Dialog';
import { Notice } from './Notice';
import { RoleNote } from './RoleGate';
import { displayComponent, formatDuration, formatTime, plural } from '../lib/format';
import { useLiveResource } from '../lib/live';
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

/** The operator's controls of an upgrade: enabled exactly when the lifecycle allows them, with the server's word shown when it refuses. */
export function Controls({
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

  // Failed executor pods (Kubernetes) block a resume: listed before Continue is pressed.
  const paused = u.state === 'Paused';
  const failedPods = useLiveResource(
    (signal) => (paused ? api.failedPods(u.id, signal) : Promise.resolve([])),
    `failed-pods:${u.id}:${paused}`,
    { relevant: (e) => e.upgradeId === u.id, debounceMs: 500, maxWaitMs: 2000 },
  );
  const pods = failedPods.data ?? [];

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
      failedPods.reload();
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
      {s === 'Paused' && u.pauseReason?.kind === 'gate' ? (
        <Notice
          tone="bad"
          title={`Paused automatically: health gate ${u.pauseReason.gateIndex + 1} kept failing`}
          testId="gate-pause-banner"
          alert
        >
          <p className="mono-wrap">{describeGate(u.pauseReason.gate)}</p>
          <p className="mono-wrap">{u.pauseReason.message}</p>
          <p>Nothing new started. Once the service is healthy, Continue checks the gates again before the next batch; or Cancel.</p>
        </Notice>
      ) : null}
      {s === 'Paused' && u.pauseReason?.kind === 'user' ? (
        <Notice tone="warn" title={`Paused by ${u.pauseReason.actor}`} testId="pause-notice">
          {u.pauseReason.message.toLowerCase() !== `paused by ${u.pauseReason.actor}`.toLowerCase() ? <p>{u.pauseReason.message}</p> : null}
          <p>Nodes that had started finish; no other node starts until you continue.</p>
        </Notice>
      ) : null}
      {paused && pods.length > 0 ? (
        <Notice tone="warn" title={`${plural(pods.length, 'failed executor pod')} must be deleted before continuing`} testId="failed-pods">
          <p>They are kept so that you can see why they failed; Continue is refused while they exist.</p>
          <ul className="failed-pods">
            {pods.map((p) => (
              <li key={`${p.namespace}/${p.name}`}>
                <span className="code">
                  {p.namespace}/{p.name}
                </span>
                {p.node ? ` on ${p.node}` : ''}
                {p.reason ? `: ${p.reason}` : ''}
                {p.finishedAt ? ` (${formatTime(p.finishedAt)})` : ''}
              </li>
            ))}
          </ul>
          <p>
            Look at them first (
            <span className="code">
              kubectl -n {pods[0]?.namespace} logs {pods[0]?.name}
            </span>
            ), then delete them and continue: their nodes are retried.
          </p>
          {operator ? (
            <div className="actions start">
              <button type="button" className="primary" disabled={busy !== null} onClick={() => run('resume', { deleteFailedPods: true })}>
                Delete the failed pods and continue
              </button>
            </div>
          ) : null}
        </Notice>
      ) : null}
      {(s === 'Paused' || s === 'SnapshotFailed') && u.autoCancelAt ? (
        <p className="auto-cancel" data-testid="auto-cancel">
          {s === 'Paused' ? 'Paused' : 'Waiting for a decision'} since {formatTime(u.pausedAt)}. If it is not continued, it is canceled
          automatically in <strong>{formatDuration(Math.max(0, Date.parse(u.autoCancelAt) - now))}</strong> (at {formatTime(u.autoCancelAt)}
          ), and its events and logs are deleted.
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
            : `Canceled. ${plural(u.nodes.succeeded, 'node')} upgraded ${u.nodes.succeeded === 1 ? 'stays' : 'stay'} upgraded; ${plural(u.nodes.skipped, 'node')} skipped.`}
        </Notice>
      ) : null}

      {refusal ? (
        <Notice tone="bad" title={`The server refused to ${commandVerb[refusal.command]}`} testId="refusal" alert>
          <p>
            {refusal.code === 'FAILED_PODS_PRESENT'
              ? 'Failed executor pods of this upgrade are still in the cluster. Look at them (listed above), then delete them and continue.'
              : refusal.message}{' '}
            <span className="code">({refusal.code})</span>
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
