import { type Static, Type } from '@sinclair/typebox';
import { weekdays } from '../domain/maintenance-window.js';
import { StringEnum, View } from './common.js';

/**
 * A maintenance window: batches start only on `days` between `start` and `end`, wall-clock
 * time in `timezone`; an `end` at or before `start` closes the next day. The shapes are
 * checked here; the values (times, zone names) by the engine, whose errors say what to fix.
 */
export const MaintenanceWindowBody = Type.Object(
  {
    days: Type.Array(Type.String(), { description: `days the window opens on: ${weekdays.join(', ')}` }),
    start: Type.String({ description: 'opening time, HH:MM (24-hour) in timezone' }),
    end: Type.String({ description: 'closing time, HH:MM; at or before start: the next day' }),
    timezone: Type.String({ description: 'IANA time zone name such as Europe/Berlin' }),
  },
  { additionalProperties: false },
);
export const MaintenanceWindowView = View({
  days: Type.Array(StringEnum(weekdays)),
  start: Type.String(),
  end: Type.String(),
  timezone: Type.String(),
});
export type MaintenanceWindowView = Static<typeof MaintenanceWindowView>;
