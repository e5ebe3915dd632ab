import { AgentHub } from './agents/index.js';
import { FleetService } from './fleet.js';
import { InventorySync } from './inventory.js';
import { Orchestrator } from './orchestrator.js';
import { SecretVault } from './secrets.js';
import type { EngineContext, EngineOptions } from './types.js';
import { silentLogger } from './types.js';
import { UpgradeService } from './upgrades.js';
import { WebhookDispatcher, WebhookService } from './webhooks.js';

/**
 * The engine as the server and tests use it, and the one thing `upshift server` wires:
 * clusters (`fleet`), upgrades (`upgrades`), the inventory sync (`inventory`), the
 * agent protocol (`agents`), the cluster secrets (`secrets`) and the webhooks
 * (`webhooks`); the orchestrator that drives upgrades and the webhook dispatcher that
 * sends the deliveries run behind it.
 */
export class Engine {
  readonly agents: AgentHub;
  readonly secrets: SecretVault;
  readonly inventory: InventorySync;
  readonly fleet: FleetService;
  readonly upgrades: UpgradeService;
  readonly webhooks: WebhookService;
  private readonly orchestrator: Orchestrator;
  private readonly dispatcher: WebhookDispatcher;
  private started = false;

  constructor(readonly options: EngineOptions) {
    const { store, clock, catalog } = options;
    const log = options.logger ?? silentLogger;
    this.secrets = new SecretVault(store, options.secretBox);
    this.agents = new AgentHub({ store, clock, logger: log, ...options.agents });
    const drivers =
      typeof options.drivers === 'function' ? options.drivers({ agents: this.agents, secrets: this.secrets }) : options.drivers;
    const ctx: EngineContext = { store, clock, log, observer: options.observer, catalog, driverFor: (kind) => this.fleet.driverFor(kind) };
    this.inventory = new InventorySync(ctx, options.inventoryIntervalMs ?? 15_000);
    this.fleet = new FleetService(ctx, drivers, this.secrets, this.inventory);
    this.orchestrator = new Orchestrator(ctx, {
      pausedTtlMs: options.pausedTtlMs,
      autoCancelWarningMs: options.autoCancelWarningMs ?? 86_400_000,
      snapshotConcurrency: options.snapshotConcurrency ?? 20,
      leaseTtlMs: options.leaseTtlMs ?? 15_000,
      vault: this.secrets,
      allowLinkLocalTargets: options.allowLinkLocalTargets ?? false,
    });
    this.upgrades = new UpgradeService(ctx, this.fleet, this.orchestrator, this.secrets, options.allowLinkLocalTargets ?? false);
    this.webhooks = new WebhookService(ctx, this.secrets, options.webhooks?.allowLinkLocalTargets ?? false);
    this.dispatcher = new WebhookDispatcher(ctx, this.secrets, options.webhooks ?? { publicUrl: () => 'http://localhost:8420' });
  }

  /** Whether upgrades are being driven (the server's readiness). */
  get isRunning(): boolean {
    return this.orchestrator.isRunning;
  }

  /** Takes up the upgrades no live replica drives, and starts the inventory sync and the agents' liveness sweep. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.orchestrator.start();
    this.inventory.start();
    this.agents.start();
    this.dispatcher.start();
  }

  /** Stops all of it; running node tasks are reattached by the next start, here or on another replica. Idempotent. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.dispatcher.stop();
    await this.agents.stop();
    this.inventory.stop();
    await this.orchestrator.stop();
  }
}
