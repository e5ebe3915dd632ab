import { afterAll, describe, expect, it } from 'vitest';
import { dialects, freshPgDatabase } from '../support/databases.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * kill -9 the server in the middle of batches, start it again on the same database:
 * the upgrade goes on where it was and every node is upgraded exactly once.
 */
for (const dialect of dialects) {
  describe(`crash safety on ${dialect}`, () => {
    let s: ServerProcess | undefined;
    let drop: (() => Promise<void>) | undefined;
    afterAll(async () => {
      await s?.stop();
      s?.cleanup();
      await drop?.();
    });

    it('finishes after kill -9 mid-batch, each node started and upgraded once', async () => {
      let database: string | undefined;
      if (dialect === 'postgres') {
        const db = await freshPgDatabase();
        database = db.url;
        drop = db.drop;
      }
      s = await startServerProcess({ database, args: ['--lease-ttl', '1s'] });
      const created = await s.api('/api/v1/clusters', {
        body: { name: 'crashy', kind: 'simulated', simulation: { nodes: 40, upgradeSeconds: 0.3, versions: { agent: '1.1.0' } } },
      });
      const up = (await s.api(`/api/v1/clusters/${created.body.id}/upgrades`, { body: { component: 'docker' } })).body;
      for (let kill = 0; kill < 4; kill++) {
        // Wait until a batch is running, then crash at a different moment each time.
        for (;;) {
          const u = (await s.api(`/api/v1/upgrades/${up.id}`)).body;
          if (u.nodes.running > 0) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        await new Promise((r) => setTimeout(r, 40 + kill * 70));
        await s.kill9();
        expect(s.child.signalCode).toBe('SIGKILL');
        await s.restart();
      }
      let final;
      for (;;) {
        final = (await s.api(`/api/v1/upgrades/${up.id}`)).body;
        if (final.state === 'Completed') break;
        expect(['Upgrading']).toContain(final.state);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(final.nodes).toMatchObject({ total: 40, succeeded: 40 });
      const events = (await s.api(`/api/v1/events?upgradeId=${up.id}&limit=500`)).body.items as Array<{ type: string; nodeId: string }>;
      const started = events.filter((e) => e.type === 'node.started').map((e) => e.nodeId);
      const succeeded = events.filter((e) => e.type === 'node.succeeded').map((e) => e.nodeId);
      expect(started).toHaveLength(40);
      expect(new Set(started).size).toBe(40);
      expect(succeeded).toHaveLength(40);
      expect(new Set(succeeded).size).toBe(40);
      const tasks = (await s.api(`/api/v1/upgrades/${up.id}/nodes`)).body.items as Array<{ attempt: number }>;
      expect(tasks.every((t) => t.attempt === 1)).toBe(true);
      const sizes = final.batches.map((b: { size: number }) => b.size);
      expect(sizes).toEqual([1, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 1]);
    });
  });
}
