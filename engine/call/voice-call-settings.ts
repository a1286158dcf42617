/** What a VoiceCall is configured with, and its defaults. */
import type { InterruptionSettings } from './interruption-policy.ts';

export interface VoiceCallSettings {
  instructions: string;
  interruption: Partial<InterruptionSettings>;
  /** After a turn decision, how long to wait for the recogniser's final words. */
  sttFinalWaitMs: number;
  /** First-token deadline of the LLM. */
  llmTimeoutMs: number;
  /** Spoken when the LLM fails or times out. */
  fallbackReply: string;
  transferReply: string;
  goodbyeReply: string;
  /**
   * How long the recogniser may stay unreachable (reconnecting with backoff meanwhile) before the call
   * ends with reason `stt_unavailable`: a call that cannot hear must not go on silently.
   */
  sttOutageMaxMs: number;
  /** Said, once per outage, when the caller ends a turn while the recogniser is unreachable. */
  sttOutageNotice: string;
}

export const DEFAULT_VOICE_CALL_SETTINGS: VoiceCallSettings = {
  instructions:
    'You are the voice assistant of a dispatch company. Drivers call you about loads, delays and problems on the road. Answer in one or two short spoken sentences. Use transfer_to_human when the driver asks for a person or the problem needs one, and end_call when the driver is done.',
  interruption: {},
  sttFinalWaitMs: 1500,
  llmTimeoutMs: 5000,
  fallbackReply: "Sorry, I'm having trouble right now. Could you say that again?",
  transferReply: 'Let me connect you with a colleague.',
  goodbyeReply: 'Goodbye, drive safely.',
  sttOutageMaxMs: 60_000,
  sttOutageNotice: "Sorry, I can't hear you well right now, one moment.",
};
