import type { ClusterStatus, NodeTaskState, UpgradeState } from '@upshift/api';

const upgradeTone: Record<UpgradeState, string> = {
  BackingUp: 'info',
  SnapshotFailed: 'warn',
  Upgrading: 'info',
  Paused: 'warn',
  Canceled: 'muted',
  Completed: 'ok',
};

const upgradeLabel: Record<UpgradeState, string> = {
  BackingUp: 'Backing up',
  SnapshotFailed: 'Snapshot failed',
  Upgrading: 'Upgrading',
  Paused: 'Paused',
  Canceled: 'Canceled',
  Completed: 'Completed',
};

export function UpgradeStateBadge({ state }: { state: UpgradeState }) {
  return (
    <span className={`badge ${upgradeTone[state]}`} data-state={state}>
      {upgradeLabel[state]}
    </span>
  );
}

const clusterTone: Record<ClusterStatus, string> = { Running: 'ok', Upgrading: 'info', Unavailable: 'bad' };

/** The cluster's status; an upgrade waiting for the operator (paused, snapshot failed) shows in amber. */
export function ClusterStatusBadge({ status, upgradeState }: { status: ClusterStatus; upgradeState?: UpgradeState | null | undefined }) {
  const waiting = status === 'Upgrading' && (upgradeState === 'Paused' || upgradeState === 'SnapshotFailed');
  return <span className={`badge ${waiting ? 'warn' : (clusterTone[status] ?? 'muted')}`}>{status}</span>;
}

const taskTone: Record<NodeTaskState, string> = { pending: 'muted', running: 'info', succeeded: 'ok', failed: 'bad', skipped: 'muted' };

export function TaskStateBadge({ state }: { state: NodeTaskState }) {
  return <span className={`badge ${taskTone[state] ?? 'muted'}`}>{state}</span>;
}

export function NodeStatusBadge({ status }: { status: string }) {
  const tone = status === 'Ready' ? 'ok' : status === 'Down' ? 'bad' : 'muted';
  return <span className={`badge ${tone}`}>{status}</span>;
}
