import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterRecord } from '../../../src/domain/model.js';
import type { AgentPort } from '../../../src/domain/ports.js';
import { systemClock } from '../../../src/domain/ports.js';
import { SwarmDriver } from '../../../src/drivers/swarm/index.js';

/**
 * The `swarm-services` gate's reading of a swarm: replicated services with their desired
 * replicas and running tasks, from a manager's Engine API (here an Engine API stand-in on
 * a unix socket, answering as Docker 26 does); global services are not counted.
 */
describe('SwarmDriver.serviceReplicas', () => {
  let dir: string;
  let socket: string;
  let server: Server;
  const asked: string[] = [];
  let failing = false;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'upshift-swarm-'));
    socket = join(dir, 'docker.sock');
    server = createServer((req, res) => {
      asked.push(req.url ?? '');
      if (failing) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'This node is not a swarm manager. secret-internal-detail' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url?.startsWith('/v1.41/services')) {
        res.end(
          JSON.stringify([
            { ID: 's1', Spec: { Name: 'web', Mode: { Replicated: { Replicas: 3 } } } },
            { ID: 's2', Spec: { Name: 'api', Mode: { Replicated: { Replicas: 2 } } } },
            { ID: 's3', Spec: { Name: 'node-exporter', Mode: { Global: {} } } },
            { ID: 's4', Spec: { Name: 'standby', Mode: { Replicated: { Replicas: 0 } } } },
          ]),
        );
      } else if (req.url?.startsWith('/v1.41/tasks')) {
        res.end(
          JSON.stringify([
            { ID: 't1', ServiceID: 's1', DesiredState: 'running', Status: { State: 'running' } },
            { ID: 't2', ServiceID: 's1', DesiredState: 'running', Status: { State: 'running' } },
            { ID: 't3', ServiceID: 's1', DesiredState: 'running', Status: { State: 'preparing' } },
            { ID: 't4', ServiceID: 's2', DesiredState: 'running', Status: { State: 'running' } },
            { ID: 't5', ServiceID: 's2', DesiredState: 'running', Status: { State: 'running' } },
            { ID: 't6', ServiceID: 's3', DesiredState: 'running', Status: { State: 'running' } },
          ]),
        );
      } else {
        res.writeHead(404);
        res.end('{}');
      }
    });
    await new Promise<void>((r) => server.listen(socket, r));
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const driver = () =>
    new SwarmDriver({ agents: {} as AgentPort, secrets: { read: async () => undefined }, clock: systemClock, swarmSocket: socket });
  const cluster = (d: SwarmDriver): ClusterRecord =>
    ({ id: 'cl_x', name: 'swarm', kind: 'swarm', config: d.validateConfig({ manager: `unix://${socket}` }) }) as unknown as ClusterRecord;

  it('counts the running tasks of each replicated service against its replicas, by service name', async () => {
    const d = driver();
    expect(await d.serviceReplicas(cluster(d))).toEqual([
      { name: 'api', desired: 2, running: 2 },
      { name: 'standby', desired: 0, running: 0 },
      { name: 'web', desired: 3, running: 2 },
    ]);
    expect(asked.some((u) => u.startsWith('/v1.41/tasks?filters=') && decodeURIComponent(u).includes('"desired-state":["running"]'))).toBe(
      true,
    );
  });

  it('says why in its own words when the manager refuses', async () => {
    const d = driver();
    failing = true;
    try {
      await expect(d.serviceReplicas(cluster(d))).rejects.toThrow(/503/);
      await expect(d.serviceReplicas(cluster(d))).rejects.not.toThrow(/secret-internal-detail/);
    } finally {
      failing = false;
    }
  });
});
