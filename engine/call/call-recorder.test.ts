import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { rms } from '../pcm.ts';
import { loadResamplerModule } from '../stages/resampler.ts';
import { CallRecorder } from './call-recorder.ts';

beforeAll(async () => {
  await loadResamplerModule();
});

describe('CallRecorder', () => {
  it('writes a stereo WAV with the bot aligned to the caller clock', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'rec-')), 'call.wav');
    const recorder = new CallRecorder(path, 1000);
    recorder.caller(Int16Array.from({ length: 10 }, (_, i) => i + 1));
    recorder.bot(Int16Array.of(-1, -2, -3));
    recorder.caller(Int16Array.from({ length: 10 }, (_, i) => i + 11));
    recorder.bot(Int16Array.of(-4, -5));
    const { durationMs } = recorder.close();
    expect(recorder.close().durationMs).toBe(durationMs);

    const file = readFileSync(path);
    expect(file.toString('ascii', 0, 4)).toBe('RIFF');
    expect(file.readUInt16LE(22)).toBe(2);
    expect(file.readUInt32LE(24)).toBe(1000);
    const frames = file.readUInt32LE(40) / 4;
    // The bot's last frame ran 2 samples past the caller's audio, and is kept.
    expect(frames).toBe(22);
    expect(durationMs).toBe(22);
    const samples = new Int16Array(file.buffer.slice(file.byteOffset + 44, file.byteOffset + 44 + frames * 4));
    const left = Array.from({ length: frames }, (_, i) => samples[i * 2]);
    const right = Array.from({ length: frames }, (_, i) => samples[i * 2 + 1]);
    expect(left).toEqual([...Array.from({ length: 20 }, (_, i) => i + 1), 0, 0]);
    // Each bot frame sits where the caller's clock was when it was sent: at 10, then at 20.
    expect(right).toEqual([...new Array(10).fill(0), -1, -2, -3, ...new Array(7).fill(0), -4, -5]);
  });

  it('keeps bot audio that runs past the caller at the end', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'rec-')), 'call.wav');
    const recorder = new CallRecorder(path, 1000);
    recorder.caller(new Int16Array(5));
    recorder.bot(Int16Array.of(7, 7, 7, 7));
    const { durationMs } = recorder.close();
    expect(durationMs).toBe(9);
  });

  it('resamples bot frames at another rate to the caller rate, at the caller position', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'rec-')), 'call.wav');
    const recorder = new CallRecorder(path, 16_000, 48_000);
    // 100 ms of caller silence, then 200 ms of a 48 kHz bot tone in 10 ms frames with the caller's clock
    // at 100 ms, then 300 ms more of caller silence.
    recorder.caller(new Int16Array(1600));
    for (let f = 0; f < 20; f++) recorder.bot(Int16Array.from({ length: 480 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 400 * (f * 480 + i)) / 48_000))));
    recorder.caller(new Int16Array(4800));
    const { durationMs } = recorder.close();
    expect(durationMs).toBe(400);

    const file = readFileSync(path);
    expect(file.readUInt32LE(24)).toBe(16_000);
    const frames = file.readUInt32LE(40) / 4;
    const samples = new Int16Array(file.buffer.slice(file.byteOffset + 44, file.byteOffset + 44 + frames * 4));
    const right = Int16Array.from({ length: frames }, (_, i) => samples[i * 2 + 1]);
    // The tone (rms ≈ 5657) fills 100-300 ms, less the resampler's few milliseconds of delay.
    expect(rms(right.subarray(0, 1600))).toBe(0);
    expect(rms(right.subarray(1800, 4600))).toBeGreaterThan(5000);
    expect(rms(right.subarray(5000))).toBe(0);
  });
});
