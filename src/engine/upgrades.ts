import type { Catalog } from '../domain/catalog.js';
import { InstallMethod, findCatalogVersion, latestVersion } from '../domain/catalog.js';
import {
  type Installability,
  installability,
  installableVersions,
  newestInstallable,
  withBinaryReleases,
} from '../domain/installability.js';
import type { Component } from '../domain/components.js';
import { componentDisplayName, components, isComponent, kindHasAgents } from '../domain/components.js';
import { ErrorCode, UpshiftError, invalid, notFound } from '../domain/errors.js';
import { EventType } from '../domain/events.js';
import { newId } from '../domain/ids.js';
import { type Gate, type GateResult, parseGate, parseGates, type PublicGate, publicGate } from '../domain/gates.js';
import { parseMaintenanceWindow } from '../domain/maintenance-window.js';
import { median } from '../domain/progress.js';
import { batchCap, orderNodes, planBatches } from '../domain/batch-planner.js';
import { defaultSnapshotMode, upgradePolicy } from '../domain/defaults.js';
import type { ClusterRecord, NodeRecord, NodeTaskRecord, SnapshotMode, UpgradePolicy, UpgradeRecord } from '../domain/model.js';
import type { FailedPod } from '../domain/ports.js';
import type { OperatorCommand } from '../domain/upgrade-state.js';
import { decide, startState } from '../domain/upgrade-state.js';
import { compareReleases, isValidVersion, releaseOf, sameRelease } from '../domain/versions.js';
import type { Store } from '../store/store.js';
import { applyStart, applyTransition } from './apply-transition.js';
import type { FleetService } from './fleet.js';
import type { Orchestrator } from './orchestrator.js';
import type { SecretVault } from './secrets.js';
import type { EngineContext } from './types.js';
import { isoTime } from './types.js';

export interface UpgradeRequest {
  component?: unknown;
  toVersion?: unknown;
  snapshot?: unknown;
  policy?: { maxBatchPercent?: unknown; soakSeconds?: unknown; window?: unknown; gates?: unknown } | undefined;
}

interface ValidRequest {
  component: Component;
  toVersion: string;
  snapshot: SnapshotMode;
  policy: UpgradePolicy;
}

/** A request checked on its own: the target is the one asked for, or undefined for the default. */
type CheckedRequest = Omit<ValidRequest, 'toVersion'> & { toVersion: string | undefined };

/** `; versions that install on web: 20.10.24`, or nothing when none does. */
function offeredText(catalog: Catalog, cluster: ClusterRecord, nodes: NodeRecord[], component: Component): string {
  const offered = installableVersions(catalog, component, nodes)
    .filter((v) => v.installable)
    .map((v) => v.version);
  return offered.length > 0 ? `; versions that install on ${cluster.name}: ${offered.join(', ')}` : '';
}

/** A catalog version that is not offered to a cluster, and why. */
export interface NotOffered {
  version: string;
  reason: string;
}

/** A component's catalog as one cluster sees it (`GET /clusters/{id}/catalog`). */
export interface ClusterCatalog {
  components: Record<
    Component,
    {
      /** The catalog's newest version. */
      latest: string | null;
      /** The default target of an upgrade: the newest version that installs on the cluster's nodes. */
      default: string | null;
      versions: Array<Installability & { notes: string | null; methods: string[]; distributions?: string[] }>;
    }
  >;
}

export interface PlanResult {
  component: Component;
  toVersion: string;
  total: number;
  cap: number;
  batches: string[][];
  /**
   * How long it should take, in seconds: the median of this component's batch durations
   * in the cluster's earlier upgrades per batch, plus the soak between batches; null when
   * the cluster has no such history.
   */
  estimatedSeconds: number | null;
  /** The component's catalog versions that do not install on the nodes an upgrade to them would touch. */
  notOffered: NotOffered[];
  /** The health gates, as the API shows them (a bearer token as "(set)"). */
  gates: PublicGate[];
  /** What a start with this request would be refused with now, or null: the same checks, in the same order. */
  refusal: { code: ErrorCode; message: string } | null;
  /** With `manifests`: what the driver would create (Kubernetes executor pods), for review. */
  manifests?: unknown[];
}

/**
 * Starting, planning and steering upgrades. Every decision goes through `decide`, and
 * every write of an upgrade's state through `applyStart`/`applyTransition`.
 */
