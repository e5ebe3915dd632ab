import type { Catalog } from './catalog.js';
import { latestVersion } from './catalog.js';
import { newestInstallable } from './installability.js';
import type { Component, ComponentVersions } from './components.js';
import { componentDisplayName, components } from './components.js';
import type { ClusterRecord, UpgradeRecord } from './model.js';
import type { UpgradeState } from './upgrade-state.js';
import { compareReleases } from './versions.js';

/**
 * Per component: how many nodes run each version, the catalog's latest, and whether any node
 * runs an older release than the newest version that installs on the nodes (the default
 * target of an upgrade, domain/installability.ts): a Debian 12 cluster is not upgradable to
 * Debian 13 packages.
 */
export interface ComponentSummary {
  versions: Record<string, number>;
  latest: string | null;
  upgradable: boolean;
}

/** Nodes that run the same versions of everything on the same distribution, and how many they are. */
export interface VersionGroup {
  versions: ComponentVersions;
  /** What their agents report; null without one (it restricts nothing). */
  distribution: string | null;
  count: number;
}

export function summariseComponents(catalog: Catalog, groups: readonly VersionGroup[]): Record<Component, ComponentSummary> {
  const out = {} as Record<Component, ComponentSummary>;
  for (const component of components) {
    const latest = latestVersion(catalog, component) ?? null;
    const versions: Record<string, number> = {};
    for (const group of groups) {
      const version = group.versions[component];
      if (version !== undefined) versions[version] = (versions[version] ?? 0) + group.count;
    }
    // Per group, not per node: names only matter for the reasons, which are not shown here.
    const target = newestInstallable(
      catalog,
      component,
      groups.map((g) => ({ name: '', distribution: g.distribution, versions: g.versions })),
    );
    // Compare each distinct version once, not once per node.
    const upgradable = target !== undefined && Object.keys(versions).some((v) => compareReleases(v, target) < 0);
    out[component] = { versions, latest, upgradable };
  }
  return out;
}

/** A cluster as a whole: nothing going on, an upgrade active, or not reachable by its driver. */
export const ClusterStatus = { running: 'Running', upgrading: 'Upgrading', unavailable: 'Unavailable' } as const;
export type ClusterStatus = (typeof ClusterStatus)[keyof typeof ClusterStatus];
export const clusterStatuses: readonly ClusterStatus[] = Object.values(ClusterStatus);

/** The cluster's status and the sentence the seeds' consoles show beside it. */
export function clusterStatus(
  cluster: Pick<ClusterRecord, 'unavailableReason'>,
  active: Pick<UpgradeRecord, 'component' | 'state'> | undefined,
): { status: ClusterStatus; statusText: string } {
  if (cluster.unavailableReason !== null) {
    return { status: 'Unavailable', statusText: `Unavailable: ${cluster.unavailableReason}` };
  }
  if (!active) return { status: 'Running', statusText: 'Running' };
  return { status: 'Upgrading', statusText: upgradeStatusText(active.component, active.state) };
}

export function upgradeStatusText(component: Component, state: UpgradeState): string {
  const name = componentDisplayName[component];
  switch (state) {
    case 'BackingUp':
      return `${name} is upgrading: backing up snapshots`;
    case 'SnapshotFailed':
      return `${name} upgrade is waiting: a snapshot failed`;
    case 'Upgrading':
      return `${name} is upgrading`;
    case 'Paused':
      return `${name} upgrade is paused`;
    case 'Canceled':
      return `${name} upgrade was canceled`;
    case 'Completed':
      return `${name} upgrade completed`;
    default: {
      const never: never = state;
      return never;
    }
  }
}
