/**
 * Messages between the main thread (MediaPool) and a media worker, over the MessagePort handed to the
 * worker's long-running `serve` task. Audio never travels here: it moves through the calls' PcmRings.
 */
import type { BackendName } from '../inference/backend.ts';
import type { VadHysteresisOptions, VadHysteresisState } from '../stages/vad-hysteresis.ts';
import type { TurnWindowState } from '../stages/turn-window.ts';
import type { SileroResetState } from '../stages/silero-reset.ts';

/** Which audio Smart Turn scores at a stop (see `TurnWindow`; the VAD's start window comes from `vad`). */
export interface TurnWindowSettings {
  /** Audio before the turn's first speech start given to the model (Pipecat `pre_speech_ms`). */
  preSpeechMs: number;
  /** The model sees at most the last this-many ms of the turn (Pipecat `max_duration_secs`). */
  maxDurationMs: number;
}

export interface MediaWorkerSettings {
  workerId: number;
  vadModelPath: string;
  vadBackend: BackendName;
  /** Intra-op threads per inference session; one is right when there are as many workers as cores. */
  threads: number;
  vad: VadHysteresisOptions;
  /** VAD runs made on silence before the worker takes calls (onnxruntime-web is slow at first). */
  warmUpRuns: number;
  /** How much 16 kHz audio each call keeps for Smart Turn (at least `turnWindow.maxDurationMs`). */
  historyMs: number;
  turnWindow: TurnWindowSettings;
  /**
   * Shortest time between two VAD steps: the calls' frames arrive at different moments, and waiting this
   * long lets one step batch most of them (fewer, larger `session.run`s) for at most this much latency.
   */
  batchWindowMs: number;
  /**
   * Windows that are exact digital silence (every sample 0) get probability 0 without the model, and the
   * call's VAD state starts afresh after them. A caller who sends nothing (muted, or between utterances
   * with no DTX) reaches the engine as zeros once libwebrtc's concealment has faded out.
   */
  skipDigitalSilence: boolean;
  /**
   * Clear a call's Silero state after this much audio, at the first clearly non-speech window while the
   * VAD is quiet (Pipecat 1.14's rule, see `SileroReset`). 0 never clears it.
   */
  modelResetIntervalMs: number;
  /**
   * Pipecat's loudness gate (`VADParams.min_volume`): a window counts as speech only when the smoothed
   * BS.1770 loudness of the last 400 ms, mapped to 0-1, is at least this (see `VadVolume`). 0 turns it off.
   */
  minVolume: number;
  /** Lets tests crash a worker on purpose. */
  allowFaultInjection: boolean;
  /** Fault injection: fail while starting, before taking calls (only with `allowFaultInjection`). */
  injectStartFailure?: boolean;
}

/** What a call's media state looks like when it moves to another worker. */
export interface CallSnapshot {
  vad: { context: Float32Array; state: Float32Array };
  history: { latest: Float32Array; totalSamples: number };
  pending: Float32Array;
  hysteresis: VadHysteresisState;
  turnWindow: TurnWindowState;
  sileroReset: SileroResetState;
  /** The loudness gate's smoothed volume. */
  vadVolume: number;
}

export type ToWorker =
  | {
      type: 'attach';
      callId: string;
      inputRing: SharedArrayBuffer;
      inputSampleRate: number;
      /** The call's `TurnBoundary`: where the main thread's last completed turn ended. */
      turnBoundary: SharedArrayBuffer;
      /** A moving call's state; absent for a new call or one whose worker died. */
      snapshot?: CallSnapshot;
      /** 16 kHz stream offset of the next sample the ring will give (non-zero after a worker died). */
      startOffsetSamples?: number;
      /** Non-zero number the pool knows the call by in the worker's activity word (see worker-activity.ts). */
      tag: number;
      /** Fault injection: processing this call's audio throws, like poison audio would. */
      crashOnAudio?: boolean;
    }
  | { type: 'detach'; callId: string; requestId: number }
  | { type: 'crash' }
  /** Fault injection: from now on, processing this call's audio throws. */
  | { type: 'crash_on_audio'; callId: string }
  /** Fault injection: block the worker's thread this long (a worker slow to answer). */
  | { type: 'stall'; durationMs: number }
  | { type: 'stop' };

export interface VadWindowResult {
  callId: string;
  /** 16 kHz offset of the end of the window this probability belongs to. */
  endSamples: number;
  probability: number;
  /** Input samples the worker had read from the ring when this window became complete. */
  inputSamples: number;
}

export interface VadEventMessage {
  callId: string;
  type: 'speech_start' | 'speech_end';
  offsetSamples: number;
  /** End of the VAD window that confirmed the event (a stop is confirmed `stopMs` after the speech ended). */
  confirmedAtSamples: number;
  /** For `speech_end`: where the audio Smart Turn scores begins (it ends at `confirmedAtSamples`). */
  scoredFromSamples?: number;
  /** For `speech_end`: Smart Turn input features of the turn's audio ([80][800] float32). */
  features?: Float32Array;
  /** For `speech_end`: how long feature extraction took in the worker. */
  featureMs?: number;
}

export type FromWorker =
  | { type: 'ready'; workerId: number; warmUpMs: number }
  | { type: 'step'; windows: VadWindowResult[]; events: VadEventMessage[]; inferenceMs: number; batchSize: number; silentWindows: number }
  | { type: 'detached'; requestId: number; callId: string; snapshot: CallSnapshot | null }
  | { type: 'call_error'; callId: string; code: string; message: string };
