/**
 * Everything a voice-loop test needs, all real and all on loopback: the media engine with the real
 * models, the providers' official SDKs pointed at local wire-protocol servers, and a VoiceEngine that
 * joins rooms on the shared LiveKit server.
 */
import { inject } from 'vitest';
import { RoomServiceClient } from 'livekit-server-sdk';
import { MediaEngine, type MediaEngineOptions } from '../../engine/media-engine.ts';
import { VoiceEngine } from '../../engine/voice-engine.ts';
import type { VoiceCallSettings } from '../../engine/call/voice-call.ts';
import type { EngineEvent } from '../../engine/events.ts';
import { DeepgramStt } from '../../engine/providers/deepgram-stt.ts';
import { OpenAiLlm } from '../../engine/providers/openai-llm.ts';
import { ElevenLabsTts } from '../../engine/providers/elevenlabs-tts.ts';
import { loadConfig } from '../../server/config.ts';
import { engineOptions, resolveEngineModels } from '../../server/engine-options.ts';
import { DeepgramFakeServer } from '../../engine/providers/local/deepgram-server.ts';
import { OpenAiFakeServer } from '../../engine/providers/local/openai-server.ts';
import { ElevenLabsFakeServer } from '../../engine/providers/local/elevenlabs-server.ts';
import { TestCaller } from './caller.ts';

export interface VoiceHarness {
  livekit: { url: string; apiKey: string; apiSecret: string };
  rooms: RoomServiceClient;
  media: MediaEngine;
  engine: VoiceEngine;
  deepgram: DeepgramFakeServer;
  openai: OpenAiFakeServer;
  elevenlabs: ElevenLabsFakeServer;
  events: EngineEvent[];
  /** Creates a room, puts a caller in it and starts the bot. */
  placeCall(callId: string): Promise<TestCaller>;
  close(): Promise<void>;
}

/**
 * The engine as `npm start` builds it (server/engine-options.ts from the configuration's defaults) unless
 * a test overrides a setting in `settings` (environment-style, validated by `loadConfig`) or names a
 * `backend` for both models. `call` overrides voice-call settings the configuration does not have.
 */
export async function startVoiceHarness(
  opts: {
    call?: Partial<VoiceCallSettings>;
    backend?: 'wasm' | 'native';
    settings?: Record<string, string>;
    livekit?: { url: string; apiKey: string; apiSecret: string };
    /** Media engine options over the harness's (e.g. `allowFaultInjection`). */
    media?: Partial<Omit<MediaEngineOptions, 'models'>>;
    /** How long a caller whose connection dropped may take to come back (the harness's 1 s otherwise). */
    callerLeftGraceMs?: number;
  } = {},
): Promise<VoiceHarness> {
  const livekit = opts.livekit ?? { url: inject('livekitUrl'), apiKey: inject('livekitApiKey'), apiSecret: inject('livekitApiSecret') };
  const rooms = new RoomServiceClient(livekit.url.replace(/^ws/, 'http'), livekit.apiKey, livekit.apiSecret);
  const config = loadConfig({
    CI: '1',
    ...opts.settings,
    ...(opts.backend !== undefined ? { VAD_BACKEND: opts.backend, SMART_TURN_BACKEND: opts.backend } : {}),
  });
  const options = engineOptions(config, await resolveEngineModels(config));
  const [deepgram, openai, elevenlabs] = await Promise.all([DeepgramFakeServer.start(), OpenAiFakeServer.start(), ElevenLabsFakeServer.start()]);
  const media = await MediaEngine.start({ ...options.media, ...opts.media });
  const engine = new VoiceEngine({
    ...options.voice,
    media,
    livekit,
    providers: {
      stt: new DeepgramStt({ apiKey: 'test-key', baseUrl: deepgram.url }),
      llm: new OpenAiLlm({ apiKey: 'test-key', baseUrl: openai.baseUrl, model: 'gpt-test' }),
      tts: new ElevenLabsTts({ apiKey: 'test-key', voiceId: 'voice-1', baseUrl: elevenlabs.baseUrl }),
    },
    call: { ...options.voice.call, ...opts.call },
    // Not a setting: a test that hangs up should not wait the product's 10 s for the caller to come back.
    transport: { callerLeftGraceMs: opts.callerLeftGraceMs ?? 1000 },
  });
  const events: EngineEvent[] = [];
  engine.onEvent((e) => events.push(e));
  const callers: TestCaller[] = [];
  return {
    livekit,
    rooms,
    media,
    engine,
    deepgram,
    openai,
    elevenlabs,
    events,
    async placeCall(callId) {
      const roomName = `room-${callId}`;
      await rooms.createRoom({ name: roomName, emptyTimeout: 60 });
      const caller = await TestCaller.join({ ...livekit, roomName, identity: `caller-${callId}` });
      callers.push(caller);
      await engine.startBot({ callId, roomName, callerIdentity: caller.identity });
      return caller;
    },
    async close() {
      await engine.close();
      await Promise.all(callers.map((c) => c.leave()));
      await media.close();
      await Promise.all([deepgram.close(), openai.close(), elevenlabs.close()]);
    },
  };
}

export { eventsOf } from './events.ts';
