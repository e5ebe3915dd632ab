import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cli, tableRows } from '../support/cli.js';
import { dialects } from '../support/databases.js';
import { type ServerProcess, startServerOn } from '../support/server.js';

/**
 * The catalog per distribution, through the real server process on SQLite and PostgreSQL:
 * agents report `debian-12` or `debian-13` on join and heartbeat, the node views show it,
 * the cluster's catalog says which versions install there and why not, the default target
 * is the newest that does, and plan and start refuse a version for another distribution
 * with VERSION_NOT_INSTALLABLE, naming the nodes, without changing anything.
 */
for (const dialect of dialects) {
  describe(`the catalog per distribution on ${dialect}`, () => {
    let s: ServerProcess;
    let stop: (() => Promise<void>) | undefined;
    let cli: Cli;

    beforeAll(async () => {
      ({ server: s, stop } = await startServerOn(dialect));
      cli = new Cli(s);
    });
    afterAll(async () => {
      cli?.cleanup();
      await stop?.();
    });

    const facts = (versions: Record<string, string>, distribution?: string) => ({
      hostname: 'h',
      os: distribution === 'debian-12' ? 'Debian GNU/Linux 12 (bookworm)' : 'Debian GNU/Linux 13 (trixie)',
      ...(distribution ? { distribution } : {}),
      arch: 'amd64',
      agentVersion: '1.1.0',
      versions,
      engineReachable: true,
    });

    /** A hosts cluster whose agents join with these facts, as real agents would over HTTP. */
    const hostsCluster = async (name: string, nodes: Array<{ name: string; versions: Record<string, string>; distribution?: string }>) => {
      const created = await s.api('/api/v1/clusters', { body: { name, kind: 'hosts' } });
      expect(created.status, created.text).toBe(201);
      const credentials: Record<string, string> = {};
      for (const n of nodes) {
        const res = await fetch(`${s.url}/api/v1/agent/join`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ joinToken: created.body.joinToken, name: n.name, facts: facts(n.versions, n.distribution), protocol: 1 }),
        });
        expect(res.status).toBe(201);
        credentials[n.name] = ((await res.json()) as { credential: string }).credential;
      }
      return credentials;
    };
    const heartbeat = (credential: string, body: unknown) =>
      fetch(`${s.url}/api/v1/agent/heartbeat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const versionsOf = async (cluster: string, component: string) =>
      (await s.api(`/api/v1/clusters/${cluster}/catalog`)).body.components[component] as {
        latest: string;
        default: string | null;
        versions: Array<{ version: string; installable: boolean; reason: string | null; distributions?: string[] }>;
      };

    it('offers Debian 13 nodes the Debian 13 versions, 28.5.2 by default, and refuses the Debian 12 one', async () => {
      await hostsCluster('trixie', [
        { name: 't-1', versions: { docker: '26.1.5+dfsg1', containerd: '1.7.24~ds1' }, distribution: 'debian-13' },
        { name: 't-2', versions: { docker: '26.1.5+dfsg1', containerd: '1.7.24~ds1' }, distribution: 'debian-13' },
      ]);
      const nodes = (await s.api('/api/v1/clusters/trixie/nodes')).body.items;
      expect(nodes.map((n: { name: string; distribution: string }) => [n.name, n.distribution])).toEqual([
        ['t-1', 'debian-13'],
        ['t-2', 'debian-13'],
      ]);

      const docker = await versionsOf('trixie', 'docker');
      expect(docker.latest).toBe('28.5.2');
      expect(docker.default).toBe('28.5.2');
      expect(docker.versions.map((v) => [v.version, v.installable, v.reason])).toEqual([
        ['20.10.24', false, 'Debian 12 packages; nodes t-1, t-2 run debian-13'],
        ['26.1.5', true, null],
        ['28.5.2', true, null],
      ]);
      expect(docker.versions[2]?.distributions).toEqual(['debian-13']);
      expect((await versionsOf('trixie', 'containerd')).default).toBe('2.1.9');
      expect((await s.api('/api/v1/clusters/trixie')).body.components.docker).toEqual({
        versions: { '26.1.5+dfsg1': 2 },
        latest: '28.5.2',
        upgradable: true,
      });
      // The agent's own bundle names no distribution: it installs anywhere.
      expect((await versionsOf('trixie', 'agent')).versions.every((v) => v.installable && v.distributions === undefined)).toBe(true);

      const plan = await s.api('/api/v1/clusters/trixie/upgrades/plan', { body: { component: 'docker' } });
      expect(plan.status, plan.text).toBe(200);
      expect(plan.body).toMatchObject({
        toVersion: '28.5.2',
        total: 2,
        refusal: null,
        notOffered: [{ version: '20.10.24', reason: 'Debian 12 packages; nodes t-1, t-2 run debian-13' }],
      });

      const refusedPlan = await s.api('/api/v1/clusters/trixie/upgrades/plan', { body: { component: 'docker', toVersion: '20.10.24' } });
      expect(refusedPlan.status).toBe(409);
      expect(refusedPlan.body.error).toMatchObject({
        code: 'VERSION_NOT_INSTALLABLE',
        message:
          'Docker-Engine 20.10.24 does not install on 2 nodes of trixie (Debian 12 packages; nodes t-1, t-2 run debian-13): choose another version; versions that install on trixie: 26.1.5, 28.5.2',
        details: {
          version: '20.10.24',
          nodes: [
            { name: 't-1', distribution: 'debian-13' },
            { name: 't-2', distribution: 'debian-13' },
          ],
        },
      });
      const refusedStart = await s.api('/api/v1/clusters/trixie/upgrades', { body: { component: 'docker', toVersion: '20.10.24' } });
      expect(refusedStart.status).toBe(409);
      expect(refusedStart.body.error.code).toBe('VERSION_NOT_INSTALLABLE');
      expect(refusedStart.body.error.message).toBe(refusedPlan.body.error.message);
      // Nothing changed: no upgrade, the nodes as they were; the refusal is on record.
      expect((await s.api('/api/v1/upgrades?clusterId=trixie')).body.items).toEqual([]);
      expect((await s.api('/api/v1/clusters/trixie')).body).toMatchObject({ status: 'Running', activeUpgradeId: null });
      const events = (await s.api('/api/v1/events?clusterId=trixie&type=upgrade.refused')).body.items;
      expect(events.map((e: { message: string }) => e.message)).toEqual([
        `start a docker upgrade refused (VERSION_NOT_INSTALLABLE): ${refusedStart.body.error.message}`,
      ]);
    });

    it('lets nodes without a distribution pass, and follows what heartbeats report', async () => {
      const credentials = await hostsCluster('bookworm', [
        { name: 'b-1', versions: { docker: '20.10.24+dfsg1', 'sandboxed-runtime': '20221219' }, distribution: 'debian-12' },
        { name: 'b-2', versions: { docker: '20.10.24+dfsg1', 'sandboxed-runtime': '20221219' }, distribution: 'debian-12' },
        // An agent before distributions were reported.
        { name: 'b-3', versions: { docker: '20.10.24+dfsg1', 'sandboxed-runtime': '20221219' } },
      ]);
      const docker = await versionsOf('bookworm', 'docker');
      // Nothing newer than what the nodes run installs on Debian 12.
      expect(docker.default).toBe('20.10.24');
      expect(docker.versions.map((v) => [v.version, v.installable, v.reason])).toEqual([
        ['20.10.24', true, null],
        ['26.1.5', false, 'Debian 13 packages; nodes b-1, b-2 run debian-12'],
        ['28.5.2', false, 'Debian 13 packages; nodes b-1, b-2 run debian-12'],
      ]);
      // Not upgradable: the catalog's newer versions are Debian 13 packages.
      expect((await s.api('/api/v1/clusters/bookworm')).body.components.docker).toMatchObject({ latest: '28.5.2', upgradable: false });
      const listed = (await s.api('/api/v1/clusters')).body.items.find((c: { name: string }) => c.name === 'bookworm');
      expect(listed.components.docker.upgradable).toBe(false);
      expect(listed.components['sandboxed-runtime'].upgradable).toBe(true);
      const nothing = await s.api('/api/v1/clusters/bookworm/upgrades/plan', { body: { component: 'docker' } });
      expect(nothing.body).toMatchObject({ toVersion: '20.10.24', total: 0, refusal: { code: 'NOTHING_TO_UPGRADE' } });
      const runsc = await s.api('/api/v1/clusters/bookworm/upgrades/plan', { body: { component: 'sandboxed-runtime' } });
      expect(runsc.body).toMatchObject({ toVersion: '20240729', total: 3, refusal: null, notOffered: [] });

      // b-1 is reinstalled with Debian 13 (and its Docker 26.1.5) and says so in its next
      // heartbeat; b-3's agent, upgraded, reports Debian 12.
      expect((await heartbeat(credentials['b-1']!, { facts: facts({ docker: '26.1.5+dfsg1' }, 'debian-13') })).status).toBe(200);
      expect((await heartbeat(credentials['b-3']!, { facts: facts({ docker: '20.10.24+dfsg1' }, 'debian-12') })).status).toBe(200);
      const after = await versionsOf('bookworm', 'docker');
      expect(after.versions.map((v) => [v.version, v.reason])).toEqual([
        ['20.10.24', 'Debian 12 packages; node b-1 runs debian-13'],
        ['26.1.5', 'Debian 13 packages; nodes b-2, b-3 run debian-12'],
        ['28.5.2', 'Debian 13 packages; nodes b-2, b-3 run debian-12'],
      ]);
      // No version installs on every node now: the default is refused with every reason.
      const none = await s.api('/api/v1/clusters/bookworm/upgrades', { body: { component: 'docker' } });
      expect(none.status).toBe(409);
      expect(none.body.error.code).toBe('VERSION_NOT_INSTALLABLE');
      expect(none.body.error.message).toBe(
        'no Docker-Engine version in the catalog installs on the nodes of bookworm (20.10.24: Debian 12 packages; node b-1 runs debian-13; 26.1.5: Debian 13 packages; nodes b-2, b-3 run debian-12; 28.5.2: Debian 13 packages; nodes b-2, b-3 run debian-12): add one for their distribution to the catalog',
      );
      expect(none.body.error.details.notOffered).toHaveLength(3);

      // A binary archive of 26.1.5 in the mirror installs anywhere: now 26.1.5 is offered.
      const put = await fetch(`${s.url}/api/v1/artifacts/docker/26.1.5/docker-engine-26.1.5-amd64.tar.gz?method=binary`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream' },
        body: Buffer.from('docker 26.1.5 binaries'),
      });
      expect(put.status).toBe(201);
      const withBinary = await versionsOf('bookworm', 'docker');
      expect(withBinary.default).toBe('26.1.5');
      expect(withBinary.versions.map((v) => [v.version, v.installable, v.distributions ?? 'anywhere'])).toEqual([
        ['20.10.24', false, ['debian-12']],
        ['26.1.5', true, 'anywhere'],
        ['28.5.2', false, ['debian-13']],
      ]);
      const planned = await s.api('/api/v1/clusters/bookworm/upgrades/plan', { body: { component: 'docker' } });
      expect(planned.body).toMatchObject({ toVersion: '26.1.5', total: 2, refusal: null });
      expect((await s.api('/api/v1/clusters/bookworm')).body.components.docker.upgradable).toBe(true);
      const inList = async () =>
        (await s.api('/api/v1/clusters')).body.items.find((c: { name: string }) => c.name === 'bookworm').components.docker.upgradable;
      expect(await inList()).toBe(true);
      expect((await s.api('/api/v1/artifacts/docker-engine-26.1.5-amd64.tar.gz', { method: 'DELETE' })).status).toBe(204);
      // The list follows the mirror as it changes (its views are kept while nothing does).
      expect(await inList()).toBe(false);

      // A distribution that os-release could not have given is refused and changes nothing.
      const bad = await heartbeat(credentials['b-2']!, { facts: facts({ docker: '20.10.24+dfsg1' }, 'Debian 13; rm -rf /') });
      expect(bad.status).toBe(422);
      expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/facts\.distribution must be ID-VERSION_ID/);
      const b2 = (await s.api('/api/v1/clusters/bookworm/nodes')).body.items.find((n: { name: string }) => n.name === 'b-2');
      expect(b2.distribution).toBe('debian-12');
    });

    it('shows it in the CLI: the node list, and the versions plan does not offer', async () => {
      const list = await cli.run(['node', 'list', 'trixie']);
      expect(list.code, list.stderr).toBe(0);
      const rows = tableRows(list.stdout);
      expect(rows[0]?.at(-1)).toBe('DISTRIBUTION');
      expect(rows.slice(1).map((r) => [r[0], r.at(-1)])).toEqual([
        ['t-1', 'debian-13'],
        ['t-2', 'debian-13'],
      ]);

      const plan = await cli.run(['upgrade', 'plan', 'trixie', '--component', 'docker']);
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stdout).toMatch(/^Docker-Engine → 28\.5\.2 on trixie: 2 nodes in 2 batches/);
      expect(plan.stdout).toContain('\nNot offered: 20.10.24 (Debian 12 packages; nodes t-1, t-2 run debian-13)\n');

      const refused = await cli.run(['upgrade', 'start', 'trixie', '--component', 'docker', '--to', '20.10.24']);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(
        'Docker-Engine 20.10.24 does not install on 2 nodes of trixie (Debian 12 packages; nodes t-1, t-2 run debian-13)',
      );
      expect((await s.api('/api/v1/upgrades?clusterId=trixie')).body.items).toEqual([]);
    });
  });
}
