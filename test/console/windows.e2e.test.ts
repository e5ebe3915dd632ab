import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWindowTime, weekdays, windowStatus } from '../../src/domain/maintenance-window.js';
import { TEST_TOKEN } from '../support/server.js';
import {
  browserAvailable,
  createSimulatedCluster,
  pageErrors,
  screenshot,
  startConsole,
  type ConsoleHarness,
} from '../support/console/harness.js';
import { ClusterPage } from '../support/console/pages/ClusterPage.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradeDialog } from '../support/console/pages/UpgradeDialog.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/**
 * Maintenance windows in the console: an admin sets the cluster's default window on the
 * cluster page (a bad zone comes back in the server's words); the Upgrade dialog shows it,
 * an upgrade that keeps it waits and says when the window opens, one with "none" runs at
 * once; the admin clears the default.
 */
describe.runIf(browserAvailable())('console: maintenance windows', () => {
  let h: ConsoleHarness;
  let clusterId: string;
  beforeAll(async () => {
    h = await startConsole();
    clusterId = (await createSimulatedCluster(h.server, 'windowed', { nodes: 6, upgradeSeconds: 0.3, versions: { agent: '1.1.0' } })).id;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('sets the default window, waits for it, runs without one, and clears it', async () => {
    // A one-hour window three days from now (UTC): closed now, whatever the time of day.
    const day = weekdays[(new Date().getUTCDay() + 3) % 7] as string;
    const label = `${day[0]?.toUpperCase()}${day.slice(1)}`;
    const window = { days: [day], start: '02:00', end: '03:00', timezone: 'UTC' } as Parameters<typeof windowStatus>[0];
    const status = windowStatus(window, Date.now());
    if (status.open) throw new Error('the window chosen to be closed is open');
    const opens = describeWindowTime(status.opensAt, 'UTC');
    expect(opens).toBe(`${label} 02:00 UTC`);

    const { page } = await h.newPage();
    const errors = pageErrors(page);
    await (await new SignInPage(page).goto(`/clusters/${clusterId}`)).signIn(TEST_TOKEN);
    const cluster = new ClusterPage(page);
    await cluster.heading.waitFor();
    expect(await cluster.windowText.innerText()).toContain('None: batches of this cluster’s upgrades start at any time');

    // The admin sets the default: a zone that does not exist is refused in the server's words.
    await cluster.setWindow.click();
    const dialog = cluster.windowDialog;
    await dialog.waitFor();
    for (const d of ['Sat', 'Sun']) await dialog.getByRole('checkbox', { name: d, exact: true }).uncheck();
    await dialog.getByRole('checkbox', { name: label, exact: true }).check();
    await dialog.getByLabel('Opens at (HH:MM)').fill('02:00');
    await dialog.getByLabel('Closes at (HH:MM)').fill('03:00');
    await dialog.getByLabel('Time zone').fill('Mars/Olympus');
    await dialog.getByRole('button', { name: 'Save window' }).click();
    await expect
      .poll(() => dialog.getByTestId('window-error').innerText())
      .toBe('window.timezone must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC (VALIDATION_FAILED)');
    expect((await h.server.api(`/api/v1/clusters/${clusterId}`)).body.window).toBeNull();
    await dialog.getByLabel('Time zone').fill('UTC');
    expect(await dialog.getByTestId('window-next').innerText()).toMatch(
      new RegExp(`^${day} 02:00–03:00 UTC: opens ${label} 02:00 UTC, in \\d+[dh]\\d+[hm]$`),
    );
    await dialog.getByRole('button', { name: 'Save window' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect
      .poll(() => cluster.windowText.innerText())
      .toContain(`Upgrades start batches only ${day} 02:00–03:00 UTC (opens ${opens}, in`);
    expect((await h.server.api(`/api/v1/clusters/${clusterId}`)).body.window).toEqual(window);

    // An upgrade that keeps the cluster's window waits for it and says when it opens.
    await cluster.componentCard('docker').getByRole('button', { name: 'Upgrade Docker-Engine' }).click();
    let upgradeDialog = await new UpgradeDialog(page).waitOpen();
    await upgradeDialog.openWindowSection();
    expect(await upgradeDialog.keepClusterWindow.isChecked()).toBe(true);
    expect(await upgradeDialog.windowSection.getByTestId('cluster-window').innerText()).toBe(`${day} 02:00–03:00 UTC`);
    expect(await upgradeDialog.windowSection.innerText()).toContain(`(opens ${opens}, in `);
    await upgradeDialog.ownWindow.check();
    // Its own window starts from the cluster's, to edit.
    expect(await upgradeDialog.windowNext.innerText()).toContain(`${day} 02:00–03:00 UTC: opens ${opens}, in `);
    await screenshot(page, 'upgrade-dialog-window');
    await upgradeDialog.keepClusterWindow.check();
    await upgradeDialog.upgradeDirectly.click();
    expect(await upgradeDialog.confirmSummary.innerText()).toContain(
      `without snapshots, only in the cluster's maintenance window ${day} 02:00–03:00 UTC.`,
    );
    await upgradeDialog.confirmStart.click();
    await page.waitForURL(/\/upgrades\/upg_/);
    const upgrade = new UpgradePage(page);
    await upgrade.waitForState('Upgrading');
    await expect
      .poll(() => upgrade.progressText.innerText())
      .toMatch(
        new RegExp(
          `^Batch 0 of 6 · 0 of 6 nodes · waiting for the maintenance window \\(opens ${opens}, in \\d+[dh]\\d+[hm]\\) · estimate once a batch has ended$`,
        ),
      );
    expect(await upgrade.window.innerText()).toBe(`· maintenance window ${day} 02:00–03:00 UTC`);
    const waiting = await h.server.api(`/api/v1/upgrades/${upgrade.id()}`);
    expect(waiting.body.waiting).toEqual({ reason: 'window', until: new Date(status.opensAt).toISOString() });
    expect(waiting.body.nodes.succeeded).toBe(0);
    await screenshot(page, 'upgrade-waiting-window');

    // Pause and cancel work while it waits.
    await upgrade.pause.click();
    await upgrade.waitForState('Paused');
    await upgrade.cancel.click();
    await upgrade.confirm();
    await upgrade.waitForState('Canceled');

    // Another with "none" starts at once; a bad zone first gets the server's words in the preview.
    await cluster.goto(clusterId);
    await cluster.componentCard('docker').getByRole('button', { name: 'Upgrade Docker-Engine' }).click();
    upgradeDialog = await new UpgradeDialog(page).waitOpen();
    await upgradeDialog.openWindowSection();
    await upgradeDialog.ownWindow.check();
    await upgradeDialog.windowSection.getByLabel('Time zone').fill('Mars/Olympus');
    expect(await upgradeDialog.windowNext.innerText()).toContain('window.timezone must be an IANA time zone name');
    await expect
      .poll(() => upgradeDialog.planPreview.innerText())
      .toContain('policy.window.timezone must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC');
    expect(await upgradeDialog.upgradeDirectly.isDisabled()).toBe(true);
    await upgradeDialog.noWindow.check();
    await upgradeDialog.planSummary.waitFor();
    await expect.poll(() => upgradeDialog.upgradeDirectly.isEnabled()).toBe(true);
    await upgradeDialog.upgradeDirectly.click();
    expect(await upgradeDialog.confirmSummary.innerText()).toContain('without snapshots, at any time (no maintenance window).');
    await upgradeDialog.confirmStart.click();
    await page.waitForURL(/\/upgrades\/upg_/);
    await upgrade.waitForState('Completed');
    expect(await upgrade.window.count()).toBe(0);
    expect((await h.server.api(`/api/v1/upgrades/${upgrade.id()}`)).body.policy.window ?? null).toBeNull();

    // The admin clears the default.
    await cluster.goto(clusterId);
    await cluster.clearWindow.click();
    await expect.poll(() => cluster.windowText.innerText()).toContain('None: batches of this cluster’s upgrades start at any time');
    expect((await h.server.api(`/api/v1/clusters/${clusterId}`)).body.window).toBeNull();
    expect(errors).toEqual([]);
  });
});
