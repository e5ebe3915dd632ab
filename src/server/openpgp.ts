import { createHash, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/**
 * The little of OpenPGP (RFC 4880, version 4 packets) an apt repository needs: one RSA
 * signing key, its transferable public key (what a host's `Signed-By` names) and
 * signatures over the repository's `Release` file, detached (`Release.gpg`) and inline
 * (`InRelease`). Written here rather than by spawning gpg so that the server signs with
 * nothing installed beside it; apt checks the signatures with sqv or gpgv as usual.
 */

const RSA = 1;
const SHA256 = 8;
const SIG_BINARY = 0x00;
const SIG_TEXT = 0x01;
const SIG_POSITIVE_CERT = 0x13;

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A multiprecision integer: its bit count, then its bytes without leading zeros. */
function mpi(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  const bits = (v.length - 1) * 8 + (32 - Math.clz32(v[0] ?? 0));
  return Buffer.concat([u16(bits), v]);
}

/** A packet in the new format, with the length encoding RFC 4880 §4.2.2 gives for its size. */
function packet(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 192) len = Buffer.from([n]);
  else if (n < 8384) len = Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  else len = Buffer.concat([Buffer.from([0xff]), u32(n)]);
  return Buffer.concat([Buffer.from([0xc0 | tag]), len, body]);
}

function subpacket(type: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([data.length + 1, type]), data]);
}

function crc24(data: Buffer): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

function armor(kind: 'SIGNATURE' | 'PUBLIC KEY BLOCK', data: Buffer): string {
  const b64 = data.toString('base64').replace(/.{1,64}/g, '$&\n');
  const crc = Buffer.from([(crc24(data) >> 16) & 0xff, (crc24(data) >> 8) & 0xff, crc24(data) & 0xff]).toString('base64');
  return `-----BEGIN PGP ${kind}-----\n\n${b64}=${crc}\n-----END PGP ${kind}-----\n`;
}

/** An RSA key that signs as one OpenPGP primary key; `created` (Unix seconds) is part of its fingerprint. */
export class OpenPgpSigner {
  private readonly keyBody: Buffer;
  readonly fingerprint: Buffer;
  readonly keyId: Buffer;

  constructor(
    private readonly privateKey: KeyObject,
    private readonly created: number,
    private readonly userId: string,
  ) {
    const jwk = privateKey.export({ format: 'jwk' });
    if (!jwk.n || !jwk.e) throw new Error('the apt signing key is not an RSA key');
    this.keyBody = Buffer.concat([
      Buffer.from([4]),
      u32(created),
      Buffer.from([RSA]),
      mpi(Buffer.from(jwk.n, 'base64url')),
      mpi(Buffer.from(jwk.e, 'base64url')),
    ]);
    this.fingerprint = createHash('sha1')
      .update(Buffer.concat([Buffer.from([0x99]), u16(this.keyBody.length), this.keyBody]))
      .digest();
    this.keyId = this.fingerprint.subarray(12);
  }

  /** A new 3072-bit key (about a second of CPU). */
  static generate(userId: string, created = Math.floor(Date.now() / 1000)): { signer: OpenPgpSigner; pem: string } {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    return { signer: new OpenPgpSigner(privateKey, created, userId), pem };
  }

  static fromPem(pem: string, created: number, userId: string): OpenPgpSigner {
    return new OpenPgpSigner(createPrivateKey(pem), created, userId);
  }

  /** The signature packet of `type` over `prefix` (what precedes the trailer in the hash). */
  private signature(type: number, prefix: Buffer, at: number, extraHashed: Buffer[] = []): Buffer {
    const hashed = Buffer.concat([
      subpacket(2, u32(at)),
      subpacket(33, Buffer.concat([Buffer.from([4]), this.fingerprint])),
      ...extraHashed,
    ]);
    const head = Buffer.concat([Buffer.from([4, type, RSA, SHA256]), u16(hashed.length), hashed]);
    const trailer = Buffer.concat([head, Buffer.from([4, 0xff]), u32(head.length)]);
    const data = Buffer.concat([prefix, trailer]);
    const digest = createHash('sha256').update(data).digest();
    const value = sign('sha256', data, this.privateKey);
    const unhashed = subpacket(16, this.keyId);
    return packet(2, Buffer.concat([head, u16(unhashed.length), unhashed, digest.subarray(0, 2), mpi(value)]));
  }

  /** The transferable public key: key, user id, self-certification (may certify and sign). */
  publicKey(): Buffer {
    const uid = Buffer.from(this.userId, 'utf8');
    const prefix = Buffer.concat([Buffer.from([0x99]), u16(this.keyBody.length), this.keyBody, Buffer.from([0xb4]), u32(uid.length), uid]);
    const cert = this.signature(SIG_POSITIVE_CERT, prefix, this.created, [
      subpacket(27, Buffer.from([0x03])),
      subpacket(21, Buffer.from([SHA256])),
    ]);
    return Buffer.concat([packet(6, this.keyBody), packet(13, uid), cert]);
  }

  publicKeyArmored(): string {
    return armor('PUBLIC KEY BLOCK', this.publicKey());
  }

  /** A detached binary signature of `data`, armored (`Release.gpg`). */
  detached(data: Buffer, at = Math.floor(Date.now() / 1000)): string {
    return armor('SIGNATURE', this.signature(SIG_BINARY, data, at));
  }

  /**
   * `text` as a cleartext-signed message (`InRelease`). The signed form is the text's
   * lines without trailing blanks, joined by CRLF, without the last line break
   * (RFC 4880 §7.1); lines starting with a dash are dash-escaped.
   */
  clearsign(text: string, at = Math.floor(Date.now() / 1000)): string {
    const lines = text.replace(/\n$/, '').split('\n');
    const canonical = Buffer.from(lines.map((l) => l.replace(/[ \t\r]+$/, '')).join('\r\n'), 'utf8');
    const body = lines.map((l) => (l.startsWith('-') ? `- ${l}` : l)).join('\n');
    const sig = this.signature(SIG_TEXT, canonical, at);
    return `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${body}\n${armor('SIGNATURE', sig)}`;
  }
}
