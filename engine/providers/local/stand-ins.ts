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

class LabelledStt implements SpeechToText {
  readonly label: string;
  #inner: SpeechToText;

  constructor(inner: SpeechToText, label: string) {
    this.#inner = inner;
    this.label = label;
  }

  stream(opts: SttStreamOptions): SttStream {
    return this.#inner.stream(opts);
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
    standIns.stt = { provider: new LabelledStt(inner, `${STAND_IN_TAG} stt (deepgram protocol)`), url: urls.stt };
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
