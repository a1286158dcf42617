/**
 * Decides what the caller's voice over the bot means. Pure logic over (event, time in ms):
 * - words that are not all backchannels ("okay", "uh-huh", "yeah") interrupt at once;
 * - speech that lasts `minSpeechMs` without recognised words pauses the bot (it may be a real
 *   interruption the recogniser has not caught up with yet);
 * - a pause with no words within `falseInterruptionTimeoutMs` (a cough, a door) resumes the reply;
 * - backchannels never interrupt, and resume a paused bot.
 */

export interface InterruptionSettings {
  minSpeechMs: number;
  /** Words, not counting backchannels, needed to interrupt. */
  minWords: number;
  falseInterruptionTimeoutMs: number;
  backchannels: string[];
}

export const DEFAULT_INTERRUPTION_SETTINGS: InterruptionSettings = {
  minSpeechMs: 600,
  minWords: 1,
  falseInterruptionTimeoutMs: 2000,
  backchannels: ['okay', 'ok', 'uh-huh', 'uh huh', 'mm-hmm', 'mhm', 'mm', 'hmm', 'yeah', 'yes', 'yep', 'right', 'sure', 'alright', 'all right', 'got it', 'i see', 'cool', 'uh', 'um'],
};

export type InterruptionDecision = 'pause' | 'resume' | 'interrupt' | null;

type State = 'none' | 'candidate' | 'paused';

export class InterruptionPolicy {
  readonly settings: InterruptionSettings;
  #backchannels: Set<string>;
  #state: State = 'none';
  #speechStartMs = 0;
  #speechEndMs: number | null = null;
  #pausedAtMs = 0;
  #heardWords = false;

  constructor(settings: Partial<InterruptionSettings> = {}) {
    this.settings = { ...DEFAULT_INTERRUPTION_SETTINGS, ...settings };
    this.#backchannels = new Set(this.settings.backchannels.map(normalise));
  }

  get state(): State {
    return this.#state;
  }

  /** The caller started speaking while the bot is speaking. */
  speechStarted(nowMs: number): InterruptionDecision {
    if (this.#state === 'none') this.#state = 'candidate';
    this.#heardWords = false;
    this.#speechStartMs = nowMs;
    this.#speechEndMs = null;
    return null;
  }

  speechEnded(nowMs: number): InterruptionDecision {
    if (this.#state !== 'none') this.#speechEndMs = nowMs;
    return null;
  }

  /** Recognised text (interim or final) of the caller's speech over the bot. */
  words(text: string): InterruptionDecision {
    if (this.#state === 'none' || text.trim() === '') return null;
    this.#heardWords = true;
    if (this.#meaningfulWords(text) >= Math.max(1, this.settings.minWords)) {
      this.#state = 'none';
      return 'interrupt';
    }
    if (!this.isBackchannel(text)) return null;
    const wasPaused = this.#state === 'paused';
    this.#state = this.#speechEndMs === null ? 'candidate' : 'none';
    return wasPaused ? 'resume' : null;
  }

  tick(nowMs: number): InterruptionDecision {
    if (this.#state === 'candidate') {
      const speaking = this.#speechEndMs === null;
      if (speaking && !this.#heardWords && nowMs - this.#speechStartMs >= this.settings.minSpeechMs) {
        this.#state = 'paused';
        this.#pausedAtMs = nowMs;
        return 'pause';
      }
      if (!speaking && nowMs - this.#speechEndMs! >= this.settings.falseInterruptionTimeoutMs) this.#state = 'none';
      return null;
    }
    if (this.#state === 'paused') {
      const quietSince = Math.max(this.#pausedAtMs, this.#speechEndMs ?? Number.POSITIVE_INFINITY);
      if (nowMs - quietSince >= this.settings.falseInterruptionTimeoutMs) {
        this.#state = 'none';
        return 'resume';
      }
    }
    return null;
  }

  /** The bot stopped speaking by itself: nothing left to interrupt. */
  reset(): void {
    this.#state = 'none';
    this.#speechEndMs = null;
  }

  #meaningfulWords(text: string): number {
    const phrase = normalise(text);
    if (phrase === '' || this.#backchannels.has(phrase)) return 0;
    return phrase.split(' ').filter((word) => !this.#backchannels.has(word)).length;
  }

  isBackchannel(text: string): boolean {
    const phrase = normalise(text);
    if (phrase === '' || this.#backchannels.has(phrase)) return true;
    return phrase.split(' ').every((word) => this.#backchannels.has(word));
  }
}

function normalise(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s'-]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}
