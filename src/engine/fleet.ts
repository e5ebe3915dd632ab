import type { ClusterKind } from '../domain/components.js';
import { clusterKinds, isClusterKind } from '../domain/components.js';
import { ErrorCode, UpshiftError, invalid, notFound } from '../domain/errors.js';
import { EventType } from '../domain/events.js';
import { newId, looksLikeId } from '../domain/ids.js';
import { describeWindow, parseMaintenanceWindow } from '../domain/maintenance-window.js';
import type { ClusterRecord, NodeRecord } from '../domain/model.js';
import type { ClusterDriver } from '../domain/ports.js';
import type { Store } from '../store/store.js';
import type { InventorySync } from './inventory.js';
import type { SecretVault } from './secrets.js';
import type { DriverRegistry, Logger } from './types.js';

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function validateName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !namePattern.test(name)) {
    throw invalid(`${what} name must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return name;
}

export interface CreateClusterInput {
  name: unknown;
  kind: unknown;
  [key: string]: unknown;
}

/** Clusters and their membership: creation, deletion, adding and removing nodes; the driver of each kind. */
export class FleetService {
  private readonly store: Store;

  constructor(
    private readonly ctx: { store: Store; log: Logger },
    private readonly drivers: DriverRegistry,
    private readonly secrets: SecretVault,
    private readonly inventory: InventorySync,
  ) {
    this.store = ctx.store;
  }

  driverFor(kind: ClusterKind): ClusterDriver {
    const driver = this.drivers[kind];
    if (!driver) {
      throw new UpshiftError(
        ErrorCode.NOT_SUPPORTED,
        `clusters of kind ${kind} are not available in this build; available: ${Object.keys(this.drivers).join(', ')}`,
      );
    }
    return driver;
  }

  /** Finds a cluster by id or by name. */
  async resolveCluster(ref: string): Promise<ClusterRecord> {
    const byId = looksLikeId(ref) ? await this.store.clusters.get(ref) : undefined;
    const cluster = byId ?? (await this.store.clusters.findByName(ref));
    if (!cluster) throw notFound('cluster', ref);
    return cluster;
  }

  /** Creates a cluster with its secrets sealed and its first nodes, then syncs its inventory once (kinds that report one). */
  async createCluster(input: CreateClusterInput, actor: string): Promise<ClusterRecord> {
    const name = validateName('cluster', input.name);
    if (typeof input.kind !== 'string' || !isClusterKind(input.kind)) {
      throw invalid(`kind must be one of ${clusterKinds.join(', ')}`);
    }
    const driver = this.driverFor(input.kind);
    const { name: _n, kind: _k, window: rawWindow, ...rest } = input;
    const window = rawWindow === undefined || rawWindow === null ? null : parseMaintenanceWindow(rawWindow);
    const secrets: Record<string, string> = {};
    for (const field of driver.secretFields ?? []) {
      const value = rest[field];
      delete rest[field];
      if (value === undefined) continue;
      if (typeof value !== 'string' || value.length === 0 || value.length > 1_000_000) throw invalid(`${field} must be a non-empty string`);
      secrets[field] = value;
    }
    const config = driver.validateConfig(rest);
    driver.validateSecrets?.(secrets, config);
    if (Object.keys(secrets).length > 0 && !this.secrets.canSeal) {
      throw new UpshiftError(ErrorCode.INTERNAL, 'no secret key is configured, so secrets cannot be stored');
    }
    const createdAt = new Date().toISOString();
    const cluster: ClusterRecord = { id: newId('cl'), name, kind: input.kind, config, unavailableReason: null, window, createdAt };
    const nodes: NodeRecord[] = driver
      .initialNodes(cluster)
      .map((n) => ({ ...n, id: newId('nd'), clusterId: cluster.id, distribution: null, createdAt }));
    await this.store.tx(async (tx) => {
      await tx.clusters.insert(cluster);
      for (const [field, value] of Object.entries(secrets)) await tx.clusters.putSecret(cluster.id, field, this.secrets.seal(value));
      await tx.nodes.insert(nodes);
      await tx.events.append({
        type: EventType.clusterCreated,
        actor,
        clusterId: cluster.id,
        upgradeId: null,
        nodeId: null,
        message: `cluster ${name} (${input.kind}) created with ${nodes.length} node${nodes.length === 1 ? '' : 's'}`,
      });
    });
    // Real kinds report their nodes at once rather than at the next periodic sync; the
    // cluster exists whether or not it answers now.
    await this.inventory
      .sync(cluster)
      .catch((error: unknown) => this.ctx.log.warn({ err: error, clusterId: cluster.id }, 'first inventory sync failed'));
    return cluster;
  }

  /**
   * Sets (or, with null, clears) the default maintenance window of the cluster's upgrades.
   * Upgrades already started keep the window they started with (docs/design.md §4).
   */
  async setWindow(ref: string, raw: unknown, actor: string): Promise<ClusterRecord> {
    const cluster = await this.resolveCluster(ref);
    const window = raw === null ? null : parseMaintenanceWindow(raw);
    await this.store.tx(async (tx) => {
      if (!(await tx.clusters.setWindow(cluster.id, window))) throw notFound('cluster', ref);
      await tx.events.append({
        type: EventType.clusterWindowChanged,
        actor,
        clusterId: cluster.id,
        upgradeId: null,
        nodeId: null,
        message: window
          ? `cluster ${cluster.name}: upgrades start batches only in ${describeWindow(window)}`
          : `cluster ${cluster.name}: no maintenance window; upgrades start batches at any time`,
        data: { window },
      });
    });
    return { ...cluster, window };
  }

  async deleteCluster(ref: string, actor: string): Promise<void> {
    const cluster = await this.resolveCluster(ref);
    await this.store.tx(async (tx) => {
      await tx.clusters.lock(cluster.id);
      if (await tx.upgrades.activeOf(cluster.id)) {
        throw new UpshiftError(
          ErrorCode.UPGRADE_IN_PROGRESS,
          `cluster ${cluster.name} has an active upgrade: cancel it before deleting the cluster`,
        );
      }
      await tx.clusters.delete(cluster.id);
      await tx.events.append({
        type: EventType.clusterDeleted,
        actor,
        clusterId: cluster.id,
        upgradeId: null,
        nodeId: null,
        message: `cluster ${cluster.name} deleted`,
      });
    });
  }

  async addNode(ref: string, input: { name: unknown }, actor: string): Promise<NodeRecord> {
    const cluster = await this.resolveCluster(ref);
    const name = validateName('node', input.name);
    const driver = this.driverFor(cluster.kind);
    if (!driver.manualMembership) {
      throw new UpshiftError(
        ErrorCode.NOT_SUPPORTED,
        `nodes of a ${cluster.kind} cluster join by themselves; they cannot be added by hand`,
      );
    }
    const node: NodeRecord = {
      id: newId('nd'),
      clusterId: cluster.id,
      name,
      role: 'worker',
      status: 'Ready',
      versions: driver.newNodeVersions(cluster),
      distribution: null,
      createdAt: new Date().toISOString(),
    };
    await this.store.tx(async (tx) => {
      await tx.clusters.lock(cluster.id);
      await this.refuseDuringUpgrade(tx, cluster, `add node ${name}`);
      await tx.nodes.insert([node]);
      await tx.events.append({
        type: EventType.clusterNodeAdded,
        actor,
        clusterId: cluster.id,
        upgradeId: null,
        nodeId: node.id,
        message: `node ${name} added to ${cluster.name}`,
      });
    });
    return node;
  }

  async removeNode(ref: string, nodeRef: string, actor: string): Promise<void> {
    const cluster = await this.resolveCluster(ref);
    const nodes = await this.store.nodes.list(cluster.id);
    const node = nodes.find((n) => n.id === nodeRef) ?? nodes.find((n) => n.name === nodeRef);
    if (!node) throw notFound('node', nodeRef);
    const driver = this.driverFor(cluster.kind);
    if (!driver.manualMembership) {
      throw new UpshiftError(
        ErrorCode.NOT_SUPPORTED,
        `nodes of a ${cluster.kind} cluster leave by themselves; remove the node from the cluster itself`,
      );
    }
    await this.store.tx(async (tx) => {
      await tx.clusters.lock(cluster.id);
      await this.refuseDuringUpgrade(tx, cluster, `remove node ${node.name}`);
      await tx.nodes.delete(node.id);
      await tx.events.append({
        type: EventType.clusterNodeRemoved,
        actor,
        clusterId: cluster.id,
        upgradeId: null,
        nodeId: node.id,
        message: `node ${node.name} removed from ${cluster.name}`,
      });
    });
  }

  private async refuseDuringUpgrade(tx: Store, cluster: ClusterRecord, what: string): Promise<void> {
    const active = await tx.upgrades.activeOf(cluster.id);
    if (active) {
      throw new UpshiftError(
        ErrorCode.UPGRADE_IN_PROGRESS,
        `cannot ${what}: cluster ${cluster.name} is being upgraded (upgrade ${active.id} is ${active.state}); membership is locked until it completes or is canceled`,
        { details: { upgradeId: active.id } },
      );
    }
  }
}
