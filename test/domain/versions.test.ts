import { describe, expect, it } from 'vitest';
import {
  compareNatural,
  compareReleases,
  compareVersions,
  isValidVersion,
  newestVersion,
  releaseOf,
  sameRelease,
} from '../../src/domain/versions.js';

describe('versions', () => {
  it('orders Debian package versions like dpkg', () => {
    expect(compareVersions('20.10.24', '26.1.5+dfsg1-9')).toBeLessThan(0);
    expect(compareVersions('1.6.20~ds1-1+deb12u2', '1.6.20~ds1-1+deb12u3')).toBeLessThan(0);
    expect(compareVersions('1.6.20~ds1-1', '1.6.20')).toBeLessThan(0);
    expect(compareVersions('1:1.0', '2.0')).toBeGreaterThan(0);
    expect(compareVersions('20221219', '20240729')).toBeLessThan(0);
    expect(compareVersions('1.10.0', '1.9.9')).toBeGreaterThan(0);
    expect(compareVersions('26.1.5', '26.1.5')).toBe(0);
  });

  it('reduces packaged versions to their release', () => {
    expect(releaseOf('26.1.5+dfsg1-9')).toBe('26.1.5');
    expect(releaseOf('26.1.5+dfsg1-9+deb13u1')).toBe('26.1.5');
    expect(releaseOf('1.6.20~ds1-1+deb12u3')).toBe('1.6.20');
    expect(releaseOf('0.0~20240729.0-1~bpo12+1')).toBe('20240729');
    expect(releaseOf('20240729')).toBe('20240729');
    expect(releaseOf('2:20.10.24+dfsg1-1')).toBe('20.10.24');
    expect(sameRelease('26.1.5+dfsg1', '26.1.5')).toBe(true);
    expect(compareReleases('1.6.20~ds1-1+deb12u3', '1.7.24')).toBeLessThan(0);
  });

  it('finds the newest release', () => {
    expect(newestVersion(['20.10.24', '26.1.5', '24.0.9'])).toBe('26.1.5');
    expect(newestVersion([])).toBeUndefined();
  });

  it('accepts version strings and refuses shell characters', () => {
    for (const v of ['20.10.24', '26.1.5+dfsg1-9', '1.6.20~ds1-1+deb12u3', '20240729', '1:2.0']) expect(isValidVersion(v)).toBe(true);
    for (const v of ['', '1.0; rm -rf /', '$(id)', '1.0 2.0', '`x`', '-1', '1|2', 'a'.repeat(65)]) expect(isValidVersion(v)).toBe(false);
  });

  it('sorts names naturally', () => {
    expect(['sim-10', 'sim-2', 'sim-1'].sort(compareNatural)).toEqual(['sim-1', 'sim-2', 'sim-10']);
    expect(['node-b', 'node-a'].sort(compareNatural)).toEqual(['node-a', 'node-b']);
  });
});
