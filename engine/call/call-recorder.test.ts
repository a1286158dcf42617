import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CallRecorder } from './call-recorder.ts';

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
});
