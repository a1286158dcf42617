import { VoiceError } from '../errors.ts';

/** A ring or doorbell was asked for with a size it cannot have. Programming error: not retryable. */
export class RingCapacityError extends VoiceError {
  constructor(capacitySamples: number, maxSamples: number) {
    super('VE_RING_CAPACITY', `ring capacity must be an integer in [1, ${maxSamples}] samples, got ${capacitySamples}`, {
      status: 500,
      retryable: false,
    });
    this.name = 'RingCapacityError';
  }
}

/** attach() was handed a SharedArrayBuffer that does not hold a ring or doorbell of this layout. */
export class RingLayoutError extends VoiceError {
  constructor(what: string, detail: string) {
    super('VE_RING_LAYOUT', `buffer is not a valid ${what}: ${detail}`, { status: 500, retryable: false });
    this.name = 'RingLayoutError';
  }
}
