import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pgUrl } from '../support/databases.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * Several replicas on one PostgreSQL database: each upgrade is driven by one replica at a
 * time under a lease; kill -9 the driving replica at random moments and another takes
 * over; restart PostgreSQL and the replicas go on. Bounded for CI: 20 kills and two
 * restarts within about two and a half minutes.
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
});
