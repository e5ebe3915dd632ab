/**
 * The CLI's exit codes. Scripts switch on them, so they are part of the interface and
 * listed in `upshift --help`:
 * - 0: done;
 * - 1: the API reported another error (400, 422, 5xx);
 * - 2: the command line is wrong (unknown option, bad value, missing argument);
 * - 3: refused by state (409), or a watched upgrade ended Paused, Canceled or SnapshotFailed;
 * - 4: not found (404);
 * - 5: not authenticated or not allowed (401, 403);
 * - 6: the server could not be reached.
 */
export const ExitCode = {
  ok: 0,
  apiError: 1,
  usage: 2,
  refused: 3,
  notFound: 4,
  auth: 5,
  unreachable: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const exitCodeHelp = `Exit codes:
  0  success
  1  other API errors (400, 422, 5xx)
  2  usage: unknown option, bad value, missing argument
  3  refused by state (409: AGENT_OUTDATED, PAUSE_FIRST, …); a watched upgrade
     stopped Paused, Canceled or SnapshotFailed
  4  not found (404)
  5  authentication (401) or permission (403)
  6  the server could not be reached`;

/** An error the CLI reports as `error: <message>` and exits with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  /** A second line telling the reader what to do, printed as `hint: …`. */
  readonly hint: string | undefined;

  constructor(exitCode: ExitCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.hint = options.hint;
  }
}

/** The command line itself is wrong (exit 2). */
export function usageError(message: string): CliError {
  return new CliError(ExitCode.usage, message);
}

/** An error response of the API: its `{"error":{"code","message"}}` envelope and status. */
export class ApiError extends CliError {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>, hint?: string) {
    super(exitCodeForStatus(status), message, hint === undefined ? {} : { hint });
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function exitCodeForStatus(status: number): ExitCode {
  if (status === 409) return ExitCode.refused;
  if (status === 404) return ExitCode.notFound;
  if (status === 401 || status === 403) return ExitCode.auth;
  return ExitCode.apiError;
}