export class UpgradeService {
  private readonly store: Store;
  private readonly catalog: Catalog;

  constructor(
    private readonly ctx: EngineContext,
    private readonly fleet: FleetService,
    private readonly orchestrator: Pick<Orchestrator, 'exclusive' | 'kick' | 'testGate' | 'leaseForNew' | 'adoptNew'>,
    private readonly vault: SecretVault,
    private readonly allowLinkLocalTargets: boolean,
  ) {
    this.store = ctx.store;
    this.catalog = ctx.catalog;
  }

  private validate(request: UpgradeRequest, cluster: ClusterRecord): CheckedRequest {
    const { component } = request;
    if (typeof component !== 'string' || !isComponent(component)) {
      throw invalid(`component must be one of ${components.join(', ')}`, { field: 'component' });
    }
    if (this.catalog[component].length === 0) throw invalid(`the catalog has no version of ${component}`);
    let toVersion: string | undefined;
    if (request.toVersion !== undefined) {
      if (typeof request.toVersion !== 'string' || !isValidVersion(request.toVersion)) {
        throw invalid('toVersion must be a version such as 26.1.5 (letters, digits and . + ~ : _ - only)', { field: 'toVersion' });
      }
      const entry = findCatalogVersion(this.catalog, component, request.toVersion);
      if (!entry) {
        const known = this.catalog[component].map((v) => v.version).join(', ');
        throw invalid(`${component} ${request.toVersion} is not in the catalog; known versions: ${known}`, { field: 'toVersion' });
      }
      toVersion = entry.version;
    }
    const snapshot = request.snapshot ?? defaultSnapshotMode;
    if (snapshot !== 'none' && snapshot !== 'before') throw invalid('snapshot must be "none" or "before"', { field: 'snapshot' });
    const { defaults, bounds } = upgradePolicy;
    const pct = request.policy?.maxBatchPercent ?? defaults.maxBatchPercent;
    if (typeof pct !== 'number' || !Number.isInteger(pct) || pct < bounds.maxBatchPercent.min || pct > bounds.maxBatchPercent.max) {
      throw invalid(`policy.maxBatchPercent must be a whole number from ${bounds.maxBatchPercent.min} to ${bounds.maxBatchPercent.max}`, {
        field: 'policy.maxBatchPercent',
      });
    }
    const soak = request.policy?.soakSeconds ?? defaults.soakSeconds;
    if (typeof soak !== 'number' || !Number.isFinite(soak) || soak < bounds.soakSeconds.min || soak > bounds.soakSeconds.max) {
      throw invalid(`policy.soakSeconds must be a number of seconds from ${bounds.soakSeconds.min} to ${bounds.soakSeconds.max}`, {
        field: 'policy.soakSeconds',
      });
    }
    // The cluster's default window unless the request names one; `window: null` asks for none.
    const raw = request.policy?.window;
    const policy: UpgradePolicy = { maxBatchPercent: pct, soakSeconds: soak };
    if (raw !== undefined && raw !== null) policy.window = parseMaintenanceWindow(raw, 'policy.window');
    else if (raw === undefined && cluster.window) policy.window = cluster.window;
    const gates = request.policy?.gates;
    if (gates !== undefined && gates !== null) {
      const parsed = parseGates(gates, { clusterKind: cluster.kind, allowLinkLocal: this.allowLinkLocalTargets });
      if (parsed.length > 0) policy.gates = parsed;
    }
    return { component, toVersion, snapshot, policy };
  }

