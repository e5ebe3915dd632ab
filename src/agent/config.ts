import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { agentDefaults } from '../domain/defaults.js';

/**
 * The agent's local configuration: how this host runs its runtime (install method, where
 * binaries live, how its services are stopped and started), the operator's hooks and the
 * snapshot provider. It is read once at start from `--config FILE` (YAML or JSON),
 * validated (unknown keys are refused, naming the key) and frozen.
 *
 * Everything that is ever executed on the host comes from here, never from the server:
 * the server names a recipe and passes versions, file names and checksums.
 */

/** How a component's service is stopped and started. */
export type ServiceControl =
  /** `systemctl stop|start UNIT` (the default for docker and containerd). */
  | { kind: 'systemd'; unit: string }
  /** The operator's own argv for each action (hosts without systemd, containers, test beds). */
  | { kind: 'command'; start: string[]; stop: string[] }
  /** Nothing to stop or start (gVisor's runsc is run per container by the engine). */
  | { kind: 'none' };

export type InstallMethodName = 'deb' | 'apt' | 'binary';
export const installMethodNames: readonly InstallMethodName[] = ['deb', 'apt', 'binary'];

/** The components a recipe installs (the agent itself upgrades through `agent-self-upgrade`). */
export type RuntimeComponent = 'docker' | 'containerd' | 'sandboxed-runtime';
export const runtimeComponents: readonly RuntimeComponent[] = ['docker', 'containerd', 'sandboxed-runtime'];

export interface ComponentConfig {
  /** Install methods this host accepts, in order of preference. */
  methods: InstallMethodName[];
  /** For `binary`: archives unpack into `<installRoot>/versions/<version>`, `<installRoot>/current` points at one. */
  installRoot: string | undefined;
  service: ServiceControl;
  /** Files backed up before the upgrade (the daemon configuration). */
  configFiles: string[];
  /**
   * sandboxed-runtime only: the runsc flags of the check that a sandbox boots on the
   * installed runsc (`runsc FLAGS --root DIR do /bin/true`); null when the operator turned
   * it off (`sandboxCheck: false`). Always null for the other components.
   */
  sandboxCheck: string[] | null;
}

export type SnapshotConfig =
  | { provider: 'none' }
  | { provider: 'btrfs'; paths: string[]; directory: string | undefined }
  | { provider: 'command'; create: string[]; restore: string[] | undefined };

export interface HookConfig {
  /** Run after the built-in preflight checks; a failure stops the upgrade before anything changed. */
  preflight: string[][];
  /** Run right before the service is stopped. */
  beforeStop: string[][];
  /** Run after the new version verified; a failure rolls back. */
  afterStart: string[][];
}

export interface AgentConfig {
  server: string | undefined;
  joinToken: string | undefined;
  name: string | undefined;
  /**
   * PEM file of the CA that signed the server's certificate: the only CA the agent then
   * trusts for the server (pinned), rather than adding it to the system's CAs.
   */
  caFile: string | undefined;
  dataDir: string;
  /** The Engine API socket. */
  dockerSocket: string;
  components: Record<RuntimeComponent, ComponentConfig>;
  hooks: HookConfig;
  snapshot: SnapshotConfig;
  timeouts: { stopSeconds: number; startSeconds: number; verifySeconds: number; selfUpgradeSeconds: number; hookSeconds: number };
  /** Preflight refuses an upgrade when less than this is free where files are written. */
  minFreeMegabytes: number;
  /** How many backups (`<dataDir>/backups/*`) are kept. */
  keepBackups: number;
  /**
   * Where the `apt` method installs from: `host`, the repositories the host already has;
   * `mirror`, the Upshift server's signed apt repository (apt-mirror.ts), which the agent
   * then configures itself (source, signing key, credential) before each apt install.
   */
  aptSource: 'host' | 'mirror';
}

export class AgentConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`agent config: ${key}: ${message}`);
    this.name = 'AgentConfigError';
  }
}

type Raw = Record<string, unknown>;

function isRecord(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(raw: Raw, where: string, keys: readonly string[]): void {
  for (const k of Object.keys(raw)) {
    if (!keys.includes(k)) throw new AgentConfigError(where ? `${where}.${k}` : k, `unknown key; known keys: ${keys.join(', ')}`);
  }
}

function str(raw: Raw, key: string, where: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw new AgentConfigError(`${where}${key}`, 'must be a non-empty string');
  return v;
}

function absPath(raw: Raw, key: string, where: string): string | undefined {
  const v = str(raw, key, where);
  if (v !== undefined && !path.isAbsolute(v)) throw new AgentConfigError(`${where}${key}`, 'must be an absolute path');
  return v;
}

function argv(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((a) => typeof a === 'string') || (v[0] as string) === '') {
    throw new AgentConfigError(where, 'must be a non-empty list of strings (a program and its arguments; no shell)');
  }
  return [...(v as string[])];
}

function argvList(v: unknown, where: string): string[][] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new AgentConfigError(where, 'must be a list of commands, each a list of strings');
  return v.map((c, i) => argv(c, `${where}[${i}]`));
}

