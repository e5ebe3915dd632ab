import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Option, type Command } from 'commander';
import { clientCommand, runAction } from '../command.js';
import { CliError, ExitCode } from '../errors.js';

interface Artifact {
  file: string;
  component: string;
  version: string;
  method: string;
  sha256: string;
  size: number;
  createdAt?: string;
}

/** The artifact mirror: files the server serves to agents (`upshift artifact add FILE …`). */
export function registerArtifactCommands(program: Command): void {
  const artifact = program.command('artifact').description('add, list and remove files of the server’s artifact mirror');

  const add = clientCommand(artifact, 'add <file>', 'upload a package (.deb) or binary archive (.tar.gz) for a catalog version')
    .addOption(new Option('--component <component>', 'docker, containerd or sandboxed-runtime').makeOptionMandatory())
    .addOption(new Option('--version <version>', 'the catalog version it installs, such as 26.1.5').makeOptionMandatory())
    .addOption(new Option('--method <method>', 'deb or binary (default: from the file name)').choices(['deb', 'binary']));
  runAction<{ component: string; version: string; method?: string }>(add, async ({ cli, args, opts }) => {
    const path = args[0] as string;
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw new CliError(ExitCode.usage, `cannot read ${path}: ${(error as Error).message}`);
    }
    const name = basename(path);
    const sha256 = (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex');
    const stored = await cli.client.put<Artifact>(
      `/artifacts/${encodeURIComponent(opts.component)}/${encodeURIComponent(opts.version)}/${encodeURIComponent(name)}`,
      bytes,
      { sha256, ...(opts.method ? { method: opts.method } : {}) },
    );
    if (cli.out.structured) return cli.out.data(stored);
    cli.out.line(
      `artifact ${stored.file} added: ${stored.component} ${stored.version} (${stored.method}, ${stored.size} bytes, sha256 ${stored.sha256})`,
    );
  });

  runAction(clientCommand(artifact, 'list', 'list the mirror').alias('ls'), async ({ cli }) => {
    const list = await cli.client.get<{ items: Artifact[] }>('/artifacts');
    if (cli.out.structured) return cli.out.data(list);
    if (list.items.length === 0) {
      process.stderr.write('The mirror is empty. Add a file with `upshift artifact add FILE --component docker --version 26.1.5`.\n');
      return;
    }
    cli.out.table(
      [
        { header: 'FILE', value: (a: Artifact) => a.file },
        { header: 'COMPONENT', value: (a: Artifact) => a.component },
        { header: 'VERSION', value: (a: Artifact) => a.version },
        { header: 'METHOD', value: (a: Artifact) => a.method },
        { header: 'SIZE', value: (a: Artifact) => String(a.size) },
        { header: 'SHA256', value: (a: Artifact) => a.sha256, wide: true },
      ],
      list.items,
    );
  });

  runAction(clientCommand(artifact, 'remove <file>', 'remove a file from the mirror').alias('rm'), async ({ cli, args }) => {
    await cli.client.delete(`/artifacts/${encodeURIComponent(args[0] as string)}`);
    if (!cli.out.structured) cli.out.line(`artifact ${args[0]} removed`);
  });
}
