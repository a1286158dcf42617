/**
 * Offline stand-ins for the three cloud providers, so that a machine without keys still runs the whole
 * voice loop audibly. Each one is a local server on 127.0.0.1 speaking the vendor's wire protocol, and
 * the product talks to it through the same official SDK client it uses in production: only the base
 * URL differs. They do not pretend to understand speech: the recogniser reports which utterance it
 * heard and how long it was, the language model acknowledges it, and the synthesiser speaks with
 * espeak-ng. Every label says "offline stand-in" so that logs, the API and the page cannot be mistaken
 * for a real deployment.
 */
import { DeepgramStt } from '../deepgram-stt.ts';
import { ElevenLabsTts } from '../elevenlabs-tts.ts';
import { OpenAiLlm } from '../openai-llm.ts';
import type { LanguageModel, LlmRequest, LlmChunk } from '../llm.ts';
import type { SpeechToText, SttStream, SttStreamOptions } from '../stt.ts';
import type { TextToSpeech, TtsAudio } from '../tts.ts';
import { DeepgramFakeServer } from './deepgram-server.ts';
import { ElevenLabsFakeServer } from './elevenlabs-server.ts';
import { OpenAiFakeServer, type Responder, type WireMessage } from './openai-server.ts';

/** Marks every text and label the stand-ins produce. */
export const STAND_IN_TAG = '[offline stand-in]';

/** The placeholder transcript of the n-th utterance of a call, e.g. `[offline stand-in] utterance 3 (1.4 s)`. */
export function standInTranscript(index: number, durationMs: number): string {
  return `${STAND_IN_TAG} utterance ${index} (${(durationMs / 1000).toFixed(1)} s)`;
}

const UTTERANCE_PATTERN = /utterance (\d+) \(([\d.]+) s\)/;

function textOf(content: WireMessage['content']): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => p.text ?? '').join('');
  return '';
}

/**
 * A short spoken acknowledgement of the caller's last utterance. Short on purpose: it is what every
 * simulated caller hears, and the density being measured is the engine's, not espeak-ng's.
 */
export const standInResponder: Responder = ({ messages }) => {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const said = textOf(lastUser?.content);
  const match = UTTERANCE_PATTERN.exec(said);
  if (match === null) return { text: 'Offline stand-in. I heard you.' };
  // Rounded to half seconds so that replies repeat and the synthesiser's cache absorbs them.
  const seconds = Math.max(0.5, Math.round(Number(match[2]) * 2) / 2);
  return { text: `Offline stand-in. You spoke for ${seconds} seconds.` };
};

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

export interface StandIn<P> {
  provider: P;
  /** Where its server listens (loopback). */
  url: string;
  close(): Promise<void>;
}

/** Deepgram's live protocol; transcripts are {@link standInTranscript} placeholders. */
export async function startStandInStt(): Promise<StandIn<SpeechToText>> {
  const server = await DeepgramFakeServer.start({ apiKey: STAND_IN_KEY, transcribe: ({ index, durationMs }) => standInTranscript(index, durationMs) });
  const inner = new DeepgramStt({ apiKey: STAND_IN_KEY, baseUrl: server.url, model: 'stand-in' });
  return { provider: new LabelledStt(inner, `${STAND_IN_TAG} stt (deepgram protocol)`), url: server.url, close: () => server.close() };
}

/** OpenAI Chat Completions; replies with {@link standInResponder}. */
export async function startStandInLlm(): Promise<StandIn<LanguageModel>> {
  const server = await OpenAiFakeServer.start({ apiKey: STAND_IN_KEY, responder: standInResponder });
  const inner = new OpenAiLlm({ apiKey: STAND_IN_KEY, baseUrl: server.baseUrl, model: 'stand-in' });
  return { provider: new LabelledLlm(inner, `${STAND_IN_TAG} llm (openai protocol)`), url: server.baseUrl, close: () => server.close() };
}

/** ElevenLabs streaming PCM; real espeak-ng speech of the text. */
export async function startStandInTts(): Promise<StandIn<TextToSpeech>> {
  const server = await ElevenLabsFakeServer.start({ apiKey: STAND_IN_KEY });
  const inner = new ElevenLabsTts({ apiKey: STAND_IN_KEY, voiceId: 'espeak-ng', baseUrl: server.baseUrl });
  return { provider: new LabelledTts(inner, `${STAND_IN_TAG} tts (elevenlabs protocol, espeak-ng)`), url: server.baseUrl, close: () => server.close() };
}
