import type { Locator, Page } from 'playwright-core';

/** The events list: filters, newest first, "Load more", live arrivals. */
export class EventsPage {
  readonly heading: Locator;
  readonly table: Locator;
  readonly rows: Locator;
  readonly cluster: Locator;
  readonly upgrade: Locator;
  readonly type: Locator;
  readonly actor: Locator;
  readonly operations: Locator;
  readonly loadMore: Locator;

  constructor(readonly page: Page) {
    this.heading = page.getByRole('heading', { name: 'Events', level: 1 });
    this.table = page.getByTestId('events-table');
    this.rows = this.table.locator('tbody tr');
    this.cluster = page.getByTestId('filter-cluster');
    this.upgrade = page.getByTestId('filter-upgrade');
    this.type = page.getByTestId('filter-type');
    this.actor = page.getByTestId('filter-actor');
    this.operations = page.getByTestId('filter-operations');
    this.loadMore = page.getByRole('button', { name: 'Load more' });
  }

  async goto(query = ''): Promise<this> {
    await this.page.goto(`/events${query}`);
    await this.heading.waitFor();
    return this;
  }

  async types(): Promise<string[]> {
    return this.rows.evaluateAll((rows: any[]) => rows.map((r) => String(r.dataset.type)));
  }

  /** The times shown, as epoch ms, in table order. */
  async times(): Promise<number[]> {
    return this.rows.locator('time').evaluateAll((times: any[]) => times.map((t) => Date.parse(String(t.dateTime))));
  }
}
