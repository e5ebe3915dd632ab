import { type Static, Type } from '@sinclair/typebox';
import { errorCodes } from '../domain/errors.js';
import { FreeObject, StringEnum, View } from './common.js';

/**
 * Every error the API answers, Fastify's own included: `{"error":{"code","message"}}`,
 * and `details` where a refusal has machine-readable facts. `code` is one of the
 * `ErrorCode`s of domain/errors.ts; clients may switch on it.
 */
export const ErrorEnvelope = View(
  {
    error: View({
      code: StringEnum(errorCodes, { description: 'stable; clients may switch on it' }),
      message: Type.String({ description: 'what went wrong and what to do about it' }),
      details: Type.Optional(FreeObject({ description: 'machine-readable facts of the refusal' })),
    }),
  },
  { description: 'An error' },
);
export type ErrorEnvelope = Static<typeof ErrorEnvelope>;

/** The answers of any route that fails: refusals (4xx) and failures (5xx). */
export const errorResponses = { '4xx': ErrorEnvelope, '5xx': ErrorEnvelope } as const;
