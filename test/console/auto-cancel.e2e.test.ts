import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TOKEN } from '../support/server.js';
import {
  browserAvailable,
  createSimulatedCluster,
  pageErrors,
  screenshot,
  startConsole,
  waitForUpgradeState,
  type ConsoleHarness,
} from '../support/console/harness.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/**
 * An upgrade left paused past the paused TTL is canceled by the engine, and its page says
 * so for good: why it ended, by whom, that its events and logs were deleted. The server
 * runs with a 6 s TTL so that the test does not wait 15 days. The page is open before
 * the pause: the paused state lasts only the TTL, and a sign-in on a loaded machine may
 * take longer than that.
 */
describe.runIf(browserAvailable())('console: an auto-canceled upgrade', () => {
  let h: ConsoleHarness;
  beforeAll(async () => {
    h = await startConsole({ serverArgs: ['--paused-ttl', '6s'] });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('says the upgrade was canceled automatically after the pause, and that its history was deleted', async () => {
    // 100 nodes of 2 s in batches of at most 10: about 28 s of upgrading, enough to open the page.
    const cluster = await createSimulatedCluster(h.server, 'forgotten', { nodes: 100, upgradeSeconds: 2, versions: { agent: '1.1.0' } });
    const started = await h.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
    expect(started.status, started.text).toBe(201);
    const upgradeId = (started.body as { id: string }).id;
    await waitForUpgradeState(h.server, upgradeId, 'Upgrading');

    const { page } = await h.newPage();
    const errors = pageErrors(page);
    await new SignInPage(page).goto(`/upgrades/${upgradeId}`).then((s) => s.signIn(TEST_TOKEN));
    const upgrade = new UpgradePage(page);
    await upgrade.waitForState('Upgrading');
    const paused = await h.server.api(`/api/v1/upgrades/${upgradeId}/pause`, { method: 'POST', body: {} });
    expect(paused.status, paused.text).toBe(200);
    await upgrade.waitForState('Paused');
    await upgrade.autoCancel.waitFor();
    expect(await upgrade.autoCancel.textContent()).toMatch(/canceled automatically in/);

    // The page learns of the cancel from the live stream, without a reload.
    await upgrade.waitForState('Canceled', 20_000);
    await upgrade.endReason.waitFor();
    expect(await upgrade.endReason.textContent()).toMatch(
      /^Canceled automatically after 6 seconds paused \(it was paused: .*\); its events and logs were deleted \(\d{4}-/,
    );
    expect(await upgrade.finalNotice.textContent()).toMatch(/^Canceled\. \d+ nodes? upgraded stays? upgraded; \d+ nodes? skipped\.$/);
    // Nothing is left to do on it.
    expect(await upgrade.pause.count()).toBe(0);
    expect(await upgrade.autoCancel.count()).toBe(0);
    const view = (await h.server.api(`/api/v1/upgrades/${upgradeId}`)).body as { endReason: { kind: string; actor: string } };
    expect(view.endReason).toMatchObject({ kind: 'auto_canceled', actor: 'engine' });
    await screenshot(page, 'upgrade-auto-canceled', { fullPage: true });
    expect(errors).toEqual([]);
  }, 60_000);
});
