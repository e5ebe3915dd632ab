import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyAddress, classifyTarget, parseIp, refusedTargetReason } from '../../src/domain/network-targets.js';

describe('network targets', () => {
  it('refuses link-local IPv4 and IPv6, in every spelling', () => {
    for (const address of [
      '169.254.169.254',
      '169.254.0.1',
      '169.254.255.255',
      '169.254.170.2',
      '[169.254.169.254]',
      'fe80::1',
      '[fe80::1]',
      'FE80::abcd:1',
      'febf:ffff::1',
      'fe80::1%eth0',
      '::ffff:169.254.169.254',
      '[::ffff:a9fe:a9fe]',
      '::ffff:a9fe:1',
      '0:0:0:0:0:ffff:169.254.1.1',
      '::169.254.169.254',
      '64:ff9b::169.254.169.254',
    ]) {
      expect(classifyAddress(address), address).toBe('link-local');
      expect(classifyTarget(address), address).toBe('link-local');
    }
  });

  it('refuses cloud metadata addresses and names', () => {
    for (const target of ['fd00:ec2::254', '[fd00:ec2:0::254]', '100.100.100.200', '192.0.0.192', '::ffff:100.100.100.200']) {
      expect(classifyTarget(target), target).toBe('metadata');
    }
    for (const name of ['metadata', 'METADATA', 'metadata.google.internal', 'Metadata.Google.Internal.', 'metadata.']) {
      expect(classifyTarget(name), name).toBe('metadata');
    }
  });

  it('allows loopback, private ranges and ordinary names', () => {
    for (const target of [
      '127.0.0.1',
      '::1',
      '[::1]',
      '10.200.0.11',
      '192.168.1.10',
      '172.16.0.1',
      'fd00::1',
      'fc00::254',
      'fd00:ec2::253',
      '169.253.255.255',
      '169.255.0.1',
      'fec0::1',
      'fe7f::1',
      '100.100.100.201',
      'localhost',
      'kube.example.com',
      'metadata.example.com',
      'metadata-service',
    ]) {
      expect(classifyTarget(target), target).toBeUndefined();
    }
  });

  it('parses exactly what Node takes for an IP address', () => {
    const candidates = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.ipV4Extended(),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef:.'.split('')), maxLength: 45 }),
    );
    fc.assert(
      fc.property(candidates, (text) => {
        expect(parseIp(text) !== undefined, text).toBe(isIP(text) !== 0);
      }),
      { numRuns: 3000 },
    );
  });

  it('classifies every 169.254.0.0/16 address as link-local, also IPv4-mapped, and nothing just outside', () => {
    fc.assert(
      fc.property(fc.nat(255), fc.nat(255), (c, d) => {
        expect(classifyAddress(`169.254.${c}.${d}`)).toBe('link-local');
        expect(classifyAddress(`::ffff:169.254.${c}.${d}`)).toBe('link-local');
        expect(classifyAddress(`169.${c === 254 ? 253 : c}.${d}.1`)).toBeUndefined();
      }),
    );
  });

  it('says why and names the flag, or nothing when allowed', () => {
    expect(refusedTargetReason('169.254.169.254', false, 'server')).toBe(
      'server 169.254.169.254 is a link-local address (where cloud metadata services live); the server does not connect there unless it runs with --allow-link-local-targets',
    );
    expect(refusedTargetReason('metadata.google.internal', false)).toMatch(/is a cloud metadata service.*--allow-link-local-targets/);
    expect(refusedTargetReason('169.254.169.254', true)).toBeUndefined();
    expect(refusedTargetReason('127.0.0.1', false)).toBeUndefined();
  });
});
