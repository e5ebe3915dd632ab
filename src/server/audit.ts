import { EventType, type NewEvent } from '../domain/events.js';
import type { Store } from '../store/store.js';

/** What the audit trail needs to know of one answered request. */
export interface AuditedRequest {
  method: string;
  /** The matched route's pattern (`/api/v1/clusters/:id`), or undefined when no route matched. */
  route: string | undefined;
  /** The path as the client sent it, without its query string. */
  path: string;
  status: number;
  /** The principal's name; undefined for an anonymous client (or an agent). */
  actor: string | undefined;
  address: string;
  /** The request was refused: 401, 403, 429, or a change sent to no route. */
  refused: boolean;
}

/** Audit rows keep at most this much of the path a client sent. */
export const AUDIT_PATH_LIMIT = 200;
/** Failed sign-ins recorded one by one per window; the others are counted. */
const SIGN_IN_EVENTS_PER_WINDOW = 100;
/** Distinct refusal kinds counted per window; past it they share one bucket. */
const MAX_REFUSAL_KEYS = 1000;

interface RefusalCount {
  first: AuditedRequest;
  firstAt: number;
  lastAt: number;
  /** Refusals after the first (which was recorded at once). */
  more: number;
}

/**
 * The audit trail of the API: one `audit.request` event for every change that went
 * through (who, what route, what status, from where), and refusals in aggregate.
 *
 * A refused request costs the caller nothing, so one client can send thousands a
 * second; one row each would let a viewer fill the database. The first refusal of a
 * kind (actor or address, method, route, status) in a window is recorded at once, so
 * an operator sees it without waiting; the others of that window become one event with
 * their count when the window ends. Paths are kept without their query string and cut
 * to `AUDIT_PATH_LIMIT` characters.
 */
export class AuditTrail {
  private refusals = new Map<string, RefusalCount>();
  /** Failed sign-ins recorded one by one in this window, and those only counted. */
  private signInFailures = { recorded: 0, counted: 0, addresses: new Set<string>() };
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly onError: (error: unknown) => void,
    private readonly windowMs = 60_000,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.windowMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  async record(request: AuditedRequest): Promise<void> {
    const entry = { ...request, path: boundedPath(request.path) };
    // The resource acted on (`POST /api/v1/upgrades/upg_123/cancel`), not the route's pattern; the pattern stays in the data.
    if (!entry.refused) return this.write([eventOf(entry, `${entry.method} ${entry.path} → ${entry.status}`)]);
    const who = entry.actor ?? `anonymous@${entry.address}`;
    let key = `${who}\u0000${entry.method}\u0000${entry.route ?? '(no route)'}\u0000${entry.status}`;
    if (!this.refusals.has(key) && this.refusals.size >= MAX_REFUSAL_KEYS) key = '(many kinds)';
    const now = Date.now();
    const seen = this.refusals.get(key);
    if (seen) {
      seen.more += 1;
      seen.lastAt = now;
      return;
    }
    this.refusals.set(key, { first: entry, firstAt: now, lastAt: now, more: 0 });
    return this.write([eventOf(entry, `refused: ${entry.method} ${entry.path} → ${entry.status}${refusedFrom(entry)}`)]);
  }

  /**
   * A failed sign-in: the first three of an address in its minute and every twentieth are
   * events of their own, up to `SIGN_IN_EVENTS_PER_WINDOW` a window (many addresses at
   * once: a distributed guess); the rest are counted into one event when the window ends.
   */
  async recordSignInFailure(address: string, countForAddress: number): Promise<void> {
    if (countForAddress > 3 && countForAddress % 20 !== 0) return;
    const window = this.signInFailures;
    if (window.recorded < SIGN_IN_EVENTS_PER_WINDOW) {
      window.recorded += 1;
      return this.write([
        {
          type: EventType.authFailed,
          actor: `address:${address}`,
          clusterId: null,
          upgradeId: null,
          nodeId: null,
          message: `failed sign-in from ${address} (${countForAddress} in the last minute)`,
        },
      ]);
    }
    window.counted += 1;
    if (window.addresses.size < 100_000) window.addresses.add(address);
  }

  /** Writes the counts of the window that ends now. */
  async flush(): Promise<void> {
    const ended = this.refusals;
    this.refusals = new Map();
    const events: NewEvent[] = [];
    const signIns = this.signInFailures;
    this.signInFailures = { recorded: 0, counted: 0, addresses: new Set() };
    if (signIns.counted > 0) {
      events.push({
        type: EventType.authFailed,
        actor: 'engine',
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `${signIns.counted} more failed sign-ins from ${signIns.addresses.size} addresses in the last minute (only the first ${SIGN_IN_EVENTS_PER_WINDOW} are recorded one by one)`,
        data: { count: signIns.counted, addresses: signIns.addresses.size },
      });
    }
    for (const { first, firstAt, lastAt, more } of ended.values()) {
      if (more === 0) continue;
      const route = first.route ?? '(no route)';
      events.push(
        eventOf(
          first,
          `refused ${more} more time${more === 1 ? '' : 's'}: ${first.method} ${route} → ${first.status}${refusedFrom(first)}, from ${new Date(firstAt).toISOString()} to ${new Date(lastAt).toISOString()}`,
          { count: more, from: new Date(firstAt).toISOString(), to: new Date(lastAt).toISOString() },
        ),
      );
    }
    await this.write(events);
  }

  private async write(events: NewEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.store.events.appendMany(events).catch(this.onError);
  }
}

function boundedPath(path: string): string {
  const bare = path.split('?')[0] ?? '';
  return bare.length > AUDIT_PATH_LIMIT ? `${bare.slice(0, AUDIT_PATH_LIMIT)}…` : bare;
}

function refusedFrom(entry: AuditedRequest): string {
  return entry.actor ? ` (${entry.actor} from ${entry.address})` : ` (anonymous from ${entry.address})`;
}

function eventOf(entry: AuditedRequest, message: string, extra: Record<string, unknown> = {}): NewEvent {
  return {
    type: EventType.auditRequest,
    actor: entry.actor ?? `anonymous@${entry.address}`,
    clusterId: null,
    upgradeId: null,
    nodeId: null,
    message,
    data: {
      method: entry.method,
      route: entry.route ?? null,
      path: entry.path,
      status: entry.status,
      address: entry.address,
      ...(entry.refused ? { refused: true } : {}),
      ...extra,
    },
  };
}
