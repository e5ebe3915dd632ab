import { createHmac, randomBytes } from 'node:crypto';
import { type LookupAddress, lookup as dnsLookup } from 'node:dns';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { hostname } from 'node:os';
import { ErrorCode, UpshiftError, invalid, notFound } from '../domain/errors.js';
import { EventType, type UpshiftEvent } from '../domain/events.js';
import { looksLikeId, newId } from '../domain/ids.js';
import {
  DELIVERY_GIVE_UP_MS,
  WEBHOOK_NAME_PATTERN,
  type WebhookEventType,
  type WebhookFormat,
  type WebhookRecord,
  deliveryBody,
  isWebhookEventType,
  retryDelayMs,
  webhookEventsProblem,
  webhookFormats,
  webhookUrlProblem,
} from '../domain/webhooks.js';
import { ALLOW_LINK_LOCAL_FLAG, classifyAddress, refusedTargetReason } from '../domain/network-targets.js';
import { setAlignedTimer } from '../domain/ports.js';
import type { DueDelivery } from '../store/index.js';
import type { SecretVault } from './secrets.js';
import type { EngineContext } from './types.js';

/** The header that carries `sha256=<hex HMAC-SHA256 of the raw body>`. */
export const SIGNATURE_HEADER = 'X-Upshift-Signature';
/** The header that carries the event's id, the same on every attempt, for receivers to drop repeats. */
export const EVENT_ID_HEADER = 'X-Upshift-Event-Id';

export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface NewWebhook {
  name: string;
  url: string;
  events: string[];
  secret: string;
  format?: string | undefined;
}

/** The shortest secret accepted: HMAC keys shorter than this are guessable. */
export const MIN_SECRET_LENGTH = 16;

/**
 * Admins' webhooks: validated, their secret sealed with the server's key (as cluster
 * secrets are) before it is stored, created and deleted with an event each.
 */
export class WebhookService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly secrets: SecretVault,
    private readonly allowLinkLocal = false,
  ) {}

  async create(input: NewWebhook, actor: string): Promise<WebhookRecord> {
    if (!WEBHOOK_NAME_PATTERN.test(input.name))
      throw invalid(`webhook name "${input.name}" must be 1-63 lowercase letters, digits and dashes, such as ops-pager`, { field: 'name' });
    const urlProblem = webhookUrlProblem(input.url);
    if (urlProblem) throw invalid(urlProblem, { field: 'url' });
    const refused = refusedTargetReason(hostOf(input.url), this.allowLinkLocal, 'the webhook host');
    if (refused) throw invalid(refused, { field: 'url' });
    const events = [...new Set(input.events.map((e) => e.trim()).filter((e) => e !== ''))];
    const eventsProblem = webhookEventsProblem(events);
    if (eventsProblem) throw invalid(eventsProblem, { field: 'events' });
    const format = (input.format ?? 'json') as WebhookFormat;
    if (!webhookFormats.includes(format)) throw invalid(`format must be json or slack, not "${input.format}"`, { field: 'format' });
    if (input.secret.length < MIN_SECRET_LENGTH || input.secret.length > 1024)
      throw invalid(
        `secret must be ${MIN_SECRET_LENGTH} to 1024 characters (it was ${input.secret.length}); for example the output of openssl rand -hex 32`,
        { field: 'secret' },
      );
    if (!this.secrets.canSeal)
      throw new UpshiftError(ErrorCode.INTERNAL, 'no secret key is configured, so a webhook secret cannot be stored');
    const webhook: WebhookRecord = {
      id: newId('wh'),
      name: input.name,
      url: input.url,
      events: events as WebhookEventType[],
      format,
      sealedSecret: this.secrets.seal(input.secret),
      createdBy: actor,
      createdAt: new Date(this.ctx.clock.now()).toISOString(),
    };
    await this.ctx.store.tx(async (t) => {
      await t.webhooks.insert(webhook);
      await t.events.append({
        type: EventType.webhookCreated,
        actor,
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `webhook ${webhook.name} created for ${webhook.events.join(', ')} (${webhook.format})`,
        data: { webhookId: webhook.id, name: webhook.name },
      });
    });
    return webhook;
  }

  /** A webhook by id or name. */
  async resolve(ref: string): Promise<WebhookRecord> {
    const found = looksLikeId(ref) ? await this.ctx.store.webhooks.get(ref) : await this.ctx.store.webhooks.getByName(ref);
    if (!found) throw notFound('webhook', ref);
    return found;
  }

  async delete(ref: string, actor: string): Promise<void> {
    const webhook = await this.resolve(ref);
    await this.ctx.store.tx(async (t) => {
      if (!(await t.webhooks.delete(webhook.id))) throw notFound('webhook', ref);
      await t.events.append({
        type: EventType.webhookDeleted,
        actor,
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `webhook ${webhook.name} deleted, with its pending deliveries`,
        data: { webhookId: webhook.id, name: webhook.name },
      });
    });
  }
}

