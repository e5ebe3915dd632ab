import { FleetService } from './fleet.js';
import { Orchestrator } from './orchestrator.js';
import type { EngineOptions } from './types.js';
import { UpgradeService } from './upgrades.js';

/** The engine as the server and tests use it. */
export class Engine {
  readonly orchestrator: Orchestrator;
  readonly fleet: FleetService;
  readonly upgrades: UpgradeService;

  constructor(readonly options: EngineOptions) {
    this.orchestrator = new Orchestrator(options);
    this.fleet = new FleetService(options.store, options.drivers, options.sealSecret);
    this.upgrades = new UpgradeService(options.store, this.fleet, this.orchestrator, options.catalog, options.clock);
  }

  start(): Promise<void> {
    return this.orchestrator.start();
  }

  stop(): Promise<void> {
    return this.orchestrator.stop();
  }
}
