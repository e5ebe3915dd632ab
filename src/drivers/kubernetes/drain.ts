import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Clock } from '../../domain/ports.js';
import { sleep } from '../../domain/ports.js';
import type { KubeClient } from './client.js';
import { KubeCallError, apiStatus, describeKubeError, isNotFound, mergePatch, withDeadline } from './client.js';
import { Annotations, Labels, MANAGED_BY } from './manifests.js';

export interface DrainContext {
  client: KubeClient;
  clock: Clock;
  signal: AbortSignal;
  log(line: string): void;
  requestTimeoutMs: number;
  /** Pause between eviction attempts a PodDisruptionBudget refused (kubectl drain waits 5 s). */
  retryMs: number;
  /** Executor pods in this namespace are Upshift's own and are not evicted. */
  namespace: string;
}

/** Whether Upshift cordoned the node (and so is the one to uncordon it). */
export function cordonedByUpshift(node: V1Node): boolean {
  return node.metadata?.annotations?.[Annotations.cordonedBy] !== undefined;
}

/**
 * Marks the node unschedulable, with an annotation saying Upshift did it. A node an
 * operator had already cordoned is left as it is, and is not uncordoned afterwards.
 */
export async function cordon(ctx: DrainContext, node: V1Node, taskKey: string): Promise<boolean> {
  const name = node.metadata?.name ?? '';
  if (cordonedByUpshift(node)) return true;
  if (node.spec?.unschedulable) {
    ctx.log(`node ${name} was already cordoned by someone else; Upshift will leave it cordoned afterwards`);
    return false;
  }
  try {
    await withDeadline(
      ctx.client.core.patchNode(
        { name, body: { spec: { unschedulable: true }, metadata: { annotations: { [Annotations.cordonedBy]: taskKey } } } },
        mergePatch,
      ),
      ctx.requestTimeoutMs,
      `cordoning node ${name}`,
      ctx.signal,
    );
  } catch (error) {
    throw new KubeCallError(`cordoning node ${name}`, error);
  }
  ctx.log(`cordoned node ${name}`);
  return true;
}

export async function uncordon(ctx: Omit<DrainContext, 'retryMs' | 'namespace'>, nodeName: string): Promise<void> {
  try {
    await withDeadline(
      ctx.client.core.patchNode(
        { name: nodeName, body: { spec: { unschedulable: false }, metadata: { annotations: { [Annotations.cordonedBy]: null } } } },
        mergePatch,
      ),
      ctx.requestTimeoutMs,
      `uncordoning node ${nodeName}`,
      ctx.signal,
    );
  } catch (error) {
    throw new KubeCallError(`uncordoning node ${nodeName}`, error);
  }
  ctx.log(`uncordoned node ${nodeName}`);
}

