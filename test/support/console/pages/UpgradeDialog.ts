import type { Locator, Page } from 'playwright-core';

/** The Upgrade dialog: component, target version, the batch preview, and the start buttons. */
export class UpgradeDialog {
  readonly root: Locator;
  readonly component: Locator;
  readonly version: Locator;
  /** The versions the catalog has that do not install on this cluster, with why (under the select). */
  readonly notOffered: Locator;
  readonly planSummary: Locator;
  readonly agentOutdated: Locator;
  readonly activeUpgrade: Locator;
  readonly upgradeAgentFirst: Locator;
  readonly startAgent: Locator;
  readonly upgradeDirectly: Locator;
  readonly backUpSnapshot: Locator;
  readonly startError: Locator;
  readonly impact: Locator;
  readonly confirmSummary: Locator;
  readonly confirmStart: Locator;
  /** The "Maintenance window" section (collapsed until its summary is clicked). */
  readonly windowSection: Locator;
  readonly keepClusterWindow: Locator;
  readonly noWindow: Locator;
  readonly ownWindow: Locator;
  /** The window in words: when it opens next, or what is wrong with it. */
  readonly windowNext: Locator;
  readonly planPreview: Locator;

  constructor(readonly page: Page) {
    this.root = page.getByTestId('upgrade-dialog');
    this.component = this.root.getByLabel('Component');
    this.version = this.root.getByLabel('Target version');
    this.notOffered = this.root.getByTestId('versions-not-offered');
    this.planSummary = this.root.getByTestId('plan-summary');
    this.agentOutdated = this.root.getByTestId('agent-outdated');
    this.activeUpgrade = this.root.getByTestId('active-upgrade-notice');
    this.upgradeAgentFirst = this.agentOutdated.getByRole('button', { name: 'Upgrade Agent' });
    this.startAgent = this.root.locator('.actions').getByRole('button', { name: 'Upgrade Agent' });
    this.upgradeDirectly = this.root.getByRole('button', { name: 'Upgrade directly' });
    this.backUpSnapshot = this.root.getByRole('button', { name: 'Back up snapshot before upgrade' });
    this.startError = this.root.getByTestId('start-error');
    this.impact = this.root.getByTestId('impact-notice');
    this.confirmSummary = this.root.getByTestId('confirm-summary');
    this.confirmStart = this.root.getByRole('button', { name: 'Start upgrade' });
    this.windowSection = this.root.getByTestId('window-section');
    this.keepClusterWindow = this.windowSection.getByRole('radio', { name: /^The cluster's/ });
    this.noWindow = this.windowSection.getByRole('radio', { name: /^None for this upgrade/ });
    this.ownWindow = this.windowSection.getByRole('radio', { name: 'Set one for this upgrade' });
    this.windowNext = this.windowSection.getByTestId('window-next');
    this.planPreview = this.root.getByTestId('plan-preview');
  }

  async openWindowSection(): Promise<void> {
    await this.windowSection.locator('summary').click();
    await this.keepClusterWindow.waitFor();
  }

  async waitOpen(): Promise<this> {
    await this.root.waitFor();
    await this.planSummary.waitFor();
    return this;
  }
}
