import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, UpshiftError } from '../../../src/domain/errors.js';
import { systemClock } from '../../../src/domain/ports.js';
import { KubernetesDriver } from '../../../src/drivers/kubernetes/index.js';
import { GuardedHttpsAgent, LINK_LOCAL_REFUSED, guardedLookup } from '../../../src/platform/target-guard.js';
import { FakeKubeApiServer } from '../../support/fake-kube-apiserver.js';
import { MemorySecrets, fastTuning, kubeClusterRecord } from '../../support/kube-engine.js';
import { startMarkerServer, tokenKubeconfig } from '../../support/marker-server.js';

let fake: FakeKubeApiServer;
let secrets: MemorySecrets;
let driver: KubernetesDriver;
let dir: string;

beforeEach(async () => {
  fake = await FakeKubeApiServer.start();
  secrets = new MemorySecrets();
  driver = new KubernetesDriver({ secrets, clock: systemClock, ...fastTuning });
  dir = mkdtempSync(join(tmpdir(), 'kubeconfig-safety-'));
});

afterEach(async () => {
  await driver.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

const ca = () => Buffer.from(fake.caCert).toString('base64');

/** A kubeconfig for the fake with the given user block (indented under `user:`) and cluster extras. */
function kubeconfig(options: { user?: string[]; cluster?: string[]; server?: string; extra?: string[] } = {}): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fake-cluster',
    '  cluster:',
    `    server: ${options.server ?? fake.url}`,
    `    certificate-authority-data: ${ca()}`,
    ...(options.cluster ?? []).map((l) => `    ${l}`),
    'contexts:',
    '- name: fake',
    '  context: {cluster: fake-cluster, user: fake-admin}',
    'current-context: fake',
    'users:',
    '- name: fake-admin',
    '  user:',
    ...(options.user ?? [`token: ${fake.token}`]).map((l) => `    ${l}`),
    ...(options.extra ?? []),
    '',
  ].join('\n');
}