  /**
   * The target on these nodes: the version asked for, refused with VERSION_NOT_INSTALLABLE
   * (naming the nodes and their distribution) when its catalog entry does not install on
   * every node it would go on; without one, the newest version that installs on them
   * (docs/hosts.md, "The catalog file, and versions per distribution").
   */
  private target(cluster: ClusterRecord, nodes: NodeRecord[], checked: CheckedRequest, catalog: Catalog): ValidRequest {
    const { component } = checked;
    if (checked.toVersion !== undefined) {
      const entry = findCatalogVersion(catalog, component, checked.toVersion);
      const verdict = entry ? installability(entry, component, nodes) : undefined;
      if (verdict && !verdict.installable) {
        throw new UpshiftError(
          ErrorCode.VERSION_NOT_INSTALLABLE,
          `${componentDisplayName[component]} ${verdict.version} does not install on ${verdict.blockedNodes.length} node${verdict.blockedNodes.length === 1 ? '' : 's'} of ${cluster.name} (${verdict.reason}): choose another version${offeredText(catalog, cluster, nodes, component)}`,
          { details: { version: verdict.version, nodes: verdict.blockedNodes } },
        );
      }
      return { ...checked, toVersion: checked.toVersion };
    }
    const newest = newestInstallable(catalog, component, nodes);
    if (newest === undefined) {
      const notOffered = this.notOffered(catalog, nodes, component);
      throw new UpshiftError(
        ErrorCode.VERSION_NOT_INSTALLABLE,
        `no ${componentDisplayName[component]} version in the catalog installs on the nodes of ${cluster.name} (${notOffered.map((v) => `${v.version}: ${v.reason}`).join('; ')}): add one for their distribution to the catalog`,
        { details: { notOffered } },
      );
    }
    return { ...checked, toVersion: newest };
  }

  /**
   * The catalog as installs see it: a release with a binary archive in the artifact mirror
   * installs anywhere (domain/installability.ts `withBinaryReleases`). The cluster views
   * use it too, so that `upgradable` agrees with what plan and start offer.
   */
  async installCatalog(): Promise<Catalog> {
    const binaries = new Map<Component, Set<string>>();
    for (const a of await this.store.artifacts.list()) {
      if (a.method !== InstallMethod.binary || !isComponent(a.component)) continue;
      const set = binaries.get(a.component) ?? new Set<string>();
      set.add(releaseOf(a.version));
      binaries.set(a.component, set);
    }
    // The same mirrored releases give the same catalog object, which the cluster list's
    // memo of views compares (server/cluster-list.ts); the mirror is read every time, so
    // an upload or a removal on any replica counts at once.
    const key = [...binaries].map(([component, releases]) => `${component}:${[...releases].sort().join(',')}`).join(' ');
    if (this.lastInstallCatalog?.key !== key) this.lastInstallCatalog = { key, catalog: withBinaryReleases(this.catalog, binaries) };
    return this.lastInstallCatalog.catalog;
  }

  private lastInstallCatalog: { key: string; catalog: Catalog } | undefined;

  /** The component's versions that do not install on these nodes, with why. */
  private notOffered(catalog: Catalog, nodes: NodeRecord[], component: Component): NotOffered[] {
    return installableVersions(catalog, component, nodes)
      .filter((v) => !v.installable)
      .map((v) => ({ version: v.version, reason: v.reason ?? '' }));
  }

  /**
   * The catalog as this cluster sees it: every version with whether it installs on the
   * nodes an upgrade to it would touch, and the default target.
   */
  async clusterCatalog(clusterRef: string): Promise<ClusterCatalog> {
    const cluster = await this.fleet.resolveCluster(clusterRef);
    const nodes = await this.store.nodes.list(cluster.id);
    const catalog = await this.installCatalog();
    const entry = (component: Component): ClusterCatalog['components'][Component] => {
      const byVersion = new Map(catalog[component].map((v) => [v.version, v]));
      return {
        latest: latestVersion(this.catalog, component) ?? null,
        default: newestInstallable(catalog, component, nodes) ?? null,
        versions: installableVersions(catalog, component, nodes).map((v) => {
          const catalogEntry = byVersion.get(v.version);
          return {
            ...v,
            notes: catalogEntry?.notes ?? null,
            methods: catalogEntry?.artifacts.map((a) => a.method) ?? [],
            ...(catalogEntry?.distributions ? { distributions: catalogEntry.distributions } : {}),
          };
        }),
      };
    };
    return { components: Object.fromEntries(components.map((c) => [c, entry(c)])) as ClusterCatalog['components'] };
  }

  /** Nodes that run the component at another release than the target. */
  private targets(nodes: NodeRecord[], component: Component, toVersion: string): NodeRecord[] {
    return nodes.filter((n) => {
      const current = n.versions[component];
      return current !== undefined && !sameRelease(current, toVersion);
    });
  }

