/** The things Upshift can upgrade on a node. */
export const Component = {
  agent: 'agent',
  docker: 'docker',
  containerd: 'containerd',
  sandboxedRuntime: 'sandboxed-runtime',
} as const;
export type Component = (typeof Component)[keyof typeof Component];

export const components: readonly Component[] = Object.values(Component);

/** The container runtime's components: what an upgrade of a runtime (not of the agent) names. */
export const runtimeComponents: readonly Component[] = components.filter((c) => c !== Component.agent);

export function isComponent(value: string): value is Component {
  return (components as readonly string[]).includes(value);
}

/** Names shown to people, as the seeds' consoles show them ("Docker-Engine is upgrading"). */
export const componentDisplayName: Record<Component, string> = {
  agent: 'Agent',
  docker: 'Docker-Engine',
  containerd: 'containerd',
  'sandboxed-runtime': 'Sandboxed-Container',
};

/** The cluster kinds. */
export const ClusterKind = {
  swarm: 'swarm',
  hosts: 'hosts',
  kubernetes: 'kubernetes',
  simulated: 'simulated',
} as const;
export type ClusterKind = (typeof ClusterKind)[keyof typeof ClusterKind];

export const clusterKinds: readonly ClusterKind[] = Object.values(ClusterKind);

export function isClusterKind(value: string): value is ClusterKind {
  return (clusterKinds as readonly string[]).includes(value);
}

/**
 * Kinds whose nodes run the Upshift agent. On these, runtime upgrades are gated on every
 * agent being current (the seed: "upgrade the Agent first").
 */
export function kindHasAgents(kind: ClusterKind): boolean {
  switch (kind) {
    case 'swarm':
    case 'hosts':
    case 'simulated':
      return true;
    case 'kubernetes':
      return false;
    default: {
      const never: never = kind;
      return never;
    }
  }
}

/** Node roles. Swarm managers go first and one per batch; every other kind has workers. */
export const NodeRole = { manager: 'manager', worker: 'worker' } as const;
export type NodeRole = (typeof NodeRole)[keyof typeof NodeRole];
export const nodeRoles: readonly NodeRole[] = Object.values(NodeRole);

/** What a node reports about itself: `Ready`, `Down` (unreachable), `Draining`, … */
export const NodeStatus = {
  ready: 'Ready',
  down: 'Down',
  unknown: 'Unknown',
} as const;
export type NodeStatus = string;

/** Per-component versions a node runs; a missing key means the component is not installed. */
export type ComponentVersions = Partial<Record<Component, string>>;
