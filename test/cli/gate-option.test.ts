import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseGateOption } from '../../src/cli/commands/upgrade.js';
import { parseGate } from '../../src/domain/gates.js';

/** `--gate` as an operator types it: each form, repeated, queries with commas, and what a mistake says. */
describe('upgrade start/plan --gate', () => {
  const one = (text: string, env: NodeJS.ProcessEnv = {}) => parseGateOption(text, [], env)[0];

  it('reads each kind with its options', () => {
    expect(one('http=https://app.example/health')).toEqual({ kind: 'http', url: 'https://app.example/health' });
    expect(one('http=http://10.0.0.5:8080/ready,status=204,timeout=5,contains=ok,retry=30')).toEqual({
      kind: 'http',
      url: 'http://10.0.0.5:8080/ready',
      expectStatus: 204,
      timeoutSeconds: 5,
      bodyContains: 'ok',
      retrySeconds: 30,
    });
    expect(one('prometheus=http://prom:9090,job:errors:ratio5m,max=0.01')).toEqual({
      kind: 'prometheus',
      url: 'http://prom:9090',
      query: 'job:errors:ratio5m',
      max: 0.01,
    });
    expect(one('swarm-services')).toEqual({ kind: 'swarm-services' });
    expect(one('swarm-services,retry=120')).toEqual({ kind: 'swarm-services', retrySeconds: 120 });
  });

  it('keeps commas inside brackets and double quotes in the query', () => {
    expect(
      one('prometheus=http://prom:9090,sum by (job, code) (rate(http_requests_total{code=~"5..",job="api"}[5m])),max=1,min=0,allow-empty'),
    ).toEqual({
      kind: 'prometheus',
      url: 'http://prom:9090',
      query: 'sum by (job, code) (rate(http_requests_total{code=~5..,job=api}[5m]))',
      max: 1,
      min: 0,
      allowEmpty: true,
    });
    expect(one('prometheus=http://prom:9090,"label_replace(up, ""x"", ""y"", ""job"", ""(.*)"")",max=1')?.['query']).toBe(
      'label_replace(up, x, y, job, (.*))',
    );
    expect(one('prometheus=http://prom:9090,"count(up == 0) or vector(0), max",max=0')?.['query']).toBe('count(up == 0) or vector(0), max');
  });

  it('is repeatable and reads a bearer token from the environment, never the command line', () => {
    const both = parseGateOption('prometheus=http://p:9090,up,min=1,token-env=PROM_TOKEN', parseGateOption('http=http://a/'), {
      PROM_TOKEN: 's3cret',
    });
    expect(both).toEqual([
      { kind: 'http', url: 'http://a/' },
      { kind: 'prometheus', url: 'http://p:9090', query: 'up', min: 1, bearerToken: 's3cret' },
    ]);
    expect(() => one('prometheus=http://p:9090,up,min=1,token-env=NOPE')).toThrow('the environment variable NOPE is not set');
  });

  it('says what is wrong', () => {
    const error = (text: string) => {
      try {
        one(text);
        return 'parsed';
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidArgumentError);
        return (e as Error).message;
      }
    };
    expect(error('grpc=localhost:50051')).toBe(
      '"grpc=localhost:50051" is not a gate: write http=URL, prometheus=URL,QUERY,max=0.01 or swarm-services',
    );
    expect(error('prometheus=http://p:9090')).toBe(
      '"prometheus=http://p:9090": a prometheus gate needs its query (write http=URL, prometheus=URL,QUERY,max=0.01 or swarm-services)',
    );
    expect(error('http=http://a/,colour=red')).toMatch(/unknown option "colour"/);
    expect(error('prometheus=http://p,up,max=lots')).toBe('"prometheus=http://p,up,max=lots": max=lots is not a number');
    expect(error('prometheus=http://p,"up,max=1')).toMatch(/a double quote is not closed/);
  });

  it('gives the server what it validates', () => {
    const raw = one('prometheus=http://prom:9090,up,max=1,retry=0') as Record<string, unknown>;
    expect(parseGate(raw, { allowLinkLocal: false })).toEqual({
      kind: 'prometheus',
      url: 'http://prom:9090/',
      query: 'up',
      max: 1,
      allowEmpty: false,
      timeoutSeconds: 10,
      retrySeconds: 0,
    });
  });
});
