/**
 * The engine's whole media path against Pipecat's, turn by turn. The same conversations (espeak-ng
 * utterances with pauses of 0.3-4 s) go through the engine's MediaEngine (resampling-free 16 kHz input,
 * batched Silero VAD, hysteresis, turn window, features, Smart Turn, turn detector) and through
 * Pipecat's `SileroVADAnalyzer` and `LocalSmartTurnAnalyzerV3` with their defaults, in Python from the
 * pinned wheel (`reference.py` says how they are driven). Asserted: the same VAD stops within one VAD
 * window, the same complete/incomplete outcome on at least 95 % of them, and Smart Turn probabilities
 * within 1e-3 wherever both scored the same audio window.
 *
 * The engine is fed one VAD window at a time and waits for each Smart Turn answer before the next
 * window, which is what Pipecat's pipeline does (its aggregator awaits the analyzer) and what real time
 * gives the engine whenever a decision takes less than the next speech start needs; it makes the run
 * deterministic and several times faster than real time.
 *
 * The engine runs with Pipecat's VAD behaviour (one 0.7 threshold, the 0.6 loudness gate, a model reset
 * after 2 s of quiet, no digital-silence shortcut). Where the engine keeps a different default on
 * purpose, the run shows what it changes:
 * - the server's `VAD_STOP_THRESHOLD` (0.35; Pipecat has one threshold) and `ENGINE_VAD_SKIP_DIGITAL_SILENCE`
 *   (true): one more run each, reporting which stops move or vanish and which decisions change;
 * - the silence rule counts 3 s from the end of speech, Pipecat's from the VAD stop (one VAD stop window
 *   later): the silence decisions are reported side by side, and a turn that resumes within that
 *   difference is scored with a different window (the "plan" conversation has one).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveModel } from '../../models/model-manager.ts';
import { DEFAULT_MEDIA_OPTIONS, MediaEngine } from '../../engine/media-engine.ts';
import type { TurnRule } from '../../engine/events.ts';
import type { CallAudio, MediaEvent } from '../../engine/call-audio.ts';
import { VAD_WINDOW_SAMPLES } from '../../engine/stages/silero-vad.ts';
import type { VadHysteresisOptions } from '../../engine/stages/vad-hysteresis.ts';
import { SETTINGS } from '../../server/config.ts';
import { synthesizeConversation, type ScriptStep } from '../support/speech.ts';
import { cacheDir } from '../support/process.ts';
import { runPipecatReference, type ReferenceSessionEvent, type SessionAnswer } from './reference.ts';

const SAMPLE_RATE = 16_000;

const CONVERSATIONS: Record<string, ScriptStep[]> = {
  order: [
    { pauseMs: 600 },
    { say: 'Hi, I am calling about my order.' },
    { pauseMs: 1500 },
    { say: 'It was supposed to arrive on Monday,' },
    { pauseMs: 400 },
    { say: 'but it still is not here.' },
    { pauseMs: 2500 },
    { say: 'Can you check where it is?' },
    { pauseMs: 4000 },
  ],
  flight: [
    { pauseMs: 400 },
    { say: 'I want to change my flight' },
    { pauseMs: 800 },
    { say: 'to next Tuesday.' },
    { pauseMs: 2000 },
    { say: 'Oh, and' },
    { pauseMs: 600 },
    { say: 'can I get a window seat?' },
    { pauseMs: 3500 },
    { say: 'Thanks, that is all.' },
    { pauseMs: 4000 },
  ],
  plan: [
    { pauseMs: 1000 },
    { say: 'So the thing is' },
    { pauseMs: 1200 },
    { say: 'I was thinking about' },
    { pauseMs: 700 },
    { say: 'maybe upgrading my plan.' },
    { pauseMs: 3000 },
    { say: 'What would that cost me per month?' },
    { pauseMs: 4000 },
  ],
  short: [
    { pauseMs: 500 },
    { say: 'Yes.' },
    { pauseMs: 2000 },
    { say: 'No, the other one.' },
    { pauseMs: 1500 },
    { say: 'Okay.' },
    { pauseMs: 300 },
    { say: 'Sounds good.' },
    { pauseMs: 4000 },
  ],
  numbers: [
    { pauseMs: 800 },
    { say: 'My card number is four four five' },
    { pauseMs: 900 },
    { say: 'six seven eight' },
    { pauseMs: 1100 },
    { say: 'and it expires in March.' },
    { pauseMs: 4000 },
  ],
};

/** One VAD stop and what was decided at it. */
interface Stop {
  confirmedAtSamples: number;
  scoredFromSamples?: number;
  probability?: number;
  complete: boolean;
}

