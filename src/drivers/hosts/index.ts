import { recipeFor } from '../../domain/agent-protocol.js';
import { componentDisplayName } from '../../domain/components.js';
import { invalid } from '../../domain/errors.js';
import type { ClusterRecord } from '../../domain/model.js';
import type {
  AgentPort,
  ClusterDriver,
  InventoryNode,
  NodeTaskOutcome,
  NodeTaskSpec,
  SnapshotOutcome,
  SnapshotSpec,
  TaskContext,
} from '../../domain/ports.js';

/**
 * Plain Docker hosts, each running the Upshift agent. Nodes are the agents that joined
 * with the cluster's join token; their versions come from the agents' heartbeats, so
 * the store is the inventory. A node task becomes an agent task under the same
 * idempotent key: the agent runs the component's recipe and reports the result.
 */
export class HostsDriver implements ClusterDriver {
  readonly kind = 'hosts' as const;
  readonly manualMembership = false;

  constructor(private readonly agents: AgentPort) {}

  validateConfig(raw: Record<string, unknown>): Record<string, unknown> {
    for (const key of Object.keys(raw)) {
      throw invalid(`unknown field ${JSON.stringify(key)} for a hosts cluster; nodes join with the cluster's join token`);
    }
    return {};
  }

  initialNodes(): InventoryNode[] {
    return [];
  }

  newNodeVersions(): Record<string, never> {
    return {};
  }

  async inventory(): Promise<undefined> {
    return undefined;
  }

  async runNodeTask(_cluster: ClusterRecord, spec: NodeTaskSpec, ctx: TaskContext): Promise<NodeTaskOutcome> {
    const name = componentDisplayName[spec.component];
    const artifacts = await this.agents.artifactsFor(spec.component, spec.toVersion, spec.catalog);
    if (artifacts.length === 0) {
      return {
        result: 'failed',
        error: `no artifact for ${name} ${spec.toVersion}: add one to the mirror (upshift artifact add FILE --component ${spec.component} --version ${spec.toVersion}) or list one in the catalog`,
      };
    }
    ctx.log(`queued ${recipeFor(spec.component)} for the agent on ${spec.node.name} (${artifacts.map((a) => a.method).join(', ')})`);
    const result = await this.agents.runAgentTask(
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
      return { result: 'succeeded', ...(result.versions ? { versions: result.versions } : {}) };
    }
    const rolledBack = result.rolledBack ? `; rolled back to ${spec.fromVersion ?? 'the previous version'}` : '';
    return {
      result: 'failed',
      error: `${result.step ? `${result.step}: ` : ''}${result.error ?? 'the agent reported a failure'}${rolledBack}`,
    };
  }

  async snapshotNode(_cluster: ClusterRecord, spec: SnapshotSpec, ctx: TaskContext): Promise<SnapshotOutcome> {
    const result = await this.agents.runAgentTask(
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
}
