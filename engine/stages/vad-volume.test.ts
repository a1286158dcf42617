import { describe, expect, it } from 'vitest';
import { blockLoudness, kWeighting, VadVolume } from './vad-volume.ts';

const RATE = 16_000;
const SUB_BLOCK = RATE / 10;
const tone = (amplitude: number, samples = 6400) => Float32Array.from({ length: samples }, (_, i) => amplitude * Math.sin((2 * Math.PI * 1000 * i) / RATE));

describe('VadVolume (Pipecat min_volume gate)', () => {
  it('measures BS.1770 loudness: a full-scale 1 kHz sine reads about -3 LUFS, quantised to 0.1 LU bins', () => {
    // K-weighting gains about +0.7 dB at 1 kHz, which the -0.691 offset cancels: about -3.01 LUFS.
    const lufs = blockLoudness(tone(1), kWeighting(RATE), SUB_BLOCK);
    expect(lufs).toBeGreaterThan(-3.2);
    expect(lufs).toBeLessThan(-2.8);
    const binsAboveGate = (lufs + 70 - 0.05) / 0.1;
    expect(Math.abs(binsAboveGate - Math.round(binsAboveGate))).toBeLessThan(1e-6);
    expect(blockLoudness(tone(1e-5), kWeighting(RATE), SUB_BLOCK)).toBe(-Infinity);
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

  it('is off at 0 and rejects volumes outside 0-1', () => {
    expect(new VadVolume({ minVolume: 0, sampleRate: RATE }).enabled).toBe(false);
    expect(() => new VadVolume({ minVolume: 1.5, sampleRate: RATE })).toThrow(expect.objectContaining({ code: 'VE_VAD_CONFIG' }));
  });
});
