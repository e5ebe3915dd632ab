import { describe, expect, it } from 'vitest';
import { defaultCatalog, mergeCatalog } from '../../src/domain/catalog.js';
import {
  type NodeDistribution,
  distributionLabel,
  installability,
  installableVersions,
  newestInstallable,
  withBinaryReleases,
} from '../../src/domain/installability.js';
import { summariseComponents } from '../../src/domain/fleet-summary.js';

const node = (name: string, distribution: string | null, docker?: string): NodeDistribution => ({
  name,
  distribution,
  versions: docker === undefined ? {} : { docker },
});

const entry = (version: string) => {
  const found = defaultCatalog.docker.find((v) => v.version === version);
  if (!found) throw new Error(`no docker ${version} in the built-in catalog`);
  return found;
};

describe('installability of a catalog version on a cluster', () => {
  it('offers a version whose distributions include every node it would go on', () => {
    const nodes = [node('a', 'debian-13', '26.1.5'), node('b', 'debian-13', '26.1.5')];
    expect(installability(entry('28.5.2'), 'docker', nodes)).toEqual({
      version: '28.5.2',
      installable: true,
      reason: null,
      blockedNodes: [],
    });
  });

  it('refuses a version for other distributions, naming the nodes by distribution', () => {
    const nodes = [node('a', 'debian-13', '26.1.5'), node('b', 'debian-13', '26.1.5'), node('c', 'ubuntu-24.04', '26.1.5')];
    const verdict = installability(entry('20.10.24'), 'docker', nodes);
    expect(verdict.installable).toBe(false);
    expect(verdict.reason).toBe('Debian 12 packages; nodes a, b run debian-13; node c runs ubuntu-24.04');
    expect(verdict.blockedNodes).toEqual([
      { name: 'a', distribution: 'debian-13' },
      { name: 'b', distribution: 'debian-13' },
      { name: 'c', distribution: 'ubuntu-24.04' },
    ]);
  });

  it('shortens long lists of node names', () => {
    const nodes = Array.from({ length: 8 }, (_, i) => node(`n${i + 1}`, 'debian-12', '20.10.24'));
    expect(installability(entry('28.5.2'), 'docker', nodes).reason).toBe(
      'Debian 13 packages; nodes n1, n2, n3, n4, n5 and 3 more run debian-12',
    );
  });

  it('is not restricted by nodes that report no distribution, that run the version already, or that lack the component', () => {
    const nodes = [node('old-agent', null, '20.10.24'), node('done', 'debian-12', '28.5.2'), node('no-docker', 'debian-12')];
    expect(installability(entry('28.5.2'), 'docker', nodes).installable).toBe(true);
  });

  it('offers a version without distributions anywhere', () => {
    const catalog = mergeCatalog(defaultCatalog, {
      docker: [{ version: '27.0.1', artifacts: [{ method: 'binary', file: 'docker-27.0.1.tgz', sha256: 'b'.repeat(64) }] }],
    });
    const nodes = [node('a', 'alpine-3.20', '20.10.24'), node('b', 'debian', '20.10.24')];
    const verdicts = installableVersions(catalog, 'docker', nodes);
    expect(verdicts.map((v) => [v.version, v.installable])).toEqual([
      ['20.10.24', true],
      ['26.1.5', false],
      ['27.0.1', true],
      ['28.5.2', false],
    ]);
    expect(newestInstallable(catalog, 'docker', nodes)).toBe('27.0.1');
  });
});

describe('the default target', () => {
  it('is the newest version that installs on the nodes', () => {
    expect(newestInstallable(defaultCatalog, 'docker', [node('a', 'debian-13', '26.1.5')])).toBe('28.5.2');
    expect(
      newestInstallable(defaultCatalog, 'containerd', [{ name: 'a', distribution: 'debian-12', versions: { containerd: '1.6.20' } }]),
    ).toBe('1.6.20');
    expect(newestInstallable(defaultCatalog, 'docker', [node('a', 'debian-12', '20.10.24')])).toBe('20.10.24');
  });

  it("is the catalog's latest when no node reports a distribution", () => {
    expect(newestInstallable(defaultCatalog, 'docker', [node('a', null, '20.10.24'), node('b', null, '26.1.5')])).toBe('28.5.2');
  });

  it('counts only the nodes a version would go on', () => {
    // 26.1.5 goes on b alone, which runs Debian 13; 28.5.2 would go on a too (Debian 12).
    const nodes = [node('a', 'debian-12', '26.1.5'), node('b', 'debian-13', '20.10.24')];
    expect(newestInstallable(defaultCatalog, 'docker', nodes)).toBe('26.1.5');
  });

  it('is none when no version installs on a mixed cluster', () => {
    // 20.10.24 would go on b (Ubuntu), 26.1.5 and 28.5.2 on a (Debian 11).
    const nodes = [node('a', 'debian-11', '20.10.24'), node('b', 'ubuntu-24.04', '26.1.5')];
    expect(newestInstallable(defaultCatalog, 'docker', nodes)).toBeUndefined();
  });
});

describe("a cluster's summary", () => {
  it('is upgradable only to a version that installs on its nodes', () => {
    const groups = (distribution: string | null) => [{ versions: { docker: '20.10.24' }, distribution, count: 3 }];
    expect(summariseComponents(defaultCatalog, groups('debian-12')).docker).toEqual({
      versions: { '20.10.24': 3 },
      latest: '28.5.2',
      upgradable: false,
    });
    expect(summariseComponents(defaultCatalog, groups('debian-13')).docker.upgradable).toBe(true);
    expect(summariseComponents(defaultCatalog, groups(null)).docker.upgradable).toBe(true);
  });

  it('lets a binary archive in the mirror install anywhere', () => {
    const withBinary = withBinaryReleases(defaultCatalog, new Map([['docker', new Set(['26.1.5'])]]));
    expect(withBinary.docker.find((v) => v.version === '26.1.5')?.distributions).toBeUndefined();
    expect(withBinary.docker.find((v) => v.version === '28.5.2')?.distributions).toEqual(['debian-13']);
    expect(newestInstallable(withBinary, 'docker', [node('a', 'debian-12', '20.10.24')])).toBe('26.1.5');
    // The built-in catalog is left as it was.
    expect(defaultCatalog.docker.find((v) => v.version === '26.1.5')?.distributions).toEqual(['debian-13']);
  });
});

describe('distribution labels', () => {
  it('reads like the distribution', () => {
    expect(distributionLabel('debian-12')).toBe('Debian 12');
    expect(distributionLabel('ubuntu-24.04')).toBe('Ubuntu 24.04');
    expect(distributionLabel('debian')).toBe('Debian');
  });
});
