/** Filtering a test's recorded engine events, typed by the event contract. */
import type { EngineEvent, EngineEventOf, EngineEventType } from '../../engine/events.ts';

/** The call's events, of one type when given, whose data has every field of `match`. */
export function eventsOf<E extends EngineEvent, T extends EngineEventType>(events: E[], callId: string, type: T, match?: Record<string, unknown>): Array<E & EngineEventOf<T>>;
export function eventsOf<E extends EngineEvent>(events: E[], callId: string): E[];
export function eventsOf<E extends EngineEvent>(events: E[], callId: string, type?: EngineEventType, match: Record<string, unknown> = {}): E[] {
  return events.filter(
    (e) => e.callId === callId && (type === undefined || e.type === type) && Object.entries(match).every(([k, v]) => (e.data as unknown as Record<string, unknown>)[k] === v),
  );
}
