import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { ALLOW_LINK_LOCAL_FLAG, classifyAddress, classifyTarget } from '../domain/network-targets.js';

/**
 * What the drivers need to keep admin-chosen targets in bounds at connect time, and to
 * describe a failed connection in words Upshift wrote.
 *
 * Why a lookup hook rather than a check before connecting: a host name can resolve to a
 * metadata address, and to a different address on the next lookup. The hook runs inside
 * the connection itself, on the very addresses it is about to use, so nothing can change
 * between the check and the connect.
 */

/** The error code a refused resolution carries through the HTTP client's error wrapping. */
export const LINK_LOCAL_REFUSED = 'EUPSHIFT_LINK_LOCAL';

/** `dns.lookup` with `all: true`; tests give a resolver that answers without a DNS server. */
export type Resolver = (
  hostname: string,
  options: LookupOptions & { all: true },
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/**
 * A `lookup` for `net.connect`/`https.Agent` that refuses a host name resolving to any
 * link-local or cloud metadata address, unless the operator allowed such targets.
 */
export function guardedLookup(allowLinkLocal: boolean, resolve: Resolver = dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...(options as LookupOptions), all: true }, (error, addresses: LookupAddress[]) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const refused = allowLinkLocal ? undefined : addresses.find((a) => classifyAddress(a.address) !== undefined);
      if (refused || addresses.length === 0) {
        const failure = Object.assign(
          new Error(
            refused
              ? `${hostname} resolves to ${refused.address}, a link-local or cloud metadata address; the server does not connect there unless it runs with ${ALLOW_LINK_LOCAL_FLAG}`
              : `${hostname} resolves to no address`,
          ),
          { code: refused ? LINK_LOCAL_REFUSED : 'ENOTFOUND', hostname },
        );
        callback(failure, '', 0);
        return;
      }
      if ((options as LookupOptions).all) {
        (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      } else {
        const first = addresses[0]!;
        callback(null, first.address, first.family);
      }
    });
  };
}

/** The code of a system or TLS error, also when an HTTP client wrapped it. */
function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,60}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const untrusted = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/**
 * One short line about a failed connection, built only from the error's code and the
 * target the caller names: never the error's own message, which can carry what a remote
 * or local service answered (a certificate's names, a proxy's page, a plugin's stderr).
 */
export function connectFailureReason(error: unknown, target: string): string | undefined {
  const code = errorCode(error);
  if (code === undefined) return undefined;
  if (code === LINK_LOCAL_REFUSED) {
    return `the host name of ${target} resolves to a link-local or cloud metadata address; the server does not connect there unless it runs with ${ALLOW_LINK_LOCAL_FLAG}`;
  }
  if (code === 'ECONNREFUSED') return `connection refused by ${target}`;
  if (code === 'ECONNRESET' || code === 'EPIPE') return `connection reset by ${target}`;
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT')
    return `no answer from ${target} (timed out)`;
  if (['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL'].includes(code)) {
    return `${target} cannot be reached from this server (${code})`;
  }
  if (code === 'ENOTFOUND' || code.startsWith('EAI_')) return `the host name of ${target} cannot be resolved`;
  if (code === 'ENOENT') return `no socket at ${target}`;
  if (code === 'EACCES' || code === 'EPERM') return `permission denied on ${target}`;
  if (untrusted.has(code)) return `TLS certificate of ${target} not trusted (check the CA certificate)`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `TLS certificate of ${target} expired or not yet valid`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    return `TLS certificate of ${target} does not name that host`;
  }
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    return `TLS handshake with ${target} failed (${code}): is it an HTTPS endpoint, and does it accept the client certificate?`;
  }
  return `the connection to ${target} failed (${code})`;
}

/**
 * An https.Agent that connects only where the policy allows, for every connection it
 * makes: the first request and any redirect an HTTP client follows. An IP literal is
 * checked here (a lookup is never called for one); a name is checked on the addresses
 * it resolves to, by `guardedLookup`.
 */
export class GuardedHttpsAgent extends https.Agent {
  private readonly allowLinkLocal: boolean;

  constructor(options: https.AgentOptions & { allowLinkLocal: boolean; resolve?: Resolver }) {
    const { allowLinkLocal, resolve, ...agentOptions } = options;
    super({ ...agentOptions, lookup: guardedLookup(allowLinkLocal, resolve) });
    this.allowLinkLocal = allowLinkLocal;
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = options.host ?? options.hostname ?? '';
    if (!this.allowLinkLocal && classifyTarget(host) !== undefined) {
      const refusal = Object.assign(
        new Error(
          `${host} is a link-local or cloud metadata address; the server does not connect there unless it runs with ${ALLOW_LINK_LOCAL_FLAG}`,
        ),
        { code: LINK_LOCAL_REFUSED },
      );
      // The agent's own contract: an error through the callback and no socket fails the request.
      (callback as ((err: Error | null) => void) | undefined)?.(refusal);
      return undefined;
    }
    return super.createConnection(options, callback);
  }
}

/** A remote service's own text (a Status message, an engine error) on one bounded line, without control characters. */
export function boundedLine(text: string, max = 300): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
