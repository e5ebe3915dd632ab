import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, type Server, type ServerResponse, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadServerConfig } from '../../src/server/config.js';
import { cliEnv, cliPath, runCli } from '../support/cli.js';
import { freshPgDatabase, pgUrl } from '../support/databases.js';
import { waitFor } from '../support/engine.js';
import { type ServerProcess, type StartOptions, freePort, startServerProcess } from '../support/server.js';

/**
 * Webhooks through the real server process, against real HTTP receivers on loopback:
 * refusals then success (three attempts, each signed), a receiver down across a kill -9
 * of the server, two replicas on PostgreSQL sending each delivery once, validation, the
 * secret in no answer and no log line, and a receiver that never answers while an
 * upgrade runs to its end.
 */

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver: answers each POST with the next status of `answers` (then 200), or never when `hang`. */
class Receiver {
  readonly received: Received[] = [];
  readonly hanging: ServerResponse[] = [];
  answers: number[] = [];
  hang = false;
  private server: Server | undefined;

  constructor(readonly port: number) {}

  static async start(port?: number): Promise<Receiver> {
    const receiver = new Receiver(port ?? (await freePort()));
    await receiver.listen();
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async listen(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body });
        if (this.hang) {
          this.hanging.push(res);
          return;
        }
        res.writeHead(this.answers.shift() ?? 200).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

const sign = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const newSecret = () => `whsec-${randomBytes(16).toString('hex')}`;

async function simCluster(s: ServerProcess, name: string, simulation: Record<string, unknown>): Promise<string> {
  const res = await s.api('/api/v1/clusters', {
    body: { name, kind: 'simulated', simulation: { upgradeSeconds: 0.05, versions: { agent: '1.1.0' }, ...simulation } },
  });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function startUpgrade(s: ServerProcess, clusterId: string): Promise<string> {
  const res = await s.api(`/api/v1/clusters/${clusterId}/upgrades`, { body: { component: 'docker' } });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const deliveriesOf = async (s: ServerProcess, webhook: string) => {
  const res = await s.api(`/api/v1/webhooks/${webhook}/deliveries`);
  expect(res.status).toBe(200);
  return res.body.items as Array<{
    eventId: string;
    eventType: string;
    state: string;
    upgradeId: string | null;
    nextAttemptAt: string | null;
    attempts: Array<{ at: string; status: number | null; error: string | null; nextAttemptAt: string | null }>;
  }>;
};

/**
 * A server and a receiver for the tests of one describe block, stopped after them; the
 * test starts them (with its server options) and gets a fresh secret with them.
 */
function serverWithReceiver(): (options?: StartOptions) => Promise<{ s: ServerProcess; receiver: Receiver; secret: string }> {
  let s: ServerProcess | undefined;
  let receiver: Receiver | undefined;
  afterAll(async () => {
    await s?.stop();
    s?.cleanup();
    await receiver?.close();
  });
  return async (options) => {
    s = await startServerProcess(options);
    receiver = await Receiver.start();
    return { s, receiver, secret: newSecret() };
  };
}

describe('webhooks on one server', () => {
  let s: ServerProcess;
  const receivers: Receiver[] = [];
  const texts: string[] = [];
  const secrets: string[] = [];
  const api: ServerProcess['api'] = async (path, init) => {
    const res = await s.api(path, init);
    texts.push(res.text);
    return res;
  };

  beforeAll(async () => {
    s = await startServerProcess({ args: ['--log-level', 'info', '--public-url', 'https://upshift.example.com/'] });
  });
  afterEach(async () => {
    for (const r of receivers.splice(0)) await r.close();
  });
  afterAll(async () => {
    await s?.stop();
    // The secrets never reached an answer of the API nor a line of the server's log.
    for (const secret of secrets) {
      for (const text of texts) expect(text).not.toContain(secret);
      expect(s.output()).not.toContain(secret);
    }
    s?.cleanup();
  });

  it('retries a refusing receiver until it accepts: three attempts recorded, each signed, with the event and its console link', async () => {
    const receiver = await Receiver.start();
    receivers.push(receiver);
    receiver.answers = [500, 500];
    const secret = newSecret();
    secrets.push(secret);
    const created = await api('/api/v1/webhooks', {
      body: { name: 'pager', url: receiver.url, events: ['upgrade.auto_paused', 'upgrade.completed'], secret, format: 'json' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'pager', url: receiver.url, format: 'json', pending: 0, sent: 0, failed: 0 });
    expect(Object.keys(created.body)).not.toContain('secret');
    expect(created.text).not.toMatch(/sealed|v1:/);

    const clusterId = await simCluster(s, 'hooked', { nodes: 6, failNodes: ['sim-003'] });
    const upgradeId = await startUpgrade(s, clusterId);
    const sent = await waitFor(
      async () => {
        const [d] = await deliveriesOf(s, 'pager');
        return d?.state === 'sent' ? d : undefined;
      },
      30_000,
      'the delivery to be sent',
    );
    expect(sent.attempts.map((a) => a.status)).toEqual([500, 500, 200]);
    expect(sent.attempts.map((a) => a.error)).toEqual(['the receiver answered HTTP 500', 'the receiver answered HTTP 500', null]);
    expect(sent.attempts[0]?.nextAttemptAt).not.toBeNull();
    expect(sent.attempts[1]?.nextAttemptAt).not.toBeNull();
    expect(sent.attempts[2]?.nextAttemptAt).toBeNull();
    // The second wait is longer than the first (1 s, then 2 s).
    const gap = (i: number) => Date.parse(sent.attempts[i]!.nextAttemptAt!) - Date.parse(sent.attempts[i]!.at);
    expect(gap(1)).toBeGreaterThan(gap(0));

    expect(receiver.received).toHaveLength(3);
    for (const { headers, body } of receiver.received) {
      expect(headers['x-upshift-signature']).toBe(sign(secret, body));
      expect(headers['x-upshift-event-id']).toBe(sent.eventId);
      expect(headers['content-type']).toBe('application/json');
    }
    const payload = JSON.parse(receiver.received[2]!.body) as Record<string, unknown>;
    expect(payload).toMatchObject({
      id: sent.eventId,
      type: 'upgrade.auto_paused',
      upgradeId,
      clusterId,
      actor: 'engine',
      link: `https://upshift.example.com/upgrades/${upgradeId}`,
      webhook: 'pager',
    });
    expect(payload['message']).toMatch(/sim-003/);
    expect(Date.parse(String(payload['time']))).not.toBeNaN();
    // A signature made with another secret does not match: the check can fail.
    expect(receiver.received[2]!.headers['x-upshift-signature']).not.toBe(sign('another-secret-0123456789', receiver.received[2]!.body));

    const list = await api('/api/v1/webhooks');
    expect(list.body.items).toEqual([expect.objectContaining({ name: 'pager', sent: 1, pending: 0, failed: 0 })]);
    const one = await api(`/api/v1/webhooks/${created.body.id}`);
    expect(one.body).toMatchObject({ id: created.body.id, events: ['upgrade.auto_paused', 'upgrade.completed'] });
    const events = await api('/api/v1/events?type=webhook.created,audit.request&limit=500');
    expect(events.body.items.map((e: { type: string }) => e.type)).toContain('webhook.created');
    expect(events.body.items.some((e: { message: string }) => e.message.startsWith('POST /api/v1/webhooks'))).toBe(true);
    const metrics = await api('/metrics');
    expect(metrics.text).toContain('upshift_webhook_deliveries{webhook="pager",state="sent"} 1');
    expect(metrics.text).toContain('upshift_webhook_deliveries{webhook="pager",state="pending"} 0');
  });

  it('is managed from the CLI: create with a secret file or stdin, list, deliveries, delete', async () => {
    const receiver = await Receiver.start();
    receivers.push(receiver);
    const dir = mkdtempSync(join(tmpdir(), 'upshift-webhook-cli-'));
    try {
      const env = cliEnv(s, join(dir, 'config.yaml'));
      const secret = newSecret();
      secrets.push(secret);
      writeFileSync(join(dir, 'secret'), `${secret}\n`);
      const created = await runCli(
        [
          'webhook',
          'create',
          'chat',
          '--url',
          receiver.url,
          '--events',
          'upgrade.completed,upgrade.canceled',
          '--secret-file',
          join(dir, 'secret'),
          '--format',
          'slack',
        ],
        env,
      );
      expect(created.stderr).toBe('');
      expect(created.stdout).toMatch(
        /^webhook chat \(wh_[0-9a-z]{16}\) created: upgrade\.completed, upgrade\.canceled → http:\/\/127\.0\.0\.1:\d+\/hook \(slack\)$/m,
      );
      const stdinSecret = newSecret();
      secrets.push(stdinSecret);
      const fromStdin = spawnSync(
        process.execPath,
        [cliPath, 'webhook', 'create', 'chat-2', '--url', receiver.url, '--events', 'upgrade.completed', '--secret-stdin', '-o', 'json'],
        { env, input: `${stdinSecret}\n`, encoding: 'utf8' },
      );
      expect(fromStdin.status).toBe(0);
      expect(JSON.parse(fromStdin.stdout)).toMatchObject({ name: 'chat-2', format: 'json' });
      expect(fromStdin.stdout).not.toContain(stdinSecret);
      const noSecret = await runCli(['webhook', 'create', 'chat-3', '--url', receiver.url, '--events', 'upgrade.completed'], env);
      expect(noSecret.code).toBe(2);
      expect(noSecret.stderr).toMatch(/--secret-file FILE or --secret-stdin/);

      const clusterId = await simCluster(s, 'chatty', { nodes: 3 });
      const upgradeId = await startUpgrade(s, clusterId);
      await waitFor(async () => receiver.received.length >= 2 || undefined, 30_000, 'both deliveries');
      const slack = receiver.received.find((r) => r.headers['x-upshift-signature'] === sign(secret, r.body));
      expect(slack).toBeDefined();
      const slackBody = JSON.parse(slack!.body) as { text: string; type: string };
      expect(slackBody.type).toBe('upgrade.completed');
      expect(slackBody.text).toContain(`https://upshift.example.com/upgrades/${upgradeId}`);
      expect(slackBody.text).toMatch(/^Upshift upgrade\.completed: /);
      const plain = receiver.received.find((r) => r.headers['x-upshift-signature'] === sign(stdinSecret, r.body));
      expect(JSON.parse(plain!.body)).not.toHaveProperty('text');

      const list = await runCli(['webhook', 'list'], env);
      expect(list.stdout).toMatch(/^NAME\s+URL\s+EVENTS\s+FORMAT\s+PENDING\s+SENT\s+FAILED$/m);
      expect(list.stdout).toMatch(/^chat\s+http:\/\/127\.0\.0\.1:\d+\/hook\s+upgrade\.completed,upgrade\.canceled\s+slack\s+0\s+1\s+0$/m);
      const deliveries = await runCli(['webhook', 'deliveries', 'chat'], env);
      expect(deliveries.stdout).toMatch(/^upgrade\.completed\s+sent\s+1\s+HTTP 200\s+/m);
      const asJson = await runCli(['webhook', 'deliveries', 'chat', '-o', 'json'], env);
      expect(JSON.parse(asJson.stdout).items[0]).toMatchObject({ eventType: 'upgrade.completed', state: 'sent', upgradeId });
      for (const out of [list.stdout, deliveries.stdout, asJson.stdout]) {
        expect(out).not.toContain(secret);
        texts.push(out);
      }

      const deleted = await runCli(['webhook', 'delete', 'chat'], env);
      expect(deleted.stdout).toBe('webhook chat deleted\n');
      expect((await runCli(['webhook', 'delete', 'chat-2'], env)).code).toBe(0);
      const gone = await runCli(['webhook', 'deliveries', 'chat'], env);
      expect(gone.code).toBe(4);
      expect(gone.stderr).toMatch(/webhook "chat" does not exist/);
      const events = await api('/api/v1/events?type=webhook.deleted');
      expect(events.body.items.map((e: { message: string }) => e.message)).toContain('webhook chat deleted, with its pending deliveries');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad webhooks with what to fix, and creates nothing', async () => {
    const before = (await api('/api/v1/webhooks')).body.items.length;
    const good = { name: 'fine', url: 'https://hooks.example.com/x', events: ['upgrade.completed'], secret: newSecret() };
    secrets.push(good.secret);
    const cases: Array<[Record<string, unknown>, number, string, RegExp]> = [
      [{ url: 'ftp://hooks.example.com/x' }, 422, 'VALIDATION_FAILED', /url must be http:\/\/ or https:\/\/, not ftp:/],
      [{ url: 'file:///etc/passwd' }, 422, 'VALIDATION_FAILED', /url must be http:\/\/ or https:\/\//],
      [{ url: 'hooks.example.com/x' }, 422, 'VALIDATION_FAILED', /is not an absolute URL such as https:\/\//],
      [{ url: 'https://user:pw@hooks.example.com/' }, 422, 'VALIDATION_FAILED', /must not carry a user name or password/],
      [
        { url: 'http://169.254.169.254/latest/meta-data/' },
        422,
        'VALIDATION_FAILED',
        /the webhook host 169\.254\.169\.254 is a link-local address .*--allow-link-local-targets/,
      ],
      [{ url: 'http://metadata.google.internal/' }, 422, 'VALIDATION_FAILED', /is a cloud metadata service/],
      [
        { events: ['upgrade.exploded'] },
        422,
        'VALIDATION_FAILED',
        /unknown webhook event type upgrade\.exploded; known types: .*upgrade\.auto_cancel_warning/,
      ],
      [{ events: [] }, 422, 'VALIDATION_FAILED', /events must name at least one event type/],
      [{ secret: 'short' }, 422, 'VALIDATION_FAILED', /secret must be 16 to 1024 characters \(it was 5\)/],
      [{ name: 'Bad Name' }, 422, 'VALIDATION_FAILED', /webhook name "Bad Name" must be 1-63 lowercase letters/],
      [{ format: 'xml' }, 422, 'VALIDATION_FAILED', /format must be json or slack/],
    ];
    for (const [change, status, code, message] of cases) {
      const res = await api('/api/v1/webhooks', { body: { ...good, ...change } });
      expect(res.status, JSON.stringify(change)).toBe(status);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toMatch(message);
    }
    const noSecret = await api('/api/v1/webhooks', { body: { name: 'fine', url: good.url, events: good.events } });
    expect(noSecret.status).toBe(400);
    expect((await api('/api/v1/webhooks')).body.items).toHaveLength(before);

    expect((await api('/api/v1/webhooks', { body: good })).status).toBe(201);
    const twice = await api('/api/v1/webhooks', { body: good });
    expect(twice.status).toBe(409);
    expect(twice.body.error).toMatchObject({
      code: 'ALREADY_EXISTS',
      message: expect.stringMatching(/a webhook named fine exists already/),
    });
    expect((await api('/api/v1/webhooks/nothing-here')).status).toBe(404);
    // Admins only.
    const operator = await api('/api/v1/tokens', { body: { name: 'looker', role: 'operator' } });
    expect((await api('/api/v1/webhooks', { token: operator.body.token })).status).toBe(403);
    expect((await api('/api/v1/webhooks', { token: operator.body.token, body: good })).status).toBe(403);
    expect((await api('/api/v1/webhooks/fine', { method: 'DELETE' })).status).toBe(204);
  });

  it('keeps upgrading while a receiver never answers', async () => {
    const receiver = await Receiver.start();
    receivers.push(receiver);
    receiver.hang = true;
    const secret = newSecret();
    secrets.push(secret);
    const created = await api('/api/v1/webhooks', {
      body: { name: 'black-hole', url: receiver.url, events: ['upgrade.started', 'batch.finished', 'upgrade.completed'], secret },
    });
    expect(created.status).toBe(201);
    const clusterId = await simCluster(s, 'unblocked', { nodes: 30 });
    const upgradeId = await startUpgrade(s, clusterId);
    await waitFor(
      async () => (await s.api(`/api/v1/upgrades/${upgradeId}`)).body.state === 'Completed' || undefined,
      60_000,
      'the upgrade',
    );
    // The upgrade ended while the receiver held every request it got, unanswered.
    expect(receiver.hanging.length).toBeGreaterThan(0);
    expect(receiver.hanging.length).toBe(receiver.received.length);
    const deliveries = await deliveriesOf(s, 'black-hole');
    expect(deliveries.length).toBeGreaterThan(3);
    expect(deliveries.every((d) => d.state === 'pending')).toBe(true);
    expect((await api('/api/v1/webhooks/black-hole', { method: 'DELETE' })).status).toBe(204);
  });
});

describe('webhooks of the paused TTL', () => {
  const start = serverWithReceiver();

  it('sends the auto-cancel warning before the cancel, and the cancel although the upgrade’s events were deleted', async () => {
    const { s, receiver, secret } = await start({ args: ['--paused-ttl', '5s', '--auto-cancel-warning', '2s'] });
    const hook = { name: 'ttl', url: receiver.url, events: ['upgrade.auto_cancel_warning', 'upgrade.auto_canceled'], secret };
    expect((await s.api('/api/v1/webhooks', { body: hook })).status).toBe(201);
    const upgradeId = await startUpgrade(s, await simCluster(s, 'forgotten', { nodes: 6, failNodes: ['sim-002'] }));
    await waitFor(async () => receiver.received.length >= 2 || undefined, 30_000, 'the warning and the cancel');
    const bodies = receiver.received.map((r) => JSON.parse(r.body) as Record<string, any>);
    expect(bodies.map((b) => b.type)).toEqual(['upgrade.auto_cancel_warning', 'upgrade.auto_canceled']);
    expect(bodies.every((b) => b.upgradeId === upgradeId)).toBe(true);
    expect(Date.parse(bodies[0]!.data.autoCancelAt) - Date.parse(bodies[0]!.data.pausedAt)).toBe(5000);
    expect(bodies[0]!.message).toMatch(/will be canceled automatically at/);
    for (const r of receiver.received) expect(r.headers['x-upshift-signature']).toBe(sign(secret, r.body));
    // The purge left only the cancel's tombstone among the upgrade's events.
    const left = await s.api(`/api/v1/events?upgradeId=${upgradeId}`);
    expect(left.body.items.map((e: { type: string }) => e.type)).toEqual(['upgrade.auto_canceled']);
  });
});

describe('webhooks across a kill -9 of the server', () => {
  const start = serverWithReceiver();

  it('delivers an event refused before the crash once the receiver is back after the restart', async () => {
    const { s, receiver, secret } = await start();
    receiver.answers = [500];
    expect(
      (await s.api('/api/v1/webhooks', { body: { name: 'crash', url: receiver.url, events: ['upgrade.completed'], secret } })).status,
    ).toBe(201);
    const upgradeId = await startUpgrade(s, await simCluster(s, 'crashing', { nodes: 3 }));
    await waitFor(async () => (await deliveriesOf(s, 'crash'))[0]?.attempts.length === 1 || undefined, 30_000, 'the refusal');
    // The receiver goes down, then the server dies without a word.
    await receiver.close();
    await s.kill9();
    await s.restart();
    const down = await waitFor(
      async () => {
        const [d] = await deliveriesOf(s, 'crash');
        return d && d.attempts.length >= 2 ? d : undefined;
      },
      90_000,
      'an attempt while the receiver is down',
    );
    expect(down.state).toBe('pending');
    expect(down.attempts[0]?.status).toBe(500);
    expect(down.attempts[1]).toMatchObject({ status: null, error: 'connection failed: ECONNREFUSED' });
    expect(down.nextAttemptAt).not.toBeNull();
    expect(receiver.received).toHaveLength(1);
    await receiver.listen();
    const sent = await waitFor(
      async () => {
        const [d] = await deliveriesOf(s, 'crash');
        return d?.state === 'sent' ? d : undefined;
      },
      60_000,
      'the delivery after the restart',
    );
    expect(sent.attempts[sent.attempts.length - 1]?.status).toBe(200);
    expect(receiver.received).toHaveLength(2);
    const last = receiver.received[1]!;
    expect(last.headers['x-upshift-signature']).toBe(sign(secret, last.body));
    expect(last.headers['x-upshift-event-id']).toBe(receiver.received[0]!.headers['x-upshift-event-id']);
    expect(JSON.parse(last.body)).toMatchObject({ type: 'upgrade.completed', upgradeId });
  });
});

describe.skipIf(!pgUrl)('webhooks with two replicas on PostgreSQL', () => {
  const servers: ServerProcess[] = [];
  let receiver: Receiver | undefined;
  let drop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    for (const s of servers) {
      await s.stop();
      s.cleanup();
    }
    await receiver?.close();
    await drop?.();
  });

  it('sends each delivery once, not once per replica', async () => {
    const db = await freshPgDatabase();
    drop = db.drop;
    // Replicas share the database and the key that seals secrets.
    const env = { UPSHIFT_SECRET_KEY: randomBytes(32).toString('hex') };
    servers.push(await startServerProcess({ database: db.url, env }));
    servers.push(await startServerProcess({ database: db.url, env }));
    const [a, b] = servers as [ServerProcess, ServerProcess];
    receiver = await Receiver.start();
    const secret = newSecret();
    expect(
      (
        await a.api('/api/v1/webhooks', {
          body: { name: 'shared', url: receiver.url, events: ['upgrade.started', 'batch.finished', 'upgrade.completed'], secret },
        })
      ).status,
    ).toBe(201);
    const first = await startUpgrade(b, await simCluster(b, 'replicated-1', { nodes: 40 }));
    const second = await startUpgrade(a, await simCluster(a, 'replicated-2', { nodes: 40 }));
    for (const id of [first, second])
      await waitFor(async () => (await a.api(`/api/v1/upgrades/${id}`)).body.state === 'Completed' || undefined, 60_000, 'the upgrades');
    const all = await waitFor(
      async () => {
        const items = await deliveriesOf(b, 'shared');
        return items.length > 0 && items.every((d) => d.state === 'sent') ? items : undefined;
      },
      60_000,
      'every delivery to be sent',
    );
    // started + completed + at least 4 batches, for each upgrade.
    expect(all.length).toBeGreaterThanOrEqual(12);
    expect(all.every((d) => d.attempts.length === 1)).toBe(true);
    const ids = receiver.received.map((r) => r.headers['x-upshift-event-id']);
    expect(ids.length).toBe(all.length);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set(all.map((d) => d.eventId)));
    for (const r of receiver.received) expect(r.headers['x-upshift-signature']).toBe(sign(secret, r.body));
  });
});

describe('the webhook settings of the server', () => {
  it('takes --public-url and --auto-cancel-warning, and refuses what cannot be used with what to write instead', () => {
    const config = loadServerConfig({ publicUrl: 'https://upshift.example.com/', autoCancelWarning: '36h' }, {});
    expect(config.publicUrl).toBe('https://upshift.example.com');
    expect(config.autoCancelWarningMs).toBe(36 * 3600_000);
    const defaults = loadServerConfig({}, {});
    expect(defaults.publicUrl).toBeNull();
    expect(defaults.autoCancelWarningMs).toBe(24 * 3600_000);
    expect(loadServerConfig({}, { UPSHIFT_PUBLIC_URL: 'http://10.0.0.5:8420' }).publicUrl).toBe('http://10.0.0.5:8420');
    expect(() => loadServerConfig({ publicUrl: 'ftp://upshift.example.com' }, {})).toThrow(ConfigError);
    expect(() => loadServerConfig({ publicUrl: 'upshift.example.com' }, {})).toThrow(
      /publicUrl \(flag --public-url\): "upshift.example.com" is not an http:\/\/ or https:\/\/ URL such as https:\/\/upshift.example.com/,
    );
    expect(() => loadServerConfig({ autoCancelWarning: 'soon' }, {})).toThrow(
      /autoCancelWarning .*"soon" is not a duration of at least 1s/,
    );
  });
});
