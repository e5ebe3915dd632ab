import http from 'node:http';
import https from 'node:https';
import { boundsText, type GateResult, type HttpGate, type PrometheusGate } from '../../domain/gates.js';
import { refusedTargetReason } from '../../domain/network-targets.js';
import { boundedLine, connectFailureReason, GuardedHttpsAgent, guardedLookup } from '../../platform/target-guard.js';

/** A gate's answer is read up to this size: a health page or a query result, not a download. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

interface Answer {
  status: number;
  body: string;
}

/**
 * Checks HTTP and Prometheus health gates once (docs/design.md, "Rollout guards"). The
 * connections keep to the same bounds as cluster addresses: an IP literal is checked
 * before connecting and a host name on the addresses it resolves to, at connect time
 * (`guardedLookup`), so a name cannot point a gate at a cloud metadata service. Redirects
 * are not followed: a gate checks the URL it names. What a failed check says is built
 * from the status, the values and Upshift's own words; a bearer token never appears.
 */
export class GateProbe {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(private readonly options: { allowLinkLocal: boolean }) {
    // Kept-alive connections: a gate is checked before every batch, and a new connection
    // each time is a handshake (and for https a TLS session) per batch for nothing. An
    // idle connection is closed after 30 s; a new one is checked again at connect time.
    const keepAlive = { keepAlive: true, maxFreeSockets: 4, timeout: 30_000 };
    this.httpAgent = new http.Agent({ ...keepAlive, lookup: guardedLookup(options.allowLinkLocal) });
    this.httpsAgent = new GuardedHttpsAgent({ ...keepAlive, allowLinkLocal: options.allowLinkLocal });
  }

  /** Closes the kept-alive connections (the server is stopping). */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  async http(gate: HttpGate, signal?: AbortSignal): Promise<GateResult> {
    let answer: Answer;
    try {
      answer = await this.get(new URL(gate.url), gate.timeoutSeconds, {}, signal);
    } catch (error) {
      return { ok: false, message: `GET ${gate.url}: ${this.reason(error, gate.url, gate.timeoutSeconds)}` };
    }
    if (answer.status !== gate.expectStatus) {
      return { ok: false, message: `GET ${gate.url} answered ${answer.status}, expected ${gate.expectStatus}` };
    }
    if (gate.bodyContains !== undefined && !answer.body.includes(gate.bodyContains)) {
      return { ok: false, message: `GET ${gate.url} answered ${answer.status} without "${gate.bodyContains}" in its body` };
    }
    return {
      ok: true,
      message: `GET ${gate.url} answered ${answer.status}${gate.bodyContains !== undefined ? ` with "${gate.bodyContains}"` : ''}`,
    };
  }

  /** An instant query (`/api/v1/query`); every sample must lie within the bounds, and no sample fails unless `allowEmpty`. */
  async prometheus(gate: PrometheusGate, bearerToken: string | undefined, signal?: AbortSignal): Promise<GateResult> {
    const base = new URL(gate.url);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    const url = new URL('api/v1/query', base);
    url.searchParams.set('query', gate.query);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (bearerToken !== undefined) headers['authorization'] = `Bearer ${bearerToken}`;
    const q = `query ${gate.query}`;
    let answer: Answer;
    try {
      answer = await this.get(url, gate.timeoutSeconds, headers, signal);
    } catch (error) {
      return { ok: false, message: `${q} on ${gate.url}: ${this.reason(error, gate.url, gate.timeoutSeconds)}` };
    }
    let parsed: { status?: unknown; error?: unknown; data?: { resultType?: unknown; result?: unknown } };
    try {
      parsed = JSON.parse(answer.body) as typeof parsed;
    } catch {
      return { ok: false, message: `${q} on ${gate.url}: the answer (${answer.status}) is not a Prometheus API answer` };
    }
    if (parsed.status !== 'success') {
      const said = typeof parsed.error === 'string' ? `: ${boundedLine(parsed.error, 200)}` : '';
      const auth = answer.status === 401 || answer.status === 403 ? ' (check the bearer token)' : '';
      return { ok: false, message: `${q} on ${gate.url} failed with ${answer.status}${auth}${said}` };
    }
    const samples = samplesOf(parsed.data?.resultType, parsed.data?.result);
    if (samples === undefined)
      return { ok: false, message: `${q}: a ${String(parsed.data?.resultType)} result is not a number or a vector` };
    const bounds = boundsText(gate);
    if (samples.length === 0) {
      return gate.allowEmpty
        ? { ok: true, message: `${q}: no result (allowed)` }
        : { ok: false, message: `${q}: no result; the gate needs every value ${bounds} (allowEmpty is off)` };
    }
    const outside = samples.filter((s) => !(s.value >= (gate.min ?? -Infinity) && s.value <= (gate.max ?? Infinity)));
    if (outside.length > 0) {
      const shown = outside
        .slice(0, 3)
        .map((s) => `${s.value}${s.labels ? ` ${s.labels}` : ''}`)
        .join(', ');
      return {
        ok: false,
        message: `${q}: value ${shown}${outside.length > 3 ? ` and ${outside.length - 3} more` : ''} not ${bounds}`,
      };
    }
    const values = samples.slice(0, 3).map((s) => String(s.value));
    return { ok: true, message: `${q}: ${values.join(', ')}${samples.length > 3 ? ', …' : ''} ${bounds}` };
  }

  private reason(error: unknown, target: string, timeoutSeconds: number): string {
    if (error instanceof GateRefused) return error.message;
    if ((error as { code?: unknown }).code === 'EUPSHIFT_GATE_TIMEOUT') return `no answer within ${timeoutSeconds} s`;
    return connectFailureReason(error, target) ?? 'the request failed';
  }

  private get(url: URL, timeoutSeconds: number, headers: Record<string, string>, signal?: AbortSignal): Promise<Answer> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const refused = refusedTargetReason(host, this.options.allowLinkLocal, 'the host');
    if (refused) return Promise.reject(new GateRefused(refused));
    return new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const request = secure ? https.request : http.request;
      const req = request(
        url,
        { method: 'GET', headers: { 'user-agent': 'upshift-gate', ...headers }, agent: secure ? this.httpsAgent : this.httpAgent },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY_BYTES) {
              req.destroy(new GateRefused(`the answer is larger than ${MAX_BODY_BYTES / 1024 / 1024} MiB`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      // The whole exchange, not only the idle time, is bounded by the gate's timeout.
      const timer = setTimeout(
        () => req.destroy(Object.assign(new Error('gate timed out'), { code: 'EUPSHIFT_GATE_TIMEOUT' })),
        timeoutSeconds * 1000,
      );
      const onAbort = () => req.destroy(new GateRefused('the check was stopped (the server is stopping)'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end();
    });
  }
}

class GateRefused extends Error {}

interface Sample {
  value: number;
  labels: string;
}

/** The numbers of an instant query's answer: a vector's samples or a scalar; undefined for other result types. */
function samplesOf(type: unknown, result: unknown): Sample[] | undefined {
  const num = (pair: unknown): number => (Array.isArray(pair) && typeof pair[1] === 'string' ? Number(pair[1]) : Number.NaN);
  if (type === 'scalar') return [{ value: num(result), labels: '' }];
  if (type !== 'vector' || !Array.isArray(result)) return undefined;
  return result.map((r: { metric?: Record<string, string>; value?: unknown }) => {
    const labels = Object.entries(r.metric ?? {})
      .map(([k, v]) => `${k}="${boundedLine(String(v), 80)}"`)
      .join(', ');
    return { value: num(r.value), labels: labels ? `{${labels}}` : '' };
  });
}