  async plan(clusterRef: string, request: UpgradeRequest, options: { manifests?: boolean } = {}): Promise<PlanResult> {
    const cluster = await this.fleet.resolveCluster(clusterRef);
    const checked = this.validate(request, cluster);
    const nodes = await this.store.nodes.list(cluster.id);
    const installCatalog = await this.installCatalog();
    const valid = await this.targetAfter(cluster, nodes, checked, installCatalog);
    const targets = this.targets(nodes, valid.component, valid.toVersion);
    const cap = batchCap(targets.length, valid.policy.maxBatchPercent);
    const refused = await this.startRefusal(cluster, nodes, valid, targets.length);
    const batches = planBatches(targets, cap).map((batch) => batch.map((n) => n.name));
    const perBatchMs = median(await this.store.upgrades.pastBatchDurations(cluster.id, valid.component, ''));
    const result: PlanResult = {
      component: valid.component,
      toVersion: valid.toVersion,
      total: targets.length,
      cap,
      batches,
      estimatedSeconds:
        perBatchMs === null || batches.length === 0
          ? null
          : Math.round((batches.length * perBatchMs) / 100) / 10 + (batches.length - 1) * valid.policy.soakSeconds,
      notOffered: this.notOffered(installCatalog, nodes, valid.component),
      gates: (valid.policy.gates ?? []).map(publicGate),
      refusal: refused ? { code: refused.code, message: refused.message } : null,
    };
    if (options.manifests) {
      const driver = this.fleet.driverFor(cluster.kind);
      if (!driver.renderManifests) {
        throw new UpshiftError(ErrorCode.NOT_SUPPORTED, `a ${cluster.kind} cluster creates no manifests; only kubernetes clusters do`);
      }
      result.manifests = await driver.renderManifests(cluster, {
        upgradeId: 'upg_plan',
        component: valid.component,
        toVersion: valid.toVersion,
        nodes: orderNodes(targets),
        catalog: this.catalog,
      });
    }
    return result;
  }

  async start(clusterRef: string, request: UpgradeRequest, actor: string): Promise<UpgradeRecord> {
    const cluster = await this.fleet.resolveCluster(clusterRef);
    const checked = this.validate(request, cluster);
    checked.policy = this.sealGateTokens(checked.policy);
    return this.recordingRefusals(cluster, null, actor, `start a ${checked.component} upgrade`, async () => {
      const nodes = await this.store.nodes.list(cluster.id);
      const valid = await this.targetAfter(cluster, nodes, checked, await this.installCatalog());
      const targets = orderNodes(this.targets(nodes, valid.component, valid.toVersion));
      const refused = await this.startRefusal(cluster, nodes, valid, targets.length);
      if (refused) throw refused;
      const createdAt = isoTime(this.ctx.clock.now());
      const upgrade: UpgradeRecord = {
        id: newId('upg'),
        clusterId: cluster.id,
        component: valid.component,
        toVersion: valid.toVersion,
        state: startState(valid.snapshot === 'before'),
        snapshot: valid.snapshot,
        policy: valid.policy,
        total: targets.length,
        cap: batchCap(targets.length, valid.policy.maxBatchPercent),
        rampStart: 0,
        pauseReason: null,
        endReason: null,
        createdBy: actor,
        createdAt,
        pausedAt: null,
        finishedAt: null,
        nextBatchAt: null,
      };
      const tasks: NodeTaskRecord[] = targets.map((n) => ({
        id: newId('nt'),
        upgradeId: upgrade.id,
        nodeId: n.id,
        nodeName: n.name,
        role: n.role,
        state: 'pending' as const,
        batchIndex: null,
        attempt: 0,
        startedAt: null,
        finishedAt: null,
        error: null,
        fromVersion: n.versions[valid.component] ?? null,
        toVersion: valid.toVersion,
      }));
      // Stored leased to this replica, which then starts its first batch without claiming
      // it or reading it back; one with snapshots first is claimed as any other (docs/design.md §8).
      const lease = valid.snapshot === 'before' ? undefined : this.orchestrator.leaseForNew();
      await this.store.tx(async (tx) => {
        await tx.clusters.lock(cluster.id);
        await applyStart(tx, {
          upgrade,
          lease,
          tasks: tasks.map((task, i) => ({ ...task, sortKey: i })),
          snapshots:
            valid.snapshot === 'before'
              ? targets.map((n) => ({
                  id: newId('snap'),
                  upgradeId: upgrade.id,
                  nodeId: n.id,
                  nodeName: n.name,
                  state: 'pending' as const,
                  ref: null,
                  error: null,
                  startedAt: null,
                  finishedAt: null,
                }))
              : [],
          event: {
            type: EventType.upgradeStarted,
            actor,
            clusterId: cluster.id,
            upgradeId: upgrade.id,
            nodeId: null,
            message: `${componentDisplayName[valid.component]} upgrade to ${valid.toVersion} started on ${targets.length} node${targets.length === 1 ? '' : 's'} of ${cluster.name} (batches up to ${upgrade.cap}${valid.snapshot === 'before' ? ', snapshots first' : ''})`,
            data: {
              component: valid.component,
              toVersion: valid.toVersion,
              total: upgrade.total,
              cap: upgrade.cap,
              snapshot: valid.snapshot,
              policy: { ...valid.policy, ...(valid.policy.gates ? { gates: valid.policy.gates.map(publicGate) } : {}) },
            },
          },
        });
      });
      if (lease) this.orchestrator.adoptNew({ upgrade, cluster, tasks, nodes: targets });
      else this.orchestrator.kick(upgrade.id);
      return upgrade;
    });
  }

