/**
 * The engine's own share of the response latency: a caller on a real loopback LiveKit server asks
 * questions; the providers (local wire-protocol servers through the official SDKs) answer at once; we
 * measure from the moment the caller stops speaking to the bot's first audio, on the engine's side (the
 * `latency` event: first frame handed to LiveKit) and on the caller's side (first audible frame
 * received), with the stages and Smart Turn reported separately. `--turns N --backends wasm,native`.
 * The engine is the product's (the voice harness builds it through server/engine-options.ts from the
 * configuration's defaults); `--backends` overrides VAD_BACKEND and SMART_TURN_BACKEND, to compare them.
 */
import type { LatencyStagesMs } from '../engine/events.ts';
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { execSync } from 'node:child_process';
import { dispose } from '@livekit/rtc-node';
import { startLiveKitServer } from '../test/support/livekit-server.ts';
import { startVoiceHarness, eventsOf } from '../test/support/voice-harness.ts';
import { synthesizeSpeech } from '../test/support/speech.ts';
import { waitFor } from '../test/support/caller.ts';

const { values } = parseArgs({ options: { turns: { type: 'string', default: '8' }, backends: { type: 'string', default: 'wasm,native' } } });
const turns = Number(values.turns);
const questions = ['Can you send someone to help?', 'Where do I unload the trailer?', 'Is the dock open tonight?', 'Can you hear me now?'];

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function summary(values: number[]): { p50: number; p95: number; mean: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), mean: values.reduce((a, b) => a + b, 0) / Math.max(1, values.length) };
}

const livekit = await startLiveKitServer();
const rows: Array<Record<string, unknown>> = [];
try {
  for (const backend of values.backends.split(',') as Array<'wasm' | 'native'>) {
    const harness = await startVoiceHarness({ livekit, backend });
    try {
      const callId = `latency-${backend}`;
      const caller = await harness.placeCall(callId);
      const callerSide: number[] = [];
      for (let i = 0; i < turns; i++) {
        const pcm = synthesizeSpeech(questions[i % questions.length], { sampleRate: 48_000 });
        const before = eventsOf(harness.events, callId, 'latency').length;
        const spoken = caller.say(pcm);
        await spoken.done;
        // The caller's last speech frame left its queue (200 ms deep) about now.
        const stoppedAt = performance.now();
        await waitFor('latency event', () => eventsOf(harness.events, callId, 'latency').length > before, 30_000);
        const heard = await waitFor('bot audio', () => caller.firstAudible(stoppedAt), 30_000);
        callerSide.push(heard - stoppedAt);
        await waitFor('bot done', () => harness.engine.call(callId)?.botState === 'listening', 60_000);
        await new Promise((r) => setTimeout(r, 500));
      }
      const latencies = eventsOf(harness.events, callId, 'latency').map((e) => e.data);
      const media = harness.media.metrics();
      const present = (values: Array<number | null>) => values.filter((v): v is number => v !== null);
      const stage = (name: keyof LatencyStagesMs) => summary(present(latencies.map((l) => l.stagesMs[name])));
      rows.push({
        backend,
        turns: latencies.length,
        'engine response p50 ms': Math.round(summary(present(latencies.map((l) => l.responseMs))).p50),
        'engine response p95 ms': Math.round(summary(present(latencies.map((l) => l.responseMs))).p95),
        'caller-side p50 ms': Math.round(summary(callerSide).p50),
        'end of utterance p50 ms': Math.round(stage('endOfUtterance').p50),
        'smart turn p50 ms': Math.round(media.stopToTurnDecisionMs.p50),
        'smart turn p95 ms': Math.round(media.stopToTurnDecisionMs.p95),
        'stt final p50 ms': Math.round(stage('sttFinal').p50),
        'llm first token p50 ms': Math.round(stage('llmFirstToken').p50),
        'tts first byte p50 ms': Math.round(stage('ttsFirstByte').p50),
        'turns decided by model': latencies.filter((l) => l.smartTurn.rule === 'model').length,
      });
    } finally {
      await harness.close();
    }
  }
} finally {
  await livekit.stop();
  await dispose();
}

console.table(rows);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const commit = execSync('git rev-parse --short HEAD').toString().trim();
writeFileSync(
  new URL('./results/response-latency.json', import.meta.url),
  JSON.stringify({ date: new Date().toISOString(), commit, machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30) }, node: process.version, rows }, null, 2),
);