export interface DispatcherOptions {
  /** The server's public URL, for the console link in each payload (known once it listens). */
  publicUrl: () => string;
  /** How long one attempt may take before it counts as failed. Default 10 s. */
  timeoutMs?: number;
  /** How many deliveries are sent at once by this replica. Default 8. */
  concurrency?: number;
  /** How often due deliveries are looked for (also at once when an event is written). Default 1 s. */
  pollMs?: number;
  /** Let webhooks reach link-local and cloud metadata addresses (`--allow-link-local-targets`), as cluster targets may. */
  allowLinkLocalTargets?: boolean;
}

/**
 * Sends the outbox: its own loop beside the engine's, so that a slow or dead receiver
 * delays nothing but its own deliveries. Each due delivery is claimed with a lease on its
 * row (store/webhooks.ts), sent once with a timeout, and its attempt recorded; a failure
 * is retried after 1 s, 2 s, 4 s, … (at most 5 min apart) until 24 h after the event,
 * then the delivery is marked failed. A replica that dies mid-send leaves the delivery
 * to whichever replica claims it after the lease ends: delivery is at least once, and
 * the event id header lets a receiver drop the rare repeat.
 */
export class WebhookDispatcher {
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private running = false;
  private timer: (() => void) | undefined;
  private ticking = false;
  private again = false;
  private readonly inflight = new Set<Promise<void>>();
  private abort = new AbortController();
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly onEvent = (event: UpshiftEvent) => {
    if (isWebhookEventType(event.type)) this.wake();
  };

  constructor(
    private readonly ctx: EngineContext,
    private readonly secrets: SecretVault,
    private readonly options: DispatcherOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.concurrency = options.concurrency ?? 8;
    this.pollMs = options.pollMs ?? 1000;
  }

  /** The lease on a claimed delivery: the attempt's timeout and room to record it. */
  private get leaseMs(): number {
    return this.timeoutMs + 30_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.ctx.store.bus.on('event', this.onEvent);
    this.schedule();
  }

