import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import type { ArtifactRecord } from '../domain/model.js';
import { OpenPgpSigner } from './openpgp.js';

/**
 * The artifact mirror's `.deb` files as a signed apt repository, so that a host's apt
 * resolves and installs the catalog's packages (`apt-get install docker.io=VERSION`) from
 * the Upshift server and from nothing else:
 *
 *   <base>/dists/upshift/{InRelease,Release,Release.gpg}
 *   <base>/dists/upshift/main/binary-<arch>/Packages
 *   <base>/pool/<sha256>.deb
 *   <base>/key.gpg                      the public key a host's Signed-By names
 *
 * Why signed rather than `[trusted=yes]`: agents reach the server over the network (a test
 * host's bridge already is one), and apt runs the maintainer scripts of what it installs
 * as root: an unsigned index would let anyone on the path choose the packages. The key is
 * the server's own (RSA 3072, made on first use, `<artifactDir>/apt-signing-key.json`,
 * mode 0600; link(2) makes its creation atomic); agents fetch its public half over their
 * authenticated channel (the node credential, and the pinned CA where there is one), so
 * trusting it needs no step by hand.
 *
 * The index is made from the mirror's rows with method `deb`: each file's control
 * paragraph is read from the package once (its `control.tar.{xz,gz,zst}`) and cached by
 * sha256; Packages and Release are then pure functions of the rows, so the signed files
 * are cached until the mirror changes. Release's `Date` is the newest upload's time, so
 * the same mirror always gives the same Release.
 */
export const APT_SUITE = 'upshift';
export const APT_COMPONENT = 'main';

export interface AptIndex {
  packages: Map<string, string>;
  release: string;
  inRelease: string;
  releaseGpg: string;
  /** sha256 of each pool file (`<sha256>.deb`) the index names. */
  pool: Set<string>;
  /** Files left out of the index, and why. */
  skipped: string[];
}

interface KeyFile {
  created: number;
  userId: string;
  pem: string;
}

/** Reads an `ar` archive's members (what a .deb is) until `want` matches one. */
function arMember(deb: Buffer, want: (name: string) => boolean): { name: string; data: Buffer } | undefined {
  if (deb.subarray(0, 8).toString('latin1') !== '!<arch>\n') return undefined;
  let at = 8;
  while (at + 60 <= deb.length) {
    const name = deb
      .subarray(at, at + 16)
      .toString('latin1')
      .trim()
      .replace(/\/$/, '');
    const size = Number.parseInt(
      deb
        .subarray(at + 48, at + 58)
        .toString('latin1')
        .trim(),
      10,
    );
    if (!Number.isFinite(size) || size < 0) return undefined;
    const data = deb.subarray(at + 60, at + 60 + size);
    if (want(name)) return { name, data };
    at += 60 + size + (size % 2);
  }
  return undefined;
}

