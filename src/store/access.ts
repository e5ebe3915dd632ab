import type { ApiTokenRecord, SessionRecord } from '../domain/model.js';
import { changed, nowIso } from './rows.js';
import type { Scope } from './scope.js';

const TOKEN_COLUMNS = ['id', 'name', 'role', 'tokenHash', 'createdBy', 'createdAt', 'expiresAt', 'revokedAt'] as const;

const SESSION_COLUMNS = ['id', 'sessionHash', 'csrfHash', 'principal', 'role', 'tokenId', 'address', 'createdAt', 'expiresAt'] as const;

/** How many open sessions a listing shows at most. */
const SESSION_LIST_LIMIT = 5000;

/**
 * API tokens and console sessions, by their hashes only: a token or session id is shown
 * once to its holder and never stored, so a copy of the database grants no access.
 */
export class AccessRepository {
  constructor(private readonly scope: Scope) {}

  private get db() {
    return this.scope.db;
  }

  async insertToken(token: Omit<ApiTokenRecord, 'createdAt' | 'revokedAt'>): Promise<void> {
    await this.db
      .insertInto('apiTokens')
      .values({
        id: token.id,
        name: token.name,
        role: token.role,
        tokenHash: token.tokenHash,
        createdBy: token.createdBy,
        expiresAt: token.expiresAt,
        createdAt: nowIso(),
        revokedAt: null,
      })
      .execute();
  }

  async findTokenByHash(tokenHash: string): Promise<ApiTokenRecord | undefined> {
    return this.db.selectFrom('apiTokens').select(TOKEN_COLUMNS).where('tokenHash', '=', tokenHash).executeTakeFirst();
  }

  async getToken(id: string): Promise<ApiTokenRecord | undefined> {
    return this.db.selectFrom('apiTokens').select(TOKEN_COLUMNS).where('id', '=', id).executeTakeFirst();
  }

  /** Every token, oldest first (revoked and expired ones too: the list is the record of them). */
  async listTokens(): Promise<ApiTokenRecord[]> {
    return this.db.selectFrom('apiTokens').select(TOKEN_COLUMNS).orderBy('createdAt').execute();
  }

  /** Revokes a token and ends the sessions opened with it; false when it was unknown or revoked already. */
  async revokeToken(id: string): Promise<boolean> {
    const result = await this.db
      .updateTable('apiTokens')
      .set({ revokedAt: nowIso() })
      .where('id', '=', id)
      .where('revokedAt', 'is', null)
      .executeTakeFirst();
    if (changed(result) !== 1) return false;
    await this.db.deleteFrom('sessions').where('tokenId', '=', id).execute();
    return true;
  }

  async insertSession(session: Omit<SessionRecord, 'createdAt'>): Promise<void> {
    await this.db
      .insertInto('sessions')
      .values({
        id: session.id,
        sessionHash: session.sessionHash,
        csrfHash: session.csrfHash,
        principal: session.principal,
        role: session.role,
        tokenId: session.tokenId,
        address: session.address,
        expiresAt: session.expiresAt,
        createdAt: nowIso(),
      })
      .execute();
  }

  async findSession(sessionHash: string): Promise<SessionRecord | undefined> {
    return this.db.selectFrom('sessions').select(SESSION_COLUMNS).where('sessionHash', '=', sessionHash).executeTakeFirst();
  }

  async deleteSession(sessionHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('sessionHash', '=', sessionHash).execute();
  }

  /** Sessions not yet expired at `now`, newest first; expired ones are deleted on the way. */
  async listSessions(now: string): Promise<SessionRecord[]> {
    await this.db.deleteFrom('sessions').where('expiresAt', '<=', now).execute();
    return this.db.selectFrom('sessions').select(SESSION_COLUMNS).orderBy('createdAt', 'desc').limit(SESSION_LIST_LIMIT).execute();
  }

  /** Ends a session by its public id; false when there is none. */
  async deleteSessionById(id: string): Promise<boolean> {
    return changed(await this.db.deleteFrom('sessions').where('id', '=', id).executeTakeFirst()) > 0;
  }
}
