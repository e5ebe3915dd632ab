import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RecipeName } from '../../domain/agent-protocol.js';
import { RecipeName as Recipes } from '../../domain/agent-protocol.js';
import { releaseOf } from '../../domain/versions.js';
import type { ContainerInspect } from '../../platform/docker-api.js';
import { outputTail, runCommand } from '../../platform/run-command.js';
import type { AgentConfig, RuntimeComponent } from '../config.js';
import { findRunsc, localDocker, probeContainerd, probeDockerd, probeRunsc } from '../facts.js';
import { parseContainerdVersion, parseDockerdVersion, parseRunscVersion } from '../installed-versions.js';

/**
 * The declarative part of a runtime recipe: what is specific to one component (how its
 * version is read, how to tell that it answers or has stopped, which workloads must come
 * back). The procedure around it, the same for all components, is `RuntimeRecipe`'s.
 */
export interface RuntimeDefinition {
  recipe: RecipeName;
  component: RuntimeComponent;
  displayName: string;
  /** Executables a binary archive must hold, relative to its root. */
  requiredBinaries: readonly string[];
  /** The version the host runs now (undefined: not installed or not readable). */
  currentVersion(config: AgentConfig): Promise<string | undefined>;
  /** The version of an unpacked tree, read from its own binary. */
  stagedVersion(dir: string): Promise<string | undefined>;
  /** Resolves when the started service answers; throws after `timeoutMs`. */
  waitReady(config: AgentConfig, timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** Resolves when the stopped service no longer answers. */
  waitStopped(config: AgentConfig, timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** Records the workloads that must come back (docker: containers with a restart policy). */
  recordWorkloads(config: AgentConfig, backupDir: string, log: (l: string) => void): Promise<string[]>;
  /** Resolves when the recorded workloads run again; throws with those that do not. */
  verifyWorkloads(
    config: AgentConfig,
    ids: readonly string[],
    timeoutMs: number,
    signal: AbortSignal,
    log: (l: string) => void,
  ): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function versionOfBinary(file: string, parse: (out: string) => string | undefined): Promise<string | undefined> {
  const r = await runCommand([file, '--version'], { timeoutMs: 15_000 });
  return parse(`${r.stdout}\n${r.stderr}`);
}

const RESTART_POLICIES = new Set(['always', 'unless-stopped']);

export const dockerEngine: RuntimeDefinition = {
  recipe: Recipes.dockerEngine,
  component: 'docker',
  displayName: 'Docker Engine',
  requiredBinaries: ['bin/dockerd'],
  async currentVersion(config) {
    const docker = localDocker(config);
    if (await docker.ping()) {
      try {
        return releaseOf(await docker.version());
      } catch {
        // fall back to the binary
      }
    }
    return probeDockerd(config);
  },
  stagedVersion: (dir) => versionOfBinary(path.join(dir, 'bin', 'dockerd'), parseDockerdVersion),
  async waitReady(config, timeoutMs, signal) {
    const docker = localDocker(config);
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (!signal.aborted) {
      if (await docker.ping()) {
        try {
          await docker.version();
          return;
        } catch (e) {
          last = (e as Error).message;
        }
      }
      if (Date.now() > deadline) break;
      await sleep(250);
    }
    throw new Error(`the Engine API on ${config.dockerSocket} did not answer within ${Math.round(timeoutMs / 1000)} s (${last})`);
  },
  async waitStopped(config, timeoutMs, signal) {
    const docker = localDocker(config);
    const deadline = Date.now() + timeoutMs;
    while (!signal.aborted && Date.now() < deadline) {
      if (!(await docker.ping(1_000))) return;
      await sleep(250);
    }
    throw new Error(`the Engine API on ${config.dockerSocket} still answers ${Math.round(timeoutMs / 1000)} s after the stop`);
  },
  async recordWorkloads(config, backupDir, log) {
    const docker = localDocker(config);
    if (!(await docker.ping())) {
      log('the engine does not answer: no container metadata to back up');
      return [];
    }
    const list = await docker.containers();
    const inspected = [];
    for (const c of list) inspected.push(await docker.inspect(c.Id).catch((e: Error) => ({ Id: c.Id, error: e.message })));
    await writeFile(path.join(backupDir, 'containers.json'), JSON.stringify({ list, inspect: inspected }, null, 1), { mode: 0o600 });
    const restart = inspected.filter(
      (c): c is ContainerInspect =>
        'State' in c && c.State?.Running === true && RESTART_POLICIES.has(c.HostConfig?.RestartPolicy?.Name ?? ''),
    );
    log(
      `backed up the metadata of ${list.length} container(s); ${restart.length} running with restart policy always/unless-stopped must run again after the upgrade`,
    );
    return restart.map((c) => c.Id);
  },
  async verifyWorkloads(config, ids, timeoutMs, signal, log) {
    if (ids.length === 0) return;
    const docker = localDocker(config);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const notRunning: string[] = [];
      for (const id of ids) {
        const c = await docker.inspect(id).catch(() => undefined);
        if (c?.State?.Running !== true)
          notRunning.push(`${(c?.Name ?? id.slice(0, 12)).replace(/^\//, '')} (${c?.State?.Status ?? 'gone'})`);
      }
      if (notRunning.length === 0) {
        log(`all ${ids.length} container(s) with a restart policy run again`);
        return;
      }
      if (signal.aborted || Date.now() > deadline)
        throw new Error(`containers with a restart policy do not run again: ${notRunning.join(', ')}`);
      await sleep(500);
    }
  },
};

const noWorkloads = {
  recordWorkloads: async () => [] as string[],
  verifyWorkloads: async () => undefined,
  waitStopped: async () => undefined,
};

export const containerd: RuntimeDefinition = {
  recipe: Recipes.containerd,
  component: 'containerd',
  displayName: 'containerd',
  requiredBinaries: ['bin/containerd'],
  currentVersion: (config) => probeContainerd(config),
  stagedVersion: (dir) => versionOfBinary(path.join(dir, 'bin', 'containerd'), parseContainerdVersion),
  async waitReady(config, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await probeContainerd(config)) !== undefined) return;
      await sleep(500);
    }
    throw new Error('containerd --version did not answer after the start');
  },
  ...noWorkloads,
};

