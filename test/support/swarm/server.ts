/**
 * The control plane of the swarm end-to-end test: the real `startServer` (routes, store,
 * engine, agent hub), with the swarm driver registered when this build's server does not
 * register it yet. Run as `node --import tsx test/support/swarm/server.ts` with
 * UPSHIFT_HOST, UPSHIFT_PORT, UPSHIFT_DATA_DIR and UPSHIFT_ADMIN_TOKEN set; it prints
 * `listening <url>` and stops on SIGTERM.
 */
import { systemClock } from '../../../src/domain/ports.js';
import { SwarmDriver } from '../../../src/drivers/swarm/index.js';
import { AgentHub } from '../../../src/engine/agents/index.js';
import { SecretBox, SecretVault } from '../../../src/engine/secrets.js';
import { loadServerConfig } from '../../../src/server/config.js';
import { startServer } from '../../../src/server/run.js';

const config = loadServerConfig({});
const server = await startServer(config);
try {
  server.engine.fleet.driverFor('swarm');
} catch {
  // The agent hub keeps everything in the database, so a second hub on the same store
  // is a faithful AgentPort for the driver (it finds results by polling).
  const drivers = (server.engine.fleet as unknown as { drivers: Record<string, unknown> }).drivers;
  drivers['swarm'] = new SwarmDriver({
    agents: new AgentHub({ store: server.store, clock: systemClock }),
    secrets: new SecretVault(server.store, SecretBox.load(config.dataDir)),
    clock: systemClock,
    pollIntervalMs: 500,
  });
}
process.stdout.write(`listening ${server.url}\n`);
process.once('SIGTERM', () => {
  void server.close().finally(() => process.exit(0));
});
