import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/engine.js';
import { failingKubeFleet } from '../support/kube-engine.js';
import { TEST_TOKEN } from '../support/server.js';
import { browserAvailable, pageErrors, startConsole, type ConsoleHarness } from '../support/console/harness.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/**
 * A Kubernetes upgrade paused by a failed executor pod: the upgrade page lists the pods
 * that block Continue (name, node, why) before anyone presses it, in the console's words,
 * and its button deletes them and continues. Against the faithful fake Kubernetes API
 * server (no real API server can run here), through the real server and Chromium.
 */
describe.runIf(browserAvailable())('console: failed executor pods', () => {
  let kube: Awaited<ReturnType<typeof failingKubeFleet>>;
  let h: ConsoleHarness;
  beforeAll(async () => {
    kube = await failingKubeFleet();
    h = await startConsole({ serverArgs: kube.serverArgs });
  });
  afterAll(async () => {
    await h?.close();
    await kube?.close();
  });

  it('lists the failed pods before Continue, and deletes them and continues on request', async () => {
    const created = await h.server.api('/api/v1/clusters', {
      body: { name: 'kube', kind: 'kubernetes', kubeconfig: kube.fake.kubeconfig() },
    });
    expect(created.status, created.text).toBe(201);
    const up = await h.server.api(`/api/v1/clusters/${created.body.id}/upgrades`, {
      body: { component: 'sandboxed-runtime', policy: { maxBatchPercent: 100 } },
    });
    expect(up.status, up.text).toBe(201);
    await waitFor(
      async () => {
        const u = (await h.server.api(`/api/v1/upgrades/${up.body.id}`)).body;
        return u.state === 'Paused' && u.nodes.running === 0;
      },
      30_000,
      'the auto-pause',
    );
    const failed = await h.server.api(`/api/v1/upgrades/${up.body.id}/failed-pods`);
    expect(failed.status, failed.text).toBe(200);
    expect(failed.body.items).toHaveLength(1);
    const pod = failed.body.items[0];
    expect(pod).toMatchObject({ namespace: 'runtime-upgrade', node: 'w-2' });

    const { page } = await h.newPage();
    const errors = pageErrors(page);
    await new SignInPage(page).goto(`/upgrades/${up.body.id}`).then((s) => s.signIn(TEST_TOKEN));
    const upgrade = new UpgradePage(page);
    await upgrade.waitForState('Paused');
    await upgrade.failedPods.waitFor();
    const text = (await upgrade.failedPods.innerText()).replace(/\s+/g, ' ');
    expect(text).toContain('1 failed executor pod must be deleted before continuing');
    expect(text).toContain(`runtime-upgrade/${pod.name} on w-2: ${pod.reason}`);
    expect(text).toContain(`kubectl -n runtime-upgrade logs ${pod.name}`);
    // The API's field name is not the console's word.
    expect(text).not.toContain('deleteFailedPods');

    // Continue while they exist: refused, in the console's words.
    await upgrade.continue.click();
    await upgrade.refusal.waitFor();
    const refusal = (await upgrade.refusal.innerText()).replace(/\s+/g, ' ');
    expect(refusal).toContain('Failed executor pods of this upgrade are still in the cluster');
    expect(refusal).toContain('FAILED_PODS_PRESENT');
    expect(refusal).not.toContain('deleteFailedPods');
    expect(await upgrade.currentState()).toBe('Paused');

    await upgrade.deleteFailedPods.click();
    await upgrade.waitForState('Completed', 30_000);
    expect(kube.fake.listPods('runtime-upgrade').map((p) => p['metadata']['name'])).not.toContain(pod.name);
    expect(await upgrade.failedPods.count()).toBe(0);
    expect(errors).toEqual([]);
  }, 90_000);
});
