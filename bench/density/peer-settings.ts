/**
 * The settings a peer process runs with: the engine's defaults, copied rather than imported, because
 * importing `media-engine.ts` would load Piscina and the pool code into every peer process and charge
 * the peers memory they would not really use. `peer-settings.test.ts` keeps the copy honest.
 */
import type { VadHysteresisOptions } from '../../engine/stages/vad-hysteresis.ts';
import type { TurnWindowSettings } from '../../engine/pool/protocol.ts';

export const PEER_SETTINGS: {
  vad: VadHysteresisOptions;
  vadMinVolume: number;
  vadModelResetIntervalMs: number;
  historyMs: number;
  turnWindow: TurnWindowSettings;
  vadWarmUpRuns: number;
  smartTurnWarmUpRuns: number;
} = {
  vad: { confidence: 0.7, exitConfidence: 0.35, startMs: 200, stopMs: 200 },
  vadMinVolume: 0.6,
  vadModelResetIntervalMs: 2000,
  historyMs: 8000,
  turnWindow: { preSpeechMs: 500, maxDurationMs: 8000 },
  vadWarmUpRuns: 200,
  smartTurnWarmUpRuns: 3,
};
