import type { TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import type { FastifyInstance } from 'fastify';
import { ErrorEnvelope } from '../api/index.js';
import { ErrorCode, UpshiftError } from '../domain/errors.js';

/**
 * The environment variable that turns the response check on (`1`). The test support
 * sets it for every server the tests start; production leaves it off, where an answer
 * is only serialised through its schema.
 */
export const CHECK_RESPONSES_ENV = 'UPSHIFT_CHECK_RESPONSES';

/** The responses a route declares, by status (`200`, `4xx`, `default`). */
type Responses = Record<string, unknown>;

/** The schema a route declares for an answer of this status: the status itself, then its class (`4xx`), then `default`. */
export function declaredResponse(responses: Responses, status: number): unknown {
  return responses[String(status)] ?? responses[`${String(status)[0]}xx`] ?? responses['default'];
}

/** The JSON schema of a declared response: the schema itself, or the `application/json` one of a response declared by content type. */
function jsonSchemaOf(declared: unknown): TSchema | undefined {
  if (typeof declared !== 'object' || declared === null) return undefined;
  const content = (declared as { content?: Record<string, { schema?: TSchema }> }).content;
  if (content) return content['application/json']?.schema;
  return declared as TSchema;
}

/** What a route should have answered and did not, as a refusal of the server's own (500) that names the difference. */
export class ResponseContractError extends UpshiftError {
  constructor(message: string) {
    super(ErrorCode.INTERNAL, `response outside its schema: ${message}`);
    this.name = 'ResponseContractError';
  }
}

/**
 * Checks every JSON answer against the schema its route declares for the status
 * (api/), before it is serialised: a field the schema does not list (which the
 * serialiser would drop), one missing or of another type, a status the route does not
 * declare. A mismatch is logged and answered as a 500 that says what differs, so that the
 * test that caused it fails. Answers that are not JSON (streams, text, files) are not
 * serialised and not checked; routes of plugins that declare no responses at all (the
 * docs, the console's files) neither. On in tests (`UPSHIFT_CHECK_RESPONSES=1`), off in
 * production: the serialiser's speed is the point there.
 */
export function checkResponses(app: FastifyInstance<any, any, any, any, any>): void {
  const checks = new WeakMap<TSchema, TypeCheck<TSchema>>();
  const checkOf = (schema: TSchema) => {
    let check = checks.get(schema);
    if (!check) checks.set(schema, (check = TypeCompiler.Compile(schema)));
    return check;
  };
  app.addHook('preSerialization', async (request, reply, payload) => {
    const route = request.is404 ? `${request.method} (no route)` : `${request.method} ${request.routeOptions.url ?? ''}`;
    const responses = request.is404 ? { '4xx': ErrorEnvelope } : (request.routeOptions.schema?.response as Responses | undefined);
    if (!responses) return payload;
    const status = reply.statusCode;
    const declared = declaredResponse(responses, status);
    const schema = jsonSchemaOf(declared);
    let problem: string | undefined;
    if (declared === undefined) problem = `${route} answered ${status}, a status it declares no response for`;
    else if (!schema) problem = `${route} answered ${status} with JSON, but declares that answer in another content type`;
    else {
      const check = checkOf(schema);
      if (!check.Check(payload)) {
        const errors = [...check.Errors(payload)].slice(0, 5).map((e) => {
          // The enumerations are kinds of our own (api/common.ts): say which values they allow.
          const allowed = (e.schema as { enum?: unknown[] }).enum;
          const message = Array.isArray(allowed) ? `expected one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}` : e.message;
          return `${e.path || '/'}: ${message}, got ${JSON.stringify(e.value) ?? 'nothing'}`;
        });
        problem = `${route} answered ${status} with ${JSON.stringify(payload).slice(0, 500)}; ${errors.join('; ')}`;
      }
    }
    if (problem === undefined) return payload;
    request.log.error({ route, status }, problem);
    // Reported once: the answer to the contract error is itself checked, and conforms.
    throw new ResponseContractError(problem);
  });
}
