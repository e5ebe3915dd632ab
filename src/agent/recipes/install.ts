import { constants as fsConstants, statfsSync } from 'node:fs';
import { access, lstat, mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { outputTail, runCommand } from '../../platform/run-command.js';

/**
 * The install methods a recipe can use. `binary`: an archive (tar, optionally compressed)
 * whose root holds `bin/…` is unpacked into `<installRoot>/versions/<version>`, and
 * `<installRoot>/current` is flipped to it with one rename(2) of a symlink, so the host
 * runs the old or the new tree, never a mix; the previous tree stays for a rollback.
 * `deb`: the mirror's package files, checked by sha256, installed together by apt-get
 * (which drives dpkg and resolves what they need from the host's sources).
 * `apt`: pinned `PKG=VERSION` with apt-get, which resolves the dependencies, from the
 * node's repositories or the server's signed apt repository (apt-mirror.ts).
 */

/** Free bytes for unprivileged use on the file system holding `p` (or its nearest existing parent). */
export function freeBytes(p: string): number {
  let dir = p;
  for (;;) {
    try {
      const s = statfsSync(dir);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) throw new Error(`cannot stat the file system of ${p}`);
      dir = parent;
    }
  }
}

/** The directory name `current` points at (relative to `versions/`), or undefined. */
export async function currentTarget(installRoot: string): Promise<string | undefined> {
  try {
    return await readlink(path.join(installRoot, 'current'));
  } catch {
    return undefined;
  }
}

export function versionDir(installRoot: string, version: string): string {
  return path.join(installRoot, 'versions', version);
}

/**
 * Unpacks `archive` into `<installRoot>/versions/<version>` (through a staging directory,
 * renamed into place once complete) and checks that it holds `required` executables.
 * An existing tree of that version that `current` does not point at is replaced.
 */
export async function unpackBinary(
  archive: string,
  installRoot: string,
  version: string,
  required: readonly string[],
  log: (l: string) => void,
): Promise<string> {
  const versions = path.join(installRoot, 'versions');
  await mkdir(versions, { recursive: true });
  const staging = path.join(versions, `.${version}.staging`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging);
  log(`unpacking ${path.basename(archive)} into ${staging}`);
  const r = await runCommand(['tar', '--no-same-owner', '-xf', archive, '-C', staging], { timeoutMs: 600_000 });
  if (r.code !== 0) {
    await rm(staging, { recursive: true, force: true });
    throw new Error(`the archive could not be unpacked: ${outputTail(r)}`);
  }
  for (const rel of required) {
    try {
      await access(path.join(staging, rel), fsConstants.X_OK);
    } catch {
      await rm(staging, { recursive: true, force: true });
      throw new Error(`the archive has no executable ${rel}; a binary archive holds bin/<programs> at its root`);
    }
  }
  const target = versionDir(installRoot, version);
  const cur = await currentTarget(installRoot);
  if (cur !== undefined && path.resolve(versions, '..', cur) === target) {
    await rm(staging, { recursive: true, force: true });
    log(`${target} is the current tree already; kept as is`);
    return target;
  }
  await rm(target, { recursive: true, force: true });
  await rename(staging, target);
  return target;
}

/** Points `<installRoot>/current` at `versions/<version>` atomically; returns the previous target. */
export async function flipCurrent(installRoot: string, version: string): Promise<string | undefined> {
  const previous = await currentTarget(installRoot);
  await flipCurrentTo(installRoot, path.join('versions', version));
  return previous;
}

