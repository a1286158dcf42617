/**
 * The caller's voice over the bot. The InterruptionPolicy decides what it means (pure logic); this
 * feeds it the VAD, the recogniser's words and the clock while the bot speaks, and applies its
 * decisions: a pause or a resume of the bot's output, each an `interruption` event, or an interruption
 * of the reply, which the call carries out (it owns the reply).
 */
import type { BotOutput } from './bot-output.ts';
import type { CallEvents } from './call-events.ts';
import { InterruptionPolicy, type InterruptionDecision, type InterruptionSettings } from './interruption-policy.ts';

export interface BargeInOptions {
  settings: Partial<InterruptionSettings>;
  output: BotOutput;
  events: CallEvents;
  /** Whether the caller may interrupt at all (not while the bot only transcribes). */
  enabled(): boolean;
  /** Stops the reply in flight; `decidedAtMonoMs` is performance.now() of the decision. */
  interrupt(decidedAtMonoMs: number): void;
}

export class BargeIn {
  #policy: InterruptionPolicy;
  #output: BotOutput;
  #events: CallEvents;
  #enabled: () => boolean;
  #interrupt: (decidedAtMonoMs: number) => void;

  constructor(opts: BargeInOptions) {
    this.#policy = new InterruptionPolicy(opts.settings);
    this.#output = opts.output;
    this.#events = opts.events;
    this.#enabled = opts.enabled;
    this.#interrupt = opts.interrupt;
  }

  /** The VAD heard the caller start. False when the bot is not speaking: there is nothing to barge into. */
  speechStarted(): boolean {
    if (!this.#output.speaking || !this.#enabled()) return false;
    this.#decide(this.#policy.speechStarted(performance.now()));
    return true;
  }

  speechEnded(): void {
    this.#decide(this.#policy.speechEnded(performance.now()));
  }

  /** Recognised words of the caller (interim or final). */
  words(text: string): void {
    if (this.#output.speaking && this.#enabled()) this.#decide(this.#policy.words(text));
  }

  /** Time passing: a pause that goes on, or a false interruption's timeout. */
  tick(): void {
    if (this.#output.speaking || this.#policy.state !== 'none') this.#decide(this.#policy.tick(performance.now()));
  }

  /** The reply ended or was cut: nothing left to interrupt. */
  reset(): void {
    this.#policy.reset();
  }

  #decide(decision: InterruptionDecision): void {
    if (decision === null) return;
    // performance.now() of the decision, so that a caller in the same process (a test) can time the cut
    // on its own clock; the event's `at` is wall time, too coarse for that.
    const decidedAtMonoMs = performance.now();
    if (decision === 'pause') {
      this.#output.pause();
      this.#events.emit('interruption', { event: 'paused', decidedAtMonoMs });
    } else if (decision === 'resume') {
      this.#output.resume();
      this.#events.emit('interruption', { event: 'resumed', falseInterruption: true, decidedAtMonoMs });
    } else if (decision === 'interrupt') {
      this.#interrupt(decidedAtMonoMs);
    }
  }
}
