import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadServerConfig, serverConfigKeys } from '../../src/server/config.js';
import { TEST_TOKEN, freePort, repoRoot } from '../support/server.js';

/**
 * The server as a systemd service (packaging/): the unit passes `systemd-analyze verify`
 * as shipped, keeps its hardening, and the command it runs starts the real server with the
 * sample config, which documents every setting the server knows.
 */

const unitFile = join(repoRoot, 'packaging/systemd/upshift-server.service');
const sysusersFile = join(repoRoot, 'packaging/systemd/upshift.sysusers.conf');
const sampleConfig = join(repoRoot, 'packaging/server.yaml');

/** The unit's `Key=Value` lines by section (a key given twice keeps both values, in order). */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let current: Record<string, string[]> | undefined;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(trimmed);
    if (header) {
      current = sections[header[1] as string] ??= {};
      continue;
    }
    const eq = trimmed.indexOf('=');
    if (!current || eq < 0) throw new Error(`not a unit line: ${line}`);
    (current[trimmed.slice(0, eq)] ??= []).push(trimmed.slice(eq + 1));
  }
  return sections;
}

const unit = parseUnit(readFileSync(unitFile, 'utf8'));
const service = unit['Service'] ?? {};
const one = (key: string): string => {
  const values = service[key] ?? [];
  if (values.length !== 1) throw new Error(`the unit sets ${key} ${values.length} times, not once`);
  return values[0] as string;
};
const execStart = one('ExecStart').split(/\s+/);
const configPath = execStart[execStart.indexOf('--config') + 1] as string;

describe('the sample config (packaging/server.yaml)', () => {
  const text = readFileSync(sampleConfig, 'utf8');
  const fileKeys = Object.values(serverConfigKeys).map((k) => k.file);

  it('holds every key the server knows, and no other', () => {
    const parsed = YAML.parse(text) as Record<string, unknown>;
    expect(Object.keys(parsed).sort()).toEqual([...fileKeys].sort());
  });

  it('is valid, and sets the defaults but for the address to listen on and the data dir', () => {
    const fromSample = loadServerConfig({ config: sampleConfig }, {});
    expect(fromSample).toEqual(loadServerConfig({ host: '0.0.0.0', dataDir: '/var/lib/upshift' }, {}));
  });

  it('names each key’s flag and environment variable in the comment above it', () => {
    const lines = text.split('\n');
    for (const key of Object.values(serverConfigKeys)) {
      const at = lines.findIndex((l) => l.startsWith(`${key.file}:`));
      const comment: string[] = [];
      for (let i = at - 1; i >= 0 && (lines[i] as string).startsWith('#'); i--) comment.unshift(lines[i] as string);
      const said = comment.join(' ');
      expect(said, key.file).toContain(key.flag);
      expect(said, key.file).toContain(key.env);
    }
  });

  it('agrees with the unit on where the config, the environment file and the data dir are', () => {
    expect(configPath).toBe(`/etc/${one('ConfigurationDirectory')}/server.yaml`);
    expect(one('EnvironmentFile')).toBe(`-/etc/${one('ConfigurationDirectory')}/upshift.env`);
    const dataDir = `/var/lib/${one('StateDirectory')}`;
    expect(loadServerConfig({ config: sampleConfig }, {}).dataDir).toBe(dataDir);
    expect(one('WorkingDirectory')).toBe(dataDir);
  });
});

const hasAnalyze = spawnSync('sh', ['-c', 'command -v systemd-analyze && command -v systemd-sysusers']).status === 0;
const ci = process.env['CI'] === 'true';

// Outside CI a machine without systemd skips the unit's checks; CI must run them (.ci/run
// installs the systemd package), and this counts as a failed test when it cannot.
it.runIf(ci)('has systemd-analyze and systemd-sysusers (the systemd package) in CI', () => {
  expect(hasAnalyze).toBe(true);
});

