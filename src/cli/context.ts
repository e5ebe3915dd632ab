import { type Command, Option } from 'commander';
import { defaultServerUrl } from '../domain/defaults.js';
import { configFilePath, readConfig } from './config-file.js';
import { CliError, ExitCode, usageError } from './errors.js';
import { ApiClient } from './http.js';
import { Output, outputFormats, type OutputFormat } from './output.js';

/** The server the CLI talks to when nothing names one: `upshift server`'s own default address. */
export const DEFAULT_SERVER = defaultServerUrl;

const GLOBAL_GROUP = 'Global options:';

/**
 * The options every client command takes. They are declared on the program and on
 * each command, so `upshift -o json cluster list` and `upshift cluster list -o json`
 * both work.
 */
export function addGlobalOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--server <url>', `Upshift server URL (UPSHIFT_SERVER, context, default ${DEFAULT_SERVER})`).helpGroup(GLOBAL_GROUP),
    )
    .addOption(new Option('--token <token>', 'API token (UPSHIFT_TOKEN, context)').helpGroup(GLOBAL_GROUP))
    .addOption(
      new Option('--context <name>', 'use this context of the config file (UPSHIFT_CONTEXT, default: the current context)').helpGroup(
        GLOBAL_GROUP,
      ),
    )
    .addOption(new Option('-o, --output <format>', 'output format').choices(outputFormats).helpGroup(GLOBAL_GROUP))
    .addOption(new Option('--no-color', 'no colours (also NO_COLOR; colours are used on terminals only)').helpGroup(GLOBAL_GROUP));
}

export interface GlobalFlags {
  server: string | undefined;
  token: string | undefined;
  context: string | undefined;
  output: OutputFormat | undefined;
  color: boolean;
}

/** The global flags given on the command line, wherever they were given (the command's own win over the program's). */
export function globalFlags(command: Command): GlobalFlags {
  const fromCli = (key: string): string | undefined => {
    for (let c: Command | null = command; c; c = c.parent) {
      if (c.getOptionValueSource(key) === 'cli') return c.getOptionValue(key) as string;
    }
    return undefined;
  };
  let color = true;
  for (let c: Command | null = command; c; c = c.parent) {
    if (c.getOptionValueSource('color') === 'cli' && c.getOptionValue('color') === false) color = false;
  }
  return {
    server: fromCli('server'),
    token: fromCli('token'),
    context: fromCli('context'),
    output: fromCli('output') as OutputFormat | undefined,
    color,
  };
}

/** Everything a command needs: the API client and where to print. */
export interface Cli {
  client: ApiClient;
  out: Output;
  /** stdout is a terminal: live displays instead of plain lines. */
  interactive: boolean;
}

function normaliseServer(value: string, source: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw usageError(`${source}: ${JSON.stringify(value)} is not a URL such as ${DEFAULT_SERVER}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usageError(`${source}: the server URL must start with http:// or https://`);
  return url.toString().replace(/\/+$/, '');
}

/**
 * Resolves the server and token: flag > environment > context > default. The context
 * is `--context`, else `UPSHIFT_CONTEXT`, else the config file's current context.
 */
export function createCli(command: Command, env: NodeJS.ProcessEnv = process.env): Cli {
  const flags = globalFlags(command);
  const needsContext = flags.server === undefined || flags.token === undefined;
  let contextServer: string | undefined;
  let contextToken: string | undefined;
  const contextName = flags.context ?? (env['UPSHIFT_CONTEXT'] || undefined);
  if (needsContext || contextName !== undefined) {
    const file = configFilePath(env);
    const config = readConfig(file);
    const name = contextName ?? config.currentContext;
    if (name !== undefined) {
      const entry = config.contexts[name];
      if (!entry) {
        throw new CliError(ExitCode.usage, `context ${JSON.stringify(name)} is not in ${file}`, {
          hint: 'see `upshift config get-contexts`',
        });
      }
      contextServer = entry.server;
      contextToken = entry.token;
    }
  }
  const envServer = env['UPSHIFT_SERVER'] || undefined;
  const envToken = env['UPSHIFT_TOKEN'] || undefined;
  const server =
    flags.server !== undefined
      ? normaliseServer(flags.server, '--server')
      : envServer !== undefined
        ? normaliseServer(envServer, 'UPSHIFT_SERVER')
        : contextServer !== undefined
          ? normaliseServer(contextServer, 'the context’s server')
          : DEFAULT_SERVER;
  const token = flags.token ?? envToken ?? contextToken;
  const interactive = process.stdout.isTTY === true;
  const noColorEnv = env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '';
  const out = new Output(flags.output ?? 'table', interactive && flags.color && !noColorEnv);
  return { client: new ApiClient(server, token), out, interactive };
}
