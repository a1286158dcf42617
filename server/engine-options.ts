/**
 * The one mapping from the configuration to the engine's options. `npm start` (main.ts), the density
 * benchmark, the response-latency benchmark and the voice-test harness all build their engine from it,
 * so every figure and test runs what the product runs; one that needs another value overrides a field
 * of the result (or a setting before `loadConfig`) and says why where it does.
 */
import { DEFAULT_MEDIA_OPTIONS, type MediaEngineOptions } from '../engine/media-engine.ts';
import type { VoiceEngineOptions } from '../engine/voice-engine.ts';
import type { VoiceCallSettings } from '../engine/call/voice-call.ts';
import { resolveModel } from '../models/model-manager.ts';
import type { Config } from './config.ts';

/** The media-engine options that the configuration decides; the rest keep `DEFAULT_MEDIA_OPTIONS`. */
export type ConfiguredMediaOptions = Pick<
  MediaEngineOptions,
  | 'models'
  | 'workers'
  | 'turnWorkers'
  | 'vadBackend'
  | 'smartTurnBackend'
  | 'vad'
  | 'turn'
  | 'turnWindow'
  | 'smartTurn'
  | 'vadBatchWindowMs'
  | 'vadSkipDigitalSilence'
  | 'vadMinVolume'
  | 'vadModelResetIntervalMs'
>;

/** The voice-engine options that the configuration decides (media, LiveKit and providers are objects the caller owns). */
export type ConfiguredVoiceOptions = Pick<VoiceEngineOptions, 'maxCalls' | 'load'> & { call: Partial<VoiceCallSettings> };

export interface EngineOptions {
  media: ConfiguredMediaOptions;
  voice: ConfiguredVoiceOptions;
}

/** Engine options for `config`, with the model files already resolved (see models/model-manager.ts). */
export function engineOptions(config: Config, models: { vadPath: string; smartTurnPath: string }): EngineOptions {
  const { engine, bargeIn } = config;
  return {
    media: {
      models: { vadPath: models.vadPath, smartTurnPath: models.smartTurnPath },
      workers: engine.workers,
      turnWorkers: engine.turnWorkers,
      vadBackend: engine.vadBackend,
      smartTurnBackend: engine.smartTurnBackend,
      vad: {
        confidence: engine.vad.startThreshold,
        exitConfidence: engine.vad.stopThreshold,
        startMs: engine.vad.startMs,
        stopMs: engine.vad.stopMs,
      },
      turn: { silenceFallbackMs: engine.smartTurn.silenceFallbackMs, skipResumedSpeechUnderMs: engine.smartTurn.skipResumedSpeechUnderMs },
      smartTurn: { ...DEFAULT_MEDIA_OPTIONS.smartTurn, deadlineMs: engine.smartTurn.deadlineMs },
      turnWindow: { preSpeechMs: engine.smartTurn.preSpeechMs, maxDurationMs: engine.smartTurn.maxDurationMs },
      vadBatchWindowMs: engine.vadBatchWindowMs,
      vadSkipDigitalSilence: engine.vadSkipDigitalSilence,
      vadMinVolume: engine.vad.minVolume,
      vadModelResetIntervalMs: engine.vad.modelResetMs,
    },
    voice: {
      maxCalls: engine.maxCalls,
      load: { turnDecisionTargetMs: engine.turnDecisionTargetMs, admission: engine.loadAdmission },
      call: {
        interruption: { minSpeechMs: bargeIn.minSpeechMs, minWords: bargeIn.minWords, falseInterruptionTimeoutMs: bargeIn.resumeMs },
        sttOutageMaxMs: engine.sttOutageMaxMs,
      },
    },
  };
}

/** The model files `config` asks for (SMART_TURN_MODEL_PATH, ALLOW_MODEL_HUB), checksum-verified. */
export async function resolveEngineModels(config: Config, log?: (line: string) => void): Promise<{ vadPath: string; smartTurnPath: string }> {
  const [vadPath, smartTurnPath] = await Promise.all([
    resolveModel('silero-vad-v6', { log }),
    resolveModel('smart-turn-v3.2', { modelPath: config.engine.smartTurn.modelPath, allowHub: config.engine.allowModelHub, log }),
  ]);
  return { vadPath, smartTurnPath };
}
