import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, dispositionOf } from '../../src/agent/journal.js';

describe('the task journal', async () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'upshift-journal-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a new task, resumes a started one and only reports a finished one', async () => {
    const j = new Journal(dir);
    expect(dispositionOf(j.get('t.1'))).toBe('run');
    await j.begin('t.1', 'docker-engine');
    expect(dispositionOf(j.get('t.1'))).toBe('resume');
    await j.finish('t.1', { result: 'succeeded', versions: { docker: '26.1.5' } });
    expect(dispositionOf(j.get('t.1'))).toBe('report');
    expect(j.unreported().map((e) => e.taskKey)).toEqual(['t.1']);
    j.markReported('t.1');
    expect(j.unreported()).toEqual([]);
    expect(dispositionOf(j.get('t.1'))).toBe('report');
  });

  it('never starts a journaled task key again', async () => {
    const j = new Journal(dir);
    await j.begin('t.1', 'docker-engine');
    await expect(j.begin('t.1', 'docker-engine')).rejects.toThrow(/never started again/);
    await j.finish('t.1', { result: 'failed', step: 'start', error: 'x' });
    await expect(j.begin('t.1', 'docker-engine')).rejects.toThrow(/never started again/);
  });

  it('survives a restart: checkpoints, data and results are read back', async () => {
    const j = new Journal(dir);
    await j.begin('t.1', 'docker-engine');
    await j.checkpoint('t.1', 'prepared', { prepared: { fromVersion: '20.10.24', previousTarget: 'versions/20.10.24' } });
    await j.checkpoint('t.1', 'stopping');
    await j.begin('t.2', 'snapshot');
    await j.finish('t.2', { result: 'succeeded', ref: 'btrfs:upshift-u1' });

    const after = new Journal(dir);
    const e1 = after.get('t.1');
    expect(dispositionOf(e1)).toBe('resume');
    expect(e1?.step).toBe('stopping');
    expect(e1?.data['prepared']).toEqual({ fromVersion: '20.10.24', previousTarget: 'versions/20.10.24' });
    expect(dispositionOf(after.get('t.2'))).toBe('report');
    expect(after.get('t.2')?.result?.ref).toBe('btrfs:upshift-u1');
    expect(after.unreported().map((e) => e.taskKey)).toEqual(['t.2']);
    expect((await stat(after.file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(after.file, 'utf8')).version).toBe(1);
  });

  it('writes an acknowledgement with the next write or at flush; before that a restart reports the result again', async () => {
    const j = new Journal(dir);
    await j.begin('t.1', 'docker-engine');
    await j.finish('t.1', { result: 'succeeded' });
    j.markReported('t.1');
    // A crash now: the acknowledgement was not written, so the result goes out once more.
    expect(new Journal(dir).unreported().map((e) => e.taskKey)).toEqual(['t.1']);
    await j.begin('t.2', 'snapshot');
    expect(new Journal(dir).unreported()).toEqual([]);
    await j.finish('t.2', { result: 'succeeded' });
    j.markReported('t.2');
    await j.flush();
    expect(new Journal(dir).unreported()).toEqual([]);
  });

  it('prunes old reported entries and keeps unfinished ones', async () => {
    const j = new Journal(dir);
    const long = new Date(Date.now() - 30 * 24 * 3600_000);
    await j.begin('old', 'docker-engine', long);
    await j.finish('old', { result: 'succeeded' }, long);
    j.markReported('old');
    await j.begin('open', 'docker-engine', long);
    await j.begin('unreported', 'snapshot', long);
    await j.finish('unreported', { result: 'succeeded' }, long);
    await j.prune();
    expect(j.get('old')).toBeUndefined();
    expect(j.get('open')).toBeDefined();
    expect(j.get('unreported')).toBeDefined();
  });

  it('writes one change at a time, each on disk when its call resolves, also when changes overlap', async () => {
    const j = new Journal(dir);
    // Three agents' worth of changes made without waiting for each other.
    const writes = [j.begin('t.1', 'docker-engine'), j.begin('t.2', 'docker-engine'), j.begin('t.3', 'containerd')];
    await writes[0];
    expect(new Journal(dir).get('t.1')?.state).toBe('started');
    await Promise.all(writes);
    const checkpoint = j.checkpoint('t.2', 'stopping', { from: '20.10.24' });
    const finish = j.finish('t.3', { result: 'failed', step: 'preflight', error: 'x' });
    await checkpoint;
    expect(new Journal(dir).get('t.2')?.step).toBe('stopping');
    await finish;
    const after = new Journal(dir);
    expect(after.all().map((e) => [e.taskKey, e.state])).toEqual([
      ['t.1', 'started'],
      ['t.2', 'started'],
      ['t.3', 'finished'],
    ]);
    expect(after.get('t.2')?.data).toEqual({ from: '20.10.24' });
  });
});