/** Points `current` at `target` (relative to the install root, as readlink returned it). */
export async function flipCurrentTo(installRoot: string, target: string): Promise<void> {
  const link = path.join(installRoot, 'current');
  const tmp = path.join(installRoot, `.current.${process.pid}.${Date.now()}`);
  await symlink(target, tmp);
  try {
    const st = await lstat(link).catch(() => undefined);
    if (st && !st.isSymbolicLink()) throw new Error(`${link} exists and is not a symlink; move it away so that Upshift can manage it`);
    await rename(tmp, link);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Removes version trees other than the current one and `keep`. */
export async function pruneVersions(installRoot: string, keep: readonly string[], log: (l: string) => void): Promise<void> {
  const versions = path.join(installRoot, 'versions');
  const keepAbs = new Set(keep.map((k) => path.resolve(installRoot, k)));
  const cur = await currentTarget(installRoot);
  if (cur) keepAbs.add(path.resolve(installRoot, cur));
  for (const name of await readdir(versions).catch(() => [] as string[])) {
    const p = path.join(versions, name);
    if (keepAbs.has(p)) continue;
    log(`removing the old tree ${p}`);
    await rm(p, { recursive: true, force: true });
  }
}

const aptEnv = { DEBIAN_FRONTEND: 'noninteractive', APT_LISTCHANGES_FRONTEND: 'none' };
const aptOptions = ['-y', '-q', '--allow-downgrades', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'];

/** The package name inside a .deb file. */
export async function debPackageName(file: string): Promise<string> {
  const r = await runCommand(['dpkg-deb', '-f', file, 'Package'], { timeoutMs: 30_000 });
  const name = r.stdout.trim();
  if (r.code !== 0 || !/^[a-z0-9][a-z0-9+.-]+$/.test(name))
    throw new Error(`${path.basename(file)} is not a Debian package: ${outputTail(r)}`);
  return name;
}

/** Installed versions of `packages` (absent ones are left out). */
export async function installedPackageVersions(packages: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of packages) {
    const r = await runCommand(['dpkg-query', '-W', '-f=${Status}\t${Version}', p], { timeoutMs: 30_000 });
    const [status, version] = r.stdout.split('\t');
    if (r.code === 0 && status?.endsWith(' installed') && version) out[p] = version;
  }
  return out;
}

/**
 * Of `packages` (ones an install adds), those dpkg has no trace of: a rollback purges them.
 * The others left configuration files behind from an earlier removal (`config-files`),
 * which an admin may want kept: a rollback only removes those, as they were.
 */
export async function packagesToPurge(packages: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of packages) {
    const r = await runCommand(['dpkg-query', '-W', '-f=${Status}', p], { timeoutMs: 30_000 });
    if (r.code !== 0 || !r.stdout.includes('config-files')) out.push(p);
  }
  return out;
}

/** `dpkg --purge` of packages apt has removed already: their configuration files go too. */
export async function dpkgPurge(packages: readonly string[], log: (l: string) => void, timeoutMs = 300_000): Promise<void> {
  if (packages.length === 0) return;
  const argv = ['dpkg', '--purge', ...packages];
  log(`purge: ${argv.join(' ')}`);
  const r = await runCommand(argv, { timeoutMs, env: aptEnv, onLine: (l) => log(`  ${l}`) });
  if (r.code !== 0 || r.timedOut) throw new Error(outputTail(r));
}

/** What `apt-get install TARGETS` would do (`-s`, nothing changed); throws with apt's own words when it cannot. */
export async function aptSimulate(targets: readonly string[], timeoutMs = 300_000): Promise<string> {
  const r = await runCommand(['apt-get', 'install', '-s', ...aptOptions, ...targets], { timeoutMs, env: aptEnv });
  if (r.code !== 0 || r.timedOut) throw new Error(`apt cannot install ${targets.join(' ')}: ${outputTail(r)}`);
  return r.stdout;
}

/** The package file dpkg names `<pkg>_<version>_<arch>.deb` in `dir`, if it is there. */
export async function cachedDeb(dir: string, pkg: string, version: string): Promise<string | undefined> {
  const prefix = `${pkg}_${version.replace(/:/g, '%3a')}_`;
  const names = await readdir(dir).catch(() => [] as string[]);
  const name = names.find((n) => n.startsWith(prefix) && n.endsWith('.deb'));
  return name === undefined ? undefined : path.join(dir, name);
}

/** `apt-get install` of .deb files or `PKG=VERSION` pins; streams apt's output to the log. */
export async function aptInstall(targets: readonly string[], log: (l: string) => void, timeoutMs = 900_000): Promise<void> {
  const argv = ['apt-get', 'install', ...aptOptions, ...targets];
  log(`install: ${argv.join(' ')}`);
  const r = await runCommand(argv, { timeoutMs, env: aptEnv, onLine: (l) => log(`  ${l}`) });
  if (r.code !== 0 || r.timedOut) throw new Error(outputTail(r));
}
