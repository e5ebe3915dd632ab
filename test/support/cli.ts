import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { repoRoot, type ServerProcess, type StartOptions, startServerProcess } from './server.js';

/**
 * Runs the built `upshift` CLI as a user would: a child process with its own config
 * file (never the real ~/.config), the server and token from the environment, and
 * stdout not a terminal (pipes), so tables come without colour.
 */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const cliPath = join(repoRoot, 'bin/upshift.js');

export function cliEnv(
  server: ServerProcess | undefined,
  configFile: string,
  extra: Record<string, string | undefined> = {},
): Record<string, string> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    UPSHIFT_CONFIG_FILE: configFile,
    NO_COLOR: undefined,
    FORCE_COLOR: undefined,
    UPSHIFT_CONTEXT: undefined,
  };
  if (server) {
    env['UPSHIFT_SERVER'] = server.url;
    env['UPSHIFT_TOKEN'] = server.token;
  } else {
    env['UPSHIFT_SERVER'] = undefined;
    env['UPSHIFT_TOKEN'] = undefined;
  }
  Object.assign(env, extra);
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`upshift ${args.join(' ')} did not finish in ${timeoutMs}ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running CLI command (`events --follow`), read while it runs and stopped with SIGTERM. */
export interface BackgroundCli {
  stdout(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<CliResult>;
}

export function backgroundCli(args: string[], env: Record<string, string>): BackgroundCli {
  const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    stdout: () => stdout,
    async waitFor(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(stdout)) {
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`upshift ${args.join(' ')} never printed ${pattern}\nstdout: ${stdout}\nstderr: ${stderr}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      return stdout;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await closed;
      return { code, stdout, stderr };
    },
  };
}

/** A CLI bound to one server and one private config file. */
export class Cli {
  readonly configDir: string;
  readonly configFile: string;
  private readonly server: ServerProcess | undefined;

  constructor(server: ServerProcess | undefined) {
    this.server = server;
    this.configDir = mkdtempSync(join(tmpdir(), 'upshift-cli-'));
    this.configFile = join(this.configDir, 'config.yaml');
  }

  env(extra: Record<string, string | undefined> = {}): Record<string, string> {
    return cliEnv(this.server, this.configFile, extra);
  }

  run(args: string[], extra: Record<string, string | undefined> = {}): Promise<CliResult> {
    return runCli(args, this.env(extra));
  }

  /** Runs and parses stdout as JSON; fails the test with the output when the command did not succeed. */
  async json<T = any>(args: string[]): Promise<T> {
    const result = await this.run([...args, '-o', 'json']);
    if (result.code !== 0) throw new Error(`upshift ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  cleanup(): void {
    rmSync(this.configDir, { recursive: true, force: true });
  }
}

/** The table's rows as arrays of cells (columns are separated by 3+ spaces; cells have single spaces at most). */
export function tableRows(text: string): string[][] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => line.split(/ {3,}/));
}

/**
 * A private tmux server (its own socket) with one window: a real pseudo-terminal for
 * the live display. `stop()` kills only this server.
 */
export class Tmux {
  readonly socket = `upshift-cli-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  private tmux(args: string[]): string {
    const result = spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  }

  /** Runs `args` of the CLI in a 120×50 terminal; the window stays open after it exits, showing `EXIT=<code>`. */
  start(args: string[], env: Record<string, string>): void {
    const quoted = [process.execPath, cliPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const envArgs = Object.entries(env)
      .filter(([k]) => k.startsWith('UPSHIFT_') || k === 'PATH' || k === 'HOME')
      .flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    this.tmux(['new-session', '-d', '-x', '120', '-y', '50', ...envArgs, `${quoted}; echo EXIT=$?; sleep 120`]);
  }

  /** Types keys into the terminal (`C-c` for Ctrl-C). */
  keys(...keys: string[]): void {
    this.tmux(['send-keys', '-t', '0', ...keys]);
  }

  screen(): string {
    return this.tmux(['capture-pane', '-p', '-J', '-t', '0']);
  }

  async waitFor(predicate: (screen: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (predicate(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`the terminal never showed what was expected; it shows:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  stop(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server']);
  }
}

/**
 * A real server process and a CLI signed in to it, for one `describe`: started before its
 * tests, stopped and removed after. Read `.server` and `.cli` inside the tests.
 */
export function useServerWithCli(options: StartOptions = {}): { readonly server: ServerProcess; readonly cli: Cli } {
  let server: ServerProcess | undefined;
  let cli: Cli | undefined;
  beforeAll(async () => {
    server = await startServerProcess(options);
    cli = new Cli(server);
  });
  afterAll(async () => {
    cli?.cleanup();
    await server?.stop();
    server?.cleanup();
  });
  return {
    get server() {
      if (!server) throw new Error('the server is started in beforeAll');
      return server;
    },
    get cli() {
      if (!cli) throw new Error('the CLI is made in beforeAll');
      return cli;
    },
  };
}
