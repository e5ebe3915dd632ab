import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Component } from '../domain/components.js';
import { activeStates } from '../domain/upgrade-state.js';
import { deliveryStates } from '../domain/webhooks.js';
import type { EngineObserver } from '../engine/index.js';
import type { Store } from '../store/store.js';
import type { UpgradeView } from '../api/index.js';
import { upgradeView } from './views.js';

/**
 * Prometheus metrics, named for alerting (docs/alerts.yml): per active upgrade its state,
 * why it is paused, its nodes by state, the seconds left before auto-cancel, its batch and
 * ETA; per cluster the agents heard from and the age of the oldest heartbeat; webhook
 * deliveries by state; node tasks
 * and batch durations; HTTP request durations by route. The process and Node.js series
 * keep their standard names (`process_*`, `nodejs_*`), as dashboards expect them.
 */
export class Metrics implements EngineObserver {
  readonly registry = new Registry();
  private readonly tasks: Counter<'component' | 'result'>;
  private readonly batches: Histogram<'component'>;
  private readonly http: Histogram<'method' | 'route' | 'status'>;
  /** Request durations not yet in `http` (see `httpRequest`). */
  private pendingHttp: Array<{ method: string; route: string; status: string; seconds: number }> = [];

  constructor(store: Store, options: { pausedTtlMs: number; heartbeatMs: number }) {
    collectDefaultMetrics({ register: this.registry });
    const register = [this.registry];
    // Three of prom-client's defaults are gauges named `…_total`, which Prometheus keeps for
    // counters (`promtool check metrics` refuses them). Their per-type gauges without the
    // suffix (`nodejs_active_handles{type}`, `…_requests`, `…_resources`) stay: sum them.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    new Gauge({
      name: 'upshift_active_upgrades',
      help: 'Upgrades that are not Completed or Canceled, by state',
      labelNames: ['state'],
      registers: register,
      async collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const u of await store.upgrades.listActive()) counts.set(u.state, (counts.get(u.state) ?? 0) + 1);
        for (const state of activeStates) this.set({ state }, counts.get(state) ?? 0);
      },
    });

    // The per-upgrade series are read from one view of each active upgrade per scrape.
    const views = perScrape(() =>
      store.upgrades.listActive().then((active) => Promise.all(active.map((u) => upgradeView(store, u, options.pausedTtlMs)))),
    );
    const perUpgrade = (name: string, help: string, labelNames: string[], fill: (g: Gauge, u: UpgradeView) => void) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: register,
        async collect() {
          this.reset();
          for (const u of await views()) fill(this, u);
        },
      });
    const who = (u: UpgradeView) => ({ upgrade: u.id, cluster: u.clusterName ?? u.clusterId });
    perUpgrade(
      'upshift_upgrade_state',
      'Each active upgrade, 1 in its current state',
      ['upgrade', 'cluster', 'component', 'state'],
      (g, u) => g.set({ ...who(u), component: u.component, state: u.state }, 1),
    );
    perUpgrade(
      'upshift_upgrade_paused',
      'Each active upgrade waiting for an operator, 1 with why: user, error (auto-paused) or snapshot_failed',
      ['upgrade', 'cluster', 'reason'],
      (g, u) => {
        if (u.state === 'Paused') g.set({ ...who(u), reason: u.pauseReason?.kind ?? 'user' }, 1);
        if (u.state === 'SnapshotFailed') g.set({ ...who(u), reason: 'snapshot_failed' }, 1);
      },
    );
    perUpgrade('upshift_upgrade_nodes', 'Node tasks of each active upgrade, by state', ['upgrade', 'state'], (g, u) => {
      for (const s of ['pending', 'running', 'succeeded', 'failed', 'skipped'] as const) g.set({ upgrade: u.id, state: s }, u.nodes[s]);
    });
    perUpgrade(
      'upshift_upgrade_auto_cancel_seconds',
      'Seconds until a paused (or snapshot-failed) upgrade is canceled by the paused TTL',
      ['upgrade', 'cluster'],
      (g, u) => {
        if (u.autoCancelAt) g.set(who(u), Math.max(0, (Date.parse(u.autoCancelAt) - Date.now()) / 1000));
      },
    );
    perUpgrade('upshift_upgrade_batch', 'The 1-based batch each active upgrade runs or last started', ['upgrade'], (g, u) =>
      g.set({ upgrade: u.id }, u.progress.batch),
    );
    perUpgrade('upshift_upgrade_batches', 'Batches each active upgrade started plus those planned', ['upgrade'], (g, u) =>
      g.set({ upgrade: u.id }, u.progress.batches),
    );
    perUpgrade(
      'upshift_upgrade_eta_seconds',
      'Expected seconds to the end of each active upgrade, when known (absent while paused)',
      ['upgrade'],
      (g, u) => {
        if (u.progress.etaSeconds !== null) g.set({ upgrade: u.id }, u.progress.etaSeconds);
      },
    );

    // Both agent series come from one summary query per scrape.
    const agentSummary = perScrape(async () => {
      const now = Date.now();
      const since = new Date(now - 3 * options.heartbeatMs).toISOString();
      const [clusters, summary] = await Promise.all([store.clusters.list(), store.agents.heartbeatSummary(since)]);
      const names = new Map(clusters.map((c) => [c.id, c.name]));
      return summary.map((r) => ({
        cluster: names.get(r.clusterId) ?? r.clusterId,
        connected: r.connected,
        oldestAgeSeconds: r.oldestLastSeenAt ? Math.max(0, (now - Date.parse(r.oldestLastSeenAt)) / 1000) : null,
      }));
    });
    new Gauge({
      name: 'upshift_agents_connected',
      help: 'Agents of each cluster heard from within three heartbeat intervals',
      labelNames: ['cluster'],
      registers: register,
      async collect() {
        this.reset();
        for (const row of await agentSummary()) this.set({ cluster: row.cluster }, row.connected);
      },
    });
    new Gauge({
      name: 'upshift_agent_oldest_heartbeat_age_seconds',
      help: "Seconds since each cluster's least recently heard agent was last heard from",
      labelNames: ['cluster'],
      registers: register,
      async collect() {
        this.reset();
        for (const row of await agentSummary()) if (row.oldestAgeSeconds !== null) this.set({ cluster: row.cluster }, row.oldestAgeSeconds);
      },
    });

    new Gauge({
      name: 'upshift_webhook_deliveries',
      help: 'Webhook deliveries in the outbox by webhook and state: pending (not yet sent, retrying), sent, failed (given up after 24 h)',
      labelNames: ['webhook', 'state'],
      registers: register,
      async collect() {
        this.reset();
        for (const hook of await store.webhooks.counts())
          for (const state of deliveryStates) this.set({ webhook: hook.name, state }, hook.counts[state]);
      },
    });

    this.tasks = new Counter({
      name: 'upshift_node_tasks_total',
      help: 'Node tasks finished, by component and result',
      labelNames: ['component', 'result'],
      registers: register,
    });
    this.batches = new Histogram({
      name: 'upshift_batch_duration_seconds',
      help: 'Time from a batch start to its last node finishing',
      labelNames: ['component'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers: register,
    });
    this.http = new Histogram({
      name: 'upshift_http_request_duration_seconds',
      help: 'HTTP requests by method, matched route pattern and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: register,
      collect: () => this.flushHttp(),
    });
  }

  /**
   * One answered request. Durations wait in a list and go into the histogram together, at
   * each scrape or once `PENDING_HTTP_MAX` wait: observed one at a time, between requests,
   * each cost 40-60 µs of the server's CPU under 1,000 agents upgrading (issue 17); in one
   * pass, a few.
   */
  httpRequest(method: string, route: string, status: string, seconds: number): void {
    this.pendingHttp.push({ method, route, status, seconds });
    if (this.pendingHttp.length >= PENDING_HTTP_MAX) this.flushHttp();
  }

  private flushHttp(): void {
    const pending = this.pendingHttp;
    this.pendingHttp = [];
    for (const r of pending) this.http.observe({ method: r.method, route: r.route, status: r.status }, r.seconds);
  }

  nodeTaskFinished(component: Component, result: 'succeeded' | 'failed'): void {
    this.tasks.inc({ component, result });
  }

  batchFinished(component: Component, seconds: number): void {
    this.batches.observe({ component }, seconds);
  }
}

/** Request durations kept before they are put into the histogram without waiting for a scrape. */
const PENDING_HTTP_MAX = 1000;

/**
 * A load shared by the gauges of one scrape: each gauge's collect asks for it, and it is
 * made at most once per half second (a failed load is not kept).
 */
function perScrape<T>(load: () => Promise<T>): () => Promise<T> {
  let latest: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!latest || Date.now() - latest.at > 500) {
      const value = load();
      latest = { at: Date.now(), value };
      value.catch(() => (latest = undefined));
    }
    return latest.value;
  };
}
