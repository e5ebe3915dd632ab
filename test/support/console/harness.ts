import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot, startServerProcess, type ServerProcess } from '../server.js';

/**
 * What every console suite needs: the real built server on a free port, Debian's
 * Chromium driven by playwright-core with a fresh profile, and screenshots under
 * test-results/screenshots/. In CI a missing Chromium fails the suite instead of
 * skipping it: a browser test that silently does not run cannot fail.
 */
export const chromiumPath = process.env['UPSHIFT_CHROMIUM'] ?? '/usr/bin/chromium';
export const chromiumFlags = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
export const screenshotDir = join(repoRoot, 'test-results', 'screenshots');
export const desktop = { width: 1280, height: 800 };

/** Whether the suites can run here; outside CI a missing browser skips them with a reason. */
export function browserAvailable(): boolean {
  if (existsSync(chromiumPath)) return true;
  if (process.env['CI'] === 'true') return true; // let startConsole fail loudly
  console.warn(`console e2e skipped: no Chromium at ${chromiumPath} (apt-get install -y chromium)`);
  return false;
}

export interface ConsoleHarness {
  server: ServerProcess;
  browser: Browser;
  /** A new browser context (its own sessionStorage) and page at 1280×800. */
  newPage(options?: {
    colorScheme?: 'light' | 'dark';
    viewport?: { width: number; height: number };
  }): Promise<{ context: BrowserContext; page: Page }>;
  close(): Promise<void>;
}

/** Chromium and a real server process; `serverArgs` are added to the server's command line (e.g. `--catalog FILE`). */
export async function startConsole(options: { serverArgs?: string[] } = {}): Promise<ConsoleHarness> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`Chromium is required for the console tests and was not found at ${chromiumPath}: apt-get install -y chromium`);
  }
  if (!existsSync(join(repoRoot, 'dist/web/index.html'))) {
    throw new Error('the console is not built (dist/web/index.html missing): run npm run build first');
  }
  const server = await startServerProcess(options.serverArgs ? { args: options.serverArgs } : {});
  let browser: Browser;
  try {
    // playwright-core launches Chromium with a fresh temporary --user-data-dir of its own
    // (removed on close); every context below is a fresh, isolated profile as well.
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumFlags, headless: true });
  } catch (error) {
    await server.stop();
    server.cleanup();
    throw error;
  }
  const contexts: BrowserContext[] = [];
  return {
    server,
    browser,
    async newPage(options = {}) {
      const context = await browser.newContext({
        viewport: options.viewport ?? desktop,
        colorScheme: options.colorScheme ?? 'light',
        baseURL: server.url,
      });
      contexts.push(context);
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      // A style or script the server's Content-Security-Policy blocks is a broken console too.
      page.on('console', (message) => {
        if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) errors.push(`CSP: ${message.text()}`);
      });
      uncaught.set(page, errors);
      return { context, page };
    },
    async close() {
      for (const context of contexts) await context.close().catch(() => {});
      await browser.close().catch(() => {});
      await server.stop();
      server.cleanup();
    },
  };
}

/** Uncaught errors the page threw so far (a console that throws is broken even if it looks fine). */
export function pageErrors(page: Page): string[] {
  return uncaught.get(page) ?? [];
}
const uncaught = new WeakMap<Page, string[]>();

/**
 * Screenshots of the page as it is, in the light and the dark theme (through
 * prefers-color-scheme), as `<name>-light.png` and `<name>-dark.png`.
 */
export async function screenshotBoth(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  // A full page starts at the top (the sticky header would otherwise be drawn mid-page).
  if (options.fullPage) await page.evaluate('window.scrollTo(0, 0)');
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({
      path: join(screenshotDir, `${name}-${scheme}.png`),
      fullPage: options.fullPage ?? false,
      animations: 'disabled',
    });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  if (options.fullPage) await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: options.fullPage ?? false, animations: 'disabled' });
}

/** A simulated cluster made through the API (for the suites that test something else than the form). */
export async function createSimulatedCluster(
  server: ServerProcess,
  name: string,
  simulation: {
    nodes: number;
    upgradeSeconds: number;
    failNodes?: string[];
    snapshotFailNodes?: string[];
    versions?: Record<string, string>;
    managers?: number;
  },
): Promise<{ id: string; name: string }> {
  const res = await server.api('/api/v1/clusters', {
    body: { name, kind: 'simulated', simulation: { failNodes: [], snapshotFailNodes: [], ...simulation } },
  });
  if (res.status !== 201) throw new Error(`creating ${name}: ${res.status} ${res.text}`);
  return res.body as { id: string; name: string };
}

/** Polls the API until the upgrade is in the state (for setting the scene, not for asserting what the user sees). */
export async function waitForUpgradeState(server: ServerProcess, upgradeId: string, state: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await server.api(`/api/v1/upgrades/${upgradeId}`);
    if ((res.body as { state?: string } | undefined)?.state === state) return;
    if (Date.now() > deadline) throw new Error(`upgrade ${upgradeId} did not reach ${state}: ${res.text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
