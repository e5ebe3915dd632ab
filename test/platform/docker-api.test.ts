/**
 * The one Docker Engine API client (src/platform/docker-api.ts), against real HTTP servers
 * on unix sockets that answer like an engine: what the agent reads of its host's engine,
 * and how the swarm driver's several managers are tried in turn.
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerApi, DockerApiError, DockerUnreachableError } from '../../src/platform/docker-api.js';

type Handler = (req: http.IncomingMessage, body: string) => { status: number; body: string };

const dir = mkdtempSync(join(tmpdir(), 'docker-api-'));
const servers: http.Server[] = [];
const seen: string[] = [];

/** An engine on `dir/<name>.sock` that answers with `handler`; every request is recorded as `name METHOD path`. */
async function engine(name: string, handler: Handler): Promise<string> {
  const socketPath = join(dir, `${name}.sock`);
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(`${name} ${req.method} ${req.url}`);
      const answer = handler(req, body);
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  servers.push(server);
  return socketPath;
}

let healthy = '';
let failing = '';
let html = '';

beforeAll(async () => {
  healthy = await engine('healthy', (req, body) => {
    if (req.url === '/_ping') return { status: 200, body: 'OK' };
    if (req.url?.endsWith('/version')) return { status: 200, body: JSON.stringify({ Version: '26.1.5+dfsg1' }) };
    if (req.url === '/containers/json?all=1') return { status: 200, body: JSON.stringify([{ Id: 'c1', Names: ['/web'] }]) };
    if (req.url === '/containers/missing/json') return { status: 404, body: JSON.stringify({ message: 'No such container: missing' }) };
    if (req.method === 'POST') return { status: 200, body: body };
    return { status: 404, body: JSON.stringify({ message: 'page not found' }) };
  });
  failing = await engine('failing', () => ({ status: 503, body: JSON.stringify({ message: 'This node is not a swarm manager.' }) }));
  html = await engine('html', () => ({ status: 200, body: '<p>a proxy page</p>' }));
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  rmSync(dir, { recursive: true, force: true });
});

describe('the local engine, as the agent reads it', () => {
  it('pings, reads the version and the containers, and says which container is missing', async () => {
    const docker = DockerApi.socket(healthy);
    expect(await docker.ping()).toBe(true);
    expect(await docker.version()).toBe('26.1.5+dfsg1');
    expect(await docker.containers()).toEqual([{ Id: 'c1', Names: ['/web'] }]);
    const missing = await docker.inspect('missing').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(DockerApiError);
    expect((missing as DockerApiError).status).toBe(404);
    expect((missing as Error).message).toBe(`GET /containers/missing/json on unix://${healthy}: 404 Not Found: No such container: missing`);
  });

  it('answers false to a ping where no engine listens, and names the socket when it cannot read the version', async () => {
    const docker = DockerApi.socket(join(dir, 'nothing.sock'));
    expect(await docker.ping(500)).toBe(false);
    await expect(docker.version()).rejects.toThrow(
      new DockerUnreachableError(`no Docker Engine answered GET /version: no socket at unix://${join(dir, 'nothing.sock')}`),
    );
  });
});

describe('several managers, as the swarm driver asks them', () => {
  it('moves on from a manager that answers 5xx, pins the API version and prefers the one that answered', async () => {
    seen.length = 0;
    const api = new DockerApi({ endpoints: [`unix://${failing}`, `unix://${healthy}`], apiVersion: 'v1.41', endpointNoun: 'manager' });
    expect(await api.json('POST', '/nodes/n1/update', { body: { Availability: 'drain' } })).toEqual({ Availability: 'drain' });
    expect(await api.version()).toBe('26.1.5+dfsg1');
    expect(seen).toEqual(['failing POST /v1.41/nodes/n1/update', 'healthy POST /v1.41/nodes/n1/update', 'healthy GET /v1.41/version']);
  });

  it('reports every manager when none answers, with the status and the hint only', async () => {
    const api = new DockerApi({
      endpoints: [`unix://${join(dir, 'gone.sock')}`, `unix://${failing}`],
      endpointNoun: 'manager',
      statusHint: (status) => (status === 503 ? ' (not a manager)' : ''),
    });
    const error = (await api.request('GET', '/nodes').catch((e: unknown) => e)) as DockerApiError;
    expect(error).toBeInstanceOf(DockerApiError);
    expect(error.status).toBe(503);
    expect(error.shortReason).toBe(
      `the Docker Engine API at unix://${failing} answered 503 Service Unavailable to GET /nodes (not a manager)`,
    );
    expect(error.message).toContain('This node is not a swarm manager.');

    const both = new DockerApi({ endpoints: [`unix://${failing}`, `unix://${join(dir, 'gone.sock')}`], endpointNoun: 'manager' });
    await expect(both.request('GET', '/nodes')).rejects.toThrow(
      `no manager answered GET /nodes: the Docker Engine API at unix://${failing} answered 503 Service Unavailable to GET /nodes; no socket at unix://${join(dir, 'gone.sock')}`,
    );
  });

  it('refuses an endpoint the caller does not allow without connecting, and a TCP endpoint without TLS material', async () => {
    seen.length = 0;
    const api = new DockerApi({
      endpoints: [`unix://${healthy}`, 'tcp://127.0.0.1:1'],
      refuseEndpoint: (e) => (e.startsWith('unix://') ? `${e} is not allowed here` : undefined),
    });
    await expect(api.request('GET', '/_ping')).rejects.toThrow(
      `no Docker Engine answered GET /_ping: unix://${healthy} is not allowed here; tcp://127.0.0.1:1 needs TLS client certificates`,
    );
    expect(seen).toEqual([]);
  });

  it('refuses a link-local address for a TCP endpoint unless allowed', async () => {
    const tls = { ca: 'x', cert: 'x', key: 'x' };
    const api = new DockerApi({ endpoints: ['tcp://169.254.169.254:2376'], tls });
    await expect(api.request('GET', '/_ping')).rejects.toThrow(/link-local or cloud metadata address/);
  });

  it('does not quote an answer that is not JSON', async () => {
    const api = DockerApi.socket(html);
    const error = (await api.json('GET', '/nodes').catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(DockerUnreachableError);
    expect(error.message).toBe(`unix://${html} answered GET /nodes with something that is not JSON: is it a Docker Engine API?`);
  });
});
