import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AgentFacts } from '../domain/agent-protocol.js';
import { DISTRIBUTION_PATTERN } from '../domain/catalog.js';
import type { ComponentVersions } from '../domain/components.js';
import { DockerApi, DockerApiError, DockerUnreachableError } from '../platform/docker-api.js';
import { runCommand } from '../platform/run-command.js';
import type { AgentConfig } from './config.js';
import { normaliseDockerVersion, parseContainerdVersion, parseDockerdVersion, parseRunscVersion } from './installed-versions.js';

/** Debian's architecture names, which the catalog uses. */
export function debianArch(nodeArch: string = process.arch): string {
  switch (nodeArch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return 'i386';
    case 'arm':
      return 'armhf';
    case 'ppc64':
      return 'ppc64el';
    default:
      return nodeArch;
  }
}

/** The fields of an os-release file (KEY=value, the value optionally quoted). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m?.[1]) continue;
    let value = m[2] ?? '';
    const q = value.charAt(0);
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) value = value.slice(1, -1);
    out[m[1]] = value.replace(/\\(["'$`\\])/g, '$1');
  }
  return out;
}

/**
 * The distribution as the catalog names it: os-release's ID and VERSION_ID joined by `-`
 * (`debian-13`, `ubuntu-24.04`). Without VERSION_ID (Debian sid/testing, Arch and other
 * rolling releases) it is the ID alone (`debian`): such a host matches only catalog
 * versions that name the bare ID or name no distribution, since a rolling release has no
 * version whose packages a catalog could pin. Undefined without an ID or with characters
 * os-release does not allow: the node then reports none and restricts nothing.
 */
export function distributionOf(fields: Record<string, string>): string | undefined {
  const id = fields['ID']?.toLowerCase();
  if (!id) return undefined;
  const versionId = fields['VERSION_ID']?.toLowerCase();
  const distribution = versionId ? `${id}-${versionId}` : id;
  return DISTRIBUTION_PATTERN.test(distribution) ? distribution : undefined;
}

async function osRelease(): Promise<{ name: string; distribution: string | undefined }> {
  let fields: Record<string, string> = {};
  try {
    fields = parseOsRelease(await readFile('/etc/os-release', 'utf8'));
  } catch {
    // not every system has it
  }
  return { name: fields['PRETTY_NAME'] || `${os.type()} ${os.release()}`, distribution: distributionOf(fields) };
}

/** The host's Docker Engine API, on the socket the agent's config names. */
export function localDocker(config: AgentConfig): DockerApi {
  return DockerApi.socket(config.dockerSocket, { timeoutMs: 10_000 });
}

/** Where a component's binary is on this host: under a binary install's `current` first, then PATH. */
export function binaryCandidates(config: AgentConfig, name: string, own: 'docker' | 'containerd' | 'sandboxed-runtime'): string[] {
  const out: string[] = [];
  const roots = [config.components[own].installRoot, own !== 'docker' ? config.components.docker.installRoot : undefined];
  for (const root of roots) if (root) out.push(path.join(root, 'current', 'bin', name));
  out.push(name);
  return out;
}

/** The first candidate whose output of `args` parses: the binary the host really uses, and its version. */
async function probe(
  candidates: string[],
  args: string[],
  parse: (out: string) => string | undefined,
): Promise<{ bin: string; version: string } | undefined> {
  for (const bin of candidates) {
    const r = await runCommand([bin, ...args], { timeoutMs: 15_000 });
    if (r.code === 127) continue;
    const version = parse(`${r.stdout}\n${r.stderr}`);
    if (version !== undefined) return { bin, version };
  }
  return undefined;
}

export async function probeContainerd(config: AgentConfig): Promise<string | undefined> {
  return (await probe(binaryCandidates(config, 'containerd', 'containerd'), ['--version'], parseContainerdVersion))?.version;
}

/** The runsc this host uses (under a binary install's `current`, else on PATH) and its version. */
export function findRunsc(config: AgentConfig): Promise<{ bin: string; version: string } | undefined> {
  return probe(binaryCandidates(config, 'runsc', 'sandboxed-runtime'), ['--version'], parseRunscVersion);
}

export async function probeRunsc(config: AgentConfig): Promise<string | undefined> {
  return (await findRunsc(config))?.version;
}

/** The installed dockerd's version when the engine does not answer (it is stopped). */
export async function probeDockerd(config: AgentConfig): Promise<string | undefined> {
  return (await probe(binaryCandidates(config, 'dockerd', 'docker'), ['--version'], parseDockerdVersion))?.version;
}

/** What the agent reports on join and with every heartbeat, and how it learns the host changed. */
export interface FactSource {
  collect(): Promise<AgentFacts>;
  /** Called after a task changed the host: cached probes are stale. */
  invalidate(): void;
}

/**
 * Collects what the agent reports on join and with every heartbeat. The engine's version
 * comes from its API (what really runs); containerd and runsc from their binaries. Binary
 * probes are cached for `cacheMs`, so a heartbeat does not start processes every time.
 */
export class FactCollector implements FactSource {
  private cached: { at: number; containerd: string | undefined; runsc: string | undefined } | undefined;
  private readonly docker: DockerApi;

  constructor(
    private readonly config: AgentConfig,
    private readonly agentVersion: string,
    private readonly cacheMs = 30_000,
  ) {
    this.docker = localDocker(config);
  }

  invalidate(): void {
    this.cached = undefined;
  }

  async collect(): Promise<AgentFacts> {
    const versions: ComponentVersions = { agent: this.agentVersion };
    let engineReachable = false;
    let engineError: string | undefined;
    try {
      const v = normaliseDockerVersion(await this.docker.version());
      if (v) versions.docker = v;
      engineReachable = true;
    } catch (e) {
      // The client's own errors name the socket already.
      const named = e instanceof DockerApiError || e instanceof DockerUnreachableError;
      engineError = named ? (e as Error).message : `${this.config.dockerSocket}: ${(e as Error).message}`;
    }
    if (!this.cached || Date.now() - this.cached.at > this.cacheMs) {
      this.cached = { at: Date.now(), containerd: await probeContainerd(this.config), runsc: await probeRunsc(this.config) };
    }
    if (this.cached.containerd) versions.containerd = this.cached.containerd;
    if (this.cached.runsc) versions['sandboxed-runtime'] = this.cached.runsc;
    const release = await osRelease();
    return {
      hostname: os.hostname(),
      os: release.name,
      ...(release.distribution ? { distribution: release.distribution } : {}),
      arch: debianArch(),
      agentVersion: this.agentVersion,
      versions,
      engineReachable,
      ...(engineError ? { engineError } : {}),
    };
  }
}
