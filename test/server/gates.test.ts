import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useServerWithCli } from '../support/cli.js';
import { waitFor } from '../support/engine.js';
import { freePort } from '../support/server.js';

const PROMETHEUS = '/usr/bin/prometheus';
const haveProm = existsSync(PROMETHEUS);
if (!haveProm && process.env['CI'] === 'true') {
  throw new Error(`${PROMETHEUS} is missing: CI must run the gate tests against a real Prometheus (.ci/run installs Debian's prometheus)`);
}

const TOKEN = 'gate-token-4c1d9e7a2b';
const QUERY = 'upshift_test_error_ratio';

/**
 * Health gates through the real server and CLI, against real servers on loopback: an
 * HTTP endpoint the test flips between healthy and failing, and a real Prometheus (Debian's
 * package) scraping a small exporter every second whose gauge the test sets. The upgrade
 * pauses before the next batch with what the gate saw, and completes once the value is
 * healthy again and the operator resumes.
 */
describe.skipIf(!haveProm)('health gates against a real Prometheus and an HTTP endpoint', () => {
  const env = useServerWithCli();
  let gauge = 0.001;
  let healthy = true;
  let exporter: Server;
  let endpoints: string;
  let prom: ChildProcess | undefined;
  let promUrl: string;
  let promDir: string;

  beforeAll(async () => {
    // The exporter (for Prometheus), the health endpoint, and a Prometheus-compatible
    // query API that needs a bearer token (to see the sealed token reach the gate).
    exporter = createServer((req, res) => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(`# TYPE ${QUERY} gauge\n${QUERY} ${gauge}\n`);
      } else if (req.url === '/health') {
        res.writeHead(healthy ? 200 : 503);
        res.end(healthy ? 'ok' : 'failing');
      } else if (req.url?.startsWith('/secured/api/v1/query')) {
        const ok = req.headers.authorization === `Bearer ${TOKEN}`;
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(
            ok
              ? { status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [0, '1'] }] } }
              : { status: 'error', errorType: 'unauthorized', error: 'no token' },
          ),
        );
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => exporter.listen(0, '127.0.0.1', r));
    endpoints = `http://127.0.0.1:${(exporter.address() as AddressInfo).port}`;

    promDir = mkdtempSync(join(tmpdir(), 'upshift-prom-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: ['${endpoints.slice('http://'.length)}']\n`,
    );
    prom = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(promDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(promDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    await promValue(0.001, 60_000);
  }, 90_000);

  afterAll(async () => {
    if (prom?.pid !== undefined && prom.exitCode === null) {
      const exited = new Promise((r) => prom?.once('exit', r));
      process.kill(prom.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (prom.exitCode === null) process.kill(prom.pid, 'SIGKILL');
    }
    if (promDir) rmSync(promDir, { recursive: true, force: true });
    exporter?.closeAllConnections();
    await new Promise((r) => exporter?.close(r));
  });

  /** Waits until Prometheus itself answers the query with `value`: the gate then sees it too. */
  async function promValue(value: number, ms = 20_000) {
    await waitFor(
      async () => {
        try {
          const res = await fetch(`${promUrl}/api/v1/query?query=${QUERY}`);
          const body = (await res.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
          return Number(body.data?.result?.[0]?.value[1]) === value || undefined;
        } catch {
          return undefined;
        }
      },
      ms,
      `Prometheus to report ${value}`,
    );
  }

  async function simulated(name: string, nodes = 8) {
    const res = await env.server.api('/api/v1/clusters', {
      body: { name, kind: 'simulated', simulation: { nodes, upgradeSeconds: 0.3, versions: { agent: '1.1.0' } } },
    });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string };
  }
  const view = async (id: string) => (await env.server.api(`/api/v1/upgrades/${id}`)).body;
  /** Both gate kinds end the same way: the failing gate pauses the upgrade; returns the paused view. */
  const pausedByGate = (id: string) =>
    waitFor(
      async () => {
        const v = await view(id);
        return v.state === 'Paused' ? v : undefined;
      },
      20_000,
      'the gate to pause the upgrade',
    );

  it('pauses before the next batch when Prometheus reports a bad value, and completes after it is healthy and resumed', async () => {
    await simulated('prom-gated');
    const gate = `prometheus=${promUrl},${QUERY},max=0.01,retry=8`;
    const planned = await env.cli.run(['upgrade', 'plan', 'prom-gated', '--component', 'docker', '--gate', gate]);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toContain(`gate 1: prometheus ${promUrl}/: ${QUERY} ≤ 0.01, retried for 8s`);

    const started = await env.cli.run([
      'upgrade',
      'start',
      'prom-gated',
      '--component',
      'docker',
      '--max-batch-percent',
      '25',
      '--soak',
      '5',
      '--gate',
      gate,
      '-o',
      'json',
    ]);
    expect(started.code, started.stderr).toBe(0);
    const id = JSON.parse(started.stdout).id as string;
    await waitFor(
      async () => (await view(id)).batches.some((b: { finishedAt: string | null }) => b.finishedAt) || undefined,
      20_000,
      'a batch',
    );

    // During the soak after the first batch: the value goes bad before the next batch's check.
    gauge = 0.5;
    await promValue(0.5);
    // While the gate is retried: Upgrading, waiting for the gate until its retry deadline.
    const waiting = await waitFor(
      async () => {
        const v = await view(id);
        return v.waiting?.reason === 'gate' ? v : undefined;
      },
      20_000,
      'waiting for the gate',
    );
    expect(waiting.state).toBe('Upgrading');
    expect(Date.parse(waiting.waiting.until)).toBeGreaterThan(Date.now() - 5_000);
    const duringRetry = await env.cli.run(['upgrade', 'get', id]);
    expect(duringRetry.stdout).toMatch(
      /waiting for a failing health gate before batch \d+: checked again until it passes, pauses in \d+s otherwise|pause reason: health gate 1/,
    );

    const paused = await pausedByGate(id);
    expect(paused.pauseReason).toMatchObject({ kind: 'gate', gateIndex: 0, gate: { kind: 'prometheus', query: QUERY, max: 0.01 } });
    expect(paused.pauseReason.message).toBe(
      `query ${QUERY}: value 0.5 {__name__="${QUERY}", instance="${endpoints.slice(7)}", job="exporter"} not ≤ 0.01`,
    );
    // Before the second batch: the one that ran is all that started.
    expect(paused.batches).toHaveLength(1);
    expect(paused.nodes.running).toBe(0);
    expect(paused.nodes.pending).toBeGreaterThan(0);
    expect(paused.batches.every((b: { state: string }) => b.state !== 'running')).toBe(true);
    const got = await env.cli.run(['upgrade', 'get', id]);
    expect(got.stdout).toContain(
      `pause reason: health gate 1 (prometheus ${promUrl}/: ${QUERY} ≤ 0.01) kept failing: query ${QUERY}: value 0.5`,
    );
    const events = (await env.server.api(`/api/v1/events?upgradeId=${id}&limit=200`)).body.items as Array<{ type: string; data: any }>;
    expect(events.some((e) => e.type === 'gate.failed' && e.data.message.includes('value 0.5'))).toBe(true);
    expect(events.some((e) => e.type === 'gate.passed')).toBe(true);
    expect(events.filter((e) => e.type === 'upgrade.auto_paused')).toHaveLength(1);

    gauge = 0.002;
    await promValue(0.002);
    expect((await env.cli.run(['upgrade', 'resume', id])).code).toBe(0);
    await waitFor(async () => (await view(id)).state === 'Completed' || undefined, 60_000, 'completion');
  });

  it('pauses on a failing HTTP endpoint, seals a bearer token, and tests a gate now', async () => {
    const cluster = await simulated('http-gated', 6);
    healthy = true;
    const res = await env.server.api(`/api/v1/clusters/${cluster.id}/upgrades`, {
      body: {
        component: 'docker',
        policy: {
          maxBatchPercent: 34,
          // The endpoint fails during the soak after the first batch, before the next one's check.
          soakSeconds: 2,
          gates: [
            { kind: 'http', url: `${endpoints}/health`, bodyContains: 'ok', retrySeconds: 2 },
            { kind: 'prometheus', url: `${endpoints}/secured`, query: 'up', min: 1, bearerToken: TOKEN, retrySeconds: 2 },
          ],
        },
      },
    });
    expect(res.status, res.text).toBe(201);
    const id = res.body.id as string;
    expect(res.body.policy.gates[1]).toEqual({
      kind: 'prometheus',
      url: `${endpoints}/secured`,
      query: 'up',
      min: 1,
      allowEmpty: false,
      timeoutSeconds: 10,
      retrySeconds: 2,
      bearerToken: '(set)',
    });
    expect(res.text).not.toContain(TOKEN);
    await waitFor(
      async () => (await view(id)).batches.some((b: { finishedAt: string | null }) => b.finishedAt) || undefined,
      20_000,
      'a batch',
    );
    healthy = false;
    const paused = await pausedByGate(id);
    expect(paused.pauseReason).toMatchObject({ kind: 'gate', gateIndex: 0, message: `GET ${endpoints}/health answered 503, expected 200` });
    expect(paused.batches).toHaveLength(1);
    // The token gate passed every time: the sealed token reached it.
    const events = (await env.server.api(`/api/v1/events?upgradeId=${id}&limit=200`)).body.items as Array<{
      type: string;
      data: any;
      message: string;
    }>;
    expect(events.filter((e) => e.type === 'gate.failed' && e.data.gateIndex === 1)).toEqual([]);
    expect(events.some((e) => e.type === 'gate.passed' && e.data.gateIndex === 1)).toBe(true);
    expect(JSON.stringify(events)).not.toContain(TOKEN);
    // Nowhere at rest in plain text, and not in the server's log.
    for (const file of readdirSync(env.server.dataDir)) {
      const path = join(env.server.dataDir, file);
      try {
        expect(readFileSync(path).includes(TOKEN)).toBe(false);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EISDIR') throw e;
      }
    }
    expect(env.server.output()).not.toContain(TOKEN);

    // Test now: one check, nothing stored.
    const test = async (gate: Record<string, unknown>, clusterId?: string) =>
      (await env.server.api('/api/v1/gates/test', { body: { gate, ...(clusterId ? { clusterId } : {}) } })).body;
    expect(await test({ kind: 'http', url: `${endpoints}/health` })).toEqual({
      ok: false,
      message: `GET ${endpoints}/health answered 503, expected 200`,
    });
    healthy = true;
    expect(await test({ kind: 'http', url: `${endpoints}/health` })).toEqual({ ok: true, message: `GET ${endpoints}/health answered 200` });
    expect(await test({ kind: 'prometheus', url: promUrl, query: QUERY, max: 1 })).toMatchObject({ ok: true });
    expect(await test({ kind: 'prometheus', url: `${endpoints}/secured`, query: 'up', min: 1 })).toEqual({
      ok: false,
      message: `query up on ${endpoints}/secured failed with 401 (check the bearer token): no token`,
    });
    const bad = await env.server.api('/api/v1/gates/test', { body: { gate: { kind: 'swarm-services' }, clusterId: cluster.id } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.message).toBe("gate: a swarm-services gate checks a Swarm cluster's services; this cluster is simulated");
    const viewer = await env.server.api('/api/v1/gates/test', { body: { gate: { kind: 'http', url: 'ftp://x' } } });
    expect(viewer.status).toBe(422);
    expect(viewer.body.error.message).toBe('gate.url must be an http:// or https:// URL, not ftp:');

    expect((await env.cli.run(['upgrade', 'resume', id])).code).toBe(0);
    await waitFor(async () => (await view(id)).state === 'Completed' || undefined, 60_000, 'completion');
  });
});
