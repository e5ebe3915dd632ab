import path from 'node:path';
import { openSqlite } from '../../src/store/dialect.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, startServerProcess } from '../support/server.js';
import { Cli, type CliResult } from '../support/cli.js';

/**
 * Nothing a node's agent wrote reaches the operator's terminal raw. An agent sends a
 * window-title-and-clear-screen sequence in its facts, log and error: the server strips
 * it at ingestion. Rows written before that rule (an older server's database) still hold
 * such text: the CLI shows it escaped, in every command and format that prints it, and
 * so it does with the server's error messages.
 */
const attack = '\u001b]0;pwned\u0007\u001b[2J';
/** Raw control characters a terminal acts on (newlines and tabs are layout, not commands). */
// eslint-disable-next-line no-control-regex
const rawControl = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

let server: ServerProcess;
let cli: Cli;
let upgradeId: string;

async function agentCall(credential: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}/api/v1/agent${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${credential}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  server = await startServerProcess();
  cli = new Cli(server);
  const created = await server.api('/api/v1/clusters', { body: { name: 'hostile', kind: 'hosts' } });
  expect(created.status).toBe(201);
  const facts = {
    hostname: `h${attack}`,
    os: `Debian${attack}`,
    arch: `amd64\u202e`,
    agentVersion: '1.1.0',
    versions: { docker: '20.10.24' },
    engineReachable: false,
    engineError: attack,
  };
  const join = await fetch(`${server.url}/api/v1/agent/join`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ joinToken: created.body.joinToken, name: 'evil-1', facts, protocol: 1 }),
  });
  expect(join.status).toBe(201);
  const { credential } = (await join.json()) as { credential: string };
  const put = await fetch(`${server.url}/api/v1/artifacts/docker/26.1.5/docker-26.1.5.tar.gz`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/octet-stream' },
    body: Buffer.from('docker 26.1.5'),
  });
  expect(put.status).toBe(201);
  const start = await server.api('/api/v1/clusters/hostile/upgrades', { body: { component: 'docker' } });
  expect(start.status).toBe(201);
  upgradeId = start.body.id;
  const poll = await agentCall(credential, '/tasks?waitSeconds=10');
  const taskKey = poll.body.tasks[0].taskKey as string;
  expect((await agentCall(credential, `/tasks/${taskKey}/log`, { lines: [`agent says${attack}`, 'tab\tkept'] })).status).toBe(204);
  expect(
    (await agentCall(credential, `/tasks/${taskKey}/result`, { result: 'failed', step: 'start', error: `dockerd died${attack}` })).status,
  ).toBe(204);
  for (;;) {
    if ((await server.api(`/api/v1/upgrades/${upgradeId}`)).body.state === 'Paused') break;
    await new Promise((r) => setTimeout(r, 50));
  }

  // What an older server stored as it came: written straight into its database.
  // (Past the repositories, on the server's own database file: only the rows an older server wrote.)
  const adapter = openSqlite(path.join(server.dataDir, 'upshift.db'));
  try {
    const { db } = adapter;
    const task = await db.selectFrom('nodeTasks').select(['id', 'nodeId']).where('upgradeId', '=', upgradeId).executeTakeFirstOrThrow();
    const clusterId = created.body.id as string;
    const at = new Date().toISOString();
    await db
      .insertInto('events')
      .values({
        at,
        type: 'node.failed',
        actor: 'engine',
        clusterId,
        upgradeId,
        nodeId: task.nodeId,
        message: `legacy event${attack}\u009b31m\u202eevil`,
        data: null,
      })
      .execute();
    await db
      .insertInto('nodeLogs')
      .values({ upgradeId, nodeTaskId: task.id, at, line: `legacy line${attack}\r\u009b` })
      .execute();
    await db
      .updateTable('nodeTasks')
      .set({ error: `legacy error${attack}` })
      .where('id', '=', task.id)
      .execute();
    await db
      .updateTable('upgrades')
      .set({ pauseReason: JSON.stringify({ kind: 'error', message: `evil-1: legacy reason${attack}`, nodeId: task.nodeId }) })
      .where('id', '=', upgradeId)
      .execute();
  } finally {
    await adapter.close();
  }
}, 60_000);

