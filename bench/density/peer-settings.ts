/**
 * The settings a peer process runs with: the engine's defaults, copied rather than imported, because
 * importing `media-engine.ts` would load Piscina and the pool code into every peer process and charge
 * the peers memory they would not really use. `peer-settings.test.ts` keeps the copy honest.
 */
import type { VadHysteresisOptions } from '../../engine/stages/vad-hysteresis.ts';

export const PEER_SETTINGS: {
  vad: VadHysteresisOptions;
  historyMs: number;
  vadWarmUpRuns: number;
  smartTurnWarmUpRuns: number;
} = {
  vad: { confidence: 0.7, exitConfidence: 0.35, startMs: 200, stopMs: 200 },
  historyMs: 8000,
  vadWarmUpRuns: 200,
  smartTurnWarmUpRuns: 3,
};
