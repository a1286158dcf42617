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
import type { EngineEvent, EngineEventOf, EngineEventType } from '../../engine/events.ts';
import { DeepgramStt } from '../../engine/providers/deepgram-stt.ts';
import { OpenAiLlm } from '../../engine/providers/openai-llm.ts';
import { ElevenLabsTts } from '../../engine/providers/elevenlabs-tts.ts';
import { resolveModel } from '../../models/model-manager.ts';
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

export async function startVoiceHarness(
  opts: {
    call?: Partial<VoiceCallSettings>;
    backend?: 'wasm' | 'native';
    livekit?: { url: string; apiKey: string; apiSecret: string };
    /** Media engine options over the harness's (e.g. `allowFaultInjection`). */
    media?: Partial<Omit<MediaEngineOptions, 'models'>>;
  } = {},
): Promise<VoiceHarness> {
  const livekit = opts.livekit ?? { url: inject('livekitUrl'), apiKey: inject('livekitApiKey'), apiSecret: inject('livekitApiSecret') };
  const rooms = new RoomServiceClient(livekit.url.replace(/^ws/, 'http'), livekit.apiKey, livekit.apiSecret);
  const [vadPath, smartTurnPath] = await Promise.all([resolveModel('silero-vad-v6'), resolveModel('smart-turn-v3.2')]);
  const [deepgram, openai, elevenlabs] = await Promise.all([DeepgramFakeServer.start(), OpenAiFakeServer.start(), ElevenLabsFakeServer.start()]);
  const backend = opts.backend ?? 'wasm';
  const media = await MediaEngine.start({
    models: { vadPath, smartTurnPath },
    workers: 1,
    turnWorkers: 1,
    vadBackend: backend,
    smartTurnBackend: backend,
    warmUp: { vadRuns: 50, smartTurnRuns: 1 },
    ...opts.media,
  });
  const engine = new VoiceEngine({
    media,
    livekit,
    providers: {
      stt: new DeepgramStt({ apiKey: 'test-key', baseUrl: deepgram.url }),
      llm: new OpenAiLlm({ apiKey: 'test-key', baseUrl: openai.baseUrl, model: 'gpt-test' }),
      tts: new ElevenLabsTts({ apiKey: 'test-key', voiceId: 'voice-1', baseUrl: elevenlabs.baseUrl }),
    },
    maxCalls: 10,
    call: opts.call,
    transport: { callerLeftGraceMs: 1000 },
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

/** The call's events, of one type when given, whose data has every field of `match`. */
export function eventsOf<T extends EngineEventType>(events: EngineEvent[], callId: string, type: T, match?: Record<string, unknown>): EngineEventOf<T>[];
export function eventsOf(events: EngineEvent[], callId: string): EngineEvent[];
export function eventsOf(events: EngineEvent[], callId: string, type?: EngineEventType, match: Record<string, unknown> = {}): EngineEvent[] {
  return events.filter(
    (e) => e.callId === callId && (type === undefined || e.type === type) && Object.entries(match).every(([k, v]) => (e.data as unknown as Record<string, unknown>)[k] === v),
  );
}
