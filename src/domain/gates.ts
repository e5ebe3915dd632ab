import { invalid } from './errors.js';
import { refusedTargetReason } from './network-targets.js';

/**
 * Health gates: checks that must pass before each batch starts (docs/design.md, "Rollout
 * guards"). A gate is checked after the soak, before every batch including the first one
 * after a start or a resume; a failing gate is checked again until `retrySeconds` have
 * passed since it first failed, then the upgrade pauses itself with the gate and what it
 * saw as the cause.
 *
 * - `http`: a GET whose status must be `expectStatus` (and whose body must contain
 *   `bodyContains`, when given) within `timeoutSeconds`.
 * - `prometheus`: an instant query to a Prometheus-compatible server; every result must
 *   lie within `[min, max]`; no result fails unless `allowEmpty`.
 * - `swarm-services`: every replicated service of the (Swarm) cluster runs its desired
 *   replicas.
 *
 * A Prometheus bearer token arrives in `bearerToken` and is stored sealed in
 * `sealedBearerToken` (the engine seals it); neither is ever returned: `publicGate` says
 * `bearerToken: "(set)"`.
 */
export const gateKinds = ['http', 'prometheus', 'swarm-services'] as const;
export type GateKind = (typeof gateKinds)[number];

export const gateDefaults = { retrySeconds: 60, expectStatus: 200, timeoutSeconds: 10 } as const;
const MAX_RETRY_SECONDS = 86_400;
const MAX_TIMEOUT_SECONDS = 300;
/** How many gates one upgrade may have: each is checked before every batch. */
export const MAX_GATES = 10;

export interface HttpGate {
  kind: 'http';
  url: string;
  expectStatus: number;
  timeoutSeconds: number;
  bodyContains?: string;
  retrySeconds: number;
}

export interface PrometheusGate {
  kind: 'prometheus';
  url: string;
  query: string;
  max?: number;
  min?: number;
  allowEmpty: boolean;
  timeoutSeconds: number;
  /** Plain text, only between a request and the seal; never stored. */
  bearerToken?: string;
  /** What is stored: the token sealed by the engine's secret key. */
  sealedBearerToken?: string;
  retrySeconds: number;
}

export interface SwarmServicesGate {
  kind: 'swarm-services';
  retrySeconds: number;
}

export type Gate = HttpGate | PrometheusGate | SwarmServicesGate;

/** A gate as the API returns it: the token only as `"(set)"`. */
export type PublicGate =
  HttpGate | (Omit<PrometheusGate, 'bearerToken' | 'sealedBearerToken'> & { bearerToken?: '(set)' }) | SwarmServicesGate;

/** What one check of a gate found: the words an operator reads in the event and the pause cause. */
export interface GateResult {
  ok: boolean;
  message: string;
}

/** The marker the API returns in place of a bearer token. */
export const TOKEN_SET = '(set)';

export function publicGate(gate: Gate): PublicGate {
  if (gate.kind !== 'prometheus') return { ...gate };
  const { bearerToken, sealedBearerToken, ...rest } = gate;
  return bearerToken !== undefined || sealedBearerToken !== undefined ? { ...rest, bearerToken: TOKEN_SET } : rest;
}

const fieldsOf: Record<GateKind, readonly string[]> = {
  http: ['kind', 'url', 'expectStatus', 'timeoutSeconds', 'bodyContains', 'retrySeconds'],
  prometheus: ['kind', 'url', 'query', 'max', 'min', 'allowEmpty', 'bearerToken', 'timeoutSeconds', 'retrySeconds'],
  'swarm-services': ['kind', 'retrySeconds'],
};

export interface GateRules {
  /** The cluster's kind: `swarm-services` is refused on any other. */
  clusterKind?: string;
  /** The server's --allow-link-local-targets. */
  allowLinkLocal: boolean;
}

/** Validates the gates of a request; throws VALIDATION_FAILED naming the field and what to fix. */
export function parseGates(raw: unknown, rules: GateRules, field = 'policy.gates'): Gate[] {
  if (!Array.isArray(raw)) throw invalid(`${field} must be a list of gates such as [{"kind":"http","url":"https://app.example/health"}]`);
  if (raw.length > MAX_GATES) throw invalid(`${field} has ${raw.length} gates; at most ${MAX_GATES} are checked before each batch`);
  return raw.map((g, i) => parseGate(g, rules, `${field}[${i}]`));
}

