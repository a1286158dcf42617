/**
 * The media core end to end without a server: real speech frames in, VAD probabilities and turn events
 * out of the worker pool, checked against an independent single-stream onnxruntime-node reference.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ortNode from 'onnxruntime-node';
import { DEFAULT_MEDIA_OPTIONS, MediaEngine } from './media-engine.ts';
import type { CallAudio, MediaEvent } from './call-audio.ts';
import { resolveModel } from '../models/model-manager.ts';
import { synthesizeConversation } from '../test/support/speech.ts';

const SAMPLE_RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms

let vadPath: string;
let smartTurnPath: string;

beforeAll(async () => {
  [vadPath, smartTurnPath] = await Promise.all([resolveModel('silero-vad-v6'), resolveModel('smart-turn-v3.2')]);
});

/** Silero v6 over one stream with onnxruntime-node: the reference the batched workers must match. */
async function referenceProbabilities(pcm: Int16Array): Promise<number[]> {
  const session = await ortNode.InferenceSession.create(vadPath, { intraOpNumThreads: 1 });
  let state = new Float32Array(2 * 128);
  let context = new Float32Array(64);
  const out: number[] = [];
  for (let start = 0; start + 512 <= pcm.length; start += 512) {
    const input = new Float32Array(576);
    input.set(context, 0);
    for (let i = 0; i < 512; i++) input[64 + i] = pcm[start + i] / 32768;
    const result = await session.run({
      input: new ortNode.Tensor('float32', input, [1, 576]),
      state: new ortNode.Tensor('float32', state, [2, 1, 128]),
      sr: new ortNode.Tensor('int64', BigInt64Array.of(16000n), []),
    });
    out.push((result.output.data as Float32Array)[0]);
    state = new Float32Array(result.stateN.data as Float32Array);
    context = input.slice(512);
  }
  await session.release();
  return out;
}

