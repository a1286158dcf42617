/**
 * Real speech for tests, synthesised offline with Debian's espeak-ng and resampled with sox. Results
 * are cached under `.cache/speech/` keyed by everything that shapes the audio, so a test suite pays
 * for each phrase once per machine.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, requireTool } from './process.ts';

/** espeak-ng writes 22 050 Hz mono 16-bit WAV whatever the voice. */
export const ESPEAK_SAMPLE_RATE = 22_050;

const DEFAULT_SAMPLE_RATE = 16_000;
const DEFAULT_VOICE = 'en-us';
const DEFAULT_WORDS_PER_MINUTE = 160;

/*
 * Samples with |x| at or below this count as silence when trimming. espeak-ng pads with digital
 * zeros, but sox's resampling filter rings a few LSB around the edges; -54 dBFS sits well above that
 * ringing and well below the quietest speech onset.
 */
const SILENCE_THRESHOLD = 64;

// Bumped when the cached audio would change for the same inputs (new trimming, new sox flags).
const CACHE_FORMAT = 1;

export interface SpeechOptions {
  /** Output rate in Hz; default 16 000. */
  sampleRate?: number;
  /** espeak-ng voice name; default `en-us`. */
  voice?: string;
  /** espeak-ng speed; default 160. */
  wordsPerMinute?: number;
}

export interface SpeechSegment {
  text: string;
  /** First sample of audible speech. */
  startSample: number;
  /** One past the last sample of audible speech. */
  endSample: number;
}

export interface Conversation {
  pcm: Int16Array;
  sampleRate: number;
  segments: SpeechSegment[];
}

export type ScriptStep = { say: string } | { pauseMs: number };

/**
 * Speech for `text` as 16-bit mono PCM at `opts.sampleRate`, exactly as espeak-ng produced it
 * (including its own leading and trailing silence).
 */
