import type { Locator, Page } from 'playwright-core';

/** One upgrade: state, progress, timeline, node tasks with logs, and the controls. */
export class UpgradePage {
  readonly state: Locator;
  readonly statusText: Locator;
  readonly pause: Locator;
  readonly continue: Locator;
  readonly cancel: Locator;
  readonly hint: Locator;
  readonly refusal: Locator;
  /** The failed executor pods listed before Continue (Kubernetes), with their delete-and-continue button. */
  readonly failedPods: Locator;
  readonly deleteFailedPods: Locator;
  readonly autoPauseBanner: Locator;
  readonly pauseNotice: Locator;
  readonly autoCancel: Locator;
  readonly snapshotPrompt: Locator;
  readonly snapshotContinue: Locator;
  readonly snapshotQuit: Locator;
  readonly confirmDialog: Locator;
  readonly finalNotice: Locator;
  readonly progress: Locator;
  readonly timeline: Locator;
  readonly progressText: Locator;
  readonly endReason: Locator;
  readonly tasks: Locator;
  readonly logViewer: Locator;
  readonly events: Locator;
  /** The upgrade's maintenance window in the summary line (absent without one). */
  readonly window: Locator;

  constructor(readonly page: Page) {
    this.state = page.locator('.subtitle .badge[data-state]');
    this.statusText = page.getByTestId('upgrade-status-text');
    const controls = page.getByRole('group', { name: 'Upgrade controls' });
    this.pause = controls.getByRole('button', { name: /^Paus/ });
    this.continue = controls.getByRole('button', { name: /^Continu/ });
    this.cancel = controls.getByRole('button', { name: 'Cancel upgrade' });
    this.hint = page.getByTestId('controls-hint');
    this.refusal = page.getByTestId('refusal');
    this.failedPods = page.getByTestId('failed-pods');
    this.deleteFailedPods = this.failedPods.getByRole('button', { name: 'Delete the failed pods and continue' });
    this.autoPauseBanner = page.getByTestId('auto-pause-banner');
    this.pauseNotice = page.getByTestId('pause-notice');
    this.autoCancel = page.getByTestId('auto-cancel');
    this.snapshotPrompt = page.getByTestId('snapshot-failed-prompt');
    this.snapshotContinue = this.snapshotPrompt.getByRole('button', { name: 'Continue' });
    this.snapshotQuit = this.snapshotPrompt.getByRole('button', { name: 'Quit' });
    this.confirmDialog = page.getByTestId('confirm-dialog');
    this.finalNotice = page.getByTestId('final-notice');
    this.progress = page.getByRole('progressbar', { name: 'Nodes upgraded' }).first();
    this.timeline = page.getByTestId('batch-timeline');
    this.progressText = page.getByTestId('upgrade-progress');
    this.endReason = page.getByTestId('end-reason');
    this.tasks = page.getByTestId('tasks-table');
    this.logViewer = page.getByTestId('log-viewer');
    this.events = page.getByTestId('upgrade-events');
    this.window = page.getByTestId('upgrade-window');
  }

  /** The upgrade id from the address bar. */
  id(): string {
    const match = /\/upgrades\/([^/?#]+)/.exec(this.page.url());
    if (!match?.[1]) throw new Error(`not on an upgrade page: ${this.page.url()}`);
    return match[1];
  }

  async waitForState(state: string, timeout = 30_000): Promise<void> {
    await this.page.locator(`.subtitle .badge[data-state="${state}"]`).waitFor({ timeout });
  }

  async currentState(): Promise<string | null> {
    return this.state.getAttribute('data-state');
  }

  taskRow(nodeName: string): Locator {
    return this.tasks.getByRole('row').filter({ has: this.page.getByRole('cell', { name: nodeName, exact: true }) });
  }

  /** Filters the node table to the node (it may be far down the windowed table) and opens its log. */
  async openLog(nodeName: string): Promise<string> {
    await this.page.getByRole('searchbox', { name: 'Node' }).fill(nodeName);
    await this.page.getByRole('button', { name: `Log of ${nodeName}` }).click();
    await this.logViewer.waitFor();
    // The viewer opens at once and fetches the log: wait for the text, not the placeholder.
    const text = this.logViewer.locator('pre').filter({ hasNotText: /^Loading…$/ });
    await text.waitFor();
    return (await text.textContent()) ?? '';
  }

  async confirm(): Promise<void> {
    await this.confirmDialog.getByRole('button', { name: /^(Cancel|Quit) upgrade$/ }).click();
    await this.confirmDialog.waitFor({ state: 'detached' });
  }

  /** The number of batch bars drawn in the SVG timeline (batches that started). */
  async timelineBars(): Promise<number> {
    return this.timeline.locator('g.bar:not(.planned)').count();
  }

  /** The sizes of the planned batches the timeline shows greyed, in order. */
  async plannedSizes(): Promise<number[]> {
    const labels = await this.timeline.locator('g.bar.planned text.label').allTextContents();
    return labels.map((t) => Number(/· (\d+) node/.exec(t)?.[1]));
  }
}
