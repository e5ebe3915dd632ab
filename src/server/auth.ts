import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { invalid } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { type Role, roles } from '../domain/roles.js';
import type { Store } from '../store/store.js';

/**
 * Tokens are stored as SHA-256 hashes only and the bootstrap admin token is compared by
 * digest in constant time. The roles themselves are in domain/roles.ts.
 */
export interface Principal {
  /** Recorded as the actor of every event the request causes. */
  name: string;
  role: Role;
  tokenId: string | null;
}

/** An open console session as admins see it. */
export interface SessionInfo {
  id: string;
  principal: string;
  role: Role;
  /** The API token it was opened with; null for the bootstrap admin token. */
  tokenId: string | null;
  address: string | null;
  createdAt: string;
  expiresAt: string;
}

const BOOTSTRAP_PREFIX = 'bootstrap:';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();
const sha256hex = (text: string) => sha256(text).toString('hex');

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]{8,512})\s*$/i.exec(header);
  return match?.[1];
}

export const SESSION_COOKIE = 'upshift_session';
export const SESSION_HOURS = 12;

/** Tokens, sessions and the bootstrap admin token. */
export class AccessControl {
  private readonly adminDigest: Buffer;
  /**
   * Stands for the bootstrap admin token where a token record's id would be (its
   * sessions): a digest of the token, so that sessions opened with it end when
   * `UPSHIFT_ADMIN_TOKEN` is rotated.
   */
  private readonly bootstrapId: string;

  constructor(
    private readonly store: Store,
    adminToken: string,
  ) {
    this.adminDigest = sha256(adminToken);
    this.bootstrapId = `${BOOTSTRAP_PREFIX}${sha256hex(`upshift bootstrap admin ${adminToken}`).slice(0, 24)}`;
  }

  /** The principal of a bearer token, or undefined for an unknown, expired or revoked one. */
  async authenticateToken(token: string): Promise<Principal | undefined> {
    if (timingSafeEqual(sha256(token), this.adminDigest)) return { name: 'admin', role: 'admin', tokenId: this.bootstrapId };
    const row = await this.store.access.findTokenByHash(sha256hex(token));
    if (!row || row.revokedAt !== null || (row.expiresAt !== null && row.expiresAt <= new Date().toISOString())) return undefined;
    return { name: `token:${row.name}`, role: row.role as Role, tokenId: row.id };
  }

  async createToken(input: { name: unknown; role: unknown; expiresInSeconds?: unknown }, createdBy: string) {
    if (typeof input.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(input.name)) {
      throw invalid('name must be 1 to 63 letters, digits, ., _ or -');
    }
    if (typeof input.role !== 'string' || !(roles as readonly string[]).includes(input.role))
      throw invalid(`role must be one of ${roles.join(', ')}`);
    let expiresAt: string | null = null;
    if (input.expiresInSeconds !== undefined) {
      if (typeof input.expiresInSeconds !== 'number' || !Number.isInteger(input.expiresInSeconds) || input.expiresInSeconds < 60) {
        throw invalid('expiresInSeconds must be a whole number of seconds, at least 60');
      }
      expiresAt = new Date(Date.now() + input.expiresInSeconds * 1000).toISOString();
    }
    const token = `upt_${randomBytes(30).toString('base64url')}`;
    const id = `tok_${newId('nd').slice(3)}`;
    await this.store.access.insertToken({ id, name: input.name, role: input.role, tokenHash: sha256hex(token), createdBy, expiresAt });
    return { id, name: input.name, role: input.role as Role, token, expiresAt };
  }

  /**
   * Signs a console in: a session id for an httpOnly cookie and a CSRF token for mutations.
   * The CSRF token is derived from the session id (`csrfTokenOf`), so that another tab of
   * the same browser can get it with GET /session and share the session instead of
   * signing in again (which would end the first tab's session). A page of another site
   * can neither read the cookie nor the answer of that GET.
   */
  async createSession(
    principal: Principal,
    address: string,
  ): Promise<{ id: string; sessionId: string; csrfToken: string; expiresAt: string }> {
    const sessionId = randomBytes(32).toString('base64url');
    const csrfToken = csrfTokenOf(sessionId);
    const expiresAt = new Date(Date.now() + SESSION_HOURS * 3_600_000).toISOString();
    const id = `ses_${randomBytes(12).toString('base64url')}`;
    await this.store.access.insertSession({
      id,
      address: address.slice(0, 64),
      sessionHash: sha256hex(sessionId),
      csrfHash: sha256hex(csrfToken),
      principal: principal.name,
      role: principal.role,
      tokenId: principal.tokenId,
      expiresAt,
    });
    return { id, sessionId, csrfToken, expiresAt };
  }

  /** The session's principal, and whether `csrfToken` matches it. */
  async authenticateSession(
    sessionId: string,
    csrfToken: string | undefined,
  ): Promise<{ id: string; principal: Principal; csrfOk: boolean; expiresAt: string } | undefined> {
    const row = await this.store.access.findSession(sha256hex(sessionId));
    const now = new Date().toISOString();
    if (!row || row.expiresAt <= now) return undefined;
    if (row.tokenId === null || row.tokenId.startsWith(BOOTSTRAP_PREFIX)) {
      // Opened with the bootstrap admin token: valid while that token is the one in force.
      if (row.tokenId !== this.bootstrapId) return undefined;
    } else {
      // A session lives no longer than the token it was opened with.
      const token = await this.store.access.getToken(row.tokenId);
      if (!token || token.revokedAt !== null || (token.expiresAt !== null && token.expiresAt <= now)) return undefined;
    }
    const csrfOk = csrfToken !== undefined && timingSafeEqual(sha256(csrfToken), Buffer.from(row.csrfHash, 'hex'));
    return {
      id: row.id,
      principal: { name: row.principal, role: row.role as Role, tokenId: row.tokenId },
      csrfOk,
      expiresAt: row.expiresAt,
    };
  }

