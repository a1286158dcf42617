/**
 * One typed event stream per call, in the shape the control plane persists and forwards: a per-call
 * `seq`, a globally unique `eventId` (so outbox replays are idempotent), a time, a type and data.
 * A listener that throws is reported and never reaches the audio path or the other listeners.
 */
import { randomUUID } from 'node:crypto';

export type VoiceEventType =
  | 'vad'
  | 'turn'
  | 'transcript'
  | 'bot_status'
  | 'interruption'
  | 'latency'
  | 'error'
  | 'handoff_requested'
  | 'end_call_requested'
  | 'worker_restarted'
  | 'bot_mode'
  | 'call_ended';

export interface VoiceEvent {
  callId: string;
  seq: number;
  eventId: string;
  type: VoiceEventType;
  at: string;
  data: Record<string, unknown>;
}

export type VoiceEventListener = (event: VoiceEvent) => void;

export class CallEvents {
  readonly callId: string;
  #seq = 0;
  #prefix = randomUUID();
  #listeners = new Set<VoiceEventListener>();
  #onListenerError: (error: unknown) => void;

  constructor(callId: string, onListenerError: (error: unknown) => void = () => {}) {
    this.callId = callId;
    this.#onListenerError = onListenerError;
  }

  on(listener: VoiceEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(type: VoiceEventType, data: Record<string, unknown>): VoiceEvent {
    const seq = ++this.#seq;
    const event: VoiceEvent = { callId: this.callId, seq, eventId: `${this.#prefix}:${seq}`, type, at: new Date().toISOString(), data };
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
