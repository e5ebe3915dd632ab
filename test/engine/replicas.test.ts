import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshPgDatabase, pgUrl } from '../support/databases.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * Several replicas on one PostgreSQL database: each upgrade is driven by one replica at a
 * time under a lease; kill -9 the driving replica at random moments and another takes
 * over; restart PostgreSQL and the replicas go on. Bounded for CI: 20 kills and two
 * restarts within about two and a half minutes. Then replicas whose clocks are 30 s
 * behind and ahead (Debian's faketime): leases expire by the database's clock, so
 * takeover stays prompt and no live lease is stolen (about 45 s more).
 */
const suite = pgUrl ? describe : describe.skip;

async function until<T>(fn: () => Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function checkEvents(events: Array<{ type: string; nodeId: string | null }>, cap: number): string[] {
  const problems: string[] = [];
  let running = 0;
  const started = new Set<string>();
  for (const e of events) {
    if (e.type === 'node.started') {
      if (e.nodeId && started.has(e.nodeId)) problems.push(`node ${e.nodeId} started twice`);
      if (e.nodeId) started.add(e.nodeId);
      running++;
      if (running > cap) problems.push(`${running} running with cap ${cap}`);
    }
    if (e.type === 'node.succeeded' || e.type === 'node.failed') running--;
  }
  return problems;
}

/**
 * Debian's libfaketime, preloaded straight into a replica's node process with the
 * variables `faketime -f` sets: the `faketime` command forks and waits, so the replica
 * would not be its child, and kill -9 would hit the wrapper instead.
 */
function libfaketime(): string {
  let listed: string[] = [];
  try {
    listed = execFileSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8' }).split('\n');
  } catch {
    // not a Debian package here: try the usual place
  }
  const found = [...listed, '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'].find(
    (path) => path.endsWith('/libfaketime.so.1') && existsSync(path),
  );
  if (!found) throw new Error("libfaketime is missing: install Debian's faketime (apt-get install -y faketime)");
  return found;
}

/** The environment of a replica whose wall clock is `offset` (`-30s`, `+30s`) off; its monotonic clock (timers) is left alone. */
const skewedClock = (offset: string) => ({ LD_PRELOAD: libfaketime(), FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: '1' });

/** The server's clock as its HTTP Date header tells it (second resolution), minus this machine's. */
async function clockOffsetMs(s: ServerProcess): Promise<number> {
  const { headers } = await s.api('/readyz', { token: null });
  return Date.parse(String(headers['date'])) - Date.now();
}

suite('replicas on PostgreSQL', () => {
  const pgDir = mkdtempSync(join(tmpdir(), 'upshift-replicas-'));
  let url = '';
  const servers: ServerProcess[] = [];
  afterAll(async () => {
    for (const s of servers) {
      await s.stop().catch(() => undefined);
      s.cleanup();
    }
    execFileSync('bash', ['test/support/pg.sh', 'stop', join(pgDir, 'pg')]);
    rmSync(pgDir, { recursive: true, force: true });
  });

  it('a 200-node upgrade survives kill -9 of its driving replica and a PostgreSQL restart', async () => {
    // A PostgreSQL of its own, so that restarting it disturbs no other suite.
    const out = execFileSync('bash', ['test/support/pg.sh', 'start', join(pgDir, 'pg')], { encoding: 'utf8' });
    url = /UPSHIFT_TEST_PG_URL=(\S+)/.exec(out)?.[1] ?? '';
    expect(url).toMatch(/^postgres:\/\//);
    const args = ['--lease-ttl', '1500ms'];
    servers.push(await startServerProcess({ database: url, args }));
    servers.push(await startServerProcess({ database: url, args }));
    const [a, b] = servers as [ServerProcess, ServerProcess];

    // Events written by one replica reach the other's stream (LISTEN/NOTIFY).
    const controller = new AbortController();
    const stream = await fetch(`${b.url}/api/v1/stream`, { headers: { authorization: `Bearer ${b.token}` }, signal: controller.signal });
    const reader = stream.body!.getReader();
    const created = await a.api('/api/v1/clusters', {
      body: { name: 'fleet', kind: 'simulated', simulation: { nodes: 200, upgradeSeconds: 10, versions: { agent: '1.1.0' } } },
    });
    expect(created.status).toBe(201);
    let seen = '';
    await until(
      async () => {
        const { value } = await reader.read();
        seen += new TextDecoder().decode(value);
        return seen.includes('cluster.created') && seen.includes(created.body.id);
      },
      10_000,
      'the other replica to stream the event',
    );
    controller.abort();

    const up = (await b.api(`/api/v1/clusters/${created.body.id}/upgrades`, { body: { component: 'docker' } })).body;
    const byPid = (owner: string | null) =>
      servers.find((s) => owner !== null && s.child.pid !== undefined && owner.includes(`:${s.child.pid}:`));
    // 20 kills of whichever replica drives the upgrade, each at a random moment; PostgreSQL
    // restarts under both replicas after the 1st and the 11th. Nodes take 10 s each, so
    // that the upgrade (14 batches) outlasts the kills.
    const KILLS = 20;
    let kills = 0;
    const takeovers: number[] = [];
    const deadline = Date.now() + 150_000;
    while (kills < KILLS && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200 + Math.floor(Math.random() * 1000)));
      const survivor = servers.find((s) => s.child.exitCode === null && s.child.signalCode === null)!;
      const view = (await survivor.api(`/api/v1/upgrades/${up.id}`)).body;
      if (view.state === 'Completed') break;
      const driver = byPid(view.drivenBy);
      if (!driver) continue;
      const other = servers.find((s) => s !== driver)!;
      await driver.kill9();
      kills++;
      const killedAt = Date.now();
      await until(
        async () => {
          const v = (await other.api(`/api/v1/upgrades/${up.id}`)).body;
          return v.state === 'Completed' || (v.drivenBy && !v.drivenBy.includes(`:${driver.child.pid}:`) ? v : undefined);
        },
        20_000,
        'another replica to take over',
      );
      takeovers.push(Date.now() - killedAt);
      await driver.restart(args);
      if (kills === 1 || kills === 11) execFileSync('bash', ['test/support/pg.sh', 'restart', join(pgDir, 'pg')]);
    }
    expect(kills).toBe(KILLS);
    const final = await until(
      async () => {
        const v = (await a.api(`/api/v1/upgrades/${up.id}`)).body;
        return v.state === 'Completed' && v.nodes.running === 0 ? v : undefined;
      },
      120_000,
      'the upgrade to complete',
    );
    expect(final.nodes).toMatchObject({ total: 200, succeeded: 200, failed: 0 });
    const events: Array<{ id: string; type: string; nodeId: string | null }> = [];
    let cursor: string | null = null;
    do {
      const page: { items: typeof events; next: string | null } = (
        await a.api(`/api/v1/events?upgradeId=${up.id}&limit=500${cursor ? `&cursor=${cursor}` : ''}`)
      ).body;
      events.push(...page.items);
      cursor = page.next;
    } while (cursor);
    events.reverse();
    expect(events.filter((e) => e.type === 'node.started')).toHaveLength(200);
    expect(new Set(events.filter((e) => e.type === 'node.succeeded').map((e) => e.nodeId)).size).toBe(200);
    expect(checkEvents(events, final.cap)).toEqual([]);
    const tasks = (await a.api(`/api/v1/upgrades/${up.id}/nodes`)).body.items as Array<{ attempt: number }>;
    expect(tasks.every((t) => t.attempt === 1)).toBe(true);
    const sorted = [...takeovers].sort((x, y) => x - y);
    console.log(
      `replicas: ${kills} kills of the driving replica, 2 PostgreSQL restarts; takeover median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms (lease 1.5 s)`,
    );
  }, 360_000);

  it('leases expire by the database’s clock: a replica 30 s behind takes over on time, one 30 s ahead steals nothing, the cap holds', async () => {
    const database = await freshPgDatabase();
    const leaseMs = 3000;
    const args = ['--lease-ttl', `${leaseMs}ms`];
    const started = async (env: Record<string, string> = {}) => {
      const s = await startServerProcess({ database: database.url, args, env });
      servers.push(s);
      return s;
    };
    const pidIn = (owner: string | null, s: ServerProcess) => owner !== null && owner.includes(`:${s.child.pid}:`);
    try {
      const a = await started();
      const cluster = await a.api('/api/v1/clusters', {
        body: { name: 'skewed', kind: 'simulated', simulation: { nodes: 40, upgradeSeconds: 5, versions: { agent: '1.1.0' } } },
      });
      expect(cluster.status).toBe(201);
      const up = (await a.api(`/api/v1/clusters/${cluster.body.id}/upgrades`, { body: { component: 'docker' } })).body;
      const drivenBy = async (via: ServerProcess): Promise<string | null> => (await via.api(`/api/v1/upgrades/${up.id}`)).body.drivenBy;
      await until(async () => pidIn(await drivenBy(a), a), 10_000, 'replica A to drive the upgrade');

      /** The upgrade stays with `holder` for one and a half lease times while `other` runs beside it. */
      const noSteal = async (holder: ServerProcess, other: ServerProcess) => {
        const end = Date.now() + 1.5 * leaseMs;
        while (Date.now() < end) {
          const owner = await drivenBy(other);
          expect(pidIn(owner, holder), `the lease of a live replica was taken by ${owner}`).toBe(true);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      /** kill -9 of `holder`; `heir` drives the upgrade within the lease time + 5 s. */
      const takeover = async (holder: ServerProcess, heir: ServerProcess) => {
        await holder.kill9();
        const killedAt = Date.now();
        await until(async () => pidIn(await drivenBy(heir), heir), 30_000, 'the other replica to take over');
        const took = Date.now() - killedAt;
        expect(took, `takeover took ${took} ms with a ${leaseMs} ms lease`).toBeLessThanOrEqual(leaseMs + 5000);
        return took;
      };

      // Behind: B's clock is 30 s slow; by it, A's lease would end 30 s late.
      const b = await started(skewedClock('-30s'));
      expect(await clockOffsetMs(b)).toBeLessThan(-28_000);
      await noSteal(a, b);
      const behind = await takeover(a, b);
      // Ahead: C's clock is 30 s fast; by it, B's live lease would have ended long ago.
      const c = await started(skewedClock('+30s'));
      expect(await clockOffsetMs(c)).toBeGreaterThan(28_000);
      await noSteal(b, c);
      const toAhead = await takeover(b, c);
      // And back: a replica with the right time takes over from the one 30 s ahead on time.
      await a.restart(args);
      await noSteal(c, a);
      const fromAhead = await takeover(c, a);

      // The upgrade (12 batches of 5 s, longer than all this) goes on; once paused, the
      // nodes it started finish: each started once, each finished once, never above the cap.
      expect((await a.api(`/api/v1/upgrades/${up.id}/pause`, { method: 'POST' })).status).toBe(200);
      const paused = await until(
        async () => {
          const v = (await a.api(`/api/v1/upgrades/${up.id}`)).body;
          return v.state === 'Paused' && v.nodes.running === 0 ? v : undefined;
        },
        30_000,
        'the started nodes to finish',
      );
      const events = (await a.api(`/api/v1/events?upgradeId=${up.id}&limit=500`)).body.items.reverse() as Array<{
        type: string;
        nodeId: string | null;
      }>;
      const startedNodes = events.filter((e) => e.type === 'node.started').map((e) => e.nodeId);
      expect(startedNodes.length).toBeGreaterThanOrEqual(3);
      expect(paused.nodes.succeeded).toBe(startedNodes.length);
      expect(new Set(events.filter((e) => e.type === 'node.succeeded').map((e) => e.nodeId))).toEqual(new Set(startedNodes));
      expect(checkEvents(events, paused.cap)).toEqual([]);
      console.log(
        `replicas with skewed clocks (lease ${leaseMs} ms): takeover by a replica 30 s behind ${behind} ms, by one 30 s ahead ${toAhead} ms, from one 30 s ahead ${fromAhead} ms`,
      );
    } finally {
      for (const s of servers.splice(0)) {
        await s.stop().catch(() => undefined);
        s.cleanup();
      }
      await database.drop();
    }
  }, 240_000);
});
