import type { ClusterView, GateBody, GateTestView } from '@upshift/api';
import { useState } from 'react';
import { describeError } from '../api/client';
import { useSession } from '../lib/session';

/** A gate as the form holds it: every field as typed, turned into a request by `gateBody`. */
export interface GateDraft {
  key: number;
  kind: GateBody['kind'];
  url: string;
  expectStatus: string;
  bodyContains: string;
  query: string;
  max: string;
  min: string;
  allowEmpty: boolean;
  bearerToken: string;
  retrySeconds: string;
}

let nextKey = 1;
export function newGateDraft(kind: GateBody['kind'] = 'http'): GateDraft {
  return {
    key: nextKey++,
    kind,
    url: '',
    expectStatus: '',
    bodyContains: '',
    query: '',
    max: '',
    min: '',
    allowEmpty: false,
    bearerToken: '',
    retrySeconds: '',
  };
}

const num = (text: string): number | undefined => (text.trim() === '' || !Number.isFinite(Number(text)) ? undefined : Number(text));

/** The request for a draft: only what was filled in; the server checks the rest and says what to fix. */
export function gateBody(d: GateDraft): GateBody {
  const g: GateBody = { kind: d.kind };
  const retry = num(d.retrySeconds);
  if (retry !== undefined) g.retrySeconds = retry;
  if (d.kind === 'swarm-services') return g;
  g.url = d.url.trim();
  if (d.kind === 'http') {
    const status = num(d.expectStatus);
    if (status !== undefined) g.expectStatus = status;
    if (d.bodyContains !== '') g.bodyContains = d.bodyContains;
    return g;
  }
  g.query = d.query;
  const max = num(d.max);
  const min = num(d.min);
  if (max !== undefined) g.max = max;
  if (min !== undefined) g.min = min;
  if (d.allowEmpty) g.allowEmpty = true;
  if (d.bearerToken !== '') g.bearerToken = d.bearerToken;
  return g;
}

/**
 * The health gates of the Upgrade dialog: add, edit and remove gates, and "Test now" to
 * check one once against the server (`POST /gates/test`) before starting. Each gate is
 * checked before every batch; one that keeps failing for its retry time pauses the upgrade.
 */
export function GateEditor({
  cluster,
  gates,
  onChange,
}: {
  cluster: ClusterView;
  gates: GateDraft[];
  onChange: (gates: GateDraft[]) => void;
}) {
  const { api } = useSession();
  const [results, setResults] = useState<Record<number, { busy: boolean; result?: GateTestView; error?: string }>>({});
  const update = (key: number, patch: Partial<GateDraft>) => {
    onChange(gates.map((g) => (g.key === key ? { ...g, ...patch } : g)));
    setResults((r) => ({ ...r, [key]: { busy: false } }));
  };
  const test = async (d: GateDraft) => {
    setResults((r) => ({ ...r, [d.key]: { busy: true } }));
    try {
      const result = await api.testGate({ gate: gateBody(d), clusterId: cluster.id });
      setResults((r) => ({ ...r, [d.key]: { busy: false, result } }));
    } catch (e) {
      setResults((r) => ({ ...r, [d.key]: { busy: false, error: describeError(e) } }));
    }
  };
  return (
    <div className="gate-editor" data-testid="gate-editor">
      <p className="help">
        Checked before every batch, after the wait. A gate that fails is checked again for its retry time (60 s unless set); then the
        upgrade pauses with what the gate saw.
      </p>
      {gates.map((d, i) => {
        const id = (field: string) => `gate-${d.key}-${field}`;
        const state = results[d.key];
        return (
          <fieldset key={d.key} className="gate" data-testid="gate">
            <legend>Gate {i + 1}</legend>
            <div className="form-grid">
              <label htmlFor={id('kind')}>Kind</label>
              <select id={id('kind')} value={d.kind} onChange={(e) => update(d.key, { kind: e.target.value as GateDraft['kind'] })}>
                <option value="http">HTTP endpoint</option>
                <option value="prometheus">Prometheus query</option>
                <option value="swarm-services" disabled={cluster.kind !== 'swarm'}>
                  Swarm services (Swarm clusters)
                </option>
              </select>
              {d.kind !== 'swarm-services' ? (
                <>
                  <label htmlFor={id('url')}>{d.kind === 'http' ? 'URL' : 'Prometheus URL'}</label>
                  <input
                    id={id('url')}
                    type="url"
                    placeholder={d.kind === 'http' ? 'https://app.example/health' : 'http://prometheus:9090'}
                    value={d.url}
                    onChange={(e) => update(d.key, { url: e.target.value })}
                  />
                </>
              ) : null}
              {d.kind === 'http' ? (
                <>
                  <label htmlFor={id('status')}>Expected status</label>
                  <input
                    id={id('status')}
                    type="number"
                    placeholder="200"
                    value={d.expectStatus}
                    onChange={(e) => update(d.key, { expectStatus: e.target.value })}
                  />
                  <label htmlFor={id('contains')}>Body contains</label>
                  <input id={id('contains')} value={d.bodyContains} onChange={(e) => update(d.key, { bodyContains: e.target.value })} />
                </>
              ) : null}
              {d.kind === 'prometheus' ? (
                <>
                  <label htmlFor={id('query')}>Query</label>
                  <input
                    id={id('query')}
                    placeholder="sum(rate(http_errors_total[5m]))"
                    value={d.query}
                    onChange={(e) => update(d.key, { query: e.target.value })}
                  />
                  <label htmlFor={id('max')}>Every value at most</label>
                  <input id={id('max')} type="number" step="any" value={d.max} onChange={(e) => update(d.key, { max: e.target.value })} />
                  <label htmlFor={id('min')}>Every value at least</label>
                  <input id={id('min')} type="number" step="any" value={d.min} onChange={(e) => update(d.key, { min: e.target.value })} />
                  <label htmlFor={id('empty')}>No result passes</label>
                  <input
                    id={id('empty')}
                    type="checkbox"
                    checked={d.allowEmpty}
                    onChange={(e) => update(d.key, { allowEmpty: e.target.checked })}
                  />
                  <label htmlFor={id('token')}>Bearer token</label>
                  <input
                    id={id('token')}
                    type="password"
                    autoComplete="off"
                    placeholder="optional; stored encrypted, never shown"
                    value={d.bearerToken}
                    onChange={(e) => update(d.key, { bearerToken: e.target.value })}
                  />
                </>
              ) : null}
              <label htmlFor={id('retry')}>Retry for (s)</label>
              <input
                id={id('retry')}
                type="number"
                min={0}
                placeholder="60"
                value={d.retrySeconds}
                onChange={(e) => update(d.key, { retrySeconds: e.target.value })}
              />
            </div>
            <div className="actions">
              <button type="button" onClick={() => test(d)} disabled={state?.busy}>
                {state?.busy ? 'Testing…' : 'Test now'}
              </button>
              <button type="button" onClick={() => onChange(gates.filter((g) => g.key !== d.key))}>
                Remove
              </button>
            </div>
            <p
              role="status"
              data-testid="gate-test-result"
              className={state?.result?.ok ? 'ok' : state?.result || state?.error ? 'bad' : ''}
            >
              {state?.result ? `${state.result.ok ? 'Passes' : 'Fails'}: ${state.result.message}` : (state?.error ?? '')}
            </p>
          </fieldset>
        );
      })}
      <button type="button" onClick={() => onChange([...gates, newGateDraft()])}>
        Add a gate
      </button>
    </div>
  );
}
