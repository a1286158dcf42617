/**
 * The recogniser being unreachable, as the call lives it. Nothing the caller says meanwhile is
 * recognised: a turn that ends then is held (the latest one), the caller is told once per outage, and
 * the held turn is answered once the recogniser is back and has replayed the words it missed.
 */
import type { TurnRule } from '../events.ts';

/** A turn that ended while the recogniser was unreachable. */
export interface HeldTurn {
  turnId: number;
  probability: number | null;
  rule: TurnRule;
}

export class RecogniserOutage {
  #down = false;
  #noticeGiven = false;
  #held: HeldTurn | null = null;

  /** The recogniser reported an outage and has not proved itself back yet. */
  get down(): boolean {
    return this.#down;
  }

  wentDown(): void {
    this.#down = true;
  }

  cameBack(): void {
    this.#down = false;
    this.#noticeGiven = false;
  }

  /** Holds `turn` to answer later; true when the caller is to be told now (once per outage). */
  hold(turn: HeldTurn): boolean {
    this.#held = turn;
    if (this.#noticeGiven) return false;
    this.#noticeGiven = true;
    return true;
  }

  /** A newer turn is being answered: the held one goes with it. */
  drop(): void {
    this.#held = null;
  }

  /** The held turn, if any; it is no longer held. */
  take(): HeldTurn | null {
    const turn = this.#held;
    this.#held = null;
    return turn;
  }
}