  /**
   * The policy as it is stored: a gate's bearer token sealed by the secret key (and the
   * plain text gone), so the database, the start event and the API never hold it.
   */
  private sealGateTokens(policy: UpgradePolicy): UpgradePolicy {
    if (!policy.gates) return policy;
    const gates = policy.gates.map((gate): Gate => {
      if (gate.kind !== 'prometheus' || gate.bearerToken === undefined) return gate;
      if (!this.vault.canSeal) {
        throw new UpshiftError(ErrorCode.NOT_SUPPORTED, 'this server has no secret key, so a gate bearer token cannot be stored');
      }
      const { bearerToken, ...rest } = gate;
      return { ...rest, sealedBearerToken: this.vault.seal(bearerToken) };
    });
    return { ...policy, gates };
  }

  /**
   * Checks one gate once, as the console's "Test now" does: the same validation as a
   * start (a swarm-services gate needs the cluster), then one check; the answer says what
   * it found. Nothing is stored.
   */
  async testGate(raw: unknown, clusterRef: string | undefined): Promise<GateResult> {
    const cluster = clusterRef === undefined ? undefined : await this.fleet.resolveCluster(clusterRef);
    const gate = parseGate(raw, { allowLinkLocal: this.allowLinkLocalTargets, ...(cluster ? { clusterKind: cluster.kind } : {}) });
    if (gate.kind === 'swarm-services' && !cluster) throw invalid('a swarm-services gate is checked on a cluster: give clusterId');
    return this.orchestrator.testGate(gate, cluster);
  }

  /**
   * Why a start would be refused now, or undefined; `plan` shows it and `start` throws it.
   * An active upgrade is named first: it is the reason that holds whatever else is true,
   * and the one an operator must act on (finish or cancel it) before any other.
   */
  /**
   * The refusals that do not depend on the target version, in the order a start checks
   * them: another active upgrade first, then outdated agents. They come before the
   * target's own (VERSION_NOT_INSTALLABLE), so that the first thing to fix is said first.
   */
  private async earlyRefusal(cluster: ClusterRecord, nodes: NodeRecord[], component: Component): Promise<UpshiftError | undefined> {
    const active = await this.store.upgrades.activeOf(cluster.id);
    if (active) {
      return new UpshiftError(
        ErrorCode.UPGRADE_IN_PROGRESS,
        `${cluster.name} already has an active upgrade (${componentDisplayName[active.component]} → ${active.toVersion}, ${active.state}, ${active.id}): finish or cancel it before starting another`,
        { details: { upgradeId: active.id, state: active.state } },
      );
    }
    return this.outdatedAgents(cluster, nodes, component);
  }

  /** The target on these nodes, unless an earlier refusal holds (see `earlyRefusal`). */
  private async targetAfter(cluster: ClusterRecord, nodes: NodeRecord[], checked: CheckedRequest, catalog: Catalog): Promise<ValidRequest> {
    try {
      return this.target(cluster, nodes, checked, catalog);
    } catch (error) {
      throw (await this.earlyRefusal(cluster, nodes, checked.component)) ?? error;
    }
  }

