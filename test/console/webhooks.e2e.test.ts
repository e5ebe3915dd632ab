import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { Shell } from '../support/console/pages/Shell.js';
import { SignInPage } from '../support/console/pages/SignInPage.js';
import { WebhooksPage } from '../support/console/pages/WebhooksPage.js';

/** A webhook receiver on loopback that answers every POST with `status`, keeping what it got. */
async function startReceiver(
  status: number,
): Promise<{ url: string; received: { headers: IncomingHttpHeaders; body: string }[]; close: () => Promise<void> }> {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(status).end(status === 200 ? 'ok' : 'receiver broken');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const signature = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/**
 * The Webhooks page against real receivers on loopback: an admin creates two webhooks
 * (one refused first for its URL, with the server's words), an upgrade completes, one
 * receiver accepts the event and the other answers 500, and the page shows each
 * webhook's deliveries, the last error and every attempt, then deletes one. A viewer
 * gets the role note and nothing else.
 */
describe.runIf(browserAvailable())('console: webhooks', () => {
  let h: ConsoleHarness;
  let good: Awaited<ReturnType<typeof startReceiver>>;
  let broken: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    [h, good, broken] = await Promise.all([startConsole(), startReceiver(200), startReceiver(500)]);
  });
  afterAll(async () => {
    await h?.close();
    await good?.close();
    await broken?.close();
  });

  it('creates webhooks, shows a sent and a retried delivery with its error, and deletes one', async () => {
    const { page } = await h.newPage();
    const errors = pageErrors(page);
    await new SignInPage(page).goto().then((s) => s.signIn(TEST_TOKEN));
    const shell = new Shell(page);
    await shell.nav('Webhooks').click();
    const webhooks = new WebhooksPage(page);
    await webhooks.heading.waitFor();
    await webhooks.empty.waitFor();
    expect(await shell.nav('Webhooks').getAttribute('aria-current')).toBe('page');

    // A URL the server refuses: its message, in its words, and nothing created.
    await webhooks.fillCreate({ name: 'chat', url: 'ftp://hooks.example.com/x', events: ['upgrade.completed'] });
    await webhooks.submitCreate();
    await webhooks.createError.waitFor();
    expect(await webhooks.createError.innerText()).toMatch(
      /^url must be http:\/\/ or https:\/\/, not ftp:\/\/; such as https:\/\/hooks\.example\.com\/upshift \(VALIDATION_FAILED\)$/,
    );
    expect((await h.server.api('/api/v1/webhooks')).body).toEqual({ items: [] });
    await screenshot(page, 'create-webhook-refused');

    // Fixed in the same dialog; the secret is generated in the browser and shown once.
    await webhooks.createDialog.getByLabel('URL', { exact: true }).fill(good.url);
    await webhooks.submitCreate();
    await webhooks.secret.waitFor();
    const chatSecret = await webhooks.secret.inputValue();
    expect(chatSecret).toMatch(/^whsec_[0-9a-f]{64}$/);
    expect(await webhooks.secretWarning.innerText()).toContain('This is the only time it is shown');
    await screenshot(page, 'webhook-created');
    await webhooks.closeCreated();
    await webhooks.row('chat').waitFor();

    // The second one with a typed secret, in the Slack format, to a receiver that answers 500.
    const pagerSecret = 'pager-secret-typed-0123456789';
    expect(
      await webhooks.create({
        name: 'ops-pager',
        url: broken.url,
        events: ['upgrade.auto_paused', 'upgrade.completed'],
        format: 'slack',
        secret: pagerSecret,
      }),
    ).toBe(pagerSecret);
    await webhooks.closeCreated();
    await webhooks.row('ops-pager').waitFor();
    expect(await webhooks.row('ops-pager').getByTestId('webhook-events').innerText()).toBe('upgrade.auto_paused\nupgrade.completed');
    expect(await webhooks.row('chat').getByTestId('webhook-url').innerText()).toBe(good.url);
    expect(await webhooks.deliveries('chat')).toBe('No delivery yet');
    // Once created, neither secret is on the page again.
    for (const secret of [chatSecret, pagerSecret]) expect(await page.content()).not.toContain(secret);

    // An event both subscribe to: an upgrade completes.
    const cluster = await createSimulatedCluster(h.server, 'hooked', { nodes: 3, upgradeSeconds: 0.2, versions: { agent: '1.1.0' } });
    const started = await h.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
    expect(started.status, started.text).toBe(201);
    const upgradeId = (started.body as { id: string }).id;
    await waitForUpgradeState(h.server, upgradeId, 'Completed');

    // The list follows without a reload: chat's delivery sent, ops-pager's retried with its error.
    await expect.poll(() => webhooks.deliveries('chat'), { timeout: 20_000 }).toMatch(/^1 sent\s+0 pending\s+0 failed$/);
    await expect
      .poll(() => webhooks.deliveries('ops-pager'), { timeout: 20_000 })
      .toMatch(/^0 sent\s+1 pending\s+0 failed\s+Last error \d\d:\d\d:\d\d: the receiver answered HTTP 500$/);
    await screenshot(page, 'webhooks');

    // What the receivers got is signed with the secrets the dialog showed.
    expect(good.received).toHaveLength(1);
    const chatBody = good.received[0]!;
    expect(chatBody.headers['x-upshift-signature']).toBe(signature(chatSecret, chatBody.body));
    expect(JSON.parse(chatBody.body)).toMatchObject({ type: 'upgrade.completed', upgradeId, clusterId: cluster.id, webhook: 'chat' });
    expect(broken.received.length).toBeGreaterThanOrEqual(1);
    const pagerBody = broken.received[0]!;
    expect(pagerBody.headers['x-upshift-signature']).toBe(signature(pagerSecret, pagerBody.body));
    expect(JSON.parse(pagerBody.body)).toHaveProperty('text');

    // chat's deliveries: sent at the first attempt.
    const chat = await webhooks.openDeliveries('chat');
    expect(await chat.state('upgrade.completed')).toBe('sent');
    const chatAttempts = await chat.attempts('upgrade.completed');
    expect(chatAttempts).toHaveLength(1);
    expect(chatAttempts[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d HTTP 200$/);
    expect(await chat.next('upgrade.completed')).toBe('—');
    expect(await chat.rows('upgrade.completed').first().innerText()).toContain(upgradeId);

    // ops-pager's: still pending, each refused attempt listed as it happens, with the next one due.
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Webhooks' }).click();
    const pager = await webhooks.openDeliveries('ops-pager');
    expect(await pager.state('upgrade.completed')).toBe('pending');
    await expect.poll(async () => (await pager.attempts('upgrade.completed')).length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    for (const attempt of await pager.attempts('upgrade.completed'))
      expect(attempt).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d the receiver answered HTTP 500$/);
    expect(await pager.next('upgrade.completed')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    await screenshot(page, 'webhook-deliveries', { fullPage: true });

    // Delete, after a confirmation that says what is dropped.
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Webhooks' }).click();
    await webhooks.row('ops-pager').waitFor();
    await webhooks.delete('ops-pager');
    expect(await webhooks.deleteDialog.locator('p').first().innerText()).toMatch(
      /^Nothing more is sent to http:\/\/127\.0\.0\.1:\d+\/hook, and the delivery still being retried is dropped\. Its delivery history is deleted with it\. This cannot be undone/,
    );
    await webhooks.confirmDelete();
    await webhooks.row('ops-pager').waitFor({ state: 'detached' });
    expect(await webhooks.row('chat').count()).toBe(1);
    expect((await h.server.api('/api/v1/webhooks/ops-pager')).status).toBe(404);
    expect(errors).toEqual([]);
  }, 90_000);

  it('shows a viewer only which role the page needs, and asks the server nothing about webhooks', async () => {
    const token = await h.server.api('/api/v1/tokens', { body: { name: 'watcher', role: 'viewer' } });
    expect(token.status).toBe(201);
    const { page } = await h.newPage();
    const errors = pageErrors(page);
    const webhookRequests: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.startsWith('/api/v1/webhooks')) webhookRequests.push(request.url());
    });
    await new SignInPage(page).goto('/webhooks').then((s) => s.signIn((token.body as { token: string }).token));
    const webhooks = new WebhooksPage(page);
    await webhooks.heading.waitFor();
    expect(await new Shell(page).nav('Webhooks').count()).toBe(0);
    expect(await webhooks.roleNote.innerText()).toBe(
      'Managing webhooks needs the admin role; you are signed in as token:watcher (viewer).',
    );
    expect(await webhooks.table.count()).toBe(0);
    expect(await webhooks.createButton.count()).toBe(0);
    // One webhook's page by its address says the same.
    await page.goto('/webhooks/chat');
    await page.getByRole('heading', { name: 'Webhook chat', level: 1 }).waitFor();
    expect(await webhooks.roleNote.innerText()).toContain('Managing webhooks needs the admin role');
    expect(await page.getByTestId('deliveries-table').count()).toBe(0);
    expect(webhookRequests).toEqual([]);
    expect(errors).toEqual([]);
  }, 30_000);
});
