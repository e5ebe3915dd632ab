import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { componentDisplayName } from '../../domain/components.js';
import type { Clock, NodeTaskOutcome, NodeTaskSpec, TaskContext } from '../../domain/ports.js';
import { sleep } from '../../domain/ports.js';
import { sameRelease } from '../../domain/versions.js';
import type { KubeClient } from './client.js';
import { KubeCallError, describeKubeError, isConflict, isNotFound, withDeadline } from './client.js';
import type { KubernetesClusterConfig } from './config.js';
import { cordon, cordonedByUpshift, drain, uncordon } from './drain.js';
import {
  EXECUTOR_CONTAINER,
  Labels,
  executorPodManifest,
  executorPodName,
  imageArtifact,
  labelSafe,
  missingImageMessage,
  namespaceManifest,
} from './manifests.js';
import { nodeVersions } from './nodes.js';
import { LogFollower } from './pod-log.js';

export interface ExecutorTuning {
  clock: Clock;
  /** Between reads of the pod's phase and of the node's reported version. */
  pollIntervalMs: number;
  drainRetryMs: number;
  requestTimeoutMs: number;
  /**
   * Beyond the pod's own deadline (and the drain's), how long the driver waits for a
   * pod whose kubelet reports nothing (a node that went away) before giving up on it.
   */
  stuckGraceMs: number;
  /** How long, after the pod ended, the log stream may take to deliver its tail. */
  logTailMs: number;
}

/** Creates the namespace unless it exists; never changes an existing one (it may be the operator's). */
export async function ensureNamespace(client: KubeClient, name: string, requestTimeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  try {
    await withDeadline(client.core.readNamespace({ name }), requestTimeoutMs, `reading namespace ${name}`, signal);
    return false;
  } catch (error) {
    if (!isNotFound(error)) throw new KubeCallError(`reading namespace ${name}`, error);
  }
  try {
    await withDeadline(
      client.core.createNamespace({ body: namespaceManifest(name) }),
      requestTimeoutMs,
      `creating namespace ${name}`,
      signal,
    );
    return true;
  } catch (error) {
    if (isConflict(error)) return false;
    throw new KubeCallError(`creating namespace ${name}`, error);
  }
}

function phaseLine(pod: V1Pod): string {
  const phase = pod.status?.phase ?? 'Pending';
  const state = pod.status?.containerStatuses?.find((c) => c.name === EXECUTOR_CONTAINER)?.state;
  const waiting = state?.waiting;
  const reason = waiting?.reason ?? (phase === 'Pending' ? pod.status?.conditions?.find((c) => c.status === 'False')?.reason : undefined);
  const message = waiting?.message;
  return `${phase}${reason ? ` (${reason}${message ? `: ${message}` : ''})` : ''}`;
}

function failureOf(pod: V1Pod, tail: string[], config: KubernetesClusterConfig): string {
  const terminated = pod.status?.containerStatuses?.find((c) => c.name === EXECUTOR_CONTAINER)?.state?.terminated;
  const parts: string[] = [];
  if (pod.status?.reason === 'DeadlineExceeded') {
    parts.push(`it ran longer than taskTimeoutSeconds (${config.taskTimeoutSeconds} s) and the kubelet stopped it`);
  } else if (terminated) {
    parts.push(`the installer exited with code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}`);
    if (terminated.message) parts.push(terminated.message.trim());
  } else if (pod.status?.reason || pod.status?.message) {
    parts.push(`${pod.status.reason ?? ''}${pod.status.message ? `: ${pod.status.message}` : ''}`.replace(/^: /, ''));
  }
  const last = tail.filter((l) => l.trim().length > 0).slice(-1)[0];
  if (last && !parts.some((p) => p.includes(last))) parts.push(`last log line: ${last}`);
  return parts.join('; ');
}

/**
 * One node task on a Kubernetes node: find or create the executor pod (named after the
 * task key, so a restarted server reattaches instead of starting the work twice),
 * optionally cordon and drain first, follow the pod's phase and log, then verify the
 * result from what the node itself reports. Failed pods stay for troubleshooting;
 * succeeded pods are deleted. Only the pod named after this task is ever touched.
 */
