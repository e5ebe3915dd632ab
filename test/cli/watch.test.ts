import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../support/server.js';
import { Cli, Tmux } from '../support/cli.js';

/**
 * `upgrade watch` and `upgrade start --watch`: plain timestamped lines when stdout is
 * not a terminal, the live listr2 display in a real pseudo-terminal (tmux), and the
 * exit codes: 0 on Completed, 3 when the upgrade stops.
 */
let server: ServerProcess;
let cli: Cli;
const terminals: Tmux[] = [];

beforeAll(async () => {
  server = await startServerProcess();
  cli = new Cli(server);
});

afterAll(async () => {
  for (const t of terminals) t.stop();
  cli?.cleanup();
  await server?.stop();
  server?.cleanup();
});

/** A simulated cluster, made through the API (`cluster create` has its own tests). */
async function createCluster(name: string, nodes: number, upgradeSeconds: number, more: Record<string, unknown> = {}): Promise<void> {
  const res = await server.api('/api/v1/clusters', { body: { name, kind: 'simulated', simulation: { nodes, upgradeSeconds, ...more } } });
  expect(res.status).toBe(201);
}

async function startAgentUpgrade(cluster: string): Promise<string> {
  const res = await server.api(`/api/v1/clusters/${cluster}/upgrades`, { body: { component: 'agent' } });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

function terminal(): Tmux {
  const t = new Tmux();
  terminals.push(t);
  return t;
}

/** Escape, which starts the terminal's colour codes (SGR). */
const ESC = '\u001b';
const timestamped = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}/;

