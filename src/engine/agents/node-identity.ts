import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { JOIN_SECRET_PATTERN, type JoinRequest, type JoinResponse, type TaskResultRequest } from '../../domain/agent-protocol.js';
import { kindHasAgents } from '../../domain/components.js';
import { ErrorCode, UpshiftError, invalid, notFound } from '../../domain/errors.js';
import { EventType } from '../../domain/events.js';
import { newId } from '../../domain/ids.js';
import type { ClusterRecord, JoinTokenState, NodeRecord } from '../../domain/model.js';
import type { Clock } from '../../domain/ports.js';
import type { Store } from '../../store/store.js';
import { validateName } from '../fleet.js';
import type { Logger } from '../types.js';
import { checkFacts, hashSecret, reportedVersions } from './agent-input.js';

/** A new join token, shown once: only its hash is stored. */
export interface CreatedJoinToken {
  joinToken: string;
  expiresAt: string;
  singleUse: boolean;
}

/** What `resetNode` did, for the API's answer. */
export interface NodeReset {
  node: NodeRecord;
  clusterName: string;
  /** How many credentials were revoked (0: the node's agent had not joined, or it was reset already). */
  revokedCredentials: number;
  /** Task keys of the node's unfinished agent tasks, failed by the reset. */
  failedTasks: string[];
}

/**
 * Joins this server works on at once; more are answered SERVER_BUSY with a Retry-After of
 * `JOIN_RETRY_AFTER_SECONDS` (docs/design.md §9): a join storm must not queue so many
 * that each waits longer than an agent waits for its answer.
 */
export const MAX_CONCURRENT_JOINS = 64;
export const JOIN_RETRY_AFTER_SECONDS = 2;

/** At most one `agent.join_refused` event per node and client address in this window; the rest are counted. */
const JOIN_REFUSAL_EVENT_WINDOW_MS = 60_000;
const JOIN_REFUSAL_KEYS_MAX = 10_000;

/**
 * Who a node is: join tokens (created for a cluster, expiring, optionally single-use),
 * the join that exchanges one for the node's credential, the credential's check on every
 * agent call, and an admin's reset that revokes it. One credential per node: a join
 * never replaces a credential an agent holds, so a host holding a join token cannot
 * impersonate another node of its cluster.
 */
export class NodeIdentity {
  private readonly joinRefusals = new Map<string, { at: number; suppressed: number }>();
  /** Joins being worked on in this process (at most MAX_CONCURRENT_JOINS). */
  private joinsInFlight = 0;

  constructor(
    private readonly ctx: {
      store: Store;
      clock: Clock;
      log: Logger;
      /** Wakes waiters in this process (`finished:<taskKey>` when a reset fails a task). */
      signals: EventEmitter;
      heartbeatSeconds: number;
      /** Lifetime of a join token created without an explicit one. */
      joinTokenTtlSeconds: number;
    },
  ) {}

  private nowIso(): string {
    return new Date(this.ctx.clock.now()).toISOString();
  }

  private async clusterWithAgents(clusterId: string): Promise<ClusterRecord> {
    const cluster = await this.ctx.store.clusters.get(clusterId);
    if (!cluster) throw new UpshiftError(ErrorCode.NOT_FOUND, `cluster ${clusterId} does not exist`);
    if (!kindHasAgents(cluster.kind) || cluster.kind === 'simulated') {
      throw new UpshiftError(ErrorCode.NOT_SUPPORTED, `nodes of a ${cluster.kind} cluster do not join with agents`);
    }
    return cluster;
  }

  /**
   * A new join token for a cluster with agents; only its hash is stored. Every token
   * expires: after `ttlSeconds`, else after the server's default lifetime, so that a
   * token left on a host or in a shell history stops admitting joins. A single-use token
   * admits exactly one join.
   */
  async createJoinToken(clusterId: string, options: { ttlSeconds?: number; singleUse?: boolean } = {}): Promise<CreatedJoinToken> {
    const cluster = await this.clusterWithAgents(clusterId);
    const ttlSeconds = options.ttlSeconds ?? this.ctx.joinTokenTtlSeconds;
    const joinToken = `upj_${randomBytes(24).toString('base64url')}`;
    const expiresAt = new Date(this.ctx.clock.now() + ttlSeconds * 1000).toISOString();
    const singleUse = options.singleUse === true;
    await this.ctx.store.agents.insertJoinToken({ tokenHash: hashSecret(joinToken), clusterId: cluster.id, expiresAt, singleUse });
    return { joinToken, expiresAt, singleUse };
  }

