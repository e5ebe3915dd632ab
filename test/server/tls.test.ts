import { spawnSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, startServerProcess, type ServerProcess } from '../support/server.js';
import { selfSignedCert } from '../support/tls.js';

/**
 * `--tls-cert/--tls-key`: the server speaks HTTPS only; the CLI (and the agent, the same
 * Node runtime) verifies it, trusting a private CA through NODE_EXTRA_CA_CERTS.
 */
describe('TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upshift-tls-'));
  let s: ServerProcess;
  beforeAll(async () => {
    selfSignedCert('cert', dir);
    renameSync(join(dir, 'cert.key'), join(dir, 'key.pem'));
    s = await startServerProcess({
      args: ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')],
      env: { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
      scheme: 'https',
    });
  });
  afterAll(async () => {
    await s?.stop();
    s?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (env: Record<string, string>) =>
    spawnSync(process.execPath, [join(repoRoot, 'bin/upshift.js'), 'cluster', 'list', '-o', 'json'], {
      env: { ...process.env, UPSHIFT_SERVER: s.url, UPSHIFT_TOKEN: s.token, ...env },
      encoding: 'utf8',
    });

  it('is verified by the CLI with the CA, and refused without it', () => {
    expect(s.url).toMatch(/^https:/);
    const trusted = cli({ NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') });
    expect(trusted.status, trusted.stderr).toBe(0);
    expect(JSON.parse(trusted.stdout)).toEqual({ items: [] });
    const untrusted = cli({ NODE_EXTRA_CA_CERTS: '' });
    expect(untrusted.status).toBe(6);
    expect(untrusted.stderr).toMatch(/cannot reach the Upshift server.*(certificate|self.signed)/i);
  });

  it('marks the console session cookie Secure', async () => {
    const res = await s.api('/api/v1/session', { body: { token: s.token }, token: null });
    expect(res.status).toBe(200);
    expect(String(res.headers['set-cookie'])).toMatch(/upshift_session=.*HttpOnly; SameSite=Strict.*; Secure/);
  });
});
