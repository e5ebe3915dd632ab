import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventType } from '../../src/domain/events.js';
import { dialects } from '../support/databases.js';
import { createTestEngine, type TestEngine, waitFor } from '../support/engine.js';

/**
 * Health gates in the engine, on the injected clock, against a real HTTP endpoint on
 * loopback: a passing gate lets every batch start; a failing one is checked again for
 * `retrySeconds`, then pauses the upgrade with the gate and what it saw; a resume checks
 * again before the first batch; and a pause while a check hangs answers at once.
 */
describe('health gates in the engine', () => {
  let server: Server;
  let url: string;
  let mode: 'ok' | 'fail' | 'hang' = 'ok';
  const hanging: ServerResponse[] = [];
  let requests = 0;
  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      requests++;
      if (mode === 'hang') {
        hanging.push(res);
        return;
      }
      res.writeHead(mode === 'ok' ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(mode === 'ok' ? 'healthy' : 'degraded');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
  });
  afterAll(async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  for (const dialect of dialects) {
    describe(dialect, () => {
      let t: TestEngine;
      afterEach(async () => {
        for (const res of hanging.splice(0)) res.end();
        mode = 'ok';
        await t?.close();
      });

      async function start(nodes: number, retrySeconds: number, extra: Record<string, unknown> = {}) {
        const cluster = await t.engine.fleet.createCluster(
          {
            name: `gated-${Math.random().toString(36).slice(2, 8)}`,
            kind: 'simulated',
            simulation: { nodes, upgradeSeconds: 0.02, versions: { agent: '1.1.0' } },
          },
          'tester',
        );
        return t.engine.upgrades.start(
          cluster.id,
          {
            component: 'docker',
            policy: { maxBatchPercent: 50, gates: [{ kind: 'http', url, bodyContains: 'healthy', retrySeconds, ...extra }] },
          },
          'tester',
        );
      }
      const state = async (id: string) => (await t.store.upgrades.get(id))?.state;
      const gateEvents = async (id: string) =>
        (await t.store.events.list({ upgradeId: id, types: [EventType.gatePassed, EventType.gateFailed], limit: 500 })).reverse();
      const batches = async (id: string) => t.store.upgrades.listBatches(id);

      it('lets every batch start after its gate passed, and records each check', async () => {
        t = await createTestEngine(dialect);
        const upgrade = await start(4, 60);
        await waitFor(async () => (await state(upgrade.id)) === 'Completed', 20_000, 'completion');
        const checks = await gateEvents(upgrade.id);
        const done = await batches(upgrade.id);
        expect(done.length).toBeGreaterThan(1);
        expect(checks.map((e) => e.data?.['batchIndex'])).toEqual(done.map((b) => b.index));
        expect(checks.every((e) => e.type === EventType.gatePassed && e.data?.['ok'] === true)).toBe(true);
        // How long each check took is part of what it recorded.
        expect(checks.every((e) => typeof e.data?.['durationMs'] === 'number' && e.data['durationMs'] >= 0)).toBe(true);
        expect(checks[0]?.message).toBe(`gate 1 (http) before batch 1 passed: GET ${url} answered 200 with "healthy"`);
      });

      it('retries a failing gate for retrySeconds, then pauses with the gate and what it saw; resume checks again', async () => {
        t = await createTestEngine(dialect);
        mode = 'fail';
        const upgrade = await start(4, 30);
        await waitFor(async () => (await gateEvents(upgrade.id)).length > 0 || undefined, 10_000, 'the first check');
        expect(await state(upgrade.id)).toBe('Upgrading');
        expect(await batches(upgrade.id)).toHaveLength(0);
        const first = (await gateEvents(upgrade.id))[0]!;
        expect(first.type).toBe(EventType.gateFailed);
        expect(first.data).toMatchObject({ gateIndex: 0, kind: 'http', ok: false, message: `GET ${url} answered 503, expected 200` });
        const retryUntil = Date.parse(first.data?.['retryUntil'] as string);
        expect(retryUntil).toBeGreaterThan(t.clock.now() + 25_000);

        // Within the retry time: checked again, still Upgrading, nothing started.
        t.clock.advance(6_000);
        await waitFor(async () => (await gateEvents(upgrade.id)).length > 1 || undefined, 10_000, 'a second check');
        expect(await state(upgrade.id)).toBe('Upgrading');
        // Past it: paused by the gate.
        t.clock.advance(30_000);
        await waitFor(async () => (await state(upgrade.id)) === 'Paused' || undefined, 10_000, 'the auto-pause');
        const paused = await t.store.upgrades.get(upgrade.id);
        expect(paused?.pauseReason).toEqual({
          kind: 'gate',
          gateIndex: 0,
          gate: { kind: 'http', url, expectStatus: 200, timeoutSeconds: 10, bodyContains: 'healthy', retrySeconds: 30 },
          message: `GET ${url} answered 503, expected 200`,
        });
        expect(await batches(upgrade.id)).toHaveLength(0);
        const autoPaused = await t.store.events.list({ upgradeId: upgrade.id, type: EventType.upgradeAutoPaused, limit: 5 });
        expect(autoPaused).toHaveLength(1);
        expect(autoPaused[0]?.message).toContain('gate 1 kept failing: GET');

        // Healthy again and resumed: the gate is checked before the first batch, then the rest runs.
        mode = 'ok';
        const before = (await gateEvents(upgrade.id)).length;
        await t.engine.upgrades.command(upgrade.id, { type: 'resume' }, 'tester');
        await waitFor(async () => (await state(upgrade.id)) === 'Completed' || undefined, 20_000, 'completion after the resume');
        const after = (await gateEvents(upgrade.id)).slice(before);
        expect(after[0]).toMatchObject({ type: EventType.gatePassed, data: { batchIndex: 0 } });
      });

      it('a gate that keeps failing with retrySeconds 0 pauses at its first failure; after some batches, before the next', async () => {
        t = await createTestEngine(dialect);
        const upgrade = await start(8, 0);
        await waitFor(async () => (await batches(upgrade.id)).length >= 1 || undefined, 10_000, 'the first batch');
        mode = 'fail';
        await waitFor(async () => (await state(upgrade.id)) === 'Paused' || undefined, 20_000, 'the auto-pause');
        const done = await batches(upgrade.id);
        expect(done.every((b) => b.state === 'succeeded')).toBe(true);
        expect((await t.store.upgrades.taskCounts(upgrade.id)).pending).toBeGreaterThan(0);
        expect((await t.store.upgrades.get(upgrade.id))?.pauseReason?.kind).toBe('gate');
      });

      it('answers a pause at once while a check hangs, and checks afresh after the resume', async () => {
        t = await createTestEngine(dialect);
        mode = 'hang';
        const seen = requests;
        const upgrade = await start(4, 60, { timeoutSeconds: 300 });
        await waitFor(async () => requests > seen || undefined, 10_000, 'the check to reach the endpoint');
        const paused = await t.engine.upgrades.command(upgrade.id, { type: 'pause' }, 'tester');
        expect(paused.state).toBe('Paused');
        // The check is still hanging: the pause did not wait for it.
        expect(hanging.length).toBe(1);
        expect(hanging[0]?.writableEnded).toBe(false);
        mode = 'ok';
        await t.engine.upgrades.command(upgrade.id, { type: 'resume' }, 'tester');
        await waitFor(async () => (await state(upgrade.id)) === 'Completed' || undefined, 20_000, 'completion after the resume');
      });

      it('a pause between the checks of a failing gate holds: the retry time passing does not touch it, and resume checks afresh', async () => {
        t = await createTestEngine(dialect);
        mode = 'fail';
        const upgrade = await start(4, 20);
        await waitFor(async () => (await gateEvents(upgrade.id)).length > 0 || undefined, 10_000, 'the first check');
        expect((await t.engine.upgrades.command(upgrade.id, { type: 'pause' }, 'tester')).state).toBe('Paused');
        const checks = (await gateEvents(upgrade.id)).length;
        t.clock.advance(60_000);
        await new Promise((r) => setTimeout(r, 300));
        const paused = await t.store.upgrades.get(upgrade.id);
        expect(paused?.state).toBe('Paused');
        expect(paused?.pauseReason?.kind).toBe('user');
        expect(await t.store.events.list({ upgradeId: upgrade.id, type: EventType.upgradeAutoPaused, limit: 5 })).toEqual([]);
        expect((await gateEvents(upgrade.id)).length).toBe(checks);
        // Resumed while still failing: a new retry time from the new first failure, not the old one.
        await t.engine.upgrades.command(upgrade.id, { type: 'resume' }, 'tester');
        await waitFor(async () => (await gateEvents(upgrade.id)).length > checks || undefined, 10_000, 'a check after the resume');
        const fresh = (await gateEvents(upgrade.id))[checks]!;
        expect(Date.parse(fresh.data?.['retryUntil'] as string)).toBeGreaterThan(t.clock.now() + 15_000);
        expect(await state(upgrade.id)).toBe('Upgrading');
        mode = 'ok';
        t.clock.advance(6_000);
        await waitFor(async () => (await state(upgrade.id)) === 'Completed' || undefined, 20_000, 'completion');
      });

      it('refuses bad gates with what to fix and starts nothing', async () => {
        t = await createTestEngine(dialect);
        const cluster = await t.engine.fleet.createCluster(
          { name: 'bad', kind: 'simulated', simulation: { nodes: 3, versions: { agent: '1.1.0' } } },
          'tester',
        );
        const refused = async (gates: unknown[]) =>
          t.engine.upgrades.start(cluster.id, { component: 'docker', policy: { gates } }, 'tester').then(
            () => 'started',
            (e: Error) => e.message,
          );
        expect(await refused([{ kind: 'http', url: 'ftp://x/' }])).toBe('policy.gates[0].url must be an http:// or https:// URL, not ftp:');
        expect(await refused([{ kind: 'http', url: 'http://169.254.169.254/latest' }])).toMatch(
          /policy.gates\[0\].url: 169.254.169.254 is a link-local address .* --allow-link-local-targets/,
        );
        expect(await refused([{ kind: 'prometheus', url: 'http://prom:9090', query: 'up' }])).toBe(
          'policy.gates[0] needs a bound: max, min or both',
        );
        expect(await refused([{ kind: 'swarm-services' }])).toBe(
          "policy.gates[0]: a swarm-services gate checks a Swarm cluster's services; this cluster is simulated",
        );
        expect(await refused([{ kind: 'http', url: 'http://a/', bearerToken: 'x' }])).toMatch(/bearerToken is not a field of a http gate/);
        expect(await t.store.upgrades.activeOf(cluster.id)).toBeUndefined();
      });
    });
  }
});
