import { recipeFor } from '../domain/agent-protocol.js';
import { type Component, type ComponentVersions, componentDisplayName } from '../domain/components.js';
import { sameRelease } from '../domain/versions.js';
import type { AgentPort, NodeTaskOutcome, NodeTaskSpec, SnapshotOutcome, SnapshotSpec, TaskContext } from '../domain/ports.js';

/**
 * What the kinds with agents (hosts, swarm) share: a node task becomes the component's
 * recipe on the node's agent, under the same idempotent task key, and the agent's result
 * becomes the node task's outcome (the failing step first, and whether it rolled back).
 */
export async function upgradeThroughAgent(agents: AgentPort, spec: NodeTaskSpec, ctx: TaskContext): Promise<NodeTaskOutcome> {
  const name = componentDisplayName[spec.component];
  const artifacts = await agents.artifactsFor(spec.component, spec.toVersion, spec.catalog);
  if (artifacts.length === 0) {
    return {
      result: 'failed',
      error: `no artifact for ${name} ${spec.toVersion}: add one to the mirror (upshift artifact add FILE --component ${spec.component} --version ${spec.toVersion}) or list one in the catalog`,
    };
  }
  ctx.log(`queued ${recipeFor(spec.component)} for the agent on ${spec.node.name} (${artifacts.map((a) => a.method).join(', ')})`);
  // The agent writes to the same log from the moment it has the task: what was logged before comes first.
  await ctx.logged();
  const result = await agents.runAgentTask(
    {
      taskKey: spec.taskKey,
      nodeId: spec.node.id,
      upgradeId: spec.upgradeId,
      nodeTaskId: spec.nodeTaskId,
      recipe: recipeFor(spec.component),
      params: { component: spec.component, fromVersion: spec.fromVersion, toVersion: spec.toVersion, artifacts },
    },
    ctx.signal,
  );
  if (result.result === 'succeeded') {
    const mismatch = versionMismatch(spec.component, spec.toVersion, result.versions);
    if (mismatch) {
      ctx.log(mismatch);
      return { result: 'failed', error: mismatch, ...(result.versions ? { versions: result.versions } : {}) };
    }
    return { result: 'succeeded', ...(result.versions ? { versions: result.versions } : {}) };
  }
  const rolledBack = result.rolledBack ? `; rolled back to ${spec.fromVersion ?? 'the previous version'}` : '';
  return {
    result: 'failed',
    error: `${result.step ? `${result.step}: ` : ''}${result.error ?? 'the agent reported a failure'}${rolledBack}`,
    ...(result.versions ? { versions: result.versions } : {}),
  };
}

/**
 * Why an agent's success cannot be believed, if it cannot: every recipe reports what
 * the node runs afterwards (the Engine API's version for docker, the binaries' for
 * containerd and runsc, its own for the agent), and that must be the task's target
 * release (`26.1.5+dfsg1` is `26.1.5`). A success without it, or with another version,
 * fails the task: the node's versions would otherwise say what the agent claimed.
 */
export function versionMismatch(component: Component, toVersion: string, versions: ComponentVersions | undefined): string | undefined {
  const reported = versions?.[component];
  if (reported === undefined) {
    return `the agent reported success, but not which ${component} version the node runs (the target is ${toVersion})`;
  }
  if (!sameRelease(reported, toVersion)) {
    return `the agent reported success, but the node runs ${component} ${reported}, not the target ${toVersion}`;
  }
  return undefined;
}

/** A snapshot taken by the node's agent with its configured provider. */
export async function snapshotThroughAgent(agents: AgentPort, spec: SnapshotSpec, ctx: TaskContext): Promise<SnapshotOutcome> {
  const result = await agents.runAgentTask(
    {
      taskKey: `snapshot.${spec.snapshotId}`,
      nodeId: spec.node.id,
      upgradeId: spec.upgradeId,
      nodeTaskId: null,
      recipe: 'snapshot',
      params: { label: `upshift-${spec.upgradeId}` },
    },
    ctx.signal,
  );
  return result.result === 'succeeded'
    ? { result: 'succeeded', ...(result.ref ? { ref: result.ref } : {}) }
    : { result: 'failed', error: result.error ?? 'the agent reported a failure' };
}
