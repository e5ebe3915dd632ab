import { randomBytes } from 'node:crypto';

/**
 * Ids are a short type prefix and 16 random base32 characters (`upg_4k1…`): the prefix
 * tells a reader what an id names in a log line, and 80 random bits never collide in a
 * fleet. They are opaque to clients.
 */
export const IdPrefix = {
  cluster: 'cl',
  node: 'nd',
  upgrade: 'upg',
  nodeTask: 'nt',
  snapshot: 'snap',
  webhook: 'wh',
} as const;
export type IdPrefix = (typeof IdPrefix)[keyof typeof IdPrefix];

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

export function newId(prefix: IdPrefix): string {
  const bytes = randomBytes(16);
  let out = '';
  for (const byte of bytes) out += alphabet[byte & 31];
  return `${prefix}_${out}`;
}

const idPattern = /^[a-z]{2,4}_[0-9a-z]{16}$/;

export function looksLikeId(value: string): boolean {
  return idPattern.test(value);
}
