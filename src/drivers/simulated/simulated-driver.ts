import type { Catalog } from '../../domain/catalog.js';
import { oldestVersion } from '../../domain/catalog.js';
import type { ComponentVersions } from '../../domain/components.js';
import { componentDisplayName, components, isComponent } from '../../domain/components.js';
import { invalid } from '../../domain/errors.js';
import type { ClusterRecord, SimulationConfig } from '../../domain/model.js';
import type {
  ClusterDriver,
  Clock,
  InventoryNode,
  NodeTaskOutcome,
  NodeTaskSpec,
  SnapshotOutcome,
  SnapshotSpec,
  TaskContext,
} from '../../domain/ports.js';
import { sleep } from '../../domain/ports.js';
import { isValidVersion } from '../../domain/versions.js';

export const MAX_SIMULATED_NODES = 100_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const simKeys = new Set(['nodes', 'managers', 'versions', 'upgradeSeconds', 'failNodes', 'snapshotFailNodes']);

/** `sim-001` … with at least three digits, more when the cluster is larger. */
export function simulatedNodeName(index: number, total: number): string {
  return `sim-${String(index).padStart(Math.max(3, String(total).length), '0')}`;
}

/**
 * In-process nodes for demos, tests and load benchmarks. It behaves like a real kind
 * from the API's point of view: tasks take `upgradeSeconds`, logs are written, nodes in
 * `failNodes` fail their first attempt, nodes in `snapshotFailNodes` fail every snapshot.
 *
 * It keeps no state of its own: a task's outcome follows from its `startedAt` and
 * attempt, so after a crash of the server a reattached task finishes when it would
 * have, as a real node that kept working while the control plane was away.
 */
export class SimulatedDriver implements ClusterDriver {
  readonly kind = 'simulated' as const;
  readonly manualMembership = true;

  constructor(
    private readonly catalog: Catalog,
    private readonly clock: Clock,
  ) {}

  private defaultVersions(): ComponentVersions {
    const versions: ComponentVersions = {};
    for (const c of components) {
      const v = oldestVersion(this.catalog, c);
      if (v !== undefined) versions[c] = v;
    }
    return versions;
  }

  validateConfig(raw: Record<string, unknown>): Record<string, unknown> {
    for (const key of Object.keys(raw)) {
      if (key !== 'simulation') throw invalid(`unknown field ${JSON.stringify(key)} for a simulated cluster; it takes "simulation"`);
    }
    const sim = raw['simulation'] ?? {};
    if (!isRecord(sim)) throw invalid('simulation must be an object');
    for (const key of Object.keys(sim)) {
      if (!simKeys.has(key)) throw invalid(`simulation.${key} is not a known field; known: ${[...simKeys].join(', ')}`);
    }
    const nodes = sim['nodes'] ?? 10;
    if (typeof nodes !== 'number' || !Number.isInteger(nodes) || nodes < 1 || nodes > MAX_SIMULATED_NODES) {
      throw invalid(`simulation.nodes must be a whole number from 1 to ${MAX_SIMULATED_NODES}`);
    }
    const managers = sim['managers'] ?? 0;
    if (typeof managers !== 'number' || !Number.isInteger(managers) || managers < 0 || managers > nodes) {
      throw invalid('simulation.managers must be a whole number from 0 to simulation.nodes');
    }
    const upgradeSeconds = sim['upgradeSeconds'] ?? 1.5;
    if (typeof upgradeSeconds !== 'number' || !Number.isFinite(upgradeSeconds) || upgradeSeconds < 0 || upgradeSeconds > 3600) {
      throw invalid('simulation.upgradeSeconds must be a number of seconds from 0 to 3600');
    }
    const versions = this.defaultVersions();
    const rawVersions = sim['versions'] ?? {};
    if (!isRecord(rawVersions)) throw invalid('simulation.versions must be an object such as {"docker":"20.10.24"}');
    for (const [component, version] of Object.entries(rawVersions)) {
      if (!isComponent(component)) throw invalid(`simulation.versions.${component}: unknown component; known: ${components.join(', ')}`);
      if (typeof version !== 'string' || !isValidVersion(version)) {
        throw invalid(`simulation.versions.${component} must be a version such as 20.10.24`);
      }
      versions[component] = version;
    }
    const names = (key: string): string[] => {
      const list = sim[key] ?? [];
      if (!Array.isArray(list) || !list.every((n) => typeof n === 'string' && /^[A-Za-z0-9._-]{1,63}$/.test(n))) {
        throw invalid(`simulation.${key} must be a list of node names such as ["sim-007"]`);
      }
      return list as string[];
    };
    const config: SimulationConfig = {
      nodes,
      managers,
      versions,
      upgradeSeconds,
      failNodes: names('failNodes'),
      snapshotFailNodes: names('snapshotFailNodes'),
    };
    return { simulation: config };
  }

