import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Bearer-token authentication. Tokens are compared by their SHA-256 digests in
 * constant time, so neither the comparison's timing nor a heap dump of the comparison
 * reveals the token.
 */
export interface Principal {
  /** Recorded as the actor of every event the request causes. */
  name: string;
  role: 'admin' | 'operator' | 'viewer';
}

export interface Authenticator {
  authenticate(header: string | undefined): Principal | undefined;
}

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]{8,512})\s*$/i.exec(header);
  return match?.[1];
}

/** Only the bootstrap admin token, for now. */
export function adminTokenAuthenticator(adminToken: string): Authenticator {
  const expected = digest(adminToken);
  return {
    authenticate(header) {
      const token = bearerToken(header);
      if (token === undefined) return undefined;
      return timingSafeEqual(digest(token), expected) ? { name: 'admin', role: 'admin' } : undefined;
    },
  };
}

/**
 * The bootstrap admin token: `UPSHIFT_ADMIN_TOKEN` when set, otherwise the one in the
 * data dir, otherwise a new one written there (mode 0600). `generated` tells the caller
 * to show it once.
 */
export function loadAdminToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): { token: string; generated: boolean; file: string } {
  const file = join(dataDir, 'admin-token');
  const fromEnv = env['UPSHIFT_ADMIN_TOKEN'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (bearerToken(`Bearer ${fromEnv}`) === undefined) {
      throw new Error('UPSHIFT_ADMIN_TOKEN must be 8 to 512 characters of letters, digits and ._~+/=-');
    }
    return { token: fromEnv, generated: false, file: '(UPSHIFT_ADMIN_TOKEN)' };
  }
  if (existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), generated: false, file };
  mkdirSync(dataDir, { recursive: true });
  const token = `ups_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, generated: true, file };
}
