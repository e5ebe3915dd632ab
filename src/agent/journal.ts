import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import type { TaskResultRequest } from '../domain/agent-protocol.js';

/**
 * The agent's memory of the tasks it has taken on, in `<dataDir>/journal.json`. It is what
 * makes task keys idempotent on the agent's side: the server re-delivers a task until its
 * result arrives, so after a restart of either side the agent must know whether it already
 * ran it.
 *
 * Entry states:
 * - `started`: the agent began the task and has not finished it. Found at start (the agent
 *   or the host died mid-task), the recipe *resumes*: it looks at the host as it is
 *   (versions, the `current` link, the checkpoint data) and finishes or rolls back; it never
 *   runs the procedure again from the top. Exit: `finished`.
 * - `finished`: the outcome is known; `reported` says whether the server acknowledged it.
 *   A re-delivered finished task is only reported again. Exit: pruned after a week.
 *
 * Every write is a whole-file replace (write, fsync, rename), so a crash leaves the old or
 * the new journal, never a torn one. Writes are asynchronous, one at a time, each of the
 * whole journal as it is when the write begins; a change is on disk when the call that
 * made it resolves. While a file is written and synced the agent goes on answering (its
 * heartbeats, its log stream, and in the bench the other agents of the process). That a result was acknowledged is only kept in memory
 * until the next write or `flush()` (at the agent's stop): after a crash in between the
 * result is reported once more, and the server takes a result again as the same one.
 */
export interface JournalEntry {
  taskKey: string;
  /** The recipe name as delivered (an unknown one is journaled too, with its refusal). */
  recipe: string;
  state: 'started' | 'finished';
  startedAt: string;
  finishedAt?: string;
  /** The last checkpoint a recipe recorded (`stopped`, `installed`, `swapped`, …). */
  step?: string;
  /** What the recipe needs to resume or roll back (previous version, previous link target, …). */
  data: Record<string, unknown>;
  result?: TaskResultRequest;
  reported: boolean;
}

/** What the agent does with a delivered task, given its journal entry. */
export type TaskDisposition = 'run' | 'resume' | 'report';

/** Pure: a task never seen runs; one started before a restart resumes; one finished is only reported. */
export function dispositionOf(entry: JournalEntry | undefined): TaskDisposition {
  if (entry === undefined) return 'run';
  return entry.state === 'started' ? 'resume' : 'report';
}

const PRUNE_AFTER_MS = 7 * 24 * 3600_000;
const MAX_ENTRIES = 500;

export class Journal {
  private entries = new Map<string, JournalEntry>();
  /** Acknowledgements not written yet (`markReported`). */
  private unsaved = false;
  /** The write under way (writes go one at a time). */
  private writing: Promise<void> = Promise.resolve();
  readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'journal.json');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    let text: string | undefined;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined) {
      const doc = JSON.parse(text) as { entries?: JournalEntry[] };
      for (const e of doc.entries ?? []) this.entries.set(e.taskKey, e);
    }
  }

  get(taskKey: string): JournalEntry | undefined {
    const e = this.entries.get(taskKey);
    return e === undefined ? undefined : structuredClone(e);
  }

  all(): JournalEntry[] {
    return [...this.entries.values()].map((e) => structuredClone(e));
  }

  /** Records that the task starts now. Refuses a key that is already journaled (never run twice). */
  async begin(taskKey: string, recipe: string, now = new Date()): Promise<JournalEntry> {
    if (this.entries.has(taskKey))
      throw new Error(`task ${taskKey} is already in the journal; it is resumed or reported, never started again`);
    const entry: JournalEntry = { taskKey, recipe, state: 'started', startedAt: now.toISOString(), data: {}, reported: false };
    this.entries.set(taskKey, entry);
    await this.save();
    return structuredClone(entry);
  }

  /** Records a recipe checkpoint and merges `data` into the entry's data. */
  checkpoint(taskKey: string, step: string, data: Record<string, unknown> = {}): Promise<void> {
    const e = this.mustGet(taskKey);
    e.step = step;
    e.data = { ...e.data, ...data };
    return this.save();
  }

  finish(taskKey: string, result: TaskResultRequest, now = new Date()): Promise<void> {
    const e = this.mustGet(taskKey);
    e.state = 'finished';
    e.finishedAt = now.toISOString();
    e.result = result;
    e.reported = false;
    return this.save();
  }

  markReported(taskKey: string): void {
    const e = this.mustGet(taskKey);
    if (e.reported) return;
    e.reported = true;
    this.unsaved = true;
  }

  /** Writes what is only in memory (acknowledgements). */
  flush(): Promise<void> {
    return this.unsaved ? this.save() : this.writing.catch(() => undefined);
  }

  /** Finished entries whose result the server has not acknowledged yet. */
  unreported(): JournalEntry[] {
    return this.all().filter((e) => e.state === 'finished' && !e.reported);
  }

  /** Drops reported entries older than a week and keeps at most the newest 500. */
  prune(now = new Date()): Promise<void> {
    let changed = false;
    for (const [k, e] of this.entries) {
      if (e.state === 'finished' && e.reported && now.getTime() - Date.parse(e.finishedAt ?? e.startedAt) > PRUNE_AFTER_MS) {
        this.entries.delete(k);
        changed = true;
      }
    }
    const finished = [...this.entries.values()]
      .filter((e) => e.state === 'finished' && e.reported)
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    while (this.entries.size > MAX_ENTRIES && finished.length > 0) {
      const oldest = finished.shift();
      if (oldest) this.entries.delete(oldest.taskKey);
      changed = true;
    }
    return changed ? this.save() : Promise.resolve();
  }

  private mustGet(taskKey: string): JournalEntry {
    const e = this.entries.get(taskKey);
    if (!e) throw new Error(`task ${taskKey} is not in the journal`);
    return e;
  }

  /** Queues a write of the journal as it is when the write begins; a failed write fails this call and the next write tries again. */
  private save(): Promise<void> {
    this.unsaved = false;
    const write = this.writing.catch(() => undefined).then(() => this.write());
    this.writing = write;
    return write;
  }

  private async write(): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const f = await open(tmp, 'w', 0o600);
    try {
      await f.writeFile(JSON.stringify({ version: 1, entries: [...this.entries.values()] }, null, 1));
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, this.file);
  }
}
