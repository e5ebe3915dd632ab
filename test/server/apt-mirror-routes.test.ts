/**
 * The mirror's apt repository through the real server, as apt reads it: a joined node's
 * credential as the basic-auth password (what the agent writes to auth.conf.d), the signed
 * InRelease checked with gpgv against the key the server hands out, Packages naming the
 * uploaded package, the pool file byte for byte; refused without a node credential.
 * (apt itself reads it on real Debian hosts in test/hosts/debian.e2e.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, startServerProcess } from '../support/server.js';

const tools = ['/usr/bin/dpkg-deb', '/usr/bin/gpgv'].every((t) => existsSync(t));
const suite = tools ? describe : describe.skip;

function buildDeb(dir: string): string {
  const root = join(dir, 'pkg');
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  writeFileSync(
    join(root, 'DEBIAN/control'),
    'Package: upshift-probe\nVersion: 26.1.5-1\nArchitecture: amd64\nMaintainer: Upshift tests <t@upshift.invalid>\nDescription: a test package\n',
  );
  const out = join(dir, 'upshift-probe_26.1.5-1_amd64.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, out], { stdio: 'pipe' });
  return out;
}

suite('the mirror’s apt repository over HTTP', () => {
  let s: ServerProcess;
  let credential = '';
  const dir = mkdtempSync(join(tmpdir(), 'upshift-apt-routes-'));

  beforeAll(async () => {
    s = await startServerProcess();
    const created = await s.api('/api/v1/clusters', { body: { name: 'debian', kind: 'hosts' } });
    expect(created.status).toBe(201);
    const join_ = await fetch(`${s.url}/api/v1/agent/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        joinToken: created.body.joinToken,
        name: 'deb-1',
        protocol: 1,
        facts: {
          hostname: 'deb-1',
          os: 'Debian GNU/Linux 13 (trixie)',
          arch: 'amd64',
          agentVersion: '1.1.0',
          versions: {},
          engineReachable: false,
        },
      }),
    });
    expect(join_.status).toBe(201);
    credential = ((await join_.json()) as { credential: string }).credential;
  });
  afterAll(async () => {
    await s?.stop();
    s?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const basic = (password: string) => `Basic ${Buffer.from(`upshift-node:${password}`).toString('base64')}`;
  const get = (path: string, authorization?: string) =>
    fetch(`${s.url}/api/v1/agent/apt${path}`, { headers: authorization ? { authorization } : {} });

  it('serves a signed index of the uploaded packages and their files to a joined node, and nothing to anyone else', async () => {
    const deb = buildDeb(dir);
    const bytes = readFileSync(deb);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const put = await fetch(`${s.url}/api/v1/artifacts/docker/26.1.5/upshift-probe_26.1.5-1_amd64.deb?method=deb&sha256=${sha}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(put.status).toBe(201);

    for (const p of ['/dists/upshift/InRelease', '/key.gpg', `/pool/${sha}.deb`]) {
      expect((await get(p)).status, p).toBe(401);
      expect((await get(p, basic('upa_not-a-real-credential-at-all'))).status, p).toBe(401);
      expect((await get(p, `Bearer ${s.token}`)).status, p).toBe(401);
    }

    const key = Buffer.from(await (await get('/key.gpg', basic(credential))).arrayBuffer());
    const inRelease = await get('/dists/upshift/InRelease', basic(credential));
    expect(inRelease.status).toBe(200);
    const text = await inRelease.text();
    const check = join(dir, 'check');
    mkdirSync(check, { recursive: true });
    writeFileSync(join(check, 'key.gpg'), key);
    writeFileSync(join(check, 'InRelease'), text);
    expect(() => execFileSync('gpgv', ['--keyring', join(check, 'key.gpg'), join(check, 'InRelease')], { stdio: 'pipe' })).not.toThrow();

    const packages = await (await get('/dists/upshift/main/binary-amd64/Packages', basic(credential))).text();
    expect(packages).toContain('Package: upshift-probe\nVersion: 26.1.5-1\n');
    expect(packages).toContain(`Filename: pool/${sha}.deb\nSize: ${bytes.length}\nSHA256: ${sha}`);
    const sum = createHash('sha256').update(packages).digest('hex');
    expect(text).toContain(` ${sum} `);
    // The bearer credential, as the agent's own client sends it, works too.
    const pool = await get(`/pool/${sha}.deb`, `Bearer ${credential}`);
    expect(pool.status).toBe(200);
    expect(
      createHash('sha256')
        .update(Buffer.from(await pool.arrayBuffer()))
        .digest('hex'),
    ).toBe(sha);

    expect((await get(`/pool/${'0'.repeat(64)}.deb`, basic(credential))).status).toBe(404);
    expect((await get('/dists/upshift/main/binary-s390x/Packages', basic(credential))).status).toBe(404);
    expect((await get('/pool/..%2f..%2fetc%2fpasswd', basic(credential))).status).toBe(422);
  });
});
