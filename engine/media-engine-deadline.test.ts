/**
 * The Smart Turn deadline on the real media core: with the model slowed far past the deadline (as on a
 * full box), every pause is still decided on time by the fallback. A call whose recogniser said the
 * caller stopped is completed at the deadline by that signal (`deadline_stt`); a call without one waits
 * for the silence rule (`deadline_silence`). Both are counted by rule and by how the request missed.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MediaEngine, type MediaEngineOptions } from './media-engine.ts';
import type { CallAudio, MediaEvent } from './call-audio.ts';
import { resolveModel } from '../models/model-manager.ts';
import { synthesizeConversation } from '../test/support/speech.ts';

const SAMPLE_RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms
const DEADLINE_MS = 250;
const SILENCE_FALLBACK_MS = 1500;

let models: MediaEngineOptions['models'];
let engine: MediaEngine | undefined;

beforeAll(async () => {
  const [vadPath, smartTurnPath] = await Promise.all([resolveModel('silero-vad-v6'), resolveModel('smart-turn-v3.2')]);
  models = { vadPath, smartTurnPath };
});

afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Each event with the `performance.now()` it reached the listener at. */
function collect(call: CallAudio): Array<{ event: MediaEvent; at: number }> {
  const events: Array<{ event: MediaEvent; at: number }> = [];
  call.onEvent((event) => events.push({ event, at: performance.now() }));
  return events;
}

/** 20 ms frames at the pace a caller speaks them, so wall-clock deadlines and audio time agree. */
async function feedRealTime(calls: CallAudio[], pcm: Int16Array): Promise<void> {
  const startedAt = performance.now();
  for (let offset = 0, frame = 0; offset + FRAME_SAMPLES <= pcm.length; offset += FRAME_SAMPLES, frame++) {
    for (const call of calls) call.writeCallerAudio(pcm.subarray(offset, offset + FRAME_SAMPLES));
    const wait = startedAt + (frame + 1) * 20 - performance.now();
    if (wait > 0) await sleep(wait);
  }
}

const conversation = synthesizeConversation([{ say: 'My truck has a flat tyre on the highway.' }, { pauseMs: SILENCE_FALLBACK_MS + 1000 }], { sampleRate: SAMPLE_RATE }).pcm;

describe('Smart Turn deadline', () => {
  it('decides every pause on time by the fallback when the model cannot answer in time, and counts it', async () => {
    engine = await MediaEngine.start({
      models,
      allowFaultInjection: true,
      workers: 1,
      warmUp: { vadRuns: 20, smartTurnRuns: 1 },
      vadSkipDigitalSilence: false,
      smartTurn: { maxBatch: 8, deadlineMs: DEADLINE_MS },
      turn: { silenceFallbackMs: SILENCE_FALLBACK_MS },
    });
    // Every run holds its thread 1 s longer: no answer can come within 250 ms of a stop.
    engine.slowSmartTurn(1000);
    const withSignal = engine.openCall('deadline-stt', { inputSampleRate: SAMPLE_RATE });
    const without = engine.openCall('deadline-silence', { inputSampleRate: SAMPLE_RATE });
    const eventsWithSignal = collect(withSignal);
    const eventsWithout = collect(without);
    // The recogniser's end-of-speech signal (Deepgram speech_final) about the words that ended at the
    // stop arrives soon after the VAD stop, as Deepgram's 300 ms endpointing would send it.
    withSignal.onEvent((event) => {
      if (event.type === 'speech_end') withSignal.handleRecognizerEndOfSpeech(event.offsetSamples / 16 - 20);
    });

    await feedRealTime([withSignal, without], conversation);

    const decided = (events: Array<{ event: MediaEvent; at: number }>) => {
      const stop = events.find((e) => e.event.type === 'speech_end');
      const complete = events.find((e) => e.event.type === 'user_turn_complete');
      return { stop, complete, results: events.filter((e) => e.event.type === 'smart_turn_result' || e.event.type === 'smart_turn_error') };
    };
    const a = decided(eventsWithSignal);
    expect(a.stop).toBeDefined();
    expect(a.complete?.event).toMatchObject({ type: 'user_turn_complete', rule: 'deadline_stt', probability: null, turnId: 1 });
    // Decided at the deadline, counted from the worker's stop (the listener sees the stop a little
    // after the worker decided it); the bound allows a busy box's timer lateness.
    expect(a.complete!.at - a.stop!.at).toBeLessThan(DEADLINE_MS + 100);
    // The model's answer, when the slowed run ends, is no result and no error: the deadline decided.
    expect(a.results).toEqual([]);

    const b = decided(eventsWithout);
    expect(b.complete?.event).toMatchObject({ type: 'user_turn_complete', rule: 'deadline_silence', probability: null, turnId: 1 });
    const bEvent = b.complete!.event as Extract<MediaEvent, { type: 'user_turn_complete' }>;
    expect(bEvent.decidedAtSamples - bEvent.speechEndSamples).toBeGreaterThanOrEqual((SILENCE_FALLBACK_MS * SAMPLE_RATE) / 1000);
    expect(b.results).toEqual([]);

    const metrics = engine.metrics();
    expect(metrics.turnDecisions).toEqual({ model: 0, silence: 0, deadline_stt: 1, deadline_silence: 1 });
    // One request ran past its deadline; the other, queued behind it, never ran.
    expect(metrics.smartTurn).toMatchObject({ requests: 2, late: 1, expired: 1, batches: 1 });
    // Stop-to-decision counts the moment the fallback took over.
    expect(metrics.stopToTurnDecisionMs.count).toBe(2);
    expect(metrics.stopToTurnDecisionMs.max).toBeLessThan(DEADLINE_MS + 100);
  });
});