function podRef(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

/**
 * The pods a drain must evict, as `kubectl drain --ignore-daemonsets` chooses them:
 * finished pods, mirror (static) pods, DaemonSet pods and Upshift's own executor pods
 * stay. A pod that no controller owns would be lost for good, so its presence refuses
 * the drain, as kubectl does without `--force`.
 */
export function podsToEvict(pods: V1Pod[], namespace: string): { evict: V1Pod[]; unmanaged: V1Pod[] } {
  const evict: V1Pod[] = [];
  const unmanaged: V1Pod[] = [];
  for (const pod of pods) {
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    if (pod.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined) continue;
    if (pod.metadata?.namespace === namespace && pod.metadata.labels?.[Labels.managedBy] === MANAGED_BY) continue;
    const controller = (pod.metadata?.ownerReferences ?? []).find((o) => o.controller === true);
    if (controller?.kind === 'DaemonSet') continue;
    if (!controller) unmanaged.push(pod);
    else evict.push(pod);
  }
  return { evict, unmanaged };
}

/**
 * Evicts the node's pods through the Eviction API, so PodDisruptionBudgets are
 * respected: a 429 means a budget forbids it for now, and the eviction is retried
 * every `retryMs` until `timeoutMs` has passed. Returns an error message an operator
 * can act on, or undefined when the node is empty.
 */
export async function drain(ctx: DrainContext, nodeName: string, timeoutMs: number): Promise<string | undefined> {
  const deadline = ctx.clock.now() + timeoutMs;
  let pods: V1Pod[];
  try {
    const list = await withDeadline(
      ctx.client.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` }),
      ctx.requestTimeoutMs,
      `listing the pods of node ${nodeName}`,
      ctx.signal,
    );
    pods = list.items;
  } catch (error) {
    return `drain of node ${nodeName}: ${new KubeCallError('listing its pods', error).message}`;
  }
  const { evict, unmanaged } = podsToEvict(pods, ctx.namespace);
  if (unmanaged.length > 0) {
    return (
      `drain of node ${nodeName} refused: ${unmanaged.map(podRef).join(', ')} ${unmanaged.length === 1 ? 'is' : 'are'} not managed by a ` +
      'controller and would be lost; move or delete them, or create the cluster with drain disabled'
    );
  }
  if (evict.length === 0) {
    ctx.log(`drain of node ${nodeName}: no pods to evict`);
    return undefined;
  }
  ctx.log(`draining node ${nodeName}: evicting ${evict.length} pod(s)`);
  const pending = new Map(evict.map((p) => [podRef(p), p]));
  const evicted = new Map<string, string | undefined>();
  const refusedOnce = new Set<string>();
  let lastRefusal = '';
  for (;;) {
    for (const [ref, pod] of pending) {
      if (evicted.has(ref)) continue;
      const name = pod.metadata?.name ?? '';
      const namespace = pod.metadata?.namespace ?? '';
      try {
        await withDeadline(
          ctx.client.core.createNamespacedPodEviction({
            name,
            namespace,
            body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } },
          }),
          ctx.requestTimeoutMs,
          `evicting pod ${ref}`,
          ctx.signal,
        );
        evicted.set(ref, pod.metadata?.uid);
        ctx.log(`evicted pod ${ref}`);
      } catch (error) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        if (isNotFound(error)) {
          pending.delete(ref);
          continue;
        }
        const status = apiStatus(error);
        lastRefusal = `${ref}: ${describeKubeError(error)}`;
        if (status?.code === 429 && !refusedOnce.has(ref)) {
          refusedOnce.add(ref);
          ctx.log(
            `eviction of pod ${ref} refused by a PodDisruptionBudget (${status.message ?? 'too many requests'}); ` +
              `retrying every ${Math.round(ctx.retryMs / 1000) || 1} s until the drain timeout`,
          );
        }
      }
    }
    for (const [ref, uid] of evicted) {
      const pod = pending.get(ref);
      if (!pod) continue;
      try {
        const current = await withDeadline(
          ctx.client.core.readNamespacedPod({ name: pod.metadata?.name ?? '', namespace: pod.metadata?.namespace ?? '' }),
          ctx.requestTimeoutMs,
          `reading pod ${ref}`,
          ctx.signal,
        );
        if (current.metadata?.uid !== uid) pending.delete(ref);
      } catch (error) {
        if (isNotFound(error)) pending.delete(ref);
        else if (ctx.signal.aborted) throw ctx.signal.reason;
      }
    }
    if (pending.size === 0) {
      ctx.log(`drained node ${nodeName}`);
      return undefined;
    }
    if (ctx.clock.now() >= deadline) {
      const stuck = [...pending.keys()].filter((ref) => !evicted.has(ref));
      return stuck.length > 0
        ? `drain of node ${nodeName} timed out after ${Math.round(timeoutMs / 1000)} s: ${stuck.join(', ')} could not be evicted (last refusal: ${lastRefusal}); ` +
            'check the PodDisruptionBudgets of those workloads, or raise drain.timeoutSeconds'
        : `drain of node ${nodeName} timed out after ${Math.round(timeoutMs / 1000)} s waiting for evicted pods to terminate: ${[...pending.keys()].join(', ')}`;
    }
    await sleep(ctx.clock, Math.min(ctx.retryMs, Math.max(0, deadline - ctx.clock.now())), ctx.signal);
  }
}
