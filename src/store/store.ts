import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { AccessRepository } from './access.js';
import { AgentRepository } from './agents.js';
import { ArtifactRepository } from './artifacts.js';
import { ClusterRepository } from './clusters.js';
import type { StoreAdapter } from './dialect.js';
import { EventRepository } from './events.js';
import { LeaseRepository } from './leases.js';
import { NodeLogRepository } from './node-logs.js';
import { NodeRepository } from './nodes.js';
import { Scope } from './scope.js';
import { UpgradeRepository } from './upgrades.js';
import { WebhookRepository } from './webhooks.js';

/**
 * The database, one repository per area: `store.clusters`, `store.nodes`,
 * `store.upgrades` (with their node tasks, batches and snapshots), `store.events`,
 * `store.logs` (node task logs), `store.access` (API tokens, console sessions),
 * `store.agents` (join tokens, credentials, heartbeats, agent tasks), `store.artifacts`,
 * `store.leases` and `store.webhooks` (with their delivery outbox). Repositories take and return the domain's records
 * (`src/domain/model.ts`) in camelCase; table and column names, JSON encoding and
 * dialect differences stay inside `src/store/`.
 *
 * Why one object with a property per area rather than repositories handed out one by
 * one: a transaction spans areas (an upgrade's compare-and-set and its event commit
 * together), so `store.tx(async (t) => { await t.upgrades.casState(…); await
 * t.events.append(…); })` hands the function a Store of the same shape whose every
 * repository runs on the transaction's one connection. Code reads the same in and out
 * of a transaction, a function that takes a `Store` works in both, and a call names the
 * area it touches.
 *
 * Every state change is a compare-and-set that names the state it expects and reports
 * whether it won; callers act only on a win. Events written in a transaction are
 * published on `bus` only after it commits.
 */
export class Store {
  readonly clusters: ClusterRepository;
  readonly nodes: NodeRepository;
  readonly upgrades: UpgradeRepository;
  readonly events: EventRepository;
  readonly logs: NodeLogRepository;
  readonly access: AccessRepository;
  readonly agents: AgentRepository;
  readonly artifacts: ArtifactRepository;
  readonly leases: LeaseRepository;
  readonly webhooks: WebhookRepository;

  constructor(
    readonly adapter: StoreAdapter,
    private readonly scope = new Scope(
      adapter,
      adapter.db,
      new EventEmitter().setMaxListeners(0),
      randomBytes(8).toString('hex'),
      undefined,
    ),
  ) {
    this.clusters = new ClusterRepository(scope);
    this.upgrades = new UpgradeRepository(scope);
    this.events = new EventRepository(scope);
    this.nodes = new NodeRepository(scope, { upgrades: this.upgrades, events: this.events });
    this.logs = new NodeLogRepository(scope);
    this.access = new AccessRepository(scope);
    this.agents = new AgentRepository(scope);
    this.artifacts = new ArtifactRepository(scope);
    this.leases = new LeaseRepository(scope);
    this.webhooks = new WebhookRepository(scope);
  }

  /** `event` for every event written, after its commit; `remote-event` for other replicas' (see events.ts). */
  get bus(): EventEmitter {
    return this.scope.bus;
  }

  /** Runs `fn` in one transaction (or in the one this store is in); the events it appended are published after the commit. */
  tx<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    return this.scope.transaction((scope) => fn(scope === this.scope ? this : new Store(this.adapter, scope)));
  }

  /** Whether other server processes may write to this database (PostgreSQL); SQLite has one. */
  get sharedWithReplicas(): boolean {
    return this.adapter.listen !== undefined;
  }

  /** Answers when the database does (readiness). */
  async ping(): Promise<void> {
    await this.scope.db.selectFrom('schemaMigrations').select('version').limit(1).execute();
  }
}
