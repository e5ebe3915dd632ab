import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/engine.js';
import { repoRoot, type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * /metrics for alerting: the standard process and Node.js series under their own names,
 * per-upgrade state, pause reason, nodes, auto-cancel countdown, batch and ETA, HTTP
 * durations by route; the output passes `promtool check metrics` and the example rules in
 * docs/alerts.yml pass `promtool check rules` (CI installs Debian's prometheus package for
 * promtool; outside CI a machine without it skips those two checks).
 */
const promtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;
const ci = process.env['CI'] === 'true';

describe('metrics to alert on', () => {
  let s: ServerProcess;
  beforeAll(async () => {
    s = await startServerProcess({ args: ['--paused-ttl', '2d'] });
  });
  afterAll(async () => {
    await s?.stop();
    s?.cleanup();
  });

  const metrics = async () => {
    const res = await s.api('/metrics');
    expect(res.status).toBe(200);
    return res.text;
  };

  it('names the process series as dashboards expect and describes each paused upgrade', async () => {
    const cluster = await s.api('/api/v1/clusters', {
      body: {
        name: 'alerting',
        kind: 'simulated',
        simulation: { nodes: 8, upgradeSeconds: 0.1, failNodes: ['sim-002'], versions: { agent: '1.1.0' } },
      },
    });
    const up = await s.api(`/api/v1/clusters/${cluster.body.id}/upgrades`, { body: { component: 'docker' } });
    await waitFor(async () => (await s.api(`/api/v1/upgrades/${up.body.id}`)).body.state === 'Paused', 20_000, 'the auto-pause');
    const text = await metrics();
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^nodejs_version_info\{version="v24\./m);
    expect(text).not.toContain('upshift_process_');
    const id = up.body.id as string;
    expect(text).toContain(`upshift_upgrade_state{upgrade="${id}",cluster="alerting",component="docker",state="Paused"} 1`);
    expect(text).toContain(`upshift_upgrade_paused{upgrade="${id}",cluster="alerting",reason="error"} 1`);
    expect(text).toContain(`upshift_upgrade_nodes{upgrade="${id}",state="failed"} 1`);
    const left = Number(
      new RegExp(`^upshift_upgrade_auto_cancel_seconds\\{upgrade="${id}",cluster="alerting"\\} (\\S+)$`, 'm').exec(text)?.[1],
    );
    expect(left).toBeGreaterThan(2 * 86400 - 60);
    expect(left).toBeLessThanOrEqual(2 * 86400);
    expect(text).toMatch(new RegExp(`^upshift_upgrade_batch\\{upgrade="${id}"\\} 2$`, 'm'));
    // No ETA while it waits for a person.
    expect(text).not.toContain(`upshift_upgrade_eta_seconds{upgrade="${id}"}`);
    // Requests by route pattern, never by raw path.
    expect(text).toMatch(
      /^upshift_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/upgrades\/:id",status="200"\} \d+$/m,
    );
    expect(text).not.toMatch(/route="\/api\/v1\/upgrades\/upg_/);
  });

  (promtool || ci ? it : it.skip)('passes promtool check metrics, and docs/alerts.yml passes promtool check rules', async () => {
    expect(promtool, 'promtool (Debian package prometheus) is needed in CI').toBe(true);
    const checked = spawnSync('promtool', ['check', 'metrics'], { input: await metrics(), encoding: 'utf8' });
    expect(checked.status, `${checked.stdout}${checked.stderr}`).toBe(0);
    const rules = spawnSync('promtool', ['check', 'rules', join(repoRoot, 'docs/alerts.yml')], { encoding: 'utf8' });
    expect(rules.status, `${rules.stdout}${rules.stderr}`).toBe(0);
    expect(rules.stdout).toContain('SUCCESS: 7 rules found');
  });
});
