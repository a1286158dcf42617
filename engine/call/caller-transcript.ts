/**
 * What the caller said. Each recogniser result is an event and an update in the room, one segment per
 * final; the finals since the last turn make up the next turn's text. When a turn is decided before
 * the recogniser's finals cover its speech (the VAD and Smart Turn are quicker than the recogniser's
 * endpointing), `collect` asks for them and waits, bounded.
 */
import type { TranscriptResult } from '../providers/stt.ts';
import type { CallTransport } from '../transport/call-transport.ts';
import type { CallEvents } from './call-events.ts';

/** A final that ends at most this long before the VAD's end of speech covers the turn's speech. */
const FINAL_COVERS_MS = 300;

export class CallerTranscript {
  #callId: string;
  #events: CallEvents;
  #transport: CallTransport;
  #segment = 0;
  #typed = 0;
  #turnText: string[] = [];
  #lastFinal: { endMs: number; at: number } | null = null;
  #waiters: Array<() => void> = [];
  /** Where the VAD last heard the caller stop, in ms of the call's audio. */
  #speechEndMs = 0;

  constructor(callId: string, events: CallEvents, transport: CallTransport) {
    this.#callId = callId;
    this.#events = events;
    this.#transport = transport;
  }

  /** A non-empty recogniser result: an event, and an update of the caller's segment in the room. */
  publish(result: TranscriptResult): void {
    const segmentId = `${this.#callId}:caller:${this.#segment}`;
    const final = result.kind === 'final';
    this.#events.emit('transcript', { segmentId, speaker: 'caller', text: result.text, startMs: result.startMs, endMs: result.endMs, final });
    void this.#transport.publishTranscript({ segmentId, speaker: 'caller', text: result.text, final }).catch(() => {});
  }

  /**
   * A message the caller typed: a final segment of its own, marked as text, in the call's events only.
   * Not sent back to the room: the caller's app already shows what it sent on `lk.chat`.
   */
  typed(text: string): void {
    const segmentId = `${this.#callId}:caller:text:${this.#typed++}`;
    this.#events.emit('transcript', { segmentId, speaker: 'caller', text, final: true, source: 'text' });
  }

  /** A final result: it closes its segment and joins the turn's text. */
  addFinal(result: TranscriptResult): void {
    this.#segment++;
    this.#turnText.push(result.text.trim());
    this.#lastFinal = { endMs: result.endMs, at: performance.now() };
    this.wake();
  }

  speechEnded(endMs: number): void {
    this.#speechEndMs = endMs;
  }

  /** Ends every wait now (the recogniser went down, or the call closed). */
  wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /**
   * The turn's text, once the finals cover the speech that ended it: when they do not yet, asks the
   * recogniser for them (`askForFinal`) and waits up to `waitMs`, while `canWait` holds. The text is
   * the turn's: the next collect starts afresh. `sttFinalAt` is when the last final arrived.
   */
  async collect(opts: { waitMs: number; askForFinal(): void; canWait(): boolean }): Promise<{ text: string; sttFinalAt?: number }> {
    if (!this.#covered()) {
      opts.askForFinal();
      const deadline = performance.now() + opts.waitMs;
      while (!this.#covered() && performance.now() < deadline && opts.canWait()) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
          this.#waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    }
    const text = this.#turnText.join(' ').trim();
    this.#turnText = [];
    return { text, sttFinalAt: this.#lastFinal?.at };
  }

  #covered(): boolean {
    return this.#lastFinal !== null && this.#lastFinal.endMs >= this.#speechEndMs - FINAL_COVERS_MS && this.#turnText.length > 0;
  }
}
