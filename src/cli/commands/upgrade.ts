import { stringify } from 'yaml';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { componentDisplayName, components, type Component } from '../../domain/components.js';
import { upgradePolicy } from '../../domain/defaults.js';
import { formatElapsed } from '../../domain/duration.js';
import { describeGate, gateFromText } from '../../domain/gates.js';
import { describeWindow } from '../../domain/maintenance-window.js';
import { upgradeStates } from '../../domain/upgrade-state.js';
import type { BatchView, GateView, NodeTaskView, PlanView, UpgradeList, UpgradeView } from '../../api/index.js';
import { clientCommand, parseSeconds, parseWholeNumber, parseWindow, runAction, windowHelp } from '../command.js';
import type { Cli } from '../context.js';
import { ApiError, usageError } from '../errors.js';
import { age, type Column, nameList, type Output, plural, shortTime } from '../output.js';
import { allItems, pagesOf } from '../paging.js';
import { clusterPath, resolveUpgradeId, upgradePath } from '../resolve.js';
import { progressLine } from '../progress-text.js';
import { autoCancelText, nodeNames, pauseCause } from '../watch/outcome.js';
import { watchUpgrade } from '../watch/watch.js';

const UPGRADE_REF = 'an upgrade id, or a cluster name or id for that cluster’s active (else latest) upgrade';

/** Why it is paused, or why it ended. */
function reasonText(u: UpgradeView, names: ReadonlyMap<string, string> = new Map()): string {
  if (u.state === 'Paused' && u.pauseReason) return pauseCause(u, names);
  return u.endReason?.message ?? '';
}

/** A gate in one line: what it checks, how long it is retried, and whether a bearer token is stored. */
function gateLine(g: GateView): string {
  const token = g.bearerToken ? ', bearer token set' : '';
  return `${describeGate(g)}, retried for ${g.retrySeconds}s${token}`;
}

function upgradeColumns(out: Output): Column<UpgradeView>[] {
  return [
    { header: 'ID', value: (u) => u.id },
    { header: 'CLUSTER', value: (u) => u.clusterName ?? u.clusterId },
    { header: 'COMPONENT', value: (u) => u.component },
    { header: 'TARGET', value: (u) => u.toVersion },
    { header: 'STATE', value: (u) => out.state(u.state) },
    { header: 'PROGRESS', value: (u) => `${u.nodes.succeeded}/${u.nodes.total}` },
    { header: 'BATCH', value: (u) => `${u.progress.batch}/${u.progress.batches}` },
    {
      header: 'ETA',
      value: (u) => (u.progress.etaSeconds === null || u.state === 'Completed' ? '' : formatElapsed(u.progress.etaSeconds * 1000)),
    },
    { header: 'RUNNING', value: (u) => String(u.nodes.running), wide: true },
    { header: 'FAILED', value: (u) => String(u.nodes.failed), wide: true },
    { header: 'SKIPPED', value: (u) => String(u.nodes.skipped), wide: true },
    { header: 'SNAPSHOT', value: (u) => u.snapshot ?? '', wide: true },
    { header: 'MAX-BATCH', value: (u) => (u.cap === undefined ? '' : String(u.cap)), wide: true },
    { header: 'CREATED-BY', value: (u) => u.createdBy ?? '', wide: true },
    { header: 'REASON', value: (u) => reasonText(u) },
    { header: 'AGE', value: (u) => age(u.createdAt) },
  ];
}

function printUpgradeDetail(out: Output, u: UpgradeView, tasks: NodeTaskView[]): void {
  const names = nodeNames(tasks);
  out.table(upgradeColumns(out), [u]);
  const notes: string[] = [];
  if (u.statusText) notes.push(u.statusText);
  notes.push(progressLine(u));
  if (u.endReason) notes.push(`ended ${shortTime(u.endReason.at)}: ${u.endReason.message}`);
  if (u.state === 'Paused' || u.state === 'SnapshotFailed') {
    if (u.state === 'Paused') notes.push(`pause reason: ${reasonText(u, names)}`);
    const ttl = autoCancelText(u);
    if (ttl) notes.push(ttl);
  }
  if (u.snapshots)
    notes.push(
      `snapshots: ${u.snapshots.succeeded}/${u.snapshots.total} taken${u.snapshots.failed ? `, ${u.snapshots.failed} failed (${u.snapshots.failedNodes.join(', ')})` : ''}`,
    );
  if (u.policy.window) notes.push(`maintenance window: ${describeWindow(u.policy.window)}`);
  u.policy.gates?.forEach((g, i) => notes.push(`gate ${i + 1}: ${gateLine(g)}`));
  out.line();
  for (const note of notes) out.line(note);
  if (u.batches.length === 0) return;
  out.line();
  out.table<BatchView>(
    [
      { header: 'BATCH', value: (b) => String(b.index + 1) },
      { header: 'SIZE', value: (b) => String(b.size) },
      { header: 'STATE', value: (b) => out.state(b.state) },
      { header: 'TOOK', value: (b) => (b.finishedAt ? formatElapsed(Date.parse(b.finishedAt) - Date.parse(b.startedAt)) : '') },
      { header: 'STARTED', value: (b) => shortTime(b.startedAt), wide: true },
      {
        header: 'NODES',
        value: (b) => (out.wide ? b.nodes.map((n) => names.get(n) ?? n).join(',') : nameList(b.nodes.map((n) => names.get(n) ?? n))),
      },
    ],
    u.batches,
  );
}

