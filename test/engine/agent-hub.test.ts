import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentFacts } from '../../src/domain/agent-protocol.js';
import type { NodeRecord } from '../../src/domain/model.js';
import type { AgentTaskRequest } from '../../src/domain/ports.js';
import { AgentHub } from '../../src/engine/agents/index.js';
import { openStoreAdapter } from '../../src/store/dialect.js';
import { Store } from '../../src/store/store.js';
import { JumpClock } from '../support/clock.js';
import { dialects } from '../support/databases.js';
import { type TestStore, addCluster, addNodes, openTestStore } from '../support/store.js';

const facts: AgentFacts = {
  hostname: 'h',
  os: 'linux',
  arch: 'x64',
  agentVersion: '1.1.0',
  versions: { docker: '20.10.24' },
  engineReachable: true,
};

const task = (node: NodeRecord, key: string): AgentTaskRequest => ({
  taskKey: key,
  nodeId: node.id,
  upgradeId: null,
  nodeTaskId: null,
  recipe: 'docker-engine',
  params: { component: 'docker', fromVersion: '20.10.24', toVersion: '26.1.5', artifacts: [] },
});

/**
 * The agent hub on the database (SQLite and PostgreSQL): heartbeats that change nothing
 * wait in memory and are written together, silent nodes go Down, results are answered
 * only once committed, and a long poll is handed its task as soon as it is queued, also
 * by another replica.
 */
