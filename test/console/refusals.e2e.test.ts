import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TOKEN } from '../support/server.js';
import {
  browserAvailable,
  createSimulatedCluster,
  pageErrors,
  screenshotBoth,
  startConsole,
  waitForUpgradeState,
  type ConsoleHarness,
} from '../support/console/harness.js';
import { ClustersPage } from '../support/console/pages/ClustersPage.js';
import { Shell } from '../support/console/pages/Shell.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradeDialog } from '../support/console/pages/UpgradeDialog.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/**
 * The controls follow the lifecycle (Cancel only once paused), and when the server
 * refuses anyway — another operator acted and this console has not heard yet — the
 * server's own message is shown. To make the console stale on purpose, these pages get
 * no live stream (the request is aborted), so they only learn by asking.
 */
describe.runIf(browserAvailable())('console: refusals', () => {
  let h: ConsoleHarness;
  beforeAll(async () => {
    h = await startConsole();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function staleConsole(path: string): Promise<Page> {
    const { page } = await h.newPage();
    await page.route('**/api/v1/stream', (route) => route.abort());
    const signIn = await new SignInPage(page).goto(path);
    await signIn.signIn(TEST_TOKEN);
    return page;
  }

  it('explains that Cancel needs a pause while Upgrading, and shows the 409s the server answers', async () => {
    const cluster = await createSimulatedCluster(h.server, 'refuse', { nodes: 30, upgradeSeconds: 1, versions: { agent: '1.1.0' } });
    const started = await h.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
    expect(started.status).toBe(201);
    const upgradeId = (started.body as { id: string }).id;

    const page = await staleConsole(`/upgrades/${upgradeId}`);
    const upgrade = new UpgradePage(page);
    await upgrade.waitForState('Upgrading');
    expect(await upgrade.cancel.isDisabled()).toBe(true);
    expect(await upgrade.hint.textContent()).toBe('To cancel, pause first: nodes already started finish, nothing new starts; then cancel.');
    expect(await upgrade.pause.isEnabled()).toBe(true);
    expect(await upgrade.continue.isDisabled()).toBe(true);

    // Another operator pauses; this console still shows Upgrading and its Pause is refused.
    expect((await h.server.api(`/api/v1/upgrades/${upgradeId}/pause`, { method: 'POST', body: {} })).status).toBe(200);
    expect(await upgrade.currentState()).toBe('Upgrading');
    await upgrade.pause.click();
    await upgrade.refusal.waitFor();
    expect(await upgrade.refusal.innerText()).toMatch(/The server refused to pause\s+the upgrade is already paused \(INVALID_STATE\)/);
    // It asked again afterwards: the true state is shown, and Cancel is now allowed.
    await upgrade.waitForState('Paused');
    expect(await upgrade.cancel.isEnabled()).toBe(true);

    // Another operator resumes; this console's Cancel (still Paused here) is refused with PAUSE_FIRST.
    expect((await h.server.api(`/api/v1/upgrades/${upgradeId}/resume`, { method: 'POST', body: {} })).status).toBe(200);
    await upgrade.cancel.click();
    await upgrade.confirmDialog.waitFor();
    expect(await upgrade.confirmDialog.innerText()).toContain('This cannot be undone');
    await upgrade.confirm();
    await expect
      .poll(() => upgrade.refusal.innerText())
      .toMatch(/The server refused to cancel\s+the upgrade is running: pause it first, then cancel \(PAUSE_FIRST\)/);
    await upgrade.waitForState('Upgrading');
    expect(await upgrade.cancel.isDisabled()).toBe(true);
    await screenshotBoth(page, 'upgrade-refusal');
    await upgrade.refusal.getByRole('button', { name: 'Dismiss' }).click();
    expect(await upgrade.refusal.count()).toBe(0);
    expect(await new Shell(page).live.textContent()).not.toBe('Live');

    // Pause and cancel from this console for real: the upgrade ends Canceled, upgraded nodes stay upgraded.
    await upgrade.pause.click();
    await upgrade.waitForState('Paused');
    await upgrade.cancel.click();
    await upgrade.confirm();
    await upgrade.waitForState('Canceled');
    const final = await upgrade.finalNotice.innerText();
    expect(final).toMatch(/^Canceled\. \d+ nodes? upgraded stays? upgraded; \d+ nodes? skipped\.$/);
    await waitForUpgradeState(h.server, upgradeId, 'Canceled');
    expect(pageErrors(page)).toEqual([]);
  });

  it('shows the refusal when an upgrade is started on a cluster that got one meanwhile', async () => {
    await createSimulatedCluster(h.server, 'busy', { nodes: 10, upgradeSeconds: 1, versions: { agent: '1.1.0' } });
    const page = await staleConsole('/clusters');
    const clusters = new ClustersPage(page);
    await clusters.row('busy').waitFor();
    await clusters.upgradeButton('busy', 'containerd').click();
    const dialog = await new UpgradeDialog(page).waitOpen();
    expect(await dialog.activeUpgrade.count()).toBe(0);

    const other = await h.server.api('/api/v1/clusters/busy/upgrades', { body: { component: 'docker' } });
    expect(other.status).toBe(201);
    await dialog.upgradeDirectly.click();
    await dialog.confirmStart.click();
    await dialog.startError.waitFor();
    expect(await dialog.startError.innerText()).toMatch(/\(UPGRADE_IN_PROGRESS\)$/);
    expect(page.url()).toContain('/clusters');
    await screenshotBoth(page, 'upgrade-dialog-refused');
  });

  it('refuses a wrong token at sign-in and signs out when the token stops working', async () => {
    const { page } = await h.newPage();
    const signIn = await new SignInPage(page).goto();
    await signIn.signIn('wrong');
    await expect
      .poll(() => signIn.error.textContent())
      .toBe('The server does not know this token (or it expired or was revoked). Check it and try again.');
    await signIn.signIn('');
    await expect.poll(() => signIn.error.textContent()).toBe('Enter an API token.');
    // Signed in with a token that is then revoked: the next request answers 401 and the
    // sign-in page comes back with the reason.
    const created = await h.server.api('/api/v1/tokens', { body: { name: 'short-lived', role: 'operator' } });
    expect(created.status).toBe(201);
    await signIn.signIn((created.body as { token: string }).token);
    await new ClustersPage(page).heading.waitFor();
    expect((await h.server.api(`/api/v1/tokens/${(created.body as { id: string }).id}`, { method: 'DELETE' })).status).toBe(204);
    // The next request answers 401: the live refresh after the revocation's event, or
    // this navigation (in the page, no reload), whichever comes first.
    await new Shell(page)
      .nav('Upgrades')
      .click({ timeout: 2000 })
      .catch(() => undefined);
    await signIn.heading.waitFor();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'its token was revoked' }).count()).toBe(1);
    expect(await page.evaluate('sessionStorage.getItem("upshift.session")')).toBe(null);
  });
});
