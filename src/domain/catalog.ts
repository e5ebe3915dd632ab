import { Component, components, isComponent } from './components.js';
import { UpshiftError, ErrorCode } from './errors.js';
import { PRODUCT_VERSION } from './product-version.js';
import { compareReleases, isValidVersion, newestVersion, releaseOf } from './versions.js';

/**
 * The catalog says which versions exist for each component and where their bits come
 * from. A built-in default lists the Debian packages that really install on the test
 * hosts, each with the distribution it installs on; a user catalog file adds versions or
 * artifacts. The newest version is the component's *latest*; a cluster is upgradable when
 * a node runs something older. Which versions a given cluster can take is
 * `domain/installability.ts`.
 */
export const InstallMethod = {
  /** Debian packages served by the artifact mirror, installed with dpkg/apt. */
  deb: 'deb',
  /** `apt-get install PKG=VERSION` from the node's own repositories. */
  apt: 'apt',
  /** An archive of binaries unpacked into place. */
  binary: 'binary',
  /** A container image run by an executor (Kubernetes). */
  image: 'image',
  /** The Upshift agent's own bundle. */
  agentBundle: 'agent-bundle',
} as const;
export type InstallMethod = (typeof InstallMethod)[keyof typeof InstallMethod];
const installMethods: readonly string[] = Object.values(InstallMethod);
/** The install methods of a file in the server's artifact mirror. */
export const artifactMethods = [InstallMethod.deb, InstallMethod.binary] as const;

export interface CatalogArtifact {
  method: InstallMethod;
  /** A file name in the artifact mirror, or a package name for `apt`. */
  file?: string;
  url?: string;
  /** Lower-case hex sha256 of the file; required for files and URLs. */
  sha256?: string;
  /** Debian architecture (`amd64`, …); absent means any. */
  arch?: string;
  /** Package version for `apt`/`deb` (`26.1.5+dfsg1-9+deb13u1+b1`). */
  packageVersion?: string;
  /** Container image for `image`. */
  image?: string;
  command?: string[];
}

export interface CatalogVersion {
  version: string;
  artifacts: CatalogArtifact[];
  notes?: string;
  /**
   * The distributions this version installs on, as agents report them (`debian-13`: the
   * os-release ID and VERSION_ID, see agent/facts.ts). Absent: it installs anywhere, as
   * binary archives and installer images do. Distribution packages (apt, deb) name theirs,
   * because apt cannot install a package built against another release's libraries.
   */
  distributions?: string[];
}

/**
 * A distribution as agents report it and catalogs name it: os-release's ID, then `-` and
 * VERSION_ID where there is one (`debian-13`, `ubuntu-24.04`, `debian` for sid), lower
 * case; os-release allows only these characters in both fields.
 */
export const DISTRIBUTION_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export type Catalog = Record<Component, CatalogVersion[]>;

export const defaultCatalog: Catalog = {
  agent: [
    { version: '1.0.0', artifacts: [{ method: 'agent-bundle' }] },
    { version: PRODUCT_VERSION, artifacts: [{ method: 'agent-bundle' }] },
  ],
  docker: [
    {
      version: '20.10.24',
      artifacts: [{ method: 'apt', file: 'docker.io', packageVersion: '20.10.24+dfsg1-1+deb12u1+b6' }],
      notes: 'Debian 12 (bookworm)',
      distributions: ['debian-12'],
    },
    {
      version: '26.1.5',
      artifacts: [{ method: 'apt', file: 'docker.io', packageVersion: '26.1.5+dfsg1-9+deb13u1+b1' }],
      notes: 'Debian 13 (trixie)',
      distributions: ['debian-13'],
    },
    {
      // sid's package; test/hosts/debian.e2e.test.ts installs it on trixie hosts.
      version: '28.5.2',
      artifacts: [{ method: 'apt', file: 'docker.io', packageVersion: '28.5.2+dfsg4-5' }],
      notes: "Debian sid's packages, which install on Debian 13 (trixie)",
      distributions: ['debian-13'],
    },
  ],
  containerd: [
    {
      version: '1.6.20',
      artifacts: [{ method: 'apt', file: 'containerd', packageVersion: '1.6.20~ds1-1+deb12u3' }],
      notes: 'Debian 12 (bookworm)',
      distributions: ['debian-12'],
    },
    {
      version: '1.7.24',
      artifacts: [{ method: 'apt', file: 'containerd', packageVersion: '1.7.24~ds1-6+deb13u1' }],
      notes: 'Debian 13 (trixie)',
      distributions: ['debian-13'],
    },
    {
      // sid's package; Docker Engine 28.5.2 runs on it (test/hosts/debian.e2e.test.ts).
      version: '2.1.9',
      artifacts: [{ method: 'apt', file: 'containerd', packageVersion: '2.1.9+ds1-5' }],
      notes: "Debian sid's package, which installs on Debian 13 (trixie)",
      distributions: ['debian-13'],
    },
  ],
  'sandboxed-runtime': [
    {
      version: '20221219',
      artifacts: [{ method: 'apt', file: 'runsc', packageVersion: '0.0~20221219.0-2+b3' }],
      notes: 'gVisor runsc, Debian 12',
      distributions: ['debian-12'],
    },
    {
      version: '20240729',
      artifacts: [{ method: 'apt', file: 'runsc', packageVersion: '0.0~20240729.0-4~bpo12+2' }],
      notes: 'gVisor runsc, bookworm-backports',
      distributions: ['debian-12'],
    },
  ],
};

const latestCache = new WeakMap<CatalogVersion[], string | undefined>();

