import type { Locator, Page } from 'playwright-core';

/** The header every signed-in page has: navigation, live status, who is signed in, theme, sign-out. */
export class Shell {
  readonly live: Locator;
  /** The signed-in principal's name and role badge. */
  readonly principal: Locator;
  readonly themeToggle: Locator;
  readonly signOut: Locator;

  constructor(readonly page: Page) {
    this.live = page.getByTestId('live-status');
    this.principal = page.getByTestId('principal');
    this.themeToggle = page.getByTestId('theme-toggle').first();
    this.signOut = page.getByRole('button', { name: 'Sign out' });
  }

  nav(name: 'Clusters' | 'Upgrades' | 'Events' | 'Tokens' | 'Webhooks'): Locator {
    return this.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });
  }

  /** Marks the document; `stillSameDocument` is false after any full reload. */
  async markDocument(): Promise<void> {
    await this.page.evaluate('window.__upshiftNoReload = true');
  }

  async stillSameDocument(): Promise<boolean> {
    return (await this.page.evaluate('window.__upshiftNoReload === true')) === true;
  }

  async theme(): Promise<string | null> {
    return (await this.page.evaluate('document.documentElement.dataset.theme ?? null')) as string | null;
  }

  async backgroundColor(): Promise<string> {
    return (await this.page.evaluate('getComputedStyle(document.body).backgroundColor')) as string;
  }
}
