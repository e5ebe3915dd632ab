import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultCatalog, latestVersion, mergeCatalog } from '../../src/domain/catalog.js';
import { parseDuration } from '../../src/domain/duration.js';
import { loadServerConfig } from '../../src/server/config.js';

/** Temp dirs of config files, removed after each test. */
const dirs: string[] = [];
const configDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'upshift-config-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('catalog', () => {
  it('has the installable versions built in, each Debian package with its distribution', () => {
    expect(latestVersion(defaultCatalog, 'docker')).toBe('28.5.2');
    expect(latestVersion(defaultCatalog, 'containerd')).toBe('2.1.9');
    expect(latestVersion(defaultCatalog, 'sandboxed-runtime')).toBe('20240729');
    const distributions = (c: 'docker' | 'containerd' | 'sandboxed-runtime') =>
      Object.fromEntries(defaultCatalog[c].map((v) => [v.version, v.distributions]));
    expect(distributions('docker')).toEqual({ '20.10.24': ['debian-12'], '26.1.5': ['debian-13'], '28.5.2': ['debian-13'] });
    expect(distributions('containerd')).toEqual({ '1.6.20': ['debian-12'], '1.7.24': ['debian-13'], '2.1.9': ['debian-13'] });
    expect(distributions('sandboxed-runtime')).toEqual({ '20221219': ['debian-12'], '20240729': ['debian-12'] });
    // sid's package versions, as test/hosts/debian.e2e.test.ts installs them on trixie.
    expect(defaultCatalog.docker.find((v) => v.version === '28.5.2')?.artifacts[0]?.packageVersion).toBe('28.5.2+dfsg4-5');
    expect(defaultCatalog.containerd.find((v) => v.version === '2.1.9')?.artifacts[0]?.packageVersion).toBe('2.1.9+ds1-5');
    // The agent's own bundle installs anywhere.
    expect(defaultCatalog.agent.every((v) => v.distributions === undefined)).toBe(true);
  });
  it('reads distributions from a user catalog and says what is wrong with bad ones', () => {
    const merged = mergeCatalog(defaultCatalog, {
      docker: [
        { version: '27.5.1', distributions: ['ubuntu-24.04', 'debian-13', 'debian-13'], artifacts: [{ method: 'apt', file: 'docker.io' }] },
        { version: '27.0.1', artifacts: [{ method: 'binary', file: 'docker-27.0.1.tgz', sha256: 'b'.repeat(64) }] },
      ],
    });
    expect(merged.docker.find((v) => v.version === '27.5.1')?.distributions).toEqual(['ubuntu-24.04', 'debian-13']);
    expect(merged.docker.find((v) => v.version === '27.0.1')?.distributions).toBeUndefined();
    expect(() => mergeCatalog(defaultCatalog, { docker: [{ version: '27.0.0', distributions: [] }] })).toThrow(
      /docker\[0\]\.distributions: must be a non-empty list .*leave it out for a version that installs anywhere/,
    );
    expect(() => mergeCatalog(defaultCatalog, { docker: [{ version: '27.0.0', distributions: 'debian-13' }] })).toThrow(
      /docker\[0\]\.distributions: must be a non-empty list/,
    );
    expect(() => mergeCatalog(defaultCatalog, { containerd: [{ version: '2.0.0', distributions: ['debian-13', 'Debian 12'] }] })).toThrow(
      /containerd\[0\]\.distributions\[1\]: must be a distribution as os-release names it: ID-VERSION_ID in lower case, such as debian-13 or ubuntu-24.04 \(got "Debian 12"\)/,
    );
    expect(() => mergeCatalog(defaultCatalog, { containerd: [{ version: '2.0.0', distributions: [13] }] })).toThrow(/distributions\[0\]/);
  });
  it('merges a user catalog and names the offending key', () => {
    const merged = mergeCatalog(defaultCatalog, {
      docker: [{ version: '29.0.1', artifacts: [{ method: 'deb', file: 'docker.io_29.deb', sha256: 'a'.repeat(64) }] }],
    });
    expect(latestVersion(merged, 'docker')).toBe('29.0.1');
    expect(() => mergeCatalog(defaultCatalog, { podman: [] })).toThrow(/podman: unknown component/);
    expect(() => mergeCatalog(defaultCatalog, { docker: [{ version: '1; rm -rf /' }] })).toThrow(/docker\[0\]\.version/);
    expect(() => mergeCatalog(defaultCatalog, { docker: [{ version: '27.0.0', artifacts: [{ method: 'deb', sha256: 'xyz' }] }] })).toThrow(
      /sha256/,
    );
    expect(() => mergeCatalog(defaultCatalog, { docker: [{ version: '27.0.0', colour: 'red' }] })).toThrow(
      /docker\[0\]\.colour: unknown key/,
    );
  });
});

describe('configuration', () => {
  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('3s')).toBe(3000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('15d')).toBe(15 * 86_400_000);
    expect(parseDuration('15')).toBeUndefined();
    expect(parseDuration('-3s')).toBeUndefined();
  });
  it('takes flags over environment over file over defaults', () => {
    const dir = configDir();
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'port: 9001\npausedTtl: 1h\nhost: 0.0.0.0\n');
    const defaults = loadServerConfig({}, {});
    expect(defaults.port).toBe(8420);
    expect(defaults.host).toBe('127.0.0.1');
    expect(defaults.pausedTtlMs).toBe(15 * 86_400_000);
    expect(defaults.agentHeartbeatSeconds).toBe(10);
    expect(defaults.agentTaskTimeoutMs).toBe(30 * 60_000);
    expect(loadServerConfig({ agentHeartbeat: '5s', agentTaskTimeout: '2h' }, {})).toMatchObject({
      agentHeartbeatSeconds: 5,
      agentTaskTimeoutMs: 7_200_000,
    });
    const fromFile = loadServerConfig({ config: file }, {});
    expect(fromFile.port).toBe(9001);
    expect(fromFile.pausedTtlMs).toBe(3_600_000);
    const fromEnv = loadServerConfig({ config: file }, { UPSHIFT_PORT: '9002' });
    expect(fromEnv.port).toBe(9002);
    const fromFlag = loadServerConfig({ config: file, port: '9003' }, { UPSHIFT_PORT: '9002' });
    expect(fromFlag.port).toBe(9003);
    expect(Object.isFrozen(fromFlag)).toBe(true);
  });
  it('names the key of an invalid value', () => {
    expect(() => loadServerConfig({ pausedTtl: 'soon' }, {})).toThrow(/pausedTtl \(flag --paused-ttl\)/);
    expect(() => loadServerConfig({}, { UPSHIFT_PORT: 'abc' })).toThrow(/port \(environment UPSHIFT_PORT\)/);
    expect(() => loadServerConfig({ agentHeartbeat: '1500ms' }, {})).toThrow(
      /agentHeartbeat \(flag --agent-heartbeat\).*whole number of seconds/,
    );
    expect(() => loadServerConfig({}, { UPSHIFT_AGENT_TASK_TIMEOUT: '1s' })).toThrow(/agentTaskTimeout .*at least 10s/);
    const dir = configDir();
    writeFileSync(join(dir, 'c.yaml'), 'prot: 1\n');
    expect(() => loadServerConfig({ config: join(dir, 'c.yaml') }, {})).toThrow(/unknown key "prot"/);
  });
});
