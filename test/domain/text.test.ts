import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeControls, escapeControlsDeep, mayHaveControls, stripControls } from '../../src/domain/text.js';

/** Every character the rule covers, one by one. */
const controls = [
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)),
  '\u007f',
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(0x80 + i)),
  '\u061c',
  '\u200e',
  '\u200f',
  '\u2028',
  '\u2029',
  '\u202a',
  '\u202b',
  '\u202c',
  '\u202d',
  '\u202e',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
];
const attack = '\u001b]0;pwned\u0007\u001b[2J';

describe('stripControls (ingestion)', () => {
  it('removes terminal escapes, C1, DEL and bidi overrides from a single-line field', () => {
    expect(stripControls(`host${attack}-1`)).toBe('host]0;pwned[2J-1');
    expect(stripControls('a\u009b31mb\u007fc')).toBe('a31mbc');
    expect(stripControls('invoice\u202egpj.exe')).toBe('invoicegpj.exe');
    expect(stripControls('a\u2066b\u2069c\u200fd')).toBe('abcd');
    expect(stripControls('\u0000null')).toBe('null');
  });

  it('turns tabs and line breaks into spaces where the field is one line', () => {
    expect(stripControls('a\tb\nc\r\nd\re\u2028f')).toBe('a b c  d e f');
  });

  it('keeps tabs in a log line and tabs and newlines in multi-line text', () => {
    expect(stripControls('col1\tcol2\nnext', { tabs: true })).toBe('col1\tcol2 next');
    expect(stripControls(`step failed:\r\n\tdetail${attack}\rend`, { tabs: true, newlines: true })).toBe(
      'step failed:\n\tdetail]0;pwned[2J end',
    );
  });

  it('replaces lone surrogates, keeps pairs and ordinary Unicode', () => {
    expect(stripControls('a\ud800b')).toBe('a\ufffdb');
    expect(stripControls('a\udc00')).toBe('a\ufffd');
    expect(stripControls('déjà vu – 日本 😀')).toBe('déjà vu – 日本 😀');
  });

  it('leaves no control character in any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.boolean(), fc.boolean(), (text, tabs, newlines) => {
        const out = stripControls(text, { tabs, newlines });
        for (const c of controls) {
          if ((c === '\t' && tabs) || (c === '\n' && newlines)) continue;
          expect(out.includes(c)).toBe(false);
        }
        expect(stripControls(out, { tabs, newlines })).toBe(out);
      }),
    );
  });

  it('returns clean text unchanged', () => {
    const text = 'Debian GNU/Linux 12 (bookworm)';
    expect(stripControls(text)).toBe(text);
    expect(mayHaveControls(text)).toBe(false);
  });
});

describe('escapeControls (display)', () => {
  it('shows every control character as an escape', () => {
    expect(escapeControls(attack)).toBe('\\x1b]0;pwned\\x07\\x1b[2J');
    expect(escapeControls('a\u009bb\u007f')).toBe('a\\x9bb\\x7f');
    expect(escapeControls('x\u202ey\u2066')).toBe('x\\u202ey\\u2066');
    expect(escapeControls('a\tb\nc\rd')).toBe('a\\tb\\nc\\rd');
    expect(escapeControls('\ud800')).toBe('\\ud800');
  });

  it('keeps tabs and newlines of multi-line output, never a CR', () => {
    expect(escapeControls(`line 1\tx\nline 2\r${attack}`, { tabs: true, newlines: true })).toBe(
      'line 1\tx\nline 2\\r\\x1b]0;pwned\\x07\\x1b[2J',
    );
  });

  it('leaves no raw control character in any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const out = escapeControls(text);
        for (const c of controls) expect(out.includes(c)).toBe(false);
        expect(escapeControls(out)).toBe(out);
      }),
    );
  });

  it('escapes the strings and keys of a parsed JSON value, and copies nothing when there is nothing to escape', () => {
    const clean = { items: [{ name: 'n1', versions: { docker: '26.1.5' }, n: 3, ok: true, none: null }] };
    expect(escapeControlsDeep(clean)).toBe(clean);
    const dirty = { items: [{ name: 'n1', message: `x${attack}`, [`k\u001b`]: ['\u202e', 2] }], total: 1 };
    expect(escapeControlsDeep(dirty)).toEqual({
      items: [{ name: 'n1', message: 'x\\x1b]0;pwned\\x07\\x1b[2J', 'k\\x1b': ['\\u202e', 2] }],
      total: 1,
    });
    expect(dirty.items[0]?.message).toBe(`x${attack}`);
  });
});