export class ExecutorRun {
  private readonly podName: string;
  private readonly namespace: string;

  constructor(
    private readonly client: KubeClient,
    private readonly config: KubernetesClusterConfig,
    private readonly spec: NodeTaskSpec,
    private readonly ctx: TaskContext,
    private readonly tuning: ExecutorTuning,
  ) {
    this.podName = executorPodName(spec.taskKey);
    this.namespace = config.namespace;
  }

  private get ref(): string {
    return `${this.namespace}/${this.podName}`;
  }

  private call<T>(promise: Promise<T>, what: string): Promise<T> {
    return withDeadline(promise, this.tuning.requestTimeoutMs, what, this.ctx.signal).catch((error: unknown) => {
      if (this.ctx.signal.aborted) throw this.ctx.signal.reason;
      throw new KubeCallError(what, error);
    });
  }

  private async readPod(): Promise<V1Pod | undefined> {
    try {
      return await withDeadline(
        this.client.core.readNamespacedPod({ name: this.podName, namespace: this.namespace }),
        this.tuning.requestTimeoutMs,
        `reading pod ${this.ref}`,
        this.ctx.signal,
      );
    } catch (error) {
      if (this.ctx.signal.aborted) throw this.ctx.signal.reason;
      if (isNotFound(error)) return undefined;
      throw new KubeCallError(`reading pod ${this.ref}`, error);
    }
  }

  private async readNode(): Promise<V1Node | undefined> {
    const name = this.spec.node.name;
    try {
      return await withDeadline(this.client.core.readNode({ name }), this.tuning.requestTimeoutMs, `reading node ${name}`, this.ctx.signal);
    } catch (error) {
      if (this.ctx.signal.aborted) throw this.ctx.signal.reason;
      if (isNotFound(error)) return undefined;
      throw new KubeCallError(`reading node ${name}`, error);
    }
  }

  private versionSource(node: V1Node): string {
    if (this.spec.component === 'sandboxed-runtime') {
      const value = node.metadata?.labels?.[this.config.runtimeLabel];
      return `label ${this.config.runtimeLabel}${value === undefined ? ' is not set' : `=${value}`}`;
    }
    return `status.nodeInfo.containerRuntimeVersion is ${JSON.stringify(node.status?.nodeInfo?.containerRuntimeVersion ?? '')}`;
  }

  private drainContext() {
    return {
      client: this.client,
      clock: this.tuning.clock,
      signal: this.ctx.signal,
      log: (line: string) => this.ctx.log(line),
      requestTimeoutMs: this.tuning.requestTimeoutMs,
      retryMs: this.tuning.drainRetryMs,
      namespace: this.namespace,
    };
  }

