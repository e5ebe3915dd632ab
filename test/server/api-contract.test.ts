import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeView, NodeView as NodeViewSchema, SseParser, errorResponses } from '../../src/api/index.js';
import { errorCodes } from '../../src/domain/errors.js';
import { loadServerConfig } from '../../src/server/config.js';
import { errorHandler } from '../../src/server/errors.js';
import { CHECK_RESPONSES_ENV, checkResponses } from '../../src/server/response-check.js';
import { type RunningServer, startServer } from '../../src/server/run.js';

/**
 * The API contract (src/api): every route declares the answers it gives, /docs documents
 * them, and an answer outside its schema fails the request that caused it while the tests
 * run (UPSHIFT_CHECK_RESPONSES=1, set for every test by vitest.config.ts), so that the
 * other suites, which exercise every shape, check them all.
 */

const ADMIN = 'contract-admin-token-8c2f5a9e1d7b3f6a4c0e8b2d6f1a9c3e';

describe('the route table', () => {
  let server: RunningServer;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'upshift-contract-'));
    const config = loadServerConfig({ port: '0', dataDir, logLevel: 'silent' }, { UPSHIFT_ADMIN_TOKEN: ADMIN });
    process.env['UPSHIFT_ADMIN_TOKEN'] = ADMIN;
    server = await startServer(config);
    delete process.env['UPSHIFT_ADMIN_TOKEN'];
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs the tests with the response check on', () => {
    expect(process.env[CHECK_RESPONSES_ENV]).toBe('1');
  });

  it('has every route that is not public, and every API route, declare its answer and its errors', () => {
    const declaring = server.routes.filter((r) => r.access !== 'public' || r.url.startsWith('/api/'));
    expect(declaring.length).toBeGreaterThan(40);
    const missing = declaring
      .filter((r) => !r.responses.some((s) => /^[23]\d\d$/.test(s)) || !r.responses.includes('4xx') || !r.responses.includes('5xx'))
      .map((r) => `${r.method} ${r.url} declares ${r.responses.join(', ') || 'no responses'}`);
    expect(missing).toEqual([]);
    // The probes, the install downloads and the console's fallback declare theirs too.
    for (const url of ['/healthz', '/readyz', '/install/agent.sh', '/install/upshift-agent.js', '/metrics']) {
      expect(server.routes.find((r) => r.url === url)?.responses).toContain('200');
    }
  });

  it('documents every answer of every API route at /docs/json, errors with the ErrorCode enumeration', async () => {
    const res = await fetch(`${server.url}/docs/json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      paths: Record<
        string,
        Record<string, { responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }> }>
      >;
    };
    const problems: string[] = [];
    for (const route of server.routes.filter((r) => r.url.startsWith('/api/'))) {
      const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
      const responses = doc.paths[path]?.[route.method.toLowerCase()]?.responses;
      if (!responses) {
        problems.push(`${route.method} ${path} is not documented`);
        continue;
      }
      const documented = Object.keys(responses).sort();
      const declared = route.responses.map((s) => s.toUpperCase()).sort();
      if (JSON.stringify(documented) !== JSON.stringify(declared))
        problems.push(`${route.method} ${path} documents ${documented.join(', ')}, declares ${declared.join(', ')}`);
      for (const [status, response] of Object.entries(responses)) {
        if (status === '204') continue;
        const schemas = Object.values(response.content ?? {}).map((c) => c.schema);
        if (schemas.length === 0 || schemas.some((s) => s === undefined))
          problems.push(`${route.method} ${path} ${status} documents no content type with a schema`);
      }
      const envelope = responses['4XX']?.content?.['application/json']?.schema as
        { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } } | undefined;
      if (JSON.stringify(envelope?.properties?.error?.properties?.code?.enum) !== JSON.stringify(errorCodes))
        problems.push(`${route.method} ${path}: the error envelope's code is not the ErrorCode enumeration`);
    }
    expect(problems).toEqual([]);
    // The streamed answers say what they are.
    expect(Object.keys(doc.paths['/api/v1/stream']?.['get']?.responses?.['200']?.content ?? {})).toEqual(['text/event-stream']);
    expect(Object.keys(doc.paths['/api/v1/upgrades/{id}/nodes/{nodeId}/log']?.['get']?.responses?.['200']?.content ?? {})).toEqual([
      'text/plain',
    ]);
    expect(Object.keys(doc.paths['/api/v1/agent/artifacts/{file}']?.['get']?.responses?.['200']?.content ?? {})).toEqual([
      'application/octet-stream',
    ]);
  });
});

