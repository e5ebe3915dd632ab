import type { AgentTask, TaskResultRequest } from '../../domain/agent-protocol.js';
import type { AgentConfig } from '../config.js';
import type { JournalEntry } from '../journal.js';

/** Where a recipe gets the mirror's files: verified against `sha256` before it sees the path. */
export interface ArtifactSource {
  /** A local path of `file` whose content hashes to `sha256`; throws ChecksumError otherwise. */
  fetch(file: string, sha256: string, signal: AbortSignal): Promise<string>;
  /** The server's apt repository, where the source is a server's mirror (apt-mirror.ts). */
  aptMirror?(): AptMirrorAccess | undefined;
}

/** What apt needs to install from the server's signed apt repository. */
export interface AptMirrorAccess {
  /** The repository's base URL (`<server>/api/v1/agent/apt`). */
  url: string;
  /** The node credential, apt's basic-auth password for that URL. */
  credential: string;
  /** PEM of the CA pinned for the server (`--ca-file`), which apt must then trust for it. */
  caPem?: Buffer;
  /** Downloads the repository's signing key (binary OpenPGP) to `dest`, over the agent's authenticated channel. */
  fetchKey(dest: string, signal: AbortSignal): Promise<void>;
}

/** A file whose content did not hash to what the server announced. */
export class ChecksumError extends Error {
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `checksum mismatch for ${file}: expected sha256 ${expected}, got ${actual}: the file is corrupted or was replaced; nothing was installed (upload the artifact to the mirror again)`,
    );
    this.name = 'ChecksumError';
  }
}

/** The recipe's handle on its own journal entry: checkpoints survive a restart of the agent. */
export interface TaskJournal {
  /** Resolves once the checkpoint is on disk: await it before the step it announces. */
  checkpoint(step: string, data?: Record<string, unknown>): Promise<void>;
}

export interface RecipeContext {
  config: AgentConfig;
  taskKey: string;
  /** Appends a line to the task's log on the server (and the agent's own log). */
  log(line: string): void;
  artifacts: ArtifactSource;
  journal: TaskJournal;
  /** The version of the agent running the recipe. */
  agentVersion: string;
  signal: AbortSignal;
}

/**
 * A recipe shipped with the agent. `run` executes it from the top for a task never seen
 * before; `resume` is called instead when the journal shows the task started before a
 * restart: it inspects the host and finishes, verifies or rolls back, never repeating
 * the procedure blindly.
 */
export interface Recipe {
  run(task: AgentTask, ctx: RecipeContext): Promise<RecipeOutcome>;
  resume(task: AgentTask, entry: JournalEntry, ctx: RecipeContext): Promise<RecipeOutcome>;
}

/**
 * A recipe's outcome: a result to report, or (self-upgrade only) the news that a new agent
 * process took over; that process reports the task, and this one stops.
 */
export type RecipeOutcome = TaskResultRequest | { handedOver: true };

export function isHandedOver(o: RecipeOutcome): o is { handedOver: true } {
  return 'handedOver' in o;
}

/** A step's failure: which step and what it printed, for the operator. */
export class StepError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
    this.name = 'StepError';
  }
}
