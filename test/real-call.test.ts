/**
 * The product end to end, as a dispatch system and a caller use it: `startServer` (what `npm start`
 * runs) with the real VoiceEngine on the real models and the real LiveKit server, driven through the
 * HTTP API; the caller is an rtc-node participant that joins with the token `POST /v1/calls` returns.
 * What the API then reports (transcript, latencies, recording, /metrics) must be what really happened.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import type { DeepgramConnectionRecord } from '../engine/providers/local/deepgram-server.ts';
import { findSpeechBounds, synthesizeSpeech } from './support/speech.ts';
import { waitFor, type TestCaller } from './support/caller.ts';
import { eventsOf, startServerHarness, type ServerHarness } from './support/server-harness.ts';
import { activeSpans, readStereoWav } from './support/stereo-wav.ts';

let h: ServerHarness;

beforeAll(async () => {
  h = await startServerHarness();
  // Short replies keep the call short; each names the turn so the transcript shows which is which.
  h.openai.responder = ({ messages }) => ({ text: `Reply number ${messages.filter((m) => m.role === 'user').length}, noted.` });
});

afterAll(async () => {
  await h?.close();
  await dispose();
});

const speech = (text: string) => synthesizeSpeech(text, { sampleRate: 48_000 });

interface CallDetail {
  state: string;
  transcript: Array<{ segmentId: string; speaker: string; text: string; startMs: number; endMs: number; seq: number }>;
  latencies: Array<{ turnId: string; responseMs?: number; stagesMs?: Record<string, number | null> }>;
  recording?: { status: string; location?: string };
}

async function getCall(callId: string): Promise<CallDetail> {
  const res = await h.api(`/v1/calls/${callId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as CallDetail;
}

/** Polls the API until `check` accepts what it read (the outbox writes to the store a moment after the event). */
async function readUntil(callId: string, check: (call: CallDetail) => boolean, timeoutMs = 10_000): Promise<CallDetail> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const call = await getCall(callId);
    if (check(call) || performance.now() > deadline) return call;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Speaks, then waits until the bot has answered with audio and finished its reply. */
async function answeredTurn(caller: TestCaller, callId: string, text: string): Promise<void> {
  const before = eventsOf(h.events, callId, 'transcript', { speaker: 'bot' }).length;
  const spoken = caller.say(speech(text));
  await spoken.done;
  await waitFor(`bot audio on ${callId}`, () => caller.firstAudible(spoken.startedAt), 30_000);
  await waitFor(`bot reply on ${callId}`, () => eventsOf(h.events, callId, 'transcript', { speaker: 'bot' }).length > before, 30_000);
  await waitFor(`${callId} listening`, () => h.server.engine.call(callId)?.botState === 'listening', 30_000);
}

