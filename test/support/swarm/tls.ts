/**
 * Certificates for Engine APIs served on TCP with TLS, made with openssl the way Docker's
 * "Protect the Docker daemon socket" guide does: one CA, a server certificate per manager
 * (its address as IP SAN, so clients verify it) and one client certificate
 * (extendedKeyUsage clientAuth) that the daemons require (`tlsverify`).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../testbed/hosts.js';

export interface EngineTls {
  /** PEM texts the control plane is given. */
  ca: string;
  clientCert: string;
  clientKey: string;
  /** Files for each daemon's daemon.json, by address. */
  servers: Map<string, { cert: string; key: string }>;
  caFile: string;
}

async function openssl(args: string[]): Promise<void> {
  const r = await run(['openssl', ...args], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

async function signed(dir: string, name: string, subject: string, extensions: string): Promise<{ cert: string; key: string }> {
  const key = path.join(dir, `${name}-key.pem`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}-cert.pem`);
  const ext = path.join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-subj', subject, '-out', csr]);
  await openssl(
    ['x509', '-req', '-days', '2', '-sha256', '-in', csr, '-CA', path.join(dir, 'ca.pem'), '-CAkey', path.join(dir, 'ca-key.pem')].concat([
      '-CAcreateserial',
      '-extfile',
      ext,
      '-out',
      cert,
    ]),
  );
  return { cert, key };
}

export async function makeEngineTls(dir: string, addresses: string[]): Promise<EngineTls> {
  await openssl(
    ['req', '-x509', '-new', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-sha256', '-subj', '/CN=upshift-e2e-ca'].concat([
      '-keyout',
      path.join(dir, 'ca-key.pem'),
      '-out',
      path.join(dir, 'ca.pem'),
    ]),
  );
  const servers = new Map<string, { cert: string; key: string }>();
  for (const ip of addresses) {
    servers.set(ip, await signed(dir, `server-${ip}`, `/CN=${ip}`, `subjectAltName = IP:${ip}\nextendedKeyUsage = serverAuth\n`));
  }
  const client = await signed(dir, 'client', '/CN=upshift-control-plane', 'extendedKeyUsage = clientAuth\n');
  return {
    ca: await readFile(path.join(dir, 'ca.pem'), 'utf8'),
    clientCert: await readFile(client.cert, 'utf8'),
    clientKey: await readFile(client.key, 'utf8'),
    servers,
    caFile: path.join(dir, 'ca.pem'),
  };
}
