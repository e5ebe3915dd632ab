import type { Locator, Page } from 'playwright-core';

/** The sign-in screen: one API token field. */
export class SignInPage {
  readonly token: Locator;
  readonly submit: Locator;
  readonly error: Locator;
  readonly heading: Locator;

  constructor(readonly page: Page) {
    this.token = page.getByLabel('API token');
    this.submit = page.getByRole('button', { name: 'Sign in' });
    this.error = page.getByTestId('signin-error');
    this.heading = page.getByRole('heading', { name: 'Sign in' });
  }

  async goto(path = '/'): Promise<this> {
    await this.page.goto(path);
    await this.heading.waitFor();
    return this;
  }

  async signIn(token: string): Promise<void> {
    await this.token.fill(token);
    await this.submit.click();
  }
}
