import { describe, expect, it } from 'vitest';
import { useServerWithCli } from '../support/cli.js';

const HOUR = 3_600_000;
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

/**
 * A maintenance window through the real server and CLI: an upgrade whose window is closed
 * stays Upgrading, starts no batch, and says what it waits for and until when; bad windows
 * are refused with what to fix, and change nothing.
 */
describe('maintenance windows through the API and the CLI', () => {
  const env = useServerWithCli();

  async function simulated(name: string) {
    const res = await env.server.api('/api/v1/clusters', {
      body: { name, kind: 'simulated', simulation: { nodes: 10, upgradeSeconds: 0.1, versions: { agent: '1.1.0' } } },
    });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string };
  }

  it('waits, Upgrading, for a closed window and says so in the API and the CLI', async () => {
    await simulated('nightly');
    // Opens in about three hours, every day, UTC.
    const opensAt = Math.ceil((Date.now() + 3 * HOUR) / 60_000) * 60_000;
    const window = `mon,tue,wed,thu,fri,sat,sun ${hhmm(opensAt)}-${hhmm(opensAt + HOUR)} UTC`;
    const started = await env.cli.run(['upgrade', 'start', 'nightly', '--component', 'docker', '--window', window, '-o', 'json']);
    expect(started.code, started.stderr).toBe(0);
    const id = JSON.parse(started.stdout).id as string;
    await new Promise((r) => setTimeout(r, 500));

    const view = (await env.server.api(`/api/v1/upgrades/${id}`)).body;
    expect(view.state).toBe('Upgrading');
    expect(view.batches).toEqual([]);
    expect(view.waiting).toEqual({ reason: 'window', until: new Date(opensAt).toISOString() });
    expect(view.policy.window).toEqual({
      days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
      start: hhmm(opensAt),
      end: hhmm(opensAt + HOUR),
      timezone: 'UTC',
    });
    // No batch has run on this cluster: no estimate yet (test/domain/progress.test.ts has one across closed hours).
    expect(view.progress.etaAt).toBeNull();

    const got = await env.cli.run(['upgrade', 'get', id]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toMatch(/waiting for the maintenance window \(opens \w{3} \d\d:\d\d UTC, in [23]h\d+m\)/);
    expect(got.stdout).toContain(`maintenance window: mon, tue, wed, thu, fri, sat, sun ${hhmm(opensAt)}–${hhmm(opensAt + HOUR)} UTC`);

    // Pause and cancel while it waits.
    expect((await env.cli.run(['upgrade', 'pause', id])).code).toBe(0);
    expect((await env.cli.run(['upgrade', 'cancel', id])).code).toBe(0);
    const canceled = (await env.server.api(`/api/v1/upgrades/${id}`)).body;
    expect(canceled.state).toBe('Canceled');
    expect(canceled.nodes.skipped).toBe(10);
  });

  it('refuses bad windows with what to fix, and starts nothing', async () => {
    const cluster = await simulated('badwindow');
    const bad = await env.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, {
      body: { component: 'docker', policy: { window: { days: ['sat'], start: '25:00', end: '04:00', timezone: 'UTC' } } },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.error.message).toBe('policy.window.start must be a 24-hour time HH:MM such as 02:00 or 23:30');
    const zone = await env.server.api(`/api/v1/clusters/${cluster.id}/upgrades/plan`, {
      body: { component: 'docker', policy: { window: { days: ['sat'], start: '01:00', end: '04:00', timezone: 'Berlin' } } },
    });
    expect(zone.status).toBe(422);
    expect(zone.body.error.message).toMatch(/policy.window.timezone must be an IANA time zone name/);
    const typed = await env.cli.run(['upgrade', 'start', 'badwindow', '--component', 'docker', '--window', 'weekends at night']);
    expect(typed.code).toBe(2);
    expect(typed.stderr).toContain('is not a window: write DAYS START-END ZONE, such as "sat,sun 02:00-06:00 Europe/Berlin"');
    expect((await env.server.api('/api/v1/upgrades')).body.items.filter((u: { clusterId: string }) => u.clusterId === cluster.id)).toEqual(
      [],
    );
  });

  it("applies the cluster's default window to its upgrades, unless an upgrade names its own or none", async () => {
    const created = await env.cli.run([
      'cluster',
      'create',
      'weekends',
      '--nodes',
      '4',
      '--version',
      'agent=1.1.0',
      '--window',
      'sat,sun 02:00-06:00 Europe/Berlin',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const shown = await env.cli.run(['cluster', 'window', 'weekends']);
    expect(shown.stdout).toBe('weekends: batches of its upgrades start only in sat, sun 02:00–06:00 Europe/Berlin\n');
    const got = await env.cli.run(['cluster', 'get', 'weekends']);
    expect(got.stdout).toContain('maintenance window: sat, sun 02:00–06:00 Europe/Berlin');

    const cluster = (await env.server.api('/api/v1/clusters/weekends')).body;
    expect(cluster.window).toEqual({ days: ['sat', 'sun'], start: '02:00', end: '06:00', timezone: 'Europe/Berlin' });
    const plan = await env.server.api(`/api/v1/clusters/${cluster.id}/upgrades/plan`, { body: { component: 'docker' } });
    expect(plan.status, plan.text).toBe(200);
    const started = await env.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, { body: { component: 'docker' } });
    expect(started.status, started.text).toBe(201);
    expect(started.body.policy.window).toEqual(cluster.window);
    await env.server.api(`/api/v1/upgrades/${started.body.id}/pause`, { method: 'POST', body: {} });
    await env.server.api(`/api/v1/upgrades/${started.body.id}/cancel`, { method: 'POST', body: {} });

    // An upgrade that asks for no window runs at once.
    const now = await env.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, {
      body: { component: 'docker', policy: { window: null } },
    });
    expect(now.status, now.text).toBe(201);
    expect(now.body.policy.window ?? null).toBeNull();
    await env.server.api(`/api/v1/upgrades/${now.body.id}/pause`, { method: 'POST', body: {} });
    await env.server.api(`/api/v1/upgrades/${now.body.id}/cancel`, { method: 'POST', body: {} });

    // Changed and cleared through PATCH, recorded as an operation; bad input changes nothing.
    const bad = await env.server.api(`/api/v1/clusters/${cluster.id}`, {
      method: 'PATCH',
      body: { window: { days: ['sat'], start: '02:00', end: '06:00', timezone: 'Nowhere/City' } },
    });
    expect(bad.status).toBe(422);
    expect((await env.server.api(`/api/v1/clusters/${cluster.id}`)).body.window).toEqual(cluster.window);
    const cleared = await env.cli.run(['cluster', 'window', 'weekends', '--clear']);
    expect(cleared.stdout).toBe('weekends: no maintenance window; batches start at any time\n');
    expect((await env.server.api(`/api/v1/clusters/${cluster.id}`)).body.window).toBeNull();
    const events = (await env.server.api(`/api/v1/events?clusterId=${cluster.id}&type=cluster.window_changed`)).body.items;
    expect(events.map((e: { message: string }) => e.message)).toEqual([
      'cluster weekends: no maintenance window; upgrades start batches at any time',
    ]);
  });
});
