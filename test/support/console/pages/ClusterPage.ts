import type { Locator, Page } from 'playwright-core';

/** One cluster: components, upgrades, and the windowed node table. */
export class ClusterPage {
  readonly heading: Locator;
  readonly statusText: Locator;
  readonly nodes: Locator;
  readonly nodeScroller: Locator;
  readonly nodeCount: Locator;
  readonly nameFilter: Locator;
  /** The cluster's default maintenance window in words, with its admin actions and the edit dialog. */
  readonly windowText: Locator;
  readonly setWindow: Locator;
  readonly clearWindow: Locator;
  readonly windowDialog: Locator;

  constructor(readonly page: Page) {
    this.heading = page.locator('h1#page-title');
    this.statusText = page.getByTestId('cluster-status-text');
    this.nodes = page.getByTestId('nodes-table');
    this.nodeScroller = this.nodes.locator('.vtable-scroll');
    this.nodeCount = page.getByTestId('node-count');
    this.nameFilter = page.getByRole('searchbox', { name: 'Name' });
    const section = page.getByTestId('cluster-window');
    this.windowText = page.getByTestId('cluster-window-text');
    this.setWindow = section.getByRole('button', { name: /^(Set a window|Change the window)$/ });
    this.clearWindow = section.getByRole('button', { name: 'Clear the window' });
    this.windowDialog = page.getByTestId('window-dialog');
  }

  async goto(clusterId: string): Promise<this> {
    await this.page.goto(`/clusters/${clusterId}`);
    await this.heading.waitFor();
    return this;
  }

  /** Body rows present in the DOM (the windowed table renders only those in view). */
  async renderedRows(): Promise<number> {
    return this.nodes.locator('.vtable-body [role="row"]').count();
  }

  row(nodeName: string): Locator {
    return this.nodes.getByRole('row').filter({ has: this.page.getByRole('cell', { name: nodeName, exact: true }) });
  }

  componentCard(component: string): Locator {
    return this.page.locator(`article[data-component="${component}"]`);
  }
}
