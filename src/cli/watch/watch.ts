import type { EventPage, NodeTaskView, UpgradeView } from '../../api/index.js';
import type { Cli } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { allItems } from '../paging.js';
import { upgradePath } from '../resolve.js';
import { followEvents, sleep } from '../sse.js';
import { outcomeOf, type UpgradeSnapshot, type WatchOutcome } from './outcome.js';
import { TtyView } from './tty-view.js';
import { PlainView, QuietView, type WatchView } from './views.js';

export interface WatchOptions {
  /** Keep watching while Paused (showing the time left before auto-cancel) until Completed or Canceled. */
  throughPause: boolean;
  /** Replay the upgrade's events from its start (after `upgrade start --watch`), not only new ones. */
  fromStart: boolean;
}

/** Snapshots are fetched at least this often, and at most this often after events. */
const POLL_MS = 1000;
const EVENT_REFRESH_DELAY_MS = 100;
/** After the outcome, events still in flight are printed until the stream is quiet this long. */
const DRAIN_QUIET_MS = 250;
const DRAIN_MAX_MS = 1500;
const GIVE_UP_MS = 120_000;

async function fetchSnapshot(cli: Cli, id: string): Promise<UpgradeSnapshot> {
  const [upgrade, tasks] = await Promise.all([
    cli.client.get<UpgradeView>(upgradePath(id)),
    allItems<NodeTaskView>(cli.client, `${upgradePath(id)}/nodes`),
  ]);
  return { upgrade, tasks };
}

function chooseView(cli: Cli, options: WatchOptions): WatchView {
  if (cli.out.structured) return new QuietView(cli.out);
  if (cli.interactive) return new TtyView(cli.out, options.throughPause);
  return new PlainView(cli.out);
}

/**
 * Follows one upgrade until it completes (exit 0) or stops for an operator (exit 3:
 * Paused, Canceled, SnapshotFailed). Events come from the SSE stream (reconnecting with
 * `Last-Event-ID`); the state shown comes from `GET /upgrades/{id}` snapshots, fetched
 * after events and every second, so a lost stream never leaves the display wrong.
 */
export async function watchUpgrade(cli: Cli, id: string, options: WatchOptions): Promise<number> {
  const since = options.fromStart ? '0' : ((await cli.client.get<EventPage>('/events', { upgradeId: id, limit: 1 })).items[0]?.id ?? '0');
  let snapshot = await fetchSnapshot(cli, id);
  const view = chooseView(cli, options);
  view.start(snapshot);

  const controller = new AbortController();
  let lastEventAt = Date.now();
  let refreshTimer: NodeJS.Timeout | undefined;
  let poller: NodeJS.Timeout | undefined;

  const outcome = await new Promise<WatchOutcome>((resolve, reject) => {
    let refreshing = false;
    let again = false;
    let failingSince: number | undefined;
    let finished = false;
    const end = (result: WatchOutcome | Error) => {
      if (finished) return;
      finished = true;
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const refresh = async () => {
      if (refreshing) {
        again = true;
        return;
      }
      refreshing = true;
      try {
        do {
          again = false;
          snapshot = await fetchSnapshot(cli, id);
          if (failingSince !== undefined) view.connection('connected');
          failingSince = undefined;
          view.update(snapshot);
          const result = outcomeOf(snapshot, options.throughPause);
          if (result) return end(result);
        } while (again && !finished);
      } catch (error) {
        if (error instanceof CliError && error.exitCode === ExitCode.unreachable) {
          failingSince ??= Date.now();
          view.connection('reconnecting', error.message);
          if (Date.now() - failingSince > GIVE_UP_MS) end(error);
        } else {
          end(error instanceof Error ? error : new Error(String(error)));
        }
      } finally {
        refreshing = false;
      }
    };
    const scheduleRefresh = () => {
      if (refreshTimer || finished) return;
      refreshTimer = setTimeout(() => {
        refreshTimer = undefined;
        void refresh();
      }, EVENT_REFRESH_DELAY_MS);
    };
    poller = setInterval(() => void refresh(), POLL_MS);
    void (async () => {
      for await (const event of followEvents(cli.client, {
        query: { upgradeId: id },
        lastEventId: since,
        signal: controller.signal,
        giveUpAfterMs: GIVE_UP_MS,
        onStatus: (status, detail) => view.connection(status, detail),
      })) {
        lastEventAt = Date.now();
        view.event(event);
        scheduleRefresh();
      }
    })().catch((error: unknown) => end(error instanceof Error ? error : new Error(String(error))));
    void refresh();
  }).finally(() => {
    clearInterval(poller);
    clearTimeout(refreshTimer);
  });

  // Let events already on their way (the last node's result, the state change) reach the view.
  const drainStart = Date.now();
  while (Date.now() - drainStart < DRAIN_MAX_MS && Date.now() - Math.max(lastEventAt, drainStart) < DRAIN_QUIET_MS) {
    await sleep(DRAIN_QUIET_MS / 5);
  }
  controller.abort();
  await view.finish(outcome, snapshot);
  if (outcome.exitCode !== ExitCode.ok) process.stderr.write(`error: ${outcome.message}\n`);
  return outcome.exitCode;
}
