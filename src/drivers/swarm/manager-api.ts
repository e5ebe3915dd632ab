import type { DockerTls } from '../../platform/docker-api.js';
import { DockerApi, DockerApiError, DockerUnreachableError } from '../../platform/docker-api.js';
import type { SwarmTargetPolicy } from './config.js';

/** The API version both engines of a 20.10 → 26.x upgrade speak (20.10 tops out at 1.41). */
export const SWARM_API_VERSION = 'v1.41';

/** What to do about an HTTP status from a manager, in Upshift's words. */
function statusHint(status: number): string {
  if (status === 401 || status === 403) return ' (the TLS client certificate was refused: check tls.cert and tlsKey)';
  if (status === 503) return ' (the engine is not a swarm manager, or the swarm has lost its quorum)';
  if (status === 404) return ' (is this the Engine API of a swarm manager?)';
  return '';
}

/**
 * The Engine API of a swarm's managers, tried in order (see `DockerApi`). The unix socket
 * was checked when the cluster was created; it is checked again on every request, as the
 * operator may have changed `--swarm-socket` since. A TCP manager needs the cluster's
 * TLS client key.
 */
export function managerApi(managers: readonly string[], tls: DockerTls | undefined, policy: SwarmTargetPolicy): DockerApi {
  return new DockerApi({
    endpoints: managers,
    tls,
    allowLinkLocal: policy.allowLinkLocalTargets,
    apiVersion: SWARM_API_VERSION,
    endpointNoun: 'manager',
    statusHint,
    refuseEndpoint: (endpoint) => {
      if (endpoint.startsWith('unix://')) {
        return endpoint.slice('unix://'.length) === policy.swarmSocket
          ? undefined
          : `${endpoint} is not the Docker socket this server allows (--swarm-socket)`;
      }
      return tls ? undefined : `${endpoint} needs the TLS client key: the cluster has no tlsKey secret`;
    },
  });
}

/**
 * Why a manager call failed, for the cluster's status: a status and Upshift's words, or
 * how the connection failed; never what the endpoint answered.
 */
export function swarmFailureReason(error: unknown): string {
  if (error instanceof DockerApiError) return error.shortReason;
  if (error instanceof DockerUnreachableError) return error.message;
  return 'the swarm managers could not be read';
}
