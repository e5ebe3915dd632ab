import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, UpshiftError } from '../domain/errors.js';

/** The error envelope (api/errors.ts): `{"error":{"code","message"}}`, for every error, Fastify's own included. */
export function sendError(reply: FastifyReply, status: number, code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send({ error: { code, message, ...(details ? { details } : {}) } });
}

/** JSON-schema keywords whose failure means "well-formed but invalid" (422) rather than malformed (400). */
const semanticKeywords = new Set([
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'pattern',
  'enum',
  'const',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'format',
  'multipleOf',
]);

function describeValidation(error: FastifyError): { status: number; message: string } {
  const issues = error.validation ?? [];
  const semantic = issues.length > 0 && issues.every((i) => semanticKeywords.has(i.keyword));
  const where = error.validationContext ?? 'body';
  const first = issues[0];
  let path = first?.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
  if (first?.keyword === 'required' && typeof first.params['missingProperty'] === 'string') {
    path = [path, first.params['missingProperty']].filter(Boolean).join('.');
    return { status: 400, message: `${where}: ${path} is required` };
  }
  if (first?.keyword === 'additionalProperties' && typeof first.params['additionalProperty'] === 'string') {
    return { status: 400, message: `${where}: unknown field ${[path, first.params['additionalProperty']].filter(Boolean).join('.')}` };
  }
  let detail = first?.message ?? 'is invalid';
  if (first?.keyword === 'enum' && Array.isArray(first.params['allowedValues'])) {
    detail = `must be one of ${(first.params['allowedValues'] as unknown[]).join(', ')}`;
  }
  if (first?.keyword === 'pattern') detail = 'contains characters that are not allowed';
  return { status: semantic ? 422 : 400, message: `${where}${path ? `.${path}` : ''} ${detail}` };
}

/** How long the rest of a refused body may go on arriving after its answer before the connection is cut. */
export const LINGER_MS = 2000;

/**
 * A body refused before it was read whole (413): Fastify asks for the connection to be
 * closed after the answer, but a client still sending then fails its next write (EPIPE,
 * ECONNRESET), and most clients report that instead of the answer they were sent. So the
 * connection is kept, and Node's HTTP server reads the rest of the body and drops it, for
 * at most LINGER_MS: then the connection is cut, so that an endless body costs no more.
 */
function lingerForBody(request: FastifyRequest, reply: FastifyReply): void {
  reply.removeHeader('connection');
  const incoming = request.raw;
  if (incoming.complete) return;
  const cut = setTimeout(() => incoming.socket?.destroy(), LINGER_MS);
  cut.unref();
  incoming.once('end', () => clearTimeout(cut));
  incoming.once('close', () => clearTimeout(cut));
}

export function errorHandler(error: FastifyError | UpshiftError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof UpshiftError) {
    if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
    return sendError(reply, error.httpStatus, error.code, error.message, error.details);
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const { status, message } = describeValidation(fastifyError);
    return sendError(reply, status, status === 422 ? ErrorCode.VALIDATION_FAILED : ErrorCode.BAD_REQUEST, message);
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      lingerForBody(request, reply);
      return sendError(reply, 413, ErrorCode.PAYLOAD_TOO_LARGE, 'the request body is larger than the 1 MiB limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return sendError(reply, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return sendError(reply, 400, ErrorCode.BAD_REQUEST, 'the body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return sendError(reply, 400, ErrorCode.BAD_REQUEST, 'the body is not valid JSON');
    default:
      break;
  }
  if (error instanceof SyntaxError || fastifyError.statusCode === 400) {
    return sendError(reply, 400, ErrorCode.BAD_REQUEST, `the request is malformed: ${error.message}`);
  }
  const status = fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500 ? fastifyError.statusCode : 500;
  if (status === 500) request.log.error({ err: error }, 'request failed');
  return sendError(
    reply,
    status,
    status === 500 ? ErrorCode.INTERNAL : ErrorCode.BAD_REQUEST,
    status === 500 ? 'internal error; the server log has the details' : error.message,
  );
}
