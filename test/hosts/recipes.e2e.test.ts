/**
 * The docker-engine recipe run directly (no server) against real testbed hosts: a real
 * dockerd 20.10.24 upgraded to 26.1.5 with the binary method, verified through the Engine
 * API, with a restart=always container running again; then a 26.1.5 that will not start
 * (a daemon.json key it no longer accepts) rolled back to a running 20.10.24; then a
 * corrupted artifact refused before anything stops.
 *
 *   npx vitest run test/hosts/recipes.e2e.test.ts
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentTask, TaskResultRequest } from '../../src/domain/agent-protocol.js';
import { DirectoryArtifactSource } from '../../src/agent/artifacts.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { Journal } from '../../src/agent/journal.js';
import { RuntimeRecipe, dockerEngine } from '../../src/agent/recipes/index.js';
import type { RecipeContext } from '../../src/agent/recipes/index.js';
import { createTestbed, engineJson, engineVersion, importBusybox, type Testbed } from '../support/testbed/hosts.js';
import { agentConfig, dockerArchive, prepareHost, service, type PreparedHost } from '../support/testbed/host-agents.js';

const isRoot = process.getuid?.() === 0;
const ci = process.env.CI === 'true';
// Under CI a missing prerequisite fails the suite; elsewhere it is skipped.
const suite = isRoot || ci ? describe : describe.skip;

interface Inspect {
  State: { Running: boolean; StartedAt: string };
}

suite('docker-engine recipe on real testbed hosts', () => {
  let bed: Testbed | undefined;
  let good: PreparedHost;
  let broken: PreparedHost;
  let mirror: string;
  let archive: { file: string; sha256: string; name: string };
  const logs: string[] = [];

  const context = async (p: PreparedHost, taskKey: string, artifactsDir = mirror): Promise<{ ctx: RecipeContext; journal: Journal }> => {
    const config = parseAgentConfig(agentConfig(p));
    const journal = new Journal(config.dataDir);
    await journal.begin(taskKey, 'docker-engine');
    return {
      journal,
      ctx: {
        config,
        taskKey,
        log: (l) => logs.push(`${p.host.name} ${l}`),
        artifacts: new DirectoryArtifactSource(artifactsDir),
        journal: { checkpoint: (step, data) => journal.checkpoint(taskKey, step, data) },
        agentVersion: '1.1.0',
        signal: new AbortController().signal,
      },
    };
  };

  const task = (taskKey: string, sha256: string): AgentTask => ({
    taskKey,
    recipe: 'docker-engine',
    createdAt: new Date().toISOString(),
    params: {
      component: 'docker',
      fromVersion: '20.10.24',
      toVersion: '26.1.5',
      artifacts: [{ method: 'binary', file: archive.name, sha256 }],
    },
  });

  const keeper = async (p: PreparedHost): Promise<Inspect> => engineJson<Inspect>(p.host, 'GET', '/containers/keeper/json');

  beforeAll(async () => {
    if (!isRoot) throw new Error('the hosts end-to-end tests need root (network namespaces, cgroups)');
    bed = await createTestbed({ hosts: 2 });
    const [h1, h2] = bed.hosts as [(typeof bed.hosts)[0], (typeof bed.hosts)[0]];
    good = await prepareHost(bed, h1);
    // 20.10.24 accepts oom-score-adjust in daemon.json; 26.1.5 refuses to start with it.
    broken = await prepareHost(bed, h2, { daemonJson: { 'oom-score-adjust': -500 } });
    archive = await dockerArchive(bed.packages);
    mirror = path.dirname(archive.file);
    await Promise.all([service(good, 'start'), service(broken, 'start')]);
    for (const p of [good, broken]) {
      expect(await engineVersion(p.host)).toMatch(/^20\.10\.24/);
      await importBusybox(p.host);
      const r = await bed.exec(p.host, [
        'docker',
        'run',
        '-d',
        '--name',
        'keeper',
        '--restart',
        'always',
        '--network',
        'none',
        'local/busybox:1',
        'sleep',
        '100000',
      ]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 240_000);

  afterAll(async () => {
    if (!bed) return;
    for (const p of [good, broken]) if (p) await service(p, 'stop').catch(() => undefined);
    await bed.teardown();
    if (logs.length > 0) process.stderr.write(`--- recipe logs ---\n${logs.slice(-80).join('\n')}\n`);
  }, 180_000);

  it('upgrades 20.10.24 to 26.1.5 with the binary method; the restart=always container runs again', async () => {
    const before = await keeper(good);
    const { ctx, journal } = await context(good, 'rt-1.1');
    const result = (await new RuntimeRecipe(dockerEngine).run(task('rt-1.1', archive.sha256), ctx)) as TaskResultRequest;
    expect(result.error).toBeUndefined();
    expect(result.result).toBe('succeeded');
    expect(result.versions?.docker).toBe('26.1.5');
    expect(await engineVersion(good.host)).toMatch(/^26\.1\.5/);
    const after = await keeper(good);
    expect(after.State.Running).toBe(true);
    expect(Date.parse(after.State.StartedAt)).toBeGreaterThan(Date.parse(before.State.StartedAt));
    expect(journal.get('rt-1.1')?.step).toBe('verifying');

    // A restart of the agent right after the upgrade: the journal's task is resumed, which
    // verifies the host as it is and succeeds without stopping anything.
    const pid = (await readFile(path.join(good.host.dir, 'docker.pid'), 'utf8')).trim();
    const entry = journal.get('rt-1.1');
    if (!entry) throw new Error('no journal entry');
    const resumed = (await new RuntimeRecipe(dockerEngine).resume(task('rt-1.1', archive.sha256), entry, ctx)) as TaskResultRequest;
    expect(resumed.result).toBe('succeeded');
    const pidAfter = (await readFile(path.join(good.host.dir, 'docker.pid'), 'utf8')).trim();
    expect(pidAfter).toBe(pid);
  }, 240_000);

  it('rolls back to a running 20.10.24 when 26.1.5 will not start, and reports the step and its output', async () => {
    const { ctx } = await context(broken, 'rt-2.1');
    const result = (await new RuntimeRecipe(dockerEngine).run(task('rt-2.1', archive.sha256), ctx)) as TaskResultRequest;
    expect(result.result).toBe('failed');
    expect(result.step).toBe('start');
    expect(result.rolledBack).toBe(true);
    expect(result.error).toContain('oom-score-adjust');
    expect(await engineVersion(broken.host)).toMatch(/^20\.10\.24/);
    expect((await keeper(broken)).State.Running).toBe(true);
  }, 240_000);

  it('refuses a corrupted artifact before stopping anything', async () => {
    const bad = await mkdtemp(path.join((bed as Testbed).root, 'badmirror-'));
    try {
      await writeFile(path.join(bad, archive.name), 'not the archive');
      const { ctx } = await context(broken, 'rt-3.1', bad);
      const pid = (await readFile(path.join(broken.host.dir, 'docker.pid'), 'utf8')).trim();
      const result = (await new RuntimeRecipe(dockerEngine).run(task('rt-3.1', archive.sha256), ctx)) as TaskResultRequest;
      expect(result.result).toBe('failed');
      expect(result.step).toBe('preflight');
      expect(result.error).toMatch(/checksum mismatch/);
      expect(await engineVersion(broken.host)).toMatch(/^20\.10\.24/);
      const pidAfter = (await readFile(path.join(broken.host.dir, 'docker.pid'), 'utf8')).trim();
      expect(pidAfter).toBe(pid);
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  }, 120_000);
});