afterAll(async () => {
  cli?.cleanup();
  await server?.stop();
  server?.cleanup();
});

function expectNoRawControls(result: CliResult): void {
  expect(rawControl.test(result.stdout), `stdout: ${JSON.stringify(result.stdout)}`).toBe(false);
  expect(rawControl.test(result.stderr), `stderr: ${JSON.stringify(result.stderr)}`).toBe(false);
}

describe.concurrent('control characters on the operator’s terminal', () => {
  it('upshift events shows an agent’s text stripped and a stored escape sequence escaped, in every format', async () => {
    const [table, wide, json, yaml] = await Promise.all([
      cli.run(['events', '--upgrade', upgradeId]),
      cli.run(['events', '--cluster', 'hostile', '-o', 'wide']),
      cli.run(['events', '--upgrade', upgradeId, '-o', 'json']),
      cli.run(['events', '--upgrade', upgradeId, '-o', 'yaml']),
    ]);
    for (const r of [table, wide, json, yaml]) {
      expect(r.code).toBe(0);
      expectNoRawControls(r);
    }
    expect(table.stdout).toContain('evil-1: start: dockerd died]0;pwned[2J');
    expect(table.stdout).toContain('legacy event\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil');
    expect(wide.stdout).toContain('node evil-1 joined hostile (agent 1.1.0, Debian]0;pwned[2J amd64, from 127.0.0.1)');
    const messages = (JSON.parse(json.stdout) as { items: { message: string }[] }).items.map((e) => e.message);
    expect(messages).toContain('legacy event\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil');
    expect(yaml.stdout).toContain('legacy event');
  });

  it('upshift upgrade log keeps the log’s lines and tabs and escapes the rest', async () => {
    const log = await cli.run(['upgrade', 'log', upgradeId, 'evil-1']);
    expect(log.code).toBe(0);
    expectNoRawControls(log);
    expect(log.stdout).toMatch(/Z agent says\]0;pwned\[2J\n/);
    expect(log.stdout).toMatch(/Z tab\tkept\n/);
    expect(log.stdout).toMatch(/Z legacy line\\x1b\]0;pwned\\x07\\x1b\[2J\\r\\x9b\n/);
  });

  it('upshift upgrade get, upgrade nodes, node list and cluster get print no raw control character', async () => {
    const results = await Promise.all([
      cli.run(['upgrade', 'get', upgradeId]),
      cli.run(['upgrade', 'get', upgradeId, '-o', 'yaml']),
      cli.run(['upgrade', 'nodes', upgradeId, '-o', 'wide']),
      cli.run(['upgrade', 'list', '-o', 'wide']),
      cli.run(['node', 'list', 'hostile', '-o', 'wide']),
      cli.run(['cluster', 'get', 'hostile']),
      cli.run(['cluster', 'list', '-o', 'wide']),
    ]);
    for (const r of results) {
      expect(r.code).toBe(0);
      expectNoRawControls(r);
    }
    expect(results[0]?.stdout).toContain('pause reason: evil-1: legacy reason\\x1b]0;pwned\\x07\\x1b[2J');
    expect(results[2]?.stdout).toContain('legacy error\\x1b]0;pwned\\x07\\x1b[2J');
  });

  it('a name with control characters is refused without echoing them to the terminal', async () => {
    // The server refuses such a name before any lookup (ids and names are a fixed alphabet).
    const result = await cli.run(['upgrade', 'log', upgradeId, 'ghost\u009b\u202e\u001b[2J']);
    expect(result.code).not.toBe(0);
    expectNoRawControls(result);
    expect(result.stderr).toMatch(/characters that are not allowed/);
  });
});