  /**
   * Exchanges a join token for a node credential. A join creates a node, or claims an
   * existing node that holds no credential (one a Swarm inventory sync made, or
   * one an admin reset). It never replaces a credential: a join naming a node whose agent
   * holds one is refused with NODE_NAME_TAKEN and recorded with the client's address, so
   * that a host holding a join token cannot impersonate another node of its cluster. New
   * nodes are refused while the cluster is being upgraded (its membership is locked).
   *
   * The one exception is the same agent asking again (docs/design.md §9): a join that
   * presents the join secret the credential was issued for, while that credential has
   * never been used, gets a new credential in place of the old one. That is a join whose
   * answer the agent never received (its request timed out while the server completed
   * it). At most MAX_CONCURRENT_JOINS joins are worked on at once; beyond that the join is
   * refused SERVER_BUSY, to be tried again after the Retry-After.
   */
  async join(request: JoinRequest, from: { address: string }): Promise<JoinResponse> {
    if (this.joinsInFlight >= MAX_CONCURRENT_JOINS) {
      throw new UpshiftError(
        ErrorCode.SERVER_BUSY,
        `the server is working on ${MAX_CONCURRENT_JOINS} joins already: try again in ${JOIN_RETRY_AFTER_SECONDS} s`,
        { retryable: true, retryAfterSeconds: JOIN_RETRY_AFTER_SECONDS },
      );
    }
    this.joinsInFlight++;
    try {
      return await this.joinNow(request, from);
    } finally {
      this.joinsInFlight--;
    }
  }

  private async joinNow(request: JoinRequest, from: { address: string }): Promise<JoinResponse> {
    const { store } = this.ctx;
    if (typeof request.joinToken !== 'string' || request.joinToken.length < 8) {
      throw new UpshiftError(ErrorCode.UNAUTHENTICATED, 'a join token is required', { details: { reason: 'missing' } });
    }
    const tokenHash = hashSecret(request.joinToken);
    const token = await store.agents.findJoinToken(tokenHash, this.nowIso());
    const cluster = token ? await store.clusters.get(token.clusterId) : undefined;
    if (!token || !cluster) {
      throw new UpshiftError(
        ErrorCode.UNAUTHENTICATED,
        'the join token is unknown to this server: ask an administrator for a new one (upshift cluster join-token CLUSTER)',
        { details: { reason: 'unknown' } },
      );
    }
    const secret = request.joinSecret;
    if (secret !== undefined && (typeof secret !== 'string' || !JOIN_SECRET_PATTERN.test(secret))) {
      throw invalid('joinSecret must be upjs_ and 20 to 100 letters, digits, _ or -');
    }
    const secretHash = secret === undefined ? null : hashSecret(secret);
    // A single-use token spent by this very node may admit its retried join (checked below).
    if (token.state !== 'valid' && !(token.state === 'used' && secretHash !== null)) {
      throw tokenRefusal(token.state, cluster.name, token.expiresAt);
    }
    const name = validateName('node', request.name);
    const facts = checkFacts(request.facts);
    const credential = `upa_${randomBytes(32).toString('base64url')}`;
    const now = this.nowIso();
    const versions = reportedVersions({}, facts);
    const outcome = await store.tx(async (tx) => {
      await tx.clusters.lock(cluster.id);
      // One row by the (cluster, name) unique index: 1,000 agents joining must not read the
      // whole cluster 1,000 times.
      const existing = await tx.nodes.findByName(cluster.id, name);
      const held = existing ? await tx.agents.heldCredential(existing.id) : undefined;
      if (existing && held) {
        const tokenAdmits =
          token.state === 'valid' || (token.usedByNode === existing.id && (token.expiresAt === null || token.expiresAt > now));
        const retried =
          secretHash !== null &&
          held.joinSecretHash === secretHash &&
          held.usedAt === null &&
          tokenAdmits &&
          (await tx.agents.replaceUnusedCredential(existing.id, secretHash, hashSecret(credential)));
        if (!retried) {
          if (token.state !== 'valid') throw tokenRefusal(token.state, cluster.name, token.expiresAt);
          return { kind: 'taken' as const, node: existing };
        }
        await tx.agents.recordHeartbeat(existing.id, facts, reportedVersions(existing.versions, facts), now, facts.distribution ?? null);
        return { kind: 'rejoined' as const, nodeId: existing.id };
      }
      if (token.state !== 'valid') throw tokenRefusal(token.state, cluster.name, token.expiresAt);
      const active = await tx.upgrades.activeOf(cluster.id);
      if (!existing && active) {
        throw new UpshiftError(
          ErrorCode.UPGRADE_IN_PROGRESS,
          `cluster ${cluster.name} is being upgraded (upgrade ${active.id} is ${active.state}); a new node can join when it completes or is canceled`,
          { details: { cluster: cluster.name, upgradeId: active.id } },
        );
      }
      const id = existing?.id ?? newId('nd');
      // In this transaction: if the join fails after this, the token is not spent; if two
      // joins race with one token, the second finds it used and changes nothing.
      if (token.singleUse && !(await tx.agents.consumeJoinToken(tokenHash, now, id))) throw tokenRefusal('used', cluster.name, null);
      const origin = `agent ${facts.agentVersion || 'unknown'}, ${facts.os} ${facts.arch}, from ${from.address}`;
      if (!existing) {
        await tx.nodes.insert([
          {
            id,
            clusterId: cluster.id,
            name,
            role: 'worker',
            status: 'Ready',
            versions,
            distribution: facts.distribution ?? null,
            createdAt: now,
          },
        ]);
        await tx.events.append({
          type: EventType.clusterNodeAdded,
          actor: `agent:${name}`,
          clusterId: cluster.id,
          upgradeId: null,
          nodeId: id,
          message: `node ${name} joined ${cluster.name} (${origin})`,
          data: { address: from.address },
        });
      } else {
        await tx.events.append({
          type: EventType.agentJoined,
          actor: `agent:${name}`,
          clusterId: cluster.id,
          upgradeId: null,
          nodeId: id,
          message: `the agent of node ${name} joined ${cluster.name} and holds its credential now (${origin})`,
          data: { address: from.address },
        });
      }
      await tx.agents.recordHeartbeat(
        id,
        facts,
        existing ? reportedVersions(existing.versions, facts) : versions,
        now,
        facts.distribution ?? null,
      );
      await tx.agents.setCredential(id, hashSecret(credential), secretHash);
      return { kind: 'joined' as const, nodeId: id };
    });
    if (outcome.kind === 'taken') {
      await this.recordJoinRefusal(cluster, outcome.node, from.address);
      throw new UpshiftError(
        ErrorCode.NODE_NAME_TAKEN,
        `a node named ${name} already holds a credential in cluster ${cluster.name}: if this host replaces it, an admin runs \`upshift node reset ${cluster.name} ${name}\`; otherwise start the agent with --name OTHER`,
        { details: { cluster: cluster.name, node: name } },
      );
    }
    const nodeId = outcome.nodeId;
    if (outcome.kind === 'rejoined') {
      this.ctx.log.info(
        { clusterId: cluster.id, nodeId, name, address: from.address },
        'agent joined again with its join secret before using its credential: credential replaced',
      );
    } else this.ctx.log.info({ clusterId: cluster.id, nodeId, name, address: from.address }, 'agent joined');
    return { nodeId, clusterId: cluster.id, clusterName: cluster.name, credential, heartbeatSeconds: this.ctx.heartbeatSeconds };
  }

