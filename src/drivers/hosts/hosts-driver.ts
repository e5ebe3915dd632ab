import { invalid } from '../../domain/errors.js';
import { snapshotThroughAgent, upgradeThroughAgent } from '../agent-tasks.js';
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

  runNodeTask(_cluster: ClusterRecord, spec: NodeTaskSpec, ctx: TaskContext): Promise<NodeTaskOutcome> {
    return upgradeThroughAgent(this.agents, spec, ctx);
  }

  snapshotNode(_cluster: ClusterRecord, spec: SnapshotSpec, ctx: TaskContext): Promise<SnapshotOutcome> {
    return snapshotThroughAgent(this.agents, spec, ctx);
  }
}