describe.concurrent('watching an upgrade', () => {
  describe('without a terminal: plain timestamped lines', () => {
    it('prints every event of the upgrade once, then the outcome, and exits 0 on Completed', async () => {
      await createCluster('plain', 10, 0.1);
      const result = await cli.run(['upgrade', 'start', 'plain', '--component', 'agent', '--watch']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toBe('');
      const lines = result.stdout.trimEnd().split('\n');
      expect(lines.every((l) => timestamped.test(l))).toBe(true);
      expect(lines[0]).toMatch(/ {2}watching upgrade upg_\w{16}: Agent → 1\.1\.0 on plain, 10 nodes, batches of at most 1; now /);
      expect(lines).toContainEqual(expect.stringMatching(/Z {2}upgrade\.started +Agent upgrade to 1\.1\.0 started on 10 nodes of plain/));
      expect(lines).toContainEqual(expect.stringMatching(/Z {2}batch\.started +batch 1 started: 1 node \(sim-001\)$/));
      expect(lines.filter((l) => l.includes(' node.succeeded ')).length).toBe(10);
      expect(lines.at(-2)).toMatch(/Z {2}upgrade\.completed +Agent 1\.1\.0 is on all 10 nodes$/);
      expect(lines.at(-1)).toMatch(/Z {2}Agent upgrade upg_\w{16} completed: 10 nodes now run Agent 1\.1\.0$/);
    });

    it('stops with exit 3 and the cause when a node fails, and again after resume ends with exit 0', async () => {
      await createCluster('flaky', 8, 0.1, { failNodes: ['sim-003'] });
      const first = await cli.run(['upgrade', 'start', 'flaky', '--component', 'agent', '--watch']);
      expect(first.code).toBe(3);
      expect(first.stdout).toMatch(/Z {2}node\.failed +sim-003: /);
      expect(first.stdout).toMatch(/Z {2}paused +sim-003: .*simulated failure.*; auto-cancel in 14d23h \(at \d{4}-[\d-]+T[\d:]+Z\)\n/);
      expect(first.stderr).toMatch(
        /^error: Agent upgrade upg_\w{16} is paused: sim-003: .*\(2 of 8 nodes upgraded, 1 failed\); resume with `upshift upgrade resume upg_\w{16}`, or cancel it; auto-cancel in 14d23h/,
      );

      const snapshot = await cli.run(['upgrade', 'watch', 'flaky', '-o', 'json']);
      expect(snapshot.code).toBe(3);
      const view = JSON.parse(snapshot.stdout);
      expect(view.state).toBe('Paused');
      expect(view.pauseReason).toMatchObject({ kind: 'error' });

      expect((await cli.run(['upgrade', 'resume', 'flaky'])).code).toBe(0);
      const second = await cli.run(['upgrade', 'watch', 'flaky']);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout.trimEnd().split('\n').at(-1)).toMatch(/completed: 8 nodes now run Agent 1\.1\.0$/);
    });

    it('stops with exit 3 when a snapshot fails, and says how to go on', async () => {
      await createCluster('snappy', 4, 0.1, { versions: { agent: '1.1.0' }, snapshotFailNodes: ['sim-002'] });
      const result = await cli.run(['upgrade', 'start', 'snappy', '--component', 'docker', '--snapshot', '--watch']);
      expect(result.code).toBe(3);
      expect(result.stdout).toMatch(/Z {2}snapshot\.failed +sim-002: snapshot failed: simulated snapshot failure on sim-002\n/);
      expect(result.stderr).toMatch(
        /^error: Docker-Engine upgrade (upg_\w{16}) is waiting: a snapshot failed \(sim-002: simulated snapshot failure on sim-002\); continue without it with `upshift upgrade continue \1`, or stop with `upshift upgrade quit \1`\n$/,
      );
      const quit = await cli.run(['upgrade', 'quit', 'snappy']);
      expect(quit.stdout).toMatch(/^upgrade upg_\w{16} is Canceled /);
    });
  });

  describe('in a terminal: the live display', () => {
    it('shows the snapshots, one line per batch with a spinner, the running nodes and the count, then ✔ lines and Completed', async () => {
      await createCluster('live', 20, 0.3, { versions: { agent: '1.1.0' } });
      const tty = terminal();
      tty.start(['upgrade', 'start', 'live', '--component', 'docker', '--snapshot', '--watch'], cli.env());
      const running = await tty.waitFor((s) => /› running sim-\d{3}/.test(s));
      expect(running).toMatch(/^✔ Snapshots {4}20\/20 taken$/m);
      expect(running).toMatch(/^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Batch \d+ +\d nodes? +sim-\d{3}/m);
      expect(running).toMatch(/batch \d+ of \d+ · \d+\/20 nodes · (ETA \d+\.\ds|ETA once a batch has ended)/);
      expect(running).toMatch(/^Upgrade upg_\w{16}: Docker-Engine → 28\.5\.2 on live, 20 nodes, batches of at most 2, snapshots first$/m);

      const done = await tty.waitFor((s) => s.includes('EXIT='));
      expect(done).toContain('EXIT=0');
      expect(done).toMatch(/^✔ Batch 1 {6}1 node {4}sim-001 {2}\(\d+\.\ds\)$/m);
      expect(done).toMatch(/^✔ Batch 2 {6}2 nodes {3}sim-002, sim-003 {2}\(\d+\.\ds\)$/m);
      expect(done).toMatch(/^✔ Batch 11 {5}1 node {4}sim-020 {2}\(\d+\.\ds\)$/m);
      expect(done.match(/^✔ Batch /gm)).toHaveLength(11);
      expect(done).toMatch(/^✔ Completed {4}20\/20 nodes run 28\.5\.2/m);
      expect(done).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]|› running/);
    });

    it('shows the pause reason and the time left before auto-cancel, and exits 3 (no colour with --no-color)', async () => {
      await createCluster('halt', 12, 0.5);
      const id = await startAgentUpgrade('halt');
      const tty = terminal();
      tty.start(['upgrade', 'watch', 'halt', '--no-color'], cli.env());
      await tty.waitFor((s) => s.includes('Batch 1'));
      expect((await server.api(`/api/v1/upgrades/${id}/pause`, { method: 'POST', body: {} })).status).toBe(200);
      const screen = await tty.waitFor((s) => s.includes('EXIT='));
      expect(screen).toContain('EXIT=3');
      expect(screen).toMatch(/^↓ Paused {7}paused by admin$/m);
      expect(screen).toMatch(/^ +auto-cancel in 14d23h \(at \d{4}-[\d-]+T[\d:]+Z\)$/m);
      expect(screen).toMatch(new RegExp(`^error: Agent upgrade ${id} is paused: paused by admin`, 'm'));
      const raw = spawnSync('tmux', ['-L', tty.socket, 'capture-pane', '-p', '-e', '-t', '0'], { encoding: 'utf8' }).stdout;
      expect(raw).not.toContain(`${ESC}[`);
    });

    it('keeps watching through a pause with --through-pause, then follows the resume to Completed', async () => {
      await createCluster('hold', 12, 0.5);
      const id = await startAgentUpgrade('hold');
      const tty = terminal();
      tty.start(['upgrade', 'watch', id, '--through-pause'], cli.env());
      await tty.waitFor((s) => s.includes('Batch 1'));
      expect((await server.api(`/api/v1/upgrades/${id}/pause`, { method: 'POST', body: {} })).status).toBe(200);
      const paused = await tty.waitFor((s) => s.includes(`resume with: upshift upgrade resume ${id}`));
      expect(paused).toMatch(/^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Paused {7}paused by admin$/m);
      expect(paused).toMatch(/^ +› auto-cancel in 14d23h \(at /m);
      expect(paused).not.toContain('EXIT=');
      const raw = spawnSync('tmux', ['-L', tty.socket, 'capture-pane', '-p', '-e', '-t', '0'], { encoding: 'utf8' }).stdout;
      expect(raw).toMatch(new RegExp(`${ESC}\\[[0-9;]*m`));

      expect((await server.api(`/api/v1/upgrades/${id}/resume`, { method: 'POST', body: {} })).status).toBe(200);
      const done = await tty.waitFor((s) => s.includes('EXIT='));
      expect(done).toContain('EXIT=0');
      // Never a success tick for a pause: how long it lasted and who resumed it.
      expect(done).toMatch(/^↓ Paused {7}paused by admin → resumed by admin, \d+\.\ds paused$/m);
      expect(done).not.toMatch(/^✔ Paused/m);
      expect(done).toMatch(/^✔ Completed {4}12\/12 nodes run 1\.1\.0/m);
    });
  });
});