  private async startRefusal(
    cluster: ClusterRecord,
    nodes: NodeRecord[],
    valid: ValidRequest,
    targets: number,
  ): Promise<UpshiftError | undefined> {
    const early = await this.earlyRefusal(cluster, nodes, valid.component);
    if (early) return early;
    if (targets === 0) {
      return new UpshiftError(
        ErrorCode.NOTHING_TO_UPGRADE,
        `every node of ${cluster.name} already runs ${componentDisplayName[valid.component]} ${valid.toVersion}`,
      );
    }
    return undefined;
  }

  private outdatedAgents(cluster: ClusterRecord, nodes: NodeRecord[], component: Component): UpshiftError | undefined {
    if (component === 'agent' || !kindHasAgents(cluster.kind)) return undefined;
    const latest = latestVersion(this.catalog, 'agent');
    if (latest === undefined) return undefined;
    const outdated = nodes.filter((n) => n.versions.agent === undefined || compareReleases(n.versions.agent, latest) < 0);
    if (outdated.length === 0) return undefined;
    return new UpshiftError(
      ErrorCode.AGENT_OUTDATED,
      `${outdated.length} of ${nodes.length} nodes run an agent older than ${latest} (for example ${outdated[0]?.name}): upgrade the agent component first`,
      { details: { outdatedNodes: outdated.length, latestAgent: latest } },
    );
  }

  async get(id: string): Promise<UpgradeRecord> {
    const upgrade = await this.store.upgrades.get(id);
    if (!upgrade) throw notFound('upgrade', id);
    return upgrade;
  }

  /**
   * The failed executor pods of a paused upgrade that block its resume (Kubernetes), so an
   * operator sees them before pressing Continue; empty for other clusters and other states.
   */
  async failedPods(id: string): Promise<FailedPod[]> {
    const upgrade = await this.get(id);
    if (upgrade.state !== 'Paused') return [];
    const cluster = await this.store.clusters.get(upgrade.clusterId);
    if (!cluster) throw notFound('cluster', upgrade.clusterId);
    const driver = this.fleet.driverFor(cluster.kind);
    return driver.failedPods ? driver.failedPods(cluster, id) : [];
  }

  /**
   * pause, resume, cancel, continue, quit: decided by the state machine, written by
   * `applyTransition` (a compare-and-set). A lost compare-and-set (the engine or another
   * replica moved the upgrade meanwhile) is decided again on the new state.
   */
  async command(id: string, command: OperatorCommand, actor: string): Promise<UpgradeRecord> {
    const initial = await this.get(id);
    const cluster = await this.store.clusters.get(initial.clusterId);
    if (!cluster) throw notFound('cluster', initial.clusterId);
    return this.recordingRefusals(cluster, id, actor, command.type, () =>
      this.orchestrator.exclusive(id, async () => {
        for (let attempt = 0; attempt < 5; attempt++) {
          const upgrade = await this.get(id);
          const counts = await this.store.upgrades.taskCounts(id);
          const driver = this.fleet.driverFor(cluster.kind);
          const failedPodsPresent =
            command.type === 'resume' && upgrade.state === 'Paused' && driver.failedPods
              ? (await driver.failedPods(cluster, id)).length > 0
              : false;
          const transition = decide({ state: upgrade.state, unstartedNodes: counts.pending, failedPodsPresent }, command);
          if (!transition.ok) throw transition.refusal;
          if (command.type === 'resume' && failedPodsPresent && command.deleteFailedPods && driver.deleteFailedPods) {
            await driver.deleteFailedPods(cluster, id);
          }
          const applied = await applyTransition(this.store, upgrade, transition, { type: command.type, actor }, this.ctx.clock.now());
          if (applied.applied) {
            this.orchestrator.kick(id);
            return this.get(id);
          }
        }
        throw new UpshiftError(ErrorCode.INVALID_STATE, 'the upgrade kept changing state while the command was applied; try again', {
          retryable: true,
        });
      }),
    );
  }

  /** Refusals by state (409) are operations too: they are recorded as events. */
  private async recordingRefusals<T>(
    cluster: ClusterRecord,
    upgradeId: string | null,
    actor: string,
    what: string,
    fn: () => Promise<T>,
  ): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof UpshiftError && error.httpStatus === 409) {
        await this.store.events.append({
          type: EventType.upgradeRefused,
          actor,
          clusterId: cluster.id,
          upgradeId,
          nodeId: null,
          message: `${what} refused (${error.code}): ${error.message}`,
          data: { code: error.code, action: what },
        });
      }
      throw error;
    }
  }
}