describe('a real call through the API', () => {
  it('is answered, and the API has its transcript, one latency per answered turn and a two-sided recording', async () => {
    const questions = ['Can you send someone to help me at the north gate?', 'Is the dock open tonight?'];
    h.deepgram.setScript(questions);
    const { callId, caller } = await h.placeCall();

    const started = await h.api(`/v1/calls/${callId}/recording/start`, { method: 'POST' });
    expect(started.status).toBe(200);
    for (const question of questions) await answeredTurn(caller, callId, question);
    const stopped = await h.api(`/v1/calls/${callId}/recording/stop`, { method: 'POST' });
    expect(stopped.status).toBe(200);
    const { recording, durationMs } = (await stopped.json()) as { recording: { status: string; location: string }; durationMs: number };
    expect(recording.status).toBe('ended');

    // The engine answered two turns: two latency events, and the store has exactly those two.
    const latencyEvents = eventsOf(h.events, callId, 'latency');
    expect(latencyEvents).toHaveLength(2);
    const detail = await readUntil(callId, (call) => call.transcript.length >= 4 && call.latencies.length >= 2);
    expect(detail.latencies.map((l) => l.turnId)).toEqual(latencyEvents.map((e) => String(e.data.turnId)));
    for (const latency of detail.latencies) {
      expect(latency.responseMs).toBeGreaterThan(0);
      expect(latency.stagesMs?.llmFirstToken).not.toBeNull();
    }
    const lines = [...detail.transcript].sort((a, b) => a.seq - b.seq).map((s) => [s.speaker, s.text]);
    expect(lines).toEqual([
      ['caller', questions[0]],
      ['bot', 'Reply number 1, noted.'],
      ['caller', questions[1]],
      ['bot', 'Reply number 2, noted.'],
    ]);

    // The engine-side recording: a valid stereo WAV, the caller on the left, the bot on the right, taking turns.
    expect(existsSync(recording.location)).toBe(true);
    const wav = readStereoWav(recording.location);
    expect(wav.sampleRate).toBe(16_000);
    expect(Math.abs((wav.left.length * 1000) / wav.sampleRate - durationMs)).toBeLessThan(50);
    const callerSpans = activeSpans(wav.left, wav.sampleRate);
    const botSpans = activeSpans(wav.right, wav.sampleRate);
    expect(callerSpans, 'caller channel').toHaveLength(2);
    expect(botSpans, 'bot channel').toHaveLength(2);
    expect(callerSpans[0].endMs).toBeLessThanOrEqual(botSpans[0].startMs);
    expect(botSpans[0].endMs).toBeLessThanOrEqual(callerSpans[1].startMs);
    expect(callerSpans[1].endMs).toBeLessThanOrEqual(botSpans[1].startMs);

    const ended = await h.api(`/v1/calls/${callId}/end`, { method: 'POST', json: {} });
    expect(ended.status).toBe(200);
  });
});

/** Final transcripts the recogniser stand-in sent on one connection, in order (empty ones carry no words). */
function finalsSent(record: DeepgramConnectionRecord): string[] {
  return record.sentMessages
    .filter((m) => m.type === 'Results' && m.is_final === true)
    .map((m) => (m as unknown as { channel: { alternatives: Array<{ transcript: string }> } }).channel.alternatives[0].transcript)
    .filter((text) => text.trim() !== '');
}

async function callWithConnection(): Promise<{ callId: string; caller: TestCaller; record: DeepgramConnectionRecord }> {
  const before = h.deepgram.connections.length;
  const { callId, caller } = await h.placeCall();
  await waitFor('the call\'s recogniser connection', () => h.deepgram.connections.length > before, 10_000);
  expect(h.deepgram.connections).toHaveLength(before + 1);
  return { callId, caller, record: h.deepgram.connections[before] };
}

