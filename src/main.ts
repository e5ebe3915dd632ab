import { Command, Option } from 'commander';
import { registerAgentCommand } from './agent/command.js';
import { registerClientCommands } from './cli/client-commands.js';
import { serverDefaults as d } from './domain/defaults.js';
import { ErrorCode, UpshiftError, errorMessage } from './domain/errors.js';
import { PRODUCT_VERSION } from './domain/product-version.js';
import { ConfigError, loadServerConfig } from './server/config.js';

const flagText = (value: unknown): string | undefined => (value === undefined ? undefined : String(value));

/** `upshift <subcommand>`: parses the command line and starts one part of Upshift. */
const program = new Command()
  .name('upshift')
  .description('Upgrades the container runtime on every node of a fleet, in growing batches.')
  .version(PRODUCT_VERSION)
  .showHelpAfterError();

program
  .command('server')
  .description('run the control plane: API, console and upgrade engine')
  .addOption(new Option('--host <host>', `address to listen on (UPSHIFT_HOST, default ${d.host})`))
  .addOption(new Option('--port <port>', `port to listen on (UPSHIFT_PORT, default ${d.port})`))
  .addOption(new Option('--data-dir <dir>', `state directory (UPSHIFT_DATA_DIR, default ${d.dataDir})`))
  .addOption(new Option('--database <url>', 'postgres://… or a SQLite file (UPSHIFT_DATABASE_URL, default SQLite in the data dir)'))
  .addOption(new Option('--paused-ttl <duration>', `cancel upgrades paused longer than this (UPSHIFT_PAUSED_TTL, default ${d.pausedTtl})`))
  .addOption(new Option('--catalog <file>', 'a YAML/JSON catalog file merged over the built-in one (UPSHIFT_CATALOG)'))
  .addOption(new Option('--config <file>', 'a YAML/JSON config file (UPSHIFT_CONFIG)'))
  .addOption(new Option('--log-level <level>', `fatal, error, warn, info, debug (UPSHIFT_LOG_LEVEL, default ${d.logLevel})`))
  .addOption(new Option('--inventory-interval <duration>', `how often real clusters are inventoried (default ${d.inventoryInterval})`))
  .addOption(
    new Option(
      '--lease-ttl <duration>',
      `replicas: a dead replica’s upgrades are taken over after this (UPSHIFT_LEASE_TTL, default ${d.leaseTtl})`,
    ),
  )
  .addOption(
    new Option(
      '--agent-heartbeat <duration>',
      `agents heartbeat this often; three missed = unreachable (UPSHIFT_AGENT_HEARTBEAT, default ${d.agentHeartbeat})`,
    ),
  )
  .addOption(
    new Option(
      '--agent-task-timeout <duration>',
      `an agent task without a result fails after this (UPSHIFT_AGENT_TASK_TIMEOUT, default ${d.agentTaskTimeout})`,
    ),
  )
  .addOption(
    new Option(
      '--sign-in-limit <n>',
      `failed sign-ins per address and minute before 429 (UPSHIFT_SIGN_IN_LIMIT, default ${d.signInLimit})`,
    ),
  )
  .addOption(new Option('--tls-cert <file>', 'PEM certificate; with --tls-key the server speaks HTTPS (UPSHIFT_TLS_CERT)'))
  .addOption(new Option('--tls-key <file>', 'PEM private key (UPSHIFT_TLS_KEY)'))
  .addOption(
    new Option(
      '--trusted-proxies <list>',
      'comma-separated proxy addresses/CIDRs whose X-Forwarded-For names the client (UPSHIFT_TRUSTED_PROXIES)',
    ),
  )
  .addOption(new Option('--swarm-socket <path>', 'the one Docker socket a swarm cluster may use as manager (UPSHIFT_SWARM_SOCKET)'))
  .addOption(
    new Option(
      '--allow-link-local-targets [bool]',
      'let clusters name link-local/metadata addresses (UPSHIFT_ALLOW_LINK_LOCAL_TARGETS, default false)',
    ),
  )
  .addOption(
    new Option('--join-token-ttl <duration>', `lifetime of a join token by default (UPSHIFT_JOIN_TOKEN_TTL, default ${d.joinTokenTtl})`),
  )
  .addOption(
    new Option(
      '--public-url <url>',
      'the address users reach the server at, for console links in webhook payloads (UPSHIFT_PUBLIC_URL, default the listen address)',
    ),
  )
  .addOption(
    new Option(
      '--auto-cancel-warning <duration>',
      `warn this long before a paused upgrade is auto-canceled, at most half the paused TTL (UPSHIFT_AUTO_CANCEL_WARNING, default ${d.autoCancelWarning})`,
    ),
  )
  .action(async (flags: Record<string, string | undefined>) => {
    let config;
    try {
      config = loadServerConfig({
        host: flags['host'],
        port: flags['port'],
        dataDir: flags['dataDir'],
        database: flags['database'],
        pausedTtl: flags['pausedTtl'],
        catalog: flags['catalog'],
        config: flags['config'],
        logLevel: flags['logLevel'],
        inventoryInterval: flags['inventoryInterval'],
        signInLimit: flags['signInLimit'],
        agentHeartbeat: flags['agentHeartbeat'],
        agentTaskTimeout: flags['agentTaskTimeout'],
        leaseTtl: flags['leaseTtl'],
        tlsCert: flags['tlsCert'],
        tlsKey: flags['tlsKey'],
        trustedProxies: flags['trustedProxies'],
        swarmSocket: flags['swarmSocket'],
        // A bare flag means true (commander gives `true`); `--allow-link-local-targets false` is accepted too.
        allowLinkLocalTargets: flagText(flags['allowLinkLocalTargets']),
        joinTokenTtl: flags['joinTokenTtl'],
        publicUrl: flags['publicUrl'],
        autoCancelWarning: flags['autoCancelWarning'],
      });
    } catch (error) {
      if (error instanceof ConfigError) {
        process.stderr.write(`upshift server: ${error.message}\n`);
        process.exit(2);
      }
      throw error;
    }
    let server;
    try {
      // Loaded here, not at the top: client commands start without the server's code.
      const { startServer } = await import('./server/run.js');
      server = await startServer(config);
    } catch (error) {
      process.stderr.write(`upshift server: cannot start: ${errorMessage(error)}\n`);
      // A schema newer than this binary will not change by retrying: a distinct status,
      // so that a service manager does not restart into the same refusal.
      process.exit(error instanceof UpshiftError && error.code === ErrorCode.SCHEMA_TOO_NEW ? 3 : 1);
    }
    const shutdown = (signal: string) => {
      process.stderr.write(`upshift server: ${signal} received, shutting down\n`);
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      void server.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });

registerAgentCommand(program);
registerClientCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`upshift: ${errorMessage(error)}\n`);
  process.exit(1);
});
