import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialects } from '../support/databases.js';
import type { ProgressView as Progress } from '../../src/api/index.js';
import { waitFor } from '../support/engine.js';
import { type ServerProcess, startServerOn } from '../support/server.js';

/**
 * Where an upgrade stands, when it should end and why it ended, through the real server
 * process on SQLite and PostgreSQL: the ETA held against the real remaining time on
 * simulated clusters of several sizes and speeds, none while paused, and the end reason
 * of each way an upgrade ends (a failed snapshot left waiting included).
 */
const until = <T>(check: () => Promise<T | undefined | false>, ms = 30_000) => waitFor(check, ms);

for (const dialect of dialects) {
  describe(`progress and end reasons on ${dialect}`, () => {
    let s: ServerProcess;
    let stop: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ server: s, stop } = await startServerOn(dialect, { args: ['--paused-ttl', '4s'] }));
    });
    afterAll(async () => {
      await stop?.();
    });

    const createCluster = async (name: string, simulation: Record<string, unknown>) => {
      const res = await s.api('/api/v1/clusters', { body: { name, kind: 'simulated', simulation } });
      expect(res.status, res.text).toBe(201);
      return res.body as { id: string };
    };
    const getUpgrade = async (id: string) => (await s.api(`/api/v1/upgrades/${id}`)).body;
    const waitState = (id: string, state: string, ms = 30_000) =>
      until(async () => {
        const u = await getUpgrade(id);
        return u.state === state ? u : undefined;
      }, ms);

    it('estimates the end within a factor of 2 of the real remaining time once two batches have ended', async () => {
      const cases = [
        { name: 'eta-a', nodes: 40, upgradeSeconds: 0.3, policy: { maxBatchPercent: 25 } },
        { name: 'eta-b', nodes: 20, upgradeSeconds: 0.4, policy: { maxBatchPercent: 10, soakSeconds: 0.3 } },
        { name: 'eta-c', nodes: 60, upgradeSeconds: 0.15, policy: { maxBatchPercent: 20 } },
      ];
      const results = await Promise.all(
        cases.map(async (c) => {
          const cluster = await createCluster(c.name, { nodes: c.nodes, upgradeSeconds: c.upgradeSeconds, versions: { agent: '1.1.0' } });
          const start = await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker', policy: c.policy } });
          expect(start.status, start.text).toBe(201);
          const first = start.body.progress as Progress;
          // The first batch may have started by the time the answer is written (docs/design.md §8).
          expect(first).toMatchObject({ nodesDone: 0, nodesTotal: c.nodes, etaSeconds: null });
          expect(first.batch).toBeLessThanOrEqual(1);
          expect(first.batch + first.plannedSizes.length).toBe(first.batches);
          const samples: Array<{ at: number; eta: number; progress: Progress }> = [];
          for (;;) {
            const u = await getUpgrade(start.body.id);
            const finished = (u.batches as Array<{ finishedAt: string | null }>).filter((b) => b.finishedAt).length;
            if (u.state === 'Completed') return { c, samples, done: u };
            if (finished >= 2 && u.progress.etaSeconds !== null)
              samples.push({ at: Date.now(), eta: u.progress.etaSeconds, progress: u.progress });
            await new Promise((r) => setTimeout(r, 100));
          }
        }),
      );
      for (const { c, samples, done } of results) {
        expect(samples.length, c.name).toBeGreaterThan(3);
        const end = Date.parse(done.finishedAt);
        for (const sample of samples) {
          const actual = (end - sample.at) / 1000;
          // A factor of 2 either way; half a second of slack for the last moments, where
          // both are fractions of a second and a poll's own latency counts.
          const ok = (sample.eta <= 2 * actual && sample.eta >= actual / 2) || Math.abs(sample.eta - actual) <= 0.5;
          expect(ok, `${c.name}: ETA ${sample.eta} s with ${actual.toFixed(2)} s really left`).toBe(true);
        }
        // The planned batches shrink as they start; the total stays what the policy says.
        expect(samples.every((x) => x.progress.batch + x.progress.plannedSizes.length === x.progress.batches)).toBe(true);
        expect(done.progress).toMatchObject({ etaSeconds: 0, etaAt: done.finishedAt, nodesDone: c.nodes, plannedSizes: [] });
        expect(done.progress.batch).toBe(done.batches.length);
        expect(done.endReason).toMatchObject({ kind: 'completed', actor: 'engine', at: done.finishedAt });
        expect(done.endReason.message).toMatch(new RegExp(`^Completed: Docker-Engine 28\\.5\\.2 is on all ${c.nodes} nodes$`));
      }
    }, 90_000);

    it('has no ETA while paused, re-plans the ramp from 1 on resume, and keeps the pause only while paused', async () => {
      const cluster = await createCluster('steer-eta', { nodes: 30, upgradeSeconds: 0.3, versions: { agent: '1.1.0' } });
      const up = (
        await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker', policy: { maxBatchPercent: 20 } } })
      ).body;
      await until(async () => (await getUpgrade(up.id)).batches.length >= 3);
      const paused = (await s.api(`/api/v1/upgrades/${up.id}/pause`, { method: 'POST' })).body;
      expect(paused.progress).toMatchObject({ etaSeconds: null, etaAt: null });
      expect(paused.pauseReason).toMatchObject({ kind: 'user', actor: 'admin' });
      // While paused, the plan starts the ramp again at 1.
      const settled = await until(async () => {
        const u = await getUpgrade(up.id);
        return u.nodes.running === 0 ? u : undefined;
      });
      expect(settled.progress.plannedSizes[0]).toBe(1);
      const resumed = (await s.api(`/api/v1/upgrades/${up.id}/resume`, { method: 'POST' })).body;
      expect(resumed.pauseReason).toBeNull();
      expect(resumed.endReason).toBeNull();
      const done = await waitState(up.id, 'Completed');
      expect(done.progress.batches).toBe(done.batches.length);
      expect(done.pauseReason).toBeNull();
    }, 60_000);

    it('says who canceled and why it was paused', async () => {
      const cluster = await createCluster('cancel-why', {
        nodes: 20,
        upgradeSeconds: 0.2,
        failNodes: ['sim-002'],
        versions: { agent: '1.1.0' },
      });
      const up = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } })).body;
      const paused = await waitState(up.id, 'Paused');
      expect(paused.pauseReason).toMatchObject({ kind: 'error' });
      const canceled = (await s.api(`/api/v1/upgrades/${up.id}/cancel`, { method: 'POST' })).body;
      expect(canceled.state).toBe('Canceled');
      expect(canceled.pauseReason).toBeNull();
      expect(canceled.endReason).toMatchObject({ kind: 'canceled', actor: 'admin', at: canceled.finishedAt });
      expect(canceled.endReason.message).toMatch(
        /^Canceled by admin \(it was paused: .*sim-002.*\); \d+ node\(s\) will not be upgraded, \d+ stay upgraded$/,
      );
      expect(canceled.progress).toMatchObject({ etaSeconds: null, plannedSizes: [] });
      // It lasts: the list says it too.
      const listed = (await s.api(`/api/v1/upgrades?clusterId=${cluster.id}`)).body.items[0];
      expect(listed.endReason).toEqual(canceled.endReason);
    });

    it('counts a failed snapshot as paused: auto-cancel time, the nodes named, then canceled automatically', async () => {
      const cluster = await createCluster('snap-ttl', {
        nodes: 6,
        upgradeSeconds: 0.2,
        snapshotFailNodes: ['sim-002', 'sim-005'],
        versions: { agent: '1.1.0' },
      });
      const up = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker', snapshot: 'before' } })).body;
      const waiting = await waitState(up.id, 'SnapshotFailed');
      expect(waiting.pausedAt).not.toBeNull();
      expect(Date.parse(waiting.autoCancelAt) - Date.parse(waiting.pausedAt)).toBe(4000);
      expect(waiting.snapshots).toMatchObject({ failed: 2, failedNodes: ['sim-002', 'sim-005'] });
      expect(waiting.progress.etaSeconds).toBeNull();
      // Membership is locked while it waits…
      expect((await s.api(`/api/v1/clusters/${cluster.id}/nodes`, { body: { name: 'late-1' } })).status).toBe(409);
      const canceled = await waitState(up.id, 'Canceled', 15_000);
      expect(canceled.endReason).toMatchObject({ kind: 'auto_canceled', actor: 'engine' });
      expect(canceled.endReason.message).toBe(
        'Canceled automatically after 4 seconds stopped at a failed snapshot; its events and logs were deleted',
      );
      expect(canceled.autoCancelAt).toBeNull();
      const events = (await s.api(`/api/v1/events?upgradeId=${up.id}`)).body.items;
      expect(events.map((e: { type: string }) => e.type)).toEqual(['upgrade.auto_canceled']);
      // …and released once it is canceled: a new upgrade may start.
      const again = await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
      expect(again.status, again.text).toBe(201);
    }, 40_000);

    it('records a quit after a failed snapshot', async () => {
      const cluster = await createCluster('snap-quit', {
        nodes: 4,
        upgradeSeconds: 0.2,
        snapshotFailNodes: ['sim-003'],
        versions: { agent: '1.1.0' },
      });
      const up = (await s.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker', snapshot: 'before' } })).body;
      await waitState(up.id, 'SnapshotFailed');
      const quit = (await s.api(`/api/v1/upgrades/${up.id}/quit`, { method: 'POST' })).body;
      expect(quit.endReason).toMatchObject({ kind: 'quit', actor: 'admin' });
      expect(quit.endReason.message).toMatch(/^Quit after a failed snapshot by admin; 4 node\(s\) will not be upgraded, 0 stay upgraded$/);
    });
  });
}