interface PolicyOptions {
  component: Component;
  to?: string;
  maxBatchPercent?: number;
  window?: Record<string, unknown>;
  gate?: Array<Record<string, unknown>>;
}

interface StartOptions extends PolicyOptions {
  snapshot?: boolean;
  soak?: number;
  watch?: boolean;
  throughPause?: boolean;
}

function upgradeBody(opts: StartOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { component: opts.component };
  if (opts.to !== undefined) body['toVersion'] = opts.to;
  if (opts.snapshot) body['snapshot'] = 'before';
  const policy: Record<string, unknown> = {};
  if (opts.maxBatchPercent !== undefined) policy['maxBatchPercent'] = opts.maxBatchPercent;
  if (opts.soak !== undefined) policy['soakSeconds'] = opts.soak;
  if (opts.window !== undefined) policy['window'] = opts.window;
  if (opts.gate !== undefined) policy['gates'] = opts.gate;
  if (Object.keys(policy).length > 0) body['policy'] = policy;
  return body;
}

const componentOption = () => new Option('--component <component>', 'what to upgrade').choices(components).makeOptionMandatory();
const toOption = () =>
  new Option('--to <version>', 'target version (default: the newest catalog version that installs on the cluster’s nodes)');
const maxBatchOption = () =>
  new Option(
    '--max-batch-percent <p>',
    `largest batch, in percent of the nodes (default ${upgradePolicy.defaults.maxBatchPercent})`,
  ).argParser(parseWholeNumber(upgradePolicy.bounds.maxBatchPercent.min, upgradePolicy.bounds.maxBatchPercent.max));
const windowOption = () =>
  new Option('--window <window>', `start batches only in this maintenance window (default: the cluster's): ${windowHelp}`).argParser(
    parseWindow,
  );
