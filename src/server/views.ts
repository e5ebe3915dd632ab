import type { CatalogView, ClusterView, NodeTaskView, NodeView, PolicyView, UpgradeView } from '../api/index.js';
import { type Catalog, latestVersion } from '../domain/catalog.js';
import { type Component, components } from '../domain/components.js';
import { type VersionGroup, clusterStatus, summariseComponents, upgradeStatusText } from '../domain/fleet-summary.js';
import type {
  BatchRecord,
  ClusterRecord,
  NodeRecord,
  NodeTaskRecord,
  SnapshotRecord,
  UpgradePolicy,
  UpgradeRecord,
} from '../domain/model.js';
import { ENGINE_ACTOR, EventType } from '../domain/events.js';
import { publicGate } from '../domain/gates.js';
import { upgradeProgress, waitingFor } from '../domain/progress.js';
import type { EndReason } from '../domain/upgrade-state.js';
import type { Store } from '../store/store.js';

/** The API's representations (api/) of the domain's records. */
export function clusterView(
  catalog: Catalog,
  cluster: ClusterRecord,
  groups: VersionGroup[],
  active: UpgradeRecord | undefined,
): ClusterView {
  const { status, statusText } = clusterStatus(cluster, active);
  return {
    id: cluster.id,
    name: cluster.name,
    kind: cluster.kind,
    status,
    statusText,
    nodeCount: groups.reduce((n, g) => n + g.count, 0),
    activeUpgradeId: active?.id ?? null,
    activeUpgradeState: active?.state ?? null,
    activeUpgradeComponent: active?.component ?? null,
    components: summariseComponents(catalog, groups),
    config: cluster.config,
    window: cluster.window,
    createdAt: cluster.createdAt,
  };
}

export function nodeView(node: NodeRecord): NodeView {
  return {
    id: node.id,
    name: node.name,
    role: node.role,
    status: node.status,
    versions: node.versions,
    distribution: node.distribution,
    createdAt: node.createdAt,
  };
}

function batchView(batch: BatchRecord) {
  return {
    index: batch.index,
    size: batch.size,
    state: batch.state,
    nodes: batch.nodeIds,
    startedAt: batch.startedAt,
    finishedAt: batch.finishedAt,
  };
}

/** The policy as the API shows it: a gate's bearer token only as "(set)". */
export function publicPolicy(policy: UpgradePolicy): PolicyView {
  const { gates, ...rest } = policy;
  return gates ? { ...rest, gates: gates.map(publicGate) } : rest;
}

/**
 * While the upgrade waits between batches: the earliest retry deadline of the gates whose
 * last check failed, read from the events the gate checks wrote since the last batch
 * started or the upgrade resumed (every replica answers the same); null when none fails.
 */
async function gateRetryUntil(store: Store, upgrade: UpgradeRecord, running: number): Promise<string | null> {
  const gates = upgrade.policy.gates ?? [];
  if (gates.length === 0 || upgrade.state !== 'Upgrading' || running > 0) return null;
  const recent = await store.events.list({
    upgradeId: upgrade.id,
    types: [EventType.gateFailed, EventType.gatePassed, EventType.batchStarted, EventType.upgradeResumed],
    limit: gates.length,
  });
  const latest = new Map<number, { ok: boolean; retryUntil?: string }>();
  for (const e of recent) {
    if (e.type !== EventType.gateFailed && e.type !== EventType.gatePassed) break;
    const data = (e.data ?? {}) as { gateIndex?: number; ok?: boolean; retryUntil?: string };
    if (typeof data.gateIndex === 'number' && !latest.has(data.gateIndex)) latest.set(data.gateIndex, data as { ok: boolean });
  }
  const deadlines = [...latest.values()].flatMap((d) => (!d.ok && typeof d.retryUntil === 'string' ? [d.retryUntil] : []));
  return deadlines.length === 0 ? null : deadlines.sort()[0]!;
}

