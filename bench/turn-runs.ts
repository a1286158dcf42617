/**
 * How many Smart Turn runs a user turn costs, and which of them could be skipped without changing a
 * decision. Runs the density harness's conversations (bench/density/conversations.ts) through the real
 * media path offline (VAD, hysteresis, turn window, features, model, turn detector; one VAD window at a
 * time, each answer awaited, so the load of the machine cannot change a decision), records every stop
 * with its model answer, and replays candidate skip rules over them:
 *
 * - `short-resume`: a stop after a resumption whose speech (VAD start to VAD stop) lasted less than the
 *   threshold: the earlier "incomplete" would stand;
 * - `no-new-energy`: a stop after a resumption in whose new audio no 20 ms frame is louder than the
 *   threshold (dBFS): nothing new to score.
 *
 * A skip changes a decision when the run it skips said "complete". The same is reported apart for a
 * few probe clips (`--probes`, on by default) that the density conversations lack: a sentence, a pause,
 * then a short final word ("Yes."), the case a short-resumption skip would get wrong. Then the engine runs again with the
 * implemented skip (SMART_TURN_SKIP_RESUMED_SPEECH_UNDER_MS = `--verify`) and its completed turns are
 * compared with the first run's (same rule, decided within one VAD window). Prints tables and writes
 * bench/results/turn-runs.json.
 *
 *   npm run bench -- turn-runs [--conversations 8] [--verify 500] [--out bench/results/turn-runs.json]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MEDIA_OPTIONS, MediaEngine } from '../engine/media-engine.ts';
import type { MediaEvent } from '../engine/call-audio.ts';
import { VAD_WINDOW_SAMPLES } from '../engine/stages/silero-vad.ts';
import { loadConfig } from '../server/config.ts';
import { engineOptions, resolveEngineModels } from '../server/engine-options.ts';
import { buildConversation, CONVERSATION_POOL_SIZE } from './density/conversations.ts';
import { synthesizeConversation } from '../test/support/speech.ts';

const SAMPLE_RATE = 16_000;
const FRAME_SAMPLES = 320; // 20 ms, for the loudness of new audio

const { values } = parseArgs({
  options: {
    conversations: { type: 'string', default: String(CONVERSATION_POOL_SIZE) },
    verify: { type: 'string', default: '500' },
    probes: { type: 'boolean', default: true },
    out: { type: 'string', default: 'bench/results/turn-runs.json' },
  },
});

/** One VAD stop of a conversation and what Smart Turn said about it. */
interface StopRecord {
  conversation: number;
  turnId: number;
  /** The stop ends speech that resumed an open ("incomplete") turn. */
  resumed: boolean;
  /** VAD start to VAD stop of the stretch of speech the stop ends. */
  speechMs: number;
  /** Loudest 20 ms frame (dBFS) between the previous stop and this one; null for a turn's first stop. */
  newAudioPeakDbfs: number | null;
  probability: number | null;
  complete: boolean;
}

