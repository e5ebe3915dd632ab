/**
 * A local service that answers every request with a body holding a secret marker, as an
 * internal service (a metadata endpoint, an admin page, a database's HTTP port) would
 * answer a server that an admin pointed at it. Tests check that the marker never reaches
 * what a viewer can read. Served over HTTPS on 127.0.0.1 (its self-signed certificate,
 * for 127.0.0.1 and localhost, is its own CA) or over plain HTTP on a unix socket.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { selfSignedCert } from './tls.js';

export interface MarkerAnswer {
  status: number;
  contentType: string;
  body: string;
}

export interface MarkerServer {
  /** `https://127.0.0.1:PORT`, or the socket path for a unix server. */
  url: string;
  port: number;
  /** The server's certificate (also its CA) and key, PEM. */
  cert: string;
  key: string;
  requests: Array<{ method: string; path: string }>;
  /** What the next requests get. */
  answer: (req: IncomingMessage) => MarkerAnswer;
  close(): Promise<void>;
}

export async function startMarkerServer(
  options: { marker: string; transport?: 'https' | 'unix'; socketPath?: string } = { marker: 'MARKER' },
): Promise<MarkerServer> {
  const tls = selfSignedCert('marker-service');
  const sockets = new Set<Socket>();
  const state: MarkerServer = {
    url: '',
    port: 0,
    cert: tls.cert,
    key: tls.key,
    requests: [],
    answer: () => ({ status: 500, contentType: 'text/plain', body: `internal error: ${options.marker}` }),
    close: async () => undefined,
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    state.requests.push({ method: req.method ?? 'GET', path: req.url ?? '/' });
    req.resume();
    const { status, contentType, body } = state.answer(req);
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const server = options.transport === 'unix' ? http.createServer(handler) : https.createServer({ key: tls.key, cert: tls.cert }, handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (options.transport === 'unix') server.listen(options.socketPath!, () => resolve());
    else server.listen(0, '127.0.0.1', () => resolve());
  });
  if (options.transport === 'unix') state.url = options.socketPath!;
  else {
    state.port = (server.address() as AddressInfo).port;
    state.url = `https://127.0.0.1:${state.port}`;
  }
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return state;
}

/** A kubeconfig with an embedded token for `server`, trusting `caPem`. */
export function tokenKubeconfig(server: string, caPem: string, token = 'marker-test-token'): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: c',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'contexts:',
    '- name: ctx',
    '  context: {cluster: c, user: u}',
    'current-context: ctx',
    'users:',
    '- name: u',
    '  user:',
    `    token: ${token}`,
    '',
  ].join('\n');
}