/**
 * Proves that a sandbox boots on the runsc the host now uses: `runsc FLAGS --root DIR do
 * /bin/true` (a throwaway sandbox over the host's root file system, no container engine
 * involved; ~0.3 s). A runsc that reports the right version but cannot start a sandbox
 * (a platform the kernel refuses, a broken static binary) fails the verify step and rolls
 * back. The check's state directory is under the agent's data dir and removed after.
 */
async function bootSandbox(config: AgentConfig, timeoutMs: number, signal: AbortSignal, log: (l: string) => void): Promise<void> {
  const flags = config.components['sandboxed-runtime'].sandboxCheck;
  if (flags === null) {
    log('no sandbox check (components.sandboxed-runtime.sandboxCheck: false)');
    return;
  }
  const runsc = (await findRunsc(config))?.bin;
  if (runsc === undefined) throw new Error('no runsc answers --version: cannot check that a sandbox boots');
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const root = await mkdtemp(path.join(config.dataDir, 'runsc-check-'));
  try {
    const argv = [runsc, ...flags, '--root', root, 'do', '/bin/true'];
    const r = await runCommand(argv, { timeoutMs: Math.min(timeoutMs, 60_000), signal });
    if (r.code !== 0 || r.timedOut) throw new Error(`a gVisor sandbox did not boot: ${outputTail(r)}`);
    log(`a gVisor sandbox boots on ${runsc} (${flags.join(' ')} do /bin/true)`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export const gvisorRunsc: RuntimeDefinition = {
  recipe: Recipes.gvisorRunsc,
  component: 'sandboxed-runtime',
  displayName: 'gVisor runsc',
  requiredBinaries: ['bin/runsc'],
  currentVersion: (config) => probeRunsc(config),
  stagedVersion: (dir) => versionOfBinary(path.join(dir, 'bin', 'runsc'), parseRunscVersion),
  waitReady: async () => undefined,
  ...noWorkloads,
  verifyWorkloads: (config, _ids, timeoutMs, signal, log) => bootSandbox(config, timeoutMs, signal, log),
};
