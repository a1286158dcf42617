import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VadHysteresis, type VadEvent } from './vad-hysteresis.ts';

const W = 512;
const quiet = (n: number, p = 0.1) => Array<number>(n).fill(p);
const speech = (n: number, p = 0.95) => Array<number>(n).fill(p);

/** Feeds windows and records each event with the index of the window that completed it. */
function run(h: VadHysteresis, probabilities: number[]): Array<VadEvent & { atWindow: number }> {
  const out: Array<VadEvent & { atWindow: number }> = [];
  probabilities.forEach((p, i) => {
    const e = h.push(p);
    if (e !== null) out.push({ ...e, atWindow: i });
  });
  return out;
}

describe('VadHysteresis with Pipecat defaults (0.7, 200 ms, 200 ms)', () => {
  it('needs 6 windows of 32 ms to start and to stop', () => {
    const h = new VadHysteresis();
    expect(h.startWindows).toBe(6);
    expect(h.stopWindows).toBe(6);
  });

  it('emits nothing for silence', () => {
    expect(run(new VadHysteresis(), quiet(100))).toEqual([]);
  });

  it('marks a speech run from the start of its first window to the end of its last', () => {
    const events = run(new VadHysteresis(), [...quiet(10), ...speech(20), ...quiet(10)]);
    expect(events).toEqual([
      { type: 'speech_start', offsetSamples: 10 * W, atWindow: 15 },
      { type: 'speech_end', offsetSamples: 30 * W, atWindow: 35 },
    ]);
  });

  it('ignores a speech blip shorter than startMs', () => {
    expect(run(new VadHysteresis(), [...quiet(5), ...speech(5), ...quiet(5), ...speech(3), ...quiet(10)])).toEqual([]);
  });

  it('starts over when a non-speech window interrupts the start run', () => {
    const events = run(new VadHysteresis(), [...speech(5), 0.2, ...speech(6), ...quiet(6)]);
    expect(events.map((e) => [e.type, e.offsetSamples])).toEqual([
      ['speech_start', 6 * W],
      ['speech_end', 12 * W],
    ]);
  });

  it('keeps one turn through a pause shorter than stopMs', () => {
    const events = run(new VadHysteresis(), [...speech(8), ...quiet(5), ...speech(8), ...quiet(6)]);
    expect(events.map((e) => [e.type, e.offsetSamples])).toEqual([
      ['speech_start', 0],
      ['speech_end', 21 * W],
    ]);
  });

  it('splits two utterances separated by at least stopMs', () => {
    const events = run(new VadHysteresis(), [...speech(8), ...quiet(6), ...speech(8), ...quiet(6)]);
    expect(events.map((e) => [e.type, e.offsetSamples])).toEqual([
      ['speech_start', 0],
      ['speech_end', 8 * W],
      ['speech_start', 14 * W],
      ['speech_end', 22 * W],
    ]);
  });

  it('counts exactly the confidence threshold as speech', () => {
    expect(run(new VadHysteresis(), speech(6, 0.7)).map((e) => e.type)).toEqual(['speech_start']);
    expect(run(new VadHysteresis(), speech(6, 0.69))).toEqual([]);
  });
});

