import type { Locator, Page } from 'playwright-core';

export type ComponentId = 'agent' | 'docker' | 'containerd' | 'sandboxed-runtime';
const displayName: Record<ComponentId, string> = {
  agent: 'Agent',
  docker: 'Docker-Engine',
  containerd: 'containerd',
  'sandboxed-runtime': 'Sandboxed-Container',
};

/** The cluster list: status, node count, a version column per component with Upgrade actions. */
export class ClustersPage {
  readonly heading: Locator;
  readonly table: Locator;
  readonly search: Locator;
  readonly createButton: Locator;

  constructor(readonly page: Page) {
    this.heading = page.getByRole('heading', { name: 'Clusters', level: 1 });
    this.table = page.getByTestId('clusters-table');
    this.search = page.getByRole('searchbox', { name: 'Search clusters' });
    this.createButton = page.getByRole('button', { name: 'Create simulated cluster' }).first();
  }

  async goto(): Promise<this> {
    await this.page.goto('/clusters');
    await this.heading.waitFor();
    return this;
  }

  row(name: string): Locator {
    return this.page.locator(`tr[data-cluster="${name}"]`);
  }

  /** The names in the order the table shows them. */
  async names(): Promise<string[]> {
    return this.table.locator('tbody tr').evaluateAll((rows: any[]) => rows.map((r) => String(r.dataset.cluster)));
  }

  versionCell(cluster: string, component: ComponentId): Locator {
    return this.row(cluster).locator(`td[data-component="${component}"]`);
  }

  async versionText(cluster: string, component: ComponentId): Promise<string> {
    return (await this.versionCell(cluster, component).locator('.version-cell').innerText()).replace(/\s+/g, ' ').trim();
  }

  status(cluster: string): Locator {
    return this.row(cluster).getByTestId('cluster-status');
  }

  upgradeButton(cluster: string, component: ComponentId): Locator {
    return this.page.getByRole('button', { name: `Upgrade ${displayName[component]} on ${cluster}`, exact: true });
  }

  /** The column header's sort button (wide windows). */
  sortBy(column: string): Locator {
    return this.table.getByRole('button', { name: new RegExp(`^${column}`) });
  }

  /** The "Sort by" select that replaces the column headers in a narrow window. */
  get sortSelect(): Locator {
    return this.page.getByLabel('Sort by');
  }

  async createSimulated(options: {
    name: string;
    nodes: number;
    seconds: number;
    failNodes?: string;
    snapshotFailNodes?: string;
  }): Promise<void> {
    await this.createButton.click();
    const dialog = this.page.getByTestId('create-cluster-dialog');
    await dialog.getByLabel('Name').fill(options.name);
    await dialog.getByLabel('Nodes', { exact: true }).fill(String(options.nodes));
    await dialog.getByLabel('Seconds per node upgrade').fill(String(options.seconds));
    if (options.failNodes) await dialog.getByLabel('Nodes whose first upgrade fails').fill(options.failNodes);
    if (options.snapshotFailNodes) await dialog.getByLabel('Nodes whose snapshots fail').fill(options.snapshotFailNodes);
    await dialog.getByRole('button', { name: 'Create cluster' }).click();
    await dialog.waitFor({ state: 'detached' });
  }
}
