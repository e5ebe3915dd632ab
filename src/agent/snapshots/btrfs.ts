import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { outputTail, runCommand } from '../../platform/run-command.js';
import type { SnapshotProvider } from './provider.js';

export interface BtrfsSnapshotOptions {
  /** Subvolumes to snapshot (e.g. the one holding /var/lib/docker). */
  paths: readonly string[];
  /** Where snapshots go; default `.upshift-snapshots` beside each path (same file system). */
  directory?: string | undefined;
}

const LABEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/;

/** How a failed btrfs command is quoted in the task's error: its last lines, on the same line. */
const failure = { lines: 10, separator: ': ' };

const btrfs = (args: string[], timeoutMs: number) => runCommand(['btrfs', ...args], { timeoutMs });

/**
 * Read-only btrfs subvolume snapshots of the configured paths: `<dir>/<name>@<label>`.
 * Creation is instant and atomic per subvolume. Restore makes a writable snapshot of the
 * read-only one, moves the live subvolume aside (`<path>.replaced-<time>`, kept for the
 * operator to delete) and renames the copy into place.
 */
export class BtrfsSnapshotProvider implements SnapshotProvider {
  readonly name = 'btrfs';

  constructor(private readonly options: BtrfsSnapshotOptions) {
    if (options.paths.length === 0) throw new Error('btrfs snapshots need at least one path');
  }

  snapshotPath(subvolume: string, label: string): string {
    const dir = this.options.directory ?? path.join(path.dirname(subvolume), '.upshift-snapshots');
    return path.join(dir, `${path.basename(subvolume)}@${label}`);
  }

  async create(label: string, log: (line: string) => void): Promise<{ ref: string }> {
    if (!LABEL.test(label)) throw new Error(`invalid snapshot label ${JSON.stringify(label)}`);
    for (const p of this.options.paths) {
      const snap = this.snapshotPath(p, label);
      const existing = await btrfs(['subvolume', 'show', snap], 60_000);
      if (existing.code === 0) {
        log(`${snap} exists already (taken earlier for this label)`);
        continue;
      }
      await mkdir(path.dirname(snap), { recursive: true });
      const r = await btrfs(['subvolume', 'snapshot', '-r', p, snap], 120_000);
      if (r.code !== 0 || r.timedOut) throw new Error(outputTail(r, failure));
      log(`read-only snapshot of ${p}: ${snap}`);
    }
    return { ref: `btrfs:${label}` };
  }

  async restore(ref: string, log: (line: string) => void): Promise<void> {
    const label = ref.startsWith('btrfs:') ? ref.slice('btrfs:'.length) : ref;
    if (!LABEL.test(label)) throw new Error(`invalid btrfs snapshot ref ${JSON.stringify(ref)}`);
    for (const p of this.options.paths) {
      const snap = this.snapshotPath(p, label);
      const show = await btrfs(['subvolume', 'show', snap], 60_000);
      if (show.code !== 0 || show.timedOut) throw new Error(`snapshot ${snap} does not exist: ${outputTail(show, failure)}`);
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    for (const p of this.options.paths) {
      const snap = this.snapshotPath(p, label);
      const incoming = `${p}.restoring-${stamp}`;
      const r = await btrfs(['subvolume', 'snapshot', snap, incoming], 120_000);
      if (r.code !== 0 || r.timedOut) throw new Error(outputTail(r, failure));
      const aside = `${p}.replaced-${stamp}`;
      await rename(p, aside);
      await rename(incoming, p);
      log(`${p} restored from ${snap}; the replaced subvolume is ${aside}`);
    }
  }
}
