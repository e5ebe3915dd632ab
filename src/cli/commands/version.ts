import { type Command, Option } from 'commander';
import { stringify } from 'yaml';
import { PRODUCT_VERSION } from '../../domain/product-version.js';
import { runLocalAction } from '../command.js';

/**
 * `upshift version`: Upshift's version and the Node.js that runs it, with the binary's
 * path, so that "which runtime is this?" has a one-command answer (bin/upshift.js moves
 * itself onto the bundled Node.js 24 when another starts it). `--version` stays the bare
 * version number: scripts and the agent's self-upgrade probe read it.
 */
export function registerVersionCommand(program: Command): void {
  const version = program
    .command('version')
    .description('print the version of upshift and of the Node.js it runs on')
    .addOption(new Option('-o, --output <format>', 'output format (text by default)').choices(['json', 'yaml']));
  runLocalAction<{ output?: 'json' | 'yaml' }>(version, async ({ opts }) => {
    const info = {
      version: PRODUCT_VERSION,
      node: { version: process.version, path: process.execPath, platform: `${process.platform}-${process.arch}` },
    };
    if (opts.output === 'json') return void process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    if (opts.output === 'yaml') return void process.stdout.write(stringify(info));
    process.stdout.write(`upshift ${info.version}\nNode.js ${info.node.version} ${info.node.platform} (${info.node.path})\n`);
  });
}
