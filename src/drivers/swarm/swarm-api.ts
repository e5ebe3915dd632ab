/** The parts of the Engine API's swarm objects the driver reads (API v1.41). */
export interface SwarmNodeSpec {
  Name?: string;
  Labels?: Record<string, string>;
  Role: 'manager' | 'worker';
  Availability: 'active' | 'pause' | 'drain';
}

export interface SwarmNode {
  ID: string;
  Version: { Index: number };
  Spec: SwarmNodeSpec;
  Description?: { Hostname?: string; Engine?: { EngineVersion?: string } };
  Status: { State: 'unknown' | 'down' | 'ready' | 'disconnected'; Message?: string; Addr?: string };
  ManagerStatus?: { Leader?: boolean; Reachability: 'unknown' | 'unreachable' | 'reachable'; Addr?: string };
}

export interface SwarmTask {
  ID: string;
  ServiceID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string };
}

export interface SwarmService {
  ID: string;
  Spec: {
    Name: string;
    Mode?: { Replicated?: { Replicas?: number }; Global?: object; ReplicatedJob?: object; GlobalJob?: object };
  };
}

/** Task states in which a task holds, or is about to hold, resources on its node. */
export const ACTIVE_TASK_STATES = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

/** Labels the driver puts on a node it drained, so that a restarted server restores the right availability. */
export const Label = {
  task: 'io.upshift.task',
  previousAvailability: 'io.upshift.previous-availability',
} as const;

/** The node's name as Upshift shows it: the hostname the agent also joins with. */
export function nodeName(node: SwarmNode): string {
  return node.Description?.Hostname ?? node.Spec.Name ?? node.ID;
}

/** What the console shows: `Ready`, `Drain`, `Paused`, `Down`, `Unreachable` (a manager out of the raft), … */
export function nodeStatus(node: SwarmNode): string {
  switch (node.Status.State) {
    case 'ready':
      if (node.ManagerStatus && node.ManagerStatus.Reachability !== 'reachable') return 'Unreachable';
      if (node.Spec.Availability === 'drain') return 'Drain';
      if (node.Spec.Availability === 'pause') return 'Paused';
      return 'Ready';
    case 'down':
      return 'Down';
    case 'disconnected':
      return 'Disconnected';
    case 'unknown':
      return 'Unknown';
    default: {
      const never: never = node.Status.State;
      return String(never);
    }
  }
}