interface PathRun {
  stops: Stop[];
  completions: Array<{ rule: TurnRule; atSamples: number }>;
}

const workDir = mkdtempSync(join(tmpdir(), 'pipecat-whole-path-'));
let conversations: Array<{ name: string; pcm: Int16Array; path: string }>;
let reference: SessionAnswer;
let models: { vadPath: string; smartTurnPath: string };

beforeAll(async () => {
  const [vadPath, smartTurnPath] = await Promise.all([resolveModel('silero-vad-v6'), resolveModel('smart-turn-v3.2')]);
  models = { vadPath, smartTurnPath };
  conversations = Object.entries(CONVERSATIONS).map(([name, script]) => {
    const { pcm } = synthesizeConversation(script, { sampleRate: SAMPLE_RATE });
    const path = join(workDir, `${name}.pcm`);
    writeFileSync(path, pcm);
    return { name, pcm, path };
  });
  reference = await runPipecatReference({ command: 'session', conversations: conversations.map(({ name, path }) => ({ name, path })) });
}, 120_000);

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Feeds one VAD window at a time; after a stop, waits for the Smart Turn answer before going on. */
async function runEngine(engine: MediaEngine, name: string, pcm: Int16Array): Promise<PathRun> {
  const call: CallAudio = engine.openCall(`pipecat-${name}-${Math.random().toString(36).slice(2)}`, { inputSampleRate: SAMPLE_RATE });
  const events: MediaEvent[] = [];
  let pendingAnswer = false;
  call.onEvent((event) => {
    events.push(event);
    if (event.type === 'user_paused') pendingAnswer = true;
    if (event.type === 'smart_turn_result' || event.type === 'smart_turn_error' || event.type === 'user_turn_complete') pendingAnswer = false;
  });
  try {
    const windows = Math.floor(pcm.length / VAD_WINDOW_SAMPLES);
    for (let w = 0; w < windows; w++) {
      call.writeCallerAudio(pcm.subarray(w * VAD_WINDOW_SAMPLES, (w + 1) * VAD_WINDOW_SAMPLES));
      await until(() => call.processedSamples >= (w + 1) * VAD_WINDOW_SAMPLES, `window ${w} of ${name}`);
      if (pendingAnswer) await until(() => !pendingAnswer, `the Smart Turn answer in ${name}`);
    }
  } finally {
    await call.close();
  }
  const run: PathRun = { stops: [], completions: [] };
  for (const event of events) {
    if (event.type === 'speech_end') {
      run.stops.push({ confirmedAtSamples: event.confirmedAtSamples, scoredFromSamples: event.scoredFromSamples, complete: false });
    } else if (event.type === 'smart_turn_result') {
      const stop = run.stops.at(-1)!;
      stop.probability = event.probability;
      stop.complete = event.complete;
    } else if (event.type === 'user_turn_complete') {
      run.completions.push({ rule: event.rule, atSamples: event.decidedAtSamples });
    }
  }
  return run;
}

function referenceRun(events: ReferenceSessionEvent[]): PathRun {
  const run: PathRun = { stops: [], completions: [] };
  for (const event of events) {
    if (event.type === 'speech_end') {
      run.stops.push({ confirmedAtSamples: event.confirmedAtSamples, scoredFromSamples: event.scoredFromSamples, probability: event.probability, complete: event.complete });
    } else if (event.type === 'turn_complete') {
      run.completions.push({ rule: event.rule, atSamples: event.atSamples });
    }
  }
  return run;
}

