/**
 * Version strings come from several worlds: plain releases (`20.10.24`), Debian package
 * versions (`26.1.5+dfsg1-9`, `1.6.20~ds1-1+deb12u3`, with an optional `epoch:`) and
 * gVisor's dates (`20240729`). Comparison follows dpkg's algorithm, which orders all of
 * these correctly; `releaseOf` strips the packaging so that a node reporting
 * `26.1.5+dfsg1` counts as running the catalog's `26.1.5`.
 */

const versionPattern = /^[0-9A-Za-z][0-9A-Za-z.+~:_-]{0,63}$/;

/** True for a version string that is safe to store, show and hand to a recipe. */
export function isValidVersion(value: string): boolean {
  return versionPattern.test(value);
}

function charOrder(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (c >= '0' && c <= '9') return 0;
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** dpkg's `verrevcmp`: alternating non-digit and digit runs. */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ac = charOrder(i < a.length ? a[i] : undefined);
      const bc = charOrder(j < b.length ? b[j] : undefined);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

interface DebianVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

function parse(version: string): DebianVersion {
  let rest = version.trim();
  let epoch = 0;
  const colon = rest.indexOf(':');
  if (colon > 0 && /^\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash > 0) return { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
  return { epoch, upstream: rest, revision: '' };
}

/** Negative, zero or positive as `a` is older than, the same as or newer than `b` (dpkg order). */
export function compareVersions(a: string, b: string): number {
  const pa = parse(a);
  const pb = parse(b);
  if (pa.epoch !== pb.epoch) return pa.epoch - pb.epoch;
  const upstream = compareFragment(pa.upstream, pb.upstream);
  if (upstream !== 0) return Math.sign(upstream);
  return Math.sign(compareFragment(pa.revision, pb.revision));
}

/**
 * The release a version string names, without epoch, Debian revision or the packager's
 * `+dfsg1`/`~ds1` suffix: `1:26.1.5+dfsg1-9` → `26.1.5`; `0.0~20240729.0-1` → `20240729`.
 */
export function releaseOf(version: string): string {
  let upstream = parse(version).upstream;
  if (upstream.startsWith('0.0~')) upstream = upstream.slice(4);
  const cut = upstream.search(/[+~]/);
  if (cut > 0) upstream = upstream.slice(0, cut);
  if (/^\d{8}\.0$/.test(upstream)) upstream = upstream.slice(0, 8);
  return upstream;
}

const releaseCompareCache = new Map<string, number>();

/** Compares by release only, so that `26.1.5+dfsg1-9` equals `26.1.5`. Memoised: a fleet has few distinct versions. */
export function compareReleases(a: string, b: string): number {
  const key = `${a}\u0000${b}`;
  let result = releaseCompareCache.get(key);
  if (result === undefined) {
    result = compareVersions(releaseOf(a), releaseOf(b));
    if (releaseCompareCache.size > 10_000) releaseCompareCache.clear();
    releaseCompareCache.set(key, result);
  }
  return result;
}

export function sameRelease(a: string, b: string): boolean {
  return compareReleases(a, b) === 0;
}

/** The newest of the given versions by release, or undefined for an empty list. */
export function newestVersion(versions: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const v of versions) if (best === undefined || compareReleases(v, best) > 0) best = v;
  return best;
}

const DIGIT_0 = 48;
const DIGIT_9 = 57;

/** Digit runs with more significant digits than this are compared as `Number` text (inexact past 2^53). */
const EXACT_DIGITS = 15;

function isDigitCode(code: number): boolean {
  return code >= DIGIT_0 && code <= DIGIT_9;
}

/** Where the run of digits or of non-digits that starts at `from` ends. */
function runEnd(s: string, from: number): number {
  const digits = isDigitCode(s.charCodeAt(from));
  let end = from + 1;
  while (end < s.length && isDigitCode(s.charCodeAt(end)) === digits) end++;
  return end;
}

/** How many runs of digits and of non-digits `s` holds from `from` on. */
function runsFrom(s: string, from: number): number {
  let runs = 0;
  for (let i = from; i < s.length; i = runEnd(s, i)) runs++;
  return runs;
}

/** The value of the digits `s[from, end)`, as `Number` of that text would give it. */
function digitRunValue(s: string, from: number, end: number): number {
  let start = from;
  while (start < end && s.charCodeAt(start) === DIGIT_0) start++;
  if (end - start > EXACT_DIGITS) return Number(s.slice(from, end));
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + (s.charCodeAt(i) - DIGIT_0);
  return value;
}

/**
 * Natural order for node names: `sim-2` before `sim-10`. The names are split into runs of
 * digits and of non-digits, compared run by run: two digit runs by value (then the one with
 * fewer leading zeros first), anything else as text. It reads the names in place, without
 * splitting them into arrays, since the planner orders 100,000 names with it (issue 17).
 * Only the sign of the answer is the order.
 */
export function compareNatural(a: string, b: string): number {
  // Runs that lie wholly in the common prefix are equal: start at the run holding its last character.
  let p = 0;
  while (p < a.length && p < b.length && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  if (p === a.length && p === b.length) return 0;
  // The usual case, names that differ inside a number (`node-1234`, `node-1240`): digit runs
  // without leading zeros, short enough to be exact, order by length, then by the digit at p.
  if (p < a.length && p < b.length) {
    const x = a.charCodeAt(p);
    const y = b.charCodeAt(p);
    if (isDigitCode(x) && isDigitCode(y)) {
      let start = p;
      while (start > 0 && isDigitCode(a.charCodeAt(start - 1))) start--;
      if (a.charCodeAt(start) !== DIGIT_0 && b.charCodeAt(start) !== DIGIT_0) {
        let ea = p + 1;
        while (ea < a.length && isDigitCode(a.charCodeAt(ea))) ea++;
        let eb = p + 1;
        while (eb < b.length && isDigitCode(b.charCodeAt(eb))) eb++;
        if (ea - start <= EXACT_DIGITS && eb - start <= EXACT_DIGITS) return ea - eb || x - y;
      }
    }
  }
  let i = p;
  if (i > 0) {
    const digits = isDigitCode(a.charCodeAt(i - 1));
    while (i > 0 && isDigitCode(a.charCodeAt(i - 1)) === digits) i--;
  }
  let j = i;
  while (i < a.length && j < b.length) {
    const ie = runEnd(a, i);
    const je = runEnd(b, j);
    const xn = isDigitCode(a.charCodeAt(i));
    const yn = isDigitCode(b.charCodeAt(j));
    const xl = ie - i;
    const yl = je - j;
    let k = 0;
    while (k < xl && k < yl && a.charCodeAt(i + k) === b.charCodeAt(j + k)) k++;
    if (k === xl && k === yl) {
      i = ie;
      j = je;
      continue;
    }
    if (xn && yn) {
      const diff = digitRunValue(a, i, ie) - digitRunValue(b, j, je);
      // NaN when both runs are too long for a number (Infinity - Infinity): equal, as by `Number`.
      if (diff) return diff;
      return xl - yl;
    }
    // As text: the first code unit that differs, or the shorter run (a prefix of the other) first.
    if (k < xl && k < yl) return a.charCodeAt(i + k) < b.charCodeAt(j + k) ? -1 : 1;
    return k === xl ? -1 : 1;
  }
  return runsFrom(a, i) - runsFrom(b, j) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Ends a run of non-digits in a natural-sort key; below every character a name holds. */
const RUN_END = '\u0001';

/** `n` with its digit count in front (`7` → `17`, `12` → `212`): prefix-free and ordered like n. */
function countedNumber(n: number): string {
  const digits = String(n);
  return `${digits.length}${digits}`;
}

/**
 * A text key whose byte order is the order of `compareNatural`, so that a database can
 * sort and page node names naturally (ordered by the key, a page starting after a key) with a
 * plain index, in SQLite (BINARY) and PostgreSQL (`COLLATE "C"`) alike.
 *
 * Names are split into runs of digits and non-digits, as `compareNatural` does. A run of
 * non-digits is kept as it is and closed by U+0001, so that `a` sorts before `a-`. A run of
 * digits becomes the count of its significant digits (itself counted), those digits, then
 * the count of its leading zeros: `sim-2` before `sim-10`, and `sim-2` before `sim-0002`.
 * Its first character is a digit, which keeps digit runs where `compareNatural` puts them
 * among other characters. The key can be decoded back, so two names never share one.
 * (Names with characters below U+0002 are the one case where the orders could differ.)
 */
export function naturalSortKey(name: string): string {
  let key = '';
  for (const run of name.match(/\d+|\D+/g) ?? []) {
    if (isDigit(run[0])) {
      const significant = run.replace(/^0+/, '');
      key += countedNumber(significant.length) + significant + countedNumber(run.length - significant.length);
    } else {
      key += run + RUN_END;
    }
  }
  return key;
}
