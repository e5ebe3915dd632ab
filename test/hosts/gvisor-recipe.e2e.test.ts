/**
 * The gvisor-runsc recipe run directly (no server) with Debian's real runsc binaries:
 * 20221219 upgraded to 20240729 with the binary method, the verify step booting a real
 * gVisor sandbox on the new runsc (`runsc do /bin/true`, no container engine); and a
 * 20240729 whose runsc reports the right version but cannot start a sandbox, rolled back
 * to 20221219, whose sandbox then boots.
 *
 *   npx vitest run test/hosts/gvisor-recipe.e2e.test.ts
 */
import { chmod, copyFile, mkdir, mkdtemp, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentTask, TaskResultRequest } from '../../src/domain/agent-protocol.js';
import { DirectoryArtifactSource } from '../../src/agent/artifacts.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { Journal } from '../../src/agent/journal.js';
import { RuntimeRecipe, gvisorRunsc } from '../../src/agent/recipes/index.js';
import { loadPackages, run, type PackageManifest } from '../support/testbed/hosts.js';
import { sha256File } from '../support/testbed/host-agents.js';

const isRoot = process.getuid?.() === 0;
const ci = process.env.CI === 'true';
// Under CI a missing prerequisite fails the suite; elsewhere it is skipped.
const suite = isRoot || ci ? describe : describe.skip;

suite('gvisor-runsc recipe with real runsc binaries', () => {
  let dir = '';
  let installRoot = '';
  let mirror = '';
  let packages: PackageManifest;
  const logs: string[] = [];

  /** A binary archive (bin/runsc at its root) in the mirror; returns its sha256. */
  const archive = async (name: string, fill: (bin: string) => Promise<void>): Promise<string> => {
    const staged = path.join(dir, `stage-${name}`);
    await mkdir(path.join(staged, 'bin'), { recursive: true });
    await fill(path.join(staged, 'bin', 'runsc'));
    const r = await run(['tar', '-C', staged, '-czf', path.join(mirror, name), 'bin']);
    if (r.code !== 0) throw new Error(`tar: ${r.stderr}`);
    return sha256File(path.join(mirror, name));
  };

  const upgrade = async (taskKey: string, file: string, sha256: string): Promise<TaskResultRequest> => {
    const config = parseAgentConfig({
      dataDir: path.join(dir, 'agent'),
      components: { 'sandboxed-runtime': { methods: ['binary'], installRoot, service: { kind: 'none' } } },
      minFreeMegabytes: 64,
    });
    const journal = new Journal(config.dataDir);
    await journal.begin(taskKey, 'gvisor-runsc');
    const task: AgentTask = {
      taskKey,
      recipe: 'gvisor-runsc',
      createdAt: new Date().toISOString(),
      params: {
        component: 'sandboxed-runtime',
        fromVersion: '20221219',
        toVersion: '20240729',
        artifacts: [{ method: 'binary', file, sha256 }],
      },
    };
    return (await new RuntimeRecipe(gvisorRunsc).run(task, {
      config,
      taskKey,
      log: (l) => logs.push(`${taskKey} ${l}`),
      artifacts: new DirectoryArtifactSource(mirror),
      journal: { checkpoint: (step, data) => journal.checkpoint(taskKey, step, data) },
      agentVersion: '1.1.0',
      signal: new AbortController().signal,
    })) as TaskResultRequest;
  };

  beforeAll(async () => {
    if (!isRoot) throw new Error('runsc needs root to start a sandbox');
    packages = await loadPackages();
    dir = await mkdtemp(path.join(os.tmpdir(), 'upshift-gvisor-recipe-'));
    installRoot = path.join(dir, 'gvisor');
    mirror = path.join(dir, 'mirror');
    await mkdir(mirror);
    const old = path.join(installRoot, 'versions', '20221219', 'bin');
    await mkdir(old, { recursive: true });
    await symlink(path.join(packages.gvisor.old.bin, 'runsc'), path.join(old, 'runsc'));
    await symlink(path.join('versions', '20221219'), path.join(installRoot, 'current'));
  }, 120_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    if (logs.length > 0) process.stderr.write(`--- recipe logs ---\n${logs.slice(-40).join('\n')}\n`);
  });

  it('rolls back to 20221219 when the new runsc reports its version but cannot start a sandbox', async () => {
    const realNew = path.join(packages.gvisor.new.bin, 'runsc');
    const sha = await archive('runsc-20240729-broken.tar.gz', async (bin) => {
      // Answers --version like the real one; refuses to start anything.
      await writeFile(
        bin,
        `#!/bin/sh\n[ "$1" = --version ] && exec '${realNew}' --version\necho "cannot start the sandbox: platform unavailable" >&2\nexit 1\n`,
      );
      await chmod(bin, 0o755);
    });
    const result = await upgrade('gv-1.1', 'runsc-20240729-broken.tar.gz', sha);
    expect(result.result).toBe('failed');
    expect(result.step).toBe('verify');
    expect(result.rolledBack).toBe(true);
    expect(result.error).toContain('a gVisor sandbox did not boot');
    expect(result.error).toContain('platform unavailable');
    expect(await readlink(path.join(installRoot, 'current'))).toBe(path.join('versions', '20221219'));
    // The rollback verified the old runsc the same way: its sandbox boots.
    expect(logs.some((l) => l.startsWith('gv-1.1 ') && /a gVisor sandbox boots on .*current\/bin\/runsc/.test(l))).toBe(true);
  }, 120_000);

  it('upgrades 20221219 to 20240729 and boots a sandbox on the new runsc', async () => {
    const sha = await archive('runsc-20240729.tar.gz', (bin) => copyFile(path.join(packages.gvisor.new.bin, 'runsc'), bin));
    const result = await upgrade('gv-2.1', 'runsc-20240729.tar.gz', sha);
    expect(result, JSON.stringify(result)).toMatchObject({ result: 'succeeded' });
    expect(await readlink(path.join(installRoot, 'current'))).toBe(path.join('versions', '20240729'));
    expect(logs.some((l) => l.startsWith('gv-2.1 ') && l.includes('a gVisor sandbox boots on'))).toBe(true);
    expect(result.versions?.['sandboxed-runtime']).toBe('20240729');
  }, 120_000);
});
