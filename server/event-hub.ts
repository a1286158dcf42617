import type { EngineEvent } from '../engine/events.ts';

/** Per-call events kept in memory so that a subscriber can resume even before the outbox reached the store. */
export const RECENT_EVENTS_PER_CALL = 256;
/** Calls whose recent events are kept; the oldest-touched call is forgotten first. */
export const RECENT_CALLS = 2048;

export type EventListener = (event: EngineEvent) => void;

/**
 * Fans engine events out to live SSE/WebSocket subscribers of each call, and keeps the last few events
 * per call. Events go to the store through the outbox, which may lag; a resuming client is served from
 * the store and then from this buffer, deduplicated by `seq`.
 *
 * A subscriber that throws is dropped and never affects the publisher or other subscribers.
 */
export class EventHub {
  readonly #listeners = new Map<string, Set<EventListener>>();
  readonly #recent = new Map<string, EngineEvent[]>();
  #subscriberCount = 0;
  #closed = false;

  get subscriberCount(): number {
    return this.#subscriberCount;
  }

  publish(event: EngineEvent): void {
    if (this.#closed) return;
    let recent = this.#recent.get(event.callId);
    if (recent === undefined) {
      recent = [];
      if (this.#recent.size >= RECENT_CALLS) {
        const oldest = this.#recent.keys().next().value;
        if (oldest !== undefined) this.#recent.delete(oldest);
      }
    } else {
      // Re-insert so Map order tracks recency of use.
      this.#recent.delete(event.callId);
    }
    this.#recent.set(event.callId, recent);
    recent.push(event);
    if (recent.length > RECENT_EVENTS_PER_CALL) recent.splice(0, recent.length - RECENT_EVENTS_PER_CALL);

    const listeners = this.#listeners.get(event.callId);
    if (listeners === undefined) return;
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch {
        this.#remove(event.callId, listener);
      }
    }
  }

  /** Events of the call still in memory with `seq > afterSeq`, in seq order. */
  recent(callId: string, afterSeq: number): EngineEvent[] {
    return (this.#recent.get(callId) ?? []).filter((e) => e.seq > afterSeq).sort((a, b) => a.seq - b.seq);
  }

  /** Returns the unsubscribe function (idempotent). */
  subscribe(callId: string, listener: EventListener): () => void {
    if (this.#closed) return () => {};
    let listeners = this.#listeners.get(callId);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(callId, listeners);
    }
    listeners.add(listener);
    this.#subscriberCount++;
    return () => this.#remove(callId, listener);
  }

  /** Drops every subscriber; later publishes and subscribes are ignored. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#recent.clear();
    this.#subscriberCount = 0;
  }

  #remove(callId: string, listener: EventListener): void {
    const listeners = this.#listeners.get(callId);
    if (listeners === undefined || !listeners.delete(listener)) return;
    this.#subscriberCount--;
    if (listeners.size === 0) this.#listeners.delete(callId);
  }
}
