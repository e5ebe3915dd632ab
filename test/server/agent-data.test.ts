import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerClient } from '../../src/agent/client.js';
import { TaskLogStream } from '../../src/agent/task-log.js';
import { openSqlite } from '../../src/store/dialect.js';
import { dialects, freshPgDatabase } from '../support/databases.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

/**
 * What an agent sends is bounded, clean and checked, through the real server, with the
 * test playing the agent over HTTP: control characters never reach events, the API or
 * a log; a task's log keeps its head and its tail with a marker between, takes no line
 * once the task is over, and is read streamed; a success whose version is not the
 * target fails the task.
 */

const attack = '\u001b]0;pwned\u0007\u001b[2J';
/** Every raw control character an operator's terminal could act on. */
// eslint-disable-next-line no-control-regex
const rawControl = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

const facts = (docker: string, extra: Record<string, unknown> = {}) => ({
  hostname: 'h',
  os: 'linux',
  arch: 'amd64',
  agentVersion: '1.1.0',
  versions: { docker, containerd: '1.6.20' },
  engineReachable: true,
  ...extra,
});

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

for (const dialect of dialects) {
  describe(`agent data on ${dialect}`, () => {
    let s: ServerProcess;
    let dropDb: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      let database: string | undefined;
      if (dialect === 'postgres') {
        const db = await freshPgDatabase();
        database = db.url;
        dropDb = db.drop;
      }
      s = await startServerProcess({ database });
      const put = await fetch(`${s.url}/api/v1/artifacts/docker/26.1.5/docker-26.1.5.tar.gz`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream' },
        body: Buffer.from('docker 26.1.5 binaries'),
      });
      expect(put.status).toBe(201);
    }, 60_000);

    afterAll(async () => {
      await s?.stop();
      s?.cleanup();
      await dropDb?.();
    });

    /** One call of the agent protocol, as an agent makes it. */
    async function agent(credential: string, path: string, body?: unknown) {
      const res = await fetch(`${s.url}/api/v1/agent${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${credential}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    }

    /** A hosts cluster whose nodes join with the given facts; returns their credentials by name. */
    async function clusterWithNodes(name: string, nodes: Record<string, object>): Promise<Record<string, string>> {
      const created = await s.api('/api/v1/clusters', { body: { name, kind: 'hosts' } });
      expect(created.status).toBe(201);
      const credentials: Record<string, string> = {};
      for (const [node, nodeFacts] of Object.entries(nodes)) {
        const res = await fetch(`${s.url}/api/v1/agent/join`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ joinToken: created.body.joinToken, name: node, facts: nodeFacts, protocol: 1 }),
        });
        expect(res.status).toBe(201);
        credentials[node] = ((await res.json()) as { credential: string }).credential;
      }
      return credentials;
    }

    async function startDockerUpgrade(cluster: string): Promise<string> {
      const start = await s.api(`/api/v1/clusters/${cluster}/upgrades`, { body: { component: 'docker', toVersion: '26.1.5' } });
      expect(start.status).toBe(201);
      return start.body.id as string;
    }

    /** Long-polls each node until one of them is given a task. */
    async function nextTask(credentials: Record<string, string>): Promise<{ node: string; credential: string; taskKey: string }> {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        for (const [node, credential] of Object.entries(credentials)) {
          const poll = await agent(credential, '/tasks?waitSeconds=1');
          const task = poll.body?.tasks?.[0];
          if (task) return { node, credential, taskKey: task.taskKey };
        }
      }
      throw new Error('no node was given a task within 20 s');
    }

    async function waitForState(upgradeId: string, state: string) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const upgrade = (await s.api(`/api/v1/upgrades/${upgradeId}`)).body;
        if (upgrade.state === state) return upgrade;
        if (Date.now() > deadline) throw new Error(`upgrade ${upgradeId} is ${upgrade.state}, not ${state}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    const readLog = async (upgradeId: string, node: string) => {
      const res = await fetch(`${s.url}/api/v1/upgrades/${upgradeId}/nodes/${node}/log`, {
        headers: { authorization: `Bearer ${s.token}` },
      });
      expect(res.status).toBe(200);
      return res.text();
    };

    it('strips control characters from facts, log lines and results before they reach events, the API and the log', async () => {
      const credentials = await clusterWithNodes('ctl', {
        'ctl-1': facts('20.10.24', {
          hostname: `host${attack}`,
          os: `Debian${attack}\u202egpj`,
          arch: `amd64\u009b31m`,
          engineError: `socket\u0000${attack}`,
        }),
      });
      const heartbeat = await agent(credentials['ctl-1'] as string, '/heartbeat', {
        facts: facts('20.10.24', { os: `Debian${attack}`, engineError: attack }),
      });
      expect(heartbeat.status).toBe(200);
      const upgradeId = await startDockerUpgrade('ctl');
      const { credential, taskKey } = await nextTask(credentials);
      const log = await agent(credential, `/tasks/${taskKey}/log`, {
        lines: [`step\tone${attack}`, `two\u009b31m\u202eevil\u2066`, `three\r\nfour\u2028five`],
      });
      expect(log.status).toBe(204);
      const result = await agent(credential, `/tasks/${taskKey}/result`, {
        result: 'failed',
        step: `start${attack}`,
        error: `dockerd exited${attack}\r\nsecond line\u202e`,
        rolledBack: true,
        versions: { docker: '20.10.24+dfsg1-1' },
      });
      expect(result.status).toBe(204);

      const upgrade = await waitForState(upgradeId, 'Paused');
      expect(upgrade.pauseReason.message).toBe('ctl-1: start]0;pwned[2J: dockerd exited]0;pwned[2J\nsecond line; rolled back to 20.10.24');

      const events = await s.api(`/api/v1/events?upgradeId=${upgradeId}&limit=500`);
      const clusterEvents = await s.api(`/api/v1/events?clusterId=ctl&limit=500`);
      expect(events.text).not.toMatch(/\\u001b|\\u0007|\\u0000/);
      expect(
        rawControl.test(
          JSON.parse(events.text)
            .items.map((e: { message: string }) => e.message)
            .join(''),
        ),
      ).toBe(false);
      const messages = clusterEvents.body.items.map((e: { message: string }) => e.message).join('\n');
      expect(rawControl.test(messages)).toBe(false);
      expect(messages).toContain('node ctl-1 joined ctl (agent 1.1.0, Debian]0;pwned[2Jgpj amd6431m, from 127.0.0.1)');
      expect(messages).toContain('ctl-1: start]0;pwned[2J: dockerd exited]0;pwned[2J\nsecond line');

      const text = await readLog(upgradeId, 'ctl-1');
      expect(rawControl.test(text)).toBe(false);
      expect(text).toMatch(/Z step\tone\]0;pwned\[2J\n/);
      expect(text).toMatch(/Z two31mevil\n/);
      expect(text).toMatch(/Z three {2}four five\n/);

      // The node's versions follow what the agent reported with its failure.
      const nodes = (await s.api('/api/v1/clusters/ctl/nodes')).body.items;
      expect(nodes[0].versions.docker).toBe('20.10.24+dfsg1-1');
      expect(rawControl.test(JSON.stringify(nodes))).toBe(false);
    });

    it('keeps the log lines a result carries in its task’s log, after the lines sent before, once', async () => {
      const credentials = await clusterWithNodes('tail', { 'tail-1': facts('20.10.24') });
      const heartbeat = await agent(credentials['tail-1'] as string, '/heartbeat', { facts: facts('20.10.24') });
      expect(heartbeat.body).toMatchObject({ linesWithResult: true });
      const upgradeId = await startDockerUpgrade('tail');
      const { credential, taskKey } = await nextTask(credentials);
      expect((await agent(credential, `/tasks/${taskKey}/log`, { lines: ['first line'] })).status).toBe(204);
      const result = { result: 'succeeded', versions: { docker: '26.1.5' }, log: ['second line', `third line${attack}`] };
      expect((await agent(credential, `/tasks/${taskKey}/result`, result)).status).toBe(204);
      await waitForState(upgradeId, 'Completed');
      // The same result again (an agent that did not hear the answer) adds nothing.
      expect((await agent(credential, `/tasks/${taskKey}/result`, { ...result, log: ['sent twice'] })).status).toBe(204);
      const text = await readLog(upgradeId, 'tail-1');
      expect(rawControl.test(text)).toBe(false);
      expect(text).toMatch(/Z first line\n(.*\n)*.*Z second line\n.*Z third line\]0;pwned\[2J\n/);
      expect(text).not.toContain('sent twice');
    });

    it('records the facts a result carries as the node’s heartbeat, and refuses bad ones before recording anything', async () => {
      const credentials = await clusterWithNodes('after', { 'after-1': facts('20.10.24') });
      const heartbeat = await agent(credentials['after-1'] as string, '/heartbeat', { facts: facts('20.10.24') });
      expect(heartbeat.body).toMatchObject({ factsWithResult: true, requestsCountAsHeartbeats: true });
      const upgradeId = await startDockerUpgrade('after');
      const { credential, taskKey } = await nextTask(credentials);
      const result = { result: 'succeeded', versions: { docker: '26.1.5' } };

      // Facts the server cannot keep: a 422 that says which, and the task stays open.
      const bad = await agent(credential, `/tasks/${taskKey}/result`, { ...result, facts: facts('26.1.5', { distribution: 'Debian 13' }) });
      expect(bad.status).toBe(422);
      expect(bad.body.error.message).toMatch(/facts\.distribution/);
      expect((await s.api(`/api/v1/upgrades/${upgradeId}`)).body.state).toBe('Upgrading');
      expect((await agent(credential, '/tasks?waitSeconds=0')).body.tasks.map((t: { taskKey: string }) => t.taskKey)).toEqual([taskKey]);

      const after = facts('26.1.5', { distribution: 'debian-13', versions: { docker: '26.1.5', containerd: '1.7.22' } });
      expect((await agent(credential, `/tasks/${taskKey}/result`, { ...result, facts: after })).status).toBe(204);
      await waitForState(upgradeId, 'Completed');
      const [node] = (await s.api('/api/v1/clusters/after/nodes')).body.items;
      expect(node).toMatchObject({ name: 'after-1', status: 'Ready', distribution: 'debian-13' });
      expect(node.versions).toMatchObject({ docker: '26.1.5', containerd: '1.7.22' });
    });

    it('keeps the first and last 512 KiB of a flooded log with a marker between, streams it, and takes nothing once the task is over', async () => {
      const credentials = await clusterWithNodes('flood', { 'flood-1': facts('20.10.24') });
      const upgradeId = await startDockerUpgrade('flood');
      const { credential, taskKey } = await nextTask(credentials);

      // 5 MiB of numbered 1 KiB lines, in requests of 400 lines.
      const line = (i: number) => `line ${String(i).padStart(5, '0')} ${'x'.repeat(1010)}`;
      const total = 5 * 1024;
      for (let i = 0; i < total; i += 400) {
        const lines = Array.from({ length: Math.min(400, total - i) }, (_, k) => line(i + k));
        expect((await agent(credential, `/tasks/${taskKey}/log`, { lines })).status).toBe(204);
        expect((await agent(credential, '/heartbeat', { facts: facts('20.10.24') })).status).toBe(200);
      }
      const text = await readLog(upgradeId, 'flood-1');
      const marker = /\n… (\d+) bytes of log were dropped here \(the log of a task keeps its first 512 KiB and its last 512 KiB\) …\n/.exec(
        text,
      );
      expect(marker).not.toBeNull();
      const markerBytes = Buffer.byteLength(marker?.[0] ?? '') - 1;
      expect(Buffer.byteLength(text) - markerBytes).toBeLessThanOrEqual(1024 * 1024);
      expect(Buffer.byteLength(text) - markerBytes).toBeGreaterThan(1000 * 1024);
      expect(Number(marker?.[1])).toBeGreaterThan(4 * 1024 * 1024 - 100 * 1024);
      // What the server logged before it handed the task over comes first, then the agent's lines.
      expect(text.slice(0, text.indexOf('\n'))).toMatch(/ queued docker-engine for the agent on flood-1 /);
      expect(text).toContain(` ${line(0)}\n`);
      expect(text.endsWith(` ${line(total - 1)}\n`)).toBe(true);
      // The head is in order before the marker, the tail in order after it.
      const numbers = [...text.matchAll(/ line (\d{5}) /g)].map((m) => Number(m[1]));
      expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
      const markerAt = text.indexOf(marker?.[0] ?? '');
      expect(text.slice(0, markerAt)).not.toContain(line(total - 1));
      expect(text.slice(markerAt)).not.toContain(line(0));

      // Many viewers at once, and some that read slowly, while it is served streamed.
      const before = rssMiB(s.child.pid as number);
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(s.child.pid as number))), 20);
      const slow = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const res = await fetch(`${s.url}/api/v1/upgrades/${upgradeId}/nodes/flood-1/log`, {
            headers: { authorization: `Bearer ${s.token}` },
          });
          const reader = (res.body as ReadableStream<Uint8Array>).getReader();
          await reader.read();
          return reader;
        }),
      );
      const reads = await Promise.all(Array.from({ length: 24 }, () => readLog(upgradeId, 'flood-1')));
      for (const r of slow) await r.cancel();
      clearInterval(sampler);
      expect(reads.every((r) => r === text)).toBe(true);
      expect(peak - before).toBeLessThan(200);

      // The task ends; its log takes no more lines.
      const done = await agent(credential, `/tasks/${taskKey}/result`, { result: 'succeeded', versions: { docker: '26.1.5' } });
      expect(done.status).toBe(204);
      await waitForState(upgradeId, 'Completed');
      const late = await agent(credential, `/tasks/${taskKey}/log`, { lines: ['written after the end'] });
      expect(late.status).toBe(409);
      expect(late.body.error.code).toBe('TASK_ENDED');
      expect(late.body.error.message).toMatch(/is over \(succeeded\): it takes no more log lines/);
      expect(await readLog(upgradeId, 'flood-1')).not.toContain('written after the end');

      // The agent's log shipping takes the refusal as the end of the task's log: it says
      // so once in its own log and sends nothing more.
      const client = new ServerClient(s.url);
      client.setCredential(credential);
      const echoed: string[] = [];
      const stream = new TaskLogStream(client, taskKey, (l) => echoed.push(l));
      stream.write('a late line');
      await stream.close();
      for (let i = 0; i < 300; i++) stream.write(`later ${i}`);
      await stream.close();
      expect(echoed.filter((l) => l.startsWith('the server takes no more log lines for this task'))).toHaveLength(1);
      expect(echoed).toContain('later 299');
      expect(await readLog(upgradeId, 'flood-1')).not.toMatch(/a late line|later 0/);
    }, 120_000);

    it.runIf(dialect === 'sqlite')(
      'serves a 64 MiB log from before the bound streamed: readers, fast and slow, add little to the server’s memory',
      async () => {
        const credentials = await clusterWithNodes('legacy', { 'legacy-1': facts('20.10.24') });
        const upgradeId = await startDockerUpgrade('legacy');
        await nextTask(credentials);
        // An older server kept every line: written straight into its database, past the
        // repositories (which keep a log bounded).
        const adapter = openSqlite(path.join(s.dataDir, 'upshift.db'));
        try {
          const task = await adapter.db.selectFrom('nodeTasks').select('id').where('upgradeId', '=', upgradeId).executeTakeFirstOrThrow();
          const at = new Date().toISOString();
          await adapter.db.transaction().execute(async (trx) => {
            for (let i = 0; i < 64 * 1024; i += 500) {
              const lines = Array.from(
                { length: Math.min(500, 64 * 1024 - i) },
                (_, j) => `old ${String(i + j).padStart(5, '0')} ${'y'.repeat(990)}`,
              );
              await trx
                .insertInto('nodeLogs')
                .values(lines.map((line) => ({ upgradeId, nodeTaskId: task.id, at, line })))
                .execute();
            }
          });
        } finally {
          await adapter.close();
        }
        const pid = s.child.pid as number;
        const before = rssMiB(pid);
        let peak = before;
        const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20);
        const url = `${s.url}/api/v1/upgrades/${upgradeId}/nodes/legacy-1/log`;
        const open = () => fetch(url, { headers: { authorization: `Bearer ${s.token}` } });
        // Slow readers take one chunk and stop reading; fast ones read it all, counting bytes.
        const slow = await Promise.all(
          Array.from({ length: 4 }, async () => {
            const reader = ((await open()).body as ReadableStream<Uint8Array>).getReader();
            await reader.read();
            return reader;
          }),
        );
        const sizes = await Promise.all(
          Array.from({ length: 4 }, async () => {
            let bytes = 0;
            let last = '';
            for await (const chunk of (await open()).body as unknown as AsyncIterable<Uint8Array>) {
              bytes += chunk.length;
              last = Buffer.from(chunk.subarray(Math.max(0, chunk.length - 1100))).toString('latin1');
            }
            return { bytes, last };
          }),
        );
        clearInterval(sampler);
        for (const r of slow) await r.cancel();
        for (const size of sizes) {
          expect(size.bytes).toBeGreaterThan(64 * 1024 * 1000);
          expect(size.last).toContain('old 65535 ');
        }
        expect(peak - before).toBeLessThan(200);
      },
      120_000,
    );

    it('fails a success whose version is not the target, records what the node runs, and completes on the right version', async () => {
      const credentials = await clusterWithNodes('liar', { 'liar-1': facts('20.10.24'), 'liar-2': facts('20.10.24') });
      const upgradeId = await startDockerUpgrade('liar');

      // A success that names another version.
      const first = await nextTask(credentials);
      const other = first.node === 'liar-1' ? 'liar-2' : 'liar-1';
      await agent(first.credential, `/tasks/${first.taskKey}/result`, { result: 'succeeded', versions: { docker: '25.0.3' } });
      let upgrade = await waitForState(upgradeId, 'Paused');
      const expected = `${first.node}: the agent reported success, but the node runs docker 25.0.3, not the target 26.1.5`;
      expect(upgrade.pauseReason).toMatchObject({ kind: 'error', message: expected });
      const failed = (await s.api(`/api/v1/events?upgradeId=${upgradeId}&type=node.failed`)).body.items;
      expect(failed.map((e: { message: string }) => e.message)).toEqual([expected]);
      let nodes = (await s.api('/api/v1/clusters/liar/nodes')).body.items;
      expect(nodes.find((n: { name: string }) => n.name === first.node).versions.docker).toBe('25.0.3');
      expect((await s.api(`/api/v1/upgrades/${upgradeId}/nodes`)).body.items.find((t: any) => t.nodeName === first.node).state).toBe(
        'failed',
      );

      // Resumed: the right version, in the agent's packaging, succeeds.
      expect((await s.api(`/api/v1/upgrades/${upgradeId}/resume`, { method: 'POST' })).status).toBe(200);
      const retry = await nextTask(credentials);
      expect(retry.node).toBe(first.node);
      await agent(retry.credential, `/tasks/${retry.taskKey}/result`, { result: 'succeeded', versions: { docker: '26.1.5+dfsg1' } });

      // A success that names no version of the component.
      const second = await nextTask(credentials);
      expect(second.node).toBe(other);
      await agent(second.credential, `/tasks/${second.taskKey}/result`, { result: 'succeeded', versions: { containerd: '1.6.20' } });
      upgrade = await waitForState(upgradeId, 'Paused');
      expect(upgrade.pauseReason.message).toBe(
        `${other}: the agent reported success, but not which docker version the node runs (the target is 26.1.5)`,
      );
      expect((await s.api(`/api/v1/upgrades/${upgradeId}/resume`, { method: 'POST' })).status).toBe(200);
      const last = await nextTask(credentials);
      await agent(last.credential, `/tasks/${last.taskKey}/result`, { result: 'succeeded', versions: { docker: '26.1.5' } });
      upgrade = await waitForState(upgradeId, 'Completed');
      expect(upgrade.nodes.succeeded).toBe(2);
      nodes = (await s.api('/api/v1/clusters/liar/nodes')).body.items;
      expect(Object.fromEntries(nodes.map((n: { name: string; versions: { docker: string } }) => [n.name, n.versions.docker]))).toEqual({
        [first.node]: '26.1.5+dfsg1',
        [other]: '26.1.5',
      });
    }, 60_000);
  });
}
