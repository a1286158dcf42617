/**
 * The load figure on the real media core: calls of real speech with short pauses, fed in real time,
 * ask Smart Turn about every pause. Made slower than its requests arrive (a test hook holds each run's
 * thread longer, as a box whose cores are taken would), the Smart Turn thread saturates, the decision
 * p95 passes its target, and the load the engine measures rises to full: admission refuses. When the
 * calls end it admits again, and the window forgets the saturated seconds. Orders, not tight numbers:
 * this runs on a shared 2-core machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaEngine } from '../media-engine.ts';
import { VoiceEngine } from '../voice-engine.ts';
import type { CallAudio } from '../call-audio.ts';
import type { EngineLoadReport } from './engine-load.ts';
import { resolveModel } from '../../models/model-manager.ts';
import { synthesizeConversation } from '../../test/support/speech.ts';
import { ScriptedLlm, ScriptedStt, ToneTts } from '../../test/fakes/providers.ts';
import { LoopingAudio, RealTimeFeeder } from '../../bench/density/caller-feed.ts';

const SAMPLE_RATE = 16_000;
const FRAME_MS = 20;
const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;
const CALLS = 8;
const TARGET_MS = 300;
/** Each Smart Turn run holds its thread this much longer: runs alone then take about the target. */
const SLOW_RUN_MS = 250;

let media: MediaEngine;
let engine: VoiceEngine;

beforeAll(async () => {
  const [vadPath, smartTurnPath] = await Promise.all([resolveModel('silero-vad-v6'), resolveModel('smart-turn-v3.2')]);
  media = await MediaEngine.start({ models: { vadPath, smartTurnPath }, workers: 1, turnWorkers: 1, allowFaultInjection: true, warmUp: { vadRuns: 20, smartTurnRuns: 1 } });
  // No bot is started here: the engine is built for its admission, which reads the media core's load.
  engine = new VoiceEngine({
    media,
    livekit: { url: 'ws://127.0.0.1:9', apiKey: 'devkey', apiSecret: 'x'.repeat(32) },
    providers: { stt: new ScriptedStt(), llm: new ScriptedLlm([]), tts: new ToneTts() },
    maxCalls: 50,
    load: { turnDecisionTargetMs: TARGET_MS },
  });
}, 60_000);

afterAll(async () => {
  await engine?.close();
  await media?.close();
});

describe('EngineLoad on the real media core', () => {
  it('rises to full when Smart Turn cannot keep up, refuses calls, and admits again once the calls end', async () => {
    // Short utterances with 400 ms pauses: about one Smart Turn request every 1.5 s per call.
    const conversation = synthesizeConversation(
      [{ say: 'Yes, that is right.' }, { pauseMs: 400 }, { say: 'Which bay should I back into?' }, { pauseMs: 400 }, { say: 'Okay, sounds good.' }, { pauseMs: 500 }],
      { sampleRate: SAMPLE_RATE },
    );
    const calls: CallAudio[] = [];
    const feeder = new RealTimeFeeder({ frameMs: FRAME_MS });
    for (let i = 0; i < CALLS; i++) {
      const call = media.openCall(`load-${i}`, { inputSampleRate: SAMPLE_RATE });
      calls.push(call);
      // Each call at its own place in the audio, so their pauses do not all fall together.
      const audio = new LoopingAudio(conversation.pcm, FRAME_SAMPLES, Math.floor((i / CALLS) * conversation.pcm.length));
      feeder.add((i * FRAME_MS) / CALLS, () => {
        if (!call.closed) call.writeCallerAudio(audio.next());
      });
    }
    const samples: Array<{ phase: string; report: EngineLoadReport }> = [];
    const sample = (phase: string): EngineLoadReport => {
      const report = engine.load();
      samples.push({ phase, report });
      return report;
    };
    feeder.start();
    try {
      // Smart Turn as fast as it is: a window of these calls.
      await new Promise((r) => setTimeout(r, 7000));
      const normal = sample('normal');
      expect(normal.measured.turnDecisions).toBeGreaterThan(0);

      // Slower than the requests come: the thread saturates and the decisions wait.
      media.slowSmartTurn(SLOW_RUN_MS);
      await expect.poll(() => sample('slowed').full, { timeout: 25_000, interval: 500 }).toBe(true);
      const saturated = engine.load();
      expect(saturated.limit).toBe('smartTurn');
      expect(saturated.load).toBe(1);
      // Full comes before the p95 passes the target: when one more call would take it there.
      expect(saturated.measured.turnDecisionP95Ms).toBeGreaterThan(normal.measured.turnDecisionP95Ms);
      expect(saturated.measured.smartTurnUtilisation).toBeGreaterThan(normal.measured.smartTurnUtilisation);
      expect(saturated.parts.smartTurn).toBeGreaterThan(normal.parts.smartTurn);
      // Admission uses the same figure: refused, through the capacity and through startBot.
      expect(engine.capacity().acceptingCalls).toBe(false);
      await expect(engine.startBot({ callId: 'one-too-many', roomName: 'call-one-too-many' })).rejects.toMatchObject({ code: 'VE_AT_CAPACITY' });
      // ...and /metrics and GET /v1/engine read the same figure.
      expect(engine.metrics()).toMatchObject({ load: 1, load_full: 1 });
      // What LiveKit would be told: full (load + one more call over 1).
      const figure = engine.loadSource();
      expect(figure.load + figure.loadPerCall).toBeGreaterThan(1);
    } finally {
      feeder.stop();
      media.slowSmartTurn(0);
      await Promise.all(calls.map((call) => call.close()));
    }

    // No calls: it admits at once, and the saturated seconds leave the window.
    expect(engine.capacity().acceptingCalls).toBe(true);
    expect(engine.load()).toMatchObject({ full: false, load: 0, calls: 0 });
    const saturatedUtilisation = Math.max(...samples.filter((s) => s.phase === 'slowed').map((s) => s.report.measured.smartTurnUtilisation));
    await expect.poll(() => sample('ended').measured.smartTurnUtilisation, { timeout: 10_000, interval: 500 }).toBeLessThan(saturatedUtilisation / 4);
    await expect.poll(() => engine.load().measured.turnDecisions, { timeout: 10_000, interval: 500 }).toBe(0);

    const fmt = (r: EngineLoadReport) =>
      `load ${r.load.toFixed(2)} (${r.limit}) per call ${r.loadPerCall.toFixed(3)}, Smart Turn ${(r.measured.smartTurnUtilisation * 100).toFixed(0)} % of ${(r.measured.smartTurnUtilisationCeiling * 100).toFixed(0)} %, decision p95 ${r.measured.turnDecisionP95Ms.toFixed(0)} ms (${r.measured.turnDecisions}), queue wait p95 ${r.measured.smartTurnQueueWaitP95Ms.toFixed(0)} ms, VAD lateness p95 ${r.measured.vadLatenessP95Ms.toFixed(0)} ms, event loop p99 ${r.measured.eventLoopDelayP99Ms.toFixed(0)} ms, CPU ${r.measured.cpuPercent.toFixed(0)} %`;
    console.log(`${CALLS} calls, Smart Turn as is: ${fmt(samples.find((s) => s.phase === 'normal')!.report)}`);
    console.log(`${CALLS} calls, Smart Turn +${SLOW_RUN_MS} ms a run: ${fmt(samples.filter((s) => s.phase === 'slowed').at(-1)!.report)}`);
  }, 60_000);
});
