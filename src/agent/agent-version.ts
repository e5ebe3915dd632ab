import { PRODUCT_VERSION } from '../domain/product-version.js';
import { isValidVersion } from '../domain/versions.js';

declare global {
  /**
   * Set at build time (esbuild `define`) to stamp a bundle with another version: only the
   * real-host tests do, to build the "newer" agent a self-upgrade installs. Absent in
   * `npm run build`'s bundle and in source runs.
   */
  var __UPSHIFT_AGENT_VERSION__: string | undefined;
}

/**
 * This agent's own version, what it reports on join and with every heartbeat: the build's
 * stamp, else the product version. The agent is built from the same source as the server
 * (`npm run build` writes dist/agent.js beside dist/upshift.js), so without a stamp the two
 * always agree.
 */
export function agentVersion(): string {
  const stamped = globalThis.__UPSHIFT_AGENT_VERSION__;
  return typeof stamped === 'string' && isValidVersion(stamped) ? stamped : PRODUCT_VERSION;
}
