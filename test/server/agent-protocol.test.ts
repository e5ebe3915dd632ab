import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, repoRoot, startServerProcess } from '../support/server.js';

/** One call of the agent protocol with a node credential, as an agent makes it. */
async function callAgent(s: ServerProcess, credential: string, path: string, body?: unknown) {
  const res = await fetch(`${s.url}/api/v1/agent${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${credential}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * The server's side of the agent protocol, spoken over HTTP as an agent would: join,
 * heartbeat, long-poll, logs, results, the artifact mirror and the membership lock.
 * (The real agent is exercised against real Docker hosts in test/hosts.)
 */
describe('agent protocol', () => {
  let s: ServerProcess;
  beforeAll(async () => {
    s = await startServerProcess();
  });
  afterAll(async () => {
    await s?.stop();
    s?.cleanup();
  });

  const facts = (docker: string, agent = '1.1.0') => ({
    hostname: 'h',
    os: 'linux',
    arch: 'x64',
    agentVersion: agent,
    versions: { docker, containerd: '1.6.20~ds1-1+deb12u3' },
    engineReachable: true,
  });
  const agentCall = (credential: string, path: string, body?: unknown) => callAgent(s, credential, path, body);

  it('joins, heartbeats, receives a docker task with a mirrored artifact, and completes the upgrade', async () => {
    const created = await s.api('/api/v1/clusters', { body: { name: 'hosts-a', kind: 'hosts' } });
    expect(created.status).toBe(201);
    expect(created.body.joinToken).toMatch(/^upj_/);
    expect(created.body.joinCommand).toContain('/install/agent.sh');
    expect(created.body.nodeCount).toBe(0);

    const badJoin = await fetch(`${s.url}/api/v1/agent/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ joinToken: 'upj_wrongwrongwrong', name: 'n1', facts: facts('20.10.24') }),
    });
    expect(badJoin.status).toBe(401);

    const join = async (name: string) => {
      const res = await fetch(`${s.url}/api/v1/agent/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ joinToken: created.body.joinToken, name, facts: facts('20.10.24+dfsg1'), protocol: 1 }),
      });
      return { status: res.status, body: (await res.json()) as { credential: string; nodeId: string; error?: { code: string } } };
    };
    const n1 = await join('node-1');
    expect(n1.status).toBe(201);
    expect(n1.body.credential).toMatch(/^upa_/);
    const n2 = await join('node-2');

    const nodes = (await s.api('/api/v1/clusters/hosts-a/nodes')).body.items;
    expect(nodes.map((n: { name: string }) => n.name)).toEqual(['node-1', 'node-2']);
    expect(nodes[0].versions).toMatchObject({ agent: '1.1.0', docker: '20.10.24+dfsg1' });
    expect((await agentCall(n1.body.credential, '/heartbeat', { facts: facts('20.10.24+dfsg1') })).status).toBe(200);
    // What alerting sees: both agents heard from, the oldest heartbeat a moment ago.
    const metrics = (await s.api('/metrics')).text;
    expect(metrics).toContain('upshift_agents_connected{cluster="hosts-a"} 2');
    expect(Number(/^upshift_agent_oldest_heartbeat_age_seconds\{cluster="hosts-a"\} (\S+)$/m.exec(metrics)?.[1])).toBeLessThan(30);
    expect((await agentCall('upa_not-a-real-credential-at-all', '/heartbeat', { facts: facts('x') })).status).toBe(401);
    expect((await agentCall(s.token, '/tasks')).status).toBe(401);

    const bytes = Buffer.from('pretend this is docker 26.1.5 binaries');
    const put = await fetch(`${s.url}/api/v1/artifacts/docker/26.1.5/docker-26.1.5.tar.gz`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(put.status).toBe(201);
    const sha = createHash('sha256').update(bytes).digest('hex');
    expect((await put.json()) as object).toMatchObject({ sha256: sha, method: 'binary', size: bytes.length });
    const notInCatalog = await fetch(`${s.url}/api/v1/artifacts/docker/99.0.0/x.tar.gz`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(notInCatalog.status).toBe(422);

    const start = await s.api('/api/v1/clusters/hosts-a/upgrades', { body: { component: 'docker', toVersion: '26.1.5' } });
    expect(start.status).toBe(201);
    const late = await join('node-3');
    expect(late.status).toBe(409);
    expect(late.body.error?.code).toBe('UPGRADE_IN_PROGRESS');

    const poll = await agentCall(n1.body.credential, '/tasks?waitSeconds=5');
    expect(poll.status).toBe(200);
    expect(poll.body.tasks).toHaveLength(1);
    const task = poll.body.tasks[0];
    expect(task.recipe).toBe('docker-engine');
    expect(task.params).toMatchObject({ component: 'docker', toVersion: '26.1.5', fromVersion: '20.10.24+dfsg1' });
    expect(task.params.artifacts[0]).toEqual({ method: 'binary', file: 'docker-26.1.5.tar.gz', sha256: sha });

    const download = await fetch(`${s.url}/api/v1/agent/artifacts/docker-26.1.5.tar.gz`, {
      headers: { authorization: `Bearer ${n1.body.credential}` },
    });
    expect(Buffer.from(await download.arrayBuffer()).equals(bytes)).toBe(true);
    expect((await fetch(`${s.url}/api/v1/agent/artifacts/docker-26.1.5.tar.gz`)).status).toBe(401);

    // node-2 cannot see or report node-1's task.
    expect((await agentCall(n2.body.credential, '/tasks')).body.tasks).toEqual([]);
    expect((await agentCall(n2.body.credential, `/tasks/${task.taskKey}/result`, { result: 'succeeded' })).status).toBe(404);

    expect(
      (await agentCall(n1.body.credential, `/tasks/${task.taskKey}/log`, { lines: ['stopping docker', 'installing 26.1.5'] })).status,
    ).toBe(204);
    expect(
      (await agentCall(n1.body.credential, `/tasks/${task.taskKey}/result`, { result: 'succeeded', versions: { docker: '26.1.5+dfsg1' } }))
        .status,
    ).toBe(204);
    // A second report of the same task changes nothing.
    expect((await agentCall(n1.body.credential, `/tasks/${task.taskKey}/result`, { result: 'failed', error: 'late' })).status).toBe(204);

    const second = await agentCall(n2.body.credential, '/tasks?waitSeconds=10');
    expect(second.body.tasks).toHaveLength(1);
    await agentCall(n2.body.credential, `/tasks/${second.body.tasks[0].taskKey}/result`, {
      result: 'failed',
      step: 'start',
      error: 'dockerd exited with status 1',
      rolledBack: true,
    });
    let upgrade;
    for (;;) {
      upgrade = (await s.api(`/api/v1/upgrades/${start.body.id}`)).body;
      if (upgrade.state === 'Paused') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(upgrade.pauseReason.message).toMatch(/node-2: start: dockerd exited with status 1; rolled back to 20.10.24\+dfsg1/);
    const tasks = (await s.api(`/api/v1/upgrades/${start.body.id}/nodes`)).body.items;
    const log = await s.api(`/api/v1/upgrades/${start.body.id}/nodes/${tasks[0].nodeId}/log`);
    expect(log.text).toMatch(/installing 26.1.5/);
    const after = (await s.api('/api/v1/clusters/hosts-a/nodes')).body.items;
    expect(after[0].versions.docker).toBe('26.1.5+dfsg1');

    await s.api(`/api/v1/upgrades/${start.body.id}/resume`, { method: 'POST' });
    const retry = await agentCall(n2.body.credential, '/tasks?waitSeconds=10');
    expect(retry.body.tasks[0].taskKey).not.toBe(second.body.tasks[0].taskKey);
    await agentCall(n2.body.credential, `/tasks/${retry.body.tasks[0].taskKey}/result`, {
      result: 'succeeded',
      versions: { docker: '26.1.5' },
    });
    for (;;) {
      upgrade = (await s.api(`/api/v1/upgrades/${start.body.id}`)).body;
      if (upgrade.state === 'Completed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(upgrade.nodes.succeeded).toBe(2);
  });

  it('hands out the agent executable the build recorded, and tells an agent that runs as a script how to move to it', async () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'dist/agent/upshift-agent-linux-x64.json'), 'utf8')) as {
      sha256: string;
      size: number;
      node: string;
    };
    expect(manifest.node).toMatch(/^v24\./);
    const created = await s.api('/api/v1/clusters', { body: { name: 'hosts-exe', kind: 'hosts' } });
    expect(created.body.agentSha256).toBe(manifest.sha256);
    expect(created.body.joinCommand).toContain(`--sha256 ${manifest.sha256}`);
    const joined = await fetch(`${s.url}/api/v1/agent/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ joinToken: created.body.joinToken, name: 'exe-1', facts: facts('20.10.24'), protocol: 1 }),
    });
    const { credential } = (await joined.json()) as { credential: string };
    const bundle = (query: string) => fetch(`${s.url}/api/v1/agent/bundle${query}`, { headers: { authorization: `Bearer ${credential}` } });

    // An agent from before the executable asks without a query: refused, with the way out.
    const legacy = await bundle('');
    expect(legacy.status).toBe(409);
    const text = await legacy.text();
    const refusal = (JSON.parse(text) as { error: { code: string; message: string } }).error;
    expect(refusal.code).toBe('AGENT_REINSTALL_NEEDED');
    expect(refusal.message).toContain('This agent runs as agent.js under Node.js, which cannot upgrade itself to the agent executable');
    // Such an agent reports the first 300 characters of the answer: the way out is in them.
    expect(text.slice(0, 300)).toContain(
      'reinstall the agent of node exe-1: run the join command of `upshift cluster join-token hosts-exe` on the host with --name exe-1',
    );

    const served = await bundle('?form=executable&arch=x64');
    expect(served.status).toBe(200);
    expect(served.headers.get('x-upshift-sha256')).toBe(manifest.sha256);
    const bytes = Buffer.from(await served.arrayBuffer());
    expect(bytes.length).toBe(manifest.size);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(manifest.sha256);
    const arm = await bundle('?form=executable&arch=arm64');
    expect(arm.status).toBe(404);
    expect(((await arm.json()) as { error: { message: string } }).error.message).toContain('linux-x64 only, not for linux-arm64');
    expect((await fetch(`${s.url}/api/v1/agent/bundle?form=executable`)).status).toBe(401);

    // The install downloads: public, with the same checksum.
    expect(await (await fetch(`${s.url}/install/upshift-agent-linux-x64.sha256`)).text()).toBe(`${manifest.sha256}\n`);
    const install = await fetch(`${s.url}/install/upshift-agent-linux-x64`);
    expect([install.status, install.headers.get('content-length'), install.headers.get('x-upshift-sha256')]).toEqual([
      200,
      String(manifest.size),
      manifest.sha256,
    ]);
    await install.body?.cancel();
    expect((await fetch(`${s.url}/install/upshift-agent-linux-arm64`)).status).toBe(404);
  });

  it('serves the install script without a token and refuses a forged Host header', async () => {
    const script = await fetch(`${s.url}/install/agent.sh`);
    expect(script.status).toBe(200);
    expect(await script.text()).toContain(`SERVER='${s.url}'`);
    // fetch will not forge a Host header; node:http will.
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${s.url}/install/agent.sh`);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, headers: { host: "evil'; rm -rf / #" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(400);
  });
});

/**
 * A node whose agent goes silent during its task (link cut, host down): with heartbeats
 * every second the task fails after three missed ones, the upgrade pauses with that
 * cause, and what the agent reports later is kept in the node's log.
 */
describe('an agent that goes silent during its task', () => {
  let s: ServerProcess;
  beforeAll(async () => {
    s = await startServerProcess({ args: ['--agent-heartbeat', '1s'] });
  });
  afterAll(async () => {
    await s?.stop();
    s?.cleanup();
  });

  const call = (credential: string, path: string, body?: unknown) => callAgent(s, credential, path, body);
  const facts = { hostname: 'h', os: 'linux', arch: 'x64', agentVersion: '1.1.0', versions: { docker: '20.10.24' } };

  it('fails the task as unreachable after three missed heartbeats and pauses the upgrade with that cause', async () => {
    const created = await s.api('/api/v1/clusters', { body: { name: 'silent', kind: 'hosts' } });
    const joined = await fetch(`${s.url}/api/v1/agent/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ joinToken: created.body.joinToken, name: 'quiet-1', facts, protocol: 1 }),
    });
    const { credential, heartbeatSeconds } = (await joined.json()) as { credential: string; heartbeatSeconds: number };
    expect(heartbeatSeconds).toBe(1);
    const put = await fetch(`${s.url}/api/v1/artifacts/docker/26.1.5/docker-26.1.5.tar.gz`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream' },
      body: Buffer.from('docker 26.1.5'),
    });
    expect(put.status).toBe(201);
    const start = await s.api('/api/v1/clusters/silent/upgrades', { body: { component: 'docker', toVersion: '26.1.5' } });
    expect(start.status).toBe(201);
    const delivered = await call(credential, '/tasks?waitSeconds=5');
    const task = delivered.body.tasks[0];
    expect(task.recipe).toBe('docker-engine');

    // From here the agent is silent. The task fails within a few seconds, not the 30 min task timeout.
    const t0 = Date.now();
    let upgrade;
    for (;;) {
      upgrade = (await s.api(`/api/v1/upgrades/${start.body.id}`)).body;
      if (upgrade.state !== 'Upgrading') break;
      if (Date.now() - t0 > 20_000) throw new Error('the silent node’s task did not end within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(upgrade.state).toBe('Paused');
    expect(upgrade.pauseReason.message).toMatch(
      /quiet-1: unreachable: node unreachable: no heartbeat from its agent for [3-9] s during the task/,
    );
    const nodeTask = (await s.api(`/api/v1/upgrades/${start.body.id}/nodes`)).body.items[0];
    expect(nodeTask.state).toBe('failed');

    // The link comes back: the agent reports what it did; the node's log keeps it, the
    // failed task stays failed, and the heartbeat tells the node's versions.
    expect((await call(credential, `/tasks/${task.taskKey}/result`, { result: 'succeeded', versions: { docker: '26.1.5' } })).status).toBe(
      204,
    );
    const log = await s.api(`/api/v1/upgrades/${start.body.id}/nodes/${nodeTask.nodeId}/log`);
    expect(log.text).toMatch(/late result from the agent: succeeded; the task had already ended: node unreachable/);
    expect((await s.api(`/api/v1/upgrades/${start.body.id}/nodes`)).body.items[0].state).toBe('failed');
    expect((await call(credential, '/heartbeat', { facts: { ...facts, versions: { docker: '26.1.5' } } })).status).toBe(200);

    // A resume runs the task again under a new key; the agent finds the work done.
    expect((await s.api(`/api/v1/upgrades/${start.body.id}/resume`, { method: 'POST' })).status).toBe(200);
    const again = await call(credential, '/tasks?waitSeconds=5');
    expect(again.body.tasks[0].taskKey).not.toBe(task.taskKey);
    await call(credential, `/tasks/${again.body.tasks[0].taskKey}/result`, { result: 'succeeded', versions: { docker: '26.1.5' } });
    for (;;) {
      upgrade = (await s.api(`/api/v1/upgrades/${start.body.id}`)).body;
      if (upgrade.state === 'Completed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(upgrade.nodes.succeeded).toBe(1);
  }, 40_000);
});
