import { type Static, Type } from '@sinclair/typebox';
import { NotJson, View } from './common.js';

/** The routes around the API: probes, metrics and the agent's install downloads. */

/** `/healthz`: the process answers. */
export const HealthView = View({ status: Type.Literal('ok') }, { description: 'The process answers' });
export type HealthView = Static<typeof HealthView>;

/** `/readyz`: the database and the engine are up (503 with the reason otherwise). */
export const ReadyView = View({ status: Type.Literal('ready') }, { description: 'Ready to serve' });
export type ReadyView = Static<typeof ReadyView>;

/** `/metrics`. */
export const MetricsText = NotJson('text/plain', 'Prometheus metrics, in its text format');

/** `/install/…`: the install script, the agent and its checksum (public: code, no secrets). */
export const InstallScript = NotJson('text/x-shellscript', 'The install script (POSIX sh)');
export const AgentDownload = NotJson(
  'application/javascript',
  'The agent as one JavaScript file, for hosts that run it with their own Node.js; its sha256 in the x-upshift-sha256 header',
);
export const AgentExecutableDownload = NotJson(
  'application/octet-stream',
  'The agent as one executable (Node.js inside) for a CPU; its sha256 in the x-upshift-sha256 header',
  'binary',
);
export const AgentChecksum = NotJson('text/plain', 'The agent’s sha256, in hex, and a newline');

/** `/` and the console's own paths: its page (HTML), or without a built console a redirect to /docs. */
export const ConsolePage = NotJson('text/html', 'The console');
export const RedirectToDocs = { description: 'To the API documentation at /docs' };
