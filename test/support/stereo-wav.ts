/**
 * Reads the engine's two-sided recording (engine/call/call-recorder.ts) strictly: every header field is
 * checked against the file, so a header left unpatched or a torn write fails here, not in a player.
 */
import { readFileSync } from 'node:fs';

export interface StereoWav {
  sampleRate: number;
  left: Int16Array;
  right: Int16Array;
}

export function readStereoWav(path: string): StereoWav {
  const buf = readFileSync(path);
  const fail = (what: string): never => {
    throw new Error(`${path}: ${what}`);
  };
  if (buf.length < 44) fail(`only ${buf.length} bytes`);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') fail('not RIFF/WAVE');
  if (buf.readUInt32LE(4) !== buf.length - 8) fail(`RIFF size ${buf.readUInt32LE(4)} but the file has ${buf.length - 8} bytes after it`);
  if (buf.toString('ascii', 12, 16) !== 'fmt ' || buf.readUInt32LE(16) !== 16) fail('no 16-byte fmt chunk first');
  const format = buf.readUInt16LE(20);
  const channels = buf.readUInt16LE(22);
  const sampleRate = buf.readUInt32LE(24);
  const byteRate = buf.readUInt32LE(28);
  const blockAlign = buf.readUInt16LE(32);
  const bits = buf.readUInt16LE(34);
  if (format !== 1 || channels !== 2 || bits !== 16) fail(`format ${format}, ${channels} channels, ${bits} bits; expected PCM, 2, 16`);
  if (byteRate !== sampleRate * 4 || blockAlign !== 4) fail(`byte rate ${byteRate} / block align ${blockAlign} do not match ${sampleRate} Hz stereo 16-bit`);
  if (buf.toString('ascii', 36, 40) !== 'data') fail('no data chunk after fmt');
  const dataBytes = buf.readUInt32LE(40);
  if (dataBytes !== buf.length - 44 || dataBytes % 4 !== 0) fail(`data size ${dataBytes} but ${buf.length - 44} bytes follow`);
  const frames = dataBytes / 4;
  const left = new Int16Array(frames);
  const right = new Int16Array(frames);
  for (let i = 0; i < frames; i++) {
    left[i] = buf.readInt16LE(44 + i * 4);
    right[i] = buf.readInt16LE(46 + i * 4);
  }
  return { sampleRate, left, right };
}

/** Runs of 100 ms windows whose RMS is above `threshold`, in ms from the start; gaps under `bridgeMs` are bridged. */
export function activeSpans(pcm: Int16Array, sampleRate: number, threshold = 300, bridgeMs = 500): Array<{ startMs: number; endMs: number }> {
  const window = sampleRate / 10;
  const spans: Array<{ startMs: number; endMs: number }> = [];
  for (let offset = 0; offset + window <= pcm.length; offset += window) {
    let sum = 0;
    for (let i = offset; i < offset + window; i++) sum += pcm[i] * pcm[i];
    if (Math.sqrt(sum / window) <= threshold) continue;
    const startMs = (offset * 1000) / sampleRate;
    const last = spans.at(-1);
    if (last !== undefined && startMs - last.endMs < bridgeMs) last.endMs = startMs + 100;
    else spans.push({ startMs, endMs: startMs + 100 });
  }
  return spans;
}
