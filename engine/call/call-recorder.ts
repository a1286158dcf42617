/**
 * Engine-side recording of both sides of a call as one stereo 16-bit WAV (caller left, bot right), written
 * to disk as it goes; no egress service needed. The caller's stream is the clock: each bot frame is placed
 * at the caller position it was sent at, so the two sides stay aligned. The file is at the caller's rate;
 * bot frames at another rate are resampled on the way in.
 */
import { openSync, writeSync, closeSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { concatPcm } from '../pcm.ts';
import { Resampler } from '../stages/resampler.ts';

const HEADER_BYTES = 44;
const FLUSH_SAMPLES = 4800;

export class CallRecorder {
  readonly filePath: string;
  readonly sampleRate: number;
  #fd: number;
  #caller: Int16Array[] = [];
  #callerPending = 0;
  /** Bot samples keyed by their caller-clock position, not yet written. */
  #bot = new Map<number, Int16Array>();
  #botPosition = 0;
  #written = 0;
  #closed = false;
  #botResampler: Resampler | null;

  /** `sampleRate`: the caller's audio and the file's; `botSampleRate`: the bot's frames (default: the same). */
  constructor(filePath: string, sampleRate: number, botSampleRate = sampleRate) {
    this.filePath = filePath;
    this.sampleRate = sampleRate;
    this.#botResampler = botSampleRate === sampleRate ? null : Resampler.create({ inputSampleRate: botSampleRate, outputSampleRate: sampleRate });
    mkdirSync(dirname(filePath), { recursive: true });
    this.#fd = openSync(filePath, 'w');
    writeSync(this.#fd, wavHeader(0, sampleRate));
  }

  get durationMs(): number {
    return ((this.#written + this.#callerPending) * 1000) / this.sampleRate;
  }

  caller(pcm: Int16Array): void {
    if (this.#closed) return;
    this.#caller.push(pcm.slice());
    this.#callerPending += pcm.length;
    if (this.#callerPending >= FLUSH_SAMPLES) this.#flush(false);
  }

  bot(pcm: Int16Array): void {
    if (this.#closed) return;
    if (this.#botResampler !== null) pcm = this.#botResampler.process(pcm);
    const now = this.#written + this.#callerPending;
    this.#botPosition = Math.max(this.#botPosition, now);
    this.#bot.set(this.#botPosition, pcm.slice());
    this.#botPosition += pcm.length;
  }

  #flush(final: boolean): void {
    const callerSamples = concatPcm(this.#caller);
    this.#caller = [];
    this.#callerPending = 0;
    const end = this.#written + callerSamples.length + (final ? Math.max(0, this.#botPosition - this.#written - callerSamples.length) : 0);
    const frames = end - this.#written;
    const stereo = new Int16Array(frames * 2);
    for (let i = 0; i < callerSamples.length; i++) stereo[i * 2] = callerSamples[i];
    for (const [position, chunk] of this.#bot) {
      if (position >= end) continue;
      for (let i = 0; i < chunk.length; i++) {
        const at = position + i;
        if (at >= this.#written && at < end) stereo[(at - this.#written) * 2 + 1] = chunk[i];
      }
      this.#bot.delete(position);
      if (position + chunk.length > end) this.#bot.set(end, chunk.subarray(end - position));
    }
    writeSync(this.#fd, new Uint8Array(stereo.buffer, stereo.byteOffset, stereo.byteLength));
    this.#written = end;
  }

  /** Idempotent: writes what is buffered and fixes the header's sizes. */
  close(): { filePath: string; durationMs: number } {
    if (!this.#closed) {
      this.#flush(true);
      this.#closed = true;
      this.#botResampler?.close();
      writeSync(this.#fd, wavHeader(this.#written, this.sampleRate), 0, HEADER_BYTES, 0);
      closeSync(this.#fd);
    }
    return { filePath: this.filePath, durationMs: (this.#written * 1000) / this.sampleRate };
  }
}

function wavHeader(frames: number, sampleRate: number): Uint8Array {
  const channels = 2;
  const dataBytes = frames * channels * 2;
  const header = Buffer.alloc(HEADER_BYTES);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8);
  header.write('fmt ', 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * channels * 2, 28);
  header.writeUInt16LE(channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(dataBytes, 40);
  return header;
}
