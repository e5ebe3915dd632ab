/**
 * Which network targets the server refuses to connect to on an admin's behalf.
 *
 * A cluster's API address (a kubeconfig's `server`, a Swarm manager's `tcp://` endpoint)
 * is chosen by an API admin, but the connection is made by the server, from inside its
 * network. Link-local addresses are where cloud providers serve instance metadata (and
 * with it the machine's cloud credentials), so they are refused unless the operator
 * allows them (`--allow-link-local-targets`). Loopback and private ranges stay allowed:
 * a kube-apiserver or a Docker Engine on the same machine or network is the normal case.
 *
 * Pure: the caller resolves host names and asks again for each address (see
 * `src/platform/target-guard.ts`), so that a name that points at a metadata address is
 * caught at connect time as well.
 */

/** Why a target is refused; `undefined` from `classifyTarget` means allowed. */
export type RefusedTarget = 'link-local' | 'metadata';

/** Host names that cloud providers give their metadata service (compared without case or a trailing dot). */
const metadataNames = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal']);

/**
 * Metadata services outside the link-local ranges: AWS over IPv6 (fd00:ec2::254),
 * Alibaba Cloud (100.100.100.200), Oracle Cloud (192.0.0.192).
 */
const metadataAddresses = ['fd00:ec2::254', '100.100.100.200', '192.0.0.192'].map((a) => parseIp(a)!.bytes.join('.'));

/** An IP address as bytes: 4 for IPv4, 16 for IPv6. */
export interface ParsedIp {
  family: 4 | 6;
  bytes: number[];
}

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes.push(value);
  }
  return bytes;
}

function parseIpv6(text: string): number[] | undefined {
  // A zone (`fe80::1%eth0`) names the interface; the address is what it is.
  const address = text.split('%')[0] ?? '';
  if (address.length === 0 || !/^[0-9A-Fa-f:.]+$/.test(address)) return undefined;
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === '') return [];
    const out: number[] = [];
    const pieces = half.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIpv4(piece);
        if (!v4) return undefined;
        out.push(v4[0]! * 256 + v4[1]!, v4[2]! * 256 + v4[3]!);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(piece)) return undefined;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  let all: number[];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return undefined;
    all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    if (head.length !== 8) return undefined;
    all = head;
  }
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** Parses an IPv4 or IPv6 address (brackets allowed around IPv6); `undefined` when it is not one. */
export function parseIp(text: string): ParsedIp | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const v4 = parseIpv4(bare);
  if (v4) return { family: 4, bytes: v4 };
  if (!bare.includes(':')) return undefined;
  const v6 = parseIpv6(bare);
  return v6 ? { family: 6, bytes: v6 } : undefined;
}

function startsWith(bytes: number[], prefix: number[]): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

/**
 * The IPv4 address an IPv6 address stands for, when it embeds one that the host would
 * reach: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and the NAT64
 * well-known prefix (64:ff9b::a.b.c.d).
 */
function embeddedIpv4(bytes: number[]): number[] | undefined {
  const zeros10 = new Array<number>(10).fill(0);
  if (startsWith(bytes, [...zeros10, 0xff, 0xff])) return bytes.slice(12);
  if (startsWith(bytes, [...zeros10, 0, 0]) && bytes.slice(12).some((b) => b !== 0)) return bytes.slice(12);
  if (startsWith(bytes, [0x00, 0x64, 0xff, 0x9b, ...new Array<number>(8).fill(0)])) return bytes.slice(12);
  return undefined;
}

/** Classifies one IP address (given as text). */
export function classifyAddress(address: string): RefusedTarget | undefined {
  const ip = parseIp(address);
  if (!ip) return undefined;
  const v4 = ip.family === 4 ? ip.bytes : embeddedIpv4(ip.bytes);
  const key = (v4 ?? ip.bytes).join('.');
  if (metadataAddresses.includes(key) || metadataAddresses.includes(ip.bytes.join('.'))) return 'metadata';
  if (v4) return v4[0] === 169 && v4[1] === 254 ? 'link-local' : undefined;
  // fe80::/10
  if (ip.bytes[0] === 0xfe && (ip.bytes[1]! & 0xc0) === 0x80) return 'link-local';
  return undefined;
}

/**
 * Classifies the host part of a target address: an IP literal by its range, a host name
 * by the names of metadata services. Any other name is allowed here and checked again
 * against what it resolves to when the server connects.
 */
export function classifyTarget(host: string): RefusedTarget | undefined {
  if (parseIp(host)) return classifyAddress(host);
  const name = host.toLowerCase().replace(/\.$/, '');
  return metadataNames.has(name) ? 'metadata' : undefined;
}

/** The flag that lets an operator allow such targets, named in every refusal. */
export const ALLOW_LINK_LOCAL_FLAG = '--allow-link-local-targets';

/**
 * A short sentence saying why `host` is refused, or `undefined` when the server may
 * connect to it. `what` names the address in the sentence ("server", "manager").
 */
export function refusedTargetReason(host: string, allowLinkLocal: boolean, what = 'the address'): string | undefined {
  if (allowLinkLocal) return undefined;
  const kind = classifyTarget(host);
  if (kind === undefined) return undefined;
  const label = kind === 'metadata' ? 'a cloud metadata service' : 'a link-local address (where cloud metadata services live)';
  return `${what} ${host} is ${label}; the server does not connect there unless it runs with ${ALLOW_LINK_LOCAL_FLAG}`;
}
