import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { UpgradeDialog } from '../support/console/pages/UpgradeDialog.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/**
 * Health gates in the console: the Upgrade dialog adds, edits, tests and removes gates;
 * the upgrade page lists each gate with its last check, and a banner says which gate
 * paused the upgrade and what it saw; Continue checks again and finishes.
 */
describe.runIf(browserAvailable())('console: health gates', () => {
  let h: ConsoleHarness;
  let clusterId: string;
  let endpoint: Server;
  let url: string;
  let healthy = true;
  beforeAll(async () => {
    endpoint = createServer((_req, res) => {
      res.writeHead(healthy ? 200 : 503);
      res.end(healthy ? 'ok' : 'down');
    });
    await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/health`;
    h = await startConsole();
    clusterId = (await createSimulatedCluster(h.server, 'gated', { nodes: 12, upgradeSeconds: 0.4, versions: { agent: '1.1.0' } })).id;
  });
  afterAll(async () => {
    await h?.close();
    endpoint?.closeAllConnections();
    await new Promise((r) => endpoint?.close(r));
  });

  it('edits and tests gates in the Upgrade dialog, shows their checks, and the gate that paused the upgrade', async () => {
    const { page } = await h.newPage();
    const errors = pageErrors(page);
    await (await new SignInPage(page).goto(`/clusters/${clusterId}`)).signIn(TEST_TOKEN);
    const cluster = new ClusterPage(page);
    await cluster.heading.waitFor();
    await cluster.componentCard('docker').getByRole('button', { name: 'Upgrade Docker-Engine' }).click();
    const dialog = await new UpgradeDialog(page).waitOpen();
    await dialog.root.getByText('Health gates').click();
    const editor = dialog.root.getByTestId('gate-editor');

    // Add a Prometheus gate without a bound: Test now says what to fix; then remove it.
    await editor.getByRole('button', { name: 'Add a gate' }).click();
    const first = editor.getByTestId('gate').nth(0);
    await first.getByLabel('Kind').selectOption('prometheus');
    await first.getByLabel('Prometheus URL').fill('http://127.0.0.1:9/');
    await first.getByLabel('Query').fill('up');
    await first.getByRole('button', { name: 'Test now' }).click();
    await expect.poll(() => first.getByTestId('gate-test-result').innerText()).toContain('gate needs a bound: max, min or both');
    expect(await first.getByRole('option', { name: 'Swarm services (Swarm clusters)' }).isDisabled()).toBe(true);
    await first.getByRole('button', { name: 'Remove' }).click();
    expect(await editor.getByTestId('gate').count()).toBe(0);

    // An HTTP gate: Test now passes, then fails once the endpoint does.
    await editor.getByRole('button', { name: 'Add a gate' }).click();
    const gate = editor.getByTestId('gate').nth(0);
    await gate.getByLabel('URL').fill(url);
    await gate.getByLabel('Retry for (s)').fill('1');
    await gate.getByRole('button', { name: 'Test now' }).click();
    await expect.poll(() => gate.getByTestId('gate-test-result').innerText()).toBe(`Passes: GET ${url} answered 200`);
    healthy = false;
    await gate.getByRole('button', { name: 'Test now' }).click();
    await expect.poll(() => gate.getByTestId('gate-test-result').innerText()).toBe(`Fails: GET ${url} answered 503, expected 200`);
    healthy = true;
    await screenshotBoth(page, 'upgrade-dialog-gates');

    await dialog.upgradeDirectly.click();
    await dialog.confirmStart.click();
    await page.waitForURL(/\/upgrades\/upg_/);
    const upgrade = new UpgradePage(page);
    const gates = page.getByTestId('upgrade-gates');
    await expect.poll(() => gates.innerText()).toContain(`http ${url} (expects 200) · retried for 1 s`);
    await expect.poll(() => gates.getByTestId('gate-last-check').innerText()).toContain(`passed`);
    await expect.poll(async () => (await h.server.api(`/api/v1/upgrades/${upgrade.id()}`)).body.batches.length).toBeGreaterThan(1);

    healthy = false;
    await upgrade.waitForState('Paused');
    const banner = page.getByTestId('gate-pause-banner');
    expect(await banner.innerText()).toContain('Paused automatically: health gate 1 kept failing');
    expect(await banner.innerText()).toContain(`GET ${url} answered 503, expected 200`);
    await expect.poll(() => gates.getByTestId('gate-last-check').innerText()).toContain(`failed`);
    await screenshotBoth(page, 'upgrade-gate-paused', { fullPage: true });

    healthy = true;
    await upgrade.continue.click();
    await upgrade.waitForState('Completed');
    expect(await banner.count()).toBe(0);
    expect(errors).toEqual([]);
  });
});
