import { type Static, Type } from '@sinclair/typebox';
import { type UpshiftEvent, eventTypes } from '../domain/events.js';
import { type Equal, type Expect, FreeObject, NotJson, NullableString, Ref, StringEnum, Timestamp, View } from './common.js';

/** Events: the history (`GET /events`, newest first) and the live stream (`GET /stream`). */

/** Which events: the same filters for the history and for the live stream. */
const eventFilter = {
  clusterId: Type.Optional(Ref('cluster id or name')),
  upgradeId: Type.Optional(Ref('upgrade id')),
  type: Type.Optional(
    Type.String({
      pattern: '^[a-z_.]{1,64}(,[a-z_.]{1,64}){0,63}$',
      description: 'event types, comma-separated, such as upgrade.paused,upgrade.auto_paused',
    }),
  ),
  actor: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'only events of this actor: admin, engine, token:NAME, …' }),
  ),
  operations: Type.Optional(
    StringEnum(['true', 'false'] as const, {
      description:
        'true: only what people and the system decided (starts, pauses, resumes, cancels, refusals, auto-pauses, auto-cancels), not node and batch chatter',
    }),
  ),
};

export const EventQuery = Type.Object(
  {
    ...eventFilter,
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '1 to 500, default 50' })),
  },
  { additionalProperties: false },
);
export type EventQuery = Static<typeof EventQuery>;

export const StreamQuery = Type.Object(eventFilter, { additionalProperties: false });
export type StreamQuery = Static<typeof StreamQuery>;

export const EventView = View({
  id: Type.String({ description: 'increasing; the stream’s event id' }),
  at: Timestamp(),
  type: StringEnum(eventTypes),
  actor: Type.String({ description: 'who did it: admin, a token’s name, agent:NODE, engine for automatic steps' }),
  clusterId: NullableString(),
  upgradeId: NullableString(),
  nodeId: NullableString(),
  message: Type.String(),
  data: Type.Optional(FreeObject()),
});
export type EventView = Static<typeof EventView>;
/** The server sends the events it keeps (domain/events.ts) as they are. */
export type EventViewIsTheDomainEvent = Expect<Equal<EventView, UpshiftEvent>>;

export const EventPage = View(
  {
    items: Type.Array(EventView),
    next: NullableString({ description: 'ask for older events with ?cursor=; null when there are none' }),
  },
  { description: 'Events, newest first' },
);
export type EventPage = Static<typeof EventPage>;

/** The live stream (`text/event-stream`, see sse.ts). */
export const EventStream = NotJson(
  'text/event-stream',
  'Server-Sent Events: every event (id, event: its type, data: the event as JSON); `reload` when the client fell too far behind',
);
