import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operationEventTypes } from '../../src/domain/events.js';
import { Cli, tableRows } from '../support/cli.js';
import { waitFor } from '../support/engine.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * Who did what: events filtered by actor, by several types at once, and "operations only"
 * (what people and the system decided) apart from node and batch chatter, through the API
 * and `upshift events`.
 */
describe('event filters', () => {
  let s: ServerProcess;
  let cli: Cli;
  let upgradeId: string;
  beforeAll(async () => {
    s = await startServerProcess();
    cli = new Cli(s);
    const cluster = await s.api('/api/v1/clusters', {
      body: {
        name: 'who',
        kind: 'simulated',
        simulation: { nodes: 6, upgradeSeconds: 0.1, failNodes: ['sim-002'], versions: { agent: '1.1.0' } },
      },
    });
    expect(cluster.status, cluster.text).toBe(201);
    const up = await s.api(`/api/v1/clusters/${cluster.body.id}/upgrades`, { body: { component: 'docker' } });
    upgradeId = up.body.id;
    await waitFor(async () => (await s.api(`/api/v1/upgrades/${upgradeId}`)).body.state === 'Paused', 20_000, 'the auto-pause');
    expect((await s.api(`/api/v1/upgrades/${upgradeId}/resume`, { method: 'POST' })).status).toBe(200);
    await waitFor(async () => (await s.api(`/api/v1/upgrades/${upgradeId}`)).body.state === 'Completed', 20_000, 'the end');
  }, 60_000);
  afterAll(async () => {
    cli?.cleanup();
    await s?.stop();
    s?.cleanup();
  });

  const events = async (query: string) => {
    const res = await s.api(`/api/v1/events?upgradeId=${upgradeId}&limit=500&${query}`);
    expect(res.status, res.text).toBe(200);
    return (res.body.items as Array<{ type: string; actor: string }>).reverse();
  };

  it('shows operations only: what people and the system decided, oldest first here', async () => {
    const ops = await events('operations=true');
    expect(ops.map((e) => `${e.type} ${e.actor}`)).toEqual([
      'upgrade.started admin',
      'upgrade.auto_paused engine',
      'upgrade.resumed admin',
      'upgrade.completed engine',
    ]);
    const all = await events('');
    expect(all.some((e) => e.type.startsWith('node.'))).toBe(true);
    expect(ops.every((e) => operationEventTypes.includes(e.type as never))).toBe(true);
  });

  it('filters by actor and by several types at once, and refuses an unknown type saying which exist', async () => {
    expect((await events('actor=engine&operations=true')).map((e) => e.type)).toEqual(['upgrade.auto_paused', 'upgrade.completed']);
    expect((await events('actor=admin')).map((e) => e.type)).toEqual(['upgrade.started', 'upgrade.resumed']);
    const two = await events('type=node.failed,upgrade.resumed');
    expect(two.map((e) => e.type)).toEqual(['node.failed', 'upgrade.resumed']);
    // operations narrows the named types to operations.
    expect((await events('type=node.failed,upgrade.resumed&operations=true')).map((e) => e.type)).toEqual(['upgrade.resumed']);
    const bad = await s.api('/api/v1/events?type=upgrade.paused,upgrade.nonsense');
    expect(bad.status).toBe(422);
    expect(bad.body.error.message).toMatch(/^unknown event type upgrade\.nonsense; known types: upgrade\.started, /);
  });

  it('does the same in `upshift events`', async () => {
    const ops = await cli.run(['events', '--upgrade', upgradeId, '--operations', '--actor', 'engine']);
    expect(ops.code, ops.stderr).toBe(0);
    expect(
      tableRows(ops.stdout)
        .slice(1)
        .map((r) => r[1]),
    ).toEqual(['upgrade.auto_paused', 'upgrade.completed']);
    const types = await cli.run(['events', '--upgrade', upgradeId, '--type', 'node.failed', '--type', 'upgrade.started,upgrade.resumed']);
    expect(
      tableRows(types.stdout)
        .slice(1)
        .map((r) => r[1]),
    ).toEqual(['upgrade.started', 'node.failed', 'upgrade.resumed']);
  });
});
