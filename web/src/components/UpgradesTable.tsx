import type { UpgradeView } from '@upshift/api';
import { displayComponent, formatTime } from '../lib/format';
import { Link } from '../lib/router';
import { UpgradeStateBadge } from './Badges';
import { ProgressBar } from './ProgressBar';

/** A list of upgrades, newest first, each linking to its page. */
export function UpgradesTable({ upgrades, showCluster }: { upgrades: UpgradeView[]; showCluster: boolean }) {
  return (
    <div className="table-wrap">
      <table className="upgrades-table" data-testid="upgrades-table">
        <thead>
          <tr>
            <th scope="col">Upgrade</th>
            {showCluster ? <th scope="col">Cluster</th> : null}
            <th scope="col">State</th>
            <th scope="col">Progress</th>
            <th scope="col">Started</th>
            <th scope="col">Finished</th>
          </tr>
        </thead>
        <tbody>
          {upgrades.map((u) => (
            <tr key={u.id} data-upgrade={u.id}>
              <th scope="row">
                <Link to={`/upgrades/${u.id}`}>
                  {displayComponent(u.component)} → {u.toVersion}
                </Link>
                {u.snapshot === 'before' ? <span className="tag">snapshots</span> : null}
              </th>
              {showCluster ? (
                <td>
                  <Link to={`/clusters/${u.clusterId}`}>{u.clusterName ?? u.clusterId}</Link>
                </td>
              ) : null}
              <td>
                <UpgradeStateBadge state={u.state} />
              </td>
              <td className="progress-cell">
                <ProgressBar counts={u.nodes} compact />
              </td>
              <td>{formatTime(u.createdAt)}</td>
              <td>{formatTime(u.finishedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
