import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { parse } from 'yaml';
import { clusterKinds, components, isComponent, type Component } from '../../domain/components.js';
import { serverDefaults } from '../../domain/defaults.js';
import { parseDuration } from '../../domain/duration.js';
import { describeWindow } from '../../domain/maintenance-window.js';
import type { ClusterCreatedView, ClusterList, ClusterView, ComponentSummaryView, JoinTokenView } from '../../api/index.js';
import { clientCommand, parseNameList, parseSeconds, parseWholeNumber, parseWindow, runAction, windowHelp } from '../command.js';
import { usageError } from '../errors.js';
import { age, type Column, type Output } from '../output.js';
import { clusterPath } from '../resolve.js';

/** `1.0.0`, or `1.0.0(48),1.1.0(2)` when the nodes disagree. */
export function versionSummary(summary: ComponentSummaryView | undefined): string {
  if (!summary) return '';
  const entries = Object.entries(summary.versions);
  if (entries.length === 1) return entries[0]?.[0] ?? '';
  return entries.map(([version, count]) => `${version}(${count})`).join(',');
}

/** `agent 1.1.0 · docker 26.1.5×3 20.10.24×2`: the components a cluster's nodes run, with how many run each version when they differ. */
function compactVersions(cluster: ClusterView): string {
  return components
    .flatMap((c) => {
      const entries = Object.entries(cluster.components[c]?.versions ?? {});
      if (entries.length === 0) return [];
      const versions = entries.length === 1 ? (entries[0]?.[0] ?? '') : entries.map(([v, n]) => `${v}×${n}`).join(' ');
      return [`${c} ${versions}`];
    })
    .join(' · ');
}

function upgradable(cluster: ClusterView): string {
  return components.filter((c) => cluster.components[c]?.upgradable).join(',');
}

function clusterColumns(out: Output): Column<ClusterView>[] {
  return [
    { header: 'NAME', value: (c) => c.name },
    { header: 'ID', value: (c) => c.id, wide: true },
    { header: 'KIND', value: (c) => c.kind },
    { header: 'STATUS', value: (c) => out.state(c.status) },
    { header: 'NODES', value: (c) => String(c.nodeCount) },
    { header: 'UPGRADABLE', value: upgradable },
    // Every component's versions in one compact cell; -o wide gives each its own column.
    { header: 'VERSIONS', value: compactVersions, narrowOnly: true },
    ...components.map((component): Column<ClusterView> => ({
      header: component.toUpperCase(),
      value: (c) => versionSummary(c.components[component]),
      wide: true,
    })),
    { header: 'UPGRADE', value: (c) => c.activeUpgradeId ?? '', wide: true },
    { header: 'MESSAGE', value: (c) => (c.statusText === c.status ? '' : c.statusText) },
    { header: 'AGE', value: (c) => age(c.createdAt) },
  ];
}

interface CreateOptions {
  kind: string;
  nodes?: number;
  managers?: number;
  upgradeSeconds?: number;
  failNodes?: string[];
  snapshotFailNodes?: string[];
  version?: string[];
  window?: Record<string, unknown>;
  file?: string;
}

/** `--version docker=20.10.24 --version agent=1.0.0` (or several after one flag) as the simulation's `versions`. */
export function parseVersions(entries: readonly string[]): Partial<Record<Component, string>> {
  const versions: Partial<Record<Component, string>> = {};
  for (const entry of entries.flatMap((e) => e.split(','))) {
    const match = /^([a-z-]+)=(\S+)$/.exec(entry.trim());
    if (!match) throw usageError(`--version ${JSON.stringify(entry)}: expected component=version, such as docker=20.10.24`);
    const [, component, version] = match as unknown as [string, string, string];
    if (!isComponent(component))
      throw usageError(`--version ${entry}: unknown component ${JSON.stringify(component)}; known: ${components.join(', ')}`);
    versions[component] = version;
  }
  return versions;
}

