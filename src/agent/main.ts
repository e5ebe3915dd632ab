import { Command, Option } from 'commander';
import { configureAgentCommand } from './command.js';
import { agentVersion } from './agent-version.js';
import { currentProgram, runningAsSea, versionReport } from './program.js';

/**
 * The standalone agent: the single executable `upshift-agent` (dist/agent/upshift-agent-linux-x64,
 * what the install script puts on a node and what a self-upgrade replaces), or the same code
 * as one JavaScript file run by a Node.js (`node dist/agent.js`). `--version` prints the
 * version it was built as; `--version --verbose` prints one JSON line with the Node.js
 * inside it and how it runs. A leading `agent` word is accepted too, so the standalone
 * agent takes the same command line as `upshift agent …`.
 */
async function main(): Promise<void> {
  const program = currentProgram(await runningAsSea());
  const args = process.argv.slice(2);
  if ((args.includes('--version') || args.includes('-V')) && args.includes('--verbose')) {
    process.stdout.write(`${JSON.stringify(versionReport(agentVersion(), program))}\n`);
    return;
  }
  const cmd = new Command()
    .name('upshift-agent')
    .description('The Upshift node agent')
    .version(agentVersion())
    .addOption(new Option('--verbose', 'with --version: one JSON line with the version, the Node.js inside and how this agent runs'))
    .showHelpAfterError();
  configureAgentCommand(cmd, program);
  const argv = args[0] === 'agent' ? [...process.argv.slice(0, 2), ...args.slice(1)] : process.argv;
  await cmd.parseAsync(argv);
}

main().catch((error: unknown) => {
  process.stderr.write(`upshift-agent: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
