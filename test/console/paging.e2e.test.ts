import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TOKEN } from '../support/server.js';
import { browserAvailable, createSimulatedCluster, pageErrors, startConsole, type ConsoleHarness } from '../support/console/harness.js';
import { ClusterPage } from '../support/console/pages/ClusterPage.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/**
 * The server pages node lists (500 rows by default): the console's tables load the first
 * page at once and the next ones as the user scrolls towards them, while live changes
 * still reach the rows in view. A cluster of 1,200 simulated nodes is three pages.
 */
describe.runIf(browserAvailable())('console: node tables load page by page as they scroll', () => {
  let h: ConsoleHarness;
  let clusterId: string;
  beforeAll(async () => {
    h = await startConsole();
    clusterId = (
      await createSimulatedCluster(h.server, 'paged', {
        nodes: 1200,
        upgradeSeconds: 0.3,
        versions: { agent: '1.1.0', docker: '20.10.24' },
      })
    ).id;
  });
  afterAll(async () => {
    await h?.close();
  });

  /** The query strings of the console's requests for a paged list, in order. */
  const pageRequests = (page: Page, pathEnd: RegExp) => {
    const seen: URLSearchParams[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (pathEnd.test(url.pathname)) seen.push(url.searchParams);
    });
    return seen;
  };

  it('shows the first nodes at once, the last one after scrolling to the end, and a node that joins', async () => {
    const { page } = await h.newPage();
    const requests = pageRequests(page, /\/clusters\/[^/]+\/nodes$/);
    await (await new SignInPage(page).goto(`/clusters/${clusterId}`)).signIn(TEST_TOKEN);
    const cluster = new ClusterPage(page);
    await cluster.row('sim-0001').waitFor();
    await expect.poll(() => cluster.nodeCount.textContent()).toBe('1,200 nodes');
    // The scroll bar is the whole cluster's, though one page is loaded.
    expect(await cluster.nodes.getAttribute('aria-rowcount')).toBe('1201');
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((q) => q.get('cursor') === null && q.get('limit') === '500')).toBe(true);
    expect(await cluster.row('sim-1200').count()).toBe(0);

    // To the end: the next pages load, following the server's cursor, and the last node shows.
    await cluster.nodeScroller.focus();
    await page.keyboard.press('End');
    await cluster.row('sim-1200').waitFor();
    expect(requests.some((q) => q.get('cursor') !== null)).toBe(true);
    expect(await cluster.renderedRows()).toBeLessThan(60);
    expect(await cluster.nodes.locator('[aria-busy="true"]').count()).toBe(0);

    // Live: a node that joins at the end appears in view without a reload.
    expect((await h.server.api(`/api/v1/clusters/${clusterId}/nodes`, { body: { name: 'sim-1201' } })).status).toBe(201);
    await cluster.row('sim-1201').waitFor();
    await expect.poll(() => cluster.nodeCount.textContent()).toBe('1,201 nodes');

    // A filter sees every node, loaded or not.
    await page.keyboard.press('Home');
    await cluster.row('sim-0001').waitFor();
    await cluster.nameFilter.fill('sim-11');
    await expect.poll(() => cluster.nodeCount.textContent()).toBe('100 of 1,201 nodes');
    expect(pageErrors(page)).toEqual([]);
  });

  it('loads an upgrade’s nodes as the table scrolls, and their states change live', async () => {
    const started = await h.server.api(`/api/v1/clusters/${clusterId}/upgrades`, { body: { component: 'docker' } });
    expect(started.status, started.text).toBe(201);
    const { page } = await h.newPage();
    const requests = pageRequests(page, /\/upgrades\/[^/]+\/nodes$/);
    await (await new SignInPage(page).goto(`/upgrades/${started.body.id}`)).signIn(TEST_TOKEN);
    const upgrade = new UpgradePage(page);
    const row = (name: string) => upgrade.tasks.getByRole('row').filter({ has: page.getByRole('cell', { name, exact: true }) });
    await row('sim-0001').waitFor();
    expect(await upgrade.tasks.getAttribute('aria-rowcount')).toBe('1202');
    expect(requests.every((q) => q.get('cursor') === null)).toBe(true);
    // The first node, in the first batch, turns succeeded in place.
    await row('sim-0001').getByText('succeeded', { exact: true }).waitFor({ timeout: 20_000 });

    const scroller = upgrade.tasks.locator('.vtable-scroll');
    await scroller.focus();
    await page.keyboard.press('End');
    await row('sim-1201').waitFor();
    expect(requests.some((q) => q.get('cursor') !== null)).toBe(true);

    // A state filter sees every page, and follows the states of nodes out of view as well.
    await page.getByTestId('task-state-filter').selectOption('succeeded');
    await upgrade.waitForState('Completed', 60_000);
    await expect.poll(() => page.getByTestId('task-count').textContent(), { timeout: 20_000 }).toBe('1,201 nodes');
    await page.getByTestId('task-state-filter').selectOption('');
    await scroller.focus();
    await page.keyboard.press('End');
    await row('sim-1201').getByText('succeeded', { exact: true }).waitFor({ timeout: 20_000 });
    expect(pageErrors(page)).toEqual([]);
  });
});