  async run(): Promise<NodeTaskOutcome> {
    const { spec, ctx } = this;
    const display = componentDisplayName[spec.component];
    const nodeName = spec.node.name;
    const artifact = imageArtifact(spec.catalog, spec.component, spec.toVersion);
    if (!artifact) return { result: 'failed', error: missingImageMessage(spec.component, spec.toVersion) };

    let pod = await this.readPod();
    if (pod && pod.metadata?.labels?.[Labels.taskKey] !== labelSafe(spec.taskKey)) {
      return {
        result: 'failed',
        error: `a pod named ${this.ref} exists that Upshift did not create for this task; Upshift does not touch it: rename or delete it, then resume`,
      };
    }
    let cordonedByUs = false;
    if (pod) {
      ctx.log(`reattached to executor pod ${this.ref} (${phaseLine(pod)})`);
      const node = await this.readNode();
      cordonedByUs = node !== undefined && cordonedByUpshift(node);
    } else {
      const node = await this.readNode();
      if (!node) return { result: 'failed', error: `node ${nodeName} no longer exists in the cluster` };
      const current = nodeVersions(node, this.config.runtimeLabel)[spec.component];
      if (current !== undefined && sameRelease(current, spec.toVersion)) {
        ctx.log(`node ${nodeName} already reports ${display} ${current}; nothing to do`);
        return { result: 'succeeded', versions: nodeVersions(node, this.config.runtimeLabel) };
      }
      if (await ensureNamespace(this.client, this.namespace, this.tuning.requestTimeoutMs, ctx.signal)) {
        ctx.log(`created namespace ${this.namespace}`);
      }
      if (this.config.drain.enabled) {
        const drainCtx = this.drainContext();
        cordonedByUs = await cordon(drainCtx, node, spec.taskKey);
        const problem = await drain(drainCtx, nodeName, this.config.drain.timeoutSeconds * 1000);
        if (problem) {
          ctx.log(`error: ${problem}`);
          if (cordonedByUs) await uncordon(drainCtx, nodeName);
          return {
            result: 'failed',
            error: `${problem}; the runtime was not touched${cordonedByUs ? ' and the node is uncordoned again' : ''}`,
          };
        }
      }
      const manifest = executorPodManifest({
        config: this.config,
        taskKey: spec.taskKey,
        upgradeId: spec.upgradeId,
        nodeId: spec.node.id,
        nodeName,
        nodeUid: node.metadata?.uid,
        component: spec.component,
        fromVersion: spec.fromVersion,
        toVersion: spec.toVersion,
        attempt: spec.attempt,
        artifact,
      });
      try {
        pod = await withDeadline(
          this.client.core.createNamespacedPod({ namespace: this.namespace, body: manifest }),
          this.tuning.requestTimeoutMs,
          `creating pod ${this.ref}`,
          ctx.signal,
        );
        ctx.log(`created executor pod ${this.ref} on node ${nodeName} (image ${artifact.image})`);
      } catch (error) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        pod = isConflict(error) ? await this.readPod() : undefined;
        if (!pod) {
          // Nothing ran on the node: give it back to the scheduler before reporting.
          if (cordonedByUs) await uncordon(this.drainContext(), nodeName).catch(() => undefined);
          throw new KubeCallError(`creating pod ${this.ref}`, error);
        }
        ctx.log(`executor pod ${this.ref} already existed; following it`);
      }
    }

