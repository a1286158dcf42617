/**
 * The media path's events as the call's events. The VAD's start and stop and a completed turn also
 * drive the call (VoiceCall handles them); the others the call only reports: turn progress, Smart Turn
 * results, worker restarts and faults. A media path that failed for good asks for the call to end.
 */
import type { MediaEvent } from '../call-audio.ts';
import { engineErrorCode } from '../error-codes.ts';
import type { CallEvents } from './call-events.ts';

/** Reports every media event but the VAD's start and stop, which the call reports as it acts on them. */
export function reportMediaEvent(events: CallEvents, event: Exclude<MediaEvent, { type: 'speech_start' | 'speech_end' }>): void {
  switch (event.type) {
    case 'user_started_speaking':
    case 'user_paused':
      events.emit('turn', { event: event.type, turnId: event.turnId, offsetMs: event.offsetSamples / 16 });
      break;
    case 'smart_turn_result':
      events.emit('turn', { event: 'smart_turn_result', turnId: event.turnId, probability: event.probability, complete: event.complete });
      break;
    case 'user_turn_complete':
      events.emit('turn', {
        event: 'user_turn_complete',
        turnId: event.turnId,
        probability: event.probability,
        rule: event.rule,
        speechEndMs: event.speechEndSamples / 16,
        decidedAtMs: event.decidedAtSamples / 16,
      });
      break;
    case 'worker_restarted':
      events.emit('worker_restarted', { fromWorkerId: event.fromWorkerId, toWorkerId: event.toWorkerId, reason: event.reason });
      break;
    case 'smart_turn_error':
      events.emit('error', { stage: 'smart_turn', code: engineErrorCode(event), message: event.message, recovered: true });
      break;
    case 'input_overflow':
      events.emit('error', { stage: 'media', code: 'VE_INPUT_OVERFLOW', droppedSamples: event.droppedSamples, recovered: true });
      break;
    case 'media_failed':
      events.emit('error', { stage: 'media', code: engineErrorCode(event), message: event.message, recovered: false });
      events.emit('end_call_requested', { reason: event.reason });
      break;
    case 'vad_probability':
      break;
  }
}
