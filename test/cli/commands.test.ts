import { statSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { freePort, repoRoot, startServerProcess, type ServerProcess } from '../support/server.js';
import { backgroundCli, Cli, type CliResult, tableRows } from '../support/cli.js';

/**
 * The CLI against the real server, as a user runs it: tables, `-o json` equal to the
 * API's objects, the API's messages on stderr, and the documented exit codes.
 */
let server: ServerProcess;
let cli: Cli;

let created: CliResult;

beforeAll(async () => {
  server = await startServerProcess();
  cli = new Cli(server);
  created = await cli.run(['cluster', 'create', 'fleet', '--kind', 'simulated', '--nodes', '50', '--upgrade-seconds', '0.2']);
});

afterAll(async () => {
  cli?.cleanup();
  await server?.stop();
  server?.cleanup();
});

/** A simulated cluster made through the API, for tests about something else. */
async function createCluster(name: string, nodes: number, upgradeSeconds: number): Promise<void> {
  const res = await server.api('/api/v1/clusters', { body: { name, kind: 'simulated', simulation: { nodes, upgradeSeconds } } });
  expect(res.status).toBe(201);
}

describe.concurrent('the CLI against a server', () => {
  describe('clusters', () => {
    it('creates a 50-node simulated cluster and shows it as a table, wide, JSON and YAML', async () => {
      expect(created.code).toBe(0);
      expect(created.stdout).toMatch(/^cluster fleet created: simulated, 50 nodes \(id cl_[0-9a-z]{16}\)\n$/);

      const [list, wide, json, yaml] = await Promise.all([
        cli.run(['cluster', 'list']),
        cli.run(['cluster', 'list', '-o', 'wide']),
        cli.run(['cluster', 'list', '-o', 'json']),
        cli.run(['cluster', 'get', 'fleet', '-o', 'yaml']),
      ]);
      expect(list.code).toBe(0);
      const rows = tableRows(list.stdout);
      expect(rows[0]).toEqual(['NAME', 'KIND', 'STATUS', 'NODES', 'UPGRADABLE', 'VERSIONS', 'MESSAGE', 'AGE']);
      const fleet = rows.find((r) => r[0] === 'fleet');
      expect(fleet?.slice(0, 5)).toEqual(['fleet', 'simulated', 'Running', '50', 'agent,docker,containerd,sandboxed-runtime']);
      // Every component's versions, compactly, without -o wide.
      expect(fleet?.[5]).toMatch(/^agent \S+ · docker \S+ · containerd \S+ · sandboxed-runtime \S+$/);
      // Aligned: every column starts at the same offset on every line.
      const lines = list.stdout.trimEnd().split('\n');
      expect(lines.every((l) => l.indexOf(l.split(/ {3,}/)[1] ?? '') === lines[0]?.indexOf('KIND'))).toBe(true);
      expect(list.stdout).not.toContain('\u001b[');

      expect(tableRows(wide.stdout)[0]).toEqual([
        'NAME',
        'ID',
        'KIND',
        'STATUS',
        'NODES',
        'UPGRADABLE',
        'AGENT',
        'DOCKER',
        'CONTAINERD',
        'SANDBOXED-RUNTIME',
        'UPGRADE',
        'MESSAGE',
        'AGE',
      ]);
      expect(
        tableRows(wide.stdout)
          .find((r) => r[0] === 'fleet')
          ?.slice(6, 10),
      ).toEqual(['1.0.0', '20.10.24', '1.6.20', '20221219']);

      // Other tests create clusters meanwhile: compare this one's object.
      const api = await server.api('/api/v1/clusters');
      const byName = (body: { items: { name: string }[] }) => body.items.find((c) => c.name === 'fleet');
      expect(Object.keys(JSON.parse(json.stdout))).toEqual(['items']);
      expect(byName(JSON.parse(json.stdout))).toEqual(byName(api.body));
      const one = await server.api('/api/v1/clusters/fleet');
      expect(parse(yaml.stdout)).toEqual(one.body);
    });

    it('shows one cluster with its components', async () => {
      const result = await cli.run(['cluster', 'get', 'fleet']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/COMPONENT {3,}VERSIONS {3,}LATEST {3,}UPGRADABLE\n/);
      expect(result.stdout).toMatch(/\ndocker {3,}20\.10\.24 {3,}28\.5\.2 {3,}yes\n/);
    });

    it('refuses a Docker Engine upgrade while the agents are outdated: the API message, exit 3', async () => {
      const result = await cli.run(['upgrade', 'start', 'fleet', '--component', 'docker']);
      expect(result.code).toBe(3);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(
        'error: 50 of 50 nodes run an agent older than 1.1.0 (for example sim-001): upgrade the agent component first\n',
      );
    });

    it('plans the batches, one line each: 1, 2, 4, then 5 at a time', async () => {
      const [table, json] = await Promise.all([
        cli.run(['upgrade', 'plan', 'fleet', '--component', 'agent']),
        cli.json<{ batches: string[][]; cap: number }>(['upgrade', 'plan', 'fleet', '--component', 'agent']),
      ]);
      expect(table.code).toBe(0);
      const lines = table.stdout.trimEnd().split('\n');
      expect(lines[0]).toBe('Agent → 1.1.0 on fleet: 50 nodes in 12 batches of at most 5');
      expect(tableRows(lines.slice(2).join('\n'))).toEqual([
        ['BATCH', 'SIZE', 'NODES'],
        ['1', '1', 'sim-001'],
        ['2', '2', 'sim-002, sim-003'],
        ['3', '4', 'sim-004, sim-005, sim-006, sim-007'],
        ['4', '5', 'sim-008, sim-009, sim-010, sim-011, sim-012'],
        ...Array.from({ length: 7 }, (_, i) => [String(i + 5), '5', expect.stringMatching(/^sim-\d{3}(, sim-\d{3}){4}$/)]),
        ['12', '3', 'sim-048, sim-049, sim-050'],
      ]);
      expect(json.batches.map((b) => b.length)).toEqual([1, 2, 4, 5, 5, 5, 5, 5, 5, 5, 5, 3]);
      expect(json.cap).toBe(5);
    });

    it('adds and removes nodes, and deletes a cluster', async () => {
      await createCluster('small', 2, 0.1);
      const added = await cli.run(['node', 'add', 'small', 'edge-1']);
      expect(added.code).toBe(0);
      expect(added.stdout).toMatch(/^node edge-1 added to small \(id nd_/);
      const nodes = await cli.run(['node', 'list', 'small']);
      expect(tableRows(nodes.stdout).map((r) => r[0])).toEqual(['NAME', 'edge-1', 'sim-001', 'sim-002']);
      expect(tableRows(nodes.stdout)[0]).toEqual([
        'NAME',
        'ROLE',
        'STATUS',
        'AGENT',
        'DOCKER',
        'CONTAINERD',
        'SANDBOXED-RUNTIME',
        'DISTRIBUTION',
      ]);
      const removed = await cli.run(['node', 'remove', 'small', 'edge-1']);
      expect([removed.code, removed.stdout]).toEqual([0, 'node edge-1 removed from small\n']);
      const deleted = await cli.run(['cluster', 'delete', 'small']);
      expect([deleted.code, deleted.stdout]).toEqual([0, 'cluster small deleted\n']);
      expect((await server.api('/api/v1/clusters/small')).status).toBe(404);
    });
  });

  describe('node identity', () => {
    it('prints join tokens with their expiry and the agent checksum, and resets a node', async () => {
      const created = await cli.run(['cluster', 'create', 'edge', '--kind', 'hosts']);
      expect(created.code, created.stderr).toBe(0);
      const sha = /agent sha256: ([0-9a-f]{64}) \(of the agent executable; the install script refuses one with another checksum\)\n/.exec(
        created.stdout,
      )?.[1];
      // The checksum of the executable the build recorded, which the server hands to hosts.
      const manifest = JSON.parse(readFileSync(join(repoRoot, 'dist/agent/upshift-agent-linux-x64.json'), 'utf8')) as { sha256: string };
      expect(sha).toBe(manifest.sha256);
      expect(created.stdout).toMatch(/Join token for edge \(shown only now; expires \d{4}-\d\d-\d\dT[\d:.]+Z\):\n {2}upj_\S+\n/);
      expect(created.stdout).toContain(`| sudo sh -s -- --join-token upj_`);
      expect(created.stdout).toContain(` --sha256 ${sha}\n`);

      const once = await cli.run(['cluster', 'join-token', 'edge', '--single-use', '--ttl', '30m']);
      expect(once.code, once.stderr).toBe(0);
      expect(once.stdout).toMatch(/^Join token for edge \(shown only now; expires \S+; admits one join\):\n {2}(upj_\S+)\n/);
      const joinToken = /\n {2}(upj_\S+)\n/.exec(once.stdout)?.[1] as string;
      const expires = Date.parse(/expires (\S+);/.exec(once.stdout)?.[1] ?? '');
      expect(Math.abs(expires - Date.now() - 30 * 60_000)).toBeLessThan(60_000);
      const tooShort = await cli.run(['cluster', 'join-token', 'edge', '--ttl', '5s']);
      expect(tooShort.code).toBe(2);
      expect(tooShort.stderr).toContain('expected a duration from 1m to 365d');

      const joined = await fetch(`${server.url}/api/v1/agent/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          joinToken,
          name: 'edge-1',
          facts: { hostname: 'edge-1', agentVersion: '1.1.0', versions: {} },
          protocol: 1,
        }),
      });
      expect(joined.status).toBe(201);
      const reset = await cli.run(['node', 'reset', 'edge', 'edge-1']);
      expect(reset.code, reset.stderr).toBe(0);
      expect(reset.stdout).toBe(
        'node edge-1 of edge reset: its agent is locked out\n' +
          'The next join as edge-1 claims the node: run the join command of `upshift cluster join-token edge --single-use` on the host that replaces it.\n',
      );
      const again = await cli.json<{ revokedCredentials: number; node: { name: string } }>(['node', 'reset', 'edge', 'edge-1']);
      expect(again).toMatchObject({ revokedCredentials: 0, node: { name: 'edge-1' } });
      const missing = await cli.run(['node', 'reset', 'edge', 'edge-9']);
      expect(missing.code).toBe(4);
    });
  });

  describe('events', () => {
    it('follows new events as they happen, one JSON object per line with -o json', async () => {
      await createCluster('followed', 2, 0.1);
      const follow = backgroundCli(['events', '--follow', '--cluster', 'followed', '--limit', '1', '-o', 'json'], cli.env());
      // The newest past event first (the cluster's creation), then what happens next.
      await follow.waitFor(/"type":"cluster\.created"/);
      expect((await server.api('/api/v1/clusters/followed/nodes', { body: { name: 'late-joiner' } })).status).toBe(201);
      const out = await follow.waitFor(/"type":"cluster\.node_added"/);
      const events = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(events.map((e) => e.type)).toEqual(['cluster.created', 'cluster.node_added']);
      expect(events[1].message).toBe('node late-joiner added to followed');
      expect((await follow.stop()).code).toBe(0);
    });
  });

  describe('an upgrade, steered', () => {
    it('starts, pauses, refuses membership changes, resumes, refuses cancel while running, pauses and cancels', async () => {
      await createCluster('steer', 30, 1);
      const started = await cli.json<{ id: string; state: string; toVersion: string }>([
        'upgrade',
        'start',
        'steer',
        '--component',
        'agent',
        '--max-batch-percent',
        '7',
      ]);
      expect(started.state).toBe('Upgrading');
      expect(started.toVersion).toBe('1.1.0');

      const paused = await cli.run(['upgrade', 'pause', 'steer']);
      expect(paused.code).toBe(0);
      expect(paused.stdout).toContain(`upgrade ${started.id} is Paused (Agent upgrade is paused)`);
      expect(paused.stdout).toMatch(/auto-cancel in 14d23h \(at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)/);

      const [details, locked, again] = await Promise.all([
        cli.run(['upgrade', 'get', started.id]),
        cli.run(['node', 'add', 'steer', 'late-1']),
        cli.run(['upgrade', 'pause', started.id]),
      ]);
      expect(details.code).toBe(0);
      expect(tableRows(details.stdout)[0]).toEqual([
        'ID',
        'CLUSTER',
        'COMPONENT',
        'TARGET',
        'STATE',
        'PROGRESS',
        'BATCH',
        'ETA',
        'REASON',
        'AGE',
      ]);
      // Where it stands, and no ETA while it waits for a person.
      expect(details.stdout).toMatch(/\nbatch \d+ of \d+ · \d+\/\d+ nodes · no ETA while it waits for an operator\n/);
      expect(details.stdout).toContain('pause reason: paused by admin\n');
      expect(details.stdout).toMatch(/\nBATCH {3,}SIZE {3,}STATE {3,}TOOK {3,}NODES\n1 {3,}1 {3,}succeeded/);
      expect(locked.code).toBe(3);
      expect(locked.stderr).toMatch(
        /^error: cannot add node late-1: cluster steer is being upgraded \(upgrade upg_\w+ is Paused\); membership is locked/,
      );
      expect([again.code, again.stderr]).toEqual([3, 'error: the upgrade is already paused\n']);

      const resumed = await cli.run(['upgrade', 'resume', 'steer']);
      expect([resumed.code, resumed.stdout]).toEqual([0, `upgrade ${started.id} is Upgrading (Agent is upgrading)\n`]);
      const refused = await cli.run(['upgrade', 'cancel', 'steer']);
      expect([refused.code, refused.stderr]).toEqual([3, 'error: the upgrade is running: pause it first, then cancel\n']);

      expect((await cli.run(['upgrade', 'pause', 'steer'])).code).toBe(0);
      const canceled = await cli.json<{ state: string; nodes: { skipped: number } }>(['upgrade', 'cancel', 'steer']);
      expect(canceled.state).toBe('Canceled');
      expect(canceled.nodes.skipped).toBeGreaterThan(0);

      const [list, nodes, log, eventTable, eventJson] = await Promise.all([
        cli.run(['upgrade', 'list', '--cluster', 'steer', '--state', 'Canceled']),
        cli.run(['upgrade', 'nodes', started.id]),
        cli.run(['upgrade', 'log', 'steer', 'sim-001']),
        cli.run(['events', '--cluster', 'steer', '--type', 'upgrade.paused']),
        cli.run(['events', '--upgrade', 'steer', '--type', 'upgrade.paused', '-o', 'json']),
      ]);
      expect(
        tableRows(list.stdout)
          .slice(1)
          .map((r) => r.slice(0, 5)),
      ).toEqual([[started.id, 'steer', 'agent', '1.1.0', 'Canceled']]);
      // Why it ended, in the list: who canceled it, and that it was paused by whom.
      expect(tableRows(list.stdout)[1]?.at(-2)).toMatch(
        /^Canceled by admin \(it was paused: paused by admin\); \d+ node\(s\) will not be upgraded, \d+ stay upgraded/,
      );
      expect(tableRows(nodes.stdout)[0]).toEqual(['NAME', 'STATE', 'BATCH', 'ATTEMPT', 'FROM', 'TO', 'ERROR']);
      expect(tableRows(nodes.stdout)[1]?.slice(0, 6)).toEqual(['sim-001', 'succeeded', '1', '1', '1.0.0', '1.1.0']);
      expect(nodes.stdout).toMatch(/\nsim-030 {3,}skipped/);
      expect(log.stdout).toMatch(/verified: Agent reports 1\.1\.0\n$/);

      // The events: a table oldest first; with -o json the API's page, newest first.
      expect(eventTable.code).toBe(0);
      const rows = tableRows(eventTable.stdout);
      expect(rows[0]).toEqual(['TIME', 'TYPE', 'ACTOR', 'CLUSTER', 'MESSAGE']);
      expect(rows.slice(1).map((r) => r.slice(1, 4))).toEqual([
        ['upgrade.paused', 'admin', 'steer'],
        ['upgrade.paused', 'admin', 'steer'],
      ]);
      const api = await server.api(`/api/v1/events?upgradeId=${started.id}&type=upgrade.paused`);
      expect(JSON.parse(eventJson.stdout)).toEqual(api.body);
      expect(rows[1]?.[0]).toBe((api.body.items[1].at as string).replace(/\.\d+Z$/, 'Z'));
    });
  });

  describe('errors and exit codes', () => {
    it('usage errors exit 2 and name the problem', async () => {
      const [format, number, missing, version] = await Promise.all([
        cli.run(['cluster', 'list', '-o', 'xml']),
        cli.run(['cluster', 'create', 'x', '--nodes', 'many']),
        cli.run(['upgrade', 'start', 'fleet']),
        cli.run(['cluster', 'create', 'x', '--version', 'kernel=6.1']),
      ]);
      expect(format.code).toBe(2);
      expect(format.stderr).toContain("argument 'xml' is invalid. Allowed choices are table, wide, json, yaml, manifests.");
      expect(number.code).toBe(2);
      expect(number.stderr).toContain("option '--nodes <n>' argument 'many' is invalid");
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain("required option '--component <component>' not specified");
      expect(version.code).toBe(2);
      expect(version.stderr).toBe(
        'error: --version kernel=6.1: unknown component "kernel"; known: agent, docker, containerd, sandboxed-runtime\n',
      );
    });

    it('not found 4, auth 5, unreachable 6, other API errors 1', async () => {
      const port = await freePort();
      const [missing, badToken, noToken, down, invalid] = await Promise.all([
        cli.run(['upgrade', 'get', 'no-such-cluster']),
        cli.run(['cluster', 'list', '--token', 'not-the-token']),
        cli.run(['cluster', 'list'], { UPSHIFT_TOKEN: undefined }),
        cli.run(['cluster', 'list', '--server', `http://127.0.0.1:${port}`]),
        cli.run(['upgrade', 'start', 'fleet', '--component', 'agent', '--to', '9.9.9']),
      ]);
      expect(missing.code).toBe(4);
      expect(missing.stderr).toContain('error: no upgrade with id "no-such-cluster" and no cluster named "no-such-cluster"');
      expect(badToken.code).toBe(5);
      expect(badToken.stderr).toMatch(/^error: unknown, expired or revoked token: /);
      expect(noToken.code).toBe(5);
      expect(noToken.stderr).toContain('hint: no token is configured: pass --token, set UPSHIFT_TOKEN');
      expect(down.code).toBe(6);
      expect(down.stderr).toContain(`error: cannot reach the Upshift server at http://127.0.0.1:${port}: connect ECONNREFUSED`);
      expect(invalid.code).toBe(1);
      expect(invalid.stderr).toBe('error: agent 9.9.9 is not in the catalog; known versions: 1.0.0, 1.1.0\n');
    });

    it('documents the exit codes in --help', async () => {
      const help = await cli.run(['--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('Exit codes:\n  0  success\n  1  other API errors (400, 422, 5xx)\n  2  usage');
      expect(help.stdout).toContain('6  the server could not be reached');
    });
  });

  describe('contexts', () => {
    it('saves contexts, switches between them, and applies flag > environment > context', async () => {
      const port = await freePort();
      const nowhere = `http://127.0.0.1:${port}`;
      const contexts = new Cli(undefined);
      try {
        expect((await contexts.run(['config', 'set-context', 'local', '--server', server.url, '--token', server.token])).stdout).toContain(
          'context local created and in use',
        );
        expect((await contexts.run(['config', 'set-context', 'broken', '--server', nowhere, '--token', 'broken-token-1'])).code).toBe(0);
        expect(statSync(contexts.configFile).mode & 0o777).toBe(0o600);
        expect(parse(readFileSync(contexts.configFile, 'utf8'))).toEqual({
          'current-context': 'local',
          contexts: { local: { server: server.url, token: server.token }, broken: { server: nowhere, token: 'broken-token-1' } },
        });

        const [listed, viaContext, viaOther, envBeatsContext, flagBeatsEnv] = await Promise.all([
          contexts.run(['config', 'get-contexts']),
          contexts.run(['cluster', 'list']),
          contexts.run(['cluster', 'list', '--context', 'broken']),
          contexts.run(['cluster', 'list', '--context', 'broken'], { UPSHIFT_SERVER: server.url, UPSHIFT_TOKEN: server.token }),
          contexts.run(['cluster', 'list', '--server', nowhere], { UPSHIFT_SERVER: server.url }),
        ]);
        expect(tableRows(listed.stdout)).toEqual([
          ['CURRENT', 'NAME', 'SERVER', 'TOKEN'],
          ['*', 'local', server.url, `${server.token.slice(0, 4)}…${server.token.slice(-4)}`],
          ['', 'broken', nowhere, 'brok…en-1'].map((c, i) => (i === 0 ? expect.any(String) : c)),
        ]);
        expect(listed.stdout).not.toContain(server.token);
        expect(viaContext.code).toBe(0);
        expect(viaContext.stdout).toMatch(/^NAME {3,}KIND/);
        expect(viaOther.code).toBe(6);
        expect(envBeatsContext.code).toBe(0);
        expect(flagBeatsEnv.code).toBe(6);

        expect((await contexts.run(['config', 'use-context', 'broken'])).stdout).toBe('now using context broken\n');
        const [current, viaBroken, unknown] = await Promise.all([
          contexts.run(['config', 'current-context']),
          contexts.run(['cluster', 'list']),
          contexts.run(['config', 'use-context', 'nope']),
        ]);
        expect(current.stdout).toBe('broken\n');
        expect(viaBroken.code).toBe(6);
        expect([unknown.code, unknown.stderr.split('\n')[0]]).toEqual([4, `error: context "nope" is not in ${contexts.configFile}`]);
      } finally {
        contexts.cleanup();
      }
    });
  });
});
