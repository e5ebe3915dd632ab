import { spawn } from 'node:child_process';

/**
 * A snapshot provider takes a restorable copy of a node's state before an upgrade and can
 * put it back. One file per provider (`btrfs.ts`, `command.ts`); the agent picks one from
 * its local configuration and runs it for the `snapshot` recipe. `create` is idempotent
 * per label: asked again for a label it already took, it answers with the same ref.
 */
export interface SnapshotProvider {
  readonly name: string;
  /** Takes the snapshot; resolves with the handle to restore from. */
  create(label: string, log: (line: string) => void): Promise<{ ref: string }>;
  /** Puts the snapshot `ref` back. The caller stops the services that use the paths first. */
  restore(ref: string, log: (line: string) => void): Promise<void>;
}

export interface ProviderCommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with an argv array (no shell); never throws for an exit code. */
export function runProgram(argv: readonly string[], env: Record<string, string> = {}, timeoutMs = 600_000): Promise<ProviderCommandResult> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.resolve({ code: 127, stdout: '', stderr: 'empty command' });
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout: '', stderr: `${cmd}: ${e.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

export function describeFailure(argv: readonly string[], r: ProviderCommandResult): string {
  const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-10).join('\n');
  return `\`${argv.join(' ')}\` exited with code ${r.code}${tail ? `: ${tail}` : ''}`;
}
