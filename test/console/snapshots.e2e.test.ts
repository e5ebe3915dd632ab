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
import { ClustersPage } from '../support/console/pages/ClustersPage.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradeDialog } from '../support/console/pages/UpgradeDialog.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/** "Back up Snapshot before Upgrade": when a snapshot fails the operator gets Continue or Quit. */
describe.runIf(browserAvailable())('console: a failed snapshot asks Continue or Quit', () => {
  let h: ConsoleHarness;
  beforeAll(async () => {
    h = await startConsole();
    await createSimulatedCluster(h.server, 'snap-continue', {
      nodes: 10,
      upgradeSeconds: 0.3,
      versions: { agent: '1.1.0' },
      snapshotFailNodes: ['sim-003', 'sim-008'],
    });
    await createSimulatedCluster(h.server, 'snap-quit', {
      nodes: 10,
      upgradeSeconds: 0.3,
      versions: { agent: '1.1.0' },
      snapshotFailNodes: ['sim-005'],
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  async function startWithSnapshots(cluster: string) {
    const { page } = await h.newPage();
    const signIn = await new SignInPage(page).goto('/clusters');
    await signIn.signIn(TEST_TOKEN);
    const clusters = new ClustersPage(page);
    await clusters.upgradeButton(cluster, 'docker').click();
    const dialog = await new UpgradeDialog(page).waitOpen();
    await dialog.backUpSnapshot.click();
    await dialog.confirmStart.click();
    await page.waitForURL(/\/upgrades\/upg_/);
    const upgrade = new UpgradePage(page);
    await upgrade.waitForState('SnapshotFailed');
    return { page, upgrade, clusters };
  }

  it('Continue goes on without the failed snapshots, to Completed', async () => {
    const { page, upgrade } = await startWithSnapshots('snap-continue');
    await expect.poll(() => upgrade.snapshotPrompt.innerText()).toContain('sim-008: simulated snapshot failure on sim-008');
    const prompt = await upgrade.snapshotPrompt.innerText();
    expect(prompt).toContain('2 of 10 snapshots failed');
    expect(prompt).toContain('sim-003: simulated snapshot failure on sim-003');
    expect(prompt).toContain('sim-008: simulated snapshot failure on sim-008');
    expect(prompt).toContain('No node has been upgraded.');
    expect(await upgrade.statusText.textContent()).toBe('Docker-Engine upgrade is waiting: a snapshot failed');
    expect(await page.getByRole('group', { name: 'Upgrade controls' }).count()).toBe(0);
    expect(await upgrade.progress.getAttribute('aria-valuenow')).toBe('0');
    await screenshotBoth(page, 'upgrade-snapshot-failed');

    await upgrade.snapshotContinue.click();
    await upgrade.waitForState('Completed');
    expect(await upgrade.progress.getAttribute('aria-valuetext')).toBe('10 of 10 nodes upgraded');
    expect(await upgrade.timeline.locator('[data-phase="snapshots"]').count()).toBe(1);
    expect(await upgrade.taskRow('sim-003').innerText()).toMatch(
      /succeeded[\s\S]*failed[\s\S]*snapshot: simulated snapshot failure on sim-003/,
    );
    expect(pageErrors(page)).toEqual([]);
  });

  it('Quit (after confirming) gives up the upgrade: Canceled, nothing upgraded', async () => {
    const { page, upgrade, clusters } = await startWithSnapshots('snap-quit');
    await upgrade.snapshotQuit.click();
    await upgrade.confirmDialog.waitFor();
    expect(await upgrade.confirmDialog.innerText()).toContain('Nothing has been upgraded.');
    await upgrade.confirm();
    await upgrade.waitForState('Canceled');
    expect(await upgrade.finalNotice.innerText()).toMatch(/^Canceled\. 0 nodes upgraded stay upgraded; 10 nodes skipped\.$/);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Clusters' }).click();
    await expect.poll(() => clusters.status('snap-quit').innerText()).toBe('Running');
    expect(await clusters.versionText('snap-quit', 'docker')).toBe('20.10.24 Upgrade');
  });
});
