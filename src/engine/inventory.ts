import { ENGINE_ACTOR, EventType } from '../domain/events.js';
import type { ClusterRecord } from '../domain/model.js';
import type { EngineContext } from './types.js';

/**
 * Keeps the stored nodes of real clusters in line with what the clusters report: every
 * `intervalMs` for all clusters, and once right after a cluster is created (through
 * `FleetService.createCluster`), so that its nodes show at once. A cluster that cannot be
 * reached is marked unavailable, with an event, and available again when it answers.
 */
export class InventorySync {
  private running = false;
  private timer: (() => void) | undefined;
  private abort = new AbortController();

  constructor(
    private readonly ctx: EngineContext,
    /** 0 turns the periodic sync off. */
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.running = true;
    this.abort = new AbortController();
    this.schedule();
  }

  /** Stops the periodic sync and aborts the one under way. */
  stop(): void {
    this.running = false;
    this.timer?.();
    this.abort.abort();
  }

  private schedule(): void {
    if (this.intervalMs <= 0 || !this.running) return;
    this.timer = this.ctx.clock.setTimer(this.intervalMs, () => {
      void this.syncAll().finally(() => this.schedule());
    });
  }

  /** Syncs every cluster in turn; a failure is logged and the next cluster synced. */
  async syncAll(): Promise<void> {
    for (const cluster of await this.ctx.store.clusters.list()) {
      if (!this.running) return;
      await this.sync(cluster).catch((error: unknown) => this.ctx.log.warn({ err: error, clusterId: cluster.id }, 'inventory sync failed'));
    }
  }

  /**
   * Brings the stored nodes in line with what the cluster reports. New nodes are added
   * (and left out of a running upgrade, whose tasks were fixed when it started); nodes
   * that disappeared are removed only when no upgrade is active. Kinds whose nodes are
   * not reported by the cluster (simulated, hosts) change nothing.
   */
  async sync(cluster: ClusterRecord): Promise<void> {
    const { store } = this.ctx;
    const result = await this.ctx.driverFor(cluster.kind).inventory(cluster, this.abort.signal);
    if (result === undefined) return;
    if (!result.reachable) {
      if (await store.clusters.setUnavailable(cluster.id, result.reason)) {
        await store.events.append({
          type: EventType.clusterUnavailable,
          actor: ENGINE_ACTOR,
          clusterId: cluster.id,
          upgradeId: null,
          nodeId: null,
          message: `cluster ${cluster.name} cannot be reached: ${result.reason}`,
        });
      }
      return;
    }
    await store.tx(async (tx) => {
      if (await tx.clusters.setUnavailable(cluster.id, null)) {
        await tx.events.append({
          type: EventType.clusterAvailable,
          actor: ENGINE_ACTOR,
          clusterId: cluster.id,
          upgradeId: null,
          nodeId: null,
          message: `cluster ${cluster.name} is reachable again`,
        });
      }
      await tx.nodes.reconcile(cluster.id, result.nodes, ENGINE_ACTOR);
    });
  }
}