function readBodyFile(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw usageError(`--file ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw usageError(`--file ${file}: expected a YAML or JSON object of cluster settings`);
  return raw as Record<string, unknown>;
}

export function createClusterBody(name: string, options: CreateOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { ...(options.file ? readBodyFile(options.file) : {}), name, kind: options.kind };
  if (options.window !== undefined) body['window'] = options.window;
  const simulation: Record<string, unknown> = {};
  if (options.nodes !== undefined) simulation['nodes'] = options.nodes;
  if (options.managers !== undefined) simulation['managers'] = options.managers;
  if (options.upgradeSeconds !== undefined) simulation['upgradeSeconds'] = options.upgradeSeconds;
  if (options.failNodes !== undefined) simulation['failNodes'] = options.failNodes;
  if (options.snapshotFailNodes !== undefined) simulation['snapshotFailNodes'] = options.snapshotFailNodes;
  if (options.version !== undefined) simulation['versions'] = parseVersions(options.version);
  if (Object.keys(simulation).length > 0) {
    if (options.kind !== 'simulated') {
      throw usageError(
        '--nodes, --managers, --upgrade-seconds, --fail-nodes, --snapshot-fail-nodes and --version describe a simulated cluster; use --kind simulated',
      );
    }
    const fromFile = body['simulation'];
    body['simulation'] = { ...(fromFile && typeof fromFile === 'object' ? fromFile : {}), ...simulation };
  }
  return body;
}

function printClusterDetail(out: Output, cluster: ClusterView): void {
  out.table(clusterColumns(out), [cluster]);
  out.line();
  const rows = components
    .map((component) => ({ component, summary: cluster.components[component] }))
    .filter((r): r is { component: Component; summary: ComponentSummaryView } => r.summary !== undefined);
  out.table<{ component: Component; summary: ComponentSummaryView }>(
    [
      { header: 'COMPONENT', value: (r) => r.component },
      { header: 'VERSIONS', value: (r) => versionSummary(r.summary) },
      { header: 'LATEST', value: (r) => r.summary.latest ?? '' },
      { header: 'UPGRADABLE', value: (r) => (r.summary.upgradable ? out.paint.yellow('yes') : 'no') },
    ],
    rows,
  );
  out.line();
  out.line(
    cluster.window ? `maintenance window: ${describeWindow(cluster.window)}` : 'maintenance window: none (batches start at any time)',
  );
  if (cluster.activeUpgradeId) {
    out.line();
    out.line(`${cluster.statusText}: upgrade ${cluster.activeUpgradeId} (\`upshift upgrade get ${cluster.name}\`)`);
  }
}

/** `--ttl 12h` as whole seconds, 1 minute to 365 days (what the server accepts). */
export function parseTtl(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 60_000 || ms > 365 * 86_400_000) {
    throw new InvalidArgumentError('expected a duration from 1m to 365d, such as 30m, 12h or 7d');
  }
  return Math.round(ms / 1000);
}

/** The join token, its limits, the agent's checksum and the commands that use them. */
function printJoinInstructions(out: Output, cluster: string, view: JoinTokenView): void {
  out.line(`Join token for ${cluster} (shown only now; expires ${view.expiresAt}${view.singleUse ? '; admits one join' : ''}):`);
  out.line(`  ${view.joinToken}`);
  out.line('');
  out.line('Join a node (as root):');
  out.line(`  ${view.joinCommand}`);
  out.line(
    view.agentSha256
      ? `agent sha256: ${view.agentSha256} (of the agent executable; the install script refuses one with another checksum)`
      : 'agent sha256: unknown (the server has no agent executable built: npm run build)',
  );
  out.line(`or run the agent yourself:\n  ${view.agentCommand}`);
}