function frameDbfs(pcm: Int16Array, from: number, to: number): number {
  let peak = -120;
  for (let start = Math.max(0, from); start + FRAME_SAMPLES <= Math.min(to, pcm.length); start += FRAME_SAMPLES) {
    let sum = 0;
    for (let i = start; i < start + FRAME_SAMPLES; i++) sum += pcm[i] * pcm[i];
    const rms = Math.sqrt(sum / FRAME_SAMPLES) / 32768;
    if (rms > 0) peak = Math.max(peak, 20 * Math.log10(rms));
  }
  return peak;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Feeds one conversation window by window, awaiting each Smart Turn answer, and returns its stops. */
interface Completion {
  rule: string;
  atSamples: number;
}

async function runConversation(engine: MediaEngine, index: number, pcm: Int16Array): Promise<{ stops: StopRecord[]; turns: number; runs: number; completions: Completion[] }> {
  const call = engine.openCall(`turn-runs-${index}`, { inputSampleRate: SAMPLE_RATE });
  const events: MediaEvent[] = [];
  call.onEvent((event) => events.push(event));
  try {
    const windows = Math.floor(pcm.length / VAD_WINDOW_SAMPLES);
    for (let w = 0; w < windows; w++) {
      call.writeCallerAudio(pcm.subarray(w * VAD_WINDOW_SAMPLES, (w + 1) * VAD_WINDOW_SAMPLES));
      await until(() => call.processedSamples >= (w + 1) * VAD_WINDOW_SAMPLES, `window ${w} of conversation ${index}`);
      if (call.turn.awaitingModel) await until(() => !call.turn.awaitingModel, `the Smart Turn answer in conversation ${index}`);
    }
  } finally {
    await call.close();
  }
  const stops: StopRecord[] = [];
  const completions: Completion[] = [];
  let runs = 0;
  let turns = 0;
  let stretchStart = 0;
  let resumed = false;
  let turnId = 0;
  let previousStopEnd: number | null = null;
  for (const event of events) {
    if (event.type === 'user_started_speaking') {
      resumed = event.resumed;
      turnId = event.turnId;
      stretchStart = event.offsetSamples;
      if (!resumed) previousStopEnd = null;
    } else if (event.type === 'speech_end') {
      stops.push({
        conversation: index,
        turnId,
        resumed,
        speechMs: ((event.offsetSamples - stretchStart) * 1000) / SAMPLE_RATE,
        newAudioPeakDbfs: previousStopEnd === null ? null : frameDbfs(pcm, previousStopEnd, event.offsetSamples),
        probability: null,
        complete: false,
      });
      previousStopEnd = event.confirmedAtSamples;
    } else if (event.type === 'smart_turn_result') {
      const stop = stops.at(-1)!;
      stop.probability = event.probability;
      stop.complete = event.complete;
    } else if (event.type === 'user_turn_complete') {
      turns++;
      completions.push({ rule: event.rule, atSamples: event.decidedAtSamples });
    }
    if (event.type === 'smart_turn_result' || event.type === 'smart_turn_error') runs++;
  }
  return { stops, turns, runs, completions };
}

interface RuleOutcome {
  rule: string;
  threshold: number;
  skipped: number;
  /** Skipped runs whose answer was "complete": the turn would have waited for the silence rule instead. */
  decisionsChanged: number;
  runsPerTurn: number;
}

function replay(stops: StopRecord[], turns: number, rule: string, threshold: number, skip: (s: StopRecord) => boolean): RuleOutcome {
  const skipped = stops.filter((s) => s.resumed && skip(s));
  return {
    rule,
    threshold,
    skipped: skipped.length,
    decisionsChanged: skipped.filter((s) => s.complete).length,
    runsPerTurn: (stops.length - skipped.length) / turns,
  };
}

const config = loadConfig({ CI: '1' });
const options = engineOptions(config, await resolveEngineModels(config));
const densityCount = Number(values.conversations);
/** A sentence the model may find unfinished, a pause, then a short word that ends the turn. */
const PROBES: Array<[string, string]> = [
  ['I need a truck at the north gate and', 'Yes.'],
  ['My delivery is for the warehouse on', 'Okay.'],
  ['Can you tell the driver that', 'Thanks.'],
  ['The reference number is four two', 'Done.'],
];
const probeClips = values.probes
  ? PROBES.map(([first, last]) => synthesizeConversation([{ say: first }, { pauseMs: 600 }, { say: last }, { pauseMs: 4000 }], { sampleRate: SAMPLE_RATE }).pcm)
  : [];
const conversations = [...Array.from({ length: densityCount }, (_, i) => buildConversation(i, SAMPLE_RATE).pcm), ...probeClips];

/** Every conversation through one engine whose turn detector has `skipResumedSpeechUnderMs`. */
async function runAll(skipResumedSpeechUnderMs: number) {
  const engine = await MediaEngine.start({
    ...options.media,
    workers: 1,
    turn: { ...options.media.turn, skipResumedSpeechUnderMs },
    // Offline, each answer awaited: the wall-clock deadline has nothing to bound here.
    smartTurn: { ...DEFAULT_MEDIA_OPTIONS.smartTurn, deadlineMs: 60_000 },
    warmUp: { vadRuns: 20, smartTurnRuns: 1 },
  });
  try {
    const runs = [];
    for (const [i, pcm] of conversations.entries()) {
      const run = await runConversation(engine, i, pcm);
      console.error(`skip under ${skipResumedSpeechUnderMs} ms, conversation ${i}: ${run.runs} runs, ${run.turns} turns`);
      runs.push(run);
    }
    return runs;
  } finally {
    await engine.close();
  }
}

const baselineAll = await runAll(0);
const verifyMs = Number(values.verify);
const verifiedAll = await runAll(verifyMs);
const probeRuns = { baseline: baselineAll.slice(densityCount), verified: verifiedAll.slice(densityCount) };
const baseline = baselineAll.slice(0, densityCount);
const verified = verifiedAll.slice(0, densityCount);
const stops = baseline.flatMap((r) => r.stops);
const turns = baseline.reduce((sum, r) => sum + r.turns, 0);
const sameCompletions = (a: Completion[], b: Completion[]) =>
  a.filter((c) => !b.some((d) => d.rule === c.rule && Math.abs(d.atSamples - c.atSamples) <= VAD_WINDOW_SAMPLES)).length;
const verification = {
  skipResumedSpeechUnderMs: verifyMs,
  runsBefore: baseline.reduce((sum, r) => sum + r.runs, 0),
  runsAfter: verified.reduce((sum, r) => sum + r.runs, 0),
  turnsBefore: turns,
  turnsAfter: verified.reduce((sum, r) => sum + r.turns, 0),
  /** Completed turns of either run that the other has not (other rule, or decided elsewhere). */
  decisionsChanged: baseline.reduce((sum, r, i) => sum + sameCompletions(r.completions, verified[i].completions) + sameCompletions(verified[i].completions, r.completions), 0),
};

const outcomes: RuleOutcome[] = [replay(stops, turns, 'none', 0, () => false)];
for (const ms of [32, 100, 200, 300, 500]) outcomes.push(replay(stops, turns, 'short-resume', ms, (s) => s.speechMs < ms));
for (const dbfs of [-60, -50, -40, -30]) outcomes.push(replay(stops, turns, 'no-new-energy', dbfs, (s) => s.newAudioPeakDbfs !== null && s.newAudioPeakDbfs < dbfs));

const resumedStops = stops.filter((s) => s.resumed);
console.log(`\n${stops.length} Smart Turn runs over ${turns} completed turns (${(stops.length / turns).toFixed(2)} runs per turn); ${resumedStops.length} after a resumption`);
console.log(`resumed speech ms: min ${Math.min(...resumedStops.map((s) => s.speechMs)).toFixed(0)}; new-audio peak dBFS: min ${Math.min(...resumedStops.map((s) => s.newAudioPeakDbfs ?? 0)).toFixed(1)}\n`);
console.table(outcomes.map((o) => ({ rule: o.rule, threshold: o.threshold, 'runs skipped': o.skipped, 'runs per turn': o.runsPerTurn.toFixed(2), 'decisions changed': o.decisionsChanged })));

console.log(`\nThe engine with SMART_TURN_SKIP_RESUMED_SPEECH_UNDER_MS=${verifyMs}, against the engine without:`);
console.table([
  {
    'runs before': verification.runsBefore,
    'runs after': verification.runsAfter,
    'runs per turn before': (verification.runsBefore / verification.turnsBefore).toFixed(2),
    'runs per turn after': (verification.runsAfter / verification.turnsAfter).toFixed(2),
    'turn decisions changed': verification.decisionsChanged,
  },
]);

const probeStops = probeRuns.baseline.flatMap((r) => r.stops);
const probes = probeRuns.baseline.map((r, i) => ({
  clip: PROBES[i].join(' … '),
  answers: r.stops.map((s) => ({ resumed: s.resumed, speechMs: Math.round(s.speechMs), probability: s.probability })),
  rulesWithout: r.completions.map((c) => c.rule),
  rulesWith: probeRuns.verified[i].completions.map((c) => c.rule),
  decisionsChanged: sameCompletions(r.completions, probeRuns.verified[i].completions) + sameCompletions(probeRuns.verified[i].completions, r.completions),
}));
if (probes.length > 0) {
  console.log(`\nProbe clips (a short final word after a pause), skip under ${verifyMs} ms: ${probeStops.length} runs without the skip`);
  console.table(probes.map((p) => ({ clip: p.clip, answers: p.answers.map((a) => `${a.speechMs} ms: ${a.probability?.toFixed(2)}`).join(', '), without: p.rulesWithout.join(','), with: p.rulesWith.join(','), 'decisions changed': p.decisionsChanged })));
}

mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(values.out, `${JSON.stringify({ at: new Date().toISOString(), conversations: Number(values.conversations), turns, runs: stops.length, outcomes, verification, probes, stops }, null, 2)}\n`);
console.log(`wrote ${values.out}`);
