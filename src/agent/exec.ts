import { spawn } from 'node:child_process';
import os from 'node:os';

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
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  /** Receives every complete output line (stdout and stderr) as it arrives. */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

const MAX_CAPTURE = 256 * 1024;

/**
 * Runs one program with an argv array: never through a shell, so nothing a server sends
 * can become shell text. Never throws for a non-zero exit; a program that cannot be
 * started at all (ENOENT) is reported as code 127 with the reason in `stderr`.
 */
export function runCommand(argv: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === '')
    return Promise.resolve({ argv: [...argv], code: 127, stdout: '', stderr: 'empty command', timedOut: false });
  return new Promise((resolve) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env, ...(options.cwd ? { cwd: options.cwd } : {}) });
    const out: string[] = [];
    const err: string[] = [];
    let outSize = 0;
    let errSize = 0;
    let timedOut = false;
    const partial = { stdout: '', stderr: '' };
    const feed = (which: 'stdout' | 'stderr', chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (which === 'stdout' && outSize < MAX_CAPTURE) {
        out.push(text);
        outSize += text.length;
      }
      if (which === 'stderr' && errSize < MAX_CAPTURE) {
        err.push(text);
        errSize += text.length;
      }
      if (options.onLine) {
        const lines = (partial[which] + text).split('\n');
        partial[which] = lines.pop() ?? '';
        for (const line of lines) options.onLine(line);
      }
    };
    child.stdout.on('data', (c: Buffer) => feed('stdout', c));
    child.stderr.on('data', (c: Buffer) => feed('stderr', c));
    let killTimer: NodeJS.Timeout | undefined;
    const terminate = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
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
      resolve({ argv: [...argv], code, stdout: out.join(''), stderr: err.join('') + extraErr, timedOut });
    };
    child.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ENOENT' ? 127 : 126, `${cmd}: ${e.message}`));
    child.on('close', (code, sig) => finish(code ?? (sig ? 128 + (os.constants.signals[sig] ?? 0) : 1)));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** The last lines of a command's output, for an error message an operator can act on. */
export function outputTail(result: CommandResult, lines = 15): string {
  const text = `${result.stdout}\n${result.stderr}`.trim();
  const tail = text.split('\n').slice(-lines).join('\n');
  const how = result.timedOut ? 'timed out' : `exited with code ${result.code}`;
  return `\`${result.argv.join(' ')}\` ${how}${tail ? `:\n${tail}` : ''}`;
}
