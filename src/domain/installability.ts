import type { Catalog, CatalogVersion } from './catalog.js';
import type { Component } from './components.js';
import { compareReleases, releaseOf, sameRelease } from './versions.js';

/** What installability needs of a node: its name, the distribution its agent reports, what it runs. */
export interface NodeDistribution {
  name: string;
  /** null: not reported (an old agent, a Kubernetes or Swarm node without agent facts). */
  distribution: string | null;
  versions: Partial<Record<Component, string>>;
}

/** Whether a catalog version installs on a cluster's nodes, and why not. */
export interface Installability {
  version: string;
  installable: boolean;
  /** Why it is not installable (`Debian 12 packages; nodes a, b run debian-13`); null when it is. */
  reason: string | null;
  /** The nodes it would have to go on but cannot, by name, with their distribution. */
  blockedNodes: Array<{ name: string; distribution: string }>;
}

const NAMES_SHOWN = 5;

/**
 * The catalog as installs see it: a version whose release has a binary archive in the
 * artifact mirror (`binaryReleases`, per component) installs anywhere, since a binary archive
 * does not depend on the distribution's packages and agents that list `binary` among their
 * methods take it; its `distributions`, which describe the catalog's packages, are dropped.
 */
export function withBinaryReleases(catalog: Catalog, binaryReleases: ReadonlyMap<Component, ReadonlySet<string>>): Catalog {
  if (binaryReleases.size === 0) return catalog;
  const out = { ...catalog };
  for (const [component, releases] of binaryReleases) {
    out[component] = catalog[component].map((v) => {
      if (!v.distributions || !releases.has(releaseOf(v.version))) return v;
      const { distributions: _packagesOnly, ...anywhere } = v;
      return anywhere;
    });
  }
  return out;
}

/** `debian-12` → `Debian 12`, `ubuntu-24.04` → `Ubuntu 24.04`; the catalog's notes say more. */
export function distributionLabel(distribution: string): string {
  const m = /^([a-z]+)-(.+)$/.exec(distribution);
  const id = m?.[1] ?? distribution;
  const name = id.charAt(0).toUpperCase() + id.slice(1);
  return m ? `${name} ${m[2]}` : name;
}

function nameList(names: string[]): string {
  const shown = names.slice(0, NAMES_SHOWN).join(', ');
  return names.length > NAMES_SHOWN ? `${shown} and ${names.length - NAMES_SHOWN} more` : shown;
}

/**
 * Whether `entry` installs on the nodes an upgrade to it would touch: those that run the
 * component at another release (a node that runs it already, or does not run the
 * component, gets nothing installed). A version without `distributions` installs
 * anywhere; a node that reports no distribution does not restrict (Upshift cannot know
 * better than the operator there, and refusing would block Kubernetes and Swarm clusters
 * whose nodes have no agent facts).
 */
export function installability(entry: CatalogVersion, component: Component, nodes: readonly NodeDistribution[]): Installability {
  const allowed = entry.distributions;
  const blockedNodes: Installability['blockedNodes'] = [];
  if (allowed) {
    for (const n of nodes) {
      const current = n.versions[component];
      if (current === undefined || sameRelease(current, entry.version)) continue;
      if (n.distribution !== null && !allowed.includes(n.distribution)) blockedNodes.push({ name: n.name, distribution: n.distribution });
    }
  }
  if (!allowed || blockedNodes.length === 0) return { version: entry.version, installable: true, reason: null, blockedNodes };
  const byDistribution = new Map<string, string[]>();
  for (const b of blockedNodes) {
    const list = byDistribution.get(b.distribution) ?? [];
    list.push(b.name);
    byDistribution.set(b.distribution, list);
  }
  const runs = [...byDistribution].map(
    ([distribution, names]) =>
      `${names.length === 1 ? 'node' : 'nodes'} ${nameList(names)} ${names.length === 1 ? 'runs' : 'run'} ${distribution}`,
  );
  const reason = `${allowed.map(distributionLabel).join(', ')} packages; ${runs.join('; ')}`;
  return { version: entry.version, installable: false, reason, blockedNodes };
}

/** Every version of a component in the catalog, oldest first, with whether it installs on these nodes. */
export function installableVersions(catalog: Catalog, component: Component, nodes: readonly NodeDistribution[]): Installability[] {
  return [...catalog[component]].sort((a, b) => compareReleases(a.version, b.version)).map((v) => installability(v, component, nodes));
}

/**
 * The default target of an upgrade: the newest version that installs on the nodes. With
 * no distribution restriction in play this is the catalog's latest; undefined when no
 * version installs.
 */
export function newestInstallable(catalog: Catalog, component: Component, nodes: readonly NodeDistribution[]): string | undefined {
  const list = installableVersions(catalog, component, nodes).filter((v) => v.installable);
  return list.length > 0 ? list[list.length - 1]?.version : undefined;
}
