import { describe, expect, it } from 'vitest';
import { compareNatural } from '../../src/domain/versions.js';
import { dialects } from '../support/databases.js';
import { addCluster, addNodes, addUpgrade, storeForSuite } from '../support/store.js';

/**
 * The clusters and nodes repositories on each database: names unique where they must be,
 * a cluster's deletion taking all it holds, unavailability recorded once per change,
 * sealed secrets replaced, node pages in natural order by key, and an inventory sync
 * that never drops a node out of a running upgrade. The PostgreSQL database uses an ICU
 * collation, under which text does not compare by bytes.
 */
for (const dialect of dialects) {
  describe(`clusters and nodes repositories on ${dialect}`, () => {
    const suite = storeForSuite(dialect, { icuLocale: 'en-US' });

    it('keeps cluster names unique and lists clusters by name', async () => {
      const b = await addCluster(suite.store, 'b-cluster');
      const a = await addCluster(suite.store, 'a-cluster');
      await expect(addCluster(suite.store, 'a-cluster')).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
      expect(await suite.store.clusters.get(a.id)).toEqual(a);
      expect(await suite.store.clusters.findByName('b-cluster')).toEqual(b);
      expect(await suite.store.clusters.findByName('none')).toBeUndefined();
      const names = (await suite.store.clusters.list()).map((c) => c.name);
      expect(names.indexOf('a-cluster')).toBeLessThan(names.indexOf('b-cluster'));
    });

    it('records unavailability once per change', async () => {
      const c = await addCluster(suite.store, 'flaky');
      expect(await suite.store.clusters.setUnavailable(c.id, 'connection refused')).toBe(true);
      expect(await suite.store.clusters.setUnavailable(c.id, 'connection refused')).toBe(false);
      expect(await suite.store.clusters.setUnavailable(c.id, 'timed out')).toBe(true);
      expect((await suite.store.clusters.get(c.id))?.unavailableReason).toBe('timed out');
      expect(await suite.store.clusters.setUnavailable(c.id, null)).toBe(true);
      expect(await suite.store.clusters.setUnavailable(c.id, null)).toBe(false);
    });

    it('replaces a sealed secret of the same name and deletes a cluster with all it holds', async () => {
      const c = await addCluster(suite.store, 'doomed');
      await suite.store.clusters.putSecret(c.id, 'kubeconfig', 'v1:first');
      await suite.store.clusters.putSecret(c.id, 'kubeconfig', 'v1:second');
      expect(await suite.store.clusters.getSecret(c.id, 'kubeconfig')).toBe('v1:second');
      const nodes = await addNodes(suite.store, c.id, ['d1', 'd2']);
      const { upgrade } = await addUpgrade(suite.store, c.id, nodes);
      expect(await suite.store.clusters.delete(c.id)).toBe(true);
      expect(await suite.store.clusters.delete(c.id)).toBe(false);
      expect(await suite.store.clusters.get(c.id)).toBeUndefined();
      expect(await suite.store.nodes.list(c.id)).toEqual([]);
      expect(await suite.store.upgrades.get(upgrade.id)).toBeUndefined();
      expect(await suite.store.upgrades.listTasks(upgrade.id)).toEqual([]);
      expect(await suite.store.clusters.getSecret(c.id, 'kubeconfig')).toBeUndefined();
    });

    it('refuses a node name taken in its cluster, not in another', async () => {
      const c1 = await addCluster(suite.store, 'names-1');
      const c2 = await addCluster(suite.store, 'names-2');
      const [n] = await addNodes(suite.store, c1.id, ['same']);
      await expect(addNodes(suite.store, c1.id, ['same'])).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
      await addNodes(suite.store, c2.id, ['same']);
      expect(await suite.store.nodes.findByName(c1.id, 'same')).toEqual(n);
      expect(await suite.store.nodes.get(n!.id)).toEqual(n);
      expect((await suite.store.nodes.getMany([n!.id, 'nd_none'])).map((x) => x.id)).toEqual([n!.id]);
    });

    it('pages a cluster’s nodes in natural order of names, by key, whatever the collation', async () => {
      const c = await addCluster(suite.store, 'paged');
      const names = ['sim-10', 'sim-2', 'Sim-B', 'sim-a', 'sim-1', 'sim-0002', 'sim-', 'sim', 'sim-2a', 'sim-100', 'x', 'A'];
      await addNodes(suite.store, c.id, names);
      const seen: string[] = [];
      let after: string | null = null;
      do {
        const page = await suite.store.nodes.page(c.id, after, 5);
        seen.push(...page.items.map((n) => n.name));
        after = page.nextAfter;
      } while (after !== null);
      expect(seen).toEqual([...names].sort(compareNatural));
      expect((await suite.store.nodes.page(c.id, null, 12)).nextAfter).toBeNull();
    });

    it('updates versions and groups nodes by them and their distribution', async () => {
      const c = await addCluster(suite.store, 'versions');
      const nodes = await addNodes(suite.store, c.id, ['v1', 'v2', 'v3', 'v4']);
      await suite.store.nodes.setVersions([nodes[0]!.id, nodes[1]!.id], { docker: '26.1.5' });
      await suite.store.nodes.update(nodes[2]!.id, { status: 'Down', role: 'manager' });
      await suite.store.agents.recordHeartbeat(nodes[3]!.id, {}, { docker: '20.10.24' }, new Date().toISOString(), 'debian-12');
      const groups = await suite.store.nodes.versionGroups(c.id);
      expect(groups.sort((x, y) => x.count - y.count || String(x.distribution).localeCompare(String(y.distribution)))).toEqual([
        { clusterId: c.id, versions: { docker: '20.10.24' }, distribution: 'debian-12', count: 1 },
        { clusterId: c.id, versions: { docker: '20.10.24' }, distribution: null, count: 1 },
        { clusterId: c.id, versions: { docker: '26.1.5' }, distribution: null, count: 2 },
      ]);
      expect(await suite.store.nodes.get(nodes[2]!.id)).toMatchObject({
        status: 'Down',
        role: 'manager',
        versions: { docker: '20.10.24' },
      });
    });

    it('keeps each cluster’s version groups in step with every write to its nodes, and drops them with the cluster', async () => {
      const { store } = suite;
      const c = await addCluster(store, 'groups');
      const other = await addCluster(store, 'groups-other');
      /** The cluster's groups as [versions, distribution, count], largest first. */
      const groupsOf = async (id: string) =>
        (await store.nodes.versionGroups(id))
          .map((g) => [g.versions, g.distribution, g.count] as const)
          .sort((a, b) => b[2] - a[2] || JSON.stringify(a).localeCompare(JSON.stringify(b)));
      expect(await groupsOf(c.id)).toEqual([]);

      // Nodes join (one statement for several), in this cluster and in another.
      const [g1, g2, g3, g4] = await addNodes(store, c.id, ['g1', 'g2', 'g3', 'g4']);
      await addNodes(store, other.id, ['o1']);
      expect(await groupsOf(c.id)).toEqual([[{ docker: '20.10.24' }, null, 4]]);

      // Versions change by an engine step, an inventory sync and an agent's heartbeat
      // (which also reports a distribution); a write that changes neither counts nothing.
      await store.nodes.setVersions([g1!.id, g2!.id], { docker: '26.1.5' });
      await store.nodes.update(g3!.id, { versions: { docker: '26.1.5' } });
      await store.agents.recordHeartbeat(g4!.id, {}, { docker: '20.10.24' }, new Date().toISOString(), 'debian-12');
      await store.nodes.update(g1!.id, { status: 'Down', role: 'manager' });
      await store.agents.recordHeartbeat(g4!.id, {}, { docker: '20.10.24' }, new Date().toISOString(), 'debian-12');
      expect(await groupsOf(c.id)).toEqual([
        [{ docker: '26.1.5' }, null, 3],
        [{ docker: '20.10.24' }, 'debian-12', 1],
      ]);

      // A transaction that rolls back counts nothing; one that commits counts at once.
      await expect(
        store.tx(async (tx) => {
          await tx.nodes.setVersions([g4!.id], { docker: '28.5.2' });
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await store.tx(async (tx) => {
        await tx.nodes.setVersions([g2!.id, g3!.id], { docker: '28.5.2' });
        expect(await tx.nodes.versionGroups(c.id)).toHaveLength(3);
      });
      expect(await groupsOf(c.id)).toEqual([
        [{ docker: '28.5.2' }, null, 2],
        [{ docker: '20.10.24' }, 'debian-12', 1],
        [{ docker: '26.1.5' }, null, 1],
      ]);

      // Nodes leave: a group with none left is gone.
      expect(await store.nodes.delete(g1!.id)).toBe(true);
      expect(await groupsOf(c.id)).toEqual([
        [{ docker: '28.5.2' }, null, 2],
        [{ docker: '20.10.24' }, 'debian-12', 1],
      ]);
      const everyCluster = await store.nodes.versionGroups();
      expect(everyCluster.filter((g) => g.clusterId === other.id)).toEqual([
        { clusterId: other.id, versions: { docker: '20.10.24' }, distribution: null, count: 1 },
      ]);

      // Folding the counts (several writers) changes nothing they add up to.
      await store.nodes.foldVersionGroups();
      expect(await groupsOf(c.id)).toEqual([
        [{ docker: '28.5.2' }, null, 2],
        [{ docker: '20.10.24' }, 'debian-12', 1],
      ]);

      // The cluster is deleted with its nodes: its groups go, the other's stay.
      expect(await store.clusters.delete(c.id)).toBe(true);
      expect(await groupsOf(c.id)).toEqual([]);
      expect(await groupsOf(other.id)).toEqual([[{ docker: '20.10.24' }, null, 1]]);
      await store.nodes.foldVersionGroups();
      expect(await groupsOf(other.id)).toEqual([[{ docker: '20.10.24' }, null, 1]]);
    });

    it('moves the list revision with every write to what the cluster list shows, and only with those', async () => {
      const { store } = suite;
      if (store.adapter.concurrentWriters) {
        // Replicas: not kept (one row every writer updates); the list reads in full.
        expect(await store.clusters.listRevision()).toBeNull();
        return;
      }
      let last = await store.clusters.listRevision();
      const moved = async () => {
        const now = await store.clusters.listRevision();
        const result = now !== last;
        last = now;
        return result;
      };
      const c = await addCluster(store, 'revision');
      expect(await moved()).toBe(true);
      const [n1, n2] = await addNodes(store, c.id, ['r1', 'r2']);
      expect(await moved()).toBe(true);
      // Not shown in the list: a node's status, a heartbeat that reports the same versions.
      await store.nodes.update(n1!.id, { status: 'Down' });
      await store.agents.recordHeartbeat(n2!.id, {}, { docker: '20.10.24' }, new Date().toISOString(), null);
      expect(await moved()).toBe(false);
      await store.nodes.setVersions([n1!.id], { docker: '26.1.5' });
      expect(await moved()).toBe(true);
      await store.clusters.setWindow(c.id, { days: ['sat'], start: '01:00', end: '02:00', timezone: 'UTC' });
      expect(await moved()).toBe(true);
      await store.clusters.setUnavailable(c.id, 'connection refused');
      expect(await moved()).toBe(true);
      const { upgrade } = await addUpgrade(store, c.id, [n2!]);
      expect(await moved()).toBe(true);
      expect(await store.upgrades.casState(upgrade.id, 'Upgrading', { nextBatchAt: new Date().toISOString() })).toBe(true);
      expect(await moved()).toBe(false);
      expect(await store.upgrades.casState(upgrade.id, 'Upgrading', { state: 'Paused' })).toBe(true);
      expect(await moved()).toBe(true);
      await store.artifacts.upsert({ file: 'docker.tgz', component: 'docker', version: '26.1.5', method: 'binary', sha256: 'ab', size: 1 });
      expect(await moved()).toBe(true);
      expect(await store.clusters.delete(c.id)).toBe(true);
      expect(await moved()).toBe(true);
    });

    it.runIf(dialect === 'postgres')(
      'counts concurrent transactions that move nodes both ways without one waiting for the other',
      async () => {
        const { store } = suite;
        const c = await addCluster(store, 'groups-concurrent');
        const counts = async () => (await store.nodes.versionGroups(c.id)).map((g) => `${g.versions.docker ?? ''} ${g.count}`).sort();
        const [a, b] = await addNodes(store, c.id, ['a', 'b']);
        await store.nodes.setVersions([b!.id], { docker: '26.1.5' });
        // The first moves a to 26.1.5 and stays open until the second, moving b back to
        // 20.10.24, has committed: with a shared count per group they would wait for each
        // other, and the test would never end.
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        let moved!: () => void;
        const first = store.tx(async (tx) => {
          await tx.nodes.setVersions([a!.id], { docker: '26.1.5' });
          moved();
          await held;
        });
        await new Promise<void>((resolve) => (moved = resolve));
        await store.tx((tx) => tx.nodes.setVersions([b!.id], { docker: '20.10.24' }));
        expect(await counts()).toEqual(['20.10.24 2']);
        release();
        await first;
        expect(await counts()).toEqual(['20.10.24 1', '26.1.5 1']);
        await store.nodes.foldVersionGroups();
        expect(await counts()).toEqual(['20.10.24 1', '26.1.5 1']);
      },
    );

    it('syncs an inventory: adds and updates nodes, removes vanished ones only while no upgrade runs', async () => {
      const c = await addCluster(suite.store, 'inventory');
      const [keep, gone] = await addNodes(suite.store, c.id, ['keep', 'gone']);
      const events: string[] = [];
      const listener = (e: { type: string; clusterId: string | null; message: string }) => {
        if (e.clusterId === c.id) events.push(`${e.type}: ${e.message}`);
      };
      suite.store.bus.on('event', listener);
      try {
        await suite.store.tx((tx) =>
          tx.nodes.reconcile(
            c.id,
            [
              { name: 'keep', role: 'manager', status: 'Ready', versions: { docker: '26.1.5' } },
              { name: 'new', role: 'worker', status: 'Ready', versions: { docker: '20.10.24' } },
            ],
            'engine',
          ),
        );
        expect((await suite.store.nodes.list(c.id)).map((n) => n.name).sort()).toEqual(['keep', 'new']);
        expect(await suite.store.nodes.get(keep!.id)).toMatchObject({ role: 'manager', versions: { docker: '26.1.5' } });
        expect(await suite.store.nodes.get(gone!.id)).toBeUndefined();
        // While an upgrade is active its membership is locked: a vanished node stays, Down.
        const nodes = await suite.store.nodes.list(c.id);
        await addUpgrade(suite.store, c.id, nodes);
        await suite.store.nodes.reconcile(
          c.id,
          [{ name: 'keep', role: 'manager', status: 'Ready', versions: { docker: '26.1.5' } }],
          'engine',
        );
        expect((await suite.store.nodes.findByName(c.id, 'new'))?.status).toBe('Down');
        expect(events).toEqual(['cluster.node_added: node new joined', 'cluster.node_removed: node gone left the cluster']);
      } finally {
        suite.store.bus.off('event', listener);
      }
    });
  });
}
