import {
  Kind,
  type ObjectOptions,
  type Static,
  type TObject,
  type TProperties,
  type TSchema,
  type TUnsafe,
  Type,
  TypeRegistry,
} from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The building blocks of the API contract. Response objects are closed
 * (`additionalProperties: false`): the server serialises every answer through its schema,
 * which drops what a schema does not list, so a schema that forgot a field would silently
 * change an answer; closed, the response check of the tests (server/response-check.ts)
 * names the forgotten field instead.
 *
 * Kinds of our own keep the wire schemas plain JSON Schema, which the serialiser writes
 * without trying alternatives one by one and the OpenAPI document shows as it is:
 * `StringEnum` (`{type: 'string', enum}`), `Nullable…` (`{type: [T, 'null']}`) and
 * `OneOf…`/`OrNull` (below). They are registered with TypeBox here, so that `Value.Check`
 * and the type compiler know them.
 */

const STRING_ENUM = 'UpshiftStringEnum';
const NULLABLE = 'UpshiftNullable';

TypeRegistry.Set<{ enum: readonly unknown[] }>(STRING_ENUM, (schema, value) => typeof value === 'string' && schema.enum.includes(value));

type Primitive = 'string' | 'integer' | 'number' | 'boolean';
const isPrimitive: Record<Primitive, (value: unknown) => boolean> = {
  string: (value) => typeof value === 'string',
  integer: (value) => Number.isInteger(value),
  number: (value) => typeof value === 'number' && Number.isFinite(value),
  boolean: (value) => typeof value === 'boolean',
};
TypeRegistry.Set<{ type: [Primitive, 'null']; enum?: readonly unknown[] }>(
  NULLABLE,
  (schema, value) => value === null || (isPrimitive[schema.type[0]](value) && (schema.enum === undefined || schema.enum.includes(value))),
);

/** One of a list of strings (an enumeration of the domain), as `{type: 'string', enum}`. */
export function StringEnum<T extends string>(values: readonly T[], options: { description?: string } = {}): TUnsafe<T> {
  return Type.Unsafe<T>({ ...options, [Kind]: STRING_ENUM, type: 'string', enum: [...values] });
}

function nullable<T>(type: Primitive, options: { description?: string; enum?: readonly string[] }): TUnsafe<T | null> {
  const { enum: values, ...rest } = options;
  return Type.Unsafe<T | null>({ ...rest, [Kind]: NULLABLE, type: [type, 'null'], ...(values ? { enum: [...values, null] } : {}) });
}

/** A string or null. */
export const NullableString = (options: { description?: string } = {}) => nullable<string>('string', options);
/** A whole number or null. */
export const NullableInteger = (options: { description?: string } = {}) => nullable<number>('integer', options);
/** A number or null. */
export const NullableNumber = (options: { description?: string } = {}) => nullable<number>('number', options);
/** One of a list of strings, or null. */
export const NullableEnum = <T extends string>(values: readonly T[], options: { description?: string } = {}) =>
  nullable<T>('string', { ...options, enum: values });
/**
 * Alternatives of objects (a union, maybe with null): typed and checked as the union, but
 * written by the serialiser with one object schema that lists the properties of every
 * alternative (those they all have are required). The serialiser writes that directly;
 * a union (`anyOf`) it would try alternative by alternative with a validator, in every
 * answer, and compile that validator in the first (tens of ms, on the event loop).
 */
const ALTERNATIVES = 'UpshiftAlternatives';
const checkedAs = Symbol('checkedAs');
TypeRegistry.Set<{ [checkedAs]: TSchema }>(ALTERNATIVES, (schema, value) => Value.Check(schema[checkedAs], value));

function alternatives<T extends TSchema>(checked: T, members: readonly TObject[], nullable: boolean): TUnsafe<Static<T>> {
  const properties: Record<string, Record<string, unknown>> = {};
  for (const member of members) {
    for (const [key, schema] of Object.entries(member.properties)) {
      const seen = properties[key];
      const constant = (schema as { const?: unknown }).const;
      // A discriminant (`kind: 'user'` | `kind: 'error'`) becomes one enumeration.
      if (seen && constant !== undefined)
        properties[key] = { type: 'string', enum: [...((seen['enum'] as unknown[]) ?? [seen['const']]), constant] };
      else properties[key] ??= schema;
    }
  }
  const required = members.map((m) => m.required ?? []).reduce((all, keys) => all.filter((k) => keys.includes(k)));
  return Type.Unsafe<Static<T>>({
    [Kind]: ALTERNATIVES,
    [checkedAs]: checked,
    type: nullable ? ['object', 'null'] : 'object',
    properties,
    required,
    additionalProperties: false,
  });
}

