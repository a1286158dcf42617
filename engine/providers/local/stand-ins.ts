/**
 * Offline stand-ins for the three cloud providers, so that a machine without keys still runs the whole
 * voice loop audibly. Each one is a local server on 127.0.0.1 speaking the vendor's wire protocol, and
 * the product talks to it through the same official SDK client it uses in production: only the base
 * URL differs. They do not pretend to understand speech: the recogniser reports which utterance it
 * heard and how long it was, the language model acknowledges it, and the synthesiser speaks with
 * espeak-ng. The servers run on their own thread, as the real services run elsewhere. Every label
 * says "offline stand-in" so that logs, the API and the page cannot be mistaken for a real deployment.
 */
import { Worker } from 'node:worker_threads';
import { DeepgramStt } from '../deepgram-stt.ts';
import { ElevenLabsTts } from '../elevenlabs-tts.ts';
import { OpenAiLlm } from '../openai-llm.ts';
import type { LanguageModel, LlmRequest, LlmChunk } from '../llm.ts';
import type { SpeechToText, SttStream, SttStreamOptions } from '../stt.ts';
import type { TextToSpeech, TtsAudio } from '../tts.ts';
import { VoiceError } from '../../errors.ts';
import { STAND_IN_TAG, type StandInRoles, type StandInWorkerMessage } from './stand-in-replies.ts';

export { STAND_IN_TAG, standInResponder, standInTranscript } from './stand-in-replies.ts';

/** Audio the stand-in recogniser gets per WebSocket message. */
export const STAND_IN_STT_BATCH_MS = 100;
/** The stand-in only measures energy: 16 kHz is plenty. */
const STAND_IN_STT_SAMPLE_RATE = 16_000;

/**
 * The stand-in recogniser's client side: caller audio is decimated to 16 kHz and sent in 100 ms
 * messages. One message per 10 ms frame made the WebSocket writes alone 18 % of the engine's main
 * thread at 10 calls; a placeholder transcript does not need that.
 */
class StandInStt implements SpeechToText {
  readonly label: string;
  #inner: SpeechToText;

  constructor(inner: SpeechToText, label: string) {
    this.#inner = inner;
    this.label = label;
  }

  stream(opts: SttStreamOptions): SttStream {
    const factor = opts.sampleRate % STAND_IN_STT_SAMPLE_RATE === 0 ? opts.sampleRate / STAND_IN_STT_SAMPLE_RATE : 1;
    const inner = this.#inner.stream({ ...opts, sampleRate: opts.sampleRate / factor });
    const batchSamples = Math.round((STAND_IN_STT_BATCH_MS * opts.sampleRate) / factor / 1000);
    let batch = new Int16Array(batchSamples);
    let filled = 0;
    // Input samples carried over when a frame's length is not a multiple of the factor.
    let carry: number[] = [];
    const flush = (): void => {
      if (filled === 0) return;
      inner.pushAudio(batch.subarray(0, filled));
      batch = new Int16Array(batchSamples);
      filled = 0;
    };
    return {
      pushAudio(pcm: Int16Array): void {
        let i = 0;
        if (carry.length > 0) {
          while (carry.length < factor && i < pcm.length) carry.push(pcm[i++]);
          if (carry.length < factor) return;
          batch[filled++] = carry.reduce((a, b) => a + b, 0) / factor;
          carry = [];
          if (filled === batchSamples) flush();
        }
        // Averaging `factor` samples is a crude low-pass; enough for an energy detector.
        for (; i + factor <= pcm.length; i += factor) {
          let sum = 0;
          for (let k = 0; k < factor; k++) sum += pcm[i + k];
          batch[filled++] = sum / factor;
          if (filled === batchSamples) flush();
        }
        for (; i < pcm.length; i++) carry.push(pcm[i]);
      },
      finalize(): void {
        flush();
        inner.finalize();
      },
      close(): Promise<void> {
        flush();
        return inner.close();
      },
    };
  }
}

class LabelledLlm implements LanguageModel {
  readonly label: string;
  #inner: LanguageModel;

  constructor(inner: LanguageModel, label: string) {
    this.#inner = inner;
    this.label = label;
  }

  complete(req: LlmRequest): AsyncIterable<LlmChunk> {
    return this.#inner.complete(req);
  }
}

class LabelledTts implements TextToSpeech {
  readonly label: string;
  readonly sampleRate: number;
  #inner: TextToSpeech;

  constructor(inner: TextToSpeech, label: string) {
    this.#inner = inner;
    this.label = label;
    this.sampleRate = inner.sampleRate;
  }

  synthesize(text: string, opts: { signal: AbortSignal }): AsyncIterable<TtsAudio> {
    return this.#inner.synthesize(text, opts);
  }
}

/** The key the SDK clients send; the stand-ins accept only it, as the real services check theirs. */
const STAND_IN_KEY = 'offline-stand-in';

export interface StandIns {
  stt?: { provider: SpeechToText; url: string };
  llm?: { provider: LanguageModel; url: string };
  tts?: { provider: TextToSpeech; url: string };
  /** Stops the servers and their thread. Idempotent. */
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 3000;

export class StandInStartError extends VoiceError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('VE_STAND_IN_START_FAILED', message, { status: 500, cause: options.cause });
    this.name = 'StandInStartError';
  }
}

/**
 * Starts the requested stand-in servers on a worker thread (see stand-in-worker.ts) and returns the
 * official SDK clients pointed at them, labelled as offline stand-ins.
 */
export async function startStandIns(roles: StandInRoles): Promise<StandIns> {
  const worker = new Worker(new URL('./stand-in-worker.ts', import.meta.url), { workerData: { roles, apiKey: STAND_IN_KEY } });
  let urls: { stt?: string; llm?: string; tts?: string };
  try {
    urls = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new StandInStartError(`the stand-in servers did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      worker.once('error', (error) => {
        clearTimeout(timer);
        reject(new StandInStartError(`the stand-in servers failed to start: ${error.message}`, { cause: error }));
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new StandInStartError(`the stand-in thread exited with ${code} during start-up`));
      });
      worker.once('message', (message: StandInWorkerMessage) => {
        clearTimeout(timer);
        if (message.type === 'ready') resolve(message.urls);
      });
    });
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  // Never keeps the process alive on its own: close() is the way to stop it.
  worker.unref();
  worker.on('error', () => {});

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => {
        worker.once('message', () => resolve());
        worker.once('exit', () => resolve());
      });
      worker.postMessage({ type: 'close' });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, CLOSE_TIMEOUT_MS)))]);
      clearTimeout(timer);
      await worker.terminate();
    })());

  const standIns: StandIns = { close };
  if (urls.stt !== undefined) {
    const inner = new DeepgramStt({ apiKey: STAND_IN_KEY, baseUrl: urls.stt, model: 'stand-in' });
    standIns.stt = { provider: new StandInStt(inner, `${STAND_IN_TAG} stt (deepgram protocol)`), url: urls.stt };
  }
  if (urls.llm !== undefined) {
    const inner = new OpenAiLlm({ apiKey: STAND_IN_KEY, baseUrl: urls.llm, model: 'stand-in' });
    standIns.llm = { provider: new LabelledLlm(inner, `${STAND_IN_TAG} llm (openai protocol)`), url: urls.llm };
  }
  if (urls.tts !== undefined) {
    const inner = new ElevenLabsTts({ apiKey: STAND_IN_KEY, voiceId: 'espeak-ng', baseUrl: urls.tts });
    standIns.tts = { provider: new LabelledTts(inner, `${STAND_IN_TAG} tts (elevenlabs protocol, espeak-ng)`), url: urls.tts };
  }
  return standIns;
}