  /** Open console sessions (never their secrets), those of a rotated bootstrap token left out. */
  async listSessions(): Promise<SessionInfo[]> {
    const now = new Date().toISOString();
    const rows = await this.store.access.listSessions(now);
    return rows
      .filter((r) => !(r.tokenId === null || r.tokenId.startsWith(BOOTSTRAP_PREFIX)) || r.tokenId === this.bootstrapId)
      .map((r) => ({
        id: r.id,
        principal: r.principal,
        role: r.role as Role,
        tokenId: r.tokenId?.startsWith(BOOTSTRAP_PREFIX) ? null : r.tokenId,
        address: r.address,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt,
      }));
  }

  /** Ends a session by its id; false when there is none. */
  async revokeSession(id: string): Promise<boolean> {
    return this.store.access.deleteSessionById(id);
  }

  async endSession(sessionId: string): Promise<void> {
    await this.store.access.deleteSession(sha256hex(sessionId));
  }
}

/** The CSRF token of a console session: an HMAC of its (secret, cookie-only) session id. */
export function csrfTokenOf(sessionId: string): string {
  return createHmac('sha256', sessionId).update('upshift console csrf v1').digest('base64url');
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return undefined;
}

/**
 * Failed sign-ins per client address in a sliding window; past the limit the address is
 * refused (429) until the window moves on, so a token cannot be guessed at speed. It is
 * consulted before any token is compared, so a blocked address learns nothing, not even
 * from a correct guess.
 *
 * The table is bounded: past `maxAddresses` it forgets the addresses that are not blocked,
 * oldest first, and never an address that is blocked (a block lasts one window, so blocked
 * entries cannot pile up faster than `limit` failures each).
 */
export class SignInLimiter {
  /** Address → times of its failures in the window, oldest first (at most `limit`). */
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limit = 20,
    private readonly windowMs = 60_000,
    private readonly maxAddresses = 10_000,
  ) {}

  private recent(address: string, now: number): number[] | undefined {
    const list = this.failures.get(address);
    if (!list) return undefined;
    while (list.length > 0 && now - (list[0] as number) >= this.windowMs) list.shift();
    if (list.length === 0) {
      this.failures.delete(address);
      return undefined;
    }
    return list;
  }

  isBlocked(address: string, now = Date.now()): boolean {
    return (this.recent(address, now)?.length ?? 0) >= this.limit;
  }

  /** Records a failure; returns how many the address has in the window. */
  fail(address: string, now = Date.now()): number {
    const list = this.recent(address, now) ?? [];
    list.push(now);
    if (list.length > this.limit) list.shift();
    // Re-inserted, so that the map's order is the order of the latest failure.
    this.failures.delete(address);
    this.failures.set(address, list);
    if (this.failures.size > this.maxAddresses) this.forget(now);
    return list.length;
  }

  /** How many addresses are tracked (for tests and metrics). */
  get size(): number {
    return this.failures.size;
  }

  private forget(now: number): void {
    for (const [address, list] of this.failures) {
      if (this.failures.size <= this.maxAddresses) return;
      const blocked = list.length >= this.limit && now - (list[0] as number) < this.windowMs;
      if (!blocked) this.failures.delete(address);
    }
  }
}

/**
 * Why a bootstrap admin token is too weak to be one, or undefined. The token is a full
 * admin of every node of the fleet: 32 characters at least, and not a short pattern
 * repeated (estimated from the variety of its characters).
 */
export function adminTokenWeakness(token: string): string | undefined {
  if (token.length < 32) return `it has ${token.length} characters; it needs at least 32`;
  const counts = new Map<string, number>();
  for (const ch of token) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= n * Math.log2(n / token.length);
  if (counts.size < 10 || bits < 90) return 'it repeats too few different characters to be hard to guess';
  return undefined;
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
      throw new Error(
        'UPSHIFT_ADMIN_TOKEN must be 32 to 512 characters of letters, digits and ._~+/=-; generate one with: openssl rand -hex 32',
      );
    }
    const weakness = adminTokenWeakness(fromEnv);
    if (weakness) {
      throw new Error(
        `UPSHIFT_ADMIN_TOKEN is too weak: ${weakness}. Generate one with: openssl rand -hex 32 (or unset it and the server writes a random one to the data dir)`,
      );
    }
    return { token: fromEnv, generated: false, file: '(UPSHIFT_ADMIN_TOKEN)' };
  }
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    const weakness =
      bearerToken(`Bearer ${token}`) === undefined ? 'it is not 32 to 512 letters, digits or ._~+/=-' : adminTokenWeakness(token);
    if (weakness) throw new Error(`the admin token in ${file} is too weak: ${weakness}. Delete the file and restart to generate a new one`);
    return { token, generated: false, file };
  }
  mkdirSync(dataDir, { recursive: true });
  const token = `ups_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, generated: true, file };
}
