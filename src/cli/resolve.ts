import type { ClusterView, UpgradeList } from '../api/index.js';
import { ApiError, CliError, ExitCode } from './errors.js';
import type { ApiClient } from './http.js';

const upgradeIdPattern = /^upg_[0-9a-z]{16}$/;

export function isUpgradeId(ref: string): boolean {
  return upgradeIdPattern.test(ref);
}

export function clusterPath(ref: string): string {
  return `/clusters/${encodeURIComponent(ref)}`;
}

export function upgradePath(id: string): string {
  return `/upgrades/${encodeURIComponent(id)}`;
}

/** A cluster by name or id (the API takes both in paths). */
export function getCluster(client: ApiClient, ref: string): Promise<ClusterView> {
  return client.get<ClusterView>(clusterPath(ref));
}

/** The cluster id for filters that take ids only (`/events`, `/stream`). */
export async function clusterIdOf(client: ApiClient, ref: string): Promise<string> {
  return (await getCluster(client, ref)).id;
}

/**
 * An upgrade reference: an upgrade id (`upg_…`), or a cluster name or id, meaning that
 * cluster's active upgrade, or when none is active its latest one.
 */
export async function resolveUpgradeId(client: ApiClient, ref: string): Promise<string> {
  if (isUpgradeId(ref)) return ref;
  let cluster: ClusterView;
  try {
    cluster = await getCluster(client, ref);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      throw new CliError(ExitCode.notFound, `no upgrade with id ${JSON.stringify(ref)} and no cluster named ${JSON.stringify(ref)}`, {
        hint: 'upgrade ids look like upg_4tfp0j3h6ws941ax; `upshift upgrade list` shows them',
      });
    }
    throw error;
  }
  if (cluster.activeUpgradeId) return cluster.activeUpgradeId;
  const { items } = await client.get<UpgradeList>('/upgrades', { clusterId: cluster.id });
  const latest = items[0];
  if (!latest)
    throw new CliError(ExitCode.notFound, `cluster ${cluster.name} has no upgrades`, { hint: 'start one with `upshift upgrade start`' });
  return latest.id;
}