function positive(raw: Raw, key: string, where: string, fallback: number): number {
  const v = raw[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new AgentConfigError(`${where}${key}`, 'must be a positive number');
  return v;
}

function parseService(v: unknown, where: string, fallback: ServiceControl): ServiceControl {
  if (v === undefined) return fallback;
  if (!isRecord(v)) throw new AgentConfigError(where, 'must be an object with kind: systemd | command | none');
  const kind = v['kind'];
  switch (kind) {
    case 'systemd':
      onlyKeys(v, where, ['kind', 'unit']);
      return { kind, unit: str(v, 'unit', `${where}.`) ?? (fallback.kind === 'systemd' ? fallback.unit : 'docker') };
    case 'command':
      onlyKeys(v, where, ['kind', 'start', 'stop']);
      return { kind, start: argv(v['start'], `${where}.start`), stop: argv(v['stop'], `${where}.stop`) };
    case 'none':
      onlyKeys(v, where, ['kind']);
      return { kind };
    default:
      throw new AgentConfigError(`${where}.kind`, 'must be systemd, command or none');
  }
}

const defaultServices: Record<RuntimeComponent, ServiceControl> = {
  docker: { kind: 'systemd', unit: 'docker' },
  containerd: { kind: 'systemd', unit: 'containerd' },
  'sandboxed-runtime': { kind: 'none' },
};

const defaultConfigFiles: Record<RuntimeComponent, string[]> = {
  docker: ['/etc/docker/daemon.json'],
  containerd: ['/etc/containerd/config.toml'],
  'sandboxed-runtime': [],
};

function parseComponent(raw: unknown, c: RuntimeComponent): ComponentConfig {
  const where = `components.${c}`;
  const r: Raw = raw === undefined ? {} : isRecord(raw) ? raw : {};
  if (raw !== undefined && !isRecord(raw)) throw new AgentConfigError(where, 'must be an object');
  onlyKeys(
    r,
    where,
    c === 'sandboxed-runtime'
      ? ['methods', 'installRoot', 'service', 'configFiles', 'sandboxCheck']
      : ['methods', 'installRoot', 'service', 'configFiles'],
  );
  const installRoot = absPath(r, 'installRoot', `${where}.`);
  let methods: InstallMethodName[];
  if (r['methods'] === undefined) methods = installRoot ? ['binary'] : ['deb', 'apt'];
  else {
    const m = r['methods'];
    if (!Array.isArray(m) || m.length === 0 || !m.every((x) => installMethodNames.includes(x as InstallMethodName))) {
      throw new AgentConfigError(`${where}.methods`, `must be a non-empty list of ${installMethodNames.join(', ')}`);
    }
    methods = [...(m as InstallMethodName[])];
  }
  if (methods.includes('binary') && !installRoot) throw new AgentConfigError(`${where}.installRoot`, 'is required for the binary method');
  let configFiles = defaultConfigFiles[c];
  if (r['configFiles'] !== undefined) {
    const f = r['configFiles'];
    if (!Array.isArray(f) || !f.every((x) => typeof x === 'string' && path.isAbsolute(x))) {
      throw new AgentConfigError(`${where}.configFiles`, 'must be a list of absolute paths');
    }
    configFiles = [...(f as string[])];
  }
  let sandboxCheck: string[] | null = null;
  if (c === 'sandboxed-runtime') {
    const v = r['sandboxCheck'];
    if (v === undefined || v === true) sandboxCheck = ['--network=none'];
    else if (v === false) sandboxCheck = null;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string' && /^--[a-z][a-z0-9-]*(=[^\s]*)?$/.test(x)))
      sandboxCheck = [...(v as string[])];
    else
      throw new AgentConfigError(
        `${where}.sandboxCheck`,
        'must be false (no check), true, or a list of runsc flags such as [--platform=ptrace, --network=none]',
      );
  }
  return {
    methods,
    installRoot,
    service: parseService(r['service'], `${where}.service`, defaultServices[c]),
    configFiles,
    sandboxCheck,
  };
}

function parseSnapshot(raw: unknown): SnapshotConfig {
  if (raw === undefined) return { provider: 'none' };
  if (!isRecord(raw)) throw new AgentConfigError('snapshot', 'must be an object with provider: btrfs | command | none');
  switch (raw['provider']) {
    case 'none':
      onlyKeys(raw, 'snapshot', ['provider']);
      return { provider: 'none' };
    case 'btrfs': {
      onlyKeys(raw, 'snapshot', ['provider', 'paths', 'directory']);
      const paths = raw['paths'];
      if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string' && path.isAbsolute(p))) {
        throw new AgentConfigError('snapshot.paths', 'must be a non-empty list of absolute paths of btrfs subvolumes');
      }
      return { provider: 'btrfs', paths: [...(paths as string[])], directory: absPath(raw, 'directory', 'snapshot.') };
    }
    case 'command': {
      onlyKeys(raw, 'snapshot', ['provider', 'create', 'restore']);
      return {
        provider: 'command',
        create: argv(raw['create'], 'snapshot.create'),
        restore: raw['restore'] === undefined ? undefined : argv(raw['restore'], 'snapshot.restore'),
      };
    }
    default:
      throw new AgentConfigError('snapshot.provider', 'must be btrfs, command or none');
  }
}

