/**
 * What an admin configures must not run on the server nor reach where it should not
 * (issue 13, defects 8, 12 and 17), checked through the real `upshift server` process:
 * kubeconfigs that would run commands or read the server's files, Swarm managers at
 * sockets and addresses the operator did not allow, and internal services whose answers
 * must never reach a cluster's status, which every viewer reads.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MarkerServer, startMarkerServer, tokenKubeconfig } from '../support/marker-server.js';
import { type ServerProcess, startServerProcess } from '../support/server.js';

const MARKER = 'INTERNAL-SECRET-4be1d2';

let dir: string;
let plain: ServerProcess;
let viewer: string;
const services: MarkerServer[] = [];

async function service(answer: MarkerServer['answer'], options: { transport?: 'unix'; socketPath?: string } = {}): Promise<MarkerServer> {
  const s = await startMarkerServer({ marker: MARKER, ...options });
  s.answer = answer;
  services.push(s);
  return s;
}

async function viewerToken(server: ServerProcess): Promise<string> {
  const created = await server.api('/api/v1/tokens', { body: { name: 'viewer', role: 'viewer' } });
  expect(created.status).toBe(201);
  return created.body.token as string;
}

async function clusterCount(server: ServerProcess): Promise<number> {
  const { body } = await server.api('/api/v1/clusters');
  return (Array.isArray(body) ? body : body.items).length;
}

/** What a viewer reads of a cluster and of the event log; neither may hold the marker. */
async function viewerSees(server: ServerProcess, token: string, id: string): Promise<string> {
  const cluster = await server.api(`/api/v1/clusters/${id}`, { token });
  expect(cluster.status).toBe(200);
  const events = await server.api('/api/v1/events', { token });
  expect(events.status).toBe(200);
  expect(cluster.text + events.text).not.toContain(MARKER);
  return cluster.body.statusText as string;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'admin-targets-'));
  plain = await startServerProcess({ args: ['--inventory-interval', '1h'] });
  viewer = await viewerToken(plain);
}, 60_000);

