import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { UpgradeView } from '../../src/api/index.js';
import { createClusterBody, parseVersions } from '../../src/cli/commands/cluster.js';
import { configFilePath, readConfig, writeConfig } from '../../src/cli/config-file.js';
import { CliError } from '../../src/cli/errors.js';
import { ApiClient } from '../../src/cli/http.js';
import { formatTable, nameList } from '../../src/cli/output.js';
import { followEvents, parseEventStream } from '../../src/cli/sse.js';
import { outcomeOf } from '../../src/cli/watch/outcome.js';

/** The CLI's pure parts, in-process: tables, the SSE parser and reconnection, outcomes, config files, request bodies. */

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  for (const part of parts) yield encoder.encode(part);
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('tables', () => {
  it('aligns columns on the visible text, ignoring colour codes, and shows empty cells as -', () => {
    const red = (s: string) => `\u001b[31m${s}\u001b[39m`;
    expect(
      formatTable(
        ['name', 'state', 'note'],
        [
          ['a', red('Paused'), 'x'],
          ['longer-name', 'Completed', ''],
        ],
      ),
    ).toBe(`NAME          STATE       NOTE\na             ${red('Paused')}      x\nlonger-name   Completed   -\n`);
  });

  it('shortens long node lists', () => {
    expect(nameList(['a', 'b', 'c', 'd'])).toBe('a, b, c, d');
    expect(nameList(['a', 'b', 'c', 'd', 'e', 'f'])).toBe('a, b, c +3 more');
  });
});

describe('the event-stream parser', () => {
  it('reads ids, types and multi-line data across chunk boundaries, CRLF and split UTF-8', async () => {
    const bytes = new TextEncoder().encode('id: 7\r\nevent: node.started\r\ndata: {"m":"sim-001 → 2"}\r\n\r\n');
    const split = bytes.indexOf(0x86); // inside the UTF-8 of "→"
    async function* parts() {
      yield new TextEncoder().encode(': connected\nretry: 2000\n\n');
      yield bytes.slice(0, 6); // "id: 7\r": the CRLF split across chunks
      yield bytes.slice(6, split);
      yield bytes.slice(split);
      yield new TextEncoder().encode('data: line one\ndata: line two\n\n');
    }
    const messages = await collect(parseEventStream(parts()));
    expect(messages).toEqual([
      { id: undefined, event: 'message', data: '', retry: 2000 },
      { id: '7', event: 'node.started', data: '{"m":"sim-001 → 2"}', retry: undefined },
      { id: '7', event: 'message', data: 'line one\nline two', retry: undefined },
    ]);
  });

  it('ignores comments and a final message without its blank line', async () => {
    expect(await collect(parseEventStream(chunks(': keep-alive\n\n', 'data: x\n')))).toEqual([]);
  });
});

describe('following the stream', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('reconnects with Last-Event-ID after the connection drops, losing and repeating nothing', async () => {
    const requests: IncomingMessage['headers'][] = [];
    const event = (id: number) =>
      `id: ${id}\nevent: node.started\ndata: ${JSON.stringify({ id: String(id), type: 'node.started', message: `event ${id}` })}\n\n`;
    server = createServer((req, res) => {
      requests.push(req.headers);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const after = Number(req.headers['last-event-id'] ?? 0);
      res.write('retry: 20\n\n');
      // Two events per connection, then the connection drops.
      res.end(event(after + 1) + event(after + 2));
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const client = new ApiClient(`http://127.0.0.1:${port}`, 'token-for-test');
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const e of followEvents(client, { query: { upgradeId: 'upg_x' }, lastEventId: '10', signal: controller.signal })) {
      seen.push(e.id);
      if (seen.length === 6) controller.abort();
    }
    expect(seen).toEqual(['11', '12', '13', '14', '15', '16']);
    expect(requests.map((h) => h['last-event-id'])).toEqual(['10', '12', '14']);
    expect(requests.every((h) => h['authorization'] === 'Bearer token-for-test')).toBe(true);
  });
});

