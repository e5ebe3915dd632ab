import { AGENT_VERSION } from '../domain/catalog.js';
import { isValidVersion } from '../domain/versions.js';

declare global {
  /** Set at build time (esbuild `define`) to stamp a bundle with its version; absent in source runs. */
  var __UPSHIFT_AGENT_VERSION__: string | undefined;
}

/** This agent's version: the build's stamp, else the version of the source it was built from. */
export function agentVersion(): string {
  const stamped = globalThis.__UPSHIFT_AGENT_VERSION__;
  return typeof stamped === 'string' && isValidVersion(stamped) ? stamped : AGENT_VERSION;
}