export async function upgradeView(store: Store, upgrade: UpgradeRecord, pausedTtlMs: number): Promise<UpgradeView> {
  const [counts, batches, snapshots, cluster, driver] = await Promise.all([
    store.upgrades.taskCounts(upgrade.id),
    store.upgrades.listBatches(upgrade.id),
    upgrade.snapshot === 'before' ? store.upgrades.listSnapshots(upgrade.id) : Promise.resolve([] as SnapshotRecord[]),
    store.clusters.get(upgrade.clusterId),
    store.leases.ownerOf(upgrade.id),
  ]);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const snapshotCounts = { total: snapshots.length, pending: 0, running: 0, succeeded: 0, failed: 0, failedNodes: [] as string[] };
  for (const s of snapshots) snapshotCounts[s.state]++;
  const failedSnapshots = snapshots.filter((s) => s.state === 'failed');
  if (failedSnapshots.length > 0) {
    const names = new Map((await store.nodes.getMany(failedSnapshots.map((s) => s.nodeId))).map((n) => [n.id, n.name]));
    snapshotCounts.failedNodes = failedSnapshots.map((s) => names.get(s.nodeId) ?? s.nodeId);
  }
  // Before its own first batch ends, an upgrade's ETA comes from the cluster's past batches.
  const pastBatchMs =
    (upgrade.state === 'Upgrading' || upgrade.state === 'BackingUp') && !batches.some((b) => b.finishedAt !== null)
      ? await store.upgrades.pastBatchDurations(upgrade.clusterId, upgrade.component, upgrade.id)
      : [];
  const now = Date.now();
  const progress = upgradeProgress({
    state: upgrade.state,
    createdAt: upgrade.createdAt,
    finishedAt: upgrade.finishedAt,
    nextBatchAt: upgrade.nextBatchAt,
    rampStart: upgrade.rampStart,
    cap: upgrade.cap,
    soakSeconds: upgrade.policy.soakSeconds,
    counts,
    batches,
    pastBatchMs,
    window: upgrade.policy.window,
    now,
  });
  const waiting = upgrade.state === 'Paused' || upgrade.state === 'SnapshotFailed';
  return {
    id: upgrade.id,
    clusterId: upgrade.clusterId,
    clusterName: cluster?.name ?? null,
    component: upgrade.component,
    toVersion: upgrade.toVersion,
    state: upgrade.state,
    statusText: upgradeStatusText(upgrade.component, upgrade.state),
    // Only while paused: once it resumes or ends, the pause is history (events, endReason).
    pauseReason: upgrade.state === 'Paused' ? upgrade.pauseReason : null,
    endReason: upgrade.endReason ?? legacyEndReason(upgrade),
    progress,
    createdAt: upgrade.createdAt,
    createdBy: upgrade.createdBy,
    pausedAt: upgrade.pausedAt,
    finishedAt: upgrade.finishedAt,
    autoCancelAt: waiting && upgrade.pausedAt ? new Date(Date.parse(upgrade.pausedAt) + pausedTtlMs).toISOString() : null,
    nextBatchAt: upgrade.nextBatchAt,
    waiting: waitingFor({
      state: upgrade.state,
      counts,
      nextBatchAt: upgrade.nextBatchAt,
      window: upgrade.policy.window,
      gateRetryUntil: await gateRetryUntil(store, upgrade, counts.running),
      now,
    }),
    snapshot: upgrade.snapshot,
    policy: publicPolicy(upgrade.policy),
    cap: upgrade.cap,
    nodes: { total, ...counts },
    batches: batches.map(batchView),
    snapshots: upgrade.snapshot === 'before' ? snapshotCounts : null,
    drivenBy: driver,
  };
}

export function nodeTaskView(task: NodeTaskRecord, snapshot: SnapshotRecord | undefined): NodeTaskView {
  return {
    nodeId: task.nodeId,
    nodeName: task.nodeName,
    role: task.role,
    state: task.state,
    batchIndex: task.batchIndex,
    attempt: task.attempt,
    startedAt: task.startedAt,
    finishedAt: task.finishedAt,
    error: task.error,
    fromVersion: task.fromVersion,
    toVersion: task.toVersion,
    snapshot: snapshot ? { state: snapshot.state, ref: snapshot.ref, error: snapshot.error } : null,
  };
}

/** The catalog in use: per component its latest version and every version with how it installs. */
export function catalogView(catalog: Catalog): CatalogView {
  const entry = (c: Component) => ({
    latest: latestVersion(catalog, c) ?? null,
    versions: catalog[c].map((v) => ({
      version: v.version,
      notes: v.notes ?? null,
      methods: v.artifacts.map((a) => a.method),
      ...(v.distributions ? { distributions: v.distributions } : {}),
    })),
  });
  return { components: Object.fromEntries(components.map((c) => [c, entry(c)])) as CatalogView['components'] };
}

/**
 * Upgrades that ended before end reasons were recorded (schema version 10) get one from
 * what their row says: completed, or canceled at `finishedAt` by an unknown actor.
 */
function legacyEndReason(upgrade: UpgradeRecord): EndReason | null {
  if (upgrade.state === 'Completed') {
    return { kind: 'completed', actor: ENGINE_ACTOR, at: upgrade.finishedAt ?? upgrade.createdAt, message: 'Completed' };
  }
  if (upgrade.state === 'Canceled') {
    return {
      kind: 'canceled',
      actor: 'unknown',
      at: upgrade.finishedAt ?? upgrade.createdAt,
      message: 'Canceled (before end reasons were recorded)',
    };
  }
  return null;
}
