/**
 * Media worker faults with real workers and models: a worker that fails at start is restarted with
 * backoff and given up after its cap, a call is never left on no worker (a move whose target dies, a
 * pool with every worker down), and a call whose audio crashes workers is ended after the second crash
 * instead of being re-homed to crash a third, while the calls that merely shared its workers go on.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MediaEngine, type MediaEngineOptions } from './media-engine.ts';
import type { CallAudio, MediaEvent } from './call-audio.ts';
import { resolveModel } from '../models/model-manager.ts';
import { synthesizeConversation } from '../test/support/speech.ts';

const SAMPLE_RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms

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

function start(options: Partial<Omit<MediaEngineOptions, 'models'>>): Promise<MediaEngine> {
  return MediaEngine.start({ models, allowFaultInjection: true, warmUp: { vadRuns: 20, smartTurnRuns: 1 }, vadSkipDigitalSilence: false, ...options });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function collect(call: CallAudio): MediaEvent[] {
  const events: MediaEvent[] = [];
  call.onEvent((e) => events.push(e));
  return events;
}

/**
 * Writes 20 ms frames as fast as the rings take them. A call whose ring stays full for a second (nobody
 * serves it any more) is left out from then on.
 */
async function feed(calls: CallAudio[], pcm: Int16Array): Promise<void> {
  const stuck = new Set<CallAudio>();
  for (let offset = 0, frame = 0; offset < pcm.length; offset += FRAME_SAMPLES, frame++) {
    for (const call of calls) {
      if (call.closed || stuck.has(call)) continue;
      const deadline = Date.now() + 1000;
      while (call.inputRing.freeSamples() < FRAME_SAMPLES && Date.now() < deadline) await sleep(5);
      if (call.inputRing.freeSamples() < FRAME_SAMPLES) stuck.add(call);
      else call.writeCallerAudio(pcm.subarray(offset, offset + FRAME_SAMPLES));
    }
    if (frame % 5 === 0) await sleep(2);
  }
}

