import { ErrorCode, UpshiftError, errorMessage } from '../domain/errors.js';
import { ENGINE_ACTOR, EventType, type NewEvent } from '../domain/events.js';
import { type Gate, type GateResult, publicGate, type PublicGate } from '../domain/gates.js';
import type { ClusterRecord, UpgradeRecord } from '../domain/model.js';
import { GateProbe } from '../drivers/gates/probe.js';
import type { SecretVault } from './secrets.js';
import type { EngineContext } from './types.js';
import { isoTime } from './types.js';
import type { UpgradeQueue } from './upgrade-queue.js';

/** A failing gate is checked again this often (engine time) until its retry time has passed. */
export const GATE_RECHECK_MS = 5_000;

/** What `BatchPhase.advance` does about the gates before batch `index`. */
export type GateVerdict =
  { kind: 'pass'; events: NewEvent[] } | { kind: 'wait' } | { kind: 'fail'; gate: PublicGate; gateIndex: number; message: string };

/** The checks before one batch of one upgrade. */
interface Round {
  batchIndex: number;
  /** A check of every gate is under way. */
  running: boolean;
  /** The last complete check of every gate, and when it ended. */
  results: GateResult[] | null;
  /**
   * The events of a check in which every gate passed, not yet written: they go into the
   * transaction that starts the batch (one commit, not two, between batches), or are
   * written on their own if the batch does not start (`forget`).
   */
  passedEvents: NewEvent[];
  /** When each failing gate first failed (engine time): its retry deadline counts from there. */
  failingSince: Map<number, number>;
  /** The next check starts no earlier. */
  nextAt: number;
}

/**
 * Checks an upgrade's health gates before each batch (docs/design.md, "Rollout guards"),
 * off the upgrade's queue: a check takes up to its timeout (a Prometheus server that does
 * not answer, a retry every few seconds for a minute), and an operator's pause must not
 * wait behind it. `BatchPhase.advance` asks `before(upgrade, index)`; the first ask
 * starts a check of every gate and answers `wait`; when the check settles the upgrade is
 * kicked, and the next ask reads the result: all passed → the batch starts; a gate failing
 * past its `retrySeconds` → the upgrade pauses itself; otherwise another check is due in
 * `GATE_RECHECK_MS`. Each gate's result becomes an event (`gate.passed`, `gate.failed`).
 *
 * The state lives in this replica's memory only, and is dropped whenever the upgrade is
 * not `Upgrading` (`forget`): a resume, or another replica taking the upgrade over, checks
 * every gate afresh before the first batch.
 */