export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('list, inspect, create and delete clusters');

  runAction(clientCommand(cluster, 'list', 'list clusters').alias('ls'), async ({ cli }) => {
    const list = await cli.client.get<ClusterList>('/clusters');
    if (cli.out.structured) return cli.out.data(list);
    if (list.items.length === 0) {
      process.stderr.write('No clusters. Create one with `upshift cluster create NAME --kind simulated --nodes 50`.\n');
      return;
    }
    cli.out.table(clusterColumns(cli.out), list.items);
  });

  runAction(clientCommand(cluster, 'get <cluster>', 'show a cluster (by name or id) and its components'), async ({ cli, args }) => {
    const view = await cli.client.get<ClusterView>(clusterPath(args[0] as string));
    if (cli.out.structured) return cli.out.data(view);
    printClusterDetail(cli.out, view);
  });

  const create = clientCommand(cluster, 'create <name>', 'create a cluster; simulated clusters take the simulation options')
    .addOption(new Option('--kind <kind>', 'cluster kind').choices(clusterKinds).default('simulated'))
    .addOption(
      new Option('--nodes <n>', 'simulated: number of nodes, named sim-001… (server default 10)').argParser(parseWholeNumber(1, 100_000)),
    )
    .addOption(
      new Option('--managers <n>', 'simulated: how many of the first nodes are Swarm managers').argParser(parseWholeNumber(0, 100_000)),
    )
    .addOption(new Option('--upgrade-seconds <s>', 'simulated: how long one node takes to upgrade (1.5, 300ms)').argParser(parseSeconds))
    .addOption(
      new Option('--fail-nodes <names>', 'simulated: comma-separated nodes whose first upgrade attempt fails').argParser(parseNameList),
    )
    .addOption(
      new Option('--snapshot-fail-nodes <names>', 'simulated: comma-separated nodes whose snapshots fail').argParser(parseNameList),
    )
    .addOption(
      new Option('--version <component=version...>', 'simulated: starting version of a component, such as docker=20.10.24 (repeatable)'),
    )
    .addOption(new Option('--window <window>', `the default maintenance window of its upgrades: ${windowHelp}`).argParser(parseWindow))
    .addOption(
      new Option(
        '-f, --file <file>',
        'YAML or JSON object of further cluster settings, merged into the request (for swarm, hosts, kubernetes)',
      ),
    );
  runAction<CreateOptions>(create, async ({ cli, args, opts }) => {
    const name = args[0] as string;
    const view = await cli.client.post<ClusterCreatedView>('/clusters', createClusterBody(name, opts));
    if (cli.out.structured) return cli.out.data(view);
    cli.out.line(`cluster ${view.name} created: ${view.kind}, ${view.nodeCount} node${view.nodeCount === 1 ? '' : 's'} (id ${view.id})`);
    if (view.joinToken && view.joinCommand && view.agentCommand && view.expiresAt) {
      cli.out.line('');
      printJoinInstructions(cli.out, view.name, view as JoinTokenView);
    }
  });

  const windowCommand = clientCommand(
    cluster,
    'window <cluster> [window]',
    `show, set or clear (--clear) the default maintenance window of the cluster's upgrades: ${windowHelp}`,
  ).addOption(new Option('--clear', 'no window: batches start at any time'));
  runAction<{ clear?: boolean }>(windowCommand, async ({ cli, args, opts }) => {
    const [ref, text] = args as [string, string | undefined];
    if (opts.clear && text !== undefined) throw usageError('give a window or --clear, not both');
    const view =
      text === undefined && !opts.clear
        ? await cli.client.get<ClusterView>(clusterPath(ref))
        : await cli.client.patch<ClusterView>(clusterPath(ref), { window: opts.clear ? null : parseWindow(text as string) });
    if (cli.out.structured) return cli.out.data(view.window);
    cli.out.line(
      view.window
        ? `${view.name}: batches of its upgrades start only in ${describeWindow(view.window)}`
        : `${view.name}: no maintenance window; batches start at any time`,
    );
  });

  const joinToken = clientCommand(
    cluster,
    'join-token <cluster>',
    'create a join token for the cluster’s agents (hosts, swarm) and print the join command',
  )
    .addOption(
      new Option(
        '--ttl <duration>',
        `lifetime, such as 30m, 12h or 7d (default: the server’s --join-token-ttl, ${serverDefaults.joinTokenTtl})`,
      ).argParser(parseTtl),
    )
    .addOption(new Option('--single-use', 'the token admits exactly one join'));
  runAction<{ ttl?: number; singleUse?: boolean }>(joinToken, async ({ cli, args, opts }) => {
    const ref = args[0] as string;
    const view = await cli.client.post<JoinTokenView>(`${clusterPath(ref)}/join-tokens`, {
      ...(opts.ttl !== undefined ? { ttlSeconds: opts.ttl } : {}),
      ...(opts.singleUse ? { singleUse: true } : {}),
    });
    if (cli.out.structured) return cli.out.data(view);
    printJoinInstructions(cli.out, ref, view);
  });

  runAction(
    clientCommand(cluster, 'delete <cluster>', 'delete a cluster (refused while an upgrade is active)').alias('rm'),
    async ({ cli, args }) => {
      const ref = args[0] as string;
      await cli.client.delete(clusterPath(ref));
      if (!cli.out.structured) cli.out.line(`cluster ${ref} deleted`);
    },
  );
}
