import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TOKEN } from '../support/server.js';
import { browserAvailable, pageErrors, screenshot, screenshotBoth, startConsole, type ConsoleHarness } from '../support/console/harness.js';
import { ClusterPage } from '../support/console/pages/ClusterPage.js';
import { ClustersPage } from '../support/console/pages/ClustersPage.js';
import { EventsPage } from '../support/console/pages/EventsPage.js';
import { Shell } from '../support/console/pages/Shell.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradeDialog } from '../support/console/pages/UpgradeDialog.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/**
 * The whole operator flow in real Chromium on a 50-node simulated cluster, created from
 * the console: sign in, Upgrade Agent (the runtime upgrade is gated on it), an upgrade
 * with snapshots, Pause, Continue, Completed — and the version column of the cluster
 * list changes by itself, without a reload.
 */
describe.runIf(browserAvailable())('console: the upgrade flow on a 50-node cluster', () => {
  let h: ConsoleHarness;
  beforeAll(async () => {
    h = await startConsole();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('signs in, upgrades the agent, then Docker-Engine with snapshots, pausing and continuing, to Completed', async () => {
    const { page } = await h.newPage();
    const shell = new Shell(page);

    // Sign-in: a wrong token is refused with a message, the right one gets in.
    const signIn = await new SignInPage(page).goto();
    await screenshotBoth(page, 'sign-in');
    await signIn.signIn('not-the-token');
    await expect.poll(() => signIn.error.textContent()).toContain('does not know this token');
    await signIn.signIn(TEST_TOKEN);
    const clusters = new ClustersPage(page);
    await clusters.heading.waitFor();
    await page.getByRole('heading', { name: 'No clusters yet' }).waitFor();
    await expect.poll(() => shell.live.textContent()).toBe('Live');

    // Create the cluster from the form (Escape closes a dialog without doing anything).
    await clusters.createButton.click();
    await page.getByTestId('create-cluster-dialog').getByLabel('Name').waitFor();
    await screenshotBoth(page, 'create-cluster-dialog');
    await page.keyboard.press('Escape');
    await page.getByTestId('create-cluster-dialog').waitFor({ state: 'detached' });
    await clusters.createSimulated({ name: 'demo', nodes: 50, seconds: 0.4 });
    await clusters.row('demo').waitFor();
    expect(await clusters.versionText('demo', 'docker')).toBe('20.10.24 Upgrade');
    expect(await clusters.versionText('demo', 'agent')).toBe('1.0.0 Upgrade Agent');
    expect(await clusters.row('demo').locator('td[data-label="Nodes"]').textContent()).toBe('50');
    await shell.markDocument();
    await screenshotBoth(page, 'clusters');

    // Upgrade Docker-Engine: the dialog says the agents are outdated and offers the agent upgrade first.
    await clusters.upgradeButton('demo', 'docker').click();
    const dialog = await new UpgradeDialog(page).waitOpen();
    await expect.poll(() => dialog.agentOutdated.textContent()).toContain('All 50 nodes run an Upshift agent older than 1.1.0');
    expect(await dialog.planSummary.textContent()).toContain(
      '50 nodes to upgrade to Docker-Engine 28.5.2 in 12 batches: 1, 2, 4, 5 × 8, 3',
    );
    expect(await dialog.upgradeDirectly.isDisabled()).toBe(true);
    expect(await dialog.backUpSnapshot.isDisabled()).toBe(true);
    await screenshotBoth(page, 'upgrade-dialog-agent-outdated');
    await dialog.upgradeAgentFirst.click();
    expect(await dialog.component.inputValue()).toBe('agent');
    await expect.poll(() => dialog.planSummary.textContent()).toContain('50 nodes to upgrade to Agent 1.1.0 in 12 batches');
    await dialog.startAgent.click();
    await dialog.confirmStart.click();

    const upgrade = new UpgradePage(page);
    await page.waitForURL(/\/upgrades\/upg_/);
    await upgrade.waitForState('Completed');
    await expect.poll(() => upgrade.progress.getAttribute('aria-valuenow')).toBe('50');
    expect(await upgrade.timelineBars()).toBe(12);
    await expect.poll(() => upgrade.finalNotice.textContent()).toContain('Every node runs Agent 1.1.0');

    // Back to the list (client-side): the agent column shows the new version.
    await shell.nav('Clusters').click();
    await expect.poll(() => clusters.versionText('demo', 'agent')).toBe('1.1.0');

    // Docker-Engine with snapshots first; this time by keyboard.
    await clusters.upgradeButton('demo', 'docker').focus();
    await page.keyboard.press('Enter');
    await dialog.waitOpen();
    expect(await dialog.agentOutdated.count()).toBe(0);
    await expect.poll(() => dialog.backUpSnapshot.isEnabled()).toBe(true);
    // The truth about impact: a Docker Engine upgrade interrupts each node's services; no drain.
    expect(await dialog.impact.innerText()).toMatch(
      /interrupted while their node is upgraded \(Upshift does not drain nodes\)\. At most 5 nodes at a time; /,
    );
    await screenshotBoth(page, 'upgrade-dialog');
    await dialog.backUpSnapshot.click();
    // A last look before anything starts: the cluster, the component, the versions, the node count.
    expect(await dialog.confirmSummary.innerText()).toBe(
      'Docker-Engine on demo: 20.10.24 → 28.5.2 on 50 nodes in 12 batches, snapshots of every node first, at any time (no maintenance window).',
    );
    await screenshotBoth(page, 'upgrade-dialog-confirm');
    await dialog.confirmStart.click();
    await page.waitForURL(/\/upgrades\/upg_/);
    const upgradeId = upgrade.id();

    // It backs up, then upgrades; pause as soon as it is upgrading.
    await upgrade.waitForState('Upgrading');
    expect(await upgrade.cancel.isDisabled()).toBe(true);
    expect(await upgrade.hint.textContent()).toContain('To cancel, pause first');
    await expect.poll(() => page.getByTestId('snapshot-progress').textContent()).toContain('Snapshots: 50 of 50 taken');
    await upgrade.pause.click();
    await upgrade.waitForState('Paused');
    await expect.poll(() => upgrade.pauseNotice.textContent()).toContain('Paused by admin');
    expect(await upgrade.autoCancel.textContent()).toMatch(
      /canceled automatically in (14 d 23 h \d\d|15 d 0 h 00) m \(at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)/,
    );
    expect(await upgrade.continue.isEnabled()).toBe(true);
    expect(await upgrade.cancel.isEnabled()).toBe(true);
    expect(await upgrade.pause.isDisabled()).toBe(true);
    expect(await upgrade.refusal.count()).toBe(0);
    // Started nodes finish after the pause; then nothing runs.
    await expect.poll(() => page.locator('.legend li', { hasText: 'running' }).textContent(), { timeout: 10_000 }).toBe('running 0');
    // Where it stands: no estimate while it waits; the planned batches greyed, the ramp from 1 again.
    await expect
      .poll(() => upgrade.progressText.textContent())
      .toMatch(/^Batch \d+ of \d+ · \d+ of 50 nodes · no estimate while it waits for an operator$/);
    await expect.poll(() => upgrade.plannedSizes()).toEqual(expect.arrayContaining([1]));
    expect((await upgrade.plannedSizes())[0]).toBe(1);
    await screenshotBoth(page, 'upgrade-paused', { fullPage: true });
    await screenshotBoth(page, 'upgrade-paused-viewport');

    // The cluster list shows the cluster mid-upgrade, versions mixed, status from the server.
    await shell.nav('Clusters').click();
    await expect.poll(() => clusters.status('demo').textContent()).toContain('Docker-Engine upgrade is paused');
    const mixed = await clusters.versionText('demo', 'docker');
    expect(mixed).toMatch(/^28\.5\.2 × \d+ 20\.10\.24 × \d+ Upgrade$/);
    await screenshotBoth(page, 'clusters-mid-upgrade');

    // Continue from the upgrade page, then watch the list change to 28.5.2 by itself.
    await page.getByRole('link', { name: 'View upgrade' }).click();
    await upgrade.waitForState('Paused');
    await upgrade.continue.click();
    await upgrade.waitForState('Upgrading');
    await expect.poll(() => upgrade.statusText.textContent()).toBe('Docker-Engine is upgrading');
    // Batches had ended before the pause: the page says when it should end.
    await expect
      .poll(() => upgrade.progressText.textContent())
      .toMatch(/^Batch \d+ of \d+ · \d+ of 50 nodes · about .+ left \(ends \d\d:\d\d:\d\d\)$/);
    await screenshotBoth(page, 'upgrade-running');
    await shell.nav('Clusters').click();
    await expect.poll(() => clusters.status('demo').textContent()).toContain('Docker-Engine is upgrading');
    await expect.poll(() => clusters.versionText('demo', 'docker'), { timeout: 30_000 }).toBe('28.5.2');
    await expect.poll(() => clusters.status('demo').textContent()).toBe('Running');
    expect(await clusters.upgradeButton('demo', 'docker').count()).toBe(0);
    expect(await shell.stillSameDocument()).toBe(true);

    // The upgrade ended Completed, every node succeeded; the batch ramp restarted at 1 after the pause.
    await page.goto(`/upgrades/${upgradeId}`);
    await upgrade.waitForState('Completed');
    expect(await upgrade.progress.getAttribute('aria-valuetext')).toBe('50 of 50 nodes upgraded');
    expect(await upgrade.endReason.textContent()).toMatch(/^Completed: Docker-Engine 28\.5\.2 is on all 50 nodes \(\d{4}-/);
    expect(await upgrade.plannedSizes()).toEqual([]);
    const sizes = (await upgrade.timeline.locator('g.bar text.label').allTextContents()).map((t) => Number(/· (\d+) node/.exec(t)?.[1]));
    expect(sizes[0]).toBe(1);
    expect(sizes.slice(1).includes(1)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(50);
    const log = await upgrade.openLog('sim-050');
    expect(log).toContain('verified: Docker-Engine reports 28.5.2');
    await screenshotBoth(page, 'upgrade-completed', { fullPage: true });

    // The cluster page: nodes with their versions.
    const clusterPage = new ClusterPage(page);
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'demo' }).click();
    await clusterPage.heading.waitFor();
    await expect.poll(() => clusterPage.nodeCount.textContent()).toBe('50 nodes');
    expect(await clusterPage.row('sim-001').getByRole('cell').allTextContents()).toEqual([
      'sim-001',
      'worker',
      'Ready',
      // Simulated nodes report no distribution.
      '—',
      '1.1.0',
      '28.5.2',
      '1.6.20',
      '20221219',
    ]);
    await screenshotBoth(page, 'cluster');

    // The upgrades list: both upgrades, newest first.
    await shell.nav('Upgrades').click();
    const upgradeRows = page.getByTestId('upgrades-table').locator('tbody tr');
    await expect.poll(() => upgradeRows.count()).toBe(2);
    expect(await upgradeRows.first().innerText()).toMatch(/Docker-Engine → 28\.5\.2\s*snapshots\s+demo\s+Completed\s+50\/50/);
    await screenshotBoth(page, 'upgrades');

    // Events: newest first, filters, load more.
    const events = new EventsPage(page);
    await shell.nav('Events').click();
    await events.table.waitFor();
    expect(await events.rows.count()).toBe(50);
    const times = await events.times();
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    await screenshotBoth(page, 'events');
    await events.loadMore.click();
    await expect.poll(() => events.rows.count()).toBe(100);
    await events.type.selectOption('upgrade.completed');
    await expect.poll(() => events.types()).toEqual(['upgrade.completed', 'upgrade.completed']);
    await events.type.selectOption('upgrade.paused');
    await expect.poll(() => events.rows.first().textContent()).toContain('admin');
    expect(await events.types()).toEqual(['upgrade.paused']);
    await events.type.selectOption('');
    await events.upgrade.selectOption(upgradeId);
    await expect.poll(() => page.url()).toContain(`upgradeId=${upgradeId}`);
    await expect.poll(() => events.rows.first().getAttribute('data-type')).toBe('upgrade.completed');
    expect(await shell.stillSameDocument()).toBe(false); // page.goto above reloaded on purpose
    expect(pageErrors(page)).toEqual([]);
  });

  it('keeps the Events page live: a new event appears on top without reloading', async () => {
    const { page } = await h.newPage();
    await new SignInPage(page).goto('/events');
    await new SignInPage(page).signIn(TEST_TOKEN);
    const events = new EventsPage(page);
    await events.heading.waitFor();
    await events.table.waitFor();
    await expect.poll(() => new Shell(page).live.textContent()).toBe('Live');
    await h.server.api('/api/v1/clusters', { body: { name: 'late', kind: 'simulated', simulation: { nodes: 3 } } });
    await expect.poll(() => events.rows.first().textContent()).toContain('late');
    expect(await events.rows.first().getAttribute('data-type')).toBe('cluster.created');
    await screenshot(page, 'events-live-light');
  });

  it('switches the theme with the toggle, and signs out', async () => {
    const { page } = await h.newPage({ colorScheme: 'light' });
    const signIn = await new SignInPage(page).goto();
    await signIn.signIn(TEST_TOKEN);
    const shell = new Shell(page);
    const clusters = new ClustersPage(page);
    await clusters.heading.waitFor();
    const light = await shell.backgroundColor();
    await shell.themeToggle.click(); // System → Light
    expect(await shell.theme()).toBe('light');
    await shell.themeToggle.click(); // Light → Dark
    expect(await shell.theme()).toBe('dark');
    expect(await shell.backgroundColor()).not.toBe(light);
    await page.reload();
    await clusters.heading.waitFor(); // the session survives a reload of the tab…
    expect(await shell.theme()).toBe('dark'); // …and so does the theme
    await screenshot(page, 'clusters-dark-toggle');
    await shell.themeToggle.click(); // Dark → System
    expect(await shell.theme()).toBe(null);
    await shell.signOut.click();
    await signIn.heading.waitFor();
    expect(await page.evaluate('sessionStorage.getItem("upshift.session")')).toBe(null);
    await page.reload();
    await signIn.heading.waitFor();
  });
});