export class GateChecks {
  private readonly rounds = new Map<string, Round>();
  private readonly inFlight = new Set<Promise<void>>();
  private abort = new AbortController();
  private readonly probe: GateProbe;

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: { queue: UpgradeQueue; kick: (upgradeId: string) => void; vault: SecretVault; allowLinkLocal: boolean },
  ) {
    this.probe = new GateProbe({ allowLinkLocal: deps.allowLinkLocal });
  }

  before(upgrade: UpgradeRecord, cluster: ClusterRecord, batchIndex: number): GateVerdict {
    const gates = upgrade.policy.gates ?? [];
    if (gates.length === 0) return { kind: 'pass', events: [] };
    const now = this.ctx.clock.now();
    let round = this.rounds.get(upgrade.id);
    if (round && round.batchIndex !== batchIndex) round = undefined;
    if (!round) {
      round = { batchIndex, running: false, results: null, passedEvents: [], failingSince: new Map(), nextAt: now };
      this.rounds.set(upgrade.id, round);
    }
    if (round.running) return { kind: 'wait' };
    if (round.results) {
      const results = round.results;
      if (results.every((r) => r.ok)) {
        this.rounds.delete(upgrade.id);
        return { kind: 'pass', events: round.passedEvents };
      }
      for (const [i, since] of round.failingSince) {
        const gate = gates[i] as Gate;
        if (now >= since + gate.retrySeconds * 1000) {
          this.rounds.delete(upgrade.id);
          return { kind: 'fail', gate: publicGate(gate), gateIndex: i, message: (results[i] as GateResult).message };
        }
      }
      if (now < round.nextAt) {
        this.deps.queue.wakeAt(upgrade.id, round.nextAt);
        return { kind: 'wait' };
      }
    }
    this.check(upgrade, cluster, round, gates);
    return { kind: 'wait' };
  }

  /** Drops what is known of the upgrade's gates: the next batch (after a resume) checks them afresh. */
  forget(upgradeId: string): void {
    const round = this.rounds.get(upgradeId);
    this.rounds.delete(upgradeId);
    if (round && round.passedEvents.length > 0) this.record(upgradeId, round.passedEvents);
  }

  /** Writes the events of a passing check whose batch did not start (the upgrade was paused meanwhile). */
  record(upgradeId: string, events: NewEvent[]): void {
    if (events.length === 0) return;
    this.ctx.store.events.appendMany(events).catch((error: unknown) => {
      this.ctx.log.error({ err: errorMessage(error), upgradeId }, 'recording a passing gate check failed');
    });
  }

  /** Stops the checks under way (their connections are cut) and waits for them. */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled([...this.inFlight]);
    this.probe.close();
    this.rounds.clear();
    this.abort = new AbortController();
  }

  /** One check of one gate, outside any upgrade: "Test now" in the console. */
  async checkOnce(gate: Gate, cluster: ClusterRecord | undefined): Promise<GateResult> {
    return this.checkGate(gate, cluster, gate.kind === 'prometheus' ? gate.bearerToken : undefined);
  }

  private check(upgrade: UpgradeRecord, cluster: ClusterRecord, round: Round, gates: Gate[]): void {
    round.running = true;
    const signal = this.abort.signal;
    const started = this.ctx.clock.now();
    const run = (async () => {
      const results = await Promise.all(gates.map((gate) => this.checkGate(gate, cluster, this.token(gate))));
      if (signal.aborted) return;
      const ended = this.ctx.clock.now();
      const durationMs = ended - started;
      const events: NewEvent[] = [];
      results.forEach((result, i) => {
        const gate = gates[i] as Gate;
        if (result.ok) round.failingSince.delete(i);
        else if (!round.failingSince.has(i)) round.failingSince.set(i, started);
        const since = round.failingSince.get(i);
        const retryUntil = since === undefined ? undefined : since + gate.retrySeconds * 1000;
        events.push({
          type: result.ok ? EventType.gatePassed : EventType.gateFailed,
          actor: ENGINE_ACTOR,
          clusterId: upgrade.clusterId,
          upgradeId: upgrade.id,
          nodeId: null,
          message: `gate ${i + 1} (${gate.kind}) before batch ${round.batchIndex + 1} ${result.ok ? 'passed' : 'failed'}: ${result.message}`,
          data: {
            gateIndex: i,
            kind: gate.kind,
            ok: result.ok,
            message: result.message,
            batchIndex: round.batchIndex,
            durationMs,
            ...(retryUntil !== undefined ? { retryUntil: isoTime(retryUntil) } : {}),
          },
        });
      });
      if (results.every((r) => r.ok)) round.passedEvents = events;
      else await this.ctx.store.events.appendMany(events);
      // The next check: in a few seconds, and no later than the first retry deadline, so the pause comes on time.
      const deadlines = [...round.failingSince].map(([i, since]) => since + (gates[i] as Gate).retrySeconds * 1000);
      round.nextAt = Math.min(ended + GATE_RECHECK_MS, ...deadlines);
      round.results = results;
    })()
      .catch((error: unknown) => {
        this.ctx.log.error({ err: errorMessage(error), upgradeId: upgrade.id }, 'recording a gate check failed; checking again');
        round.nextAt = this.ctx.clock.now() + GATE_RECHECK_MS;
      })
      .finally(() => {
        round.running = false;
        this.inFlight.delete(run);
        if (!signal.aborted && this.rounds.get(upgrade.id) === round) this.deps.kick(upgrade.id);
      });
    this.inFlight.add(run);
  }

  private token(gate: Gate): string | undefined {
    if (gate.kind !== 'prometheus' || gate.sealedBearerToken === undefined) return undefined;
    return this.deps.vault.open(gate.sealedBearerToken);
  }

  /** Never throws: what went wrong is the gate's result. */
  private async checkGate(gate: Gate, cluster: ClusterRecord | undefined, token: string | undefined): Promise<GateResult> {
    try {
      switch (gate.kind) {
        case 'http':
          return await this.probe.http(gate, this.abort.signal);
        case 'prometheus':
          return await this.probe.prometheus(gate, token, this.abort.signal);
        case 'swarm-services':
          return await this.swarmServices(cluster);
      }
    } catch (error) {
      return { ok: false, message: `the check failed: ${errorMessage(error)}` };
    }
  }

  private async swarmServices(cluster: ClusterRecord | undefined): Promise<GateResult> {
    if (!cluster) throw new UpshiftError(ErrorCode.VALIDATION_FAILED, 'a swarm-services gate is checked on a cluster: name one');
    const driver = this.ctx.driverFor(cluster.kind);
    if (!driver.serviceReplicas) return { ok: false, message: `a ${cluster.kind} cluster has no Swarm services to check` };
    const services = await driver.serviceReplicas(cluster);
    // Each service with its running/desired replicas, so the event says what was checked and what fell short.
    const named = (list: typeof services) =>
      list
        .slice(0, 5)
        .map((s) => `${s.name} ${s.running}/${s.desired}`)
        .join(', ') + (list.length > 5 ? ', …' : '');
    const short = services.filter((s) => s.running < s.desired);
    if (services.length === 0) return { ok: true, message: 'the swarm has no replicated services' };
    if (short.length === 0)
      return { ok: true, message: `all ${services.length} replicated services run their desired replicas: ${named(services)}` };
    return {
      ok: false,
      message: `${short.length} of ${services.length} replicated services run fewer replicas than desired: ${named(short)}`,
    };
  }
}