/** One file of a tar archive, by name (`./control` or `control`). */
function tarFile(tar: Buffer, wanted: string): Buffer | undefined {
  let at = 0;
  while (at + 512 <= tar.length) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) return undefined;
    const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = Number.parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    if (name.replace(/^\.\//, '') === wanted) return tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return undefined;
}

/** xz has no decoder in Node: the `xz` program (xz-utils, on every Debian) decodes it. */
function unxz(data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('xz', ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new Error(`xz is needed to read xz-compressed packages: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`xz -dc: ${err.trim() || `exit ${code}`}`))));
    child.stdin.end(data);
  });
}

/** The control paragraph of a Debian package, as its `control` file has it. */
export async function debControl(deb: Buffer): Promise<string> {
  const member = arMember(deb, (n) => n.startsWith('control.tar'));
  if (!member) throw new Error('not a Debian package (no control.tar member)');
  let tar: Buffer;
  if (member.name === 'control.tar') tar = member.data;
  else if (member.name === 'control.tar.gz') tar = gunzipSync(member.data);
  else if (member.name === 'control.tar.zst') tar = zstdDecompressSync(member.data);
  else if (member.name === 'control.tar.xz') tar = await unxz(member.data);
  else throw new Error(`unknown control member ${member.name}`);
  const control = tarFile(tar, 'control');
  if (!control) throw new Error('the package has no control file');
  const text = control.toString('utf8').replace(/\n+$/, '');
  for (const field of ['Package', 'Version', 'Architecture']) {
    if (!new RegExp(`^${field}: \\S`, 'm').test(text)) throw new Error(`the package's control file has no ${field}`);
  }
  return text;
}

function field(control: string, name: string): string {
  return new RegExp(`^${name}: *(.*)$`, 'm').exec(control)?.[1]?.trim() ?? '';
}

/** RFC 2822 in UTC, as Debian's Release files write it. */
function releaseDate(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, 'UTC');
}

export class AptRepository {
  private signer: OpenPgpSigner | undefined;
  private cached: { key: string; index: AptIndex } | undefined;
  private readonly controlDir: string;

  constructor(
    private readonly artifactDir: string,
    private readonly blobPath: (sha256: string) => string,
  ) {
    this.controlDir = join(artifactDir, 'apt', 'control');
  }

  /** The server's signing key, made on first use and kept in the artifact directory. */
  private key(): OpenPgpSigner {
    if (this.signer) return this.signer;
    const file = join(this.artifactDir, 'apt-signing-key.json');
    const load = () => {
      const k = JSON.parse(readFileSync(file, 'utf8')) as KeyFile;
      return OpenPgpSigner.fromPem(k.pem, k.created, k.userId);
    };
    if (existsSync(file)) {
      this.signer = load();
      return this.signer;
    }
    const created = Math.floor(Date.now() / 1000);
    const userId = `Upshift artifact mirror (apt) <apt@upshift.invalid>`;
    const { signer, pem } = OpenPgpSigner.generate(userId, created);
    mkdirSync(this.artifactDir, { recursive: true, mode: 0o700 });
    try {
      // Written whole with 'wx': of two servers sharing the artifact directory that both
      // made a key, the first one's is kept and the other reads it, so all sign alike.
      const tmp = `${file}.${process.pid}.new`;
      writeFileSync(tmp, JSON.stringify({ created, userId, pem } satisfies KeyFile), { mode: 0o600 });
      try {
        linkSync(tmp, file);
      } finally {
        rmSync(tmp, { force: true });
      }
      this.signer = signer;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      this.signer = load();
    }
    return this.signer;
  }

  /** The public key (binary OpenPGP), for a host's `Signed-By`. */
  publicKey(): Buffer {
    return this.key().publicKey();
  }

  /** The control paragraph of a mirrored .deb, read once and cached by sha256. */
  private async control(row: ArtifactRecord): Promise<string> {
    const cache = join(this.controlDir, row.sha256);
    if (existsSync(cache)) return readFileSync(cache, 'utf8');
    const text = await debControl(await readFile(this.blobPath(row.sha256)));
    mkdirSync(this.controlDir, { recursive: true, mode: 0o700 });
    writeFileSync(cache, text, { mode: 0o600 });
    return text;
  }

  /** The repository's index for the mirror's rows (cached until they change). */
  async index(rows: readonly ArtifactRecord[]): Promise<AptIndex> {
    const debs = rows.filter((r) => r.method === 'deb').sort((a, b) => a.sha256.localeCompare(b.sha256));
    const key = debs.map((r) => `${r.sha256}:${r.createdAt}`).join(',');
    if (this.cached?.key === key) return this.cached.index;
    const skipped: string[] = [];
    const entries: { arch: string; text: string; sha256: string }[] = [];
    for (const row of debs) {
      if (entries.some((e) => e.sha256 === row.sha256)) continue;
      try {
        const control = await this.control(row);
        const text = `${control}\nFilename: pool/${row.sha256}.deb\nSize: ${row.size}\nSHA256: ${row.sha256}\n`;
        entries.push({ arch: field(control, 'Architecture'), text, sha256: row.sha256 });
      } catch (e) {
        skipped.push(`${row.file}: ${(e as Error).message}`);
      }
    }
    this.pruneControlCache(new Set(debs.map((r) => r.sha256)));
    const concrete = [...new Set(entries.map((e) => e.arch).filter((a) => a !== 'all'))].sort();
    const archs = concrete.length > 0 ? concrete : ['amd64', 'arm64'];
    const packages = new Map<string, string>();
    for (const arch of archs) {
      packages.set(
        arch,
        entries
          .filter((e) => e.arch === arch || e.arch === 'all')
          .map((e) => e.text)
          .join('\n'),
      );
    }
    const newest = Math.max(0, ...debs.map((r) => Date.parse(r.createdAt)).filter(Number.isFinite));
    const hashes = archs.map((arch) => {
      const body = Buffer.from(packages.get(arch) ?? '', 'utf8');
      const sum = createHash('sha256').update(body).digest('hex');
      return ` ${sum} ${String(body.length).padStart(8)} ${APT_COMPONENT}/binary-${arch}/Packages`;
    });
    const release = [
      'Origin: Upshift',
      'Label: Upshift artifact mirror',
      `Suite: ${APT_SUITE}`,
      `Codename: ${APT_SUITE}`,
      `Date: ${releaseDate(newest)}`,
      `Architectures: ${archs.join(' ')}`,
      `Components: ${APT_COMPONENT}`,
      'Description: the Debian packages uploaded to this Upshift server',
      'SHA256:',
      ...hashes,
      '',
    ].join('\n');
    const signer = this.key();
    const signedAt = Math.floor(Date.now() / 1000);
    const index: AptIndex = {
      packages,
      release,
      inRelease: signer.clearsign(release, signedAt),
      releaseGpg: signer.detached(Buffer.from(release, 'utf8'), signedAt),
      pool: new Set(entries.map((e) => e.sha256)),
      skipped,
    };
    this.cached = { key, index };
    return index;
  }

  private pruneControlCache(keep: Set<string>): void {
    for (const name of existsSync(this.controlDir) ? readdirSync(this.controlDir) : []) {
      if (!keep.has(name)) rmSync(join(this.controlDir, name), { force: true });
    }
  }
}
