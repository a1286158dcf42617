import { describe, expect, it } from 'vitest';
import { TurnWindow } from './turn-window.ts';

const RATE = 16_000;
const ms = (n: number) => (n * RATE) / 1000;
/** Pipecat's allowance: pre_speech_ms 500 + the VAD's start window 200 ms. */
const ALLOWANCE = ms(700);

describe('TurnWindow', () => {
  it('starts the turn 700 ms before the first speech confirmation and ends it at the stop', () => {
    const window = new TurnWindow();
    window.onSpeechStart(ms(2000), 0);
    expect(window.onSpeechEnd(ms(4000), 0)).toEqual({ startSamples: ms(2000) - ALLOWANCE, endSamples: ms(4000) });
  });

  it('keeps the turn across an incomplete decision: the resumed speech scores with the first', () => {
    const window = new TurnWindow();
    window.onSpeechStart(ms(2000), 0);
    window.onSpeechEnd(ms(4000), 0);
    // Nothing published: the model said incomplete (or has not answered), and the caller goes on.
    window.onSpeechStart(ms(4600), 0);
    expect(window.onSpeechEnd(ms(6000), 0)).toEqual({ startSamples: ms(2000) - ALLOWANCE, endSamples: ms(6000) });
  });

  it('clears the turn when it completes: the next turn cannot reach back past the completion', () => {
    const window = new TurnWindow();
    window.onSpeechStart(ms(2000), 0);
    window.onSpeechEnd(ms(4000), 0);
    // Completed at the stop; the caller speaks again 300 ms later, well inside the 700 ms allowance.
    window.onSpeechStart(ms(4500), ms(4000));
    expect(window.onSpeechEnd(ms(6000), ms(4000))).toEqual({ startSamples: ms(4000), endSamples: ms(6000) });
    // After a long pause the allowance fits in the silence.
    window.onSpeechStart(ms(9000), ms(6000));
    expect(window.onSpeechEnd(ms(10_000), ms(6000))).toEqual({ startSamples: ms(9000) - ALLOWANCE, endSamples: ms(10_000) });
  });

  it('splits the turns where the main thread did when it learns of a completion late', () => {
    const window = new TurnWindow();
    window.onSpeechStart(ms(2000), 0);
    window.onSpeechEnd(ms(4000), 0);
    // The caller resumed before the worker saw the completion at 4 s: that speech is a new turn.
    window.onSpeechStart(ms(4800), 0);
    expect(window.onSpeechEnd(ms(6000), ms(4000))).toEqual({ startSamples: ms(4100), endSamples: ms(6000) });
  });

  it('gives at most the last 8 s of a long turn', () => {
    const window = new TurnWindow();
    window.onSpeechStart(ms(1000), 0);
    expect(window.onSpeechEnd(ms(20_000), 0)).toEqual({ startSamples: ms(12_000), endSamples: ms(20_000) });
  });

  it('takes its allowance and length from the settings', () => {
    const window = new TurnWindow({ preSpeechMs: 0, vadStartMs: 100, maxDurationMs: 1000 });
    window.onSpeechStart(ms(2000), 0);
    expect(window.onSpeechEnd(ms(2500), 0)).toEqual({ startSamples: ms(1900), endSamples: ms(2500) });
    expect(window.onSpeechEnd(ms(5000), 0)).toEqual({ startSamples: ms(4000), endSamples: ms(5000) });
    expect(() => new TurnWindow({ maxDurationMs: 0 })).toThrow(expect.objectContaining({ code: 'VE_TURN_WINDOW_CONFIG' }));
  });

  it('moves with its call', () => {
    const window = new TurnWindow();
    window.onSpeechStart(ms(2000), 0);
    const moved = new TurnWindow();
    moved.importState(window.exportState());
    expect(moved.onSpeechEnd(ms(3000), 0)).toEqual(window.onSpeechEnd(ms(3000), 0));
  });
});