export function synthesizeSpeech(text: string, opts: SpeechOptions = {}): Int16Array {
  const sampleRate = opts.sampleRate ?? DEFAULT_SAMPLE_RATE;
  const voice = opts.voice ?? DEFAULT_VOICE;
  const wordsPerMinute = opts.wordsPerMinute ?? DEFAULT_WORDS_PER_MINUTE;
  if (!Number.isInteger(sampleRate) || sampleRate < 8000 || sampleRate > 192_000) {
    throw new RangeError(`sampleRate must be an integer in 8000..192000 Hz, got ${sampleRate}`);
  }
  if (text.trim() === '') throw new RangeError('text must not be empty');

  const key = createHash('sha256')
    .update(JSON.stringify({ format: CACHE_FORMAT, text, voice, wordsPerMinute, sampleRate }))
    .digest('hex')
    .slice(0, 32);
  const dir = cacheDir('speech');
  const cachedPath = join(dir, `${key}.wav`);
  if (existsSync(cachedPath)) return readWav(cachedPath).pcm;

  requireTool('espeak-ng', 'espeak-ng');
  // Unique scratch names: several test processes may synthesise the same phrase at once.
  const scratch = join(dir, `${key}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const rawPath = `${scratch}.espeak.wav`;
  const outPath = `${scratch}.out.wav`;
  try {
    run('espeak-ng', ['-v', voice, '-s', String(wordsPerMinute), '-w', rawPath, '--', text]);
    if (sampleRate === ESPEAK_SAMPLE_RATE) {
      renameSync(rawPath, outPath);
    } else {
      requireTool('sox', 'sox');
      // -D: no dither, so the cached bytes are deterministic and silence stays digital zero.
      run('sox', ['-D', rawPath, '-r', String(sampleRate), '-b', '16', outPath]);
    }
    const { pcm, sampleRate: gotRate } = readWav(outPath);
    if (gotRate !== sampleRate) throw new Error(`sox produced ${gotRate} Hz instead of ${sampleRate} Hz`);
    // Rename is atomic, so a concurrent reader sees either no file or a complete one.
    renameSync(outPath, cachedPath);
    return pcm;
  } finally {
    rmSync(rawPath, { force: true });
    rmSync(outPath, { force: true });
  }
}

/**
 * Bounds of the audible part of `pcm`: `[startSample, endSample)`, or an empty range at 0 when
 * everything is below the silence threshold.
 */
export function findSpeechBounds(pcm: Int16Array, threshold = SILENCE_THRESHOLD): { startSample: number; endSample: number } {
  let start = 0;
  while (start < pcm.length && Math.abs(pcm[start]) <= threshold) start++;
  if (start === pcm.length) return { startSample: 0, endSample: 0 };
  let end = pcm.length;
  while (end > start && Math.abs(pcm[end - 1]) <= threshold) end--;
  return { startSample: start, endSample: end };
}

/**
 * Utterances and pauses laid end to end. Each utterance is trimmed of espeak-ng's own silence, so a
 * `pauseMs` step is exactly the silence between two segments and the segment bounds are where
 * speech really starts and ends (ground truth for VAD and turn-taking tests).
 */
export function synthesizeConversation(script: ScriptStep[], opts: { sampleRate?: number } = {}): Conversation {
  const sampleRate = opts.sampleRate ?? DEFAULT_SAMPLE_RATE;
  const pieces: Int16Array[] = [];
  const segments: SpeechSegment[] = [];
  let offsetSamples = 0;
  for (const step of script) {
    if ('say' in step) {
      const speech = synthesizeSpeech(step.say, { sampleRate });
      const { startSample, endSample } = findSpeechBounds(speech);
      if (endSample === startSample) throw new Error(`espeak-ng produced only silence for ${JSON.stringify(step.say)}`);
      const trimmed = speech.subarray(startSample, endSample);
      pieces.push(trimmed);
      segments.push({ text: step.say, startSample: offsetSamples, endSample: offsetSamples + trimmed.length });
      offsetSamples += trimmed.length;
    } else {
      if (!(step.pauseMs >= 0)) throw new RangeError(`pauseMs must be >= 0, got ${step.pauseMs}`);
      const silence = new Int16Array(Math.round((step.pauseMs * sampleRate) / 1000));
      pieces.push(silence);
      offsetSamples += silence.length;
    }
  }
  const pcm = new Int16Array(offsetSamples);
  let at = 0;
  for (const piece of pieces) {
    pcm.set(piece, at);
    at += piece.length;
  }
  return { pcm, sampleRate, segments };
}

/** Writes 16-bit mono PCM as a canonical 44-byte-header WAV file. */
export function writeWav(path: string, pcm: Int16Array, sampleRate: number): void {
  const dataBytes = pcm.length * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(sampleRate, 24);
  buf.writeUInt32LE(sampleRate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < pcm.length; i++) buf.writeInt16LE(pcm[i], 44 + i * 2);
  writeFileSync(path, buf);
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/**
 * Reads a mono 16-bit PCM WAV file. Walks the RIFF chunks rather than assuming a 44-byte header
 * (sox writes extensible headers and LIST chunks), and clamps a data size that overruns the file,
 * which is what streaming writers such as `espeak-ng --stdout` leave behind.
 */
export function readWav(path: string): { pcm: Int16Array; sampleRate: number } {
  const buf = readFileSync(path);
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${path} is not a RIFF/WAVE file`);
  }
  let format: { audioFormat: number; channels: number; sampleRate: number; bitsPerSample: number } | undefined;
  let offset = 12;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = {
        audioFormat: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bitsPerSample: buf.readUInt16LE(body + 14),
      };
      if (format.audioFormat === WAVE_FORMAT_EXTENSIBLE && size >= 26) {
        // The real format tag is the first two bytes of the sub-format GUID.
        format.audioFormat = buf.readUInt16LE(body + 24);
      }
    } else if (id === 'data') {
      if (format === undefined) throw new Error(`${path}: data chunk before fmt chunk`);
      if (format.audioFormat !== WAVE_FORMAT_PCM || format.bitsPerSample !== 16 || format.channels !== 1) {
        throw new Error(
          `${path}: only mono 16-bit PCM is supported (format ${format.audioFormat}, ${format.channels} channels, ${format.bitsPerSample} bits)`,
        );
      }
      const available = Math.min(size, buf.length - body);
      const samples = Math.floor(available / 2);
      const pcm = new Int16Array(samples);
      for (let i = 0; i < samples; i++) pcm[i] = buf.readInt16LE(body + i * 2);
      return { pcm, sampleRate: format.sampleRate };
    }
    // Chunks are padded to an even size.
    offset = body + size + (size & 1);
  }
  throw new Error(`${path}: no data chunk`);
}

/** Encodes a WAV file to Ogg Opus (what `lk room join --publish` takes) with Debian's opusenc. */
export function toOggOpus(wavPath: string, oggPath: string): void {
  requireTool('opusenc', 'opus-tools');
  run('opusenc', ['--quiet', wavPath, oggPath]);
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) throw new Error(`${command} failed to start: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status}: ${result.stderr.trim()}`);
  }
}
