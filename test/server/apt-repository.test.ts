/**
 * The mirror's apt repository without a server: real package files made with dpkg-deb
 * (control.tar compressed with xz, gzip and zstd), the index made from them, and its
 * signatures checked by gpgv, the verifier apt falls back to (sqv checks them in the
 * Debian e2e). Skipped where dpkg-deb or gpgv is missing.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ArtifactRecord } from '../../src/domain/model.js';
import { AptRepository, debControl } from '../../src/server/apt-repository.js';
import { mirrorAuth, mirrorCaConfig, mirrorSource, parseAptSimulation } from '../../src/agent/recipes/apt-mirror.js';

const tools = ['/usr/bin/dpkg-deb', '/usr/bin/gpgv'].every((t) => existsSync(t));
const suite = tools ? describe : describe.skip;

function buildDeb(dir: string, name: string, version: string, compression: string, arch = 'amd64'): string {
  const root = join(dir, `${name}-${compression}`);
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, 'usr/share/doc', name), { recursive: true });
  writeFileSync(join(root, 'usr/share/doc', name, 'README'), `${name} ${version}\n`);
  writeFileSync(
    join(root, 'DEBIAN/control'),
    `Package: ${name}\nVersion: ${version}\nArchitecture: ${arch}\nMaintainer: Upshift tests <t@upshift.invalid>\nDepends: libc6\nDescription: a test package\n a second line of the description\n`,
  );
  const out = join(dir, `${name}_${version}_${arch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', `-Z${compression}`, '--build', root, out], { stdio: 'pipe' });
  return out;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

suite('the mirror as an apt repository', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upshift-apt-'));
  const files = [
    buildDeb(dir, 'alpha', '1.0-1', 'xz'),
    buildDeb(dir, 'beta', '2:3.1~rc1-2+b1', 'gzip'),
    buildDeb(dir, 'gamma', '0.1', 'zstd', 'all'),
  ];
  const rows: ArtifactRecord[] = files.map((f, i) => {
    const bytes = readFileSync(f);
    return {
      file: f.split('/').pop() as string,
      component: 'docker',
      version: '28.5.2',
      method: 'deb',
      sha256: sha256(bytes),
      size: bytes.length,
      createdAt: `2026-11-30T10:0${i}:00.000Z`,
    };
  });
  const blobs = new Map(rows.map((r, i) => [r.sha256, files[i] as string]));
  const repoDir = join(dir, 'mirror');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the control paragraph whatever the control.tar compression, and refuses what is not a package', async () => {
    expect(await debControl(readFileSync(files[0] as string))).toMatch(/^Package: alpha\nVersion: 1\.0-1\n/);
    expect(await debControl(readFileSync(files[1] as string))).toContain('Version: 2:3.1~rc1-2+b1');
    expect(await debControl(readFileSync(files[2] as string))).toContain('Architecture: all');
    await expect(debControl(Buffer.from('!<arch>\nnot really'))).rejects.toThrow(/not a Debian package/);
    await expect(debControl(Buffer.from('hello'))).rejects.toThrow(/not a Debian package/);
  });

  it('indexes the packages per architecture and signs Release, inline and detached, with a key gpgv accepts', async () => {
    const repo = new AptRepository(repoDir, (s) => blobs.get(s) as string);
    const withOther = [...rows, { ...(rows[0] as ArtifactRecord), file: 'x.tar.gz', method: 'binary', sha256: 'f'.repeat(64) }];
    const index = await repo.index(withOther);
    expect([...index.packages.keys()]).toEqual(['amd64']);
    const packages = index.packages.get('amd64') as string;
    expect(packages.split('\n\n')).toHaveLength(3);
    expect(packages).toContain(`Package: beta\nVersion: 2:3.1~rc1-2+b1`);
    expect(packages).toContain(`Filename: pool/${rows[0]?.sha256}.deb\nSize: ${rows[0]?.size}\nSHA256: ${rows[0]?.sha256}`);
    expect(packages).toContain(' a second line of the description');
    expect([...index.pool].sort()).toEqual(rows.map((r) => r.sha256).sort());

    const sum = createHash('sha256').update(packages).digest('hex');
    expect(index.release).toContain(`Suite: upshift\n`);
    expect(index.release).toContain(`Date: Mon, 30 Nov 2026 10:02:00 UTC\n`);
    expect(index.release).toMatch(new RegExp(` ${sum} +${Buffer.byteLength(packages)} main/binary-amd64/Packages\n`));

    const check = join(dir, 'check');
    mkdirSync(check, { recursive: true });
    writeFileSync(join(check, 'key.gpg'), repo.publicKey());
    writeFileSync(join(check, 'InRelease'), index.inRelease);
    writeFileSync(join(check, 'Release'), index.release);
    writeFileSync(join(check, 'Release.gpg'), index.releaseGpg);
    const gpgv = (...args: string[]) => execFileSync('gpgv', ['--keyring', join(check, 'key.gpg'), ...args], { stdio: 'pipe' });
    expect(() => gpgv(join(check, 'InRelease'))).not.toThrow();
    expect(() => gpgv(join(check, 'Release.gpg'), join(check, 'Release'))).not.toThrow();
    // A changed Release fails both signatures.
    writeFileSync(join(check, 'Release'), index.release.replace('Suite: upshift', 'Suite: evil'));
    writeFileSync(join(check, 'InRelease'), index.inRelease.replace('Suite: upshift', 'Suite: evil'));
    expect(() => gpgv(join(check, 'Release.gpg'), join(check, 'Release'))).toThrow();
    expect(() => gpgv(join(check, 'InRelease'))).toThrow();

    // The same rows give the same signed files; the key survives a restart of the server.
    expect(await repo.index(withOther)).toBe(index);
    const again = new AptRepository(repoDir, (s) => blobs.get(s) as string);
    expect(again.publicKey().equals(repo.publicKey())).toBe(true);
    expect((await again.index(rows)).release).toBe(index.release);
  });

  it('leaves a file that is not a package out of the index, and says why', async () => {
    const bogus = join(dir, 'bogus.deb');
    writeFileSync(bogus, 'not a package');
    const row: ArtifactRecord = { ...(rows[0] as ArtifactRecord), file: 'bogus.deb', sha256: sha256(readFileSync(bogus)) };
    const repo = new AptRepository(join(dir, 'mirror2'), (s) => (s === row.sha256 ? bogus : (blobs.get(s) as string)));
    const index = await repo.index([row, rows[2] as ArtifactRecord]);
    expect(index.skipped).toEqual(['bogus.deb: not a Debian package (no control.tar member)']);
    expect(index.packages.get('amd64')).toContain('Package: gamma');
  });
});

describe('the agent’s side of the mirror’s apt repository', () => {
  it('writes a deb822 source pinned to the key and an auth.conf entry for the repository’s path', () => {
    expect(mirrorSource('http://10.200.1.1:8420/api/v1/agent/apt', '/etc/apt/keyrings/upshift-mirror.gpg')).toBe(
      'Types: deb\nURIs: http://10.200.1.1:8420/api/v1/agent/apt\nSuites: upshift\nComponents: main\nSigned-By: /etc/apt/keyrings/upshift-mirror.gpg\n',
    );
    expect(mirrorAuth('http://10.200.1.1:8420/api/v1/agent/apt', 'upa_secret')).toBe(
      'machine http://10.200.1.1:8420/api/v1/agent/apt login upshift-node password upa_secret\n',
    );
    expect(mirrorAuth('https://upshift.example:8443/api/v1/agent/apt/', 'upa_secret')).toBe(
      'machine upshift.example:8443/api/v1/agent/apt login upshift-node password upa_secret\n',
    );
  });

  it('makes apt trust a pinned CA for the server’s host only, over https', () => {
    expect(mirrorCaConfig('https://upshift.example:8443/api/v1/agent/apt', '/etc/apt/keyrings/upshift-mirror-ca.pem')).toBe(
      'Acquire::https::upshift.example::CAInfo "/etc/apt/keyrings/upshift-mirror-ca.pem";\n',
    );
    expect(mirrorCaConfig('http://10.200.1.1:8420/api/v1/agent/apt', '/x.pem')).toBeUndefined();
  });

  it('reads from apt’s simulation what an install changes, so that a rollback pins all of it back', () => {
    const out = [
      'Reading package lists...',
      'The following packages will be upgraded:',
      'Inst docker-cli [26.1.5+dfsg1-9+deb13u1+b1] (28.5.2+dfsg4-5 upshift:upshift [amd64])',
      'Inst docker.io [26.1.5+dfsg1-9+deb13u1+b1] (28.5.2+dfsg4-5 upshift:upshift [amd64]) []',
      'Remv tini [0.19.0-3+b8]',
      'Inst tini-static (0.19.0-6+b2 upshift:upshift [amd64])',
      'Conf docker.io (28.5.2+dfsg4-5 upshift:upshift [amd64])',
    ].join('\n');
    expect(parseAptSimulation(out).changes).toEqual({
      'docker-cli': '26.1.5+dfsg1-9+deb13u1+b1',
      'docker.io': '26.1.5+dfsg1-9+deb13u1+b1',
      tini: '0.19.0-3+b8',
      'tini-static': null,
    });
  });

  it('names the packages an install adds that were not installed before, which a rollback removes', () => {
    // What apt-get install -s printed on a Debian 13 host with Docker Engine 26.1.5 for docker.io 28.5.2.
    const out = [
      'NOTE: This is only a simulation!',
      'The following NEW packages will be installed:',
      '  libapparmor1 libsystemd-shared systemd tini-static',
      'Remv tini [0.19.0-3+b8] [docker.io:amd64 ]',
      'Inst libapparmor1:amd64 (4.1.0-1 upshift:upshift [amd64])',
      'Inst libsystemd-shared:amd64 (257.13-1~deb13u1 upshift:upshift [amd64])',
      'Inst systemd (257.13-1~deb13u1 upshift:upshift [amd64])',
      'Inst tini-static (0.19.0-6+b2 upshift:upshift [amd64])',
      'Inst docker.io [26.1.5+dfsg1-9+deb13u1+b1] (28.5.2+dfsg4-5 upshift:upshift [amd64]) []',
      'Conf systemd (257.13-1~deb13u1 upshift:upshift [amd64])',
      'Conf docker.io (28.5.2+dfsg4-5 upshift:upshift [amd64])',
    ].join('\n');
    const plan = parseAptSimulation(out);
    expect(plan.added).toEqual(['libapparmor1', 'libsystemd-shared', 'systemd', 'tini-static']);
    expect(plan.changes['tini']).toBe('0.19.0-3+b8');
    expect(plan.changes['docker.io']).toBe('26.1.5+dfsg1-9+deb13u1+b1');
    // Removed and installed again in one plan: it was there before, so it is not added.
    const again = parseAptSimulation(['Remv runc [1.1.15+ds1-2+b4]', 'Inst runc (1.3.0+ds1-1 upshift:upshift [amd64])'].join('\n'));
    expect(again).toEqual({ changes: { runc: '1.1.15+ds1-2+b4' }, added: [] });
    // Nothing to do: nothing added, nothing changed.
    expect(parseAptSimulation('0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n')).toEqual({ changes: {}, added: [] });
  });
});
