/**
 * A real Upshift server (`bin/upshift.js server`, SQLite) started for the hosts of a testbed,
 * shared by the real-host suites (test/hosts/*.e2e.test.ts) and the Debian mirror
 * (debian-mirror.ts):
 *
 *   - it listens on the testbed's bridge address, the one address the hosts reach
 *   - its data dir is under the testbed root and it runs in the testbed's server cgroup
 *     (host-agents.ts `serverCgroupProcs`), so the testbed's teardown and its crash cleanup
 *     remove both even when the test process dies first
 *   - agents heartbeat every 5 s, so that "Down" (three missed heartbeats) comes in seconds
 *
 *   const server = await startTestbedServer(bed, { token });
 *   const created = await server.api('POST', '/clusters', { name: 'c', kind: 'hosts' });
 *   await server.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { REPO, serverCgroupProcs } from './host-agents.js';
import type { Testbed } from './hosts.js';

/** A node as GET /clusters/:id/nodes shows it: what the real-host suites look at. */
export interface NodeView {
  id: string;
  name: string;
  status: string;
  versions: Record<string, string>;
}

export interface TestbedServer {
  /** `http://<bridge address>:<port>`: what the hosts' agents (and apt, curl) reach. */
  base: string;
  child: ChildProcess;
  /** Calls /api/v1 as the admin: JSON in and out, or `raw` bytes in (uploads). */
  api<T = any>(method: string, p: string, body?: unknown, raw?: Buffer): Promise<{ status: number; body: T }>;
  /** A text answer of /api/v1 (a node task's log). */
  text(p: string): Promise<string>;
  /** The nodes of a cluster. */
  nodes(clusterId: string): Promise<NodeView[]>;
  /** What the server printed so far (the last `chars`). */
  output(chars?: number): string;
  /** SIGTERM, then waits for the exit. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts the server on the testbed's bridge address with the admin `token` (and `catalog`,
 * when given, as its --catalog file), and waits until it answers /healthz.
 */
export async function startTestbedServer(bed: Testbed, opts: { token: string; catalog?: Record<string, unknown> }): Promise<TestbedServer> {
  const data = path.join(bed.root, 'server');
  await mkdir(data, { recursive: true });
  const catalogArgs: string[] = [];
  if (opts.catalog) {
    const catalogFile = path.join(bed.root, 'catalog.yaml');
    await writeFile(catalogFile, stringify(opts.catalog));
    catalogArgs.push('--catalog', catalogFile);
  }
  const port = 20000 + Math.floor(Math.random() * 20000);
  const base = `http://${bed.bridgeIp}:${port}`;
  // sh joins the testbed's server cgroup, then execs the server: one PID throughout.
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      'echo $$ > "$1" && shift && exec "$@"',
      'sh',
      await serverCgroupProcs(bed),
      process.execPath,
      path.join(REPO, 'bin/upshift.js'),
      'server',
      '--host',
      bed.bridgeIp,
      '--port',
      String(port),
      '--data-dir',
      data,
      ...catalogArgs,
      '--log-level',
      'warn',
      '--agent-heartbeat',
      '5s',
    ],
    { env: { ...process.env, UPSHIFT_ADMIN_TOKEN: opts.token }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const headers = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${opts.token}`, ...extra });
  const server: TestbedServer = {
    base,
    child,
    async api<T>(method: string, p: string, body?: unknown, raw?: Buffer) {
      const res = await fetch(`${base}/api/v1${p}`, {
        method,
        headers: headers(
          raw ? { 'content-type': 'application/octet-stream' } : body !== undefined ? { 'content-type': 'application/json' } : {},
        ),
        ...(raw ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
    },
    async text(p) {
      const res = await fetch(`${base}/api/v1${p}`, { headers: headers() });
      if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
      return res.text();
    },
    async nodes(clusterId) {
      return (await server.api<{ items: NodeView[] }>('GET', `/clusters/${clusterId}/nodes`)).body.items;
    },
    output: (chars = 3000) => out.slice(-chars),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`${base}/healthz`).catch(() => undefined))?.ok) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await server.stop();
      throw new Error(`the server did not answer on ${base}/healthz within 30 s:\n${server.output()}`);
    }
    await sleep(250);
  }
  return server;
}
