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
});
