import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BtrfsSnapshotProvider } from '../../src/agent/snapshots/btrfs.js';
import { CommandSnapshotProvider } from '../../src/agent/snapshots/command.js';

describe('command snapshot provider', () => {
  it('passes the label, takes the last line as the ref and runs the restore hook with it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'upshift-snapcmd-'));
    try {
      const p = new CommandSnapshotProvider({
        create: ['sh', '-c', 'echo "taking $UPSHIFT_SNAPSHOT_LABEL"; echo "vol-snap-$UPSHIFT_SNAPSHOT_LABEL"'],
        restore: ['sh', '-c', `echo "$UPSHIFT_SNAPSHOT_ACTION $UPSHIFT_SNAPSHOT_REF" > ${dir}/restored`],
      });
      const lines: string[] = [];
      expect(await p.create('upshift-u1', (l) => lines.push(l))).toEqual({ ref: 'vol-snap-upshift-u1' });
      expect(lines.join('\n')).toContain('taking upshift-u1');
      await p.restore('vol-snap-upshift-u1', () => undefined);
      expect((await readFile(path.join(dir, 'restored'), 'utf8')).trim()).toBe('restore vol-snap-upshift-u1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails with the hook’s output, and refuses a restore without a restore hook', async () => {
    const p = new CommandSnapshotProvider({ create: ['sh', '-c', 'echo quota exceeded >&2; exit 3'] });
    await expect(p.create('x', () => undefined)).rejects.toThrow(/exited with code 3: quota exceeded/);
    await expect(p.restore('r', () => undefined)).rejects.toThrow(/no restore command/);
  });
});

const isRoot = process.getuid?.() === 0;
const hasBtrfs = spawnSync('sh', ['-c', 'command -v mkfs.btrfs && command -v btrfs']).status === 0;
const ci = process.env.CI === 'true';

((isRoot && hasBtrfs) || ci ? describe : describe.skip)('btrfs snapshot provider (loop-mounted file system)', () => {
  let dir = '';
  let mnt = '';
  const sh = (...argv: string[]) => {
    const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  beforeAll(async () => {
    if (!isRoot || !hasBtrfs) throw new Error('btrfs snapshot tests need root and btrfs-progs');
    dir = await mkdtemp(path.join(os.tmpdir(), 'upshift-btrfs-'));
    mnt = path.join(dir, 'mnt');
    await mkdir(mnt);
    sh('truncate', '-s', '256M', path.join(dir, 'img'));
    sh('mkfs.btrfs', '-q', path.join(dir, 'img'));
    sh('mount', '-o', 'loop', path.join(dir, 'img'), mnt);
    sh('btrfs', 'subvolume', 'create', path.join(mnt, 'docker'));
    await writeFile(path.join(mnt, 'docker', 'state'), 'before');
  });

  afterAll(async () => {
    if (mnt) spawnSync('umount', [mnt]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('takes a read-only snapshot (idempotent per label) and restores it', async () => {
    const p = new BtrfsSnapshotProvider({ paths: [path.join(mnt, 'docker')] });
    const { ref } = await p.create('upshift-u1', () => undefined);
    expect(ref).toBe('btrfs:upshift-u1');
    expect((await p.create('upshift-u1', () => undefined)).ref).toBe(ref);
    const snap = path.join(mnt, '.upshift-snapshots', 'docker@upshift-u1');
    expect(sh('btrfs', 'property', 'get', '-ts', snap, 'ro').trim()).toBe('ro=true');

    await writeFile(path.join(mnt, 'docker', 'state'), 'after a bad upgrade');
    await p.restore(ref, () => undefined);
    expect(await readFile(path.join(mnt, 'docker', 'state'), 'utf8')).toBe('before');
    await writeFile(path.join(mnt, 'docker', 'state'), 'writable again');
    await expect(p.restore('btrfs:missing', () => undefined)).rejects.toThrow(/does not exist/);
  });
});
