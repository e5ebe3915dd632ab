import path from 'node:path';
import { Command, Option } from 'commander';
import { agentDefaults } from '../domain/defaults.js';
import { Agent, AgentFatalError } from './agent.js';
import { AgentConfigError, loadAgentConfig } from './config.js';
import { stderrLogger } from './log.js';
import { snapshotProviderFor } from './recipes/snapshot.js';
import { agentVersion } from './agent-version.js';
import type { AgentProgram } from './program.js';

interface AgentFlags {
  server?: string;
  joinToken?: string;
  dataDir?: string;
  name?: string;
  config?: string;
  caFile?: string;
  joinOnly?: boolean;
  restoreSnapshot?: string;
}

/**
 * Adds the agent's options and action to `cmd`. `program` is the standalone agent the
 * process runs from (what a self-upgrade replaces); undefined inside the `upshift` CLI.
 */
export function configureAgentCommand(cmd: Command, program: AgentProgram | undefined): Command {
  return cmd
    .addOption(new Option('--server <url>', 'the Upshift server, e.g. http://10.0.0.1:8420').env('UPSHIFT_SERVER'))
    .addOption(new Option('--join-token <token>', 'the cluster’s join token (needed for the first start only)').env('UPSHIFT_JOIN_TOKEN'))
    .addOption(
      new Option('--data-dir <dir>', `credential, journal, backups and downloads (default ${agentDefaults.dataDir})`).env(
        'UPSHIFT_AGENT_DATA_DIR',
      ),
    )
    .addOption(new Option('--name <name>', 'node name (default: the hostname)'))
    .addOption(
      new Option('--config <file>', 'the agent config file (YAML or JSON): install methods, services, hooks, snapshots').env(
        'UPSHIFT_AGENT_CONFIG',
      ),
    )
    .addOption(
      new Option('--ca-file <pem>', 'trust only this CA for the server’s certificate (pins a private CA)').env('UPSHIFT_AGENT_CA_FILE'),
    )
    .addOption(
      new Option(
        '--join-only',
        'join (or check the stored credential), store the credential and exit: run once with the join token, then start the agent without it',
      ),
    )
    .addOption(new Option('--restore-snapshot <ref>', 'restore a snapshot taken before an upgrade (stop the services first), then exit'))
    .action(async (flags: AgentFlags) => {
      const log = stderrLogger();
      let config;
      try {
        config = loadAgentConfig(flags.config, {
          ...(flags.server !== undefined ? { server: flags.server } : {}),
          ...(flags.joinToken !== undefined ? { joinToken: flags.joinToken } : {}),
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(flags.dataDir !== undefined ? { dataDir: flags.dataDir } : {}),
          ...(flags.caFile !== undefined ? { caFile: path.resolve(flags.caFile) } : {}),
        });
      } catch (e) {
        if (e instanceof AgentConfigError) {
          process.stderr.write(`upshift agent: ${e.message}\n`);
          process.exit(2);
        }
        throw e;
      }
      if (flags.restoreSnapshot !== undefined) {
        const provider = snapshotProviderFor(config);
        if (!provider) {
          process.stderr.write('upshift agent: no snapshot provider is configured (snapshot: in the config file)\n');
          process.exit(2);
        }
        try {
          await provider.restore(flags.restoreSnapshot, (l) => log.info(l));
          process.exit(0);
        } catch (e) {
          process.stderr.write(`upshift agent: restore failed: ${(e as Error).message}\n`);
          process.exit(1);
        }
      }
      const joinOnly = flags.joinOnly === true;
      const agent = new Agent({ config, version: agentVersion(), logger: log, program, joinOnly });
      let signals = 0;
      const onSignal = (sig: string) => {
        signals++;
        if (signals > 1) {
          log.warn(`${sig} again: exiting now; an interrupted task is resumed from the journal at the next start`);
          process.exit(1);
        }
        log.info(`${sig}: stopping after the running task, if any`);
        agent.stop();
      };
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      process.on('SIGINT', () => onSignal('SIGINT'));
      log.info(
        `upshift agent ${agentVersion()} starting on Node.js ${process.version} (data dir ${config.dataDir}${program ? `, ${program.form} ${program.file}` : ''})`,
      );
      try {
        const how = await agent.run();
        log.info(
          how === 'joined'
            ? 'this host holds its node credential; start the agent without the join token'
            : how === 'handed-over'
              ? 'handed over to the new agent; exiting'
              : 'stopped',
        );
        process.exit(0);
      } catch (e) {
        if (e instanceof AgentFatalError) {
          process.stderr.write(`upshift agent: ${e.message}\n`);
          process.exit(2);
        }
        if (signals > 0) {
          log.info('stopped');
          process.exit(0);
        }
        process.stderr.write(`upshift agent: ${(e as Error).stack ?? String(e)}\n`);
        process.exit(1);
      }
    });
}

/** `upshift agent …`: the node agent, run from the CLI (it cannot replace itself there; the standalone bundle can). */
export function registerAgentCommand(program: Command): void {
  configureAgentCommand(
    program.command('agent').description('run the node agent: join a hosts cluster and run its upgrade tasks'),
    undefined,
  );
}
