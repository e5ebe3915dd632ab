import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderNodes } from '../../src/domain/batch-planner.js';
import { startServerProcess, type ServerProcess } from '../support/server.js';
import { Cli, tableRows } from '../support/cli.js';

/**
 * The server pages node lists (500 rows by default, 5,000 at most); the CLI walks every
 * page, so `node list` and `upgrade nodes` still show the whole list: as a table printed
 * page by page, or with `-o json` as one `{items}` document.
 */
let server: ServerProcess;
let cli: Cli;
const NODES = 5203;
const names = Array.from({ length: NODES }, (_, i) => `sim-${String(i + 1).padStart(4, '0')}`);

beforeAll(async () => {
  server = await startServerProcess();
  cli = new Cli(server);
  const made = await server.api('/api/v1/clusters', {
    body: {
      name: 'big',
      kind: 'simulated',
      simulation: { nodes: NODES, managers: 3, upgradeSeconds: 60, versions: { agent: '1.1.0', docker: '20.10.24' } },
    },
  });
  expect(made.status, made.text).toBe(201);
});

afterAll(async () => {
  cli?.cleanup();
  await server?.stop();
  server?.cleanup();
});

describe('the CLI pages through node lists', () => {
  it('node list prints every node of a 5,203-node cluster once, in order, under one header', async () => {
    const result = await cli.run(['node', 'list', 'big']);
    expect(result.code, result.stderr).toBe(0);
    const rows = tableRows(result.stdout);
    expect(rows[0]).toEqual(['NAME', 'ROLE', 'STATUS', 'AGENT', 'DOCKER', 'CONTAINERD', 'SANDBOXED-RUNTIME', 'DISTRIBUTION']);
    expect(rows.slice(1).map((r) => r[0])).toEqual(names);
    expect(rows[1]?.slice(0, 5)).toEqual(['sim-0001', 'manager', 'Ready', '1.1.0', '20.10.24']);
    // Columns line up across pages: every row's second column starts under ROLE.
    const lines = result.stdout.trimEnd().split('\n');
    const roleAt = lines[0]?.indexOf('ROLE');
    expect(lines.every((l) => l.indexOf(l.split(/ {3,}/)[1] ?? '') === roleAt)).toBe(true);
  });

  it('node list -o json prints one {items} document with every node', async () => {
    const result = await cli.run(['node', 'list', 'big', '-o', 'json']);
    expect(result.code, result.stderr).toBe(0);
    const doc = JSON.parse(result.stdout) as { items: Array<{ name: string }> };
    expect(Object.keys(doc)).toEqual(['items']);
    expect(doc.items.map((n) => n.name)).toEqual(names);
  });

  it('says so when a cluster has no node', async () => {
    expect((await server.api('/api/v1/clusters', { body: { name: 'empty', kind: 'hosts' } })).status).toBe(201);
    const result = await cli.run(['node', 'list', 'empty']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('Cluster empty has no nodes.\n');
  });

  it('upgrade nodes and upgrade get see all of an upgrade’s 5,203 nodes', async () => {
    const started = await cli.json<{ id: string }>(['upgrade', 'start', 'big', '--component', 'docker']);
    const nodes = (await cli.json<{ items: Array<{ id: string; name: string; role: 'manager' | 'worker' }> }>(['node', 'list', 'big']))
      .items;
    const order = orderNodes(nodes).map((n) => n.name);

    const table = await cli.run(['upgrade', 'nodes', started.id]);
    expect(table.code, table.stderr).toBe(0);
    const rows = tableRows(table.stdout);
    expect(rows[0]).toEqual(['NAME', 'STATE', 'BATCH', 'ATTEMPT', 'FROM', 'TO', 'ERROR']);
    expect(rows.slice(1).map((r) => r[0])).toEqual(order);

    const json = await cli.run(['upgrade', 'nodes', started.id, '-o', 'json']);
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as { items: Array<{ nodeName: string }> };
    expect(Object.keys(doc)).toEqual(['items']);
    expect(doc.items.map((t) => t.nodeName)).toEqual(order);

    // The batch table of `upgrade get` names the nodes of every batch, found on any page.
    const detail = await cli.run(['upgrade', 'get', started.id, '-o', 'wide']);
    expect(detail.code, detail.stderr).toBe(0);
    expect(detail.stdout).toContain('sim-0001');
    expect(detail.stdout).not.toMatch(/nd_[0-9a-z]{16}/);
  });
});
