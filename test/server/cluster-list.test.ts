import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialects } from '../support/databases.js';
import { type ServerProcess, startServerOn } from '../support/server.js';

/**
 * `GET /clusters` through the real server process on SQLite and PostgreSQL. The list keeps
 * each unchanged cluster's view and JSON between requests (server/cluster-list.ts) and
 * reads the nodes' version counts that the database keeps on write (migration 13): what
 * it shows must still follow every change at once, and be, cluster for cluster, what
 * `GET /clusters/{id}` shows.
 */
for (const dialect of dialects) {
  describe(`the cluster list on ${dialect}`, () => {
    let s: ServerProcess;
    let stop: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ server: s, stop } = await startServerOn(dialect));
    });
    afterAll(async () => stop?.());

    /** The list by name, checked against the one-cluster views unless something runs meanwhile. */
    const listed = async (compare = true) => {
      const res = await s.api('/api/v1/clusters');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      const items = res.body.items as Array<{ name: string; [key: string]: unknown }>;
      if (compare) for (const item of items) expect(item).toEqual((await s.api(`/api/v1/clusters/${item.name}`)).body);
      return new Map(items.map((c) => [c.name, c as any]));
    };

    const simulated = async (name: string, nodes: number) => {
      const res = await s.api('/api/v1/clusters', {
        body: { name, kind: 'simulated', simulation: { nodes, upgradeSeconds: 0.05, versions: { agent: '1.1.0' } } },
      });
      expect(res.status, res.text).toBe(201);
      return res.body.id as string;
    };

    it('follows nodes joining and leaving, a new window, an upgrade from start to end, and a deletion', async () => {
      await simulated('list-a', 3);
      await simulated('list-b', 2);
      let clusters = await listed();
      expect([...clusters.keys()]).toEqual(['list-a', 'list-b']);
      expect(clusters.get('list-a')).toMatchObject({
        status: 'Running',
        nodeCount: 3,
        activeUpgradeId: null,
        components: { docker: { versions: { '20.10.24': 3 }, latest: '28.5.2', upgradable: true } },
      });
      // Asked again with nothing changed: the same answer.
      expect(await listed()).toEqual(clusters);

      const added = await s.api('/api/v1/clusters/list-a/nodes', { body: { name: 'extra' } });
      expect(added.status, added.text).toBe(201);
      clusters = await listed();
      expect(clusters.get('list-a')).toMatchObject({ nodeCount: 4, components: { docker: { versions: { '20.10.24': 4 } } } });
      expect(clusters.get('list-b')).toMatchObject({ nodeCount: 2 });
      expect((await s.api(`/api/v1/clusters/list-a/nodes/${added.body.id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await listed()).get('list-a')).toMatchObject({ nodeCount: 3, components: { docker: { versions: { '20.10.24': 3 } } } });

      const window = { days: ['sat', 'sun'], start: '01:00', end: '05:00', timezone: 'Europe/Paris' };
      expect((await s.api('/api/v1/clusters/list-b', { method: 'PATCH', body: { window } })).status).toBe(200);
      expect((await listed()).get('list-b').window).toMatchObject(window);

      const started = await s.api('/api/v1/clusters/list-a/upgrades', { body: { component: 'docker' } });
      expect(started.status, started.text).toBe(201);
      // Its first batch starts at once: the nodes change meanwhile, so the views are not compared.
      expect((await listed(false)).get('list-a')).toMatchObject({
        activeUpgradeId: started.body.id,
        activeUpgradeComponent: 'docker',
        status: 'Upgrading',
        statusText: 'Docker-Engine is upgrading',
      });
      for (;;) {
        const upgrade = (await s.api(`/api/v1/upgrades/${started.body.id}`)).body;
        if (upgrade.state === 'Completed') break;
        expect(upgrade.state).toBe('Upgrading');
        // Read while it runs, so that the views kept between requests are put to the test.
        expect((await listed(false)).get('list-a').nodeCount).toBe(3);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await listed()).get('list-a')).toMatchObject({
        status: 'Running',
        statusText: 'Running',
        activeUpgradeId: null,
        nodeCount: 3,
        components: { docker: { versions: { '28.5.2': 3 }, latest: '28.5.2', upgradable: false } },
      });

      expect((await s.api('/api/v1/clusters/list-b', { method: 'DELETE' })).status).toBe(204);
      expect([...(await listed()).keys()]).toEqual(['list-a']);
    });
  });
}
