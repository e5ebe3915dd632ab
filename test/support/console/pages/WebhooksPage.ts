import type { Locator, Page } from 'playwright-core';

/**
 * The Webhooks page (admin): the list with each webhook's deliveries and last error, the
 * Create webhook dialog with the secret shown once, Delete with confirmation; and one
 * webhook's page of deliveries.
 */
export class WebhooksPage {
  readonly heading: Locator;
  readonly table: Locator;
  readonly empty: Locator;
  readonly createButton: Locator;
  readonly createDialog: Locator;
  readonly createError: Locator;
  readonly createdDialog: Locator;
  readonly secret: Locator;
  readonly secretWarning: Locator;
  readonly deleteDialog: Locator;
  readonly roleNote: Locator;

  constructor(readonly page: Page) {
    this.heading = page.getByRole('heading', { name: 'Webhooks', level: 1 });
    this.table = page.getByTestId('webhooks-table');
    this.empty = page.getByTestId('no-webhooks');
    this.createButton = page.getByRole('button', { name: 'Create webhook' });
    this.createDialog = page.getByTestId('create-webhook-dialog');
    this.createError = page.getByTestId('create-webhook-error');
    this.createdDialog = page.getByTestId('webhook-created-dialog');
    this.secret = page.getByTestId('webhook-secret');
    this.secretWarning = page.getByTestId('webhook-secret-warning');
    this.deleteDialog = page.getByTestId('delete-webhook-dialog');
    this.roleNote = page.getByTestId('role-note');
  }

  async goto(): Promise<this> {
    await this.page.goto('/webhooks');
    await this.heading.waitFor();
    return this;
  }

  row(name: string): Locator {
    return this.page.locator(`tr[data-webhook="${name}"]`);
  }

  /** The "Latest deliveries" cell: counts and the last error. */
  deliveries(name: string): Promise<string> {
    return this.row(name).getByTestId('webhook-deliveries').innerText();
  }

  /**
   * Opens Create webhook and fills it; `secret` undefined keeps "Generate one in this
   * browser". Does not submit (see `submitCreate`).
   */
  async fillCreate(webhook: { name: string; url: string; events: string[]; format?: 'json' | 'slack'; secret?: string }): Promise<void> {
    await this.createButton.click();
    const dialog = this.createDialog;
    await dialog.getByLabel('Name', { exact: true }).fill(webhook.name);
    await dialog.getByLabel('URL', { exact: true }).fill(webhook.url);
    // Only the events asked for stay checked (the dialog proposes some).
    for (const box of await dialog.locator('.event-choices input[type="checkbox"]').all()) {
      const type = (await box.getAttribute('value')) ?? '';
      await box.setChecked(webhook.events.includes(type));
    }
    if (webhook.format) await dialog.getByLabel('Format', { exact: true }).selectOption(webhook.format);
    if (webhook.secret !== undefined) {
      await dialog.getByLabel('Type the receiver’s secret').check();
      await dialog.getByLabel('Secret', { exact: true }).fill(webhook.secret);
    }
  }

  async submitCreate(): Promise<void> {
    await this.createDialog.getByRole('button', { name: 'Create webhook' }).click();
  }

  /** Creates a webhook through the dialog; returns the secret the dialog shows once, then closes it. */
  async create(webhook: Parameters<WebhooksPage['fillCreate']>[0]): Promise<string> {
    await this.fillCreate(webhook);
    await this.submitCreate();
    await this.secret.waitFor();
    const secret = await this.secret.inputValue();
    return secret;
  }

  async closeCreated(): Promise<void> {
    await this.createdDialog.getByRole('button', { name: 'Done' }).click();
    await this.createdDialog.waitFor({ state: 'detached' });
  }

  async delete(name: string): Promise<void> {
    await this.row(name)
      .getByRole('button', { name: `Delete ${name}` })
      .click();
    await this.deleteDialog.waitFor();
  }

  async confirmDelete(): Promise<void> {
    await this.deleteDialog.getByRole('button', { name: 'Delete webhook' }).click();
    await this.deleteDialog.waitFor({ state: 'detached' });
  }

  async openDeliveries(name: string): Promise<WebhookDeliveriesPage> {
    await this.row(name).getByRole('link', { name: 'Deliveries' }).click();
    const page = new WebhookDeliveriesPage(this.page, name);
    await page.heading.waitFor();
    return page;
  }
}

/** One webhook's page: its deliveries, newest first, each with its attempts. */
export class WebhookDeliveriesPage {
  readonly heading: Locator;
  readonly table: Locator;

  constructor(
    readonly page: Page,
    name: string,
  ) {
    this.heading = page.getByRole('heading', { name: `Webhook ${name}`, level: 1 });
    this.table = page.getByTestId('deliveries-table');
  }

  /** The rows of deliveries of this event type, newest first. */
  rows(eventType: string): Locator {
    return this.table.locator(`tr[data-event-type="${eventType}"]`);
  }

  state(eventType: string): Promise<string> {
    return this.rows(eventType).first().getByTestId('delivery-state').innerText();
  }

  attempts(eventType: string): Promise<string[]> {
    return this.rows(eventType).first().getByTestId('delivery-attempts').locator('li').allInnerTexts();
  }

  next(eventType: string): Promise<string> {
    return this.rows(eventType).first().getByTestId('delivery-next').innerText();
  }
}