/** One of these objects. */
export const OneOf = <T extends TObject[]>(members: [...T]) => alternatives(Type.Union(members), members, false);
/** One of these objects, or null. */
export const OneOfOrNull = <T extends TObject[]>(members: [...T]) => alternatives(Type.Union([...members, Type.Null()]), members, true);
/** An object or null. */
export const OrNull = <T extends TObject>(schema: T) => alternatives(Type.Union([schema, Type.Null()]), [schema], true);

/** An object of the API's answers: exactly these properties (see above). */
export function View<T extends TProperties>(properties: T, options: ObjectOptions = {}): TObject<T> {
  return Type.Object(properties, { ...options, additionalProperties: false });
}

/** One property per key of an enumeration, each of this schema (counts per state, summaries per component). */
export function keyed<K extends string, T extends TSchema>(keys: readonly K[], schema: T): Record<K, T> {
  return Object.fromEntries(keys.map((key) => [key, schema])) as Record<K, T>;
}

/** A JSON object the API passes through as it is (a cluster's settings, an event's data, facts). */
export const FreeObject = (options: { description?: string } = {}) => Type.Record(Type.String(), Type.Unknown(), options);

/** A timestamp: ISO-8601 in UTC, everywhere in the API. */
export const Timestamp = (description = 'ISO-8601 time in UTC') => Type.String({ description });

/**
 * An id or a name in a path or a query: what ids and names are made of, nothing more,
 * so that no other byte (a NUL, a slash from `%2F`, a control character) reaches a lookup.
 */
export const Ref = (description: string, maxLength = 128) =>
  Type.String({ pattern: `^[A-Za-z0-9][A-Za-z0-9._:-]{0,${maxLength - 1}}$`, description });

/** `{items: [...]}`: a list that is small enough to be answered whole. */
export const ItemList = <T extends TSchema>(item: T, description?: string) =>
  View({ items: Type.Array(item) }, description ? { description } : {});
export interface ItemList<T> {
  items: T[];
}

/**
 * Paging of the lists that grow with the fleet (a cluster's nodes, an upgrade's nodes):
 * `?limit=` rows (default 500, at most 5,000) after `?cursor=`, answered as
 * `{items, nextCursor}` with `nextCursor: null` on the last page. A cursor is opaque to
 * clients: they pass the `nextCursor` of the previous page as it was given.
 */
export const DEFAULT_PAGE_LIMIT = 500;
export const MAX_PAGE_LIMIT = 5000;

export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ description: `rows per page, 1 to ${MAX_PAGE_LIMIT}; default ${DEFAULT_PAGE_LIMIT}` })),
    cursor: Type.Optional(Type.String({ maxLength: 8192, description: 'the nextCursor of the previous page, as it was given' })),
  },
  { additionalProperties: false },
);
export type PageQuery = Static<typeof PageQuery>;

export const Page = <T extends TSchema>(item: T, description?: string) =>
  View(
    {
      items: Type.Array(item),
      nextCursor: NullableString({ description: 'ask for the rows after this page with ?cursor=; null on the last page' }),
    },
    description ? { description } : {},
  );
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** An answer without a body (204): nothing to send, nothing to serialise. */
export const NoContent = Type.Unsafe<undefined>({ type: 'null', description: 'No content' });

/**
 * An answer that is not JSON (a log as text, an event stream, a file), documented by its
 * content type. Its body is streamed or sent as it is, never serialised.
 */
export const NotJson = (mediaType: string, description: string, format?: 'binary') => ({
  description,
  // Typed `unknown`: the server sends text, a buffer or a stream as it is.
  content: { [mediaType]: { schema: Type.Unsafe<unknown>({ type: 'string', ...(format ? { format } : {}) }) } },
});

/**
 * True when the two types are the same. Used where a schema must describe exactly a type
 * that code outside this module keeps (the agent's protocol types in `domain`): the
 * compiler then fails when either changes alone.
 */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export type Expect<T extends true> = T;