  /**
   * Records a refused takeover: the node, the cluster and the client's address. A host
   * retrying in a loop yields one event a minute per node and address (with the count of
   * the attempts in between), not one row per request.
   */
  private async recordJoinRefusal(cluster: ClusterRecord, node: NodeRecord, address: string): Promise<void> {
    const key = `${cluster.id}\u0000${node.id}\u0000${address}`;
    const now = this.ctx.clock.now();
    const seen = this.joinRefusals.get(key);
    if (seen && now - seen.at < JOIN_REFUSAL_EVENT_WINDOW_MS) {
      seen.suppressed++;
      return;
    }
    this.joinRefusals.delete(key);
    if (this.joinRefusals.size >= JOIN_REFUSAL_KEYS_MAX) {
      const oldest = this.joinRefusals.keys().next();
      if (!oldest.done) this.joinRefusals.delete(oldest.value);
    }
    this.joinRefusals.set(key, { at: now, suppressed: 0 });
    const more = seen && seen.suppressed > 0 ? ` (${seen.suppressed} more attempts since the last event)` : '';
    this.ctx.log.warn({ clusterId: cluster.id, nodeId: node.id, name: node.name, address }, 'join under a taken node name refused');
    await this.ctx.store.events.append({
      type: EventType.agentJoinRefused,
      actor: `address:${address}`,
      clusterId: cluster.id,
      upgradeId: null,
      nodeId: node.id,
      message: `join as node ${node.name} of ${cluster.name} from ${address} refused: the node's agent holds a credential; an admin resets the node to let another host take its place${more}`,
      data: { node: node.name, cluster: cluster.name, address, ...(seen && seen.suppressed > 0 ? { suppressed: seen.suppressed } : {}) },
    });
  }

