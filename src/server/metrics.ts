import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Component } from '../domain/components.js';
import { activeStates } from '../domain/upgrade-state.js';
import type { EngineObserver } from '../engine/index.js';
import type { Store } from '../store/store.js';

/** Prometheus metrics: active upgrades, node tasks by result, batch durations. */
export class Metrics implements EngineObserver {
  readonly registry = new Registry();
  private readonly tasks: Counter<'component' | 'result'>;
  private readonly batches: Histogram<'component'>;

  constructor(store: Store) {
    collectDefaultMetrics({ register: this.registry, prefix: 'upshift_process_' });
    new Gauge({
      name: 'upshift_active_upgrades',
      help: 'Upgrades that are not Completed or Canceled, by state',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const u of await store.upgrades.listActive()) counts.set(u.state, (counts.get(u.state) ?? 0) + 1);
        for (const state of activeStates) this.set({ state }, counts.get(state) ?? 0);
      },
    });
    this.tasks = new Counter({
      name: 'upshift_node_tasks_total',
      help: 'Node tasks finished, by component and result',
      labelNames: ['component', 'result'],
      registers: [this.registry],
    });
    this.batches = new Histogram({
      name: 'upshift_batch_duration_seconds',
      help: 'Time from a batch start to its last node finishing',
      labelNames: ['component'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers: [this.registry],
    });
  }

  nodeTaskFinished(component: Component, result: 'succeeded' | 'failed'): void {
    this.tasks.inc({ component, result });
  }

  batchFinished(component: Component, seconds: number): void {
    this.batches.observe({ component }, seconds);
  }
}
