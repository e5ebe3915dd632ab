import { type Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import type { ClusterList, ClusterView, EventPage, EventView } from '../../api/index.js';
import { clientCommand, parseWholeNumber, runAction } from '../command.js';
import type { Cli } from '../context.js';
import { ApiError } from '../errors.js';
import { formatTable, shortTime, visibleLength } from '../output.js';
import { clusterIdOf, resolveUpgradeId } from '../resolve.js';
import { followEvents } from '../sse.js';

interface EventsOptions {
  cluster?: string;
  upgrade?: string;
  type?: string[];
  actor?: string;
  operations?: boolean;
  limit?: number;
  cursor?: string;
  follow?: boolean;
}

/** Cluster names for the CLUSTER column (events carry ids). */
class ClusterNames {
  private readonly names = new Map<string, string>();
  private readonly cli: Cli;

  constructor(cli: Cli) {
    this.cli = cli;
  }

  async load(): Promise<void> {
    const { items } = await this.cli.client.get<ClusterList>('/clusters');
    for (const c of items) this.names.set(c.id, c.name);
  }

  async nameOf(id: string | null): Promise<string> {
    if (id === null) return '';
    if (!this.names.has(id)) {
      try {
        this.names.set(id, (await this.cli.client.get<ClusterView>(`/clusters/${encodeURIComponent(id)}`)).name);
      } catch (error) {
        // A deleted cluster's events outlive it: show its id.
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        this.names.set(id, id);
      }
    }
    return this.names.get(id) ?? id;
  }
}

function parseEventId(value: string): string {
  if (!/^\d{1,19}$/.test(value)) throw new InvalidArgumentError('expected an event id, such as 1234');
  return value;
}

const headers = (wide: boolean) =>
  wide ? ['TIME', 'TYPE', 'ACTOR', 'CLUSTER', 'MESSAGE', 'ID', 'UPGRADE', 'NODE'] : ['TIME', 'TYPE', 'ACTOR', 'CLUSTER', 'MESSAGE'];

async function row(e: EventView, names: ClusterNames, wide: boolean): Promise<string[]> {
  const cells = [shortTime(e.at), e.type, e.actor, await names.nameOf(e.clusterId), e.message];
  return wide ? [...cells, e.id, e.upgradeId ?? '', e.nodeId ?? ''] : cells;
}

/** Rows of `--follow`, aligned on fixed widths since the rows to come are unknown. */
function fixedRow(cells: readonly string[]): string {
  const widths = [20, 22, 8, 12];
  return cells
    .map((cell, i) => {
      const width = widths[i];
      return width === undefined || i === cells.length - 1 ? cell : cell + ' '.repeat(Math.max(1, width + 3 - visibleLength(cell)));
    })
    .join('')
    .trimEnd();
}

export function registerEventCommands(program: Command): void {
  const events = clientCommand(program, 'events', 'what happened, oldest at the top; -o json gives the API’s page (newest first)')
    .addOption(new Option('--cluster <cluster>', 'only this cluster’s events (name or id)'))
    .addOption(new Option('--upgrade <upgrade>', 'only this upgrade’s events (upgrade id, or a cluster for its active/latest upgrade)'))
    .addOption(
      new Option(
        '--type <types>',
        'only these types, such as upgrade.paused or node.failed (repeat it, or separate with commas)',
      ).argParser((value: string, previous: string[] = []) => [...previous, ...value.split(',').filter((t) => t !== '')]),
    )
    .addOption(new Option('--actor <actor>', 'only what this actor did: admin, engine, token:NAME, …'))
    .addOption(
      new Option(
        '--operations',
        'only what people and the system decided (starts, pauses, resumes, cancels, refusals, auto-pauses, auto-cancels), not node and batch chatter',
      ),
    )
    .addOption(new Option('--limit <n>', 'how many (1 to 500)').argParser(parseWholeNumber(1, 500)).default(50))
    .addOption(new Option('--cursor <id>', 'events older than this id (the `next` of the previous page)').argParser(parseEventId))
    .addOption(new Option('-f, --follow', 'then print new events as they happen (-o json: one object per line), until interrupted'));

  runAction<EventsOptions>(events, async ({ cli, opts }) => {
    const query = {
      clusterId: opts.cluster === undefined ? undefined : await clusterIdOf(cli.client, opts.cluster),
      upgradeId: opts.upgrade === undefined ? undefined : await resolveUpgradeId(cli.client, opts.upgrade),
      type: opts.type?.join(','),
      actor: opts.actor,
      operations: opts.operations ? 'true' : undefined,
    };
    const page = await cli.client.get<EventPage>('/events', { ...query, limit: opts.limit, cursor: opts.cursor });
    const names = new ClusterNames(cli);
    const chronological = [...page.items].reverse();

    if (!opts.follow) {
      if (cli.out.structured) return cli.out.data(page);
      if (page.items.length === 0) {
        process.stderr.write('No events found.\n');
        return;
      }
      await names.load();
      const rows = await Promise.all(chronological.map((e) => row(e, names, cli.out.wide)));
      cli.out.write(formatTable(headers(cli.out.wide), rows));
      if (page.next) process.stderr.write(`older events: add --cursor ${page.next}\n`);
      return;
    }

    const print = async (e: EventView, first: boolean) => {
      if (cli.out.format === 'json') cli.out.line(JSON.stringify(e));
      else if (cli.out.format === 'yaml') cli.out.write(`${first ? '' : '---\n'}${stringify(e, { lineWidth: 0 })}`);
      else cli.out.line(fixedRow(await row(e, names, cli.out.wide)));
    };
    if (!cli.out.structured) {
      await names.load();
      cli.out.line(fixedRow(headers(cli.out.wide)));
    }
    let first = true;
    for (const e of chronological) {
      await print(e, first);
      first = false;
    }
    // Resume the stream after the newest event shown, or after the newest of all when none matched.
    const newest = page.items[0]?.id ?? (await cli.client.get<EventPage>('/events', { limit: 1 })).items[0]?.id ?? '0';
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    for await (const e of followEvents(cli.client, { query, lastEventId: newest, signal: controller.signal })) {
      await print(e, first);
      first = false;
    }
  });
}