export function parseGate(raw: unknown, rules: GateRules, field = 'gate'): Gate {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalid(`${field} must be an object with a kind: ${gateKinds.join(', ')}`);
  }
  const r = raw as Record<string, unknown>;
  const kind = r['kind'];
  if (typeof kind !== 'string' || !(gateKinds as readonly string[]).includes(kind)) {
    throw invalid(`${field}.kind must be one of ${gateKinds.join(', ')}`);
  }
  const k = kind as GateKind;
  for (const key of Object.keys(r)) {
    if (!fieldsOf[k].includes(key)) throw invalid(`${field}.${key} is not a field of a ${k} gate (${fieldsOf[k].join(', ')})`);
  }
  const retrySeconds = number(r, 'retrySeconds', field, gateDefaults.retrySeconds, 0, MAX_RETRY_SECONDS);
  if (k === 'swarm-services') {
    if (rules.clusterKind !== undefined && rules.clusterKind !== 'swarm') {
      throw invalid(`${field}: a swarm-services gate checks a Swarm cluster's services; this cluster is ${rules.clusterKind}`);
    }
    return { kind: k, retrySeconds };
  }
  const url = gateUrl(r['url'], `${field}.url`, rules.allowLinkLocal);
  const timeoutSeconds = number(r, 'timeoutSeconds', field, gateDefaults.timeoutSeconds, 1, MAX_TIMEOUT_SECONDS);
  if (k === 'http') {
    const expectStatus = r['expectStatus'] ?? gateDefaults.expectStatus;
    if (typeof expectStatus !== 'number' || !Number.isInteger(expectStatus) || expectStatus < 100 || expectStatus > 599) {
      throw invalid(`${field}.expectStatus must be an HTTP status from 100 to 599`);
    }
    const gate: HttpGate = { kind: k, url, expectStatus, timeoutSeconds, retrySeconds };
    const body = r['bodyContains'];
    if (body !== undefined) {
      if (typeof body !== 'string' || body.length === 0 || body.length > 1000)
        throw invalid(`${field}.bodyContains must be a text of 1 to 1000 characters`);
      gate.bodyContains = body;
    }
    return gate;
  }
  const query = r['query'];
  if (typeof query !== 'string' || query.trim() === '' || query.length > 4000) {
    throw invalid(`${field}.query must be a PromQL expression such as sum(rate(http_errors_total[5m])) (at most 4000 characters)`);
  }
  const gate: PrometheusGate = { kind: k, url, query, allowEmpty: false, timeoutSeconds, retrySeconds };
  for (const bound of ['min', 'max'] as const) {
    const v = r[bound];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${field}.${bound} must be a number`);
    gate[bound] = v;
  }
  if (gate.min === undefined && gate.max === undefined) throw invalid(`${field} needs a bound: max, min or both`);
  if (gate.min !== undefined && gate.max !== undefined && gate.min > gate.max) {
    throw invalid(`${field}: min (${gate.min}) is above max (${gate.max})`);
  }
  const allowEmpty = r['allowEmpty'];
  if (allowEmpty !== undefined && typeof allowEmpty !== 'boolean') throw invalid(`${field}.allowEmpty must be true or false`);
  gate.allowEmpty = allowEmpty === true;
  const token = r['bearerToken'];
  if (token !== undefined && token !== null) {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192 || /[\r\n]/.test(token)) {
      throw invalid(`${field}.bearerToken must be a token on one line (at most 8192 characters)`);
    }
    if (token === TOKEN_SET)
      throw invalid(`${field}.bearerToken: "${TOKEN_SET}" is what the API shows for a stored token; give the token itself`);
    gate.bearerToken = token;
  }
  return gate;
}

function number(r: Record<string, unknown>, key: string, field: string, fallback: number, min: number, max: number): number {
  const v = r[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw invalid(`${field}.${key} must be a number of seconds from ${min} to ${max}`);
  }
  return v;
}

/** An http(s) URL with a host the server may connect to, without credentials in it (they would be shown). */
export function gateUrl(raw: unknown, field: string, allowLinkLocal: boolean): string {
  if (typeof raw !== 'string' || raw.length === 0) throw invalid(`${field} must be an http:// or https:// URL`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(`${field}: "${raw.slice(0, 200)}" is not a URL; write it as http://host:port/path or https://…`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid(`${field} must be an http:// or https:// URL, not ${url.protocol}`);
  if (url.username || url.password) {
    throw invalid(`${field} must not carry credentials (they would be shown with the gate); a Prometheus gate takes a bearerToken`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const refused = refusedTargetReason(host, allowLinkLocal, `${field}:`);
  if (refused) throw invalid(refused);
  return url.toString();
}

/** A gate as the API shows it, loosely typed: what the CLI and the console describe. */
export interface GateShape {
  kind: GateKind;
  url?: string | undefined;
  expectStatus?: number | undefined;
  bodyContains?: string | undefined;
  query?: string | undefined;
  min?: number | undefined;
  max?: number | undefined;
}

/** One line naming a gate, for events, the CLI and the console. */
export function describeGate(gate: GateShape): string {
  switch (gate.kind) {
    case 'http':
      return `http ${gate.url ?? ''} (expects ${gate.expectStatus ?? gateDefaults.expectStatus}${gate.bodyContains !== undefined ? ` and "${gate.bodyContains}"` : ''})`;
    case 'prometheus':
      return `prometheus ${gate.url ?? ''}: ${gate.query ?? ''} ${boundsText(gate)}`;
    case 'swarm-services':
      return 'swarm-services (every replicated service at its desired replicas)';
  }
}

export function boundsText(gate: { min?: number | undefined; max?: number | undefined }): string {
  if (gate.min !== undefined && gate.max !== undefined) return `within [${gate.min}, ${gate.max}]`;
  if (gate.max !== undefined) return `≤ ${gate.max}`;
  if (gate.min !== undefined) return `≥ ${gate.min}`;
  return 'unbounded';
}

/**
 * Splits a command-line list on commas that are not inside double quotes or brackets, so a
 * PromQL query such as `sum by (job, code) (rate(x[5m]))` needs no quoting, and a query
 * with a bare comma can be written in double quotes.
 */
function splitOptions(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const ch of text) {
    if (ch === '"') {
      quoted = !quoted;
      continue;
    }
    if (!quoted && '([{'.includes(ch)) depth++;
    if (!quoted && ')]}'.includes(ch)) depth = Math.max(0, depth - 1);
    if (ch === ',' && !quoted && depth === 0) {
      parts.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  if (quoted) throw invalid(`a double quote is not closed in "${text}"`);
  parts.push(current);
  return parts.map((p) => p.trim());
}

const cliKeys: Record<string, { field: string; type: 'number' | 'string' | 'flag' }> = {
  status: { field: 'expectStatus', type: 'number' },
  timeout: { field: 'timeoutSeconds', type: 'number' },
  contains: { field: 'bodyContains', type: 'string' },
  retry: { field: 'retrySeconds', type: 'number' },
  max: { field: 'max', type: 'number' },
  min: { field: 'min', type: 'number' },
  'allow-empty': { field: 'allowEmpty', type: 'flag' },
};

/**
 * A gate as an operator types it after `--gate`: `http=URL[,status=N][,timeout=S][,contains=TEXT][,retry=S]`,
 * `prometheus=URL,QUERY[,max=X][,min=X][,allow-empty][,timeout=S][,retry=S]`, `swarm-services[,retry=S]`.
 * Returns the raw fields; `parseGate` checks them. A bearer token is not taken on the
 * command line (it would show in the process list): the CLI reads it from an environment
 * variable named with `token-env=NAME`, given here as `env`.
 */
export function gateFromText(text: string, env: Record<string, string | undefined> = {}): Record<string, unknown> {
  const usage = 'write http=URL, prometheus=URL,QUERY,max=0.01 or swarm-services';
  // The kind, then `=` and its URL (http, prometheus) or `,` and options (swarm-services).
  const m = /^\s*([a-z-]+)(?:[=,]([\s\S]*))?$/.exec(text);
  const kind = m?.[1] ?? '';
  if (!(gateKinds as readonly string[]).includes(kind)) throw invalid(`"${text}" is not a gate: ${usage}`);
  const rest = m?.[2] ?? '';
  const parts = rest.trim() === '' ? [] : splitOptions(rest);
  const gate: Record<string, unknown> = { kind };
  let positional: string[] = [];
  if (kind === 'http') positional = ['url'];
  if (kind === 'prometheus') positional = ['url', 'query'];
  for (const name of positional) {
    const value = parts.shift();
    if (value === undefined || value === '') throw invalid(`"${text}": a ${kind} gate needs its ${name} (${usage})`);
    gate[name] = value;
  }
  for (const part of parts) {
    const i = part.indexOf('=');
    const key = i < 0 ? part : part.slice(0, i);
    const value = i < 0 ? undefined : part.slice(i + 1);
    if (key === 'token-env' && kind === 'prometheus') {
      const token = value ? env[value] : undefined;
      if (!value || token === undefined || token === '')
        throw invalid(`"${text}": the environment variable ${value ?? '(none)'} is not set`);
      gate['bearerToken'] = token;
      continue;
    }
    const known = cliKeys[key];
    if (!known) {
      throw invalid(`"${text}": unknown option "${key}" (status, timeout, contains, retry, max, min, allow-empty, token-env)`);
    }
    if (known.type === 'flag') {
      if (value !== undefined && value !== 'true' && value !== 'false') throw invalid(`"${text}": ${key} takes no value, or true/false`);
      gate[known.field] = value !== 'false';
    } else if (value === undefined || value === '') {
      throw invalid(`"${text}": ${key} needs a value (${key}=…)`);
    } else if (known.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw invalid(`"${text}": ${key}=${value} is not a number`);
      gate[known.field] = n;
    } else gate[known.field] = value;
  }
  return gate;
}