function refusal(text: string): UpshiftError {
  try {
    driver.validateSecrets({ kubeconfig: text });
  } catch (error) {
    expect(error).toBeInstanceOf(UpshiftError);
    const e = error as UpshiftError;
    expect(e.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(e.httpStatus).toBe(422);
    expect(e.details).toEqual({ field: 'kubeconfig' });
    return e;
  }
  throw new Error('the kubeconfig was accepted');
}

describe('kubeconfigs: nothing in them runs or is read on the server', () => {
  it('refuses an exec plugin, at creation and when it was stored before, without running it', async () => {
    const flag = join(dir, 'exec-ran');
    const exec = kubeconfig({
      user: [
        'exec:',
        '  apiVersion: client.authentication.k8s.io/v1beta1',
        '  command: /bin/sh',
        `  args: ["-c", "touch ${flag}; echo '{\\"apiVersion\\":\\"client.authentication.k8s.io/v1beta1\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"${fake.token}\\"}}'"]`,
      ],
    });
    expect(refusal(exec).message).toMatch(/user "fake-admin": exec runs a command on the server/);
    // Stored by an older version: every inventory sync refuses it again, and runs nothing.
    const c = kubeClusterRecord(driver, 'cl_execexecexec0001');
    secrets.set(c.id, 'kubeconfig', exec);
    fake.addNode({ name: 'n1' });
    for (let i = 0; i < 2; i++) {
      const result = await driver.inventory(c, new AbortController().signal);
      expect(result).toEqual({
        reachable: false,
        reason: expect.stringMatching(/^the stored kubeconfig user "fake-admin": exec runs a command/),
      });
    }
    expect(existsSync(flag)).toBe(false);
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses an auth-provider, whether it would run a command or read a file', async () => {
    const flag = join(dir, 'gcp-ran');
    const secretFile = join(dir, 'secret.key');
    writeFileSync(secretFile, 'SERVER-SECRET-KEY-MARKER');
    const gcp = kubeconfig({ user: ['auth-provider:', '  name: gcp', '  config:', `    cmd-path: /bin/sh -c "touch ${flag}"`] });
    const file = kubeconfig({ user: ['auth-provider:', '  name: file', '  config:', `    tokenFile: ${secretFile}`] });
    for (const text of [gcp, file]) {
      const e = refusal(text);
      expect(e.message).toMatch(/auth-provider runs an authentication plugin on the server/);
      expect(e.message).not.toContain('SERVER-SECRET-KEY-MARKER');
      const c = kubeClusterRecord(driver, 'cl_authprovider0001');
      secrets.set(c.id, 'kubeconfig', text);
      const result = await driver.inventory(c, new AbortController().signal);
      expect(result.reachable).toBe(false);
      expect(JSON.stringify(result)).not.toContain('SERVER-SECRET-KEY-MARKER');
    }
    expect(existsSync(flag)).toBe(false);
  });

  it('refuses every reference to a file on the server, user names and passwords, proxies and impersonation', () => {
    const secretFile = join(dir, 'secret.key');
    writeFileSync(secretFile, 'SERVER-SECRET-KEY-MARKER');
    const cases: Array<[string, RegExp]> = [
      [kubeconfig({ user: [`tokenFile: ${secretFile}`] }), /tokenFile names a file on the server/],
      [kubeconfig({ user: [`token-file: ${secretFile}`] }), /token-file names a file on the server/],
      [kubeconfig({ user: [`client-certificate: ${secretFile}`, `client-key: ${secretFile}`] }), /client-certificate names a file/],
      [kubeconfig({ user: ['client-certificate-data: LS0tLS1CRUdJTg==', `client-key: ${secretFile}`] }), /client-key names a file/],
      [kubeconfig({ cluster: [`certificate-authority: ${secretFile}`] }), /certificate-authority names a file on the server/],
      [kubeconfig({ cluster: ['proxy-url: http://127.0.0.1:3128'] }), /proxy-url names a proxy/],
      [kubeconfig({ user: ['username: admin', 'password: hunter2'] }), /username uses a user name and password/],
      [kubeconfig({ user: [`token: ${fake.token}`, 'as: system:admin'] }), /as impersonates another user/],
      [kubeconfig({ user: [`token: ${fake.token}`, 'something: else'] }), /something is not supported; known: token/],
      [kubeconfig({ user: [] }), /user "fake-admin" carries no credentials: embed a bearer token/],
      [kubeconfig({ user: ['client-certificate-data: LS0tLS1CRUdJTg=='] }), /client-certificate-data and client-key-data go together/],
      // A user no context names yet: a later context switch must not reach it either.
      [
        kubeconfig({
          extra: ['- name: spare', '  user:', '    exec: {command: /bin/true, apiVersion: client.authentication.k8s.io/v1beta1}'],
        }),
        /user "spare": exec runs a command/,
      ],
    ];
    for (const [text, message] of cases) {
      const e = refusal(text);
      expect(e.message).toMatch(message);
      expect(e.message).not.toContain('SERVER-SECRET-KEY-MARKER');
    }
  });

  it('refuses http:// servers and link-local or metadata servers, unless the operator allows the latter', () => {
    expect(refusal(kubeconfig({ server: fake.url.replace('https:', 'http:') })).message).toMatch(
      /cluster "fake-cluster": server must be an https:\/\/ address/,
    );
    expect(refusal(kubeconfig({ server: 'https://user:pw@127.0.0.1:6443' })).message).toMatch(/must not carry a user name/);
    for (const server of [
      'https://169.254.169.254',
      'https://[fe80::1]:6443',
      'https://[fd00:ec2::254]',
      'https://metadata.google.internal',
      'https://0xA9FEA9FE:6443',
    ]) {
      expect(refusal(kubeconfig({ server })).message, server).toMatch(
        /(link-local address|cloud metadata service).*--allow-link-local-targets/,
      );
    }
    const permissive = new KubernetesDriver({ secrets, clock: systemClock, allowLinkLocalTargets: true });
    expect(() => permissive.validateSecrets({ kubeconfig: kubeconfig({ server: 'https://169.254.169.254' }) })).not.toThrow();
    // A cluster the current context does not use is checked too.
    const spare = kubeconfig().replace(
      'contexts:',
      ['- name: spare', '  cluster:', '    server: http://10.0.0.1:8080', 'contexts:'].join('\n'),
    );
    expect(refusal(spare).message).toMatch(/cluster "spare": server must be an https:\/\/ address/);
  });

  it('accepts a token or an embedded client certificate, and reaches a server by host name', async () => {
    expect(() => driver.validateSecrets({ kubeconfig: fake.kubeconfig() })).not.toThrow();
    const cert = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
    const key = Buffer.from('-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n').toString('base64');
    expect(() =>
      driver.validateSecrets({ kubeconfig: kubeconfig({ user: [`client-certificate-data: ${cert}`, `client-key-data: ${key}`] }) }),
    ).not.toThrow();
    // localhost goes through the guarded lookup (a name), and is allowed.
    fake.addNode({ name: 'n1' });
    const c = kubeClusterRecord(driver, 'cl_localhostname0001');
    secrets.set(c.id, 'kubeconfig', kubeconfig({ server: fake.url.replace('127.0.0.1', 'localhost') }));
    const result = await driver.inventory(c, new AbortController().signal);
    expect(result).toEqual({ reachable: true, nodes: [expect.objectContaining({ name: 'n1' })] });
  });
});

describe('what a cluster API answered never reaches the cluster status', () => {
  const MARKER = 'INTERNAL-SECRET-7f3a9c';

  it('reports a status and Upshift’s words, never the body', async () => {
    const service = await startMarkerServer({ marker: MARKER });
    try {
      const c = kubeClusterRecord(driver, 'cl_markermarker0001');
      secrets.set(c.id, 'kubeconfig', tokenKubeconfig(service.url, service.cert));
      const answers: Array<[MarkerAnswerShape, RegExp]> = [
        [
          {
            status: 403,
            contentType: 'application/json',
            body: JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: MARKER }),
          },
          /^the Kubernetes API at 127\.0\.0\.1:\d+ answered 403 Forbidden to GET \/api\/v1\/nodes \(the kubeconfig user lacks a permission/,
        ],
        [
          { status: 500, contentType: 'text/html', body: `<html>${MARKER}</html>` },
          /answered 500 Internal Server Error to GET \/api\/v1\/nodes$/,
        ],
        [
          { status: 200, contentType: 'text/html', body: `<html>${MARKER}</html>` },
          /GET \/api\/v1\/nodes on 127\.0\.0\.1:\d+ failed: the answer was not a Kubernetes API response/,
        ],
        [{ status: 200, contentType: 'application/json', body: `{"items": "${MARKER}` }, /the answer was not a Kubernetes API response/],
        [{ status: 302, contentType: 'text/plain', body: MARKER }, /answered 302 Found to GET \/api\/v1\/nodes/],
      ];
      for (const [answer, reason] of answers) {
        service.answer = () => answer;
        const result = await driver.inventory(c, new AbortController().signal);
        expect(result.reachable).toBe(false);
        expect(JSON.stringify(result)).not.toContain(MARKER);
        expect(result.reachable === false && result.reason).toMatch(reason);
      }
      expect(service.requests.length).toBeGreaterThanOrEqual(answers.length);
    } finally {
      await service.close();
    }
  });

  it('names a TLS failure and a refused connection in its own words', async () => {
    const service = await startMarkerServer({ marker: MARKER });
    const c = kubeClusterRecord(driver, 'cl_markertls000001');
    // Trusts another CA than the one the service presents.
    secrets.set(c.id, 'kubeconfig', tokenKubeconfig(service.url, fake.caCert));
    const untrusted = await driver.inventory(c, new AbortController().signal);
    expect(untrusted).toEqual({
      reachable: false,
      reason: `TLS certificate of 127.0.0.1:${service.port} not trusted (check the CA certificate)`,
    });
    await service.close();
    const refused = await driver.inventory(c, new AbortController().signal);
    expect(refused).toEqual({ reachable: false, reason: `connection refused by 127.0.0.1:${service.port}` });
  });
});

