/**
 * Control characters in text that came from outside. An agent's facts, log lines and
 * results end up in the database, in events, in the API and from there in an operator's
 * terminal and the console. There, an ESC starts a terminal command (set the window
 * title, clear the screen, fake coloured text), the C1 characters are the same commands
 * in their 8-bit form, a CR moves back to the start of the line to overwrite what it
 * shows, and the bidi controls make text read differently from what it is.
 *
 * Two sides of one rule:
 * - `stripControls` at ingestion: the server stores no control character an agent sent,
 *   except a tab or a newline where the field is multi-line text;
 * - `escapeControls` at display: the CLI shows any control character a server string
 *   still carries as a visible escape (`\x1b`, `\u202e`), never raw.
 */

/** Which whitespace controls a field keeps: tabs (log lines, multi-line text), newlines (multi-line text only). */
export interface TextShape {
  tabs?: boolean;
  newlines?: boolean;
}

/**
 * Every character this module treats as a control: C0 (U+0000–U+001F, tab, LF and CR
 * included), DEL, C1 (U+0080–U+009F), the bidi marks and overrides (U+061C, U+200E,
 * U+200F, U+202A–U+202E, U+2066–U+2069), the line and paragraph separators (U+2028,
 * U+2029: a line break in a field that holds none) and lone UTF-16 surrogates (not
 * text at all; they cannot be stored as UTF-8).
 */
const controlPattern =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// eslint-disable-next-line no-control-regex
const controlTest = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/;

/** False when `text` surely holds nothing `stripControls` or `escapeControls` would change (a fast first check; surrogate pairs count as maybe). */
export function mayHaveControls(text: string): boolean {
  return controlTest.test(text);
}

/**
 * `text` without control characters, for storing what an agent sent. A tab or a line
 * break (LF, CR, U+2028, U+2029) in a field that may not hold it becomes a space, so
 * that words stay apart; in multi-line text CRLF and the Unicode separators become a
 * newline; a lone surrogate becomes U+FFFD; every other control character is removed.
 */
export function stripControls(text: string, shape: TextShape = {}): string {
  if (!mayHaveControls(text)) return text;
  const normalised = shape.newlines ? text.replace(/\r\n/g, '\n') : text;
  return normalised.replace(controlPattern, (c) => {
    if (c === '\t') return shape.tabs ? c : ' ';
    if (c === '\n' || c === '\u2028' || c === '\u2029') return shape.newlines ? '\n' : ' ';
    if (c === '\r') return ' ';
    if (c.length === 1 && c >= '\ud800' && c <= '\udfff') return '\ufffd';
    return '';
  });
}

const shortEscapes: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** The visible form of one control character: `\n`, `\x1b`, `\u202e`. */
function visible(c: string): string {
  const short = shortEscapes[c];
  if (short) return short;
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` safe to print on a terminal: every control character shows as an escape
 * (`\x1b`, `\x9b`, `\u202e`, `\r`), except tabs and newlines where `shape` keeps them
 * (multi-line output such as a node's log).
 */
export function escapeControls(text: string, shape: TextShape = {}): string {
  if (!mayHaveControls(text)) return text;
  return text.replace(controlPattern, (c) => ((c === '\t' && shape.tabs) || (c === '\n' && shape.newlines) ? c : visible(c)));
}

/**
 * A parsed JSON value with every string, object keys included, passed through
 * `escapeControls`: what the CLI got from the server, made safe to print whatever
 * part of it a command shows. Values without control characters are returned as they
 * are (no copy).
 */
export function escapeControlsDeep<T>(value: T, shape: TextShape = {}): T {
  return escapeValue(value, shape) as T;
}

function escapeValue(value: unknown, shape: TextShape): unknown {
  if (typeof value === 'string') return escapeControls(value, shape);
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i] as unknown;
      const escaped = escapeValue(item, shape);
      if (escaped !== item) {
        out ??= value.slice();
        out[i] = escaped;
      }
    }
    return out ?? value;
  }
  if (value !== null && typeof value === 'object') {
    let changed = false;
    const entries = Object.entries(value as Record<string, unknown>).map(([key, item]): [string, unknown] => {
      const escapedKey = escapeControls(key, shape);
      const escaped = escapeValue(item, shape);
      if (escapedKey !== key || escaped !== item) changed = true;
      return [escapedKey, escaped];
    });
    return changed ? Object.fromEntries(entries) : value;
  }
  return value;
}
