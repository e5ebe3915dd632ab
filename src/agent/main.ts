import { realpathSync } from 'node:fs';
import { Command } from 'commander';
import { configureAgentCommand } from './command.js';
import { agentVersion } from './agent-version.js';

/**
 * The standalone agent (`dist/agent.js`, one self-contained file): what the install
 * script puts on a node and what a self-upgrade replaces. `node agent.js --version`
 * prints the version it was built as. A leading `agent` word is accepted too, so the
 * standalone file takes the same command line as `upshift agent …`.
 */
const file = process.argv[1] ? realpathSync(process.argv[1]) : undefined;
const program = new Command().name('upshift-agent').description('The Upshift node agent').version(agentVersion()).showHelpAfterError();
configureAgentCommand(program, file);
const argv = process.argv[2] === 'agent' ? [...process.argv.slice(0, 2), ...process.argv.slice(3)] : process.argv;
program.parseAsync(argv).catch((error: unknown) => {
  process.stderr.write(`upshift-agent: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
