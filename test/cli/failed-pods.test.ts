import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cli } from '../support/cli.js';
import { waitFor } from '../support/engine.js';
import { failingKubeFleet } from '../support/kube-engine.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * A resume refused because failed executor pods remain speaks the CLI's words: the flag
 * that deletes them (`--delete-failed-pods`), not the API's field. Against the faithful
 * fake Kubernetes API server (no real API server can run here), through the real server
 * process and the real CLI.
 */
describe('failed executor pods, in the CLI', () => {
  let kube: Awaited<ReturnType<typeof failingKubeFleet>>;
  let s: ServerProcess;
  let cli: Cli;
  beforeAll(async () => {
    kube = await failingKubeFleet();
    s = await startServerProcess({ args: kube.serverArgs });
  });
  afterAll(async () => {
    cli?.cleanup();
    await s?.stop();
    s?.cleanup();
    await kube?.close();
  });

  it('says to resume with --delete-failed-pods, which then resumes', async () => {
    const created = await s.api('/api/v1/clusters', { body: { name: 'kube', kind: 'kubernetes', kubeconfig: kube.fake.kubeconfig() } });
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
