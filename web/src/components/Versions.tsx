import type { ComponentSummaryView } from '@upshift/api';
import { versionEntries } from '../lib/format';

/**
 * The versions of one component in use on a cluster: one version alone, or each version
 * with its node count when the cluster is mixed (mid-upgrade, or after a cancel).
 */
export function VersionSummary({ summary }: { summary: ComponentSummaryView | undefined }) {
  const entries = summary ? versionEntries(summary.versions) : [];
  if (entries.length === 0)
    return (
      <span className="muted" title="not installed">
        —
      </span>
    );
  if (entries.length === 1) {
    const [version] = entries[0] as [string, number];
    return <span className="version">{version}</span>;
  }
  return (
    <ul className="version-list" aria-label="versions in use">
      {entries.map(([version, count]) => (
        <li key={version}>
          <span className="version">{version}</span> <span className="count">× {count.toLocaleString('en')}</span>
        </li>
      ))}
    </ul>
  );
}