/** Whether the workers decided this call's audio up to (nearly) `samples` within the time given. */
async function served(call: CallAudio, samples: number, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (call.processedSamples <= samples - 512) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

const speech = synthesizeConversation([{ say: 'My truck has a flat tyre on the highway.' }, { pauseMs: 500 }], { sampleRate: SAMPLE_RATE }).pcm;

describe('media worker faults', () => {
  it('restarts a worker that fails at start with backoff, gives the slot up after the cap, and serves its calls elsewhere', async () => {
    const policy = { initialDelayMs: 100, maxDelayMs: 400, maxRestarts: 4, windowMs: 30_000 };
    engine = await start({ workers: 2, workerRestart: policy });
    const a = engine.openCall('restart-a', { inputSampleRate: SAMPLE_RATE });
    const b = engine.openCall('restart-b', { inputSampleRate: SAMPLE_RATE });
    expect([engine.workerOf('restart-a'), engine.workerOf('restart-b')]).toEqual([0, 1]);
    const eventsA = collect(a);

    engine.failWorkerStarts(0, 1000);
    const crashedAt = Date.now();
    engine.crashWorker(0);
    await until('worker 0 to be given up', () => engine!.poolStats().workers[0].down);
    const downAfterMs = Date.now() - crashedAt;
    // Restarts after 0, 100, 200 and 400 (capped) ms, then the fifth death within the window is one too many.
    expect(engine.poolStats().workers[0].restarts).toBe(policy.maxRestarts);
    expect(downAfterMs).toBeGreaterThanOrEqual(700);
    expect(engine.metrics().workersDown).toBe(1);
    await sleep(1000);
    expect(engine.poolStats().workers[0].restarts).toBe(policy.maxRestarts);

    // Its call moved to the live worker at the first death and is served there; new calls go there too.
    expect(eventsA.filter((e) => e.type === 'worker_restarted')).toEqual([{ type: 'worker_restarted', fromWorkerId: 0, toWorkerId: 1, reason: expect.any(String) }]);
    expect(engine.workerOf('restart-a')).toBe(1);
    const c = engine.openCall('restart-c', { inputSampleRate: SAMPLE_RATE });
    expect(engine.workerOf('restart-c')).toBe(1);
    const before = a.processedSamples;
    await feed([a, b, c], speech);
    expect(await served(a, before + speech.length)).toBe(true);
    expect(await served(c, speech.length)).toBe(true);
    expect(eventsA.some((e) => e.type === 'media_failed')).toBe(false);
  });

  it('ends the calls with VE_NO_MEDIA_WORKER once every worker is down for good', async () => {
    engine = await start({ workers: 1, workerRestart: { initialDelayMs: 50, maxDelayMs: 100, maxRestarts: 2, windowMs: 30_000 } });
    const call = engine.openCall('orphan', { inputSampleRate: SAMPLE_RATE });
    const events = collect(call);
    engine.failWorkerStarts(0, 1000);
    engine.crashWorker(0);
    await until('the call to fail', () => events.some((e) => e.type === 'media_failed'));
    expect(events.filter((e) => e.type === 'media_failed')).toEqual([{ type: 'media_failed', code: 'VE_NO_MEDIA_WORKER', message: expect.any(String), reason: 'media_unavailable' }]);
    expect(engine.poolStats()).toMatchObject({ workers: [{ down: true, restarts: 2 }], waitingCalls: 0 });
    expect(engine.workerOf('orphan')).toBeUndefined();
    expect(() => engine!.openCall('too-late', { inputSampleRate: SAMPLE_RATE })).toThrow(expect.objectContaining({ code: 'VE_NO_MEDIA_WORKER' }));
  });

  it('finishes a move whose target worker dies meanwhile on a live worker, with the call’s VAD state', async () => {
    // The dead target's first restart fails and the next waits 5 s: it is down while the move ends.
    engine = await start({ workers: 2, workerRestart: { initialDelayMs: 5000 } });
    const calls = ['m0', 'm1', 'm2', 'm3'].map((id) => engine!.openCall(id, { inputSampleRate: SAMPLE_RATE, trace: true }));
    expect(calls.map((c) => engine!.workerOf(c.callId))).toEqual([0, 1, 0, 1]);
    const [m0, m1, m2, m3] = calls;
    const events = [m0, m2].map(collect);
    const half = Math.floor(speech.length / 2 / FRAME_SAMPLES) * FRAME_SAMPLES;
    await feed([m0, m2], speech.subarray(0, half));
    expect(await served(m0, half)).toBe(true);
    expect(await served(m2, half)).toBe(true);
    await m1.close();

    // Worker 0 answers late; meanwhile the move's target, worker 1, dies.
    engine.failWorkerStarts(1, 1);
    engine.stallWorker(0, 800);
    const closing = m3.close(); // worker 1 is empty now: one of m0/m2 starts moving onto it
    await sleep(200);
    engine.crashWorker(1);
    await closing;
    expect(engine.poolStats().movesRedirected).toBe(1);
    expect(engine.poolStats().workers[1].live).toBe(false);
    expect([engine.workerOf('m0'), engine.workerOf('m2')]).toEqual([0, 0]);

    await feed([m0, m2], speech.subarray(half));
    expect(await served(m0, speech.length)).toBe(true);
    expect(await served(m2, speech.length)).toBe(true);
    // The moved call's every probability equals the one that stayed: its state travelled with it.
    const p = events.map((list) => list.flatMap((e) => (e.type === 'vad_probability' ? [e.probability] : [])));
    expect(p[0].length).toBe(p[1].length);
    expect(Math.max(...p[0].map((v, i) => Math.abs(v - p[1][i])))).toBeLessThan(1e-4);
    expect(events.flat().some((e) => e.type === 'worker_restarted')).toBe(false);
  });

  it('ends a call whose audio crashed two workers instead of re-homing it to crash a third', async () => {
    engine = await start({ workers: 2, workerRestart: { initialDelayMs: 100 } });
    const poison = engine.openCall('poison', { inputSampleRate: SAMPLE_RATE });
    const other = engine.openCall('other', { inputSampleRate: SAMPLE_RATE });
    const neighbour = engine.openCall('neighbour', { inputSampleRate: SAMPLE_RATE });
    expect(['poison', 'other', 'neighbour'].map((id) => engine!.workerOf(id))).toEqual([0, 1, 0]);
    const [poisonEvents, otherEvents, neighbourEvents] = [poison, other, neighbour].map(collect);

    engine.crashOnCallAudio('poison');
    await feed([poison, other, neighbour], speech);
    await until('the poison call to fail', () => poisonEvents.some((e) => e.type === 'media_failed'));
    expect(poisonEvents.filter((e) => e.type === 'media_failed')).toEqual([{ type: 'media_failed', code: 'VE_MEDIA_CRASHED', message: expect.any(String), reason: 'media_crashed' }]);
    // First crash on worker 0, second on worker 1 (the only live one then); never a third.
    expect(poisonEvents.filter((e) => e.type === 'worker_restarted')).toEqual([expect.objectContaining({ fromWorkerId: 0, toWorkerId: 1 })]);
    expect(engine.workerOf('poison')).toBeUndefined();
    await until('both workers back', () => engine!.poolStats().workers.every((w) => w.live));
    await sleep(500);
    expect(engine.metrics().workerRestarts).toBe(2);

    // The neighbour shared both dead workers with it, but the workers died on the poison call's audio:
    // it goes on, as does the other call, and both are served.
    expect(neighbourEvents.filter((e) => e.type === 'worker_restarted')).toHaveLength(2);
    expect(otherEvents.filter((e) => e.type === 'worker_restarted')).toHaveLength(1);
    for (const events of [neighbourEvents, otherEvents]) expect(events.some((e) => e.type === 'media_failed')).toBe(false);
    const targets = [neighbour, other].map((c) => c.processedSamples + speech.length);
    await feed([neighbour, other], speech);
    expect(await served(neighbour, targets[0])).toBe(true);
    expect(await served(other, targets[1])).toBe(true);
    expect(engine.metrics().workerRestarts).toBe(2);
  });
});
