import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TOKEN } from '../support/server.js';
import { browserAvailable, pageErrors, screenshotBoth, startConsole, type ConsoleHarness } from '../support/console/harness.js';
import { ClusterPage } from '../support/console/pages/ClusterPage.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradeDialog } from '../support/console/pages/UpgradeDialog.js';

/**
 * The catalog per distribution in the console: the node table shows the distribution each
 * agent reports, and the Upgrade dialog offers only versions that install on the nodes,
 * the others disabled with why under the select, the newest installable one preselected.
 */
describe.runIf(browserAvailable())('console: versions per distribution', () => {
  let h: ConsoleHarness;
  let clusterId: string;
  beforeAll(async () => {
    h = await startConsole();
    const created = await h.server.api('/api/v1/clusters', { body: { name: 'trixie', kind: 'hosts' } });
    expect(created.status, created.text).toBe(201);
    clusterId = (created.body as { id: string }).id;
    const nodes = [
      { name: 'deb13-1', distribution: 'debian-13' },
      { name: 'deb13-2', distribution: 'debian-13' },
      // An agent that reports no distribution: it restricts nothing.
      { name: 'legacy', distribution: undefined },
    ];
    for (const n of nodes) {
      const res = await fetch(`${h.server.url}/api/v1/agent/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          joinToken: (created.body as { joinToken: string }).joinToken,
          name: n.name,
          protocol: 1,
          facts: {
            hostname: n.name,
            os: 'Debian GNU/Linux 13 (trixie)',
            ...(n.distribution ? { distribution: n.distribution } : {}),
            arch: 'amd64',
            agentVersion: '1.1.0',
            versions: { docker: '26.1.5+dfsg1', containerd: '1.7.24~ds1' },
            engineReachable: true,
          },
        }),
      });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it('shows each node’s distribution and offers only the versions that install on them', async () => {
    const { page } = await h.newPage();
    const signIn = await new SignInPage(page).goto(`/clusters/${clusterId}`);
    await signIn.signIn(TEST_TOKEN);
    const cluster = new ClusterPage(page);
    await expect.poll(() => cluster.nodeCount.textContent()).toBe('3 nodes');
    expect((await cluster.row('deb13-1').getByRole('cell').allTextContents()).slice(0, 4)).toEqual([
      'deb13-1',
      'worker',
      'Ready',
      'debian-13',
    ]);
    expect((await cluster.row('legacy').getByRole('cell').allTextContents())[3]).toBe('—');

    await cluster.componentCard('docker').getByRole('button', { name: 'Upgrade Docker-Engine' }).click();
    const dialog = await new UpgradeDialog(page).waitOpen();
    // The newest version that installs on every node is the default.
    await expect.poll(() => dialog.version.inputValue()).toBe('28.5.2');
    await expect.poll(() => dialog.planSummary.textContent()).toContain('3 nodes to upgrade to Docker-Engine 28.5.2');
    const options = await dialog.version
      .locator('option')
      .evaluateAll((els) => els.map((el) => [el.getAttribute('value'), el.hasAttribute('disabled'), el.textContent]));
    expect(options).toEqual([
      ['28.5.2', false, '28.5.2 (latest)'],
      ['26.1.5', false, '26.1.5'],
      ['20.10.24', true, '20.10.24 (not offered)'],
    ]);
    expect(await dialog.notOffered.innerText()).toBe(
      'Not offered on this cluster:\n20.10.24: Debian 12 packages; nodes deb13-1, deb13-2 run debian-13',
    );
    // The select says where its explanation is.
    expect(await dialog.version.getAttribute('aria-describedby')).toBe('ud-not-offered');
    await screenshotBoth(page, 'upgrade-dialog-not-offered');

    // An installable older version can still be chosen; the plan follows it.
    await dialog.version.selectOption('26.1.5');
    await expect.poll(() => dialog.planSummary.textContent()).toContain('0 nodes to upgrade to Docker-Engine 26.1.5');
    expect(pageErrors(page)).toEqual([]);
  });
});
