import type { Command } from 'commander';
import { components } from '../../domain/components.js';
import type { NodeResetView, NodeView } from '../../api/index.js';
import { clientCommand, runAction } from '../command.js';
import { age, type Column, type Output } from '../output.js';
import { allItems, pagesOf } from '../paging.js';
import { clusterPath } from '../resolve.js';

function nodeColumns(out: Output): Column<NodeView>[] {
  return [
    { header: 'NAME', value: (n) => n.name },
    { header: 'ID', value: (n) => n.id, wide: true },
    { header: 'ROLE', value: (n) => n.role },
    { header: 'STATUS', value: (n) => out.state(n.status) },
    ...components.map((component): Column<NodeView> => ({ header: component.toUpperCase(), value: (n) => n.versions[component] ?? '' })),
    // What the node's agent reports; blank for nodes without one (they restrict no version).
    { header: 'DISTRIBUTION', value: (n) => n.distribution ?? '' },
    { header: 'AGE', value: (n) => age(n.createdAt), wide: true },
  ];
}

export function registerNodeCommands(program: Command): void {
  const node = program.command('node').description('list, add, remove and reset a cluster’s nodes');

  runAction(
    clientCommand(node, 'list <cluster>', 'list a cluster’s nodes and the versions they run').alias('ls'),
    async ({ cli, args }) => {
      const path = `${clusterPath(args[0] as string)}/nodes`;
      // -o json/yaml: one {items} document of the whole list, as before paging.
      if (cli.out.structured) return cli.out.data({ items: await allItems<NodeView>(cli.client, path) });
      const table = cli.out.pagedTable(nodeColumns(cli.out));
      for await (const page of pagesOf<NodeView>(cli.client, path)) table.add(page);
      if (table.rows === 0) process.stderr.write(`Cluster ${args[0]} has no nodes.\n`);
    },
  );

  runAction(
    clientCommand(node, 'add <cluster> <name>', 'add a node (simulated and hosts clusters; refused while an upgrade is active)'),
    async ({ cli, args }) => {
      const [cluster, name] = args as [string, string];
      const view = await cli.client.post<NodeView>(`${clusterPath(cluster)}/nodes`, { name });
      if (cli.out.structured) return cli.out.data(view);
      cli.out.line(`node ${view.name} added to ${cluster} (id ${view.id})`);
    },
  );

  runAction(
    clientCommand(
      node,
      'reset <cluster> <name>',
      'revoke a node’s agent credential (its agent is locked out at once); the next join under its name claims the node',
    ),
    async ({ cli, args }) => {
      const [cluster, name] = args as [string, string];
      const reset = await cli.client.post<NodeResetView>(`${clusterPath(cluster)}/nodes/${encodeURIComponent(name)}/reset`, {});
      if (cli.out.structured) return cli.out.data(reset);
      cli.out.line(
        reset.revokedCredentials > 0
          ? `node ${reset.node.name} of ${reset.cluster} reset: its agent is locked out`
          : `node ${reset.node.name} of ${reset.cluster} reset: its agent held no credential`,
      );
      if (reset.failedTasks.length > 0) {
        cli.out.line(`its unfinished task${reset.failedTasks.length === 1 ? '' : 's'} failed: ${reset.failedTasks.join(', ')}`);
      }
      cli.out.line(
        `The next join as ${reset.node.name} claims the node: run the join command of \`upshift cluster join-token ${reset.cluster} --single-use\` on the host that replaces it.`,
      );
    },
  );

  runAction(
    clientCommand(node, 'remove <cluster> <name>', 'remove a node, by name or id (refused while an upgrade is active)').alias('rm'),
    async ({ cli, args }) => {
      const [cluster, name] = args as [string, string];
      await cli.client.delete(`${clusterPath(cluster)}/nodes/${encodeURIComponent(name)}`);
      if (!cli.out.structured) cli.out.line(`node ${name} removed from ${cluster}`);
    },
  );
}
