import { type Command, Option } from 'commander';
import { stringify } from 'yaml';
import { runLocalAction } from '../command.js';
import { configFilePath, readConfig, validateContextName, writeConfig } from '../config-file.js';
import { DEFAULT_SERVER } from '../context.js';
import { CliError, ExitCode, usageError } from '../errors.js';
import { formatTable, outputFormats } from '../output.js';

/** `ups_…wxyz`: enough to tell tokens apart, not enough to use one. */
export function maskToken(token: string | undefined): string {
  if (!token) return '';
  return token.length <= 8 ? '********' : `${token.slice(0, 4)}…${token.slice(-4)}`;
}

function checkServer(value: string): string {
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
    return url.toString().replace(/\/+$/, '');
  } catch {
    throw usageError(`--server ${JSON.stringify(value)} is not a URL such as ${DEFAULT_SERVER}`);
  }
}

export function registerConfigCommands(program: Command): void {
  const config = program
    .command('config')
    .description('named contexts (a server and a token each) in ~/.config/upshift/config.yaml (UPSHIFT_CONFIG_FILE, XDG_CONFIG_HOME)');

  const setContext = config
    .command('set-context <name>')
    .description('create or update a context')
    .addOption(new Option('--server <url>', `the server’s URL (default ${DEFAULT_SERVER})`))
    .addOption(new Option('--token <token>', 'the API token'))
    .addOption(new Option('--use', 'also make it the current context'));
  runLocalAction<{ server?: string; token?: string; use?: boolean }>(setContext, async ({ args, opts }) => {
    const name = validateContextName(args[0] as string);
    const file = configFilePath();
    const current = readConfig(file);
    const entry = { ...(current.contexts[name] ?? {}) };
    if (opts.server !== undefined) entry.server = checkServer(opts.server);
    if (opts.token !== undefined) entry.token = opts.token;
    const existed = name in current.contexts;
    current.contexts[name] = entry;
    const makeCurrent = opts.use === true || current.currentContext === undefined;
    if (makeCurrent) current.currentContext = name;
    writeConfig(file, current);
    process.stdout.write(`context ${name} ${existed ? 'updated' : 'created'}${makeCurrent ? ' and in use' : ''} (${file})\n`);
  });

  runLocalAction(config.command('use-context <name>').description('make a context the current one'), async ({ args }) => {
    const name = args[0] as string;
    const file = configFilePath();
    const current = readConfig(file);
    if (!(name in current.contexts)) {
      throw new CliError(ExitCode.notFound, `context ${JSON.stringify(name)} is not in ${file}`, {
        hint: 'create it with `upshift config set-context NAME --server URL --token TOKEN`',
      });
    }
    current.currentContext = name;
    writeConfig(file, current);
    process.stdout.write(`now using context ${name}\n`);
  });

  const getContexts = config
    .command('get-contexts')
    .description('list the contexts; tokens are masked')
    .addOption(new Option('-o, --output <format>', 'output format').choices(outputFormats));
  runLocalAction<{ output?: string }>(getContexts, async ({ opts }) => {
    const file = configFilePath();
    const current = readConfig(file);
    const contexts = Object.entries(current.contexts).map(([name, c]) => ({
      name,
      current: name === current.currentContext,
      server: c.server ?? DEFAULT_SERVER,
      token: maskToken(c.token),
    }));
    if (opts.output === 'json')
      return void process.stdout.write(`${JSON.stringify({ currentContext: current.currentContext ?? null, contexts }, null, 2)}\n`);
    if (opts.output === 'yaml') return void process.stdout.write(stringify({ currentContext: current.currentContext ?? null, contexts }));
    if (contexts.length === 0) {
      process.stderr.write(`No contexts in ${file}. Add one with \`upshift config set-context NAME --server URL --token TOKEN\`.\n`);
      return;
    }
    process.stdout.write(
      formatTable(
        ['CURRENT', 'NAME', 'SERVER', 'TOKEN'],
        contexts.map((c) => [c.current ? '*' : ' ', c.name, c.server, c.token]),
      ),
    );
  });

  runLocalAction(config.command('current-context').description('print the current context’s name'), async () => {
    const file = configFilePath();
    const current = readConfig(file);
    if (current.currentContext === undefined)
      throw new CliError(ExitCode.notFound, `no current context in ${file}`, { hint: 'set one with `upshift config use-context NAME`' });
    process.stdout.write(`${current.currentContext}\n`);
  });

  runLocalAction(config.command('delete-context <name>').description('remove a context'), async ({ args }) => {
    const name = args[0] as string;
    const file = configFilePath();
    const current = readConfig(file);
    if (!(name in current.contexts)) throw new CliError(ExitCode.notFound, `context ${JSON.stringify(name)} is not in ${file}`);
    delete current.contexts[name];
    if (current.currentContext === name) current.currentContext = undefined;
    writeConfig(file, current);
    process.stdout.write(`context ${name} deleted\n`);
  });
}