/** `--gate`, repeatable: each one a gate in docs/cli.md's syntax (`gateFromText`), checked by the server. */
export function parseGateOption(text: string, previous: Array<Record<string, unknown>> = [], env: NodeJS.ProcessEnv = process.env) {
  try {
    return [...previous, gateFromText(text, env)];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}
const gateOption = () =>
  new Option(
    '--gate <gate>',
    'a health gate checked before each batch (repeatable): http=URL[,status=N][,contains=TEXT], prometheus=URL,QUERY[,max=X][,min=X][,allow-empty][,token-env=VAR], swarm-services; each takes retry=SECONDS (default 60) and http/prometheus timeout=SECONDS; a QUERY with a comma outside brackets goes in double quotes',
  ).argParser((text: string, previous: Array<Record<string, unknown>> | undefined) => parseGateOption(text, previous));
const throughPauseOption = () =>
  new Option('--through-pause', 'keep watching while Paused (showing the time left before auto-cancel) until Completed or Canceled');

async function command(cli: Cli, ref: string, action: string, body: unknown = {}): Promise<void> {
  const id = await resolveUpgradeId(cli.client, ref);
  const view = await cli.client.post<UpgradeView>(`${upgradePath(id)}/${action}`, body);
  if (cli.out.structured) return cli.out.data(view);
  const parts = [`upgrade ${view.id} is ${cli.out.state(view.state)}`];
  if (view.statusText) parts.push(`(${view.statusText})`);
  cli.out.line(parts.join(' '));
  if ((view.state === 'Paused' || view.state === 'Canceled') && view.nodes.running > 0) {
    cli.out.line(`${plural(view.nodes.running, 'node')} already started will finish; no other node starts`);
  }
  if (view.state === 'Paused') {
    const ttl = autoCancelText(view);
    if (ttl) cli.out.line(`resume with \`upshift upgrade resume ${view.id}\`; ${ttl}`);
  }
}

export function registerUpgradeCommands(program: Command): void {
  const upgrade = program.command('upgrade').description('plan, start, follow and steer upgrades');

  const plan = clientCommand(upgrade, 'plan <cluster>', 'preview the batches of an upgrade without starting anything')
    .addOption(componentOption())
    .addOption(toOption())
    .addOption(maxBatchOption())
    .addOption(windowOption())
    .addOption(gateOption());
  runAction<PolicyOptions>(plan, async ({ cli, args, opts }) => {
    const cluster = args[0] as string;
    if (cli.out.format === 'manifests') {
      // The manifests the driver would create, as YAML documents for review (kubernetes clusters).
      const withManifests = await cli.client.post<PlanView>(`${clusterPath(cluster)}/upgrades/plan?output=manifests`, upgradeBody(opts));
      process.stdout.write((withManifests.manifests ?? []).map((m) => stringify(m, { lineWidth: 0 })).join('---\n'));
      return;
    }
    const view = await cli.client.post<PlanView>(`${clusterPath(cluster)}/upgrades/plan`, upgradeBody(opts));
    if (cli.out.structured) return cli.out.data(view);
    const total = view.total ?? view.batches.reduce((n, b) => n + b.length, 0);
    cli.out.line(
      `${componentDisplayName[view.component ?? opts.component]}${view.toVersion ? ` → ${view.toVersion}` : ''} on ${cluster}: ${plural(total, 'node')} in ${plural(view.batches.length, 'batch', 'batches')}${view.cap ? ` of at most ${view.cap}` : ''}`,
    );
    // Said before it happens: what `upgrade start` would answer now.
    if (view.refusal) cli.out.line(`A start would be refused now (${view.refusal.code}): ${view.refusal.message}`);
    // Versions the catalog has but this cluster's nodes cannot take, so that a missing one is explained.
    for (const v of view.notOffered ?? []) cli.out.line(`Not offered: ${v.version} (${v.reason})`);
    view.gates?.forEach((g, i) => cli.out.line(`gate ${i + 1}: ${gateLine(g)}`));
    if (view.batches.length === 0) return;
    cli.out.line();
    cli.out.table<{ index: number; nodes: string[] }>(
      [
        { header: 'BATCH', value: (b) => String(b.index + 1) },
        { header: 'SIZE', value: (b) => String(b.nodes.length) },
        { header: 'NODES', value: (b) => (cli.out.wide ? b.nodes.join(',') : nameList(b.nodes, 6)) },
      ],
      view.batches.map((nodes, index) => ({ index, nodes })),
    );
  });

  const start = clientCommand(upgrade, 'start <cluster>', 'start an upgrade of one component of a cluster')
    .addOption(componentOption())
    .addOption(toOption())
    .addOption(new Option('--snapshot', 'snapshot every node before upgrading any'))
    .addOption(maxBatchOption())
    .addOption(new Option('--soak <seconds>', 'wait between batches (seconds, or 30s, 5m)').argParser(parseSeconds))
    .addOption(windowOption())
    .addOption(gateOption())
    .addOption(new Option('-w, --watch', 'follow it until it completes (exit 0) or stops (exit 3)'))
    .addOption(throughPauseOption());
  runAction<StartOptions>(start, async ({ cli, args, opts }) => {
    if (opts.throughPause && !opts.watch) throw usageError('--through-pause goes with --watch');
    const view = await cli.client.post<UpgradeView>(`${clusterPath(args[0] as string)}/upgrades`, upgradeBody(opts));
    if (opts.watch) return watchUpgrade(cli, view.id, { throughPause: opts.throughPause === true, fromStart: true });
    if (cli.out.structured) return cli.out.data(view);
    cli.out.line(
      `upgrade ${view.id} started: ${componentDisplayName[view.component]} → ${view.toVersion} on ${view.clusterName ?? args[0]}, ${plural(view.nodes.total, 'node')}${view.snapshot === 'before' ? ', snapshots first' : ''}`,
    );
    cli.out.line(`follow it with \`upshift upgrade watch ${view.id}\``);
  });

  const list = clientCommand(upgrade, 'list', 'list upgrades, newest first')
    .alias('ls')
    .addOption(new Option('--cluster <cluster>', 'only this cluster’s (name or id)'))
    .addOption(new Option('--state <state>', 'only upgrades in this state').choices(upgradeStates));
  runAction<{ cluster?: string; state?: string }>(list, async ({ cli, opts }) => {
    const result = await cli.client.get<UpgradeList>('/upgrades', { clusterId: opts.cluster, state: opts.state });
    if (cli.out.structured) return cli.out.data(result);
    if (result.items.length === 0) {
      process.stderr.write('No upgrades found.\n');
      return;
    }
    cli.out.table(upgradeColumns(cli.out), result.items);
  });

  runAction(
    clientCommand(upgrade, 'get <upgrade>', `show an upgrade and its batches; <upgrade> is ${UPGRADE_REF}`),
    async ({ cli, args }) => {
      const id = await resolveUpgradeId(cli.client, args[0] as string);
      const [view, tasks] = await Promise.all([
        cli.client.get<UpgradeView>(upgradePath(id)),
        cli.out.structured ? Promise.resolve([]) : allItems<NodeTaskView>(cli.client, `${upgradePath(id)}/nodes`),
      ]);
      if (cli.out.structured) return cli.out.data(view);
      printUpgradeDetail(cli.out, view, tasks);
    },
  );

  runAction(clientCommand(upgrade, 'pause <upgrade>', 'pause: nodes already started finish, no other node starts'), async ({ cli, args }) =>
    command(cli, args[0] as string, 'pause'),
  );

  const resume = clientCommand(
    upgrade,
    'resume <upgrade>',
    'resume a paused upgrade: the batches ramp up from 1 again and failed nodes are retried',
  ).addOption(new Option('--delete-failed-pods', 'Kubernetes: delete this upgrade’s failed executor pods first'));
  runAction<{ deleteFailedPods?: boolean }>(resume, async ({ cli, args, opts }) =>
    command(cli, args[0] as string, 'resume', opts.deleteFailedPods ? { deleteFailedPods: true } : {}).catch((error: unknown) => {
      // The server names its API's field; here the way out is this command's flag.
      if (error instanceof ApiError && error.code === 'FAILED_PODS_PRESENT') {
        throw new ApiError(
          error.status,
          error.code,
          'failed executor pods of this upgrade are still in the runtime-upgrade namespace (kubectl -n runtime-upgrade get pods): look at them, then delete them',
          error.details,
          `upshift upgrade resume ${args[0] as string} --delete-failed-pods deletes them and resumes`,
        );
      }
      throw error;
    }),
  );

  runAction(
    clientCommand(upgrade, 'cancel <upgrade>', 'cancel a paused upgrade (pause it first); upgraded nodes stay upgraded'),
    async ({ cli, args }) => command(cli, args[0] as string, 'cancel'),
  );

  runAction(clientCommand(upgrade, 'continue <upgrade>', 'after a failed snapshot: upgrade without it'), async ({ cli, args }) =>
    command(cli, args[0] as string, 'continue'),
  );

  runAction(clientCommand(upgrade, 'quit <upgrade>', 'after a failed snapshot: stop, nothing was upgraded'), async ({ cli, args }) =>
    command(cli, args[0] as string, 'quit'),
  );

  const watch = clientCommand(
    upgrade,
    'watch <upgrade>',
    'follow an upgrade live: exit 0 when it completes, 3 when it is Paused, Canceled or SnapshotFailed',
  ).addOption(throughPauseOption());
  runAction<{ throughPause?: boolean }>(watch, async ({ cli, args, opts }) => {
    const id = await resolveUpgradeId(cli.client, args[0] as string);
    return watchUpgrade(cli, id, { throughPause: opts.throughPause === true, fromStart: false });
  });

  runAction(
    clientCommand(upgrade, 'nodes <upgrade>', 'the upgrade’s node tasks: state, batch, attempt, versions, error'),
    async ({ cli, args }) => {
      const id = await resolveUpgradeId(cli.client, args[0] as string);
      const path = `${upgradePath(id)}/nodes`;
      if (cli.out.structured) return cli.out.data({ items: await allItems<NodeTaskView>(cli.client, path) });
      const table = cli.out.pagedTable<NodeTaskView>([
        { header: 'NAME', value: (t) => t.nodeName },
        { header: 'NODE-ID', value: (t) => t.nodeId, wide: true },
        { header: 'ROLE', value: (t) => t.role ?? '', wide: true },
        { header: 'STATE', value: (t) => cli.out.state(t.state) },
        { header: 'BATCH', value: (t) => (t.batchIndex === null ? '' : String(t.batchIndex + 1)) },
        { header: 'ATTEMPT', value: (t) => String(t.attempt) },
        { header: 'FROM', value: (t) => t.fromVersion ?? '' },
        { header: 'TO', value: (t) => t.toVersion },
        { header: 'STARTED', value: (t) => shortTime(t.startedAt), wide: true },
        { header: 'FINISHED', value: (t) => shortTime(t.finishedAt), wide: true },
        {
          header: 'SNAPSHOT',
          value: (t) => (t.snapshot ? `${t.snapshot.state}${t.snapshot.error ? `: ${t.snapshot.error}` : ''}` : ''),
          wide: true,
        },
        { header: 'ERROR', value: (t) => t.error ?? '' },
      ]);
      // Printed as the pages come: the first rows of a 100,000-node upgrade show at once.
      for await (const page of pagesOf<NodeTaskView>(cli.client, path)) table.add(page);
    },
  );

  runAction(clientCommand(upgrade, 'log <upgrade> <node>', 'a node’s log in this upgrade (node name or id)'), async ({ cli, args }) => {
    const [ref, node] = args as [string, string];
    const id = await resolveUpgradeId(cli.client, ref);
    for await (const text of cli.client.text(`${upgradePath(id)}/nodes/${encodeURIComponent(node)}/log`)) cli.out.write(text);
  });
}
