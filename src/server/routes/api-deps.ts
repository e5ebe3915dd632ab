import type { Engine } from '../../engine/index.js';
import type { Store } from '../../store/index.js';

/** What the API's route plugins are given by the server. */
export interface ApiDeps {
  engine: Engine;
  store: Store;
  pausedTtlMs: number;
}

/** Who a request acts as, for the events it causes. */
export const actorOf = (request: { principal?: { name: string } }) => request.principal?.name ?? 'anonymous';