  private sim(cluster: ClusterRecord): SimulationConfig {
    return cluster.config['simulation'] as SimulationConfig;
  }

  initialNodes(cluster: ClusterRecord): InventoryNode[] {
    const sim = this.sim(cluster);
    return Array.from({ length: sim.nodes }, (_, i) => ({
      name: simulatedNodeName(i + 1, sim.nodes),
      role: i < sim.managers ? ('manager' as const) : ('worker' as const),
      status: 'Ready',
      versions: { ...sim.versions },
    }));
  }

  newNodeVersions(cluster: ClusterRecord): ComponentVersions {
    return { ...this.sim(cluster).versions };
  }

  async inventory(): Promise<undefined> {
    return undefined;
  }

  async runNodeTask(cluster: ClusterRecord, spec: NodeTaskSpec, ctx: TaskContext): Promise<NodeTaskOutcome> {
    const sim = this.sim(cluster);
    const name = componentDisplayName[spec.component];
    const duration = sim.upgradeSeconds * 1000;
    // A start written by a replica whose clock runs ahead is taken as now: a reattached
    // task never waits longer than one upgrade's duration.
    const start = Math.min(Date.parse(spec.startedAt), this.clock.now());
    const steps = [
      `preflight: ${name} ${spec.fromVersion ?? '(none)'} found, ${spec.toVersion} wanted`,
      `stopping ${name}`,
      `installing ${name} ${spec.toVersion}`,
      `starting ${name}`,
    ];
    const elapsed = this.clock.now() - start;
    for (let i = 0; i < steps.length; i++) {
      const at = (duration * i) / steps.length;
      if (at > elapsed) await sleep(this.clock, start + at - this.clock.now(), ctx.signal);
      if (at >= elapsed || i === 0) ctx.log(steps[i] as string);
    }
    const remaining = start + duration - this.clock.now();
    if (remaining > 0) await sleep(this.clock, remaining, ctx.signal);
    if (spec.attempt === 1 && sim.failNodes.includes(spec.node.name)) {
      const error = `${name} ${spec.toVersion} did not start (simulated failure of ${spec.node.name}'s first attempt)`;
      ctx.log(`error: ${error}`);
      return { result: 'failed', error };
    }
    ctx.log(`verified: ${name} reports ${spec.toVersion}`);
    return { result: 'succeeded', versions: { [spec.component]: spec.toVersion } };
  }

  async snapshotNode(cluster: ClusterRecord, spec: SnapshotSpec, ctx: TaskContext): Promise<SnapshotOutcome> {
    const sim = this.sim(cluster);
    await sleep(this.clock, Math.min(1000, (sim.upgradeSeconds * 1000) / 4), ctx.signal);
    if (sim.snapshotFailNodes.includes(spec.node.name)) {
      return { result: 'failed', error: `simulated snapshot failure on ${spec.node.name}` };
    }
    return { result: 'succeeded', ref: `sim-snapshot/${spec.node.name}/${spec.snapshotId}` };
  }
}
