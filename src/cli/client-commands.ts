import type { Command } from 'commander';
import { registerArtifactCommands } from './commands/artifact.js';
import { registerClusterCommands } from './commands/cluster.js';
import { registerSessionCommands } from './commands/session.js';
import { registerTokenCommands } from './commands/token.js';
import { registerCompletionCommands } from './commands/completion.js';
import { registerConfigCommands } from './commands/config.js';
import { registerEventCommands } from './commands/events.js';
import { registerNodeCommands } from './commands/node.js';
import { registerUpgradeCommands } from './commands/upgrade.js';
import { registerVersionCommand } from './commands/version.js';
import { registerWebhookCommands } from './commands/webhook.js';
import { addGlobalOptions } from './context.js';
import { ExitCode, exitCodeHelp } from './errors.js';

/**
 * Adds the client commands (`upshift cluster …`, `upshift upgrade …`, …) to the program.
 *
 * Program options are made positional (they go before the subcommand), so that a
 * subcommand's own options win after it: `cluster create --version docker=…` is the
 * simulation's version, not the program's `--version`. The global options are declared
 * on every client command too, so they work after it as kubectl users expect. Usage
 * errors exit 2 (commander's default is 1, which the CLI keeps for API errors).
 */
export function registerClientCommands(program: Command): void {
  program.enablePositionalOptions();
  program.exitOverride((error) => {
    process.exit(error.exitCode === 0 ? ExitCode.ok : ExitCode.usage);
  });
  addGlobalOptions(program);
  program.addHelpText(
    'after',
    `
Examples:
  upshift cluster create demo --kind simulated --nodes 50
  upshift upgrade start demo --component agent --watch
  upshift upgrade plan demo --component docker
  upshift upgrade start demo --component docker --snapshot
  upshift upgrade pause demo
  upshift events --cluster demo -o json | jq .

Server and token: --server/--token, else UPSHIFT_SERVER/UPSHIFT_TOKEN, else the
current context of the config file (see \`upshift config --help\`).

${exitCodeHelp}`,
  );

  registerClusterCommands(program);
  registerNodeCommands(program);
  registerUpgradeCommands(program);
  registerArtifactCommands(program);
  registerTokenCommands(program);
  registerSessionCommands(program);
  registerWebhookCommands(program);
  registerEventCommands(program);
  registerConfigCommands(program);
  registerCompletionCommands(program);
  registerVersionCommand(program);

  const serverCommand = program.commands.find((c) => c.name() === 'server');
  for (const command of program.commands) {
    if (command === serverCommand) continue;
    command.addHelpText('after', `\n${exitCodeHelp}`);
    shortUsageErrors(command);
  }
}

/** After a usage error, point at the help instead of printing all of it. */
function shortUsageErrors(command: Command): void {
  const path: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) path.unshift(c.name());
  command.showHelpAfterError(`(see \`${path.join(' ')} --help\`)`);
  for (const sub of command.commands) shortUsageErrors(sub);
}