describe.each(dialects)('agent hub on %s', (dialect) => {
  let db: TestStore;
  /** Another connection to the same database: what another replica, or a restarted server, reads. */
  let other: Store;
  beforeAll(async () => {
    db = await openTestStore(dialect);
    other = new Store(openStoreAdapter(db.database));
  });
  afterAll(async () => {
    await other?.adapter.close();
    await db?.close();
  });

  const fresh = async (node: NodeRecord) => (await db.store.nodes.get(node.id)) as NodeRecord;

  it('keeps a node alive across a flush, writing its unchanged heartbeats together and not one by one', async () => {
    const clock = new JumpClock();
    const hub = new AgentHub({ store: db.store, clock, heartbeatSeconds: 10 });
    const c = await addCluster(db.store, 'beats');
    const [n] = await addNodes(db.store, c.id, ['b1']);
    const first = await hub.heartbeat(await fresh(n!), facts);
    expect(first).toMatchObject({ heartbeatSeconds: 10, pollSeconds: 50 });
    // The first heartbeat brings news (the agent's version): written at once.
    expect(await other.agents.lastSeen(n!.id)).toBe(first.serverTime);
    expect((await other.nodes.get(n!.id))?.versions).toEqual({ docker: '20.10.24', agent: '1.1.0' });

    clock.advance(15_000);
    const second = await hub.heartbeat(await fresh(n!), facts);
    // Nothing changed: the database still says the first time…
    expect(await other.agents.lastSeen(n!.id)).toBe(first.serverTime);
    clock.advance(20_000);
    // …until the sweep writes what it heard; 20 s after the last heartbeat the node is not Down.
    await hub.sweepSilentNodes();
    expect(await other.agents.lastSeen(n!.id)).toBe(second.serverTime);
    expect((await other.nodes.get(n!.id))?.status).toBe('Ready');

    // A heartbeat with news is written before it is answered.
    const upgraded = await hub.heartbeat(await fresh(n!), { ...facts, versions: { docker: '26.1.5' } });
    expect(await other.agents.lastSeen(n!.id)).toBe(upgraded.serverTime);
    expect((await other.nodes.get(n!.id))?.versions).toEqual({ docker: '26.1.5', agent: '1.1.0' });
    await hub.stop();
  });

  it('marks a node Down once its agent missed three heartbeats, and Ready again at its next task poll', async () => {
    const clock = new JumpClock();
    const hub = new AgentHub({ store: db.store, clock, heartbeatSeconds: 10 });
    const c = await addCluster(db.store, 'silent');
    const [quiet, alive] = await addNodes(db.store, c.id, ['s1', 's2']);
    await hub.heartbeat(await fresh(quiet!), facts);
    await hub.heartbeat(await fresh(alive!), facts);
    clock.advance(20_000);
    // A task poll stands for a heartbeat.
    await hub.poll(await fresh(alive!), 0, new AbortController().signal);
    clock.advance(15_000);
    await hub.sweepSilentNodes();
    expect((await other.nodes.get(quiet!.id))?.status).toBe('Down');
    expect((await other.nodes.get(alive!.id))?.status).toBe('Ready');
    const down = await other.events.list({ clusterId: c.id, type: 'node.down', limit: 10 });
    expect(down.map((e) => e.nodeId)).toEqual([quiet!.id]);

    await hub.poll(await fresh(quiet!), 0, new AbortController().signal);
    expect((await other.nodes.get(quiet!.id))?.status).toBe('Ready');
    await hub.stop();
  });

  it('ends the idle polls due in one second together, on the whole second, never after the wait they asked for', async () => {
    const hub = new AgentHub({ store: db.store, clock: new JumpClock(), heartbeatSeconds: 10 });
    const c = await addCluster(db.store, 'ticks');
    const nodes = await addNodes(db.store, c.id, ['t1', 't2', 't3', 't4']);
    const records = await Promise.all(nodes.map(fresh));
    // Started over 300 ms early in a second, so that all four are due in the same later second.
    while (Date.now() % 1000 > 100) await new Promise((r) => setTimeout(r, 10));
    const abort = new AbortController();
    const polls = records.map(async (n, i) => {
      await new Promise((r) => setTimeout(r, i * 100));
      const startedAt = Date.now();
      const tasks = await hub.poll(n, 3, abort.signal);
      return { startedAt, endedAt: Date.now(), tasks };
    });
    const ended = await Promise.all(polls);
    const second = Math.floor((ended[0]!.startedAt + 3000) / 1000) * 1000;
    for (const p of ended) {
      expect(p.tasks).toEqual([]);
      expect(p.endedAt).toBeGreaterThanOrEqual(second);
      expect(p.endedAt, 'not after the 3 s asked for').toBeLessThanOrEqual(p.startedAt + 3000 + 50);
    }
    const ends = ended.map((p) => p.endedAt);
    expect(Math.max(...ends) - Math.min(...ends), 'ms between the first and last end').toBeLessThan(20);
  });

  it('keeps a node heard while its agent holds a task poll open, and counts silence from the poll’s end', async () => {
    const clock = new JumpClock();
    const hub = new AgentHub({ store: db.store, clock, heartbeatSeconds: 10 });
    const c = await addCluster(db.store, 'held');
    const nodes = await addNodes(
      db.store,
      c.id,
      Array.from({ length: 25 }, (_, i) => `h${i + 1}`),
    );
    for (const n of nodes) await hub.heartbeat(await fresh(n), facts);
    const abort = new AbortController();
    // Polls that wait long (the test ends them): an idle agent's usual state. Each is open
    // once `poll` is called (its node is Ready: nothing to write first).
    const records = await Promise.all(nodes.map(fresh));
    const polls = records.map((n) => hub.poll(n, 50, abort.signal));
    await new Promise((r) => setTimeout(r, 100));
    clock.advance(45_000);
    await hub.sweepSilentNodes();
    clock.advance(45_000);
    await hub.sweepSilentNodes();
    // 90 s without a heartbeat, yet never silent: each sweep wrote the time it heard them.
    for (const n of nodes) {
      expect((await other.nodes.get(n.id))?.status).toBe('Ready');
      expect(clock.now() - Date.parse((await other.agents.lastSeen(n.id)) ?? '')).toBeLessThan(5000);
    }
    abort.abort();
    expect(await Promise.all(polls)).toEqual(nodes.map(() => []));
    clock.advance(25_000);
    await hub.sweepSilentNodes();
    expect((await other.nodes.get(nodes[0]!.id))?.status).toBe('Ready');
    clock.advance(10_000);
    await hub.sweepSilentNodes();
    expect((await other.nodes.get(nodes[0]!.id))?.status).toBe('Down');
    await hub.stop();
  });

  it('counts a task’s log lines and its result as heartbeats, and says so, so that a working agent need not heartbeat', async () => {
    const clock = new JumpClock();
    const hub = new AgentHub({ store: db.store, clock, heartbeatSeconds: 10 });
    const c = await addCluster(db.store, 'talk');
    const [busy, quiet] = await addNodes(db.store, c.id, ['t1', 't2']);
    expect(await hub.heartbeat(await fresh(busy!), facts)).toMatchObject({ requestsCountAsHeartbeats: true });
    await hub.heartbeat(await fresh(quiet!), facts);
    const abort = new AbortController();
    const done = hub.runAgentTask(task(busy!, 'talk-1'), abort.signal);
    expect((await hub.poll(await fresh(busy!), 5, abort.signal)).map((t) => t.taskKey)).toEqual(['talk-1']);
    clock.advance(20_000);
    await hub.appendLog(await fresh(busy!), 'talk-1', ['still working']);
    clock.advance(15_000);
    await hub.sweepSilentNodes();
    // 35 s without a heartbeat from either: the one whose lines came 15 s ago is not silent.
    expect((await other.nodes.get(quiet!.id))?.status).toBe('Down');
    expect((await other.nodes.get(busy!.id))?.status).toBe('Ready');
    clock.advance(20_000);
    await hub.reportResult(await fresh(busy!), 'talk-1', { result: 'succeeded', versions: { docker: '26.1.5' } });
    expect(await done).toMatchObject({ result: 'succeeded' });
    clock.advance(15_000);
    await hub.sweepSilentNodes();
    expect((await other.nodes.get(busy!.id))?.status).toBe('Ready');
    // Silence is counted from the last request.
    clock.advance(20_000);
    await hub.sweepSilentNodes();
    expect((await other.nodes.get(busy!.id))?.status).toBe('Down');
    await hub.stop();
  });

  it('answers each result only once it is committed, many results in one transaction, and refuses a result for another node’s task', async () => {
    const clock = new JumpClock();
    const hub = new AgentHub({ store: db.store, clock, heartbeatSeconds: 10 });
    const c = await addCluster(db.store, 'results');
    const nodes = await addNodes(
      db.store,
      c.id,
      Array.from({ length: 20 }, (_, i) => `r${i + 1}`),
    );
    const abort = new AbortController();
    const waits = nodes.map((n) => hub.runAgentTask(task(n, `res-${n.name}`), abort.signal));
    const delivered = await Promise.all(nodes.map(async (n) => hub.poll(await fresh(n), 5, abort.signal)));
    expect(delivered.map((tasks) => tasks.map((t) => t.taskKey))).toEqual(nodes.map((n) => [`res-${n.name}`]));

    const checked = nodes.map((n) =>
      hub
        .reportResult(n, `res-${n.name}`, { result: 'succeeded', versions: { docker: '26.1.5' } })
        .then(() => other.agents.getTask(`res-${n.name}`)),
    );
    const foreign = hub.reportResult(nodes[1]!, `res-${nodes[0]!.name}`, { result: 'failed' }).then(
      () => 'accepted',
      (error: unknown) => error,
    );
    for (const seen of await Promise.all(checked)) expect(seen).toMatchObject({ state: 'succeeded', result: { result: 'succeeded' } });
    expect(await foreign).toMatchObject({ code: 'NOT_FOUND' });
    for (const result of await Promise.all(waits)) expect(result).toMatchObject({ result: 'succeeded', versions: { docker: '26.1.5' } });
    await hub.stop();
  });

  it('hands a waiting long poll its task as soon as it is queued', async () => {
    const hub = new AgentHub({ store: db.store, clock: new JumpClock(), heartbeatSeconds: 10 });
    const c = await addCluster(db.store, 'wake');
    const [n] = await addNodes(db.store, c.id, ['w1']);
    const abort = new AbortController();
    // The poll would wait 30 s; the test's own timeout is 10 s.
    const polled = hub.poll(await fresh(n!), 30, abort.signal);
    await new Promise((r) => setTimeout(r, 50));
    const done = hub.runAgentTask(task(n!, 'wake-1'), abort.signal);
    expect((await polled).map((t) => t.taskKey)).toEqual(['wake-1']);
    expect((await other.agents.getTask('wake-1'))?.state).toBe('delivered');
    await hub.reportResult(n!, 'wake-1', { result: 'succeeded', versions: { docker: '26.1.5' } });
    expect(await done).toMatchObject({ result: 'succeeded' });
    await hub.stop();
  }, 10_000);

  it('delivers an open task again to a restarted agent and through a restarted server, and nothing once it has its result', async () => {
    const abort = new AbortController();
    const c = await addCluster(db.store, 'again');
    const [n, quiet] = await addNodes(db.store, c.id, ['a1', 'a2']);
    const first = new AgentHub({ store: db.store, clock: new JumpClock(), heartbeatSeconds: 10 });
    // The server has polls to answer before any task is queued: the node with none learns nothing.
    expect(await first.poll(await fresh(quiet!), 0, abort.signal)).toEqual([]);
    const done = first.runAgentTask(task(n!, 'again-1'), abort.signal);
    await new Promise((r) => setTimeout(r, 50));
    expect((await first.poll(await fresh(n!), 0, abort.signal)).map((t) => t.taskKey)).toEqual(['again-1']);
    // The agent restarted before it ran the task: its next poll gets it again.
    expect((await first.poll(await fresh(n!), 0, abort.signal)).map((t) => t.taskKey)).toEqual(['again-1']);
    // A restarted server knows of the open task from the database alone.
    const restarted = new AgentHub({ store: db.store, clock: new JumpClock(), heartbeatSeconds: 10 });
    expect((await restarted.poll(await fresh(n!), 0, abort.signal)).map((t) => t.taskKey)).toEqual(['again-1']);
    expect(await restarted.poll(await fresh(quiet!), 0, abort.signal)).toEqual([]);
    await first.reportResult(n!, 'again-1', { result: 'succeeded', versions: { docker: '26.1.5' } });
    expect(await done).toMatchObject({ result: 'succeeded' });
    expect(await first.poll(await fresh(n!), 0, abort.signal)).toEqual([]);
    expect(await restarted.poll(await fresh(n!), 0, abort.signal)).toEqual([]);
    // A task queued after the node was forgotten is delivered as before.
    const next = first.runAgentTask(task(n!, 'again-2'), abort.signal);
    await new Promise((r) => setTimeout(r, 50));
    expect((await first.poll(await fresh(n!), 0, abort.signal)).map((t) => t.taskKey)).toEqual(['again-2']);
    await first.reportResult(n!, 'again-2', { result: 'succeeded', versions: { docker: '26.1.5' } });
    expect(await next).toMatchObject({ result: 'succeeded' });
    await first.stop();
    await restarted.stop();
  }, 10_000);

  it.runIf(dialect === 'postgres')(
    'wakes a long poll held by another replica, and the queuing replica hears of the result reported there',
    async () => {
      const a = new AgentHub({ store: db.store, clock: new JumpClock(), heartbeatSeconds: 10 });
      const b = new AgentHub({ store: other, clock: new JumpClock(), heartbeatSeconds: 10 });
      a.start();
      b.start();
      try {
        const c = await addCluster(db.store, 'replicas');
        const [n] = await addNodes(db.store, c.id, ['x1']);
        // Both replicas listen before anything is queued.
        await new Promise((r) => setTimeout(r, 500));
        const abort = new AbortController();
        const polled = b.poll(await fresh(n!), 30, abort.signal);
        await new Promise((r) => setTimeout(r, 50));
        const done = a.runAgentTask(task(n!, 'rep-1'), abort.signal);
        expect((await polled).map((t) => t.taskKey)).toEqual(['rep-1']);
        await b.reportResult(n!, 'rep-1', { result: 'succeeded', versions: { docker: '26.1.5' } });
        expect(await done).toMatchObject({ result: 'succeeded', versions: { docker: '26.1.5' } });
      } finally {
        await a.stop();
        await b.stop();
      }
    },
    10_000,
  );
});
