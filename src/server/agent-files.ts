import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';

/** The agent as one JavaScript file (dist/agent.js), for hosts that run it with their own Node.js. */
export interface AgentScript {
  file: string;
  sha256: string;
}

/**
 * The agent as one executable (dist/agent/upshift-agent-linux-<arch>, a Node.js single
 * executable application): what /install/agent.sh installs and what self-upgrades fetch.
 */
export interface AgentExecutable {
  file: string;
  sha256: string;
  size: number;
  /** The agent version it reports (`upshift-agent --version`). */
  version: string;
  /** Node's name of the CPU it runs on: x64, arm64. */
  arch: string;
  /** The Node.js inside it, e.g. v24.22.3. */
  node: string;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** The agent script and its sha256, when it has been built. */
export function loadAgentScript(file: string): AgentScript | undefined {
  if (!existsSync(file)) return undefined;
  return { file, sha256: sha256(file) };
}

/**
 * The agent executable, described by the manifest the build writes beside it
 * (`<file>.json`: version, sha256, arch, Node.js), so that the server does not hash
 * ~120 MB at every start. A manifest that does not match the file's size, or none, makes
 * the server hash the file itself; the version is then unknown. Trusting the manifest's
 * checksum is safe: whoever downloads the file (the install script, a self-upgrade)
 * checks the bytes against it and refuses a mismatch.
 */
export function loadAgentExecutable(file: string): AgentExecutable | undefined {
  if (!existsSync(file)) return undefined;
  const size = statSync(file).size;
  const arch = /-linux-([a-z0-9]+)$/.exec(file)?.[1] ?? 'x64';
  let manifest: Record<string, unknown> | undefined;
  try {
    manifest = JSON.parse(readFileSync(`${file}.json`, 'utf8')) as Record<string, unknown>;
  } catch {
    manifest = undefined;
  }
  const text = (key: string) => (typeof manifest?.[key] === 'string' ? (manifest[key] as string) : undefined);
  const recorded = text('sha256');
  if (manifest && manifest['size'] === size && recorded && /^[0-9a-f]{64}$/.test(recorded)) {
    return {
      file,
      size,
      sha256: recorded,
      version: text('version') ?? 'unknown',
      arch: text('arch') ?? arch,
      node: text('node') ?? 'unknown',
    };
  }
  return { file, size, sha256: sha256(file), version: 'unknown', arch, node: 'unknown' };
}
