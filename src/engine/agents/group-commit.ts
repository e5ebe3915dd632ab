/**
 * Writes that arrive together go to the database together: `add` gathers items until
 * the end of the current turn of the event loop, then `write` takes all of them at once;
 * items that arrive while a write runs wait for it and make the next one. Nothing waits
 * for a timer, so a lone item costs no delay, and a thousand agents reporting within a
 * few milliseconds cost a few transactions, not a thousand.
 *
 * Each `add` settles only after the write that took its item settled: with its own
 * answer, or with its own error (an entry of the answer that is an Error), or with the
 * write's error for all of them.
 */
export class GroupCommit<T, R> {
  private gathered: Array<{ item: T; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private writing = false;
  private scheduled = false;

  constructor(private readonly write: (items: T[]) => Promise<ReadonlyArray<R | Error>>) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.gathered.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.writing || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.writeGathered();
    });
  }

  private async writeGathered(): Promise<void> {
    const batch = this.gathered;
    this.gathered = [];
    if (batch.length === 0) return;
    this.writing = true;
    try {
      const answers = await this.write(batch.map((b) => b.item));
      batch.forEach((b, i) => {
        const answer = answers[i];
        if (answer instanceof Error) b.reject(answer);
        else b.resolve(answer as R);
      });
    } catch (error) {
      for (const b of batch) b.reject(error);
    } finally {
      this.writing = false;
      if (this.gathered.length > 0) this.schedule();
    }
  }
}
