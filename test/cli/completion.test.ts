import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../support/server.js';
import { Cli, cliPath } from '../support/cli.js';

/**
 * `upshift completion bash|zsh`: the scripts are run by the real shells. Bash is asked
 * for completions the way readline asks (COMP_WORDS, COMP_CWORD, then the function);
 * names of clusters, upgrades and nodes come from the server through `upshift`.
 */
let server: ServerProcess;
let cli: Cli;
let binDir: string;
let bashScript: string;
let zshScript: string;

beforeAll(async () => {
  server = await startServerProcess();
  cli = new Cli(server);
  // `upshift` on PATH, as an installed CLI would be.
  binDir = mkdtempSync(join(tmpdir(), 'upshift-bin-'));
  writeFileSync(join(binDir, 'upshift'), `#!/bin/sh\nexec "${process.execPath}" "${cliPath}" "$@"\n`);
  chmodSync(join(binDir, 'upshift'), 0o755);
  const [created, bash, zsh] = await Promise.all([
    server.api('/api/v1/clusters', { body: { name: 'alpha', kind: 'simulated', simulation: { nodes: 12 } } }),
    cli.run(['completion', 'bash']),
    cli.run(['completion', 'zsh']),
  ]);
  expect(created.status).toBe(201);
  expect([bash.code, zsh.code]).toEqual([0, 0]);
  bashScript = join(binDir, 'upshift.bash');
  writeFileSync(bashScript, bash.stdout);
  zshScript = zsh.stdout;
});

afterAll(async () => {
  rmSync(binDir, { recursive: true, force: true });
  cli?.cleanup();
  await server?.stop();
  server?.cleanup();
});

/** What bash offers for each command line (the last word is the one being completed). */
async function complete(lines: string[][]): Promise<string[][]> {
  return Promise.all(
    lines.map(
      (words) =>
        new Promise<string[]>((resolve, reject) => {
          const call = `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _upshift; printf '%s\\n' "\${COMPREPLY[*]}"`;
          const child = spawn('bash', ['--norc', '--noprofile', '-c', `source '${bashScript}'\n${call}`], {
            env: { ...cli.env(), PATH: `${binDir}:${process.env['PATH'] ?? ''}` },
          });
          let out = '';
          let err = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.stderr.on('data', (d: Buffer) => (err += d.toString()));
          child.on('error', reject);
          child.on('close', () => (err ? reject(new Error(err)) : resolve(out.trim().split(' ').filter(Boolean))));
        }),
    ),
  );
}

describe('bash', () => {
  it('completes subcommands, options and option values from the command tree', async () => {
    const [top, upgrade, clusterOptions, kinds, outputs, components, shells] = await complete([
      ['upshift', ''],
      ['upshift', 'upgrade', ''],
      ['upshift', 'cluster', 'create', 'x', '--'],
      ['upshift', 'cluster', 'create', 'x', '--kind', ''],
      ['upshift', '-o', 'json', 'cluster', 'list', '-o', ''],
      ['upshift', 'upgrade', 'start', 'alpha', '--component', 'd'],
      ['upshift', 'completion', ''],
    ]);
    expect(top).toEqual(expect.arrayContaining(['cluster', 'node', 'upgrade', 'events', 'config', 'completion', 'server']));
    expect(top).not.toContain('__complete');
    expect(upgrade).toEqual(
      expect.arrayContaining(['plan', 'start', 'list', 'get', 'pause', 'resume', 'cancel', 'continue', 'quit', 'watch', 'nodes', 'log']),
    );
    expect(clusterOptions).toEqual(
      expect.arrayContaining([
        '--kind',
        '--nodes',
        '--managers',
        '--upgrade-seconds',
        '--fail-nodes',
        '--snapshot-fail-nodes',
        '--version',
        '--server',
        '--token',
        '--output',
      ]),
    );
    expect(kinds).toEqual(['swarm', 'hosts', 'kubernetes', 'simulated']);
    expect(outputs).toEqual(['table', 'wide', 'json', 'yaml', 'manifests']);
    expect(components).toEqual(['docker']);
    expect(shells).toEqual(['bash', 'zsh']);
  });

  it('completes cluster names, upgrade references and node names from the server', async () => {
    const started = await server.api('/api/v1/clusters/alpha/upgrades', { body: { component: 'agent' } });
    expect(started.status).toBe(201);
    const [clusters, upgrades, nodes, filter] = await complete([
      ['upshift', 'upgrade', 'plan', 'al'],
      ['upshift', 'upgrade', 'pause', ''],
      ['upshift', 'node', 'remove', 'alpha', 'sim-01'],
      ['upshift', 'events', '--cluster', ''],
    ]);
    expect(clusters).toEqual(['alpha']);
    expect(upgrades).toEqual([started.body.id, 'alpha']);
    expect(nodes).toEqual(['sim-010', 'sim-011', 'sim-012']);
    expect(filter).toEqual(['alpha']);
  });
});

describe('zsh', () => {
  const zsh = spawnSync('zsh', ['--version']).status === 0;

  it.skipIf(!zsh)('is a valid zsh completion function for upshift', async () => {
    expect(zshScript.startsWith('#compdef upshift\n')).toBe(true);
    const file = join(binDir, '_upshift');
    writeFileSync(file, zshScript);
    const check = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    // Loaded into a real zsh with compinit, it registers itself for `upshift`.
    const loaded = spawnSync(
      'zsh',
      ['-f', '-c', `autoload -U compinit; compinit -u -D; source '${file}'; print -r -- \${_comps[upshift]}`],
      { encoding: 'utf8' },
    );
    expect(loaded.stdout.trim()).toBe('_upshift');
  });

  it('describes subcommands and options for zsh’s menus', () => {
    expect(zshScript).toContain("'start:start an upgrade of one component of a cluster'");
    expect(zshScript).toContain("'--snapshot:snapshot every node before upgrading any'");
    expect(zshScript).toContain('compdef _upshift upshift');
  });
});
