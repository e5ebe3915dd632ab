import type { Locator, Page } from 'playwright-core';

/** The Tokens page (admin): the list, the Create token dialog with the secret shown once, Revoke with confirmation. */
export class TokensPage {
  readonly heading: Locator;
  readonly table: Locator;
  readonly createButton: Locator;
  readonly createDialog: Locator;
  readonly createdDialog: Locator;
  readonly secret: Locator;
  readonly secretWarning: Locator;
  readonly revokeDialog: Locator;

  constructor(readonly page: Page) {
    this.heading = page.getByRole('heading', { name: 'Tokens', level: 1 });
    this.table = page.getByTestId('tokens-table');
    this.createButton = page.getByRole('button', { name: 'Create token' });
    this.createDialog = page.getByTestId('create-token-dialog');
    this.createdDialog = page.getByTestId('token-created-dialog');
    this.secret = page.getByTestId('token-secret');
    this.secretWarning = page.getByTestId('token-secret-warning');
    this.revokeDialog = page.getByTestId('revoke-token-dialog');
  }

  async goto(): Promise<this> {
    await this.page.goto('/tokens');
    await this.heading.waitFor();
    return this;
  }

  row(name: string): Locator {
    return this.page.locator(`tr[data-token="${name}"]`);
  }

  status(name: string): Promise<string> {
    return this.row(name).getByTestId('token-status').innerText();
  }

  /** Fills and submits the Create token form; returns the secret the dialog shows once. */
  async create(token: { name: string; role: 'viewer' | 'operator' | 'admin'; expiresAfter?: string }): Promise<string> {
    await this.createButton.click();
    await this.createDialog.getByLabel('Name').fill(token.name);
    await this.createDialog.getByLabel('Role').selectOption(token.role);
    if (token.expiresAfter) await this.createDialog.getByLabel('Expires after').selectOption({ label: token.expiresAfter });
    await this.createDialog.getByRole('button', { name: 'Create token' }).click();
    await this.secret.waitFor();
    return this.secret.inputValue();
  }

  async revoke(name: string): Promise<void> {
    await this.row(name)
      .getByRole('button', { name: `Revoke ${name}` })
      .click();
    await this.revokeDialog.waitFor();
  }

  async confirmRevoke(): Promise<void> {
    await this.revokeDialog.getByRole('button', { name: 'Revoke token' }).click();
    await this.revokeDialog.waitFor({ state: 'detached' });
  }
}
