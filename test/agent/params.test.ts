import { describe, expect, it } from 'vitest';
import {
  TaskParamsError,
  isSafeFileName,
  validateSnapshotParams,
  validateTaskEnvelope,
  validateUpgradeParams,
} from '../../src/agent/params.js';

const sha = 'a'.repeat(64);

describe('task parameter validation', () => {
  it('accepts a well-formed docker upgrade', () => {
    const p = validateUpgradeParams('docker-engine', {
      component: 'docker',
      fromVersion: '20.10.24',
      toVersion: '26.1.5',
      artifacts: [
        { method: 'binary', file: 'docker-engine-26.1.5-amd64.tar.gz', sha256: sha },
        { method: 'apt', package: 'docker.io', packageVersion: '26.1.5+dfsg1-9+deb13u1' },
      ],
    });
    expect(p.artifacts).toHaveLength(2);
    expect(p.fromVersion).toBe('20.10.24');
  });

  it('refuses versions, file names, packages and checksums a recipe must not use', () => {
    const base = { component: 'docker', fromVersion: null, toVersion: '26.1.5', artifacts: [] as unknown[] };
    const bad: [string, unknown][] = [
      ['toVersion', { ...base, toVersion: '26.1.5; reboot' }],
      ['toVersion', { ...base, toVersion: '../../etc' }],
      ['fromVersion', { ...base, fromVersion: '$(id)' }],
      ['file', { ...base, artifacts: [{ method: 'binary', file: '../../etc/passwd', sha256: sha }] }],
      ['file', { ...base, artifacts: [{ method: 'deb', file: 'a/b.deb', sha256: sha }] }],
      ['file', { ...base, artifacts: [{ method: 'deb', file: '-rf', sha256: sha }] }],
      ['sha256', { ...base, artifacts: [{ method: 'binary', file: 'x.tar.gz', sha256: 'ABC' }] }],
      ['needs file and sha256', { ...base, artifacts: [{ method: 'binary', file: 'x.tar.gz' }] }],
      ['package', { ...base, artifacts: [{ method: 'apt', package: 'docker.io --reinstall', packageVersion: '1' }] }],
      ['pinned', { ...base, artifacts: [{ method: 'apt', package: 'docker.io' }] }],
      ['method', { ...base, artifacts: [{ method: 'shell', file: 'x' }] }],
      ['upgrades docker', { ...base, component: 'containerd' }],
      ['component', { ...base, component: 'kernel' }],
    ];
    for (const [fragment, raw] of bad) {
      expect(() => validateUpgradeParams('docker-engine', raw), fragment).toThrow(TaskParamsError);
      expect(() => validateUpgradeParams('docker-engine', raw), fragment).toThrow(
        new RegExp(fragment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
      );
    }
  });

  it('ties each recipe to its component', () => {
    expect(
      validateUpgradeParams('gvisor-runsc', {
        component: 'sandboxed-runtime',
        fromVersion: '20221219',
        toVersion: '20240729',
        artifacts: [],
      }).toVersion,
    ).toBe('20240729');
    expect(
      validateUpgradeParams('agent-self-upgrade', {
        component: 'agent',
        fromVersion: '1.0.0',
        toVersion: '1.1.0',
        artifacts: [{ method: 'agent-bundle', sha256: sha }],
      }).artifacts[0]?.method,
    ).toBe('agent-bundle');
    expect(() => validateUpgradeParams('snapshot', { component: 'docker', toVersion: '1', artifacts: [] })).toThrow(
      /takes no upgrade parameters/,
    );
  });

  it('checks snapshot labels and task envelopes', () => {
    expect(validateSnapshotParams({ label: 'upshift-up_01J5' }).label).toBe('upshift-up_01J5');
    expect(() => validateSnapshotParams({ label: '../x' })).toThrow(TaskParamsError);
    expect(() => validateSnapshotParams({ label: 'a b' })).toThrow(TaskParamsError);
    expect(validateTaskEnvelope({ taskKey: 'nt_1.1', recipe: 'docker-engine', params: {}, createdAt: 'x' }).recipe).toBe('docker-engine');
    expect(() => validateTaskEnvelope({ taskKey: 'nt_1.1', recipe: 'rm-rf', params: {} })).toThrow(/unknown recipe/);
    expect(() => validateTaskEnvelope({ taskKey: 'a/b', recipe: 'snapshot', params: {} })).toThrow(/task key/);
  });

  it('knows a plain file name', () => {
    expect(isSafeFileName('docker.io_26.1.5+dfsg1-9+deb13u1_amd64.deb')).toBe(true);
    expect(isSafeFileName('..')).toBe(false);
    expect(isSafeFileName('a..b')).toBe(false);
    expect(isSafeFileName('.hidden')).toBe(false);
  });
});
