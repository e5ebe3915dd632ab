import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { outputTail, runCommand } from '../../platform/run-command.js';
import type { AptMirrorAccess } from './types.js';

/**
 * Points the host's apt at the Upshift server's signed apt repository (server/
 * apt-repository.ts), when the agent config says `aptSource: mirror`:
 *
 *   /etc/apt/keyrings/upshift-mirror.gpg            the repository's public key, fetched
 *                                                   over the agent's authenticated channel
 *   /etc/apt/sources.list.d/upshift-mirror.sources  the repository, Signed-By that key only
 *   /etc/apt/auth.conf.d/upshift-mirror.conf        the node credential as apt's password
 *                                                   (mode 0600, root's, like credential.json)
 *   /etc/apt/keyrings/upshift-mirror-ca.pem and     with a pinned CA (`--ca-file`) and https:
 *   /etc/apt/apt.conf.d/60upshift-mirror-ca         apt trusts that CA for the server's host
 *
 * then refreshes that one source's lists (`--error-on=any`: a list that cannot be fetched
 * or verified fails the step before anything is installed). Written on every apt install,
 * so a new server key or address, or a reset credential, takes effect without a step by
 * hand. The other sources of the host are left as they are.
 */
export const APT_MIRROR_SUITE = 'upshift';

export interface AptMirrorPaths {
  keyring: string;
  sources: string;
  auth: string;
  /** The pinned CA of an https server, and the apt setting that makes apt trust it for that host. */
  ca: string;
  caConf: string;
}

export function aptMirrorPaths(etcApt = '/etc/apt'): AptMirrorPaths {
  return {
    keyring: path.join(etcApt, 'keyrings', 'upshift-mirror.gpg'),
    sources: path.join(etcApt, 'sources.list.d', 'upshift-mirror.sources'),
    auth: path.join(etcApt, 'auth.conf.d', 'upshift-mirror.conf'),
    ca: path.join(etcApt, 'keyrings', 'upshift-mirror-ca.pem'),
    caConf: path.join(etcApt, 'apt.conf.d', '60upshift-mirror-ca'),
  };
}

/** The apt setting that trusts `caFile` for the server's host (and only that host), or undefined for http. */
export function mirrorCaConfig(url: string, caFile: string): string | undefined {
  const u = new URL(url);
  if (u.protocol !== 'https:') return undefined;
  return `Acquire::https::${u.hostname.replace(/^\[|\]$/g, '')}::CAInfo "${caFile}";\n`;
}

/** The deb822 source of the repository. */
export function mirrorSource(url: string, keyring: string): string {
  return ['Types: deb', `URIs: ${url}`, `Suites: ${APT_MIRROR_SUITE}`, 'Components: main', `Signed-By: ${keyring}`, ''].join('\n');
}

/**
 * The auth.conf entry: apt matches `machine` against host[:port]/path of the request, and
 * sends credentials over plain http only to an entry that names the `http://` scheme (the
 * agent's own bearer credential crosses the same connection; use https where the network
 * is not trusted).
 */
export function mirrorAuth(url: string, credential: string): string {
  const u = new URL(url);
  const scheme = u.protocol === 'http:' ? 'http://' : '';
  return `machine ${scheme}${u.host}${u.pathname.replace(/\/+$/, '')} login upshift-node password ${credential}\n`;
}

async function writeAtomic(file: string, data: string | Buffer, mode: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.upshift-new`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

export async function configureAptMirror(
  access: AptMirrorAccess,
  log: (line: string) => void,
  signal: AbortSignal,
  paths: AptMirrorPaths = aptMirrorPaths(),
): Promise<void> {
  const keyTmp = `${paths.keyring}.upshift-download`;
  await mkdir(path.dirname(paths.keyring), { recursive: true, mode: 0o755 });
  try {
    await access.fetchKey(keyTmp, signal);
    await chmod(keyTmp, 0o644);
    await rename(keyTmp, paths.keyring);
  } finally {
    await rm(keyTmp, { force: true });
  }
  await writeAtomic(paths.sources, mirrorSource(access.url, paths.keyring), 0o644);
  await writeAtomic(paths.auth, mirrorAuth(access.url, access.credential), 0o600);
  const caConf = access.caPem ? mirrorCaConfig(access.url, paths.ca) : undefined;
  if (access.caPem && caConf) {
    await writeAtomic(paths.ca, access.caPem, 0o644);
    await writeAtomic(paths.caConf, caConf, 0o644);
  } else {
    await rm(paths.caConf, { force: true });
    await rm(paths.ca, { force: true });
  }
  log(`apt source: ${access.url} ${APT_MIRROR_SUITE} main (signed-by ${paths.keyring})`);
  const argv = [
    'apt-get',
    'update',
    '-q',
    '--error-on=any',
    '-o',
    `Dir::Etc::sourcelist=${paths.sources}`,
    '-o',
    'Dir::Etc::sourceparts=-',
    '-o',
    'APT::Get::List-Cleanup=0',
  ];
  const r = await runCommand(argv, {
    timeoutMs: 300_000,
    signal,
    env: { DEBIAN_FRONTEND: 'noninteractive' },
    onLine: (l) => log(`  ${l}`),
  });
  if (r.code !== 0 || r.timedOut) throw new Error(`apt-get update from the mirror failed: ${outputTail(r)}`);
}

/**
 * What `apt-get install -s` says the install will change: package → version before (null:
 * newly installed), and the newly installed ones by name — what a rollback removes so
 * that the host's package set is what it was (e.g. `systemd` and `tini-static`, which
 * Debian's docker.io 28 pulls in where 26 had neither).
 */
export interface AptPlan {
  changes: Record<string, string | null>;
  added: string[];
}

/**
 * Reads apt's simulation (`Inst PKG [OLD] (NEW …)`, `Remv PKG [OLD]`). A package that is
 * removed and installed again in one plan (a `Remv` and a later `Inst` without `[OLD]`)
 * was there before: it keeps its old version and is not counted as added.
 */
export function parseAptSimulation(output: string): AptPlan {
  const changes: Record<string, string | null> = {};
  for (const line of output.split('\n')) {
    const inst = /^Inst (\S+) (?:\[([^\]]+)\] )?\(/.exec(line);
    if (inst?.[1]) {
      const name = inst[1].replace(/:[a-z0-9]+$/, '');
      changes[name] = inst[2] ?? changes[name] ?? null;
      continue;
    }
    const remv = /^Remv (\S+) \[([^\]]+)\]/.exec(line);
    if (remv?.[1] && remv[2]) changes[remv[1].replace(/:[a-z0-9]+$/, '')] = remv[2];
  }
  return { changes, added: Object.keys(changes).filter((p) => changes[p] === null) };
}
