import { describe, expect, it } from 'vitest';
import { DEFAULT_MEDIA_OPTIONS } from '../engine/media-engine.ts';
import { DEFAULT_INTERRUPTION_SETTINGS } from '../engine/call/interruption-policy.ts';
import { DEFAULT_VOICE_CALL_SETTINGS } from '../engine/call/voice-call.ts';
import { DEFAULT_TURN_SETTINGS } from '../engine/turn/turn-detector.ts';
import { DEFAULT_TURN_DECISION_TARGET_MS } from '../engine/load/engine-load.ts';
import { SETTINGS, loadConfig } from './config.ts';
import { engineOptions } from './engine-options.ts';

const MODELS = { vadPath: '/models/vad.onnx', smartTurnPath: '/models/turn.onnx' };
const BASE = { CI: '1' };

/**
 * For every setting of the engine's sections, a valid value other than its default. A setting added to
 * these sections without an entry here (and without a line in `engineOptions`) fails the test below.
 */
const CHANGED: Record<string, string> = {
  ENGINE_WORKERS: '3',
  ENGINE_TURN_WORKERS: '2',
  ENGINE_MAX_CALLS: '7',
  ENGINE_TURN_DECISION_TARGET_MS: '250',
  ENGINE_LOAD_ADMISSION: 'false',
  VAD_BACKEND: 'wasm',
  SMART_TURN_BACKEND: 'wasm',
  VAD_START_THRESHOLD: '0.8',
  VAD_STOP_THRESHOLD: '0.3',
  VAD_START_MS: '150',
  VAD_STOP_MS: '250',
  SMART_TURN_SILENCE_FALLBACK_MS: '2500',
  SMART_TURN_DEADLINE_MS: '400',
  SMART_TURN_SKIP_RESUMED_SPEECH_UNDER_MS: '300',
  ENGINE_VAD_BATCH_WINDOW_MS: '5',
  ENGINE_VAD_SKIP_DIGITAL_SILENCE: 'false',
  VAD_MIN_VOLUME: '0.4',
  VAD_MODEL_RESET_MS: '3000',
  SMART_TURN_PRE_SPEECH_MS: '300',
  SMART_TURN_MAX_DURATION_MS: '6000',
  STT_OUTAGE_MAX_MS: '30000',
  BARGE_IN_MIN_SPEECH_MS: '400',
  BARGE_IN_MIN_WORDS: '2',
  BARGE_IN_RESUME_MS: '1500',
};

/** Engine settings that do not become options, and where they go instead. */
const ELSEWHERE: Record<string, string> = {
  SMART_TURN_MODEL_PATH: 'resolveEngineModels: which file the models option names',
  ALLOW_MODEL_HUB: 'resolveEngineModels: where a missing model may come from',
};

/** Sections whose settings the engine does not read; a new section must be placed here or above. */
const NOT_ENGINE_SECTIONS = ['HTTP', 'Auth', 'Roles', 'LiveKit', 'Storage', 'Providers'];
const ENGINE_SECTIONS = ['Engine', 'Barge-in'];

describe('engineOptions', () => {
  it('changes with every engine setting, so none is silently ignored', () => {
    for (const section of new Set(SETTINGS.map((s) => s.section))) {
      expect([...ENGINE_SECTIONS, ...NOT_ENGINE_SECTIONS], `section ${section} is neither engine nor not-engine`).toContain(section);
    }
    const baseline = engineOptions(loadConfig(BASE), MODELS);
    for (const setting of SETTINGS.filter((s) => ENGINE_SECTIONS.includes(s.section))) {
      if (setting.name in ELSEWHERE) continue;
      const value = CHANGED[setting.name];
      expect(value, `${setting.name}: map it in engineOptions and give a changed value here`).toBeDefined();
      expect(value, setting.name).not.toBe(setting.default);
      const changed = engineOptions(loadConfig({ ...BASE, [setting.name]: value }), MODELS);
      expect(changed, `${setting.name}=${value} did not change the engine options`).not.toEqual(baseline);
    }
  });

  it('maps each setting to the option that uses it', () => {
    const options = engineOptions(loadConfig({ ...BASE, ...CHANGED }), MODELS);
    expect(options.media).toEqual({
      models: MODELS,
      workers: 3,
      turnWorkers: 2,
      vadBackend: 'wasm',
      smartTurnBackend: 'wasm',
      vad: { confidence: 0.8, exitConfidence: 0.3, startMs: 150, stopMs: 250 },
      turn: { silenceFallbackMs: 2500, skipResumedSpeechUnderMs: 300 },
      smartTurn: { maxBatch: 8, deadlineMs: 400 },
      turnWindow: { preSpeechMs: 300, maxDurationMs: 6000 },
      vadBatchWindowMs: 5,
      vadSkipDigitalSilence: false,
      vadMinVolume: 0.4,
      vadModelResetIntervalMs: 3000,
    });
    expect(options.voice).toEqual({
      maxCalls: 7,
      load: { turnDecisionTargetMs: 250, admission: false },
      call: { interruption: { minSpeechMs: 400, minWords: 2, falseInterruptionTimeoutMs: 1500 }, sttOutageMaxMs: 30000 },
    });
  });

  it('gives, from the default configuration, what the engine does by default', () => {
    // An engine built without the configuration (a unit test, a tool) then behaves as the product does.
    const { media, voice } = engineOptions(loadConfig(BASE), MODELS);
    const { models: _models, turn, ...configured } = media;
    expect(DEFAULT_MEDIA_OPTIONS).toMatchObject(configured);
    expect(DEFAULT_VOICE_CALL_SETTINGS.sttOutageMaxMs).toBe(voice.call.sttOutageMaxMs);
    expect(DEFAULT_TURN_SETTINGS).toMatchObject(turn);
    expect(DEFAULT_INTERRUPTION_SETTINGS).toMatchObject(voice.call.interruption!);
    expect(voice.load).toEqual({ turnDecisionTargetMs: DEFAULT_TURN_DECISION_TARGET_MS, admission: true });
    expect(media.vadBackend).toBe('native');
    expect(media.vad.exitConfidence).toBe(0.35);
  });
});
