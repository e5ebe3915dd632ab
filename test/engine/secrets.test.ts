import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/engine/secrets.js';

describe('secret box', () => {
  it('seals with AES-256-GCM, a fresh IV each time, and opens what it sealed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'upshift-secrets-'));
    try {
      const box = SecretBox.load(dir, {});
      const a = box.seal('apiVersion: v1\nusers: [{token: hunter2}]');
      const b = box.seal('apiVersion: v1\nusers: [{token: hunter2}]');
      expect(a).not.toBe(b);
      expect(a).not.toContain('hunter2');
      expect(Buffer.from(a.slice(3), 'base64').toString('utf8')).not.toContain('hunter2');
      expect(box.open(a)).toContain('hunter2');
      expect(statSync(join(dir, 'secret.key')).mode & 0o777).toBe(0o600);
      expect(SecretBox.load(dir, {}).open(a)).toContain('hunter2');
      expect(readFileSync(join(dir, 'secret.key'), 'utf8').trim()).toHaveLength(44);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a tampered value or another key with a message that says why', () => {
    const box = SecretBox.fromKey(Buffer.alloc(32, 1));
    const sealed = box.seal('secret');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    raw[30] = (raw[30] ?? 0) ^ 1;
    const tampered = `v1:${raw.toString('base64')}`;
    expect(() => box.open(tampered)).toThrow(/cannot be decrypted/);
    expect(() => SecretBox.fromKey(Buffer.alloc(32, 2)).open(sealed)).toThrow(/secret key changed/);
    expect(() => SecretBox.load('/nonexistent', { UPSHIFT_SECRET_KEY: 'short' })).toThrow(/32 bytes/);
    expect(
      SecretBox.load('/nonexistent', { UPSHIFT_SECRET_KEY: '11'.repeat(32) }).open(SecretBox.fromKey(Buffer.alloc(32, 0x11)).seal('x')),
    ).toBe('x');
  });
});