/** Feeds a call 20 ms frames, pausing whenever its ring is nearly full, and waits until all is processed. */
async function feed(call: CallAudio, pcm: Int16Array, opts: { onFrame?: (index: number) => void; realTime?: boolean; target?: number } = {}): Promise<void> {
  const target = opts.target ?? call.processedSamples + pcm.length - 512;
  const started = performance.now();
  let frame = 0;
  for (let offset = 0; offset < pcm.length; offset += FRAME_SAMPLES, frame++) {
    while (call.inputRing.freeSamples() < FRAME_SAMPLES * 2) await new Promise((r) => setTimeout(r, 2));
    call.writeCallerAudio(pcm.subarray(offset, offset + FRAME_SAMPLES));
    opts.onFrame?.(frame);
    if (opts.realTime) {
      const due = started + (frame + 1) * 20;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    } else if (frame % 10 === 0) {
      await new Promise((r) => setImmediate(r));
    }
  }
  const deadline = Date.now() + 30_000;
  while (call.processedSamples <= target) {
    if (Date.now() > deadline) throw new Error(`call ${call.callId} processed ${call.processedSamples} samples, expected more than ${target}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function collect(call: CallAudio): MediaEvent[] {
  const events: MediaEvent[] = [];
  call.onEvent((e) => events.push(e));
  return events;
}

function probabilities(events: MediaEvent[]): number[] {
  return events.flatMap((e) => (e.type === 'vad_probability' ? [e.probability] : []));
}

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

const conversations = [
  synthesizeConversation([{ pauseMs: 400 }, { say: 'Hi, this is driver forty two.' }, { pauseMs: 1200 }, { say: 'I am at the loading dock now.' }, { pauseMs: 3500 }], { sampleRate: SAMPLE_RATE }),
  synthesizeConversation([{ say: 'My truck has a flat tyre on the highway.' }, { pauseMs: 3500 }], { sampleRate: SAMPLE_RATE }),
  synthesizeConversation([{ pauseMs: 900 }, { say: 'Can you send someone to help?' }, { pauseMs: 800 }, { say: 'Thanks.' }, { pauseMs: 3500 }], { sampleRate: SAMPLE_RATE }),
];

/**
 * The fixtures' pauses between words are exact digital zeros of 160-190 ms, which no real call delivers
 * (libwebrtc conceals a gap for ~600 ms before it fades to zeros). With the product's stop threshold
 * (0.35) the model bridges such a gap while a stream reset by skipped silence scores the next onset low
 * and splits the speech; the skipped-silence comparison below holds at the start threshold, so these
 * engines stop at 0.7 as well.
 */
const VAD_EXIT_AT_START = { ...DEFAULT_MEDIA_OPTIONS.vad, exitConfidence: DEFAULT_MEDIA_OPTIONS.vad.confidence };

describe('MediaEngine', () => {
  let engine: MediaEngine;

  beforeAll(async () => {
    // Every window through the model, so that the batched run can be compared with the reference.
    // No model resets either: the reference below never clears its state.
    engine = await MediaEngine.start({
      models: { vadPath, smartTurnPath },
      workers: 2,
      allowFaultInjection: true,
      warmUp: { vadRuns: 20, smartTurnRuns: 1 },
      vadSkipDigitalSilence: false,
      vadModelResetIntervalMs: 0,
      vad: VAD_EXIT_AT_START,
    });
  });

  afterAll(async () => {
    await engine?.close();
  });

  it('batched worker VAD equals a single-stream onnxruntime-node run within 1e-4', async () => {
    const calls = conversations.map((_, i) => engine.openCall(`vad-${i}`, { inputSampleRate: SAMPLE_RATE, trace: true }));
    try {
      const events = calls.map(collect);
      // The calls' frames arrive interleaved, as they do from a room, so a worker holding two calls
      // finds windows of both ready at once and batches them.
      const longest = Math.max(...conversations.map((c) => c.pcm.length));
      for (let offset = 0, frame = 0; offset < longest; offset += FRAME_SAMPLES, frame++) {
        calls.forEach((call, i) => {
          const pcm = conversations[i].pcm;
          if (offset < pcm.length) call.writeCallerAudio(pcm.subarray(offset, offset + FRAME_SAMPLES));
        });
        if (frame % 10 === 0) {
          while (calls.some((call) => call.inputRing.freeSamples() < FRAME_SAMPLES * 20)) await new Promise((r) => setTimeout(r, 2));
          await new Promise((r) => setImmediate(r));
        }
      }
      await Promise.all(calls.map((call, i) => feed(call, new Int16Array(0), { target: conversations[i].pcm.length - 512 })));
      for (let i = 0; i < calls.length; i++) {
        const reference = await referenceProbabilities(conversations[i].pcm);
        expect(maxAbsDiff(probabilities(events[i]), reference)).toBeLessThan(1e-4);
        expect(Math.max(...reference)).toBeGreaterThan(0.9);
      }
      expect(engine.metrics().vadMeanBatchSize).toBeGreaterThan(1);
    } finally {
      await Promise.all(calls.map((call) => call.close()));
    }
  });

  it('turns real speech with pauses into turn events at the right places', async () => {
    const conversation = conversations[0];
    const call = engine.openCall('turns', { inputSampleRate: SAMPLE_RATE });
    try {
      const events = collect(call);
      // Real time, so that Smart Turn answers before the silence fallback would.
      await feed(call, conversation.pcm, { realTime: true });
      const lastSegment = conversation.segments[conversation.segments.length - 1];
      const coversLast = () => events.some((e) => e.type === 'user_turn_complete' && e.speechEndSamples > lastSegment.endSample - 0.3 * SAMPLE_RATE);
      const deadline = Date.now() + 10_000;
      while (!coversLast() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

      const types = events.map((e) => e.type);
      expect(types[0]).toBe('speech_start');
      expect(types).toContain('user_started_speaking');
      expect(types).toContain('smart_turn_result');
      const starts = events.filter((e) => e.type === 'speech_start');
      // The VAD start lands within 300 ms of the true start of speech.
      expect(Math.abs(starts[0].offsetSamples - conversation.segments[0].startSample)).toBeLessThan(0.3 * SAMPLE_RATE);
      const completes = events.flatMap((e) => (e.type === 'user_turn_complete' ? [e] : []));
      expect(completes.length).toBeGreaterThan(0);
      const stops = new Set(events.flatMap((e) => (e.type === 'speech_end' ? [e.offsetSamples] : [])));
      for (const complete of completes) {
        // Every turn ends at a VAD stop (the model may well call "Hi," a complete turn), and is decided
        // within the silence fallback of it.
        expect(stops.has(complete.speechEndSamples), `turn ending at ${complete.speechEndSamples}`).toBe(true);
        expect(complete.decidedAtSamples - complete.speechEndSamples).toBeLessThan(3.5 * SAMPLE_RATE);
      }
      expect(coversLast()).toBe(true);
      for (const result of events.filter((e) => e.type === 'smart_turn_result')) {
        if (result.type !== 'smart_turn_result') continue;
        expect(result.probability).toBeGreaterThanOrEqual(0);
        expect(result.probability).toBeLessThanOrEqual(1);
      }
      expect(engine.metrics().stopToTurnDecisionMs.count).toBeGreaterThan(0);
    } finally {
      await call.close();
    }
  });

  it('re-homes the calls of a crashed worker and leaves the other worker’s calls untouched', async () => {
    const a = engine.openCall('crash-a', { inputSampleRate: SAMPLE_RATE, trace: true });
    const b = engine.openCall('crash-b', { inputSampleRate: SAMPLE_RATE, trace: true });
    expect(engine.workerOf('crash-a')).not.toBe(engine.workerOf('crash-b'));
    const eventsA = collect(a);
    const eventsB = collect(b);
    const victim = engine.workerOf('crash-a')!;
    const pcm = conversations[1].pcm;
    await Promise.all([
      feed(a, pcm, { realTime: true, onFrame: (frame) => frame === 60 && engine.crashWorker(victim) }),
      feed(b, pcm, { realTime: true }),
    ]);
    const restarted = eventsA.find((e) => e.type === 'worker_restarted');
    expect(restarted).toMatchObject({ type: 'worker_restarted', fromWorkerId: victim });
    expect(eventsB.some((e) => e.type === 'worker_restarted')).toBe(false);
    // Call B's every probability is what it would have been with no crash at all.
    expect(maxAbsDiff(probabilities(eventsB), await referenceProbabilities(pcm))).toBeLessThan(1e-4);
    // Call A kept being served after the crash: windows up to the end of its audio were decided,
    // at offsets that stay true to its audio.
    expect(a.processedSamples).toBeGreaterThan(pcm.length - 512);
    expect(a.processedSamples).toBeLessThanOrEqual(pcm.length);
    expect(engine.metrics().workerRestarts).toBeGreaterThanOrEqual(1);
    await Promise.all([a.close(), b.close()]);
  });

  it('rebalances when calls end and moves VAD state with the call', async () => {
    // Wait for the crashed worker's replacement to be back.
    const deadline = Date.now() + 20_000;
    let calls: CallAudio[] = [];
    for (;;) {
      calls = ['r0', 'r1', 'r2', 'r3'].map((id) => engine.openCall(id, { inputSampleRate: SAMPLE_RATE, trace: true }));
      const workers = new Set(calls.map((c) => engine.workerOf(c.callId)));
      if (workers.size === 2 || Date.now() > deadline) break;
      await Promise.all(calls.map((c) => c.close()));
      await new Promise((r) => setTimeout(r, 200));
    }
    const byWorker = (w: number) => calls.filter((c) => engine.workerOf(c.callId) === w);
    expect(byWorker(0)).toHaveLength(2);
    expect(byWorker(1)).toHaveLength(2);
    const pcm = conversations[2].pcm;
    const half = Math.floor(pcm.length / 2 / FRAME_SAMPLES) * FRAME_SAMPLES;
    const leaving = byWorker(0);
    const staying = byWorker(1);
    const stayingEvents = staying.map(collect);
    await Promise.all(staying.map((call) => feed(call, pcm.subarray(0, half))));
    await Promise.all(leaving.map((call) => call.close()));
    // Worker 0 is now empty and worker 1 holds two calls: one of them must have moved.
    expect(new Set(staying.map((call) => engine.workerOf(call.callId))).size).toBe(2);
    await Promise.all(staying.map((call) => feed(call, pcm.subarray(half))));
    const reference = await referenceProbabilities(pcm);
    for (const events of stayingEvents) expect(maxAbsDiff(probabilities(events), reference)).toBeLessThan(1e-4);
    await Promise.all(staying.map((call) => call.close()));
  });

  it('counts every caller sample a full ring could not take', async () => {
    const call = engine.openCall('overflow', { inputSampleRate: SAMPLE_RATE });
    const events = collect(call);
    const capacity = call.inputRing.capacitySamples;
    const burst = new Int16Array(capacity + 1000);
    const accepted = call.writeCallerAudio(burst);
    expect(accepted).toBeLessThanOrEqual(capacity);
    expect(call.droppedSamples()).toBe(burst.length - accepted);
    expect(events).toContainEqual({ type: 'input_overflow', droppedSamples: burst.length - accepted });
    await call.close();
  });

  it('answers digital silence without the model, and finds the same speech as with it', async () => {
    const conversation = conversations[0];
    const zeroWindows: number[] = [];
    for (let w = 0; (w + 1) * 512 <= conversation.pcm.length; w++) {
      if (conversation.pcm.subarray(w * 512, (w + 1) * 512).every((x) => x === 0)) zeroWindows.push(w);
    }
    expect(zeroWindows.length).toBeGreaterThan(100);
    const gated = await MediaEngine.start({ models: { vadPath, smartTurnPath }, workers: 1, warmUp: { vadRuns: 20, smartTurnRuns: 1 }, vad: VAD_EXIT_AT_START });
    try {
      const run = async (on: MediaEngine, callId: string) => {
        const call = on.openCall(callId, { inputSampleRate: SAMPLE_RATE, trace: true });
        const events = collect(call);
        await feed(call, conversation.pcm);
        await call.close();
        return events;
      };
      const withModel = await run(engine, 'silence-model');
      const skipped = await run(gated, 'silence-skipped');
      expect(gated.metrics().vadSilentWindows).toBe(zeroWindows.length);
      const p = probabilities(skipped);
      for (const w of zeroWindows) expect(p[w]).toBe(0);
      const vadEvents = (events: MediaEvent[]) => events.flatMap((e) => (e.type === 'speech_start' || e.type === 'speech_end' ? [e] : []));
      const a = vadEvents(withModel);
      const b = vadEvents(skipped);
      expect(b.map((e) => e.type)).toEqual(a.map((e) => e.type));
      expect(a.length).toBeGreaterThanOrEqual(4);
      // Within two windows: the model's state after the silence differs, not the speech it finds.
      b.forEach((e, i) => expect(Math.abs(e.offsetSamples - a[i].offsetSamples)).toBeLessThanOrEqual(1024));
    } finally {
      await gated.close();
    }
  });
});
