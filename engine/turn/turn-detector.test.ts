import { describe, expect, it } from 'vitest';
import { TurnDetector } from './turn-detector.ts';

const ms = (value: number) => (value * 16000) / 1000;

describe('TurnDetector', () => {
  it('completes a turn when Smart Turn says so', () => {
    const detector = new TurnDetector();
    expect(detector.onSpeechStart(ms(100)).events).toEqual([{ type: 'user_started_speaking', turnId: 1, offsetSamples: ms(100), resumed: false }]);
    const pause = detector.onSpeechEnd(ms(1500));
    expect(pause.events).toEqual([{ type: 'user_paused', turnId: 1, offsetSamples: ms(1500) }]);
    expect(pause.request).toEqual({ requestId: 1, turnId: 1, offsetSamples: ms(1500) });
    const result = detector.onSmartTurnResult(1, 0.93, ms(1600));
    expect(result.events.map((e) => e.type)).toEqual(['smart_turn_result', 'user_turn_complete']);
    expect(result.events[1]).toMatchObject({ rule: 'model', probability: 0.93, speechEndSamples: ms(1500), decidedAtSamples: ms(1600) });
    expect(detector.state).toBe('idle');
  });

  it('keeps an incomplete turn open, resumes it, and falls back to silence', () => {
    const detector = new TurnDetector({ silenceFallbackMs: 3000 });
    detector.onSpeechStart(0);
    const first = detector.onSpeechEnd(ms(1000)).request!;
    expect(detector.onSmartTurnResult(first.requestId, 0.2, ms(1100)).events).toEqual([
      { type: 'smart_turn_result', turnId: 1, requestId: first.requestId, probability: 0.2, complete: false },
    ]);
    expect(detector.onAudioProgress(ms(2000)).events).toEqual([]);
    const resumed = detector.onSpeechStart(ms(2500));
    expect(resumed.events).toEqual([{ type: 'user_started_speaking', turnId: 1, offsetSamples: ms(2500), resumed: true }]);
    const second = detector.onSpeechEnd(ms(3000)).request!;
    expect(detector.onSmartTurnResult(second.requestId, 0.1, ms(3100)).events[0]).toMatchObject({ complete: false });
    expect(detector.onAudioProgress(ms(5999)).events).toEqual([]);
    const done = detector.onAudioProgress(ms(6000)).events;
    expect(done).toEqual([{ type: 'user_turn_complete', turnId: 1, speechEndSamples: ms(3000), decidedAtSamples: ms(6000), probability: 0.1, rule: 'silence' }]);
    expect(detector.onSpeechStart(ms(7000)).events[0]).toMatchObject({ turnId: 2, resumed: false });
  });

  it('ignores a model answer that arrives after the caller resumed', () => {
    const detector = new TurnDetector();
    detector.onSpeechStart(0);
    const request = detector.onSpeechEnd(ms(800)).request!;
    detector.onSpeechStart(ms(900));
    expect(detector.onSmartTurnResult(request.requestId, 0.99, ms(950)).events).toEqual([]);
    expect(detector.state).toBe('speaking');
  });

  it('relies on the silence fallback when the model fails', () => {
    const detector = new TurnDetector({ silenceFallbackMs: 1000 });
    detector.onSpeechStart(0);
    const request = detector.onSpeechEnd(ms(500)).request!;
    expect(detector.onSmartTurnFailed(request.requestId).events).toEqual([]);
    expect(detector.onSmartTurnResult(request.requestId, 0.9, ms(600)).events).toEqual([]);
    expect(detector.onAudioProgress(ms(1500)).events[0]).toMatchObject({ rule: 'silence', probability: null });
  });

  it('does not pause or complete without speech', () => {
    const detector = new TurnDetector();
    expect(detector.onSpeechEnd(ms(100))).toEqual({ events: [] });
    expect(detector.onAudioProgress(ms(10_000))).toEqual({ events: [] });
  });

  describe('a request that misses its deadline', () => {
    it('is decided at once by the recogniser\'s end-of-speech signal about the caller\'s last words', () => {
      const detector = new TurnDetector();
      detector.onSpeechStart(ms(100));
      const request = detector.onSpeechEnd(ms(1500)).request!;
      // Deepgram's speech_final about words ending at 1.45 s came while the model was still busy.
      expect(detector.onRecognizerEndOfSpeech(ms(1450), ms(1600)).events).toEqual([]);
      expect(detector.onSmartTurnDeadline(request.requestId, ms(1750)).events).toEqual([
        { type: 'user_turn_complete', turnId: 1, speechEndSamples: ms(1500), decidedAtSamples: ms(1750), probability: null, rule: 'deadline_stt' },
      ]);
      // The model's late answer changes nothing.
      expect(detector.onSmartTurnResult(request.requestId, 0.02, ms(1800)).events).toEqual([]);
      expect(detector.state).toBe('idle');
    });

    it('waits for a recogniser signal that comes after the deadline', () => {
      const detector = new TurnDetector();
      detector.onSpeechStart(0);
      const request = detector.onSpeechEnd(ms(1000)).request!;
      expect(detector.onSmartTurnDeadline(request.requestId, ms(1250)).events).toEqual([]);
      expect(detector.onSmartTurnResult(request.requestId, 0.99, ms(1300)).events).toEqual([]);
      expect(detector.onRecognizerEndOfSpeech(ms(980), ms(1400)).events).toEqual([
        { type: 'user_turn_complete', turnId: 1, speechEndSamples: ms(1000), decidedAtSamples: ms(1400), probability: null, rule: 'deadline_stt' },
      ]);
    });

    it('falls back to the silence rule without a recogniser signal, and says so', () => {
      const detector = new TurnDetector({ silenceFallbackMs: 3000 });
      detector.onSpeechStart(0);
      const request = detector.onSpeechEnd(ms(1000)).request!;
      expect(detector.onSmartTurnDeadline(request.requestId, ms(1250)).events).toEqual([]);
      expect(detector.onAudioProgress(ms(3999)).events).toEqual([]);
      expect(detector.onAudioProgress(ms(4000)).events).toEqual([
        { type: 'user_turn_complete', turnId: 1, speechEndSamples: ms(1000), decidedAtSamples: ms(4000), probability: null, rule: 'deadline_silence' },
      ]);
    });

    it('does not take a signal about speech before the caller resumed', () => {
      const detector = new TurnDetector({ silenceFallbackMs: 3000 });
      detector.onSpeechStart(0);
      const first = detector.onSpeechEnd(ms(1000)).request!;
      detector.onSmartTurnResult(first.requestId, 0.1, ms(1100));
      detector.onSpeechStart(ms(1500));
      const second = detector.onSpeechEnd(ms(2500)).request!;
      // A late speech_final about the first stretch (words ending at 0.98 s) arrives now.
      expect(detector.onRecognizerEndOfSpeech(ms(980), ms(2600)).events).toEqual([]);
      expect(detector.onSmartTurnDeadline(second.requestId, ms(2750)).events).toEqual([]);
      expect(detector.state).toBe('paused');
      expect(detector.onRecognizerEndOfSpeech(ms(2450), ms(2800)).events[0]).toMatchObject({ rule: 'deadline_stt', turnId: 1 });
    });

    it('ignores a recogniser signal when the model answered in time, and a deadline of a stale request', () => {
      const detector = new TurnDetector({ silenceFallbackMs: 3000 });
      detector.onSpeechStart(0);
      const request = detector.onSpeechEnd(ms(1000)).request!;
      detector.onSmartTurnResult(request.requestId, 0.2, ms(1100));
      expect(detector.onSmartTurnDeadline(request.requestId, ms(1250)).events).toEqual([]);
      expect(detector.onRecognizerEndOfSpeech(ms(990), ms(1300)).events).toEqual([]);
      expect(detector.onAudioProgress(ms(4000)).events[0]).toMatchObject({ rule: 'silence', probability: 0.2 });
    });

    it('starts the next pause afresh: a resumed caller gets the model again', () => {
      const detector = new TurnDetector({ silenceFallbackMs: 3000 });
      detector.onSpeechStart(0);
      const first = detector.onSpeechEnd(ms(1000)).request!;
      detector.onSmartTurnDeadline(first.requestId, ms(1250));
      detector.onSpeechStart(ms(1500));
      const second = detector.onSpeechEnd(ms(2500)).request!;
      expect(detector.onSmartTurnResult(second.requestId, 0.9, ms(2600)).events[1]).toMatchObject({ rule: 'model', turnId: 1 });
    });
  });

  describe('skipResumedSpeechUnderMs', () => {
    it('does not score a short resumption after an "incomplete": the answer stands and the silence rule counts from the new stop', () => {
      const detector = new TurnDetector({ skipResumedSpeechUnderMs: 500, silenceFallbackMs: 3000 });
      detector.onSpeechStart(0);
      const first = detector.onSpeechEnd(ms(2000)).request!;
      detector.onSmartTurnResult(first.requestId, 0.2, ms(2100));
      detector.onSpeechStart(ms(2600));
      // 400 ms of resumed speech: no request.
      expect(detector.onSpeechEnd(ms(3000))).toEqual({ events: [{ type: 'user_paused', turnId: 1, offsetSamples: ms(3000) }] });
      expect(detector.onAudioProgress(ms(5999)).events).toEqual([]);
      expect(detector.onAudioProgress(ms(6000)).events).toEqual([
        { type: 'user_turn_complete', turnId: 1, speechEndSamples: ms(3000), decidedAtSamples: ms(6000), probability: 0.2, rule: 'silence' },
      ]);
    });

    it('scores a long enough resumption, a first stop, and a resumption after a missed deadline', () => {
      const detector = new TurnDetector({ skipResumedSpeechUnderMs: 500 });
      detector.onSpeechStart(0);
      // A turn's first stop is always scored, however short.
      const first = detector.onSpeechEnd(ms(300)).request!;
      detector.onSmartTurnResult(first.requestId, 0.2, ms(400));
      detector.onSpeechStart(ms(600));
      const second = detector.onSpeechEnd(ms(1100)).request;
      expect(second).toBeDefined();
      detector.onSmartTurnDeadline(second!.requestId, ms(1200));
      detector.onSpeechStart(ms(1300));
      // No model answer stands for this pause: score it.
      expect(detector.onSpeechEnd(ms(1500)).request).toBeDefined();
    });

    it('is off by default', () => {
      const detector = new TurnDetector();
      detector.onSpeechStart(0);
      detector.onSmartTurnResult(detector.onSpeechEnd(ms(1000)).request!.requestId, 0.1, ms(1100));
      detector.onSpeechStart(ms(1200));
      expect(detector.onSpeechEnd(ms(1240)).request).toBeDefined();
    });
  });
});
