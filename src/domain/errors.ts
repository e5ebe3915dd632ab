/**
 * Every error Upshift reports has a stable `code` that clients may switch on, an HTTP
 * status where the API maps it, and a message that tells the reader what to do next.
 * `server/` turns these into the `{"error":{"code","message"}}` envelope (docs/design.md §5).
 */
export const ErrorCode = {
  /** The request body or query could not be parsed or has the wrong shape (400). */
  BAD_REQUEST: 'BAD_REQUEST',
  /** No or an unknown bearer token (401). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** The token is known but may not do this (403). */
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** Well-formed but invalid: unknown component, version not in the catalog, … (422). */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  // Refusals by state (409), docs/design.md §5.
  NOTHING_TO_PAUSE: 'NOTHING_TO_PAUSE',
  PAUSE_FIRST: 'PAUSE_FIRST',
  UPGRADE_IN_PROGRESS: 'UPGRADE_IN_PROGRESS',
  AGENT_OUTDATED: 'AGENT_OUTDATED',
  FAILED_PODS_PRESENT: 'FAILED_PODS_PRESENT',
  /** The command does not apply to the upgrade's current state (resume while Upgrading, …). */
  INVALID_STATE: 'INVALID_STATE',
  /** An agent wrote to a task that is not open: never delivered, or already reported or ended by the server. */
  TASK_ENDED: 'TASK_ENDED',
  /** Every node already runs the target version. */
  NOTHING_TO_UPGRADE: 'NOTHING_TO_UPGRADE',
  /**
   * The target version's catalog entry names distributions that some node to upgrade does
   * not run (Debian 12 packages for a Debian 13 node); `details.nodes` names them (409).
   */
  VERSION_NOT_INSTALLABLE: 'VERSION_NOT_INSTALLABLE',
  /** A name that must be unique is taken. */
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  /**
   * An agent tried to join under the name of a node whose agent already holds a
   * credential: an admin resets the node first (`upshift node reset`), or the agent
   * joins under another name. A join never takes over a node's identity.
   */
  NODE_NAME_TAKEN: 'NODE_NAME_TAKEN',
  /** The cluster kind does not support this operation (adding nodes by hand to a swarm, …). */
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  /** The cluster could not be reached. */
  CLUSTER_UNAVAILABLE: 'CLUSTER_UNAVAILABLE',
  INTERNAL: 'INTERNAL',
  /** Too many failed sign-ins from the client's address in the last minute (429). */
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
  /** A change made with a console session cookie came without its CSRF token (403). */
  CSRF_FAILED: 'CSRF_FAILED',
  /** The body's content type is not one the route reads (415). */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** The server cannot serve yet: its database or engine is not up (503). */
  NOT_READY: 'NOT_READY',
  /**
   * The server is handling as many requests of this kind as it takes at once (joins: 64);
   * the client tries again after the answer's Retry-After (503; docs/design.md §5, §9).
   */
  SERVER_BUSY: 'SERVER_BUSY',
  /** The database was migrated by a newer Upshift than this one: this binary refuses to run on it. */
  SCHEMA_TOO_NEW: 'SCHEMA_TOO_NEW',
  /** Another upload of the same artifact file is in progress (409). */
  ARTIFACT_BUSY: 'ARTIFACT_BUSY',
  /** The upgrade's logs were deleted with its history (auto-canceled after the paused TTL). */
  LOG_DELETED: 'LOG_DELETED',
  /**
   * An agent that runs as a JavaScript file under the host's Node.js asked for its
   * successor: the agent is now one executable, which a self-upgrade cannot put in place of
   * a script that the service starts with `node`; the host reinstalls with the join command (409).
   */
  AGENT_REINSTALL_NEEDED: 'AGENT_REINSTALL_NEEDED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
export const errorCodes: readonly ErrorCode[] = Object.values(ErrorCode);

const httpStatusOf: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  VALIDATION_FAILED: 422,
  NOTHING_TO_PAUSE: 409,
  PAUSE_FIRST: 409,
  UPGRADE_IN_PROGRESS: 409,
  AGENT_OUTDATED: 409,
  FAILED_PODS_PRESENT: 409,
  INVALID_STATE: 409,
  TASK_ENDED: 409,
  NOTHING_TO_UPGRADE: 409,
  VERSION_NOT_INSTALLABLE: 409,
  ALREADY_EXISTS: 409,
  NODE_NAME_TAKEN: 409,
  NOT_SUPPORTED: 422,
  CLUSTER_UNAVAILABLE: 503,
  INTERNAL: 500,
  TOO_MANY_REQUESTS: 429,
  CSRF_FAILED: 403,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_READY: 503,
  SERVER_BUSY: 503,
  ARTIFACT_BUSY: 409,
  SCHEMA_TOO_NEW: 503,
  LOG_DELETED: 410,
  AGENT_REINSTALL_NEEDED: 409,
};

export interface UpshiftErrorOptions {
  cause?: unknown;
  /** True when trying the same thing again later may succeed (a network blip). */
  retryable?: boolean;
  /** Extra machine-readable facts, returned to API clients as `error.details`. */
  details?: Record<string, unknown>;
  /** When trying again makes sense: the API answers it as the Retry-After header. */
  retryAfterSeconds?: number;
}

export class UpshiftError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: UpshiftErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpshiftError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get httpStatus(): number {
    return httpStatusOf[this.code];
  }
}

export function notFound(what: string, id: string): UpshiftError {
  return new UpshiftError(ErrorCode.NOT_FOUND, `${what} ${JSON.stringify(id)} does not exist`);
}

export function invalid(message: string, details?: Record<string, unknown>): UpshiftError {
  return new UpshiftError(ErrorCode.VALIDATION_FAILED, message, details ? { details } : {});
}

/** Turns anything thrown into an Error with a useful message, at a boundary. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    return new Error(`non-error thrown: ${JSON.stringify(value)}`);
  } catch {
    return new Error(`non-error thrown: ${String(value)}`);
  }
}

export function errorMessage(value: unknown): string {
  return coerceError(value).message;
}
