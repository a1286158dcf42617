import { spawn } from 'node:child_process';

/**
 * Real speech for tests and fake servers: Debian's `espeak-ng` speaks the text, `sox` converts it to
 * 16-bit mono PCM at the requested rate. Both are local programs (`apt-get install -y espeak-ng sox`).
 */

const cache = new Map<string, Promise<Int16Array>>();
/** The product's offline TTS stand-in lives for days: keep the cache bounded (oldest entry goes first). */
const MAX_CACHED = 256;

export interface SpeechOptions {
  /** espeak-ng voice. Default `en-us`. */
  voice?: string;
  /** Speaking rate in words per minute. Default 170. */
  wordsPerMinute?: number;
}

/** Speak `text` at `sampleRate`; the latest results are cached per (text, rate, options). */
export function synthesizeSpeech(text: string, sampleRate: number, options: SpeechOptions = {}): Promise<Int16Array> {
  const voice = options.voice ?? 'en-us';
  const wordsPerMinute = options.wordsPerMinute ?? 170;
  const key = `${sampleRate}|${voice}|${wordsPerMinute}|${text}`;
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = runEspeak(text, sampleRate, voice, wordsPerMinute);
    pending.catch(() => cache.delete(key));
    cache.set(key, pending);
    if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value as string);
  }
  return pending;
}

function runEspeak(text: string, sampleRate: number, voice: string, wordsPerMinute: number): Promise<Int16Array> {
  return new Promise((resolve, reject) => {
    // Text goes through stdin so that text starting with "-" is never read as an option.
    const espeak = spawn('espeak-ng', ['--stdin', '--stdout', '-v', voice, '-s', String(wordsPerMinute)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const sox = spawn('sox', ['-q', '-t', 'wav', '-', '-t', 'raw', '-r', String(sampleRate), '-e', 'signed', '-b', '16', '-c', '1', '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    let failed = false;
    const fail = (err: Error): void => {
      if (failed) return;
      failed = true;
      espeak.kill();
      sox.kill();
      reject(err);
    };
    espeak.on('error', (e) => fail(new Error(`espeak-ng failed to start (apt-get install -y espeak-ng): ${e.message}`)));
    sox.on('error', (e) => fail(new Error(`sox failed to start (apt-get install -y sox): ${e.message}`)));
    espeak.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    sox.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    espeak.stdout.pipe(sox.stdin);
    // sox may exit early on bad input; the broken pipe is reported through its exit code instead.
    sox.stdin.on('error', () => {});
    espeak.stdin.on('error', () => {});
    sox.stdout.on('data', (d: Buffer) => out.push(d));
    espeak.on('close', (code) => {
      if (code !== 0) fail(new Error(`espeak-ng exited with ${code}: ${stderr}`));
    });
    sox.on('close', (code) => {
      if (failed) return;
      if (code !== 0) return fail(new Error(`sox exited with ${code}: ${stderr}`));
      const bytes = Buffer.concat(out);
      // Copy into a fresh, aligned buffer: a Buffer's byteOffset may be odd.
      const pcm = new Int16Array(bytes.length >> 1);
      new Uint8Array(pcm.buffer).set(bytes.subarray(0, pcm.length * 2));
      resolve(pcm);
    });
    espeak.stdin.end(text);
  });
}

/** `durationMs` of digital silence at `sampleRate`. */
export function silence(durationMs: number, sampleRate: number): Int16Array {
  return new Int16Array(Math.round((durationMs * sampleRate) / 1000));
}