(hasAnalyze || ci ? describe : describe.skip)('the systemd unit (packaging/systemd/upshift-server.service)', () => {
  /**
   * A temp root laid out as an installed machine: the unit as shipped, byte for byte, in
   * /etc/systemd/system; systemd's own units (the targets it orders itself after); the
   * upshift user from the sysusers file; and at the unit's ExecStart path a two-line
   * script that runs this checkout's `upshift` (bin/upshift.js), standing in for the
   * tarball that `npm install --prefix /opt/upshift` installs there. `systemd-analyze
   * verify` refuses a unit whose ExecStart is missing, so it checks the path this way,
   * and the tests below run that same command line.
   */
  let root = '';
  const inRoot = (path: string) => join(root, path);
  const analyze = (...args: string[]) => spawnSync('systemd-analyze', args, { encoding: 'utf8' });

  beforeAll(() => {
    if (!hasAnalyze) throw new Error('systemd-analyze and systemd-sysusers are missing: apt-get install systemd');
    root = mkdtempSync(join(tmpdir(), 'upshift-unit-root-'));
    const systemUnits = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => existsSync(join(d, 'multi-user.target')));
    if (!systemUnits) throw new Error('systemd’s own units (multi-user.target) are not installed');
    cpSync(systemUnits, inRoot('/usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    mkdirSync(inRoot('/etc/systemd/system'), { recursive: true });
    cpSync(unitFile, inRoot('/etc/systemd/system/upshift-server.service'));
    const users = spawnSync('systemd-sysusers', [`--root=${root}`, sysusersFile], { encoding: 'utf8' });
    if (users.status !== 0) throw new Error(`systemd-sysusers: ${users.stderr}`);
    const command = inRoot(execStart[0] as string);
    mkdirSync(dirname(command), { recursive: true });
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    writeFileSync(command, `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(join(repoRoot, 'bin/upshift.js'))} "$@"\n`);
    chmodSync(command, 0o755);
    mkdirSync(inRoot(dirname(configPath)), { recursive: true });
    cpSync(sampleConfig, inRoot(configPath));
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('creates the upshift system user with the data dir as home and no login shell', () => {
    const passwd = readFileSync(inRoot('/etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^upshift:x:\d+:\d+:[^:]*:\/var\/lib\/upshift:\/usr\/sbin\/nologin$/m);
    expect(one('User')).toBe('upshift');
  });

  it('passes systemd-analyze verify without a word', () => {
    const r = analyze('verify', `--root=${root}`, 'upshift-server.service');
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('verify does speak up in this root when the unit is wrong (so the check above can fail)', () => {
    const broken = readFileSync(unitFile, 'utf8').replace(/^ProtectHome=yes$/m, 'ProtectHom=yes');
    writeFileSync(inRoot('/etc/systemd/system/upshift-broken.service'), broken);
    const r = analyze('verify', `--root=${root}`, 'upshift-broken.service');
    expect(r.stdout + r.stderr).toContain("Unknown key 'ProtectHom'");
    rmSync(inRoot('/etc/systemd/system/upshift-broken.service'));
  });

  it('leaves open only the hardening its comments explain, in systemd-analyze security', () => {
    const r = analyze('security', '--offline=yes', '--json=short', `--root=${root}`, 'upshift-server.service');
    expect(r.status, r.stderr).toBe(0);
    const checks = JSON.parse(r.stdout) as { name: string; exposure: string | null }[];
    expect(checks.length).toBeGreaterThan(50);
    const open = checks.filter((c) => c.exposure !== null && Number(c.exposure) > 0).map((c) => c.name);
    // Each is a choice the unit's comments give the reason for (V8's JIT, a server that
    // listens and connects anywhere, /proc files Node reads, the host's file
    // system, the pseudo devices PrivateDevices= leaves); anything else systemd counts
    // against the unit fails here.
    const explained = [
      'DeviceAllow=',
      'MemoryDenyWriteExecute=',
      'PrivateNetwork=',
      'IPAddressDeny=',
      'RestrictAddressFamilies=~AF_(INET|INET6)',
      'RestrictAddressFamilies=~AF_UNIX',
      'ProcSubset=',
      'RootDirectory=/RootImage=',
    ];
    expect(open.filter((name) => !explained.includes(name))).toEqual([]);
  });

  it('sets the data dir 0700, the file system read-only, no privileges and a restart on failure', () => {
    expect([one('StateDirectoryMode'), one('ProtectSystem'), one('ProtectHome'), one('PrivateTmp'), one('NoNewPrivileges')]).toEqual([
      '0700',
      'strict',
      'yes',
      'yes',
      'yes',
    ]);
    expect([one('Restart'), one('KillSignal')]).toEqual(['on-failure', 'SIGTERM']);
    // The server forces its own exit 10 s after SIGTERM; systemd must not SIGKILL it first.
    expect(Number(/^(\d+)s$/.exec(one('TimeoutStopSec'))?.[1])).toBeGreaterThan(10);
  });

  /** The unit's ExecStart, run from the temp root, on a loopback port and a temp data dir. */
  const runExecStart = async (env: Record<string, string>) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'upshift-unit-data-'));
    const port = await freePort();
    const args = execStart.slice(1).map((a) => (a === configPath ? inRoot(configPath) : a));
    // Environment beats the config file: the sample's 0.0.0.0:8420 and /var/lib/upshift are
    // not this test's to take. The admin token is what /etc/upshift/upshift.env would give.
    const child = spawn(inRoot(execStart[0] as string), args, {
      cwd: dataDir,
      env: {
        ...process.env,
        UPSHIFT_HOST: '127.0.0.1',
        UPSHIFT_PORT: String(port),
        UPSHIFT_DATA_DIR: dataDir,
        UPSHIFT_ADMIN_TOKEN: TEST_TOKEN,
        UPSHIFT_LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, port, dataDir, exited, output: () => output };
  };

  it('runs the server with the sample config, which stops with 0 on SIGTERM', async () => {
    const run = await runExecStart({});
    try {
      let ready = 0;
      for (let i = 0; i < 600 && ready !== 200 && run.child.exitCode === null; i++) {
        ready = await fetch(`http://127.0.0.1:${run.port}/readyz`).then(
          (r) => r.status,
          () => 0,
        );
        if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ready, run.output()).toBe(200);
      const health = await fetch(`http://127.0.0.1:${run.port}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });
      expect(statSync(run.dataDir).mode & 0o777).toBe(0o700);
      run.child.kill('SIGTERM');
      expect(await run.exited, run.output()).toBe(0);
      expect(run.output()).toContain('SIGTERM received, shutting down');
    } finally {
      run.child.kill('SIGKILL');
      rmSync(run.dataDir, { recursive: true, force: true });
    }
  });

  it('exits with RestartPreventExitStatus= on an invalid setting, so systemd does not restart it in vain', async () => {
    const run = await runExecStart({ UPSHIFT_PAUSED_TTL: 'soon' });
    try {
      expect(one('RestartPreventExitStatus').split(' ').map(Number)).toContain(await run.exited);
      expect(run.output()).toContain('invalid configuration: pausedTtl (environment UPSHIFT_PAUSED_TTL)');
    } finally {
      rmSync(run.dataDir, { recursive: true, force: true });
    }
  });
});
