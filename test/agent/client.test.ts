import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerClient, ServerError } from '../../src/agent/client.js';
import { selfSignedCert } from '../support/tls.js';

/** A self-signed certificate for 127.0.0.1 (its own CA), written to `dir/<name>.pem` and `dir/<name>.key`. */
function selfSigned(dir: string, name: string): { cert: Buffer; key: Buffer } {
  const made = selfSignedCert(name, dir);
  return { cert: Buffer.from(made.cert), key: Buffer.from(made.key) };
}

/**
 * `--ca-file`: the agent's client trusts the given CA for the server and no other. A
 * server whose certificate another CA signed is refused, as is a server the system's
 * CAs do not know when no CA file is given.
 */
describe('the agent client over https', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upshift-agent-tls-'));
  let server: https.Server;
  let url = '';
  let serverCa: Buffer;
  let otherCa: Buffer;

  beforeAll(async () => {
    const own = selfSigned(dir, 'server');
    serverCa = own.cert;
    otherCa = selfSigned(dir, 'other').cert;
    server = https.createServer({ cert: own.cert, key: own.key }, (req, res) => {
      res.writeHead(req.headers.authorization === 'Bearer upa_pinned-credential-0123456789' ? 200 : 401, {
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ serverTime: new Date().toISOString(), heartbeatSeconds: 7 }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const heartbeat = (client: ServerClient) => {
    client.setCredential('upa_pinned-credential-0123456789');
    return client.heartbeat({
      facts: { hostname: 'h', os: 'linux', arch: 'x64', agentVersion: '1.1.0', versions: {}, engineReachable: false },
    });
  };

  it('talks to the server whose CA it was given', async () => {
    expect(await heartbeat(new ServerClient(url, { ca: serverCa }))).toMatchObject({ heartbeatSeconds: 7 });
  });

  it('refuses a server signed by any other CA, and one the system does not know without a CA file', async () => {
    for (const client of [new ServerClient(url, { ca: otherCa }), new ServerClient(url)]) {
      const error = await heartbeat(client).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ServerError);
      expect((error as ServerError).status).toBe(0);
      expect((error as ServerError).message).toMatch(/SELF_SIGNED_CERT|UNABLE_TO_VERIFY/);
    }
  });
});
