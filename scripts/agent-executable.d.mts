/** Types of scripts/agent-executable.mjs, for the tests that build an agent executable. */
export interface AgentExecutableManifest {
  name: string;
  version: string;
  platform: string;
  arch: string;
  node: string;
  sha256: string;
  size: number;
  bundleSha256: string;
  runtimeSize: number;
}

export function runtimeBinary(arch?: string): string;

export function buildAgentExecutable(options: {
  outfile: string;
  version?: string;
  arch?: string;
  workDir?: string;
}): Promise<{ manifest: AgentExecutableManifest; rebuilt: boolean }>;