    const ended = await this.follow(pod);
    if ('error' in ended) return { result: 'failed', error: ended.error };
    const final = ended.pod;
    if (final.status?.phase === 'Failed') {
      const why = failureOf(final, ended.tail, this.config);
      const cordonNote = cordonedByUs ? `; node ${nodeName} stays cordoned until the runtime works (kubectl uncordon ${nodeName})` : '';
      return {
        result: 'failed',
        error:
          `executor pod ${this.ref} failed${why ? `: ${why}` : ''}; the pod is left in place for troubleshooting ` +
          `(kubectl -n ${this.namespace} logs ${this.podName})${cordonNote}; resume with deleteFailedPods to retry`,
      };
    }
    return this.verify(cordonedByUs);
  }

  /** Waits for the pod to end, following its phase and log; gives up on a pod nobody reports on after its deadline. */
  private async follow(initial: V1Pod): Promise<{ pod: V1Pod; tail: string[] } | { error: string }> {
    const { ctx, tuning } = this;
    const started = Date.parse(this.spec.startedAt);
    const budget =
      this.config.taskTimeoutSeconds * 1000 +
      tuning.stuckGraceMs +
      (this.config.drain.enabled ? this.config.drain.timeoutSeconds * 1000 : 0);
    const deadline = (Number.isFinite(started) ? started : tuning.clock.now()) + budget;
    const logs = new LogFollower(this.client, this.namespace, this.podName, (line) => ctx.log(line), tuning.requestTimeoutMs);
    let pod: V1Pod | undefined = initial;
    let lastLine = '';
    let lastError = '';
    try {
      for (;;) {
        if (pod) {
          const line = phaseLine(pod);
          if (line !== lastLine) {
            ctx.log(`pod ${this.podName}: ${line}`);
            lastLine = line;
          }
          const phase = pod.status?.phase;
          if (phase === 'Running' || phase === 'Succeeded' || phase === 'Failed') await logs.follow();
          if (phase === 'Succeeded' || phase === 'Failed') {
            await logs.finish(tuning.clock, tuning.logTailMs);
            return { pod, tail: logs.tail };
          }
        }
        if (tuning.clock.now() >= deadline) {
          const where = pod ? `it is still ${phaseLine(pod)}` : `the API server did not answer (${lastError})`;
          let removed = '';
          try {
            await this.call(
              this.client.core.deleteNamespacedPod({ name: this.podName, namespace: this.namespace }),
              `deleting pod ${this.ref}`,
            );
            removed = '; the pod was deleted so that it cannot start later';
          } catch (error) {
            if (ctx.signal.aborted) throw ctx.signal.reason;
            removed = `; deleting the pod failed too (${describeKubeError(error)})`;
          }
          const message = `executor pod ${this.ref} did not finish within ${Math.round(budget / 1000)} s: ${where}; the node's kubelet may be down${removed}`;
          ctx.log(`error: ${message}`);
          return { error: message };
        }
        await sleep(tuning.clock, tuning.pollIntervalMs, ctx.signal);
        try {
          const next = await this.readPod();
          if (!next) {
            const message = `executor pod ${this.ref} was deleted by someone else before it finished; the outcome on node ${this.spec.node.name} is unknown`;
            ctx.log(`error: ${message}`);
            return { error: message };
          }
          pod = next;
          lastError = '';
        } catch (error) {
          if (ctx.signal.aborted) throw ctx.signal.reason;
          const message = describeKubeError(error);
          if (message !== lastError) ctx.log(`warning: ${message}; still waiting`);
          lastError = message;
        }
      }
    } finally {
      logs.close();
    }
  }

  /** After the pod succeeded: the node must report the target version; then the pod is deleted and the node uncordoned. */
  private async verify(cordonedByUs: boolean): Promise<NodeTaskOutcome> {
    const { spec, ctx, tuning } = this;
    const display = componentDisplayName[spec.component];
    const nodeName = spec.node.name;
    const deadline = tuning.clock.now() + this.config.verifyTimeoutSeconds * 1000;
    let verified: V1Node | undefined;
    while (!verified) {
      let node: V1Node | undefined;
      try {
        node = await this.readNode();
      } catch (error) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        ctx.log(`warning: ${describeKubeError(error)}; still verifying`);
      }
      const reported = node ? nodeVersions(node, this.config.runtimeLabel)[spec.component] : undefined;
      if (node && reported !== undefined && sameRelease(reported, spec.toVersion)) {
        ctx.log(`verified: node ${nodeName} reports ${display} ${reported}`);
        verified = node;
        break;
      }
      if (tuning.clock.now() >= deadline) {
        await this.deletePod('succeeded');
        const seen = node ? this.versionSource(node) : `node ${nodeName} could not be read`;
        return {
          result: 'failed',
          error:
            `executor pod ${this.ref} succeeded but node ${nodeName} does not report ${display} ${spec.toVersion} ` +
            `after ${this.config.verifyTimeoutSeconds} s (${seen}); check that the installer really installed it` +
            (spec.component === 'sandboxed-runtime' ? ` and that something sets the ${this.config.runtimeLabel} label` : ''),
        };
      }
      await sleep(tuning.clock, tuning.pollIntervalMs, ctx.signal);
    }
    await this.deletePod('succeeded');
    if (cordonedByUs) await uncordon(this.drainContext(), nodeName);
    return { result: 'succeeded', versions: nodeVersions(verified, this.config.runtimeLabel) };
  }

  private async deletePod(why: string): Promise<void> {
    try {
      await withDeadline(
        this.client.core.deleteNamespacedPod({ name: this.podName, namespace: this.namespace }),
        this.tuning.requestTimeoutMs,
        `deleting pod ${this.ref}`,
        this.ctx.signal,
      );
      this.ctx.log(`deleted ${why} executor pod ${this.ref}`);
    } catch (error) {
      if (this.ctx.signal.aborted) throw this.ctx.signal.reason;
      if (!isNotFound(error))
        this.ctx.log(`warning: the ${why} executor pod ${this.ref} could not be deleted: ${describeKubeError(error)}`);
    }
  }
}