export function latestVersion(catalog: Catalog, component: Component): string | undefined {
  const list = catalog[component];
  if (!latestCache.has(list)) latestCache.set(list, newestVersion(list.map((v) => v.version)));
  return latestCache.get(list);
}

export function oldestVersion(catalog: Catalog, component: Component): string | undefined {
  const sorted = [...catalog[component]].sort((a, b) => compareReleases(a.version, b.version));
  return sorted[0]?.version;
}

export function findCatalogVersion(catalog: Catalog, component: Component, version: string): CatalogVersion | undefined {
  const wanted = releaseOf(version);
  return catalog[component].find((v) => releaseOf(v.version) === wanted);
}

function catalogError(where: string, message: string): UpshiftError {
  return new UpshiftError(ErrorCode.VALIDATION_FAILED, `catalog: ${where}: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const artifactKeys = new Set(['method', 'file', 'url', 'sha256', 'arch', 'packageVersion', 'image', 'command']);

function parseArtifact(raw: unknown, where: string): CatalogArtifact {
  if (!isRecord(raw)) throw catalogError(where, 'must be an object');
  for (const key of Object.keys(raw)) {
    if (!artifactKeys.has(key)) throw catalogError(`${where}.${key}`, 'unknown key');
  }
  const method = raw['method'];
  if (typeof method !== 'string' || !installMethods.includes(method)) {
    throw catalogError(`${where}.method`, `must be one of ${installMethods.join(', ')}`);
  }
  const out: CatalogArtifact = { method: method as InstallMethod };
  for (const key of ['file', 'url', 'sha256', 'arch', 'packageVersion', 'image'] as const) {
    const value = raw[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length === 0) throw catalogError(`${where}.${key}`, 'must be a non-empty string');
    out[key] = value;
  }
  if (out.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(out.sha256)) {
    throw catalogError(`${where}.sha256`, 'must be 64 lower-case hex characters');
  }
  if (out.file !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._+~-]*$/.test(out.file)) {
    throw catalogError(`${where}.file`, 'must be a plain file or package name');
  }
  if (out.packageVersion !== undefined && !isValidVersion(out.packageVersion)) {
    throw catalogError(`${where}.packageVersion`, 'is not a valid version string');
  }
  const command = raw['command'];
  if (command !== undefined) {
    if (!Array.isArray(command) || !command.every((c) => typeof c === 'string')) {
      throw catalogError(`${where}.command`, 'must be a list of strings');
    }
    out.command = command as string[];
  }
  return out;
}

/**
 * A version's `distributions`: absent (installs anywhere), or a non-empty list of
 * distributions as agents report them. An empty list would offer the version nowhere,
 * which is a mistake rather than a wish: leave the version out instead.
 */
function parseDistributions(raw: unknown, where: string): string[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw) || raw.length === 0) {
    throw catalogError(
      where,
      'must be a non-empty list such as [debian-13, ubuntu-24.04]; leave it out for a version that installs anywhere',
    );
  }
  const out: string[] = [];
  raw.forEach((d: unknown, i) => {
    if (typeof d !== 'string' || !DISTRIBUTION_PATTERN.test(d)) {
      throw catalogError(
        `${where}[${i}]`,
        `must be a distribution as os-release names it: ID-VERSION_ID in lower case, such as debian-13 or ubuntu-24.04 (got ${JSON.stringify(d)})`,
      );
    }
    if (!out.includes(d)) out.push(d);
  });
  return out;
}

/**
 * Validates a user catalog (already parsed from JSON or YAML) and merges it over `base`:
 * a version the user lists replaces the built-in entry of the same release; new versions
 * are added. Throws with the path of the first offending key.
 */
export function mergeCatalog(base: Catalog, raw: unknown): Catalog {
  if (!isRecord(raw)) throw catalogError('(root)', 'must be an object of components');
  const merged: Catalog = {
    agent: [...base.agent],
    docker: [...base.docker],
    containerd: [...base.containerd],
    'sandboxed-runtime': [...base['sandboxed-runtime']],
  };
  for (const [name, list] of Object.entries(raw)) {
    if (!isComponent(name)) throw catalogError(name, `unknown component; known: ${components.join(', ')}`);
    if (!Array.isArray(list)) throw catalogError(name, 'must be a list of versions');
    list.forEach((entry: unknown, i) => {
      const where = `${name}[${i}]`;
      if (!isRecord(entry)) throw catalogError(where, 'must be an object');
      for (const key of Object.keys(entry)) {
        if (!['version', 'artifacts', 'notes', 'distributions'].includes(key)) throw catalogError(`${where}.${key}`, 'unknown key');
      }
      const version = entry['version'];
      if (typeof version !== 'string' || !isValidVersion(version)) {
        throw catalogError(`${where}.version`, 'must be a version string such as 26.1.5');
      }
      const artifactsRaw = entry['artifacts'] ?? [];
      if (!Array.isArray(artifactsRaw)) throw catalogError(`${where}.artifacts`, 'must be a list');
      const artifacts = artifactsRaw.map((a: unknown, j) => parseArtifact(a, `${where}.artifacts[${j}]`));
      const notes = entry['notes'];
      const parsed: CatalogVersion = { version, artifacts };
      if (typeof notes === 'string') parsed.notes = notes;
      const distributions = parseDistributions(entry['distributions'], `${where}.distributions`);
      if (distributions) parsed.distributions = distributions;
      const existing = merged[name].findIndex((v) => releaseOf(v.version) === releaseOf(version));
      if (existing >= 0) merged[name][existing] = parsed;
      else merged[name].push(parsed);
    });
  }
  for (const c of components) merged[c].sort((a, b) => compareReleases(a.version, b.version));
  return merged;
}

export { Component };
