/**
 * The catalogue of error codes a client can see in a call's `error` events. Each has the stage it comes
 * from and what it means; `server/ERRORS.md` documents every entry and `server/errors.test.ts` fails
 * when one is missing there. An error whose code is not here reaches clients as `VE_ENGINE_INTERNAL`
 * (its message says what it was), so a new code cannot leak without being catalogued.
 */
import type { ErrorStage } from './events.ts';

export const ENGINE_ERROR_CATALOGUE = {
  VE_STT_DISCONNECTED: { stage: 'stt', meaning: 'The recogniser connection failed and could not be re-established within its reconnection budget.' },
  VE_STT_RECONNECTED: { stage: 'stt', meaning: 'The recogniser connection dropped and came back; unrecognised audio was replayed (`downMs` says how long it was down).' },
  VE_STT_UNAVAILABLE: { stage: 'stt', meaning: 'The recogniser is down; the engine keeps reconnecting with backoff and tells the caller it cannot hear them. The call ends with `stt_unavailable` after `STT_OUTAGE_MAX_MS`.' },
  VE_LLM_FAILED: { stage: 'llm', meaning: 'The language model answered with an error; the bot spoke its fallback reply.' },
  VE_LLM_TIMEOUT: { stage: 'llm', meaning: 'The language model did not start answering within its deadline; the bot spoke its fallback reply.' },
  VE_TTS_FAILED: { stage: 'tts', meaning: 'Speech synthesis failed; the reply was cut short and the bot went back to listening.' },
  VE_PROVIDER_ABORTED: { stage: 'llm', meaning: 'A provider request was aborted outside a barge-in (for example while the call closed).' },
  VE_SMART_TURN_FAILED: { stage: 'smart_turn', meaning: 'The Smart Turn model failed for one request; the silence rule decides that turn.' },
  VE_SMART_TURN_TIMEOUT: { stage: 'smart_turn', meaning: 'A Smart Turn request missed its deadline (SMART_TURN_DEADLINE_MS); the deadline fallback decides that pause. It reaches the call as a turn decided by rule `deadline_stt` or `deadline_silence`, not as an error event.' },
  VE_SMART_TURN_INPUT: { stage: 'smart_turn', meaning: 'The Smart Turn features had the wrong shape (a bug); the silence rule decides that turn.' },
  VE_INPUT_OVERFLOW: { stage: 'media', meaning: 'The caller\'s audio arrived faster than the media worker consumed it; `droppedSamples` were lost.' },
  VE_MEDIA_CRASHED: { stage: 'media', meaning: 'Two media workers died while processing this call\'s audio; the call ends with reason `media_crashed` instead of being re-homed to crash a third.' },
  VE_NO_MEDIA_WORKER: { stage: 'media', meaning: 'Every media worker is down for good (restarts capped); the call ends with reason `media_unavailable`.' },
  VE_LIVEKIT_RECONNECTED: { stage: 'transport', meaning: 'The bot\'s room connection dropped and was rebuilt (`downMs` of audio may be missing).' },
  VE_ENGINE_INTERNAL: { stage: 'media', meaning: 'An uncatalogued error (a bug); the message says what it was.' },
} as const satisfies Record<string, { stage: ErrorStage; meaning: string }>;

export type EngineErrorCode = keyof typeof ENGINE_ERROR_CATALOGUE;

export function isEngineErrorCode(code: unknown): code is EngineErrorCode {
  return typeof code === 'string' && Object.hasOwn(ENGINE_ERROR_CATALOGUE, code);
}

/** The catalogued code of an error, or `VE_ENGINE_INTERNAL`. */
export function engineErrorCode(error: unknown): EngineErrorCode {
  const code = (error as { code?: unknown } | null)?.code;
  return isEngineErrorCode(code) ? code : 'VE_ENGINE_INTERNAL';
}
