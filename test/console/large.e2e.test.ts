import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TOKEN } from '../support/server.js';
import {
  browserAvailable,
  createSimulatedCluster,
  screenshot,
  screenshotBoth,
  startConsole,
  type ConsoleHarness,
} from '../support/console/harness.js';
import { ClusterPage } from '../support/console/pages/ClusterPage.js';
import { ClustersPage } from '../support/console/pages/ClustersPage.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/** 10,000 nodes stay fast (only the rows in view are rendered); a narrow window stays readable. */
describe.runIf(browserAvailable())('console: a 10,000-node cluster and a narrow window', () => {
  let h: ConsoleHarness;
  let clusterId: string;
  beforeAll(async () => {
    h = await startConsole();
    clusterId = (await createSimulatedCluster(h.server, 'huge', { nodes: 10_000, upgradeSeconds: 0.2 })).id;
    await createSimulatedCluster(h.server, 'small', { nodes: 5, upgradeSeconds: 0.2, versions: { agent: '1.1.0', docker: '28.5.2' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('renders only the visible rows of 10,000 nodes, scrolls by keyboard and filters', async () => {
    const { page } = await h.newPage();
    const signIn = await new SignInPage(page).goto(`/clusters/${clusterId}`);
    const t0 = Date.now();
    await signIn.signIn(TEST_TOKEN);
    const cluster = new ClusterPage(page);
    await expect.poll(() => cluster.nodeCount.textContent(), { timeout: 10_000 }).toBe('10,000 nodes');
    const loadMs = Date.now() - t0;
    expect(loadMs).toBeLessThan(8_000);
    const rendered = await cluster.renderedRows();
    expect(rendered).toBeGreaterThan(5);
    expect(rendered).toBeLessThan(60);
    expect(await cluster.nodes.getAttribute('aria-rowcount')).toBe('10001');
    await screenshotBoth(page, 'cluster-10000-nodes');

    // Keyboard: focus the table and press End; the last node is drawn, still only a window of rows.
    await cluster.nodeScroller.focus();
    await page.keyboard.press('End');
    await cluster.row('sim-10000').waitFor();
    expect(await cluster.renderedRows()).toBeLessThan(60);
    await page.keyboard.press('Home');
    await cluster.row('sim-00001').waitFor();

    await cluster.nameFilter.fill('sim-0999');
    await expect.poll(() => cluster.nodeCount.textContent()).toBe('10 of 10,000 nodes');
    expect(await cluster.renderedRows()).toBe(10);

    // The agent upgrade of 10,000 nodes: the upgrade page stays windowed as well.
    await cluster.nameFilter.fill('');
    await cluster.componentCard('agent').getByRole('button', { name: 'Upgrade Agent' }).click();
    await page.getByTestId('plan-summary').waitFor();
    expect(await page.getByTestId('plan-summary').textContent()).toContain(
      '10,000 nodes to upgrade to Agent 1.1.0 in 19 batches: 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000 × 8, 977.',
    );
    await page.getByTestId('upgrade-dialog').locator('.actions').getByRole('button', { name: 'Upgrade Agent' }).click();
    await page.getByTestId('upgrade-dialog').getByRole('button', { name: 'Start upgrade' }).click();
    await page.waitForURL(/\/upgrades\/upg_/);
    const upgrade = new UpgradePage(page);
    await upgrade.waitForState('Upgrading');
    await upgrade.tasks.waitFor();
    await expect.poll(() => upgrade.tasks.getAttribute('aria-rowcount')).toBe('10001');
    expect(await upgrade.tasks.locator('.vtable-body [role="row"]').count()).toBeLessThan(60);
    await expect.poll(async () => Number(await upgrade.progress.getAttribute('aria-valuenow')), { timeout: 20_000 }).toBeGreaterThan(100);
    await screenshot(page, 'upgrade-10000-nodes-light');
    await upgrade.pause.click();
    await upgrade.waitForState('Paused');
  });

  it('stays readable in a narrow window', async () => {
    const { page } = await h.newPage({ viewport: { width: 390, height: 844 } });
    const signIn = await new SignInPage(page).goto('/clusters');
    await screenshot(page, 'narrow-sign-in-light');
    await signIn.signIn(TEST_TOKEN);
    const clusters = new ClustersPage(page);
    await clusters.row('small').waitFor();
    // No sideways scrolling of the page itself.
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await screenshotBoth(page, 'narrow-clusters');
    await clusters.search.fill('sma');
    await expect.poll(() => clusters.names()).toEqual(['small']);
    await clusters.search.fill('');
    // The column headers are gone in a narrow window; a select sorts instead.
    expect(await clusters.sortBy('Nodes').isVisible()).toBe(false);
    await clusters.sortSelect.selectOption('nodes');
    await expect.poll(() => clusters.names()).toEqual(['small', 'huge']);
    await clusters.sortSelect.selectOption('-nodes');
    await expect.poll(() => clusters.names()).toEqual(['huge', 'small']);
    await page.getByRole('link', { name: 'small' }).click();
    const cluster = new ClusterPage(page);
    await expect.poll(() => cluster.nodeCount.textContent()).toBe('5 nodes');
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await screenshotBoth(page, 'narrow-cluster', { fullPage: true });
    const upgradeLink = page.getByRole('link', { name: /^Agent → 1\.1\.0$/ });
    expect(await upgradeLink.count()).toBe(0);
    await page.goto(`/upgrades?clusterId=${clusterId}`);
    await page.getByTestId('upgrades-table').waitFor();
    await page.getByTestId('upgrades-table').getByRole('link', { name: 'Agent → 1.1.0' }).click();
    await new UpgradePage(page).waitForState('Paused');
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await screenshotBoth(page, 'narrow-upgrade', { fullPage: true });
  });
});
