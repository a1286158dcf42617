/**
 * Chooses, per provider, the real cloud service (its key is configured) or the offline stand-in (no key):
 * a local server on 127.0.0.1 speaking the vendor's protocol, reached through the same official SDK.
 * Mixing is allowed: a Deepgram key alone gives real recognition with stand-in LLM and TTS.
 */
import { DeepgramStt } from '../engine/providers/deepgram-stt.ts';
import { ElevenLabsTts } from '../engine/providers/elevenlabs-tts.ts';
import { OpenAiLlm } from '../engine/providers/openai-llm.ts';
import type { LanguageModel } from '../engine/providers/llm.ts';
import type { SpeechToText } from '../engine/providers/stt.ts';
import type { TextToSpeech } from '../engine/providers/tts.ts';
import { startStandIns } from '../engine/providers/local/stand-ins.ts';
import type { Config } from './config.ts';

export type ProviderKind = 'real' | 'stand-in';

/** What runs for one provider role, for the start-up banner, `/v1/engine` and the page. */
export interface ProviderInfo {
  kind: ProviderKind;
  label: string;
  /** Where the SDK sends requests: the vendor's URL, or the stand-in's loopback address. */
  url: string;
}

export interface Providers {
  stt: SpeechToText;
  llm: LanguageModel;
  tts: TextToSpeech;
  info: { stt: ProviderInfo; llm: ProviderInfo; tts: ProviderInfo };
  /** True when any role runs on a stand-in. */
  anyStandIn: boolean;
  /** Stops the stand-in servers. Idempotent. */
  close(): Promise<void>;
}

export async function startProviders(config: Config['providers']): Promise<Providers> {
  const { deepgram, openai, elevenlabs } = config;
  const roles = { stt: deepgram.apiKey === undefined, llm: openai.apiKey === undefined, tts: elevenlabs.apiKey === undefined };
  const standIns = roles.stt || roles.llm || roles.tts ? await startStandIns(roles) : undefined;

  let stt: SpeechToText;
  let sttInfo: ProviderInfo;
  if (deepgram.apiKey !== undefined) {
    stt = new DeepgramStt({ apiKey: deepgram.apiKey, baseUrl: deepgram.url });
    sttInfo = { kind: 'real', label: stt.label, url: deepgram.url };
  } else {
    stt = standIns!.stt!.provider;
    sttInfo = { kind: 'stand-in', label: stt.label, url: standIns!.stt!.url };
  }

  let llm: LanguageModel;
  let llmInfo: ProviderInfo;
  if (openai.apiKey !== undefined) {
    llm = new OpenAiLlm({ apiKey: openai.apiKey, baseUrl: openai.baseUrl, model: openai.model });
    llmInfo = { kind: 'real', label: llm.label, url: openai.baseUrl ?? 'https://api.openai.com/v1' };
  } else {
    llm = standIns!.llm!.provider;
    llmInfo = { kind: 'stand-in', label: llm.label, url: standIns!.llm!.url };
  }

  let tts: TextToSpeech;
  let ttsInfo: ProviderInfo;
  if (elevenlabs.apiKey !== undefined) {
    tts = new ElevenLabsTts({ apiKey: elevenlabs.apiKey, voiceId: elevenlabs.voiceId, baseUrl: elevenlabs.baseUrl });
    ttsInfo = { kind: 'real', label: tts.label, url: elevenlabs.baseUrl ?? 'https://api.elevenlabs.io' };
  } else {
    tts = standIns!.tts!.provider;
    ttsInfo = { kind: 'stand-in', label: tts.label, url: standIns!.tts!.url };
  }

  return {
    stt,
    llm,
    tts,
    info: { stt: sttInfo, llm: llmInfo, tts: ttsInfo },
    anyStandIn: standIns !== undefined,
    close: async () => standIns?.close(),
  };
}
