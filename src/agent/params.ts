import type { AgentTask, RecipeName, SnapshotTaskParams, TaskArtifact, UpgradeTaskParams } from '../domain/agent-protocol.js';
import { RecipeName as Recipes } from '../domain/agent-protocol.js';
import type { Component } from '../domain/components.js';
import { isComponent } from '../domain/components.js';
import { isValidVersion } from '../domain/versions.js';

/**
 * Task parameters come over the network: before a recipe touches anything, every field is
 * checked against what the recipe can safely use as a file name, a package name, a version
 * or a checksum. Nothing of it is ever interpreted by a shell.
 */
export class TaskParamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskParamsError';
  }
}

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}$/;
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]{1,100}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/;
const TASK_KEY = /^[A-Za-z0-9_.:-]{1,200}$/;

export function isSafeFileName(name: string): boolean {
  return FILE_NAME.test(name) && !name.includes('..');
}

export function isValidTaskKey(key: string): boolean {
  return TASK_KEY.test(key);
}

/** A task key as a directory name (`:` is not welcome everywhere). */
export function taskKeyFileName(key: string): string {
  return key.replace(/[^A-Za-z0-9_.-]/g, '_');
}

const componentOfRecipe: Partial<Record<RecipeName, Component>> = {
  [Recipes.dockerEngine]: 'docker',
  [Recipes.containerd]: 'containerd',
  [Recipes.gvisorRunsc]: 'sandboxed-runtime',
  [Recipes.agentSelfUpgrade]: 'agent',
};

const knownRecipes: readonly string[] = Object.values(Recipes);

export function isRecipeName(value: unknown): value is RecipeName {
  return typeof value === 'string' && knownRecipes.includes(value);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validateArtifact(raw: unknown, i: number): TaskArtifact {
  const where = `artifacts[${i}]`;
  if (!isRecord(raw)) throw new TaskParamsError(`${where} must be an object`);
  const method = raw['method'];
  if (method !== 'deb' && method !== 'apt' && method !== 'binary' && method !== 'agent-bundle') {
    throw new TaskParamsError(`${where}.method must be deb, apt, binary or agent-bundle`);
  }
  const out: TaskArtifact = { method };
  const { file, sha256, package: pkg, packageVersion } = raw;
  if (file !== undefined) {
    if (typeof file !== 'string' || !isSafeFileName(file)) throw new TaskParamsError(`${where}.file is not a plain file name`);
    out.file = file;
  }
  if (sha256 !== undefined) {
    if (typeof sha256 !== 'string' || !SHA256.test(sha256))
      throw new TaskParamsError(`${where}.sha256 must be 64 lower-case hex characters`);
    out.sha256 = sha256;
  }
  if (pkg !== undefined) {
    if (typeof pkg !== 'string' || !PACKAGE_NAME.test(pkg)) throw new TaskParamsError(`${where}.package is not a Debian package name`);
    out.package = pkg;
  }
  if (packageVersion !== undefined) {
    if (typeof packageVersion !== 'string' || !isValidVersion(packageVersion))
      throw new TaskParamsError(`${where}.packageVersion is not a valid version`);
    out.packageVersion = packageVersion;
  }
  switch (method) {
    case 'deb':
    case 'binary':
      if (!out.file || !out.sha256) throw new TaskParamsError(`${where}: a ${method} artifact needs file and sha256`);
      break;
    case 'apt':
      if (!out.package || !out.packageVersion)
        throw new TaskParamsError(`${where}: an apt artifact needs package and packageVersion (versions are pinned)`);
      break;
    case 'agent-bundle':
      if (!out.sha256) throw new TaskParamsError(`${where}: the agent bundle needs its sha256`);
      break;
    default: {
      const never: never = method;
      return never;
    }
  }
  return out;
}

/** Checks the parameters of an upgrade recipe; `recipe` fixes the component it must name. */
export function validateUpgradeParams(recipe: RecipeName, raw: unknown): UpgradeTaskParams {
  if (!isRecord(raw)) throw new TaskParamsError('params must be an object');
  const expected = componentOfRecipe[recipe];
  if (expected === undefined) throw new TaskParamsError(`recipe ${recipe} takes no upgrade parameters`);
  const component = raw['component'];
  if (typeof component !== 'string' || !isComponent(component)) throw new TaskParamsError('params.component is not a known component');
  if (component !== expected) throw new TaskParamsError(`recipe ${recipe} upgrades ${expected}, not ${component}`);
  const toVersion = raw['toVersion'];
  if (typeof toVersion !== 'string' || !isValidVersion(toVersion)) throw new TaskParamsError('params.toVersion is not a valid version');
  const fromVersion = raw['fromVersion'] ?? null;
  if (fromVersion !== null && (typeof fromVersion !== 'string' || !isValidVersion(fromVersion))) {
    throw new TaskParamsError('params.fromVersion is not a valid version');
  }
  const artifacts = raw['artifacts'];
  if (!Array.isArray(artifacts) || artifacts.length > 50)
    throw new TaskParamsError('params.artifacts must be a list of at most 50 artifacts');
  return { component, fromVersion, toVersion, artifacts: artifacts.map(validateArtifact) };
}

export function validateSnapshotParams(raw: unknown): SnapshotTaskParams {
  if (!isRecord(raw)) throw new TaskParamsError('params must be an object');
  const label = raw['label'];
  if (typeof label !== 'string' || !LABEL.test(label))
    throw new TaskParamsError('params.label must be letters, digits, ".", "_" or "-" (at most 101)');
  return { label };
}

/** Checks the envelope of a delivered task (its key and recipe name). */
export function validateTaskEnvelope(raw: unknown): AgentTask {
  if (!isRecord(raw)) throw new TaskParamsError('a task must be an object');
  const { taskKey, recipe, params, createdAt } = raw;
  if (typeof taskKey !== 'string' || !isValidTaskKey(taskKey)) throw new TaskParamsError('task key is missing or malformed');
  if (!isRecipeName(recipe))
    throw new TaskParamsError(`unknown recipe ${JSON.stringify(recipe)}: this agent ships ${knownRecipes.join(', ')}`);
  return { taskKey, recipe, params: params as AgentTask['params'], createdAt: typeof createdAt === 'string' ? createdAt : '' };
}