/** The command-line flags that override the file. */
export interface AgentConfigOverrides {
  server?: string;
  joinToken?: string;
  name?: string;
  dataDir?: string;
  caFile?: string;
}

/** Validates a parsed config document; `overrides` are the command-line flags, which win. */
export function parseAgentConfig(raw: unknown, overrides: AgentConfigOverrides = {}): AgentConfig {
  const r: Raw = raw === undefined || raw === null ? {} : isRecord(raw) ? raw : {};
  if (raw !== undefined && raw !== null && !isRecord(raw)) throw new AgentConfigError('(root)', 'must be a mapping of keys');
  onlyKeys(r, '', [
    'server',
    'joinToken',
    'name',
    'caFile',
    'dataDir',
    'dockerSocket',
    'components',
    'hooks',
    'snapshot',
    'timeouts',
    'minFreeMegabytes',
    'keepBackups',
    'aptSource',
  ]);
  const comps = r['components'];
  if (comps !== undefined && !isRecord(comps)) throw new AgentConfigError('components', 'must be an object');
  if (comps) onlyKeys(comps, 'components', runtimeComponents);
  const hooksRaw = r['hooks'];
  if (hooksRaw !== undefined && !isRecord(hooksRaw)) throw new AgentConfigError('hooks', 'must be an object');
  const hooks: Raw = hooksRaw ?? {};
  onlyKeys(hooks, 'hooks', ['preflight', 'beforeStop', 'afterStart']);
  const t = r['timeouts'];
  if (t !== undefined && !isRecord(t)) throw new AgentConfigError('timeouts', 'must be an object');
  const timeouts: Raw = t ?? {};
  onlyKeys(timeouts, 'timeouts', ['stopSeconds', 'startSeconds', 'verifySeconds', 'selfUpgradeSeconds', 'hookSeconds']);
  const server = overrides.server ?? str(r, 'server', '');
  if (server !== undefined && !/^https?:\/\/[^\s/]+/.test(server))
    throw new AgentConfigError('server', 'must be an http:// or https:// URL');
  const name = overrides.name ?? str(r, 'name', '');
  const caFile = overrides.caFile ?? absPath(r, 'caFile', '');
  if (caFile !== undefined && !path.isAbsolute(caFile)) throw new AgentConfigError('caFile', 'must be an absolute path');
  const dataDir = overrides.dataDir ?? absPath(r, 'dataDir', '') ?? agentDefaults.dataDir;
  const keepBackups = positive(r, 'keepBackups', '', 5);
  const aptSource = r['aptSource'] ?? 'host';
  if (aptSource !== 'host' && aptSource !== 'mirror')
    throw new AgentConfigError('aptSource', 'must be host (the host’s own apt repositories) or mirror (the Upshift server’s)');
  const config: AgentConfig = {
    server: server?.replace(/\/+$/, ''),
    joinToken: overrides.joinToken ?? str(r, 'joinToken', ''),
    name,
    caFile,
    dataDir: path.resolve(dataDir),
    dockerSocket: absPath(r, 'dockerSocket', '') ?? agentDefaults.dockerSocket,
    components: {
      docker: parseComponent(comps?.['docker'], 'docker'),
      containerd: parseComponent(comps?.['containerd'], 'containerd'),
      'sandboxed-runtime': parseComponent(comps?.['sandboxed-runtime'], 'sandboxed-runtime'),
    },
    hooks: {
      preflight: argvList(hooks['preflight'], 'hooks.preflight'),
      beforeStop: argvList(hooks['beforeStop'], 'hooks.beforeStop'),
      afterStart: argvList(hooks['afterStart'], 'hooks.afterStart'),
    },
    snapshot: parseSnapshot(r['snapshot']),
    timeouts: {
      stopSeconds: positive(timeouts, 'stopSeconds', 'timeouts.', 90),
      startSeconds: positive(timeouts, 'startSeconds', 'timeouts.', 90),
      verifySeconds: positive(timeouts, 'verifySeconds', 'timeouts.', 120),
      selfUpgradeSeconds: positive(timeouts, 'selfUpgradeSeconds', 'timeouts.', 90),
      hookSeconds: positive(timeouts, 'hookSeconds', 'timeouts.', 300),
    },
    minFreeMegabytes: positive(r, 'minFreeMegabytes', '', 1024),
    keepBackups: Math.floor(keepBackups),
    aptSource,
  };
  return deepFreeze(config);
}

/** Reads and validates `file` (YAML or JSON); no file means every default. */
export function loadAgentConfig(file: string | undefined, overrides: AgentConfigOverrides = {}): AgentConfig {
  if (file === undefined) return parseAgentConfig(undefined, overrides);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new AgentConfigError('(file)', `cannot read ${file}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new AgentConfigError('(file)', `${file} is not valid YAML or JSON: ${(e as Error).message}`);
  }
  return parseAgentConfig(doc, overrides);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
