/**
 * The cached Debian 13 root file system of the rootfs hosts, and the Debian packages their
 * upgrades install: made once by scripts/testbed/debian-rootfs.sh (debootstrap, ~1-2 min,
 * the only step that reaches the Debian archive), then read from the cache
 * (`${UPSHIFT_TESTBED_CACHE:-~/.cache/upshift-testbed}/debian13-v2`; the script prints where: its
 * directory carries the recipe's version).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from './host-agents.js';
import { run } from './hosts.js';

export const DEBIAN_ROOTFS_SCRIPT = path.join(REPO, 'scripts/testbed/debian-rootfs.sh');

/** Exact Debian versions resolved when the cache was built, and the package files of each set. */
export interface DebianRootfs {
  /** The read-only base every host's overlay starts from (Docker Engine 26.1.5 installed). */
  rootfs: string;
  /** Where the .deb files are: `<debs>/<set>/<file>`. */
  debs: string;
  docker26: string;
  cli26: string;
  docker28: string;
  cli28: string;
  containerd17: string;
  containerd2: string;
  /** What installing 26.1.5 on the bare base fetched (docker.io, docker-cli, containerd, runc, tini, …). */
  'engine-26': string[];
  /** What the 26.1.5 → 28.5.2 upgrade fetches on top of it. */
  'engine-28': string[];
  /** containerd 2 from sid. */
  'containerd-2': string[];
  builtAt: string;
  buildSeconds: number;
}

/** Builds the cache when it is missing (the script is idempotent and locked), then reads it. */
export async function loadDebianRootfs(): Promise<DebianRootfs> {
  const r = await run(['bash', DEBIAN_ROOTFS_SCRIPT], { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`scripts/testbed/debian-rootfs.sh failed (${r.code}): ${r.stderr.slice(-3000)}`);
  const manifest = r.stdout.trim().split('\n').pop() as string;
  const dir = path.dirname(manifest);
  const data = JSON.parse(await readFile(manifest, 'utf8')) as Omit<DebianRootfs, 'rootfs' | 'debs'>;
  return { ...data, rootfs: path.join(dir, 'rootfs'), debs: path.join(dir, 'debs') };
}
