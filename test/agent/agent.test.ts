import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { silentAgentLogger } from '../../src/agent/log.js';
import type { AgentTask, TaskResultRequest } from '../../src/domain/agent-protocol.js';

/**
 * The agent against a small stand-in of the server's agent routes on loopback: join
 * retries while the cluster is being upgraded, a task runs once, an unacknowledged result
 * is reported again after a restart without running the task again.
 */
class FakeServer {
  joinRefusals = 0;
  resultFailures = 0;
  joins = 0;
  heartbeats: { agentVersion: string }[] = [];
  tasks: AgentTask[] = [];
  results = new Map<string, TaskResultRequest>();
  logs = new Map<string, string[]>();
  private server = http.createServer((req, res) => void this.handle(req, res));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body = '';
    for await (const c of req) body += c;
    const send = (status: number, value?: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(value === undefined ? '' : JSON.stringify(value));
    };
    const url = new URL(req.url ?? '/', this.url);
    if (url.pathname === '/api/v1/agent/join') {
      if (this.joinRefusals > 0) {
        this.joinRefusals--;
        return send(409, { error: { code: 'UPGRADE_IN_PROGRESS', message: 'cluster c is being upgraded' } });
      }
      this.joins++;
      return send(201, {
        nodeId: 'nd_1',
        clusterId: 'cl_1',
        clusterName: 'c',
        credential: 'upa_secret-credential-0123456789',
        heartbeatSeconds: 1,
      });
    }
    if (req.headers.authorization !== 'Bearer upa_secret-credential-0123456789')
      return send(401, { error: { code: 'UNAUTHENTICATED', message: 'no' } });
    if (url.pathname === '/api/v1/agent/heartbeat') {
      this.heartbeats.push((JSON.parse(body) as { facts: { agentVersion: string } }).facts);
      return send(200, { serverTime: new Date().toISOString(), heartbeatSeconds: 1 });
    }
    if (url.pathname === '/api/v1/agent/tasks') {
      const open = this.tasks.filter((t) => !this.results.has(t.taskKey));
      if (open.length === 0) await new Promise((r) => setTimeout(r, 200));
      return send(200, { tasks: open });
    }
    const m = /^\/api\/v1\/agent\/tasks\/([^/]+)\/(log|result)$/.exec(url.pathname);
    if (m?.[1] && m[2] === 'log') {
      const key = decodeURIComponent(m[1]);
      this.logs.set(key, [...(this.logs.get(key) ?? []), ...(JSON.parse(body) as { lines: string[] }).lines]);
      return send(204);
    }
    if (m?.[1] && m[2] === 'result') {
      if (this.resultFailures > 0) {
        this.resultFailures--;
        return send(503, { error: { code: 'INTERNAL', message: 'restarting' } });
      }
      if (!this.results.has(decodeURIComponent(m[1]))) this.results.set(decodeURIComponent(m[1]), JSON.parse(body) as TaskResultRequest);
      return send(204);
    }
    return send(404, { error: { code: 'NOT_FOUND', message: url.pathname } });
  }
}

const waitFor = async (what: string, ok: () => boolean, ms = 15_000) => {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('the agent against the protocol', () => {
  let dir: string;
  let server: FakeServer;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'upshift-agent-'));
    server = new FakeServer();
    await server.start();
  });
  afterEach(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const makeAgent = (version = '1.1.0') => {
    const counter = path.join(dir, 'runs');
    const config = parseAgentConfig(
      {
        dataDir: path.join(dir, 'data'),
        dockerSocket: path.join(dir, 'no-docker.sock'),
        snapshot: { provider: 'command', create: ['sh', '-c', `echo run >> ${counter}; echo "snap-$UPSHIFT_SNAPSHOT_LABEL"`] },
      },
      { server: server.url, joinToken: 'upj_token-0123456789', name: 'node-1' },
    );
    return { agent: new Agent({ config, version, logger: silentAgentLogger, agentFile: undefined, pollSeconds: 1 }), counter };
  };

  it('retries the join while the cluster is upgraded, stores the credential privately and heartbeats its facts', async () => {
    server.joinRefusals = 2;
    const { agent } = makeAgent();
    const running = agent.run();
    await waitFor('a heartbeat', () => server.heartbeats.length > 0);
    agent.stop();
    expect(await running).toBe('stopped');
    expect(server.joins).toBe(1);
    expect(server.heartbeats[0]?.agentVersion).toBe('1.1.0');
    const credFile = path.join(dir, 'data', 'credential.json');
    expect((await stat(credFile)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(credFile, 'utf8')).credential).toBe('upa_secret-credential-0123456789');
  }, 30_000);

  it('runs a task once; after a restart an unacknowledged result is reported again, not re-run', async () => {
    server.tasks.push({ taskKey: 'snapshot.s1', recipe: 'snapshot', params: { label: 'upshift-u1' }, createdAt: new Date().toISOString() });
    // The first result reports fail (the server is restarting) more often than the agent retries.
    server.resultFailures = 100;
    const first = makeAgent();
    const running = first.agent.run();
    await waitFor(
      'the snapshot to run',
      () => server.logs.get('snapshot.s1')?.some((l) => l.includes('snapshot snap-upshift-u1 taken')) ?? false,
    );
    await new Promise((r) => setTimeout(r, 300));
    first.agent.stop();
    await running;
    expect(server.results.size).toBe(0);
    expect((await readFile(first.counter, 'utf8')).trim().split('\n')).toHaveLength(1);

    server.resultFailures = 0;
    const second = makeAgent();
    const again = second.agent.run();
    await waitFor('the result', () => server.results.has('snapshot.s1'));
    second.agent.stop();
    await again;
    expect(server.results.get('snapshot.s1')).toMatchObject({ result: 'succeeded', ref: 'snap-upshift-u1' });
    // The same credential was reused, and the snapshot ran exactly once.
    expect(server.joins).toBe(1);
    expect((await readFile(first.counter, 'utf8')).trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it('refuses a recipe it does not ship and parameters it cannot use', async () => {
    server.tasks.push(
      { taskKey: 'x.1', recipe: 'run-shell' as AgentTask['recipe'], params: { label: 'a' }, createdAt: '' },
      {
        taskKey: 'x.2',
        recipe: 'docker-engine',
        params: { component: 'docker', fromVersion: null, toVersion: '1; reboot', artifacts: [] },
        createdAt: '',
      },
    );
    const { agent } = makeAgent();
    const running = agent.run();
    await waitFor('both results', () => server.results.size === 2);
    agent.stop();
    await running;
    expect(server.results.get('x.1')).toMatchObject({ result: 'failed', step: 'preflight' });
    expect(server.results.get('x.1')?.error).toMatch(/unknown recipe "run-shell"/);
    expect(server.results.get('x.2')).toMatchObject({ result: 'failed', step: 'preflight' });
    expect(server.results.get('x.2')?.error).toMatch(/toVersion is not a valid version/);
  }, 30_000);
});
