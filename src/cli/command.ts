import { type Command, InvalidArgumentError } from 'commander';
import { errorMessage } from '../domain/errors.js';
import { windowFromText } from '../domain/maintenance-window.js';
import { escapeControls } from '../domain/text.js';
import { addGlobalOptions, type Cli, createCli } from './context.js';
import { CliError, ExitCode } from './errors.js';

/** What an action gets: the CLI, its positional arguments and its own options. */
export interface ActionInput<O> {
  cli: Cli;
  args: string[];
  opts: O;
  command: Command;
}

/** A subcommand of `parent` that talks to the server; `runAction` gives it the global options. */
export function clientCommand(parent: Command, nameAndArgs: string, description: string): Command {
  return parent.command(nameAndArgs).description(description);
}

/**
 * Makes `command` a client command: adds the global options (after its own, so that
 * its help lists them last), runs `handler` as its action, and exits with the
 * handler's code: 0, or the code of the error it threw, after printing
 * `error: <message>` (and a `hint:`) on stderr.
 */
export function runAction<O>(command: Command, handler: (input: ActionInput<O>) => Promise<number | void>): Command {
  addGlobalOptions(command);
  return runLocalAction<O>(command, (input) => handler({ ...input, cli: createCli(command) }));
}

/** The same for commands that do not talk to the server (`config`, `completion`). */
export function runLocalAction<O>(command: Command, handler: (input: Omit<ActionInput<O>, 'cli'>) => Promise<number | void>): Command {
  command.action(async () => {
    stopQuietlyWhenStdoutCloses();
    let code: number;
    try {
      code =
        (await handler({ args: command.processedArgs as string[], opts: command.opts<O & Record<string, unknown>>(), command })) ??
        ExitCode.ok;
    } catch (error) {
      code = reportError(error);
    }
    await exitAfterFlush(code);
  });
  return command;
}

export function reportError(error: unknown): number {
  // An error's text may quote what a server or a file said: control characters are shown as escapes.
  if (error instanceof CliError) {
    process.stderr.write(`error: ${escapeControls(error.message, { newlines: true })}\n`);
    if (error.hint) process.stderr.write(`hint: ${escapeControls(error.hint, { newlines: true })}\n`);
    return error.exitCode;
  }
  process.stderr.write(`error: ${escapeControls(errorMessage(error), { newlines: true })}\n`);
  return ExitCode.apiError;
}

/** `upshift events --follow | head`: when the reader goes away, stop without a stack trace, as `cat` does. */
function stopQuietlyWhenStdoutCloses(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(ExitCode.ok);
    throw error;
  });
}

/** Exits once stdout and stderr have taken what was written (pipes may still be draining). */
export async function exitAfterFlush(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
  process.exit(code);
}

/** commander parsers that turn a bad value into a usage error (exit 2). */
export function parseWholeNumber(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/** Seconds, as a number (`1.5`) or a duration (`500ms`, `30s`, `10m`, `1h`). */
export function parseSeconds(value: string): number {
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!match) throw new InvalidArgumentError('expected seconds (1.5) or a duration (500ms, 30s, 10m, 1h)');
  const factor = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * factor;
}

/** `--window "sat,sun 02:00-06:00 Europe/Berlin"` as the API's window object (the server checks the values). */
export function parseWindow(text: string): Record<string, unknown> {
  try {
    return windowFromText(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** The text of a window option's help, the same for clusters and upgrades. */
export const windowHelp = 'DAYS START-END ZONE, e.g. "sat,sun 02:00-06:00 Europe/Berlin" (END at or before START: the next day)';

export function parseNameList(value: string, previous: string[] = []): string[] {
  const names = value
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  return [...previous, ...names];
}
