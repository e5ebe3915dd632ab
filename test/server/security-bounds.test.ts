import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventType } from '../../src/domain/events.js';
import { openStoreAdapter } from '../../src/store/dialect.js';
import { Store } from '../../src/store/store.js';
import { type ServerProcess, TEST_TOKEN, repoRoot, startServerProcess } from '../support/server.js';

const run = promisify(execFile);

/** The server's resident memory, from /proc. */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function watchRss(pid: number, during: () => Promise<void>): Promise<{ before: number; peak: number }> {
  const before = rssMb(pid);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 50);
  try {
    await during();
  } finally {
    clearInterval(timer);
  }
  return { before, peak: Math.max(peak, rssMb(pid)) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the sign-in limit', () => {
  let s: ServerProcess;
  beforeAll(async () => {
    s = await startServerProcess({ args: ['--sign-in-limit', '5', '--trusted-proxies', '127.0.0.1'] });
  });
  afterAll(async () => {
    await s?.stop();
    s?.cleanup();
  });

  const from = (address: string, token: string) => ({ token, headers: { 'x-forwarded-for': address } });

  it('blocks an address before any token comparison, and keeps the block under 10,001 other addresses', async () => {
    for (let i = 0; i < 5; i++) await s.api('/api/v1/clusters', from('203.0.113.7', `upt_wrong-guess-${i}-aaaaaaaaaaaa`));
    // Blocked: even the right token is refused, by bearer and by console sign-in.
    expect((await s.api('/api/v1/clusters', from('203.0.113.7', TEST_TOKEN))).status).toBe(429);
    const signIn = await s.api('/api/v1/session', {
      token: null,
      body: { token: TEST_TOKEN },
      headers: { 'x-forwarded-for': '203.0.113.7' },
    });
    expect(signIn.status).toBe(429);
    expect(signIn.body.error.code).toBe('TOO_MANY_REQUESTS');
    // Other addresses are not affected.
    expect((await s.api('/api/v1/clusters', from('203.0.113.8', TEST_TOKEN))).status).toBe(200);
    // 10,001 addresses fail once each: the table is bounded but the block stays.
    const addresses = Array.from({ length: 10_001 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    for (let i = 0; i < addresses.length; i += 100) {
      await Promise.all(addresses.slice(i, i + 100).map((a) => s.api('/api/v1/clusters', from(a, 'upt_wrong-guess-flood-aaaaaaa'))));
    }
    expect((await s.api('/api/v1/clusters', from('203.0.113.7', TEST_TOKEN))).status).toBe(429);
    // The failures are recorded, without the guessed tokens.
    const events = await s.api(`/api/v1/events?type=${EventType.authFailed}&limit=500`, from('203.0.113.9', TEST_TOKEN));
    expect(events.body.items.some((e: { actor: string }) => e.actor === 'address:203.0.113.7')).toBe(true);
    expect(JSON.stringify(events.body)).not.toContain('wrong-guess');
    // A distributed guess does not write a row per address: the first 100 of a minute, then a count.
    expect(events.body.items.length).toBeLessThanOrEqual(101);
  }, 120_000);

  it('takes the client address from X-Forwarded-For only behind a trusted proxy', async () => {
    const direct = await startServerProcess({ args: ['--sign-in-limit', '3'] });
    try {
      for (let i = 0; i < 3; i++)
        await direct.api('/api/v1/clusters', {
          token: `upt_wrong-guess-${i}-aaaaaaaaaaaa`,
          headers: { 'x-forwarded-for': `198.51.100.${i}` },
        });
      // Spoofing the header does not get the peer out of its block.
      expect((await direct.api('/api/v1/clusters', { headers: { 'x-forwarded-for': '198.51.100.99' } })).status).toBe(429);
    } finally {
      await direct.stop();
      direct.cleanup();
    }
  });
});

describe('bounds on what one client can cost the server', () => {
  let s: ServerProcess;
  let viewer: string;
  const EVENTS = 30_000;

  beforeAll(async () => {
    s = await startServerProcess();
    await s.stop();
    // A long history: 30,000 events of 2 KB, written straight into the database.
    const adapter = openStoreAdapter(join(s.dataDir, 'upshift.db'));
    const store = new Store(adapter);
    const padding = 'x'.repeat(2000);
    for (let i = 0; i < EVENTS; i += 1000) {
      await store.events.appendMany(
        Array.from({ length: 1000 }, (_, j) => ({
          type: EventType.clusterAvailable,
          actor: 'test',
          clusterId: null,
          upgradeId: null,
          nodeId: null,
          message: `history ${i + j} ${padding}`,
        })),
      );
    }
    await adapter.close();
    await s.restart();
    viewer = (await s.api('/api/v1/tokens', { body: { name: 'viewer', role: 'viewer' } })).body.token;
  }, 120_000);
  afterAll(async () => {
    await s?.stop();
    s?.cleanup();
  });

  it('replays the event stream only as fast as a client reads, and lets one too far behind go', async () => {
    const pid = s.child.pid as number;
    const sockets: ReturnType<typeof connect>[] = [];
    const { before, peak } = await watchRss(pid, async () => {
      // Three viewers ask for everything since event 0 and never read.
      for (let i = 0; i < 3; i++) {
        const socket = connect(Number(new URL(s.url).port), '127.0.0.1');
        socket.pause();
        socket.write(`GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${viewer}\r\nLast-Event-ID: 0\r\n\r\n`);
        sockets.push(socket);
      }
      await sleep(4000);
    });
    for (const socket of sockets) socket.destroy();
    expect(peak - before, `RSS went from ${before.toFixed(0)} MB to ${peak.toFixed(0)} MB`).toBeLessThan(150);
    // The server still answers.
    expect((await s.api('/api/v1/clusters')).status).toBe(200);

    // A client that reads gets at most the replay limit, then `reload` with the current id.
    const res = await fetch(`${s.url}/api/v1/stream`, { headers: { authorization: `Bearer ${viewer}`, 'last-event-id': '0' } });
    expect(res.headers.get('cache-control')).toMatch(/no-store/);
    const text = await res.text();
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(text).toMatch(/^event: reload$/m);
    expect(text.match(/^event: cluster.available$/gm)?.length ?? 0).toBeLessThanOrEqual(10_000);
    expect(Math.max(...ids)).toBeGreaterThanOrEqual(EVENTS);
  }, 60_000);

  it('lets a client that reads slowly have every replayed event and the reload before it goes', async () => {
    // It rests 10 ms after each read, as a busy client would: what the server queued for it waits.
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(s.url).port), '127.0.0.1');
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => {
        received += d;
        if (received.length < 1_000_000) return;
        socket.pause();
        setTimeout(() => socket.resume(), 10);
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(received));
      socket.on('end', () => socket.end());
      socket.write(
        `GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${viewer}\r\nLast-Event-ID: 0\r\nConnection: close\r\n\r\n`,
      );
    });
    expect(text).toMatch(/^event: reload$/m);
    expect(text.match(/^event: cluster.available$/gm)?.length).toBe(10_000);
  }, 60_000);

  /** Sends a body of `declared` bytes in 64 KiB slices every 5 ms, whatever the answer, until `total` are sent or the connection ends. */
  const sendSlowly = (declared: number, total: number) =>
    new Promise<{ answer: string; error: string | undefined; answeredAt: number; closedAt: number; sent: number }>((resolve) => {
      const socket = connect(Number(new URL(s.url).port), '127.0.0.1');
      let answer = '';
      let answeredAt = 0;
      let error: string | undefined;
      let sent = 0;
      socket.on('data', (d: Buffer) => {
        answer += d.toString();
        answeredAt ||= Date.now();
      });
      socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ answer, error, answeredAt, closedAt: Date.now(), sent });
      });
      socket.write(
        `POST /api/v1/clusters HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`,
      );
      const slice = Buffer.alloc(64 * 1024, 'x');
      const timer = setInterval(() => {
        if (socket.destroyed) return;
        if (sent >= total) {
          clearInterval(timer);
          // All sent: the answer is read, then the client hangs up.
          setTimeout(() => socket.end(), 300);
          return;
        }
        socket.write(slice);
        sent += slice.length;
      }, 5);
    });

  it('answers a body over the limit with 413 while the client still sends it, and cuts an endless one after a while', async () => {
    // 3 MiB, sent for about a quarter of a second after the answer: every write goes through.
    const big = await sendSlowly(3 * 1024 * 1024, 3 * 1024 * 1024);
    expect(big.error, 'the client’s writes after the answer').toBeUndefined();
    expect(big.sent).toBe(3 * 1024 * 1024);
    expect(big.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(big.answer).toContain('"code":"PAYLOAD_TOO_LARGE"');
    // A body that never ends: the server reads it for a while, then cuts the connection.
    const endless = await sendSlowly(1024 ** 4, Number.MAX_SAFE_INTEGER);
    expect(endless.answer).toMatch(/^HTTP\/1\.1 413 /);
    const lingered = endless.closedAt - endless.answeredAt;
    expect(lingered, 'ms from the answer to the cut').toBeGreaterThan(1500);
    expect(lingered, 'ms from the answer to the cut').toBeLessThan(10_000);
    expect((await s.api('/api/v1/clusters')).status).toBe(200);
  }, 60_000);

  it('audits a flood of refused requests in aggregate, not one row each', async () => {
    const pid = s.child.pid as number;
    const { before, peak } = await watchRss(pid, async () => {
      for (let i = 0; i < 3000; i += 100) {
        await Promise.all(
          Array.from({ length: 100 }, (_, j) =>
            s.api(`/api/v1/tokens?flood=${i + j}&${'q'.repeat(500)}`, { token: viewer, body: { name: `n${i + j}`, role: 'admin' } }),
          ),
        );
      }
    });
    expect(peak - before).toBeLessThan(100);
    const audit = await s.api('/api/v1/events?type=audit.request&limit=500');
    const mine = audit.body.items.filter((e: { actor: string }) => e.actor === 'token:viewer');
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(mine.length).toBeLessThanOrEqual(2);
    expect(mine[0].message).toMatch(/refused: POST \/api\/v1\/tokens → 403/);
    // The path is kept without its query string.
    expect(JSON.stringify(mine)).not.toContain('flood=');
  }, 60_000);

  it('stores an artifact whole: a same-name race gets a 409, the served bytes match the recorded sha256, empty files are refused', async () => {
    const upload = (bytes: Buffer) =>
      fetch(`${s.url}/api/v1/artifacts/docker/26.1.5/docker.io_26.1.5_amd64.deb`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/octet-stream' },
        body: new ReadableStream({
          async start(controller) {
            // Slowly, so that the two uploads overlap.
            for (let i = 0; i < bytes.length; i += 65_536) {
              controller.enqueue(bytes.subarray(i, i + 65_536));
              await sleep(10);
            }
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const a = Buffer.alloc(2 * 1024 * 1024, 'a');
    const b = Buffer.alloc(2 * 1024 * 1024, 'b');
    const [ra, rb] = await Promise.all([upload(a), upload(b)]);
    const statuses = [ra.status, rb.status].sort();
    expect(statuses).toEqual([201, 409]);
    const loser = ra.status === 409 ? ra : rb;
    expect(((await loser.json()) as { error: { code: string } }).error.code).toBe('ARTIFACT_BUSY');
    const winner = ra.status === 201 ? a : b;
    const listed = (await s.api('/api/v1/artifacts')).body.items[0];
    expect(listed.sha256).toBe(createHash('sha256').update(winner).digest('hex'));
    // What an agent downloads is those bytes.
    const hosts = await s.api('/api/v1/clusters', { body: { name: 'mirror-hosts', kind: 'hosts' } });
    const joined = await s.api('/api/v1/agent/join', {
      token: null,
      body: { joinToken: hosts.body.joinToken, name: 'n1', facts: { hostname: 'n1', agentVersion: '1.1.0', versions: {} } },
    });
    const served = await fetch(`${s.url}/api/v1/agent/artifacts/docker.io_26.1.5_amd64.deb`, {
      headers: { authorization: `Bearer ${joined.body.credential}` },
    });
    const bytes = Buffer.from(await served.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(listed.sha256);
    // No temp file is left behind.
    expect(readdirSync(join(s.dataDir, 'artifacts')).filter((f) => f.endsWith('.partial'))).toEqual([]);
    const empty = await fetch(`${s.url}/api/v1/artifacts/docker/26.1.5/empty.deb`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(0),
    });
    expect(empty.status).toBe(422);
    expect((await s.api('/api/v1/artifacts')).body.items.map((i: { file: string }) => i.file)).toEqual(['docker.io_26.1.5_amd64.deb']);
  }, 60_000);

  it('keeps the data dir private: 0700, and every file in it 0600', async () => {
    const modes: string[] = [];
    const walk = (path: string) => {
      const st = statSync(path);
      const mode = (st.mode & 0o777).toString(8);
      if (st.isDirectory()) {
        if (mode !== '700') modes.push(`${path}: ${mode}`);
        for (const entry of readdirSync(path)) walk(join(path, entry));
      } else if (mode !== '600') modes.push(`${path}: ${mode}`);
    };
    walk(s.dataDir);
    expect(modes).toEqual([]);
    expect(readdirSync(s.dataDir)).toEqual(expect.arrayContaining(['upshift.db', 'upshift.db-wal', 'secret.key']));
  });
});

describe('console sessions and the bootstrap admin token', () => {
  it('ends the sessions of a rotated bootstrap token, and lets admins list and end sessions', async () => {
    const s = await startServerProcess();
    try {
      const signIn = await s.api('/api/v1/session', { token: null, body: { token: TEST_TOKEN } });
      const cookie = String(signIn.headers['set-cookie']).split(';')[0] as string;
      expect((await s.api('/api/v1/clusters', { token: null, headers: { cookie } })).status).toBe(200);
      const cli = (args: string[], token = TEST_TOKEN) =>
        run(process.execPath, [join(repoRoot, 'bin/upshift.js'), '--server', s.url, '--token', token, ...args]);
      const listed = JSON.parse((await cli(['session', 'list', '-o', 'json'])).stdout) as {
        items: Array<{ id: string; principal: string; address: string }>;
      };
      expect(listed.items).toEqual([expect.objectContaining({ principal: 'admin', address: '127.0.0.1' })]);
      expect(JSON.stringify(listed)).not.toContain(cookie.split('=')[1]);

      // Rotating UPSHIFT_ADMIN_TOKEN ends what the old one opened.
      await s.stop();
      const rotated = 'rotated-admin-token-3e9a1c7f5b0d2e8a4c6f1b9d3e7a5c0f';
      await s.restart([]);
      expect((await s.api('/api/v1/clusters', { token: null, headers: { cookie } })).status).toBe(200);
      await s.stop();
      const again = await startServerProcess({ dataDir: s.dataDir, env: { UPSHIFT_ADMIN_TOKEN: rotated } });
      try {
        expect((await again.api('/api/v1/clusters', { token: null, headers: { cookie } })).status).toBe(401);
        expect((await again.api('/api/v1/sessions', { token: rotated })).body.items).toEqual([]);
        // A session of an API token: listed, then ended by an admin.
        const op = (await again.api('/api/v1/tokens', { token: rotated, body: { name: 'op', role: 'operator' } })).body.token;
        const opSignIn = await again.api('/api/v1/session', { token: null, body: { token: op } });
        const opCookie = String(opSignIn.headers['set-cookie']).split(';')[0] as string;
        const sessions = (await again.api('/api/v1/sessions', { token: rotated })).body.items;
        expect(sessions).toHaveLength(1);
        expect((await again.api(`/api/v1/sessions/${sessions[0].id}`, { method: 'DELETE', token: op })).status).toBe(403);
        const { stdout } = await run(process.execPath, [
          join(repoRoot, 'bin/upshift.js'),
          '--server',
          again.url,
          '--token',
          rotated,
          'session',
          'revoke',
          sessions[0].id,
        ]);
        expect(stdout).toMatch(/ended/);
        expect((await again.api('/api/v1/clusters', { token: null, headers: { cookie: opCookie } })).status).toBe(401);
        const events = await again.api(`/api/v1/events?type=${EventType.sessionRevoked}`, { token: rotated });
        expect(events.body.items[0].message).toContain(sessions[0].id);
      } finally {
        await again.stop();
      }
    } finally {
      await s.stop();
      s.cleanup();
    }
  }, 60_000);

  it('refuses to start with a weak UPSHIFT_ADMIN_TOKEN and says how to make a good one', async () => {
    for (const weak of ['password', 'passwordpasswordpasswordpassword1']) {
      const started = startServerProcess({ env: { UPSHIFT_ADMIN_TOKEN: weak } });
      await expect(started).rejects.toThrow(/UPSHIFT_ADMIN_TOKEN .*(too weak|32)/);
      await expect(started).rejects.toThrow(/openssl rand -hex 32/);
    }
  });
});
