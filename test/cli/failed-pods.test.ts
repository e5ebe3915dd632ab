import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Cli } from '../support/cli.js';
import { waitFor } from '../support/engine.js';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.js';
import { GVISOR_INSTALLER } from '../support/kube-engine.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * A resume refused because failed executor pods remain speaks the CLI's words: the flag
 * that deletes them (`--delete-failed-pods`), not the API's field. Against the faithful
 * fake Kubernetes API server (no real API server can run here), through the real server
 * process and the real CLI.
 */
describe('failed executor pods, in the CLI', () => {
  let fake: FakeKubeApiServer;
  let s: ServerProcess;
  let cli: Cli;
  let catalogDir: string;
  beforeAll(async () => {
    fake = await FakeKubeApiServer.start();
    for (let i = 1; i <= 3; i++) fake.addNode({ name: `w-${i}`, labels: { 'upshift.io/sandboxed-runtime-version': '20221219' } });
    fake.kubelet('w-2', { outcome: 'fail', failAttempts: 1 });
    // The installer image for the newest sandboxed runtime, as an operator's catalog file adds it.
    catalogDir = mkdtempSync(join(tmpdir(), 'upshift-kube-catalog-'));
    const catalog = join(catalogDir, 'catalog.yaml');
    writeFileSync(
      catalog,
      stringify({
        'sandboxed-runtime': [{ version: '20240729', artifacts: [{ method: 'image', image: GVISOR_INSTALLER, command: ['/install.sh'] }] }],
      }),
    );
    s = await startServerProcess({ args: ['--catalog', catalog] });
  });
  afterAll(async () => {
    cli?.cleanup();
    await s?.stop();
    s?.cleanup();
    await fake?.close();
    if (catalogDir) rmSync(catalogDir, { recursive: true, force: true });
  });

  it('says to resume with --delete-failed-pods, which then resumes', async () => {
    const created = await s.api('/api/v1/clusters', { body: { name: 'kube', kind: 'kubernetes', kubeconfig: fake.kubeconfig() } });
    expect(created.status, created.text).toBe(201);
    const up = await s.api(`/api/v1/clusters/${created.body.id}/upgrades`, {
      body: { component: 'sandboxed-runtime', policy: { maxBatchPercent: 100 } },
    });
    expect(up.status, up.text).toBe(201);
    await waitFor(
      async () => {
        const u = (await s.api(`/api/v1/upgrades/${up.body.id}`)).body;
        return u.state === 'Paused' && u.nodes.running === 0;
      },
      30_000,
      'the auto-pause',
    );
    cli = new Cli(s);
    const refused = await cli.run(['upgrade', 'resume', 'kube']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toBe(
      'error: failed executor pods of this upgrade are still in the runtime-upgrade namespace (kubectl -n runtime-upgrade get pods): look at them, then delete them\n' +
        'hint: upshift upgrade resume kube --delete-failed-pods deletes them and resumes\n',
    );
    const resumed = await cli.run(['upgrade', 'resume', 'kube', '--delete-failed-pods']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/^upgrade upg_\w+ is Upgrading/);
  }, 60_000);
});
