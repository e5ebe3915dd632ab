import { outputTail, runCommand } from '../../platform/run-command.js';
import type { SnapshotProvider } from './provider.js';

/** How a failed hook is quoted in the task's error: its last lines, on the same line. */
const failure = { lines: 10, separator: ': ' };

export interface CommandSnapshotOptions {
  /** The operator's program that takes a snapshot (a cloud CLI, an LVM/ZFS script, …). */
  create: readonly string[];
  /** The program that restores one; absent: restores are done by hand. */
  restore?: readonly string[] | undefined;
  /** Default 10 minutes. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 600_000;

/**
 * The operator's own snapshot hook. The programs get `UPSHIFT_SNAPSHOT_ACTION`
 * (`create`/`restore`), `UPSHIFT_SNAPSHOT_LABEL` and, for a restore, `UPSHIFT_SNAPSHOT_REF`.
 * The last non-empty line `create` prints is the ref (at most 500 characters); a silent
 * hook gets `command:<label>`. Exit code 0 means success.
 */
export class CommandSnapshotProvider implements SnapshotProvider {
  readonly name = 'command';

  constructor(private readonly options: CommandSnapshotOptions) {
    if (options.create.length === 0) throw new Error('the command snapshot provider needs a create command');
  }

  async create(label: string, log: (line: string) => void): Promise<{ ref: string }> {
    const argv = this.options.create;
    log(`snapshot: ${argv.join(' ')}`);
    const r = await runCommand(argv, {
      env: { UPSHIFT_SNAPSHOT_ACTION: 'create', UPSHIFT_SNAPSHOT_LABEL: label },
      timeoutMs: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    for (const line of `${r.stdout}${r.stderr}`.split('\n')) if (line.trim()) log(`  ${line}`);
    if (r.code !== 0 || r.timedOut) throw new Error(outputTail(r, failure));
    const last = r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .pop();
    return { ref: (last ?? `command:${label}`).slice(0, 500) };
  }

  async restore(ref: string, log: (line: string) => void): Promise<void> {
    const argv = this.options.restore;
    if (!argv || argv.length === 0) throw new Error('no restore command is configured (snapshot.restore); restore the snapshot by hand');
    log(`restore: ${argv.join(' ')}`);
    const r = await runCommand(argv, {
      env: { UPSHIFT_SNAPSHOT_ACTION: 'restore', UPSHIFT_SNAPSHOT_REF: ref },
      timeoutMs: this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    for (const line of `${r.stdout}${r.stderr}`.split('\n')) if (line.trim()) log(`  ${line}`);
    if (r.code !== 0 || r.timedOut) throw new Error(outputTail(r, failure));
  }
}