describe('an answer outside its schema', () => {
  const node: NodeView = {
    id: 'nd_1',
    name: 'n1',
    role: 'worker',
    status: 'Ready',
    versions: { docker: '26.1.5' },
    distribution: null,
    createdAt: '2026-01-01T00:00:00.000Z',
  };

  /** A throwaway app with the server's error handler and routes that answer the right shape and wrong ones. */
  async function app(check: boolean): Promise<FastifyInstance<any, any, any, any, any>> {
    const a = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
    a.setErrorHandler(errorHandler);
    if (check) checkResponses(a);
    const schema = { response: { 200: NodeViewSchema, ...errorResponses } };
    const wrong = (path: string, answer: unknown, status = 200) =>
      a.get(path, { schema }, async (_request, reply) => reply.code(status).send(answer as never));
    a.get('/right', { schema }, async () => node);
    wrong('/extra', { ...node, secret: 'not in the schema' });
    const { createdAt: _createdAt, ...withoutCreatedAt } = node;
    wrong('/missing', withoutCreatedAt);
    wrong('/wrong-type', { ...node, role: 'captain' });
    wrong('/undeclared-status', node, 202);
    wrong('/unknown-code', { error: { code: 'NOT_A_CODE', message: 'no such code' } }, 409);
    await a.ready();
    return a;
  }

  it('fails the request, saying what differs, when the check is on', async () => {
    const a = await app(true);
    try {
      const right = await a.inject({ url: '/right' });
      expect(right.statusCode).toBe(200);
      expect(right.json()).toEqual(node);
      const expectations: Array<[string, RegExp]> = [
        ['/extra', /GET \/extra answered 200 .*\/secret: .*, got "not in the schema"/],
        ['/missing', /\/createdAt: Expected required property/],
        ['/wrong-type', /\/role: expected one of "manager", "worker", got "captain"/],
        ['/undeclared-status', /GET \/undeclared-status answered 202, a status it declares no response for/],
        ['/unknown-code', /\/error\/code: expected one of "BAD_REQUEST", .*, got "NOT_A_CODE"/],
      ];
      for (const [url, message] of expectations) {
        const res = await a.inject({ url });
        expect(res.statusCode, url).toBe(500);
        const body = res.json() as { error: { code: string; message: string } };
        expect(body.error.code, url).toBe('INTERNAL');
        expect(body.error.message, url).toMatch(/^response outside its schema: /);
        expect(body.error.message, url).toMatch(message);
      }
    } finally {
      await a.close();
    }
  });

  it('is serialised through the schema without the check (production): what the schema does not list is not sent', async () => {
    const a = await app(false);
    try {
      const extra = await a.inject({ url: '/extra' });
      expect(extra.statusCode).toBe(200);
      expect(extra.json()).toEqual(node);
      expect(extra.body).not.toContain('secret');
    } finally {
      await a.close();
    }
  });
});

describe('the event-stream parser shared by the CLI and the console', () => {
  it('parses in chunks cut anywhere, keeps the id across messages, dispatches a retry, and needs the blank line', () => {
    const parser = new SseParser();
    const text = ': connected\r\nretry: 2000\r\n\r\nid: 7\nevent: node.started\ndata: {"a":1}\n\ndata: two\ndata: lines\r\r';
    const messages = [...text].flatMap((c) => parser.push(c));
    messages.push(...parser.end());
    expect(messages).toEqual([
      { id: undefined, event: 'message', data: '', retry: 2000 },
      { id: '7', event: 'node.started', data: '{"a":1}', retry: undefined },
      { id: '7', event: 'message', data: 'two\nlines', retry: undefined },
    ]);
    expect([...parser.push('data: unfinished\n'), ...parser.end()]).toEqual([]);
  });
});