describe('VadHysteresis options', () => {
  it('keeps speaking through softer windows with a lower exitConfidence', () => {
    const probabilities = [...speech(6), ...speech(10, 0.5), ...quiet(6)];
    expect(run(new VadHysteresis({ exitConfidence: 0.4 }), probabilities).map((e) => [e.type, e.offsetSamples])).toEqual([
      ['speech_start', 0],
      ['speech_end', 16 * W],
    ]);
    // Without it, the 0.5 windows are silence and speech ends right after the loud part.
    expect(run(new VadHysteresis(), probabilities).map((e) => [e.type, e.offsetSamples])).toEqual([
      ['speech_start', 0],
      ['speech_end', 6 * W],
    ]);
  });

  it('uses startMs and stopMs rounded to whole windows', () => {
    const h = new VadHysteresis({ startMs: 0, stopMs: 500 });
    expect(h.startWindows).toBe(1);
    expect(h.stopWindows).toBe(16);
    const events = run(h, [...quiet(2), ...speech(1), ...quiet(15), ...speech(1), ...quiet(16)]);
    expect(events.map((e) => [e.type, e.offsetSamples, e.atWindow])).toEqual([
      ['speech_start', 2 * W, 2],
      ['speech_end', 19 * W, 34],
    ]);
  });

  it('rejects impossible settings with VE_VAD_CONFIG', () => {
    expect(() => new VadHysteresis({ confidence: 1.5 })).toThrow(expect.objectContaining({ code: 'VE_VAD_CONFIG' }));
    expect(() => new VadHysteresis({ confidence: 0.5, exitConfidence: 0.6 })).toThrow(expect.objectContaining({ code: 'VE_VAD_CONFIG' }));
    expect(() => new VadHysteresis({ stopMs: -1 })).toThrow(expect.objectContaining({ code: 'VE_VAD_CONFIG' }));
    expect(() => new VadHysteresis({ windowSamples: 0 })).toThrow(expect.objectContaining({ code: 'VE_VAD_CONFIG' }));
  });
});

describe('VadHysteresis lifecycle', () => {
  it('end() closes an open turn at the end of the last speech window', () => {
    const speaking = new VadHysteresis();
    speaking.pushAll(speech(10));
    expect(speaking.end()).toEqual({ type: 'speech_end', offsetSamples: 10 * W });
    expect(speaking.speaking).toBe(false);

    const stopping = new VadHysteresis();
    stopping.pushAll([...speech(10), ...quiet(3)]);
    expect(stopping.end()).toEqual({ type: 'speech_end', offsetSamples: 10 * W });

    const silent = new VadHysteresis();
    silent.pushAll([...quiet(3), ...speech(3)]);
    expect(silent.end()).toBeNull();
  });

  it('reset() returns to quiet at the given offset', () => {
    const h = new VadHysteresis();
    h.pushAll(speech(10));
    h.reset(1000 * W);
    expect(h.speaking).toBe(false);
    expect(h.pushAll(speech(6))).toEqual([{ type: 'speech_start', offsetSamples: 1000 * W }]);
  });

  it('an exported state resumes identically in another instance', () => {
    const probabilities = [...quiet(4), ...speech(9), ...quiet(3), ...speech(2), ...quiet(7), ...speech(4)];
    for (let cut = 0; cut <= probabilities.length; cut++) {
      const whole = new VadHysteresis().pushAll(probabilities);
      const first = new VadHysteresis();
      const before = first.pushAll(probabilities.slice(0, cut));
      const second = new VadHysteresis();
      second.importState(first.exportState());
      expect([...before, ...second.pushAll(probabilities.slice(cut))]).toEqual(whole);
    }
  });

  it('for any probabilities: events alternate, offsets are window-aligned and every turn had enough speech', () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: 0, max: 1, noNaN: true }), { maxLength: 300 }), (probabilities) => {
        const h = new VadHysteresis();
        const events = run(h, probabilities);
        events.forEach((e, i) => {
          expect(e.type).toBe(i % 2 === 0 ? 'speech_start' : 'speech_end');
          expect(e.offsetSamples % W).toBe(0);
          if (e.type === 'speech_start') {
            const first = e.offsetSamples / W;
            // The run that started the turn: 6 consecutive windows at or above 0.7, ending where it fired.
            expect(e.atWindow - first + 1).toBe(6);
            for (let w = first; w <= e.atWindow; w++) expect(probabilities[w]).toBeGreaterThanOrEqual(0.7);
          } else {
            const lastSpeechEnd = e.offsetSamples / W;
            expect(e.atWindow - lastSpeechEnd + 1).toBe(6);
            for (let w = lastSpeechEnd; w <= e.atWindow; w++) expect(probabilities[w]).toBeLessThan(0.7);
            expect(probabilities[lastSpeechEnd - 1]).toBeGreaterThanOrEqual(0.7);
            expect(e.offsetSamples).toBeGreaterThan(events[i - 1].offsetSamples);
          }
        });
        expect(h.speaking).toBe(events.length % 2 === 1);
      }),
      { numRuns: 300 },
    );
  });
});
