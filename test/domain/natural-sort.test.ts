import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareNatural, naturalSortKey } from '../../src/domain/versions.js';

/** How SQLite (BINARY) and PostgreSQL (`COLLATE "C"`) compare text: by its UTF-8 bytes. */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/**
 * Names as clusters report them: letters, digits, `.`, `_`, `-`, some other printable
 * characters, with digit runs of up to 15 digits (`compareNatural` compares runs as
 * JavaScript numbers, exact up to there) and leading zeros.
 */
const nameChar = fc.constantFrom(...'abcXYZ.-_~ /0123456789000');
const nodeName = fc.array(nameChar, { minLength: 1, maxLength: 24 }).map((chars) => chars.join(''));
const shortDigitRuns = (name: string) => (name.match(/\d+/g) ?? []).every((run) => run.length <= 15);

describe('naturalSortKey', () => {
  it('orders by bytes exactly as compareNatural orders the names', () => {
    fc.assert(
      fc.property(nodeName, nodeName, (a, b) => {
        fc.pre(shortDigitRuns(a) && shortDigitRuns(b));
        expect(Math.sign(byteOrder(naturalSortKey(a), naturalSortKey(b)))).toBe(Math.sign(compareNatural(a, b)));
      }),
      { numRuns: 20_000 },
    );
  });

  it('gives two different names two different keys', () => {
    fc.assert(
      fc.property(nodeName, nodeName, (a, b) => {
        fc.pre(a !== b);
        expect(naturalSortKey(a)).not.toBe(naturalSortKey(b));
      }),
      { numRuns: 20_000 },
    );
  });

  it('sorts the cases a person checks first', () => {
    const names = ['sim-10', 'sim-0002', 'sim-2', 'sim-1', 'sim-', 'sim', 'sim-1a', 'sim-1-b', 'node.9', 'node.10', 'Node-1', '10', '9'];
    const byKey = [...names].sort((a, b) => byteOrder(naturalSortKey(a), naturalSortKey(b)));
    expect(byKey).toEqual([
      '9',
      '10',
      'Node-1',
      'node.9',
      'node.10',
      'sim',
      'sim-',
      'sim-1',
      'sim-1-b',
      'sim-1a',
      'sim-2',
      'sim-0002',
      'sim-10',
    ]);
    expect(byKey).toEqual([...names].sort(compareNatural));
  });

  it('orders as the split-into-runs definition does, digit runs of any length included', () => {
    // The definition compareNatural had before it learnt to read names in place (issue 17).
    const byRuns = (a: string, b: string): number => {
      const ra = a.match(/\d+|\D+/g) ?? [];
      const rb = b.match(/\d+|\D+/g) ?? [];
      for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
        const x = ra[i] as string;
        const y = rb[i] as string;
        if (x === y) continue;
        if (/^\d/.test(x) && /^\d/.test(y)) return Number(x) - Number(y) || x.length - y.length;
        return x < y ? -1 : 1;
      }
      return ra.length - rb.length || (a < b ? -1 : a > b ? 1 : 0);
    };
    // Runs too long for a number (both Infinity) compare as equal values, never as NaN.
    const huge = (digit: string) => `n-${digit.repeat(400)}`;
    expect(compareNatural(huge('1'), huge('2'))).toBe(byRuns(huge('1'), huge('2')));
    const longRun = fc.stringMatching(/^[0-9]{14,40}$/);
    const anyName = fc
      .array(fc.oneof(nameChar, longRun, fc.constantFrom('\u0001', 'é', '😀')), { maxLength: 12 })
      .map((parts) => parts.join(''));
    const related = fc.tuple(anyName, anyName, anyName).map(([prefix, x, y]) => [prefix + x, prefix + y] as const);
    fc.assert(
      fc.property(fc.oneof(fc.tuple(anyName, anyName), related), ([a, b]) => {
        expect(Math.sign(compareNatural(a, b))).toBe(Math.sign(byRuns(a, b)));
      }),
      { numRuns: 20_000 },
    );
    // Names that differ inside a number, as most names of one fleet do.
    const numbered = fc.tuple(anyName, fc.nat(10 ** 9), fc.nat(10 ** 9), anyName);
    fc.assert(
      fc.property(numbered, ([prefix, x, y, suffix]) => {
        const [a, b] = [`${prefix}${x}${suffix}`, `${prefix}${y}${suffix}`];
        expect(Math.sign(compareNatural(a, b))).toBe(Math.sign(byRuns(a, b)));
      }),
      { numRuns: 20_000 },
    );
  });
});
