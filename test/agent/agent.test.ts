import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent, AgentFatalError } from '../../src/agent/agent.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { distributionOf, parseOsRelease } from '../../src/agent/facts.js';
import { silentAgentLogger } from '../../src/agent/log.js';
import type { AgentProgram } from '../../src/agent/program.js';
import { ServerClient } from '../../src/agent/client.js';
import { SCRIPT_AGENT_REFUSAL } from '../../src/agent/recipes/self-upgrade.js';
import { LOG_FLUSH_MS, TaskLogStream } from '../../src/agent/task-log.js';
import type { AgentTask, TaskResultRequest } from '../../src/domain/agent-protocol.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * The agent against a small stand-in of the server's agent routes on loopback: join
 * retries while the cluster is being upgraded, a task runs once, an unacknowledged result
 * is reported again after a restart without running the task again.
 */
class FakeServer {
  joinRefusals = 0;
  /** Every join is refused with this error (status, code, details), when set. */
  joinError: { status: number; code: string; details: Record<string, unknown> } | undefined;
  resultFailures = 0;
  /** Says it keeps log lines sent with a result, as servers since issue 17 do. */
  linesWithResult = false;
  /** Says it records facts sent with a result; with `refuseResultFacts` it answers them 422 as a server does bad facts. */
  factsWithResult = false;
  refuseResultFacts = false;
  /** Says it counts task polls, log lines and results as heartbeats (`requestsCountAsHeartbeats`). */
  countsRequests = false;
  resultAttempts: TaskResultRequest[] = [];
  joins = 0;
  joinAttempts = 0;
  /** Credentials the server accepts; clearing it is what an admin's reset does. */
  credentials = new Set<string>();
  heartbeats: { agentVersion: string; distribution?: string }[] = [];
  tasks: AgentTask[] = [];
  results = new Map<string, TaskResultRequest>();
  logs = new Map<string, string[]>();
  /** Each log request as it arrived: its task, its lines, when (ms). */
  logRequests: { key: string; lines: number; at: number }[] = [];
  /** What `/api/v1/agent/bundle` serves (the agent executable), and the query strings it was asked with. */
  bundle: Buffer | undefined;
  bundleQueries: string[] = [];
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
      this.joinAttempts++;
      if (this.joinError) {
        const { status, code, details } = this.joinError;
        return send(status, { error: { code, message: `refused (${code})`, details } });
      }
      if (this.joinRefusals > 0) {
        this.joinRefusals--;
        return send(409, {
          error: { code: 'UPGRADE_IN_PROGRESS', message: 'cluster c is being upgraded', details: { cluster: 'c', upgradeId: 'upg_1' } },
        });
      }
      this.joins++;
      const credential = this.joins === 1 ? 'upa_secret-credential-0123456789' : `upa_secret-credential-${this.joins}-0123456789`;
      this.credentials.add(credential);
      return send(201, { nodeId: 'nd_1', clusterId: 'cl_1', clusterName: 'c', credential, heartbeatSeconds: 1 });
    }
    const presented = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!presented || !this.credentials.has(presented)) return send(401, { error: { code: 'UNAUTHENTICATED', message: 'no' } });
    if (url.pathname === '/api/v1/agent/bundle' && this.bundle) {
      this.bundleQueries.push(url.search);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upshift-sha256': sha256(this.bundle) });
      res.end(this.bundle);
      return;
    }
    if (url.pathname === '/api/v1/agent/heartbeat') {
      this.heartbeats.push((JSON.parse(body) as { facts: { agentVersion: string; distribution?: string } }).facts);
      return send(200, {
        serverTime: new Date().toISOString(),
        heartbeatSeconds: 1,
        ...(this.linesWithResult ? { linesWithResult: true } : {}),
        ...(this.factsWithResult ? { factsWithResult: true } : {}),
        ...(this.countsRequests ? { requestsCountAsHeartbeats: true } : {}),
      });
    }
    if (url.pathname === '/api/v1/agent/tasks') {
      const open = this.tasks.filter((t) => !this.results.has(t.taskKey));
      if (open.length === 0) await new Promise((r) => setTimeout(r, 200));
      return send(200, { tasks: open });
    }
    const m = /^\/api\/v1\/agent\/tasks\/([^/]+)\/(log|result)$/.exec(url.pathname);
    if (m?.[1] && m[2] === 'log') {
      const key = decodeURIComponent(m[1]);
      const lines = (JSON.parse(body) as { lines: string[] }).lines;
      this.logRequests.push({ key, lines: lines.length, at: Date.now() });
      this.logs.set(key, [...(this.logs.get(key) ?? []), ...lines]);
      return send(204);
    }
    if (m?.[1] && m[2] === 'result') {
      if (this.resultFailures > 0) {
        this.resultFailures--;
        return send(503, { error: { code: 'INTERNAL', message: 'restarting' } });
      }
      const reported = JSON.parse(body) as TaskResultRequest;
      this.resultAttempts.push(reported);
      if (this.refuseResultFacts && reported.facts) return send(422, { error: { code: 'INVALID', message: 'facts.distribution is bad' } });
      if (!this.results.has(decodeURIComponent(m[1]))) this.results.set(decodeURIComponent(m[1]), reported);
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

  const makeAgent = (version = '1.1.0', options: { joinToken?: string; joinOnly?: boolean; program?: AgentProgram } = {}) => {
    const counter = path.join(dir, 'runs');
    const config = parseAgentConfig(
      {
        dataDir: path.join(dir, 'data'),
        dockerSocket: path.join(dir, 'no-docker.sock'),
        snapshot: { provider: 'command', create: ['sh', '-c', `echo run >> ${counter}; echo "snap-$UPSHIFT_SNAPSHOT_LABEL"`] },
      },
      { server: server.url, joinToken: options.joinToken ?? 'upj_token-0123456789', name: 'node-1' },
    );
    return {
      agent: new Agent({
        config,
        version,
        logger: silentAgentLogger,
        program: options.program,
        pollSeconds: 1,
        ...(options.joinOnly ? { joinOnly: true } : {}),
      }),
      counter,
    };
  };

  /** Queues a snapshot task under `key`, runs an agent until the server has its result, and stops it. */
  const runSnapshotTask = async (key: string) => {
    server.tasks.push({ taskKey: key, recipe: 'snapshot', params: { label: 'upshift-u1' }, createdAt: new Date().toISOString() });
    const { agent } = makeAgent();
    const running = agent.run();
    await waitFor('the result', () => server.results.has(key));
    agent.stop();
    await running;
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
    // The distribution of this machine, as the catalog names it (debian-12 on the CI hosts).
    const release = existsSync('/etc/os-release') ? distributionOf(parseOsRelease(await readFile('/etc/os-release', 'utf8'))) : undefined;
    expect(server.heartbeats[0]?.distribution).toBe(release);
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

  it('sends a task’s last log lines with its result to a server that keeps them, and in a log request to one that does not', async () => {
    for (const takes of [true, false]) {
      server.linesWithResult = takes;
      const key = `snapshot.${takes ? 'with' : 'apart'}`;
      await runSnapshotTask(key);
      const sentApart = server.logs.get(key) ?? [];
      const sentWith = server.results.get(key)?.log ?? [];
      expect([...sentApart, ...sentWith].some((l) => l.endsWith(' succeeded'))).toBe(true);
      expect(sentWith.some((l) => l.endsWith(' succeeded'))).toBe(takes);
      expect(sentApart.some((l) => l.endsWith(' succeeded'))).toBe(!takes);
    }
  }, 60_000);

  it('sends the lines a task writes within LOG_FLUSH_MS in one request, and a burst of 200 lines at once', async () => {
    const credential = 'upa_log-cadence-0123456789';
    server.credentials.add(credential);
    const client = new ServerClient(server.url);
    client.setCredential(credential);
    const stream = new TaskLogStream(client, 'snapshot.cadence', () => undefined);
    const first = Date.now();
    for (let i = 0; i < 5; i++) {
      stream.write(`step ${i}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor('the first log request', () => server.logRequests.length > 0);
    expect(server.logRequests).toEqual([{ key: 'snapshot.cadence', lines: 5, at: expect.any(Number) }]);
    // Timers never fire early: the lines waited the whole interval for one another.
    expect((server.logRequests[0]?.at ?? 0) - first).toBeGreaterThanOrEqual(LOG_FLUSH_MS - 5);

    const burst = Date.now();
    for (let i = 0; i < 200; i++) stream.write(`burst ${i}`);
    await waitFor('the burst', () => server.logRequests.length > 1);
    expect(server.logRequests[1]?.lines).toBe(200);
    expect((server.logRequests[1]?.at ?? 0) - burst).toBeLessThan(LOG_FLUSH_MS / 2);
    await stream.close();
    expect(server.logs.get('snapshot.cadence')?.map((l) => l.slice(13))).toEqual([
      ...Array.from({ length: 5 }, (_, i) => `step ${i}`),
      ...Array.from({ length: 200 }, (_, i) => `burst ${i}`),
    ]);
  });

  it('sends the host’s facts with a result to a server that records them, and the result alone when they are refused', async () => {
    for (const [takes, refuses] of [
      [true, false],
      [false, false],
      [true, true],
    ] as const) {
      server.factsWithResult = takes;
      server.refuseResultFacts = refuses;
      server.resultAttempts = [];
      const key = `snapshot.facts-${takes}-${refuses}`;
      await runSnapshotTask(key);
      const kept = server.results.get(key);
      expect(kept).toMatchObject({ result: 'succeeded', ref: 'snap-upshift-u1' });
      expect(kept?.facts?.agentVersion).toBe(takes && !refuses ? '1.1.0' : undefined);
      expect(server.resultAttempts.map((r) => r.facts !== undefined)).toEqual(refuses ? [true, false] : [takes]);
    }
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

  it('skips heartbeats while its polls keep a server that counts them hearing it, and heartbeats every interval to one that does not', async () => {
    for (const counts of [true, false]) {
      server.countsRequests = counts;
      server.heartbeats = [];
      const { agent } = makeAgent();
      const running = agent.run();
      // The server asks for a heartbeat every second and answers an idle poll after 0.2 s.
      await new Promise((r) => setTimeout(r, 3500));
      agent.stop();
      await running;
      // The heartbeat at start goes to both; the facts do not change after it.
      if (counts) expect(server.heartbeats).toHaveLength(1);
      else expect(server.heartbeats.length).toBeGreaterThanOrEqual(3);
    }
  }, 30_000);

  it('removes the join token that an older install script left in join.env, once its credential works', async () => {
    await mkdir(path.join(dir, 'data'), { recursive: true });
    const envFile = path.join(dir, 'data', 'join.env');
    await writeFile(envFile, 'UPSHIFT_JOIN_TOKEN=upj_token-0123456789\nUPSHIFT_AGENT_CONFIG=/etc/upshift/agent.yaml\n', { mode: 0o600 });
    const { agent } = makeAgent();
    const running = agent.run();
    await waitFor('a heartbeat', () => server.heartbeats.length > 0);
    agent.stop();
    await running;
    expect(await readFile(envFile, 'utf8')).toBe('UPSHIFT_AGENT_CONFIG=/etc/upshift/agent.yaml\n');
    expect((await stat(envFile)).mode & 0o777).toBe(0o600);
  }, 30_000);

  it('stops at a refused join with advice a person can act on, after one attempt', async () => {
    server.joinError = { status: 409, code: 'NODE_NAME_TAKEN', details: { cluster: 'c', node: 'node-1' } };
    await expect(makeAgent().agent.run()).rejects.toThrow(
      new AgentFatalError(
        'join refused: a node named node-1 already holds a credential in cluster c: if this host replaces it, an admin runs `upshift node reset c node-1`; otherwise start the agent with --name OTHER (server: 409 NODE_NAME_TAKEN)',
      ),
    );
    server.joinError = { status: 401, code: 'UNAUTHENTICATED', details: { reason: 'expired', cluster: 'c' } };
    await expect(makeAgent().agent.run()).rejects.toThrow(
      'join refused: the join token has expired: ask an admin for a new one: upshift cluster join-token c (server: 401 UNAUTHENTICATED)',
    );
    expect(server.joinAttempts).toBe(2);
    expect(server.joins).toBe(0);
  });

  it('join-only gives up at once while the cluster is upgraded, saying when to try again', async () => {
    server.joinRefusals = 100;
    await expect(makeAgent('1.1.0', { joinOnly: true }).agent.run()).rejects.toThrow(
      'join refused for now: cluster c is being upgraded, and a new node joins only when that upgrade completes or is canceled (server: 409 UPGRADE_IN_PROGRESS); run the install command again then',
    );
    expect(server.joinAttempts).toBe(1);
  });

  it('after a reset, joins again only with a token it was not given before; otherwise it stops and says why', async () => {
    const first = makeAgent();
    const running = first.agent.run();
    await waitFor('a heartbeat', () => server.heartbeats.length > 0);
    // The admin resets the node while the agent runs: its heartbeat loop finds out and the agent stops.
    server.credentials.clear();
    await expect(running).rejects.toThrow(
      /the server refused this node's credential \(node node-1 of cluster c\): an admin reset or removed the node/,
    );
    expect(server.joins).toBe(1);

    // Started again with the token it joined with (left in its environment): still no join.
    await expect(makeAgent().agent.run()).rejects.toThrow(AgentFatalError);
    expect(server.joins).toBe(1);

    // An operator gives it a new token: it joins again and works.
    const renewed = makeAgent('1.1.0', { joinToken: 'upj_new-token-0123456789' });
    const again = renewed.agent.run();
    await waitFor('the second join', () => server.joins === 2);
    const beats = server.heartbeats.length;
    await waitFor('a heartbeat on the new credential', () => server.heartbeats.length > beats);
    renewed.agent.stop();
    expect(await again).toBe('stopped');
    expect(JSON.parse(await readFile(path.join(dir, 'data', 'credential.json'), 'utf8')).credential).toBe(
      'upa_secret-credential-2-0123456789',
    );
  }, 30_000);

  /**
   * Stand-ins for agent executables: shell scripts that answer `--version` like the agent.
   * Started as the successor, the new one checks in as the real one does (the ready file of
   * the handover, with its PID and version), or exits at once when `checksIn` is false.
   * `slowly` leaves the ready file empty for half a second first, as a successor that
   * writes it in place can be seen by the agent it replaces.
   */
  const readyFile = () => path.join(dir, 'data', 'handover', 'agent.up1.ready');
  const executable = (version: string, checksIn: boolean, slowly = false) =>
    Buffer.from(
      [
        '#!/bin/sh',
        `if [ "$1" = --version ]; then echo ${version}; exit 0; fi`,
        checksIn
          ? `mkdir -p '${path.dirname(readyFile())}' && ${slowly ? `: > '${readyFile()}' && sleep 0.5 && ` : ''}printf '{"pid":%s,"version":"${version}"}' $$ > '${readyFile()}' && exec sleep 30`
          : 'exit 3',
        '',
      ].join('\n'),
    );
  const selfUpgrade = (bytes: Buffer): AgentTask => ({
    taskKey: 'agent.up1',
    recipe: 'agent-self-upgrade',
    params: {
      component: 'agent',
      fromVersion: '1.1.0',
      toVersion: '1.2.0',
      artifacts: [{ method: 'agent-bundle', sha256: sha256(bytes) }],
    },
    createdAt: new Date().toISOString(),
  });
  const installOld = async () => {
    const file = path.join(dir, 'opt', 'upshift-agent');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, executable('1.1.0', true), { mode: 0o755 });
    return file;
  };

  /** Runs the self-upgrade task queued with `server.bundle` until the old agent hands over, then stops the new one. */
  const handOverTo = async (file: string) => {
    server.tasks.push(selfUpgrade(server.bundle as Buffer));
    const { agent } = makeAgent('1.1.0', { program: { form: 'executable', file } });
    const outcome = await agent.run();
    const ready = JSON.parse(await readFile(readyFile(), 'utf8')) as { pid: number };
    process.kill(ready.pid, 'SIGKILL');
    expect(outcome).toBe('handed-over');
  };

  it('self-upgrade: swaps in the checked executable atomically, keeps the old one and hands over to the new one', async () => {
    const file = await installOld();
    const old = await readFile(file);
    server.bundle = executable('1.2.0', true);
    await handOverTo(file);
    expect(server.bundleQueries).toEqual([`?form=executable&arch=${process.arch}`]);
    expect((await readFile(file)).equals(server.bundle)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o755);
    // The previous executable, kept for a rollback; nothing staged is left beside the agent.
    expect((await readFile(path.join(dir, 'data', 'agent-backups', 'upshift-agent-1.1.0'))).equals(old)).toBe(true);
    expect(await readdir(path.dirname(file))).toEqual(['upshift-agent']);
    // The old agent reports nothing: the new one reports the task when it is delivered again.
    expect(server.results.has('agent.up1')).toBe(false);
  }, 30_000);

  it('self-upgrade: waits for a ready file the new agent has not finished writing', async () => {
    const file = await installOld();
    server.bundle = executable('1.2.0', true, true);
    await handOverTo(file);
    expect(server.results.has('agent.up1')).toBe(false);
  }, 30_000);

  it('self-upgrade: puts the old executable back when the new one exits before it checks in, and keeps running', async () => {
    const file = await installOld();
    const old = await readFile(file);
    server.bundle = executable('1.2.0', false);
    server.tasks.push(selfUpgrade(server.bundle));
    const { agent } = makeAgent('1.1.0', { program: { form: 'executable', file } });
    const running = agent.run();
    await waitFor('the result', () => server.results.has('agent.up1'));
    agent.stop();
    expect(await running).toBe('stopped');
    const result = server.results.get('agent.up1');
    expect(result).toMatchObject({ result: 'failed', step: 'verify', rolledBack: true, versions: { agent: '1.1.0' } });
    expect(result?.error).toMatch(
      /^the new agent 1\.2\.0 exited \(.*\) before it checked in; the agent 1\.1\.0 was restored and keeps running$/,
    );
    expect((await readFile(file)).equals(old)).toBe(true);
    expect(await readdir(path.dirname(file))).toEqual(['upshift-agent']);
  }, 30_000);

  it('self-upgrade: refuses a wrong checksum and an executable that does not report the target version, changing nothing', async () => {
    const file = await installOld();
    const old = await readFile(file);
    // An executable that starts but is another version than the task's target.
    server.bundle = executable('1.3.0', true);
    server.tasks.push({ ...selfUpgrade(Buffer.from('something else')), taskKey: 'agent.sum' });
    server.tasks.push({ ...selfUpgrade(executable('1.3.0', true)), taskKey: 'agent.ver' });
    const { agent } = makeAgent('1.1.0', { program: { form: 'executable', file } });
    const running = agent.run();
    await waitFor('both results', () => server.results.has('agent.sum') && server.results.has('agent.ver'));
    agent.stop();
    await running;
    expect(server.results.get('agent.sum')).toMatchObject({ result: 'failed', step: 'preflight' });
    expect(server.results.get('agent.sum')?.error).toMatch(/^checksum mismatch for the agent executable: the task expects sha256 /);
    expect(server.results.get('agent.ver')).toMatchObject({ result: 'failed', step: 'preflight' });
    expect(server.results.get('agent.ver')?.error).toMatch(/^the new agent executable does not report 1\.2\.0/);
    expect((await readFile(file)).equals(old)).toBe(true);
    expect(await readdir(path.dirname(file))).toEqual(['upshift-agent']);
  }, 30_000);

  it('self-upgrade: an agent that runs as a script says how to move to the executable and fetches nothing', async () => {
    server.bundle = executable('1.2.0', true);
    server.tasks.push(selfUpgrade(server.bundle));
    const { agent } = makeAgent('1.1.0', { program: { form: 'script', file: path.join(dir, 'agent.js') } });
    const running = agent.run();
    await waitFor('the result', () => server.results.has('agent.up1'));
    agent.stop();
    await running;
    expect(server.results.get('agent.up1')).toMatchObject({ result: 'failed', step: 'preflight', error: SCRIPT_AGENT_REFUSAL });
    expect(server.bundleQueries).toEqual([]);
  }, 30_000);
});
