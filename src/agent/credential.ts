import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { JOIN_SECRET_PATTERN } from '../domain/agent-protocol.js';
import type { ServerError } from './client.js';

/**
 * The node's credential on disk, and what the agent says when a join is refused. The
 * credential file is the agent's identity towards the server: written atomically with
 * mode 0600, never logged.
 */

/** What is stored in `<dataDir>/credential.json` (mode 0600). The credential is never logged. */
export interface StoredCredential {
  server: string;
  nodeId: string;
  clusterId: string;
  clusterName: string;
  /** The node name the agent joined as (absent in files written before 1.2). */
  name?: string;
  credential: string;
  /**
   * Fingerprint of the join token this credential was obtained with. When the server refuses
   * the credential (an admin reset or removed the node), the agent joins again only with
   * a different token, one an operator gave it since: a token left in its environment
   * must not undo the admin's reset by itself.
   */
  joinedWith?: string;
}

/** `<dataDir>/credential.json`. */
export class CredentialFile {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = path.join(dataDir, 'credential.json');
  }

  /** The stored credential, or undefined when there is none (or it is unreadable: the agent joins again). */
  load(): StoredCredential | undefined {
    try {
      const c = JSON.parse(readFileSync(this.path, 'utf8')) as StoredCredential;
      if (typeof c.credential === 'string' && typeof c.server === 'string') return c;
    } catch {
      // none yet
    }
    return undefined;
  }

  save(credential: StoredCredential): void {
    writePrivate(this.path, JSON.stringify(credential));
  }

  remove(): void {
    rmSync(this.path, { force: true });
  }
}

/**
 * The agent's join secret, `<dataDir>/join-secret` (mode 0600), made once. Every join
 * sends it; the server keeps its hash with the credential it issues, so that a join
 * whose answer was lost (timed out at the agent while the server completed it) can be
 * asked again and gets a new credential instead of NODE_NAME_TAKEN, as long as the first
 * was never used (docs/design.md §9). It is a secret: never logged.
 */
export function loadJoinSecret(dataDir: string): string {
  const file = path.join(dataDir, 'join-secret');
  try {
    const stored = readFileSync(file, 'utf8').trim();
    if (JOIN_SECRET_PATTERN.test(stored)) return stored;
  } catch {
    // none yet
  }
  const secret = `upjs_${randomBytes(32).toString('base64url')}`;
  writePrivate(file, `${secret}\n`);
  return secret;
}

/** A fingerprint of a join token: enough to tell two tokens apart, not the server's lookup hash of it. */
export const tokenFingerprint = (token: string): string =>
  createHash('sha256').update(`upshift-agent-joined-with:${token}`, 'utf8').digest('hex');

/**
 * Install scripts before 1.2 kept the join token in `<dataDir>/join.env` for the service,
 * forever. Once the node's credential works, the token is not needed: its line is
 * removed (the file stays, with its other settings, since an old unit requires it).
 * Answers the file when it removed a line.
 */
export function forgetLegacyJoinToken(dataDir: string): string | undefined {
  const file = path.join(dataDir, 'join.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const kept = lines.filter((line) => !/^\s*(export\s+)?UPSHIFT_JOIN_TOKEN=/.test(line));
  if (kept.length === lines.length) return undefined;
  writePrivate(file, kept.join('\n'));
  return file;
}

/**
 * A refused join in words a person can act on. The server's error code decides the
 * advice; the cluster's name comes from the error's details when the server knows it.
 */
export function explainJoinRefusal(e: ServerError, name: string): string {
  const cluster = typeof e.details['cluster'] === 'string' ? e.details['cluster'] : 'CLUSTER';
  const server = `(server: ${e.status} ${e.code})`;
  switch (e.code) {
    case 'NODE_NAME_TAKEN':
      return `a node named ${name} already holds a credential in cluster ${cluster}: if this host replaces it, an admin runs \`upshift node reset ${cluster} ${name}\`; otherwise start the agent with --name OTHER ${server}`;
    case 'UNAUTHENTICATED': {
      const reason = e.details['reason'];
      const why =
        reason === 'expired'
          ? 'the join token has expired'
          : reason === 'used'
            ? 'the join token was for one join only and has been used'
            : reason === 'revoked'
              ? 'the join token was revoked'
              : 'the server does not know this join token (mistyped, or made by another server)';
      return `${why}: ask an admin for a new one: upshift cluster join-token ${cluster} ${server}`;
    }
    case 'UPGRADE_IN_PROGRESS':
      return `cluster ${cluster} is being upgraded, and a new node joins only when that upgrade completes or is canceled ${server}`;
    case 'VALIDATION_FAILED':
      return `the server refused the join as ${name}: ${e.message}; if the name is the problem, start the agent with --name NAME`;
    default:
      return `the server refused to let ${name} join: ${e.message}`;
  }
}

/** Replaces `file` with `content`, readable by the agent's user only; a crash leaves the old content or the new, never half. */
export function writePrivate(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