/** The engine with Pipecat's VAD parameters, changed by `changes` (the engine's own defaults, to show what they do). */
async function runAll(changes: { vad?: Partial<VadHysteresisOptions>; vadSkipDigitalSilence?: boolean } = {}): Promise<Map<string, PathRun>> {
  const engine = await MediaEngine.start({
    models,
    workers: 1,
    // Pipecat's VADParams and SileroVADAnalyzer behaviour: one threshold, 200 ms windows, the 0.6
    // loudness gate, a model reset every 2 s of quiet, and no shortcut for digital silence.
    vad: { confidence: 0.7, startMs: 200, stopMs: 200, ...changes.vad },
    vadMinVolume: 0.6,
    vadModelResetIntervalMs: 2000,
    vadSkipDigitalSilence: changes.vadSkipDigitalSilence ?? false,
    vadBatchWindowMs: 0,
    warmUp: { vadRuns: 20, smartTurnRuns: 1 },
    // Pipecat waits for the model however long it takes; the engine's deadline (a wall-clock bound for
    // a full box) has no counterpart there, and this test compares decisions, not timing.
    smartTurn: { ...DEFAULT_MEDIA_OPTIONS.smartTurn, deadlineMs: 30_000 },
  });
  try {
    const runs = new Map<string, PathRun>();
    for (const { name, pcm } of conversations) runs.set(name, await runEngine(engine, name, pcm));
    return runs;
  } finally {
    await engine.close();
  }
}

interface Comparison {
  conversation: string;
  pipecatStopMs: number;
  engineStopMs: number | null;
  pipecatP: number | null;
  engineP: number | null;
  sameWindow: boolean;
  sameOutcome: boolean;
}

/**
 * Both scored the same audio: the same end, and starts that differ only by digital silence (which the
 * features cannot tell from their zero padding).
 */
function sameAudio(pcm: Int16Array, a: Stop, b: Stop): boolean {
  if (a.confirmedAtSamples !== b.confirmedAtSamples || a.scoredFromSamples === undefined || b.scoredFromSamples === undefined) return false;
  const from = Math.min(a.scoredFromSamples, b.scoredFromSamples);
  const to = Math.max(a.scoredFromSamples, b.scoredFromSamples);
  for (let i = Math.max(0, from); i < to; i++) if (pcm[i] !== 0) return false;
  return true;
}

function compare(name: string, engine: PathRun, pipecat: PathRun): Comparison[] {
  const pcm = conversations.find((c) => c.name === name)!.pcm;
  return pipecat.stops.map((stop) => {
    const match = engine.stops.find((s) => Math.abs(s.confirmedAtSamples - stop.confirmedAtSamples) <= VAD_WINDOW_SAMPLES);
    return {
      conversation: name,
      pipecatStopMs: Math.round((stop.confirmedAtSamples * 1000) / SAMPLE_RATE),
      engineStopMs: match ? Math.round((match.confirmedAtSamples * 1000) / SAMPLE_RATE) : null,
      pipecatP: stop.probability ?? null,
      engineP: match?.probability ?? null,
      sameWindow: match !== undefined && sameAudio(pcm, match, stop),
      sameOutcome: match !== undefined && match.complete === stop.complete,
    };
  });
}

const results: Record<string, unknown> = {};
function record(key: string, value: unknown): void {
  results[key] = value;
  const dir = cacheDir('pipecat-reference');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'whole-path.json'), `${JSON.stringify(results, null, 2)}\n`);
}

