import { realpathSync } from 'node:fs';

/**
 * What this standalone agent process runs from, which a self-upgrade replaces:
 * - `executable`: the single executable `upshift-agent` that `/install/agent.sh` installs
 *   (a Node.js SEA: `process.execPath` is the agent itself, `process.argv[1]` is not a
 *   script but the name it was started by);
 * - `script`: `node agent.js` (dist/agent.js), the one-file JavaScript build, which needs a
 *   Node.js on the host.
 * The agent inside the `upshift` CLI (`upshift agent`) has no program of its own.
 */
export type AgentProgram = { form: 'executable'; file: string } | { form: 'script'; file: string };

/** `node:sea`'s answer; false where the module does not exist (a Node.js older than 20.12 running agent.js). */
export async function runningAsSea(): Promise<boolean> {
  try {
    const sea = await import('node:sea');
    return sea.isSea();
  } catch {
    return false;
  }
}

/** The program of this process, from how it was started. */
export function currentProgram(sea: boolean): AgentProgram | undefined {
  // A symlink to the executable is followed: the file itself is what gets replaced.
  if (sea) return { form: 'executable', file: realpathSync(process.execPath) };
  return process.argv[1] ? { form: 'script', file: realpathSync(process.argv[1]) } : undefined;
}

/** The command line that starts `program` again with this process's arguments (the self-upgrade's successor). */
export function successorArgv(program: AgentProgram): string[] {
  return program.form === 'executable'
    ? [program.file, ...process.argv.slice(2)]
    : [process.execPath, ...process.execArgv, program.file, ...process.argv.slice(2)];
}

/** What `upshift-agent --version --verbose` prints (one JSON line): the agent and the runtime inside it. */
export function versionReport(version: string, program: AgentProgram | undefined) {
  return {
    version,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    form: program?.form ?? 'cli',
    file: program?.file ?? null,
  };
}
