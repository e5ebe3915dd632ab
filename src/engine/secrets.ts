import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, UpshiftError } from '../domain/errors.js';
import type { SecretReader } from '../domain/ports.js';
import type { Store } from '../store/store.js';

/**
 * Secrets at rest (kubeconfigs, Engine TLS keys): AES-256-GCM under one key, each value
 * with its own random IV; the database only ever holds `v1:<base64 iv|tag|ciphertext>`.
 * The key comes from UPSHIFT_SECRET_KEY (32 bytes, base64 or hex) or a key file that
 * is generated once in the data dir (mode 0600).
 */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static fromKey(key: Buffer): SecretBox {
    if (key.length !== 32) throw new UpshiftError(ErrorCode.INTERNAL, 'the secret key must be 32 bytes (base64 or hex)');
    return new SecretBox(key);
  }

  /** UPSHIFT_SECRET_KEY, else `<dataDir>/secret.key`, created when missing. */
  static load(dataDir: string, env: NodeJS.ProcessEnv = process.env): SecretBox {
    const fromEnv = env['UPSHIFT_SECRET_KEY'];
    if (fromEnv) {
      const key = /^[0-9a-fA-F]{64}$/.test(fromEnv) ? Buffer.from(fromEnv, 'hex') : Buffer.from(fromEnv, 'base64');
      if (key.length !== 32)
        throw new UpshiftError(ErrorCode.INTERNAL, 'UPSHIFT_SECRET_KEY must be 32 bytes, as 64 hex characters or base64');
      return new SecretBox(key);
    }
    const file = join(dataDir, 'secret.key');
    if (!existsSync(file)) {
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
    }
    return SecretBox.fromKey(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'));
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `v1:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  open(sealed: string): string {
    if (!sealed.startsWith('v1:')) throw new UpshiftError(ErrorCode.INTERNAL, 'unknown secret format');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    try {
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      throw new UpshiftError(
        ErrorCode.INTERNAL,
        'a stored secret cannot be decrypted: the secret key changed (UPSHIFT_SECRET_KEY or secret.key)',
      );
    }
  }
}

/**
 * Cluster secrets for the engine: sealed when a cluster is created, opened when its
 * driver reads them. Without a key (an engine made for tests of kinds without secrets)
 * nothing can be sealed, and a cluster that has secrets cannot be created.
 */
export class SecretVault implements SecretReader {
  constructor(
    private readonly store: Store,
    private readonly box?: SecretBox,
  ) {}

  /** Whether secrets can be stored: a key is configured. */
  get canSeal(): boolean {
    return this.box !== undefined;
  }

  seal(plaintext: string): string {
    return this.key('stored').seal(plaintext);
  }

  /** A sealed value opened (webhook secrets, which live beside their webhook rather than a cluster; a gate's bearer token kept in an upgrade's policy). */
  open(sealed: string): string {
    return this.key('read').open(sealed);
  }

  async read(clusterId: string, name: string): Promise<string | undefined> {
    const sealed = await this.store.clusters.getSecret(clusterId, name);
    return sealed === undefined ? undefined : this.key('read').open(sealed);
  }

  private key(what: string): SecretBox {
    if (!this.box) throw new UpshiftError(ErrorCode.INTERNAL, `no secret key is configured, so secrets cannot be ${what}`);
    return this.box;
  }
}
