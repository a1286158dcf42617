/**
 * One call's event stream in the shape of `engine/events.ts`: a per-call `seq`, a globally unique
 * `eventId` (so outbox replays are idempotent), a time, a type and its typed data. A listener that
 * throws is reported and never reaches the audio path or the other listeners.
 */
import { randomUUID } from 'node:crypto';
import type { EngineEvent, EngineEventDataMap, EngineEventListener, EngineEventOf, EngineEventType } from '../events.ts';

export class CallEvents {
  readonly callId: string;
  #seq = 0;
  #prefix = randomUUID();
  #listeners = new Set<EngineEventListener>();
  #onListenerError: (error: unknown) => void;

  constructor(callId: string, onListenerError: (error: unknown) => void = () => {}) {
    this.callId = callId;
    this.#onListenerError = onListenerError;
  }

  on(listener: EngineEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit<T extends EngineEventType>(type: T, data: EngineEventDataMap[T]): EngineEventOf<T> {
    const seq = ++this.#seq;
    const event = { callId: this.callId, seq, eventId: `${this.#prefix}:${seq}`, type, at: new Date().toISOString(), data } as EngineEvent as EngineEventOf<T>;
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
    return event;
  }
}