afterAll(async () => {
  await plain?.stop();
  plain?.cleanup();
  await Promise.all(services.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('kubeconfigs through the API', () => {
  const kube = (user: string[], server = 'https://127.0.0.1:6443') =>
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: c',
      `  cluster: {server: "${server}"}`,
      'contexts:',
      '- name: ctx',
      '  context: {cluster: c, user: u}',
      'current-context: ctx',
      'users:',
      '- name: u',
      '  user:',
      ...user.map((l) => `    ${l}`),
      '',
    ].join('\n');

  it('refuses commands, plugins and file references with a 422, runs nothing and stores nothing', async () => {
    const flag = join(dir, 'kubeconfig-ran');
    const secretKey = join(plain.dataDir, 'secret.key');
    expect(existsSync(secretKey)).toBe(true);
    const keyText = readFileSync(secretKey, 'utf8').trim();
    const cases: Array<[string, RegExp]> = [
      [
        kube(['exec:', '  apiVersion: client.authentication.k8s.io/v1beta1', '  command: /bin/sh', `  args: ["-c", "touch ${flag}"]`]),
        /exec runs a command on the server/,
      ],
      [kube(['auth-provider:', '  name: gcp', '  config:', `    cmd-path: touch ${flag}`]), /auth-provider runs an authentication plugin/],
      [kube(['auth-provider:', '  name: file', '  config:', `    tokenFile: ${secretKey}`]), /auth-provider runs an authentication plugin/],
      [kube([`tokenFile: ${secretKey}`]), /tokenFile names a file on the server/],
      [kube([`client-certificate: ${secretKey}`, `client-key: ${secretKey}`]), /client-certificate names a file on the server/],
      [kube(['token: abc'], 'http://127.0.0.1:8080'), /server must be an https:\/\/ address/],
      [kube(['token: abc'], 'https://169.254.169.254'), /link-local address.*--allow-link-local-targets/],
      [kube(['token: abc'], 'https://metadata.google.internal'), /cloud metadata service.*--allow-link-local-targets/],
    ];
    const before = await clusterCount(plain);
    for (const [kubeconfig, message] of cases) {
      const res = await plain.api('/api/v1/clusters', { body: { name: 'evil', kind: 'kubernetes', kubeconfig } });
      expect(res.status, res.text).toBe(422);
      expect(res.body.error).toEqual({
        code: 'VALIDATION_FAILED',
        message: expect.stringMatching(message),
        details: { field: 'kubeconfig' },
      });
      expect(res.text).not.toContain(keyText);
    }
    expect(existsSync(flag)).toBe(false);
    expect(await clusterCount(plain)).toBe(before);
  });

  it('shows a viewer only a status and Upshift’s words for what the API server answered', async () => {
    const api = await service((req) => {
      const token = (req.headers.authorization ?? '').replace('Bearer ', '');
      if (token === 'forbidden') {
        return {
          status: 403,
          contentType: 'application/json',
          body: JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 403, reason: 'Forbidden', message: MARKER }),
        };
      }
      if (token === 'broken') return { status: 500, contentType: 'text/plain', body: `panic: ${MARKER}` };
      return { status: 200, contentType: 'text/html', body: `<html><body>${MARKER}</body></html>` };
    });
    const expected: Record<string, RegExp> = {
      forbidden:
        /^Unavailable: the Kubernetes API at 127\.0\.0\.1:\d+ answered 403 Forbidden to GET \/api\/v1\/nodes \(the kubeconfig user lacks a permission/,
      broken: /^Unavailable: the Kubernetes API at 127\.0\.0\.1:\d+ answered 500 Internal Server Error to GET \/api\/v1\/nodes$/,
      html: /^Unavailable: GET \/api\/v1\/nodes on 127\.0\.0\.1:\d+ failed: the answer was not a Kubernetes API response$/,
    };
    for (const [token, statusText] of Object.entries(expected)) {
      const created = await plain.api('/api/v1/clusters', {
        body: { name: `kube-${token}`, kind: 'kubernetes', kubeconfig: tokenKubeconfig(api.url, api.cert, token) },
      });
      expect(created.status, created.text).toBe(201);
      expect(created.text).not.toContain(MARKER);
      expect(await viewerSees(plain, viewer, created.body.id)).toMatch(statusText);
    }
    expect(api.requests.length).toBeGreaterThanOrEqual(3);
  });
});

describe('swarm managers through the API', () => {
  it('refuses sockets the operator did not allow, tcp without TLS, and link-local or metadata managers', async () => {
    const tls = await service(() => ({ status: 500, contentType: 'text/plain', body: MARKER }));
    const pems = { tls: { ca: tls.cert, cert: tls.cert }, tlsKey: tls.key };
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [
        { manager: 'unix:///var/run/docker.sock' },
        'manager',
        /this server allows no Docker socket; start it with --swarm-socket \/var\/run\/docker\.sock/,
      ],
      [{ manager: 'unix://relative.sock' }, 'manager', /absolute socket path/],
      [{ manager: 'tcp://127.0.0.1:2376' }, 'tls', /needs TLS client certificates/],
      [{ manager: 'tcp://127.0.0.1:2376', tls: pems.tls }, 'tlsKey', /needs the TLS client key/],
      [
        { manager: 'tcp://169.254.169.254:2376', ...pems },
        'manager',
        /169\.254\.169\.254 is a link-local address.*--allow-link-local-targets/,
      ],
      [{ manager: ['tcp://127.0.0.1:2376', 'tcp://[fe80::1]:2376'], ...pems }, 'manager', /is a link-local address/],
      [{ manager: 'tcp://metadata.google.internal:2376', ...pems }, 'manager', /is a cloud metadata service/],
      [{ manager: 'tcp://127.0.0.1:0', ...pems }, 'manager', /is not an endpoint Upshift accepts/],
      [{ manager: 'http://127.0.0.1:2375' }, 'manager', /is not an endpoint Upshift accepts/],
    ];
    const before = await clusterCount(plain);
    for (const [fields, field, message] of cases) {
      const res = await plain.api('/api/v1/clusters', { body: { name: 'swarm-evil', kind: 'swarm', ...fields } });
      expect(res.status, res.text).toBe(422);
      expect(res.body.error).toEqual({ code: 'VALIDATION_FAILED', message: expect.stringMatching(message), details: { field } });
    }
    expect(await clusterCount(plain)).toBe(before);
    expect(tls.requests).toHaveLength(0);
  });

  it('shows a viewer only a status and Upshift’s words for what a tcp manager answered', async () => {
    const answers: Array<[MarkerServer['answer'], RegExp]> = [
      [
        () => ({ status: 500, contentType: 'text/plain', body: `goroutine 1 [running]: ${MARKER}` }),
        /^Unavailable: the Docker Engine API at tcp:\/\/127\.0\.0\.1:\d+ answered 500 Internal Server Error to GET \/nodes$/,
      ],
      [
        () => ({ status: 503, contentType: 'application/json', body: JSON.stringify({ message: MARKER }) }),
        /answered 503 Service Unavailable to GET \/nodes \(the engine is not a swarm manager, or the swarm has lost its quorum\)$/,
      ],
      [() => ({ status: 200, contentType: 'text/html', body: `<p>${MARKER}</p>` }), /answered GET \/nodes with something that is not JSON/],
      [() => ({ status: 200, contentType: 'application/json', body: JSON.stringify({ message: MARKER }) }), /not a node list$/],
    ];
    for (const [i, [answer, statusText]] of answers.entries()) {
      const manager = await service(answer);
      const created = await plain.api('/api/v1/clusters', {
        body: {
          name: `swarm-marker-${i}`,
          kind: 'swarm',
          manager: `tcp://127.0.0.1:${manager.port}`,
          tls: { ca: manager.cert, cert: manager.cert },
          tlsKey: manager.key,
        },
      });
      expect(created.status, created.text).toBe(201);
      expect(created.text).not.toContain(MARKER);
      expect(await viewerSees(plain, viewer, created.body.id)).toMatch(statusText);
      expect(manager.requests).toEqual([{ method: 'GET', path: '/v1.41/nodes' }]);
    }
  });
});