  /** Stops claiming, cuts the attempts in flight short, and hands their deliveries back. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.ctx.store.bus.off('event', this.onEvent);
    this.timer?.();
    this.abort.abort();
    await Promise.allSettled([...this.inflight]);
    await this.ctx.store.webhooks
      .release(this.owner)
      .catch((error: unknown) => this.ctx.log.warn({ err: error }, 'releasing webhook deliveries failed'));
  }

  private wake(): void {
    if (!this.running) return;
    void this.tick();
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setAlignedTimer(this.ctx.clock, this.pollMs, () => {
      void this.tick().finally(() => this.schedule());
    });
  }

  /** Claims as many due deliveries as there are free slots, and sends them. */
  private async tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    try {
      do {
        this.again = false;
        const free = this.concurrency - this.inflight.size;
        if (!this.running || free <= 0) return;
        const due = await this.ctx.store.webhooks.claimDue(this.owner, this.leaseMs, free);
        for (const item of due) {
          const sending = this.send(item).catch((error: unknown) =>
            this.ctx.log.warn({ err: error, webhook: item.webhook.name, delivery: item.delivery.id }, 'recording a webhook attempt failed'),
          );
          this.inflight.add(sending);
          void sending.finally(() => {
            this.inflight.delete(sending);
            if (due.length === free) this.wake();
          });
        }
      } while (this.again);
    } catch (error) {
      this.ctx.log.warn({ err: error }, 'claiming webhook deliveries failed; retrying');
    } finally {
      this.ticking = false;
    }
  }

  private async send({ delivery, webhook }: DueDelivery): Promise<void> {
    const body = deliveryBody(delivery.event, webhook, this.options.publicUrl());
    let status: number | null = null;
    let error: string | null = null;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      const secret = this.secrets.open(webhook.sealedSecret);
      status = await post(
        webhook.url,
        {
          'content-type': 'application/json',
          'user-agent': 'Upshift-Webhook',
          [SIGNATURE_HEADER]: signature(secret, body),
          [EVENT_ID_HEADER]: delivery.eventId,
          'X-Upshift-Event': delivery.eventType,
        },
        body,
        AbortSignal.any([this.abort.signal, timeout]),
        this.options.allowLinkLocalTargets ?? false,
      );
    } catch (caught) {
      if (this.abort.signal.aborted) return; // stopping: the lease is released, another attempt follows
      error = timeout.aborted ? `no answer within ${this.timeoutMs / 1000} s` : describeFailure(caught);
    }
    const now = this.ctx.clock.now();
    const ok = status !== null && status >= 200 && status < 300;
    const givenUp = !ok && now - Date.parse(delivery.createdAt) >= DELIVERY_GIVE_UP_MS;
    if (!ok && error === null) error = `the receiver answered HTTP ${status}`;
    const attempts = delivery.attempts + 1;
    const recorded = await this.ctx.store.webhooks.finishAttempt(delivery.id, this.owner, {
      attempt: { at: new Date(now).toISOString(), status, error: ok ? null : error },
      state: ok ? 'sent' : givenUp ? 'failed' : 'pending',
      retryInMs: retryDelayMs(attempts),
    });
    if (!ok && recorded)
      this.ctx.log.warn(
        { webhook: webhook.name, delivery: delivery.id, event: delivery.eventType, attempts, status, error, gaveUp: givenUp },
        givenUp ? 'webhook delivery failed for 24 h; given up' : 'webhook delivery failed; retrying',
      );
  }
}

/** The host of a URL as `net` sees it (an IPv6 literal without its brackets). */
function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '');
}

const LINK_LOCAL_REFUSED = 'EUPSHIFT_LINK_LOCAL';

/**
 * A `lookup` that refuses a name resolving to a link-local or cloud metadata address
 * (docs/design.md §10), unless the operator allowed such targets: checked when the
 * server connects, so a name that points there later is refused too.
 */
function guardedLookup(allowLinkLocal: boolean): LookupFunction {
  return (host, options, callback) => {
    dnsLookup(host, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      const refused = allowLinkLocal ? undefined : addresses.find((a) => classifyAddress(a.address) !== undefined);
      if (refused || addresses.length === 0) {
        const failure = Object.assign(new Error(refused ? 'link-local' : 'no address'), {
          code: refused ? LINK_LOCAL_REFUSED : 'ENOTFOUND',
        });
        return callback(failure, '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  };
}

/**
 * One POST; answers the status once the receiver's headers arrive (its body is drained
 * and ignored). No redirect is followed: the signed event goes only where the admin said.
 */
function post(url: string, headers: Record<string, string>, body: string, signal: AbortSignal, allowLinkLocal: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const refused = refusedTargetReason(hostOf(url), allowLinkLocal, 'the webhook host');
    if (refused) return reject(Object.assign(new Error(refused), { code: LINK_LOCAL_REFUSED }));
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    const request = send(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: guardedLookup(allowLinkLocal),
        signal,
      },
      (response) => {
        resolve(response.statusCode ?? 0);
        response.resume();
        response.on('error', () => undefined);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * What went wrong with a request, in a few words made from its error code only: never the
 * URL (a chat webhook's path is a credential) nor what a remote service answered.
 */
function describeFailure(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === LINK_LOCAL_REFUSED)
    return `the webhook host resolves to a link-local or cloud metadata address; the server does not connect there unless it runs with ${ALLOW_LINK_LOCAL_FLAG}`;
  if (typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code)) return `connection failed: ${code}`;
  if (error instanceof UpshiftError) return error.message;
  return 'the request failed';
}
