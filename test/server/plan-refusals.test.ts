import { describe, expect, it } from 'vitest';
import { useServerWithCli } from '../support/cli.js';
import { waitFor } from '../support/engine.js';

/**
 * Refusals said before they happen: `plan` answers, beside the batches, what a start would
 * be refused with now, from the same checks in the same order as `start`; and a start
 * while another upgrade is active answers UPGRADE_IN_PROGRESS before any other reason.
 */
describe('plan and start refusals', () => {
  const env = useServerWithCli();

  const createCluster = async (name: string, simulation: Record<string, unknown>) => {
    const res = await env.server.api('/api/v1/clusters', { body: { name, kind: 'simulated', simulation } });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string };
  };
  const plan = async (clusterId: string, body: Record<string, unknown>) => {
    const res = await env.server.api(`/api/v1/clusters/${clusterId}/upgrades/plan`, { body });
    expect(res.status, res.text).toBe(200);
    return res.body;
  };

  it('plans with no refusal when a start would go through', async () => {
    const cluster = await createCluster('fine', { nodes: 5, upgradeSeconds: 0.1, versions: { agent: '1.1.0' } });
    expect(await plan(cluster.id, { component: 'docker' })).toMatchObject({ total: 5, refusal: null });
  });

  it('says AGENT_OUTDATED and NOTHING_TO_UPGRADE in the plan, and a start answers the same', async () => {
    const cluster = await createCluster('old-agents', { nodes: 4, upgradeSeconds: 0.1, versions: { agent: '1.0.0' } });
    const planned = await plan(cluster.id, { component: 'docker' });
    expect(planned.total).toBe(4);
    expect(planned.refusal).toMatchObject({ code: 'AGENT_OUTDATED' });
    const started = await env.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
    expect(started.status).toBe(409);
    expect(started.body.error).toMatchObject({ code: 'AGENT_OUTDATED', message: planned.refusal.message });

    const current = await createCluster('current', { nodes: 3, upgradeSeconds: 0.1, versions: { agent: '1.1.0', docker: '26.1.5' } });
    const nothing = await plan(current.id, { component: 'docker', toVersion: '26.1.5' });
    expect(nothing).toMatchObject({ total: 0, batches: [], refusal: { code: 'NOTHING_TO_UPGRADE' } });
  });

  it('names the active upgrade first, in the plan and in a start, whatever else is true', async () => {
    const cluster = await createCluster('busy', { nodes: 20, upgradeSeconds: 0.5, versions: { agent: '1.0.0' } });
    const running = await env.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'agent' } });
    expect(running.status, running.text).toBe(201);
    // Agents are outdated too, but the active upgrade is the reason that holds.
    const planned = await plan(cluster.id, { component: 'docker' });
    expect(planned.refusal.code).toBe('UPGRADE_IN_PROGRESS');
    expect(planned.refusal.message).toContain(running.body.id);
    const started = await env.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
    expect(started.status).toBe(409);
    expect(started.body.error.code).toBe('UPGRADE_IN_PROGRESS');

    const printed = await env.cli.run(['upgrade', 'plan', 'busy', '--component', 'docker']);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(
      /\nA start would be refused now \(UPGRADE_IN_PROGRESS\): busy already has an active upgrade \(Agent → 1\.1\.0, \w+, upg_\w+\)/,
    );

    // Once it is over, the plan says nothing against a docker start.
    await waitFor(
      async () => (await env.server.api(`/api/v1/upgrades/${running.body.id}`)).body.state === 'Completed',
      60_000,
      'the agent upgrade',
    );
    const next = await plan(cluster.id, { component: 'docker' });
    expect(next.refusal).toBeNull();
    // No docker upgrade ran here yet: no estimate. The agent's did: going back to 1.0.0 is
    // estimated from its batches (about 0.5 s each here).
    expect(next.estimatedSeconds).toBeNull();
    const back = await plan(cluster.id, { component: 'agent', toVersion: '1.0.0' });
    expect(back.batches.length).toBeGreaterThan(5);
    expect(back.estimatedSeconds).toBeGreaterThan(back.batches.length * 0.4);
    expect(back.estimatedSeconds).toBeLessThan(back.batches.length * 3);
  }, 90_000);
});
