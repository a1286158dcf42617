/**
 * The load figure an engine process reports to LiveKit's agent dispatch. LiveKit picks among the
 * workers that report `available`, weighted by `1 - load`; a worker that reports `full` gets no job.
 * The engine's figure is measured from what limits it (engine/load/engine-load.ts, through
 * `VoiceEngine.loadSource`); the call count below is for engines that admit by count only. The
 * worker only needs this contract.
 */
import type { EngineCapacity } from '../call-engine.ts';

export interface LoadFigure {
  /** Fraction of the process's capacity in use, 0..1; 1 means one more call would miss the latency target. */
  load: number;
  /**
   * The load one more call adds, in (0, 1]. Calls the worker has accepted but not yet hosted are not
   * in `load` yet; the worker counts each of them as this much, so two requests that arrive together
   * cannot both take the last slot (the agents#4884 race).
   */
  loadPerCall: number;
}

/**
 * Answers synchronously from figures already measured. An `await` between reading the load and
 * reserving the slot is exactly what lets two availability requests take the same slot.
 */
export type LoadSource = () => LoadFigure;

/** Load as the share of `maxCalls` in use: what the engine's admission does today. */
export function callCountLoad(capacity: () => EngineCapacity): LoadSource {
  return () => {
    const { activeCalls, maxCalls, acceptingCalls } = capacity();
    const loadPerCall = 1 / Math.max(1, maxCalls);
    return { load: acceptingCalls ? Math.min(1, activeCalls * loadPerCall) : 1, loadPerCall };
  };
}