type MarkerAnswerShape = { status: number; contentType: string; body: string };

describe('connect-time target checks', () => {
  it('refuses a host name that resolves to a link-local or metadata address', async () => {
    const resolver =
      (addresses: string[]) => (_host: string, _o: unknown, cb: (e: null, a: Array<{ address: string; family: number }>) => void) =>
        cb(
          null,
          addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
        );
    const lookup = (allow: boolean, addresses: string[], all: boolean) =>
      new Promise<{ error: (Error & { code?: string }) | null; result: unknown }>((resolve) =>
        guardedLookup(allow, resolver(addresses))('kube.test', { all }, (error, result) => resolve({ error, result })),
      );
    expect((await lookup(false, ['127.0.0.1', '169.254.169.254'], true)).error?.code).toBe(LINK_LOCAL_REFUSED);
    expect((await lookup(false, ['fd00:ec2::254'], false)).error?.message).toMatch(
      /kube\.test resolves to fd00:ec2::254.*--allow-link-local-targets/,
    );
    expect(await lookup(false, ['10.0.0.5'], true)).toEqual({ error: null, result: [{ address: '10.0.0.5', family: 4 }] });
    expect(await lookup(false, ['10.0.0.5'], false)).toEqual({ error: null, result: '10.0.0.5' });
    expect((await lookup(true, ['169.254.169.254'], false)).error).toBeNull();

    // Through a real request: the name resolves to loopback and a metadata address; nothing connects.
    const service = await startMarkerServer({ marker: 'x' });
    try {
      const agent = new GuardedHttpsAgent({
        allowLinkLocal: false,
        ca: service.cert,
        resolve: resolver(['127.0.0.1', '169.254.169.254']) as never,
      });
      const failure = await new Promise<Error & { code?: string }>((resolve) => {
        const req = https.request({ host: 'kube.test', port: service.port, path: '/', agent, servername: 'localhost' }, () =>
          resolve(new Error('connected')),
        );
        req.on('error', resolve);
        req.end();
      });
      expect(failure.code).toBe(LINK_LOCAL_REFUSED);
      expect(service.requests).toHaveLength(0);
    } finally {
      await service.close();
    }
  });

  it('refuses an IP literal before connecting, as a redirect would give one', async () => {
    const agent = new GuardedHttpsAgent({ allowLinkLocal: false });
    // Port 70000 makes a connect attempt throw before any packet, should the check be missing.
    const outcome = await new Promise<string>((resolve) => {
      try {
        const socket = agent.createConnection({ host: '169.254.169.254', port: 70000 }, (error) =>
          resolve(`refused: ${(error as Error & { code?: string }).code}`),
        );
        if (socket) resolve('a socket was made');
      } catch (error) {
        resolve(`threw: ${(error as Error).message}`);
      }
    });
    expect(outcome).toBe(`refused: ${LINK_LOCAL_REFUSED}`);
  });
});