describe('a recogniser drop in the middle of one call\'s utterance', () => {
  it('loses no final of that call and repeats none, and leaves the other call\'s socket alone', async () => {
    // Unscripted: each final gets a distinct `utterance N`, so a repeat or a loss shows.
    h.deepgram.setScript([]);
    const a = await callWithConnection();
    const b = await callWithConnection();
    await answeredTurn(a.caller, a.callId, 'Can you hear me now?');

    // Both callers speak; A's socket drops once the stand-in has started answering A's long utterance.
    const long = 'I am at the north gate with a full trailer and nobody is answering the intercom';
    const interimsBefore = a.record.sentMessages.filter((m) => m.type === 'Results' && m.is_final === false).length;
    const connectionsBefore = h.deepgram.connections.length;
    const saidA = a.caller.say(speech(long));
    const saidB = b.caller.say(speech('The yard is full so I am waiting on the road outside the fence'));
    // Interims come every 200 ms of speech: eight of them put the drop about 1.7 s into the 4.3 s utterance.
    await waitFor('1.6 s of interims of the long utterance', () => a.record.sentMessages.filter((m) => m.type === 'Results' && m.is_final === false).length >= interimsBefore + 8, 5000);
    expect(h.deepgram.dropConnection(a.record)).toBe(true);
    await Promise.all([saidA.done, saidB.done]);
    for (const call of [a, b]) {
      await waitFor(`bot reply on ${call.callId}`, () => eventsOf(h.events, call.callId, 'transcript', { speaker: 'bot' }).length >= (call === a ? 2 : 1), 30_000);
      await waitFor(`${call.callId} listening`, () => h.server.engine.call(call.callId)?.botState === 'listening', 30_000);
    }
    await answeredTurn(a.caller, a.callId, 'Is the dock open tonight?');

    // A reconnected once; B's connection never dropped and B saw no recogniser trouble.
    const reconnections = h.deepgram.connections.slice(connectionsBefore);
    expect(reconnections).toHaveLength(1);
    expect(a.record.state).toBe('drop');
    expect(b.record.state).toBe('open');
    expect(eventsOf(h.events, a.callId, 'error', { code: 'VE_STT_RECONNECTED' })).toHaveLength(1);
    expect(eventsOf(h.events, b.callId, 'error')).toEqual([]);

    // Every final the recogniser sent for each call is in the store, once, in order.
    const sentA = [...finalsSent(a.record), ...finalsSent(reconnections[0])];
    const sentB = finalsSent(b.record);
    expect(sentA).toHaveLength(3);
    expect(sentB).toHaveLength(1);
    const callerLines = (call: CallDetail) => call.transcript.filter((t) => t.speaker === 'caller').sort((x, y) => x.seq - y.seq);
    const storedA = callerLines(await readUntil(a.callId, (call) => callerLines(call).length >= sentA.length));
    const storedB = callerLines(await readUntil(b.callId, (call) => callerLines(call).length >= sentB.length));
    expect(storedA.map((t) => t.text)).toEqual(sentA);
    expect(storedB.map((t) => t.text)).toEqual(sentB);

    // No audio was transcribed twice (the segments do not overlap in the call's time), and the cut
    // utterance was transcribed whole: the audio before the drop was replayed to the new connection.
    for (let i = 1; i < storedA.length; i++) expect(storedA[i].startMs).toBeGreaterThanOrEqual(storedA[i - 1].endMs);
    const { startSample, endSample } = findSpeechBounds(synthesizeSpeech(long, { sampleRate: 16_000 }));
    const spokenMs = ((endSample - startSample) * 1000) / 16_000;
    expect(storedA[1].endMs - storedA[1].startMs).toBeGreaterThan(0.8 * spokenMs);

    for (const call of [a, b]) expect((await h.api(`/v1/calls/${call.callId}/end`, { method: 'POST', json: {} })).status).toBe(200);
  });
});

describe('/metrics after real calls', () => {
  it('carries non-zero frame-latency, turn and provider series that agree with the events', async () => {
    const res = await fetch(`${h.server.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const value = (series: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      expect(line, series).toBeDefined();
      return Number(line!.slice(series.length + 1));
    };
    const count = (type: string) => h.events.filter((e) => e.type === type).length;

    // The media path: every caller frame's latency to a VAD decision, and Smart Turn's decisions.
    expect(value('ve_engine_frame_latency_p50_ms')).toBeGreaterThan(0);
    expect(value('ve_engine_frame_latency_p99_ms')).toBeGreaterThanOrEqual(value('ve_engine_frame_latency_p50_ms'));
    expect(value('ve_engine_smart_turn_requests_total')).toBeGreaterThan(0);
    expect(value('ve_engine_turn_decision_latency_p95_ms')).toBeGreaterThan(0);
    // Turns: one answered turn per latency event, and the events the control plane counted.
    expect(count('latency')).toBeGreaterThanOrEqual(5);
    expect(value('ve_engine_turns_answered_total')).toBe(count('latency'));
    expect(value('ve_engine_events_total{type="latency"}')).toBe(count('latency'));
    expect(value('ve_engine_events_total{type="turn"}')).toBe(count('turn'));
    expect(value('ve_engine_response_latency_p50_ms')).toBeGreaterThan(0);
    // Providers: each one's share of the answered turns, and the recogniser drop above as an error.
    expect(value('ve_engine_llm_first_token_latency_p50_ms')).toBeGreaterThan(0);
    expect(value('ve_engine_tts_first_byte_latency_p50_ms')).toBeGreaterThan(0);
    expect(Number.isFinite(value('ve_engine_stt_final_latency_p50_ms'))).toBe(true);
    expect(value('ve_engine_stt_final_latency_p50_ms')).not.toBe(0);
    expect(value('ve_engine_provider_errors_total')).toBe(count('error'));
    expect(value('ve_engine_provider_errors_total')).toBeGreaterThan(0);
    expect(value('ve_engine_calls_started_total')).toBe(3);
  });
});