describe("the whole media path against Pipecat's analyzers", () => {
  it('stops within one VAD window, the same outcome on >= 95 % of them, the same probability where the window is the same', async () => {
    const engineRuns = await runAll();
    const rows: Comparison[] = [];
    const stopCounts: Array<{ conversation: string; engine: number[]; pipecat: number[] }> = [];
    for (const { name } of conversations) {
      const pipecat = referenceRun(reference.conversations.find((c) => c.name === name)!.events);
      const engine = engineRuns.get(name)!;
      rows.push(...compare(name, engine, pipecat));
      stopCounts.push({ conversation: name, engine: engine.stops.map((s) => (s.confirmedAtSamples * 1000) / SAMPLE_RATE), pipecat: pipecat.stops.map((s) => (s.confirmedAtSamples * 1000) / SAMPLE_RATE) });
    }
    console.table(rows);
    console.log(JSON.stringify(stopCounts));
    // Every engine stop is one of Pipecat's too (no extra stops either way).
    for (const c of stopCounts) expect(c.engine.length, `${c.conversation}: engine stops vs Pipecat stops`).toBe(c.pipecat.length);
    const matched = rows.filter((r) => r.engineStopMs !== null);
    const sameOutcome = rows.filter((r) => r.sameOutcome).length;
    const sameWindow = rows.filter((r) => r.sameWindow && r.pipecatP !== null && r.engineP !== null);
    const maxProbabilityDiff = Math.max(0, ...sameWindow.map((r) => Math.abs(r.engineP! - r.pipecatP!)));
    const summary = { stops: rows.length, matchedWithinOneWindow: matched.length, sameOutcome, sameWindow: sameWindow.length, maxProbabilityDiffSameWindow: maxProbabilityDiff };
    console.log('whole path vs Pipecat:', summary);
    record('pipecatVad', { summary, rows });

    expect(rows.length).toBeGreaterThanOrEqual(15);
    expect(matched.length).toBe(rows.length);
    expect(sameOutcome / rows.length).toBeGreaterThanOrEqual(0.95);
    // The comparison of probabilities must cover most stops, or it proves little.
    expect(sameWindow.length).toBeGreaterThanOrEqual(rows.length * 0.8);
    for (const row of sameWindow) expect(Math.abs(row.engineP! - row.pipecatP!), `${row.conversation} at ${row.pipecatStopMs} ms`).toBeLessThan(1e-3);
    // Both outcomes occur, so agreement is not the trivial kind.
    expect(rows.some((r) => r.sameOutcome && r.pipecatP !== null && r.pipecatP > 0.5)).toBe(true);
    expect(rows.some((r) => r.sameOutcome && r.pipecatP !== null && r.pipecatP <= 0.5)).toBe(true);

    // The silence rule: the engine counts 3 s from the end of speech, Pipecat from the VAD stop.
    const silence = conversations.map(({ name }) => {
      const pipecat = referenceRun(reference.conversations.find((c) => c.name === name)!.events).completions.filter((c) => c.rule === 'silence');
      const engine = engineRuns.get(name)!.completions.filter((c) => c.rule === 'silence');
      return { conversation: name, pipecatMs: pipecat.map((c) => (c.atSamples * 1000) / SAMPLE_RATE), engineMs: engine.map((c) => (c.atSamples * 1000) / SAMPLE_RATE) };
    });
    console.table(silence);
    record('silenceRule', silence);
  }, 180_000);

  // The engine's own defaults that differ from Pipecat's on purpose, one at a time.
  const serverDefault = (name: string) => SETTINGS.find((s) => s.name === name)!.default!;
  const variants = [
    { setting: 'VAD_STOP_THRESHOLD', changes: { vad: { exitConfidence: Number(serverDefault('VAD_STOP_THRESHOLD')) } } },
    { setting: 'ENGINE_VAD_SKIP_DIGITAL_SILENCE', changes: { vadSkipDigitalSilence: serverDefault('ENGINE_VAD_SKIP_DIGITAL_SILENCE') === 'true' } },
  ];
  for (const { setting, changes } of variants) {
    it(`shows what the server's ${setting}=${serverDefault(setting)} changes`, async () => {
      const engineRuns = await runAll(changes);
      const rows: Comparison[] = [];
      let engineStops = 0;
      for (const { name } of conversations) {
        const pipecat = referenceRun(reference.conversations.find((c) => c.name === name)!.events);
        engineStops += engineRuns.get(name)!.stops.length;
        rows.push(...compare(name, engineRuns.get(name)!, pipecat));
      }
      const summary = {
        pipecatStops: rows.length,
        engineStops,
        matchedWithinOneWindow: rows.filter((r) => r.engineStopMs !== null).length,
        sameOutcome: rows.filter((r) => r.sameOutcome).length,
        sameWindow: rows.filter((r) => r.sameWindow).length,
      };
      console.log(`with ${setting}=${serverDefault(setting)}:`, summary);
      console.table(rows.filter((r) => !r.sameWindow));
      record(setting, { summary, rows });
      expect(engineStops).toBeGreaterThan(0);
    }, 180_000);
  }
});
