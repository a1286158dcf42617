import { describe, expect, it } from 'vitest';
import { AudioHistory } from './audio-history.ts';
import { blockLoudness, gateWindows, kWeightedEnergies, VadVolume } from './vad-volume.ts';

const RATE = 16_000;
const tone = (amplitude: number, samples = 6400, hz = 1000) => Float32Array.from({ length: samples }, (_, i) => amplitude * Math.sin((2 * Math.PI * hz * i) / RATE));

function energyOf(block: Float32Array): number {
  const energies = kWeightedEnergies(RATE);
  energies.slot(0).set(block);
  return energies.compute(1)[0];
}

describe('VadVolume (Pipecat min_volume gate)', () => {
  it('measures BS.1770 loudness: a full-scale 1 kHz sine reads about -3 LUFS, quantised to 0.1 LU bins', () => {
    // K-weighting gains about +0.7 dB at 1 kHz, which the -0.691 offset cancels: about -3.01 LUFS.
    const lufs = blockLoudness(energyOf(tone(1)));
    expect(lufs).toBeGreaterThan(-3.2);
    expect(lufs).toBeLessThan(-2.8);
    const binsAboveGate = (lufs + 70 - 0.05) / 0.1;
    expect(Math.abs(binsAboveGate - Math.round(binsAboveGate))).toBeLessThan(1e-6);
    expect(blockLoudness(energyOf(tone(1e-5)))).toBe(-Infinity);
  });

  it('measures blocks side by side exactly as one at a time', () => {
    const energies = kWeightedEnergies(RATE);
    const blocks = Array.from({ length: energies.maxBlocks }, (_, k) => tone(0.05 + 0.1 * k, 6400, 200 + 300 * k));
    const alone = blocks.map(energyOf);
    for (const count of [2, 3, energies.maxBlocks]) {
      blocks.slice(0, count).forEach((block, i) => energies.slot(i).set(block));
      expect(Array.from(energies.compute(count))).toEqual(alone.slice(0, count));
    }
  });

  it('reads 0 until 400 ms are there, then climbs towards the loudness by a fifth of the gap a window', () => {
    const volume = new VadVolume({ minVolume: 0.6, sampleRate: RATE });
    expect(volume.windowSamples).toBe(6400);
    expect(volume.afterWindow(tone(0.5, 512))).toBe(0);
    const loud = tone(0.5);
    const seen: number[] = [];
    for (let w = 0; w < 12; w++) seen.push(volume.afterWindow(loud));
    const raw = seen[0] / 0.2;
    expect(seen[1]).toBeCloseTo(seen[0] + 0.2 * (raw - seen[0]), 12);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
    // The gate opens after a few windows of loud audio, not at once, and closes again in silence.
    expect(volume.loudEnough(seen[0])).toBe(false);
    expect(volume.loudEnough(seen.at(-1)!)).toBe(true);
    let quiet = seen.at(-1)!;
    for (let w = 0; w < 10; w++) quiet = volume.afterWindow(new Float32Array(6400));
    expect(volume.loudEnough(quiet)).toBe(false);
  });

  it('gates many streams at once as it gates each alone', () => {
    const streams = Array.from({ length: 11 }, (_, k) => {
      const history = new AudioHistory(RATE);
      history.append(tone(k % 3 === 0 ? 0 : 0.02 * k, k === 5 ? 3000 : 8000, 150 + 100 * k));
      return { history, together: new VadVolume({ minVolume: 0.6, sampleRate: RATE }), alone: new VadVolume({ minVolume: 0.6, sampleRate: RATE }) };
    });
    for (let round = 0; round < 6; round++) {
      const loud = gateWindows(streams.map((s) => ({ volume: s.together, history: s.history, endSamples: s.history.totalSamples })), kWeightedEnergies(RATE));
      streams.forEach((s, k) => {
        const smoothed = s.alone.afterWindow(s.history.range(s.history.totalSamples - 6400, s.history.totalSamples));
        expect(s.together.exportState(), `stream ${k}`).toBe(smoothed);
        expect(loud[k]).toBe(s.alone.loudEnough(smoothed));
      });
    }
    expect(streams.some((s) => s.together.loudEnough(s.together.exportState()))).toBe(true);
  });

  it('is off at 0 and rejects volumes outside 0-1', () => {
    expect(new VadVolume({ minVolume: 0, sampleRate: RATE }).enabled).toBe(false);
    expect(() => new VadVolume({ minVolume: 1.5, sampleRate: RATE })).toThrow(expect.objectContaining({ code: 'VE_VAD_CONFIG' }));
  });
});
