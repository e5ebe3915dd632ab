import { errorMessage } from '../../domain/errors.js';
import type { Clock, TaskContext } from '../../domain/ports.js';
import { sleep } from '../../domain/ports.js';
import { isValidVersion, sameRelease } from '../../domain/versions.js';
import type { DockerApi } from '../../platform/docker-api.js';
import { DockerApiError } from '../../platform/docker-api.js';
import type { SwarmNode, SwarmNodeSpec, SwarmService, SwarmTask } from './swarm-api.js';
import { ACTIVE_TASK_STATES, Label, nodeName } from './swarm-api.js';

/** A node task that cannot go on, with the words an operator needs. */
export class SwarmStepError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
    this.name = 'SwarmStepError';
  }
}

/** A node this task drained, and the availability to give it back. */
export interface Drained {
  id: string;
  previous: SwarmNodeSpec['Availability'];
}

/**
 * The swarm's side of a node task, around the agent's recipe: the quorum check, the
 * drain, the wait for the node's tasks to move, the verify and the restore. Each reads
 * the swarm through its managers' Engine API, logs to the node task, and is safe to
 * repeat after a server restart (the drain label names the task key that set it).
 */
export class SwarmNodeSteps {
  constructor(
    private readonly api: DockerApi,
    private readonly clock: Clock,
    private readonly pollIntervalMs: number,
    private readonly ctx: TaskContext,
  ) {}

  async findNode(name: string): Promise<SwarmNode> {
    const nodes = await this.api.json<SwarmNode[]>('GET', '/nodes', { signal: this.ctx.signal });
    const node = nodes.find((n) => nodeName(n) === name);
    if (!node) {
      throw new SwarmStepError(
        'preflight',
        `node ${name} is not in the swarm (its managers list ${nodes.map(nodeName).join(', ')}); the node name must be the host's hostname`,
      );
    }
    return node;
  }

  /**
   * Refuses to restart a manager while another manager is out of the raft: one more loss
   * could cost the quorum. Right after a manager restarted, the others may show as
   * unknown until they report to the (new) leader, so this waits up to `timeoutSeconds`.
   */
  async checkQuorum(node: SwarmNode, timeoutSeconds: number): Promise<void> {
    const deadline = this.clock.now() + timeoutSeconds * 1000;
    for (;;) {
      let managers: SwarmNode[] | undefined;
      let problem: string;
      try {
        managers = (await this.api.json<SwarmNode[]>('GET', '/nodes', { signal: this.ctx.signal })).filter(
          (n) => n.Spec.Role === 'manager',
        );
        const others = managers.filter((n) => n.ID !== node.ID);
        const down = others.find((n) => n.ManagerStatus?.Reachability !== 'reachable' || n.Status.State !== 'ready');
        if (down === undefined) {
          this.ctx.log(
            `quorum: all ${others.length} other manager(s) reachable; ${others.length} of ${managers.length} stay up during the restart`,
          );
          return;
        }
        problem = `manager ${nodeName(down)} is ${down.ManagerStatus?.Reachability ?? 'unknown'} (state ${down.Status.State})`;
      } catch (error) {
        if (this.ctx.signal.aborted) throw error;
        problem = `the managers do not answer (${errorMessage(error)})`;
      }
      if (this.clock.now() >= deadline) {
        const total = managers?.length ?? 0;
        throw new SwarmStepError(
          'quorum',
          `${problem} for ${timeoutSeconds} s; restarting manager ${nodeName(node)} now could cost the swarm its quorum${total ? ` (${total} managers, ${Math.floor(total / 2) + 1} needed)` : ''}. Bring every manager back, then resume the upgrade`,
        );
      }
      await sleep(this.clock, this.pollIntervalMs, this.ctx.signal);
    }
  }

  private async updateNode(id: string, change: (spec: SwarmNodeSpec) => SwarmNodeSpec): Promise<void> {
    const signal = this.ctx.signal;
    for (let attempt = 0; ; attempt++) {
      const node = await this.api.json<SwarmNode>('GET', `/nodes/${encodeURIComponent(id)}`, { signal });
      try {
        await this.api.request('POST', `/nodes/${encodeURIComponent(id)}/update?version=${node.Version.Index}`, {
          body: change(node.Spec),
          signal,
        });
        return;
      } catch (error) {
        // "update out of sequence": someone else updated the node in between; read it again.
        if (!(error instanceof DockerApiError) || attempt >= 4 || !/out of sequence/i.test(error.message)) throw error;
      }
    }
  }

  async setDrain(node: SwarmNode, taskKey: string): Promise<Drained> {
    const labels = node.Spec.Labels ?? {};
    // A drain this task set before a server restart: its label holds the availability to restore.
    const ours = labels[Label.task] === taskKey;
    const previous = ours
      ? ((labels[Label.previousAvailability] as SwarmNodeSpec['Availability'] | undefined) ?? 'active')
      : node.Spec.Availability;
    if (!ours) {
      await this.updateNode(node.ID, (s) => ({
        ...s,
        Availability: 'drain',
        Labels: { ...(s.Labels ?? {}), [Label.task]: taskKey, [Label.previousAvailability]: previous },
      }));
      this.ctx.log(`drain: availability ${previous} → drain`);
    } else {
      this.ctx.log(`drain: the node was drained by this task before a restart (availability was ${previous})`);
    }
    return { id: node.ID, previous };
  }

