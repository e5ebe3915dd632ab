import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page, Request } from 'playwright-core';
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
import { TokensPage } from '../support/console/pages/TokensPage.js';
import { UpgradePage } from '../support/console/pages/UpgradePage.js';

/**
 * Sessions and roles: the console trades the API token for an httpOnly session cookie
 * and keeps only the CSRF token; a viewer is offered no action it cannot take; an admin
 * creates and revokes tokens on the Tokens page.
 */
describe.runIf(browserAvailable())('console: sessions, roles and tokens', () => {
  let h: ConsoleHarness;
  beforeAll(async () => {
    h = await startConsole();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function createToken(name: string, role: 'viewer' | 'operator' | 'admin'): Promise<string> {
    const res = await h.server.api('/api/v1/tokens', { body: { name, role } });
    expect(res.status).toBe(201);
    return (res.body as { token: string }).token;
  }

  /** Everything the page keeps in Web Storage, as one string. */
  async function webStorage(page: Page): Promise<string> {
    return (await page.evaluate(
      'JSON.stringify({ session: Object.entries(sessionStorage), local: Object.entries(localStorage) })',
    )) as string;
  }

  it('signs in with an httpOnly session cookie, sends no API token, and signs out on the server', async () => {
    const { context, page } = await h.newPage();
    const apiRequests: Request[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.startsWith('/api/')) apiRequests.push(request);
    });
    const signIn = await new SignInPage(page).goto();
    await signIn.signIn(TEST_TOKEN);
    await new ClustersPage(page).heading.waitFor();
    const shell = new Shell(page);
    await expect.poll(() => shell.live.textContent()).toBe('Live');
    expect(await shell.principal.innerText()).toMatch(/^admin\s+admin$/i);
    expect(await shell.nav('Tokens').count()).toBe(1);

    const cookie = (await context.cookies()).find((c) => c.name === 'upshift_session');
    expect(cookie).toBeDefined();
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe('Strict');
    expect(await page.evaluate('document.cookie')).not.toContain('upshift_session');
    // The API token is nowhere in the page's storage; the CSRF token is.
    const stored = await webStorage(page);
    expect(stored).not.toContain(TEST_TOKEN);
    expect(stored).toContain('csrfToken');
    // The token went once, in the sign-in body; no request carries an Authorization header.
    const signInRequest = apiRequests.find((r) => r.method() === 'POST' && r.url().endsWith('/api/v1/session'));
    expect(signInRequest?.postDataJSON()).toEqual({ token: TEST_TOKEN });
    expect(apiRequests.filter((r) => r.headers()['authorization'] !== undefined)).toEqual([]);
    expect(apiRequests.some((r) => r.url().endsWith('/api/v1/stream'))).toBe(true);

    // The session survives a reload; sign-out ends it on the server (with the CSRF token) and clears the cookie.
    await page.reload();
    await shell.principal.waitFor();

    // A second tab of the same browser (a link opened from chat) shares the session
    // without a sign-in, with the same CSRF token; the first tab keeps working.
    const second = await context.newPage();
    await second.goto('/clusters');
    await new ClustersPage(second).heading.waitFor();
    expect(await new Shell(second).principal.innerText()).toMatch(/^admin\s+admin$/i);
    expect(await second.getByRole('heading', { name: 'Sign in' }).count()).toBe(0);
    const csrfOf = async (p: Page) =>
      (JSON.parse((await p.evaluate('sessionStorage.getItem("upshift.session")')) as string) as { csrfToken: string }).csrfToken;
    expect(await csrfOf(second)).toBe(await csrfOf(page));
    await page.reload();
    await shell.principal.waitFor();
    expect(await page.getByRole('heading', { name: 'Sign in' }).count()).toBe(0);
    await shell.signOut.click();
    await signIn.heading.waitFor();
    const signOutRequest = apiRequests.find((r) => r.method() === 'DELETE' && r.url().endsWith('/api/v1/session'));
    expect(signOutRequest?.headers()['x-csrf-token']).toBeTruthy();
    expect((await context.cookies()).find((c) => c.name === 'upshift_session')).toBeUndefined();
    expect(await webStorage(page)).not.toContain('csrfToken');
    expect((await page.request.get('/api/v1/session')).status()).toBe(401);
    // The session is over for the second tab too.
    await second.reload();
    await new SignInPage(second).heading.waitFor();
    await second.close();
    expect(pageErrors(page)).toEqual([]);
  });

  it('offers a viewer no Upgrade, Pause, Continue or Cancel, and says which role they need', async () => {
    await createSimulatedCluster(h.server, 'watched', { nodes: 10, upgradeSeconds: 1, versions: { agent: '1.1.0' } });
    const started = await h.server.api('/api/v1/clusters/watched/upgrades', { body: { component: 'docker' } });
    expect(started.status).toBe(201);
    const upgradeId = (started.body as { id: string }).id;
    expect((await h.server.api(`/api/v1/upgrades/${upgradeId}/pause`, { method: 'POST', body: {} })).status).toBe(200);
    await waitForUpgradeState(h.server, upgradeId, 'Paused');

    const { page } = await h.newPage();
    await new SignInPage(page).goto();
    await new SignInPage(page).signIn(await createToken('auditor', 'viewer'));
    const clusters = new ClustersPage(page);
    await clusters.row('watched').waitFor();
    const shell = new Shell(page);
    expect(await shell.principal.innerText()).toMatch(/^token:auditor\s+viewer$/i);
    expect(await shell.nav('Tokens').count()).toBe(0);
    expect(await page.getByRole('button', { name: /^Upgrade/ }).count()).toBe(0);
    expect(await page.getByTestId('role-note').innerText()).toBe(
      'Upgrading a cluster needs the operator role; you are signed in as token:auditor (viewer).',
    );
    expect(await clusters.createButton.isDisabled()).toBe(true);
    expect(await clusters.createButton.getAttribute('title')).toBe('Needs the admin role; token:auditor is viewer.');
    await screenshotBoth(page, 'clusters-viewer');

    await page.goto(`/upgrades/${upgradeId}`);
    const upgrade = new UpgradePage(page);
    await upgrade.waitForState('Paused');
    expect(await page.getByRole('group', { name: 'Upgrade controls' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /^(Pause|Continue|Cancel upgrade)$/ }).count()).toBe(0);
    expect(await page.getByTestId('role-note').innerText()).toContain(
      'Pausing, continuing or canceling the upgrade needs the operator role',
    );
    await screenshotBoth(page, 'upgrade-viewer');

    // The Tokens page is not in the nav; opened by its address it says who may use it.
    await page.goto('/tokens');
    await page.getByRole('heading', { name: 'Tokens', level: 1 }).waitFor();
    expect(await page.getByTestId('role-note').innerText()).toContain('Managing API tokens needs the admin role');
    expect(pageErrors(page)).toEqual([]);
  });

  it('creates a token on the Tokens page, shows its secret once, and revokes it', async () => {
    const { context, page } = await h.newPage();
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.server.url });
    await new SignInPage(page).goto();
    await new SignInPage(page).signIn(TEST_TOKEN);
    const shell = new Shell(page);
    await shell.nav('Tokens').click();
    const tokens = new TokensPage(page);
    await tokens.heading.waitFor();

    const secret = await tokens.create({ name: 'ci-pipeline', role: 'operator', expiresAfter: '30 days' });
    expect(secret).toMatch(/^upt_/);
    expect(await tokens.secretWarning.innerText()).toContain('This is the only time it is shown');
    await tokens.createdDialog.getByRole('button', { name: 'Copy' }).click();
    await tokens.createdDialog.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(secret);
    await screenshotBoth(page, 'token-created');
    await tokens.createdDialog.getByRole('button', { name: 'Done' }).click();
    await tokens.row('ci-pipeline').waitFor();
    expect(await tokens.status('ci-pipeline')).toBe('Active');
    expect(await tokens.row('ci-pipeline').locator('.role-badge').textContent()).toBe('operator');
    // The secret is not on the page any more, nor in its storage.
    expect(await page.content()).not.toContain(secret);
    expect(await webStorage(page)).not.toContain(secret);

    // The new token signs in (another browser) as an operator.
    const other = await h.newPage();
    const otherSignIn = await new SignInPage(other.page).goto();
    await otherSignIn.signIn(secret);
    await new Shell(other.page).principal.waitFor();
    expect(await new Shell(other.page).principal.innerText()).toMatch(/^token:ci-pipeline\s+operator$/i);
    await screenshotBoth(page, 'tokens');

    // Revoke it, after a confirmation: the list says Revoked, its console session ends, and it can no longer sign in.
    await tokens.revoke('ci-pipeline');
    expect(await tokens.revokeDialog.innerText()).toContain('This cannot be undone');
    await screenshotBoth(page, 'revoke-token-dialog');
    await tokens.confirmRevoke();
    await expect.poll(() => tokens.status('ci-pipeline')).toBe('Revoked');
    expect(
      await tokens
        .row('ci-pipeline')
        .getByRole('button', { name: /^Revoke/ })
        .count(),
    ).toBe(0);

    await other.page.reload();
    await otherSignIn.heading.waitFor();
    await otherSignIn.signIn(secret);
    await expect
      .poll(() => otherSignIn.error.textContent())
      .toBe('The server does not know this token (or it expired or was revoked). Check it and try again.');
    expect(pageErrors(page)).toEqual([]);
    expect(pageErrors(other.page)).toEqual([]);
  });

  it('cannot be framed by a page of another origin (no clickjacking)', async () => {
    const { context, page } = await h.newPage();
    // Signed in: a framed console would be live.
    const signIn = await new SignInPage(page).goto();
    await signIn.signIn(TEST_TOKEN);
    await new ClustersPage(page).heading.waitFor();
    const attacker = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><h1>Win a prize</h1><iframe id="victim" src="${h.server.url}/clusters" width="800" height="600"></iframe>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    try {
      const evil = await context.newPage();
      const blocked: string[] = [];
      evil.on('console', (m) => blocked.push(m.text()));
      await evil.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`);
      await evil.getByRole('heading', { name: 'Win a prize' }).waitFor();
      await expect
        .poll(() => blocked.some((t) => /frame-ancestors|X-Frame-Options|refused to (display|connect)/i.test(t)), { timeout: 10_000 })
        .toBe(true);
      const frame = evil.frames().find((f) => f !== evil.mainFrame());
      const framedText = frame ? await frame.evaluate('document.body ? document.body.innerText : ""').then(String, () => '') : '';
      expect(framedText).not.toMatch(/Clusters|Pause|Sign in/);
    } finally {
      attacker.close();
    }
  });
});