  /**
   * Revokes a node's credential at once (its agent gets 401 on its next call) and lets the
   * next join under the node's name claim it. Exactly one join: that join sets a new
   * credential, and every later one is refused again.
   *
   * A reset is allowed at any time, also while the node runs a task of an active upgrade:
   * it is what an operator does when a host is compromised or replaced, and that must not
   * wait for an upgrade to end. The node's unfinished tasks fail at once with step `reset`
   * (their outcome on the node is unknown), so the upgrade pauses as it does for any failed
   * node, and no task half-run by the old agent is handed to the host that joins next.
   */
  async resetNode(clusterId: string, nodeRef: string, actor: string): Promise<NodeReset> {
    const cluster = await this.clusterWithAgents(clusterId);
    const result = await this.ctx.store.tx(async (tx) => {
      await tx.clusters.lock(cluster.id);
      const byId = await tx.nodes.get(nodeRef);
      const node = byId?.clusterId === cluster.id ? byId : await tx.nodes.findByName(cluster.id, nodeRef);
      if (!node) throw notFound('node', nodeRef);
      const revokedCredentials = await tx.agents.revokeCredentials(node.id);
      const failedTasks: string[] = [];
      for (const task of await tx.agents.unfinishedTasks(node.id)) {
        const failed: TaskResultRequest = {
          result: 'failed',
          step: 'reset',
          error: `the node's credential was reset by ${actor} during this task: its agent is locked out and what the task did on the node is unknown. Check the node, then resume to run the task again`,
        };
        if (await tx.agents.finishTask(task.taskKey, node.id, 'failed', failed)) failedTasks.push(task.taskKey);
      }
      await tx.events.append({
        type: EventType.nodeCredentialReset,
        actor,
        clusterId: cluster.id,
        upgradeId: null,
        nodeId: node.id,
        message:
          `node ${node.name} of ${cluster.name} reset by ${actor}: ` +
          (revokedCredentials > 0 ? 'its agent is locked out; ' : 'its agent held no credential; ') +
          `the next join as ${node.name} claims the node` +
          (failedTasks.length > 0 ? `; its unfinished task${failedTasks.length === 1 ? '' : 's'} ${failedTasks.join(', ')} failed` : ''),
        data: { revokedCredentials, failedTasks },
      });
      return { node, revokedCredentials, failedTasks };
    });
    for (const key of result.failedTasks) this.ctx.signals.emit(`finished:${key}`);
    this.ctx.log.info({ clusterId: cluster.id, nodeId: result.node.id, actor }, 'node credential reset');
    return { ...result, clusterName: cluster.name };
  }

  /**
   * The node a credential belongs to, or undefined. Its first use is recorded: from then
   * on no join replaces it, whatever join secret it presents (docs/design.md §9).
   */
  async authenticate(header: string | undefined): Promise<NodeRecord | undefined> {
    const credential = header ? (/^Bearer\s+(upa_[A-Za-z0-9_-]{20,100})\s*$/.exec(header)?.[1] ?? basicCredential(header)) : undefined;
    if (!credential) return undefined;
    const tokenHash = hashSecret(credential);
    const held = await this.ctx.store.agents.nodeOfCredential(tokenHash);
    if (!held) return undefined;
    if (held.firstUse && !(await this.ctx.store.agents.markCredentialUsed(tokenHash, this.nowIso()))) return undefined;
    return held.node;
  }
}

/**
 * The node credential as the password of HTTP basic authentication: how apt, which knows
 * no bearer tokens, reads the mirror's apt repository (routes/apt.ts). The login is not
 * checked; the credential alone names the node.
 */
function basicCredential(header: string): string | undefined {
  const b64 = /^Basic\s+([A-Za-z0-9+/=]{8,400})\s*$/i.exec(header)?.[1];
  if (!b64) return undefined;
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  return /^[^:]{0,100}:(upa_[A-Za-z0-9_-]{20,100})$/.exec(decoded)?.[1];
}

/** Why a known join token admits no join, in words that say what to do. */
function tokenRefusal(state: Exclude<JoinTokenState, 'valid'>, clusterName: string, expiresAt: string | null): UpshiftError {
  const why =
    state === 'expired'
      ? `expired at ${expiresAt}`
      : state === 'used'
        ? 'was for one join only and has been used'
        : 'was revoked by an administrator';
  return new UpshiftError(
    ErrorCode.UNAUTHENTICATED,
    `the join token of cluster ${clusterName} ${why}: ask an administrator for a new one (upshift cluster join-token ${clusterName})`,
    { details: { reason: state, cluster: clusterName } },
  );
}