  async waitMoved(id: string, timeoutSeconds: number): Promise<void> {
    const started = this.clock.now();
    const deadline = started + timeoutSeconds * 1000;
    const affected = new Set<string>();
    let lastReport = '';
    for (;;) {
      const [tasks, services] = await Promise.all([
        this.api.json<SwarmTask[]>('GET', `/tasks?filters=${encodeURIComponent(JSON.stringify({ node: [id] }))}`, {
          signal: this.ctx.signal,
        }),
        this.api.json<SwarmService[]>('GET', '/services', { signal: this.ctx.signal }),
      ]);
      const byId = new Map(services.map((s) => [s.ID, s]));
      const isGlobal = (t: SwarmTask) => {
        const mode = byId.get(t.ServiceID)?.Spec.Mode;
        return mode?.Global !== undefined || mode?.GlobalJob !== undefined;
      };
      const staying = tasks.filter((t) => ACTIVE_TASK_STATES.has(t.Status.State) && !isGlobal(t));
      for (const t of staying) affected.add(t.ServiceID);
      // Moved: nothing but global tasks left here, and the services that had a task here
      // run their replicas elsewhere again.
      const short = staying.length === 0 ? await this.servicesShort([...affected], byId) : [];
      if (staying.length === 0 && short.length === 0) {
        this.ctx.log(`drain: tasks moved after ${((this.clock.now() - started) / 1000).toFixed(1)} s`);
        return;
      }
      const report =
        staying.length > 0 ? `${staying.length} task(s) still on the node` : `waiting for ${short.join(', ')} to run elsewhere`;
      if (report !== lastReport) this.ctx.log(`drain: ${report}`);
      lastReport = report;
      if (this.clock.now() >= deadline) {
        if (staying.length > 0) {
          throw new SwarmStepError(
            'drain',
            `${staying.length} task(s) did not leave the node within ${timeoutSeconds} s (drain.timeoutSeconds); check placement constraints and free capacity on the other nodes`,
          );
        }
        this.ctx.log(
          `drain: after ${timeoutSeconds} s ${short.join(', ')} still short of replicas elsewhere; going on (the node's own tasks are gone)`,
        );
        return;
      }
      await sleep(this.clock, this.pollIntervalMs, this.ctx.signal);
    }
  }

  /** Replicated services among `ids` whose running tasks are fewer than their replicas. */
  private async servicesShort(ids: string[], byId: Map<string, SwarmService>): Promise<string[]> {
    const short: string[] = [];
    for (const id of ids) {
      const service = byId.get(id);
      const replicas = service?.Spec.Mode?.Replicated?.Replicas;
      if (service === undefined || replicas === undefined) continue;
      const tasks = await this.api.json<SwarmTask[]>(
        'GET',
        `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [id], 'desired-state': ['running'] }))}`,
        { signal: this.ctx.signal },
      );
      const running = tasks.filter((t) => t.Status.State === 'running').length;
      if (running < replicas) short.push(`${service.Spec.Name} (${running}/${replicas})`);
    }
    return short;
  }

  /** Polls the swarm until the node is Ready on Docker Engine `version` (and a manager is reachable again). */
  async verifyDockerVersion(id: string, version: string, timeoutSeconds: number): Promise<void> {
    const started = this.clock.now();
    const deadline = started + timeoutSeconds * 1000;
    let last = 'no answer from a manager yet';
    for (;;) {
      try {
        const node = await this.api.json<SwarmNode>('GET', `/nodes/${encodeURIComponent(id)}`, { signal: this.ctx.signal });
        const engine = node.Description?.Engine?.EngineVersion ?? 'unknown';
        const reachable = node.ManagerStatus === undefined || node.ManagerStatus.Reachability === 'reachable';
        if (node.Status.State === 'ready' && reachable && isValidVersion(engine) && sameRelease(engine, version)) {
          this.ctx.log(
            `verify: the swarm reports ${nodeName(node)} ready on Docker Engine ${engine}${node.ManagerStatus ? ' and reachable as a manager' : ''} (${((this.clock.now() - started) / 1000).toFixed(1)} s)`,
          );
          return;
        }
        last = `state ${node.Status.State}, engine ${engine}${node.ManagerStatus ? `, manager ${node.ManagerStatus.Reachability}` : ''}`;
      } catch (error) {
        if (this.ctx.signal.aborted) throw error;
        last = errorMessage(error);
      }
      if (this.clock.now() >= deadline) {
        throw new SwarmStepError('verify', `the swarm does not report the node ready on ${version} after ${timeoutSeconds} s (${last})`);
      }
      await sleep(this.clock, this.pollIntervalMs, this.ctx.signal);
    }
  }

  async restore({ id, previous }: Drained): Promise<void> {
    await this.updateNode(id, (s) => {
      const labels = { ...(s.Labels ?? {}) };
      delete labels[Label.task];
      delete labels[Label.previousAvailability];
      return { ...s, Availability: previous, Labels: labels };
    });
    this.ctx.log(`restore: availability drain → ${previous}`);
  }

  /**
   * After a failed agent task: back to the previous availability if the node's engine is
   * healthy, else left drained. Resolves true when the node stays drained.
   */
  async restoreAfterFailure(drained: Drained): Promise<boolean> {
    try {
      const node = await this.api.json<SwarmNode>('GET', `/nodes/${encodeURIComponent(drained.id)}`, { signal: this.ctx.signal });
      if (node.Status.State === 'ready') {
        await this.restore(drained);
        return false;
      }
      this.ctx.log(
        `the node stays drained (its state is ${node.Status.State}); set its availability back to ${drained.previous} once it is healthy`,
      );
    } catch (error) {
      if (this.ctx.signal.aborted) throw error;
      this.ctx.log(`the node stays drained: ${errorMessage(error)}`);
    }
    return true;
  }
}
