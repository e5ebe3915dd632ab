import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A self-signed certificate (its own CA) and its key, PEM, with the files when they were kept. */
export interface SelfSigned {
  cert: string;
  key: string;
  /** `dir/<name>.pem` and `dir/<name>.key`, when `dir` was given. */
  certFile: string;
  keyFile: string;
}

/**
 * A self-signed EC certificate for 127.0.0.1 and localhost, made with the openssl
 * command, valid two days. With `dir` the files stay there as `<name>.pem` and
 * `<name>.key` (for a server's `--tls-cert`, a client's CA file); without it they are
 * removed and only the PEM texts are returned.
 */
export function selfSignedCert(name: string, dir?: string): SelfSigned {
  const where = dir ?? mkdtempSync(join(tmpdir(), 'upshift-cert-'));
  const certFile = join(where, `${name}.pem`);
  const keyFile = join(where, `${name}.key`);
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-subj',
        `/CN=${name}`,
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { stdio: 'ignore' },
    );
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
  } finally {
    if (!dir) rmSync(where, { recursive: true, force: true });
  }
}