describe('the outcome of a watch', () => {
  const upgrade = (state: UpgradeView['state'], running = 0, extra: Partial<UpgradeView> = {}): UpgradeView => ({
    id: 'upg_0123456789abcdef',
    clusterId: 'cl_1',
    clusterName: 'c1',
    component: 'docker',
    toVersion: '26.1.5',
    state,
    statusText: `Docker-Engine upgrade is ${state}`,
    pauseReason: null,
    endReason: null,
    progress: {
      batch: 0,
      batches: 4,
      plannedSizes: [1, 1, 1, 1],
      nodesDone: 0,
      nodesTotal: 10,
      elapsedSeconds: 1,
      etaSeconds: null,
      etaAt: null,
    },
    createdAt: '2026-01-01T00:00:00.000Z',
    createdBy: 'admin',
    pausedAt: null,
    finishedAt: null,
    autoCancelAt: null,
    nextBatchAt: null,
    waiting: null,
    snapshot: 'none',
    policy: { maxBatchPercent: 10, soakSeconds: 0 },
    cap: 1,
    nodes: { total: 10, pending: 10 - running, running, succeeded: 0, failed: 0, skipped: 0 },
    batches: [],
    snapshots: null,
    drivenBy: null,
    ...extra,
  });

  it('is 0 on Completed, 3 on Paused, Canceled and SnapshotFailed, and waits for running nodes', () => {
    expect(outcomeOf({ upgrade: upgrade('Completed'), tasks: [] }, false)?.exitCode).toBe(0);
    expect(outcomeOf({ upgrade: upgrade('Upgrading', 2), tasks: [] }, false)).toBeUndefined();
    expect(outcomeOf({ upgrade: upgrade('BackingUp'), tasks: [] }, false)).toBeUndefined();
    expect(outcomeOf({ upgrade: upgrade('Paused', 2), tasks: [] }, false)).toBeUndefined();
    expect(outcomeOf({ upgrade: upgrade('Canceled', 1), tasks: [] }, false)).toBeUndefined();
    expect(outcomeOf({ upgrade: upgrade('Canceled'), tasks: [] }, false)?.exitCode).toBe(3);
    expect(outcomeOf({ upgrade: upgrade('SnapshotFailed'), tasks: [] }, false)?.exitCode).toBe(3);
    const paused = upgrade('Paused', 0, {
      pauseReason: { kind: 'error', message: 'docker did not start', nodeId: 'nd_7' },
      autoCancelAt: new Date(Date.now() + 3 * 86_400_000 + 60_000).toISOString(),
    });
    const result = outcomeOf({ upgrade: paused, tasks: [{ nodeId: 'nd_7', nodeName: 'sim-007' } as never] }, false);
    expect(result?.exitCode).toBe(3);
    expect(result?.message).toMatch(
      /^Docker-Engine upgrade upg_0123456789abcdef is paused: sim-007 failed: docker did not start \(0 of 10 nodes upgraded\); .*auto-cancel in 3d0h/,
    );
    expect(outcomeOf({ upgrade: paused, tasks: [] }, true)).toBeUndefined();
  });
});

describe('the config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upshift-cli-unit-'));
  afterEach(() => rmSync(join(dir, 'config.yaml'), { force: true }));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lives in UPSHIFT_CONFIG_FILE, else XDG_CONFIG_HOME, else ~/.config', () => {
    expect(configFilePath({ UPSHIFT_CONFIG_FILE: '/x/c.yaml', XDG_CONFIG_HOME: '/y' })).toBe('/x/c.yaml');
    expect(configFilePath({ XDG_CONFIG_HOME: '/y' })).toBe('/y/upshift/config.yaml');
    expect(configFilePath({})).toMatch(/\/\.config\/upshift\/config\.yaml$/);
  });

  it('round-trips, and rejects unknown keys by name', () => {
    const file = join(dir, 'config.yaml');
    writeConfig(file, { currentContext: 'a', contexts: { a: { server: 'http://h:1', token: 't' } } });
    expect(readConfig(file)).toEqual({ currentContext: 'a', contexts: { a: { server: 'http://h:1', token: 't' } } });
    writeFileSync(file, 'contexts:\n  a:\n    sever: http://h:1\n');
    expect(() => readConfig(file)).toThrow(/contexts\.a\.sever is not a known key; known: server, token/);
    writeFileSync(file, 'current: a\n');
    expect(() => readConfig(file)).toThrow(CliError);
  });
});

describe('request bodies', () => {
  it('builds the simulation object of POST /clusters from the flags', () => {
    expect(
      createClusterBody('demo', {
        kind: 'simulated',
        nodes: 50,
        managers: 3,
        upgradeSeconds: 0.5,
        failNodes: ['sim-007'],
        snapshotFailNodes: [],
        version: ['docker=20.10.24', 'agent=1.0.0,containerd=1.6.20'],
      }),
    ).toEqual({
      name: 'demo',
      kind: 'simulated',
      simulation: {
        nodes: 50,
        managers: 3,
        upgradeSeconds: 0.5,
        failNodes: ['sim-007'],
        snapshotFailNodes: [],
        versions: { docker: '20.10.24', agent: '1.0.0', containerd: '1.6.20' },
      },
    });
    expect(createClusterBody('h', { kind: 'hosts' })).toEqual({ name: 'h', kind: 'hosts' });
    expect(() => createClusterBody('h', { kind: 'hosts', nodes: 3 })).toThrow(/use --kind simulated/);
    expect(() => parseVersions(['docker'])).toThrow(/expected component=version/);
  });
});
