import { spawn } from 'node:child_process';
import os from 'node:os';

/**
 * The one way Upshift starts a program: the agent's recipes, probes and hooks, and the
 * snapshot providers all come here, so that every process is started the same way: an
 * argv array and never a shell (nothing a server sends can become shell text), a timeout
 * that ends in SIGKILL, and a bounded capture of what it prints.
 */

/** What a finished command left behind. `code` is 128+N when it died of signal N. */
export interface CommandResult {
  argv: string[];
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunCommandOptions {
  /** Kill the command (SIGTERM, then SIGKILL 5 s later) after this many milliseconds. */
  timeoutMs?: number | undefined;
  /** Added to this process's environment (an undefined value removes the variable). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  /** Receives every complete output line (stdout and stderr) as it arrives. */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

/** How much of each of stdout and stderr is kept, in characters: enough for any error, bounded for a chatty program. */
export const MAX_CAPTURE = 256 * 1024;

/** Between SIGTERM and SIGKILL when a command is stopped. */
const KILL_GRACE_MS = 5_000;

/**
 * Runs one program with an argv array. Never throws for a non-zero exit; a program that
 * cannot be started at all (ENOENT) is reported as code 127 with the reason in `stderr`.
 */
export function runCommand(argv: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === '')
    return Promise.resolve({ argv: [...argv], code: 127, stdout: '', stderr: 'empty command', timedOut: false });
  return new Promise((resolve) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env, ...(options.cwd ? { cwd: options.cwd } : {}) });
    const captured = { stdout: '', stderr: '' };
    const partial = { stdout: '', stderr: '' };
    let timedOut = false;
    const feed = (which: 'stdout' | 'stderr', text: string) => {
      const room = MAX_CAPTURE - captured[which].length;
      if (room > 0) captured[which] += text.length > room ? text.slice(0, room) : text;
      if (options.onLine) {
        const lines = (partial[which] + text).split('\n');
        partial[which] = lines.pop() ?? '';
        for (const line of lines) options.onLine(line);
      }
    };
    // Decoded by the streams, so that a character split across two reads stays whole.
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (text: string) => feed('stdout', text));
    child.stderr.on('data', (text: string) => feed('stderr', text));
    let killTimer: NodeJS.Timeout | undefined;
    const terminate = () => {
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    };
    const timer =
      options.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            terminate();
          }, options.timeoutMs)
        : undefined;
    const onAbort = () => terminate();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const finish = (code: number, extraErr = '') => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (options.onLine) {
        if (partial.stdout) options.onLine(partial.stdout);
        if (partial.stderr) options.onLine(partial.stderr);
      }
      resolve({ argv: [...argv], code, stdout: captured.stdout, stderr: captured.stderr + extraErr, timedOut });
    };
    child.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ENOENT' ? 127 : 126, `${cmd}: ${e.message}`));
    child.on('close', (code, sig) => finish(code ?? (sig ? 128 + (os.constants.signals[sig] ?? 0) : 1)));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

export interface OutputTailOptions {
  /** How many of the last output lines to quote. Default 15. */
  lines?: number;
  /** Between the description and the quoted lines. Default a colon and a line break. */
  separator?: string;
}

/** The last lines of a command's output, for an error message an operator can act on. */
export function outputTail(result: CommandResult, options: OutputTailOptions = {}): string {
  const text = `${result.stdout}\n${result.stderr}`.trim();
  const tail = text
    .split('\n')
    .slice(-(options.lines ?? 15))
    .join('\n');
  const how = result.timedOut ? 'timed out' : `exited with code ${result.code}`;
  return `\`${result.argv.join(' ')}\` ${how}${tail ? `${options.separator ?? ':\n'}${tail}` : ''}`;
}

/** A program started to outlive this process; see `startDetached`. */
export interface DetachedProcess {
  readonly pid: number | undefined;
  /** How it ended (`code 1`, `signal SIGKILL`, or why it could not start), once it did; undefined while it runs. */
  exitReason(): string | undefined;
}

/**
 * Starts a program in a session of its own that keeps running when this process exits:
 * the agent's successor in a self-upgrade. Its output goes where this process's goes;
 * it gets no input. As with `runCommand`, an argv array and never a shell.
 */
export function startDetached(argv: readonly string[], options: { env?: Record<string, string | undefined> } = {}): DetachedProcess {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === '') return { pid: undefined, exitReason: () => 'empty command' };
  let exited: string | undefined;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'inherit', 'inherit'], env });
  child.on('exit', (code, signal) => {
    exited = signal ? `signal ${signal}` : `code ${code}`;
  });
  child.on('error', (e) => {
    exited = e.message;
  });
  child.unref();
  return { pid: child.pid, exitReason: () => exited };
}
