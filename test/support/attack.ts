import { request as httpRequest, Agent } from 'node:http';

/**
 * Tools for tests that attack the server the way an outsider would: raw HTTP requests
 * whose path goes on the wire exactly as written (fetch and URL would normalise `..`,
 * `%2e` and case), and the many spellings a router might read as the same route.
 */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

/** One request with the path sent byte for byte as given. */
export function rawRequest(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        agent,
        headers: {
          ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}),
          ...(options.headers ?? {}),
        },
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          // Enough to read an error envelope; an event stream is cut short.
          if (chunks.reduce((n, c) => n + c.length, 0) < 65_536) chunks.push(chunk);
          if (res.headers['content-type']?.startsWith('text/event-stream')) res.destroy();
        });
        const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        res.on('end', done);
        res.on('close', done);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in time`)));
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

const hex = (ch: string, upper: boolean) => {
  const code = ch.codePointAt(0) ?? 0;
  const h = code.toString(16).padStart(2, '0');
  return `%${upper ? h.toUpperCase() : h}`;
};

/**
 * Spellings of `path` that a lenient router, proxy or file server could take for the
 * same resource: every single character percent-encoded (lower- and upper-case hex),
 * everything encoded, encoded and doubled slashes, dot segments plain and encoded,
 * `;` parameters, changed case, double encoding, backslashes, a trailing slash, a
 * query that looks like a path. The path itself is not among them.
 */
export function pathSpellings(path: string): string[] {
  const out = new Set<string>();
  const chars = [...path];
  chars.forEach((ch, i) => {
    if (ch === '/') return;
    const before = chars.slice(0, i).join('');
    const after = chars.slice(i + 1).join('');
    out.add(`${before}${hex(ch, i % 2 === 0)}${after}`);
  });
  out.add(chars.map((ch) => (ch === '/' ? ch : hex(ch, false))).join(''));
  out.add(chars.map((ch) => (ch === '/' ? ch : hex(ch, true))).join(''));
  const segments = path.split('/').slice(1);
  const join = (parts: string[]) => `/${parts.join('/')}`;
  for (let i = 0; i < segments.length; i++) {
    const head = segments.slice(0, i);
    const tail = segments.slice(i);
    out.add(`${join(head)}/${tail.join('%2F')}`.replace(/^\/\//, '/'));
    out.add(`${join(head)}/${tail.join('%2f')}`.replace(/^\/\//, '/'));
    out.add(join([...head, '', ...tail]));
    out.add(join([...head, '.', ...tail]));
    out.add(join([...head, '%2e', ...tail]));
    out.add(join([...head, 'x', '..', ...tail]));
    out.add(join([...head, 'x', '%2e%2e', ...tail]));
    out.add(join([...head, 'x', '%2E%2E', ...tail]));
    out.add(join([...head, 'x', '.%2e', ...tail]));
    const segment = segments[i] as string;
    out.add(join([...head, `${segment};x=1`, ...segments.slice(i + 1)]));
    out.add(join([...head, `${segment};`, ...segments.slice(i + 1)]));
    out.add(join([...head, segment.toUpperCase(), ...segments.slice(i + 1)]));
    out.add(join([...head, `${segment.slice(0, 1).toUpperCase()}${segment.slice(1)}`, ...segments.slice(i + 1)]));
    out.add(join([...head, `%25${hex(segment.slice(0, 1), false).slice(1)}${segment.slice(1)}`, ...segments.slice(i + 1)]));
  }
  out.add(`/${path}`);
  out.add(`${path}/`);
  out.add(`${path}//`);
  out.add(`${path}/.`);
  out.add(`${path}/%2e`);
  out.add(`${path};`);
  out.add(`${path}%00`);
  out.add(`${path}%20`);
  out.add(path.toUpperCase());
  out.add(path.replace(/\//g, '\\'));
  out.add(path.replace(/\//g, '%5C'));
  out.add(`/x/..${path}`);
  out.add(`/%2e%2e${path}`);
  out.add(`/.${path}`);
  out.add(`/static/..${path}`);
  out.add(`/docs/..${path}`);
  out.add(`/docs/%2e%2e${path}`);
  out.add(`/install/..%2f..${path}`);
  out.delete(path);
  return [...out];
}