describe('operator flags', () => {
  it('--swarm-socket allows exactly that socket, and a stored socket manager is refused once the flag is gone', async () => {
    const socketPath = join(dir, 'docker.sock');
    const engine = await service(() => ({ status: 500, contentType: 'text/plain', body: `engine trace ${MARKER}` }), {
      transport: 'unix',
      socketPath,
    });
    const server = await startServerProcess({ args: ['--inventory-interval', '1s', '--swarm-socket', socketPath] });
    try {
      const token = await viewerToken(server);
      const other = await server.api('/api/v1/clusters', {
        body: { name: 'other', kind: 'swarm', manager: 'unix:///var/run/docker.sock' },
      });
      expect(other.status).toBe(422);
      expect(other.body.error.message).toBe(
        `manager unix:///var/run/docker.sock: the only Docker socket this server allows is unix://${socketPath} (set with --swarm-socket)`,
      );
      const created = await server.api('/api/v1/clusters', { body: { name: 'local', kind: 'swarm', manager: `unix://${socketPath}` } });
      expect(created.status, created.text).toBe(201);
      expect(await viewerSees(server, token, created.body.id)).toBe(
        `Unavailable: the Docker Engine API at unix://${socketPath} answered 500 Internal Server Error to GET /nodes`,
      );
      expect(engine.requests.length).toBeGreaterThanOrEqual(1);
      await server.stop();

      // The same data without the flag: the stored cluster is refused at its next sync, and the socket is not asked.
      const asked = engine.requests.length;
      const again = await startServerProcess({ dataDir: server.dataDir, args: ['--inventory-interval', '1s'] });
      try {
        let statusText = '';
        for (let i = 0; i < 100 && !/this server allows no Docker socket/.test(statusText); i++) {
          await new Promise((r) => setTimeout(r, 100));
          statusText = await viewerSees(again, token, created.body.id);
        }
        expect(statusText).toMatch(
          /^Unavailable: the stored configuration is refused: manager unix:\/\/.*this server allows no Docker socket/,
        );
        expect(engine.requests.length).toBe(asked);
      } finally {
        await again.stop();
      }
    } finally {
      await server.stop();
      server.cleanup();
    }
  }, 60_000);

  it('--allow-link-local-targets lets clusters name a link-local address', async () => {
    // The link-local address is in a network namespace this test makes (a veth pair,
    // 169.254.77.1 here and .2 there, nothing listening): the connect is refused by that
    // namespace's kernel, so no packet leaves the machine. (A zone-less fe80:: address is
    // not usable for this: Node.js 24 gives it the default interface's zone and sends
    // neighbour solicitations out of it.)
    const ns = `ul-ll-${process.pid}`;
    const hostSide = `ull${process.pid % 100000}`;
    const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
    ip('netns', 'add', ns);
    const server = await (async () => {
      try {
        ip('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        ip('addr', 'add', '169.254.77.1/30', 'dev', hostSide);
        ip('link', 'set', hostSide, 'up');
        ip('-n', ns, 'addr', 'add', '169.254.77.2/30', 'dev', 'eth0');
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
        return await startServerProcess({ args: ['--inventory-interval', '1h', '--allow-link-local-targets'] });
      } catch (error) {
        ip('netns', 'del', ns);
        throw error;
      }
    })();
    try {
      const kubeconfig = tokenKubeconfig(
        'https://169.254.77.2:6443',
        (await service(() => ({ status: 200, contentType: 'text/plain', body: '' }))).cert,
        'abc',
      );
      const kube = await server.api('/api/v1/clusters', { body: { name: 'kube-ll', kind: 'kubernetes', kubeconfig } });
      expect(kube.status, kube.text).toBe(201);
      // Tried, not refused by the target rules: the namespace's kernel answered with a reset.
      expect(kube.body.statusText).toBe('Unavailable: connection refused by 169.254.77.2:6443');
    } finally {
      await server.stop();
      server.cleanup();
      // Deleting the namespace deletes the veth pair with it.
      ip('netns', 'del', ns);
    }
  });
});
