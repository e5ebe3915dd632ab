import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TOKEN } from '../support/server.js';
import {
  browserAvailable,
  createSimulatedCluster,
  pageErrors,
  screenshotBoth,
  startConsole,
  type ConsoleHarness,
} from '../support/console/harness.js';
import { ClusterPage } from '../support/console/pages/ClusterPage.js';
import { EventsPage } from '../support/console/pages/EventsPage.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradeDialog } from '../support/console/pages/UpgradeDialog.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/** A node fails: the upgrade pauses by itself, the console says why, and Continue retries the node. */
describe.runIf(browserAvailable())('console: automatic pause after a failure', () => {
  let h: ConsoleHarness;
  let clusterId: string;
  beforeAll(async () => {
    h = await startConsole();
    clusterId = (
      await createSimulatedCluster(h.server, 'flaky', {
        nodes: 20,
        upgradeSeconds: 0.3,
        versions: { agent: '1.1.0' },
        failNodes: ['sim-007'],
      })
    ).id;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('shows the cause in a banner with the failed node’s log, and Continue retries it to Completed', async () => {
    const { page } = await h.newPage();
    const signIn = await new SignInPage(page).goto(`/clusters/${clusterId}`);
    await signIn.signIn(TEST_TOKEN);
    const cluster = new ClusterPage(page);
    await cluster.heading.waitFor();
    await cluster.componentCard('docker').getByRole('button', { name: 'Upgrade Docker-Engine' }).click();
    const dialog = await new UpgradeDialog(page).waitOpen();
    expect(await dialog.planSummary.textContent()).toContain(
      '20 nodes to upgrade to Docker-Engine 28.5.2 in 11 batches: 1, 2 × 9, 1. At most 2 nodes at a time.',
    );
    await dialog.upgradeDirectly.click();
    await dialog.confirmStart.click();
    await page.waitForURL(/\/upgrades\/upg_/);

    const upgrade = new UpgradePage(page);
    await upgrade.waitForState('Paused');
    const banner = await upgrade.autoPauseBanner.innerText();
    expect(banner).toContain('Paused automatically after a failure');
    expect(banner).toContain("sim-007: Docker-Engine 28.5.2 did not start (simulated failure of sim-007's first attempt)");
    expect(await upgrade.autoCancel.isVisible()).toBe(true);
    expect(await upgrade.pause.isDisabled()).toBe(true);
    expect(await upgrade.continue.isEnabled()).toBe(true);
    expect(await upgrade.cancel.isEnabled()).toBe(true);
    await expect.poll(() => upgrade.taskRow('sim-007').innerText()).toMatch(/failed[\s\S]*did not start/);
    await expect.poll(() => upgrade.timeline.locator('g.bar.failed').count()).toBe(1);

    await upgrade.autoPauseBanner.getByRole('button', { name: 'Show the log of sim-007' }).click();
    await upgrade.logViewer.waitFor();
    await expect
      .poll(() => upgrade.logViewer.locator('pre').textContent())
      .toContain("error: Docker-Engine 28.5.2 did not start (simulated failure of sim-007's first attempt)");
    expect(await upgrade.logViewer.getByRole('heading').innerText()).toMatch(/^Log of sim-007\s+attempt 1 · failed$/);
    await screenshotBoth(page, 'upgrade-auto-paused', { fullPage: true });
    await page.evaluate('window.scrollTo(0, 0)');
    await screenshotBoth(page, 'upgrade-auto-paused-viewport');

    await upgrade.continue.click();
    await upgrade.waitForState('Completed');
    expect(await upgrade.autoPauseBanner.count()).toBe(0);
    await expect.poll(() => upgrade.taskRow('sim-007').innerText()).toMatch(/succeeded\s+2\s/);
    // The open log follows the node: its second attempt is there.
    await expect.poll(() => upgrade.logViewer.locator('pre').textContent()).toContain('verified: Docker-Engine reports 28.5.2');

    const events = new EventsPage(page);
    await page.getByRole('link', { name: 'All events of this upgrade' }).click();
    await events.table.waitFor();
    await events.type.selectOption('upgrade.auto_paused');
    await expect.poll(() => events.types()).toEqual(['upgrade.auto_paused']);
    expect(await events.rows.first().innerText()).toContain('paused automatically: sim-007');
    // Operations only: what people and the engine decided, without node and batch chatter.
    await events.type.selectOption('');
    await events.operations.check();
    await expect.poll(() => events.types()).toEqual(['upgrade.completed', 'upgrade.resumed', 'upgrade.auto_paused', 'upgrade.started']);
    await events.actor.fill('engine');
    await events.actor.press('Enter');
    await expect.poll(() => events.types()).toEqual(['upgrade.completed', 'upgrade.auto_paused']);
    await screenshotBoth(page, 'events-operations');
    expect(pageErrors(page)).toEqual([]);
  });
});
