import { afterEach, describe, expect, it, vi } from 'vitest';
import type { VoiceError } from '../errors.ts';
import { DeepgramFakeServer } from './local/deepgram-server.ts';
import { silence, synthesizeSpeech } from './local/speech.ts';
import { concatPcm } from '../pcm.ts';
import { DeepgramStt, type DeepgramSttOptions } from './deepgram-stt.ts';
import type { SttEndOfSpeech, SttStream, TranscriptResult } from './stt.ts';

const SAMPLE_RATE = 16000;
const CHUNK = SAMPLE_RATE / 50; // 20 ms

/** The machine is shared: give eventual conditions room without asserting on speed. */
const WAIT = { timeout: 10_000 };

let server: DeepgramFakeServer | undefined;
let stream: SttStream | undefined;
afterEach(async () => {
  await stream?.close();
  await server?.close();
  stream = undefined;
  server = undefined;
});

interface Collected {
  results: TranscriptResult[];
  errors: VoiceError[];
  reconnects: number;
  unavailable: VoiceError[];
  downMs: number[];
  endOfSpeech: SttEndOfSpeech[];
}

function open(options: Partial<DeepgramSttOptions> = {}): Collected {
  const collected: Collected = { results: [], errors: [], reconnects: 0, unavailable: [], downMs: [], endOfSpeech: [] };
  const stt = new DeepgramStt({ apiKey: 'test-key', baseUrl: server!.url, ...options });
  stream = stt.stream({
    sampleRate: SAMPLE_RATE,
    onResult: (r) => collected.results.push(r),
    onEndOfSpeech: (signal) => collected.endOfSpeech.push(signal),
    onError: (e) => collected.errors.push(e),
    onUnavailable: (e) => collected.unavailable.push(e),
    onReconnected: (downMs) => {
      collected.reconnects++;
      collected.downMs.push(downMs);
    },
  });
  return collected;
}

/** Push in 20 ms chunks, yielding to the event loop between chunks like a live source would. */
async function feed(pcm: Int16Array): Promise<void> {
  for (let i = 0; i < pcm.length; i += CHUNK) {
    stream!.pushAudio(pcm.subarray(i, i + CHUNK));
    await new Promise((r) => setImmediate(r));
  }
}

const finals = (c: Collected) => c.results.filter((r) => r.kind === 'final');

async function twoUtterances(): Promise<{ pcm: Int16Array; secondStartMs: number }> {
  const hello = await synthesizeSpeech('hello there', SAMPLE_RATE);
  const truck = await synthesizeSpeech('I need a truck', SAMPLE_RATE);
  const pcm = concatPcm([silence(300, SAMPLE_RATE), hello, silence(800, SAMPLE_RATE), truck, silence(800, SAMPLE_RATE)]);
  return { pcm, secondStartMs: 300 + (hello.length / SAMPLE_RATE) * 1000 + 800 };
}

describe('DeepgramStt against the local Deepgram server', () => {
  it('streams real speech through the SDK and gets interim and final results', async () => {
    server = await DeepgramFakeServer.start({ apiKey: 'test-key' });
    server.setScript(['hello there', 'I need a truck']);
    const c = open();
    const { pcm, secondStartMs } = await twoUtterances();
    await feed(pcm);
    await vi.waitFor(() => expect(finals(c)).toHaveLength(2), WAIT);
    await stream!.close();

    expect(finals(c).map((r) => r.text)).toEqual(['hello there', 'I need a truck']);
    expect(finals(c).every((r) => r.speechFinal)).toBe(true);
    expect(c.results.some((r) => r.kind === 'interim' && r.text.length > 0)).toBe(true);
    const [first, second] = finals(c);
    expect(first.startMs).toBeGreaterThanOrEqual(280);
    expect(first.endMs).toBeGreaterThan(first.startMs);
    expect(second.startMs).toBeGreaterThan(first.endMs);
    // espeak pads a little silence, so speech starts just after the computed boundary.
    expect(second.startMs).toBeGreaterThanOrEqual(secondStartMs - 20);
    expect(second.startMs).toBeLessThan(secondStartMs + 300);
    expect(c.errors).toEqual([]);

    const conn = server.connections[0];
    expect(conn.headers.authorization).toBe('Token test-key');
    expect(conn.query).toMatchObject({ encoding: 'linear16', sample_rate: '16000', interim_results: 'true', punctuate: 'true', endpointing: '300', model: 'nova-3' });
    expect(conn.audioBytes).toBe(pcm.length * 2);
    expect(conn.controlMessages.at(-1)).toEqual({ type: 'CloseStream' });
    expect(conn.state).toBe('server');
  });

  it('survives a dropped socket: reconnects, replays unsettled audio and keeps call-relative times', async () => {
    server = await DeepgramFakeServer.start();
    server.setScript(['hello there', 'I need a truck']);
    const { pcm, secondStartMs } = await twoUtterances();
    // Drop in the middle of the second utterance, before its final.
    server.failNext({ kind: 'drop', afterAudioMs: secondStartMs + 300 });
    const c = open({ reconnect: { initialDelayMs: 20 } });
    await feed(pcm);
    await vi.waitFor(() => expect(finals(c)).toHaveLength(2), WAIT);
    await stream!.close();

    expect(c.reconnects).toBe(1);
    expect(server.connections).toHaveLength(2);
    expect(server.connections[0].state).toBe('drop');
    expect(finals(c).map((r) => r.text)).toEqual(['hello there', 'I need a truck']);
    const [first, second] = finals(c);
    expect(second.startMs).toBeGreaterThan(first.endMs);
    expect(second.startMs).toBeGreaterThanOrEqual(secondStartMs - 20);
    expect(second.startMs).toBeLessThan(secondStartMs + 300);
    // The replay starts after the first final: the second connection never hears "hello there".
    const replayedMs = (server.connections[1].audioBytes / 2 / SAMPLE_RATE) * 1000;
    expect(replayedMs).toBeLessThan((pcm.length / SAMPLE_RATE) * 1000 - first.endMs);
    expect(c.errors).toEqual([]);
  });

  it('rides out an outage longer than the old reconnect budget, says so, and recovers what was said meanwhile', async () => {
    server = await DeepgramFakeServer.start();
    server.setScript(['hello there', 'I need a truck', 'thank you']);
    // Short backoff keeps the test quick; with the old budget of 5 attempts this gave up within about 1.5 s.
    const c = open({ reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
    const [hello, truck, thanks] = await Promise.all(['hello there', 'I need a truck', 'thank you'].map((t) => synthesizeSpeech(t, SAMPLE_RATE)));
    await feed(concatPcm([silence(300, SAMPLE_RATE), hello, silence(800, SAMPLE_RATE)]));
    await vi.waitFor(() => expect(finals(c)).toHaveLength(1), WAIT);

    const OUTAGE_MS = 10_000;
    server.setDown(true);
    const downAt = Date.now();
    const attemptsBefore = server.upgradeAttempts;
    // Said while the recogniser is gone: buffered, and replayed once it is back.
    await feed(concatPcm([silence(200, SAMPLE_RATE), truck, silence(800, SAMPLE_RATE)]));
    await vi.waitFor(() => expect(c.unavailable).toHaveLength(1), WAIT);
    expect(c.unavailable[0]).toMatchObject({ code: 'VE_STT_UNAVAILABLE', retryable: true });
    await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - downAt)));
    expect(c.errors).toEqual([]);
    const attempts = server.upgradeAttempts - attemptsBefore;
    // More than the old budget, and no tight loop: the delay grows to its 500 ms cap (250-500 ms with jitter).
    expect(attempts).toBeGreaterThan(5);
    expect(attempts).toBeLessThanOrEqual(OUTAGE_MS / 250 + 5);

    server.setDown(false);
    await vi.waitFor(() => expect(c.reconnects).toBe(1), WAIT);
    expect(c.downMs[0]).toBeGreaterThanOrEqual(OUTAGE_MS);
    expect(c.unavailable).toHaveLength(1);
    await vi.waitFor(() => expect(finals(c)).toHaveLength(2), WAIT);
    expect(finals(c)[1].text).toBe('I need a truck');
    // Call-relative: the replayed words sit after the first final, where they were said.
    expect(finals(c)[1].startMs).toBeGreaterThan(finals(c)[0].endMs);
    await feed(concatPcm([thanks, silence(800, SAMPLE_RATE)]));
    await vi.waitFor(() => expect(finals(c)).toHaveLength(3), WAIT);
    expect(finals(c).map((r) => r.text)).toEqual(['hello there', 'I need a truck', 'thank you']);
    expect(c.errors).toEqual([]);
  }, 30_000);

  it('gives up with VE_STT_DISCONNECTED when the outage outlasts the stream limit', async () => {
    server = await DeepgramFakeServer.start();
    server.setDown(true);
    const started = Date.now();
    const c: Collected = { results: [], errors: [], reconnects: 0, unavailable: [], downMs: [], endOfSpeech: [] };
    stream = new DeepgramStt({ apiKey: 'k', baseUrl: server.url, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }).stream({
      sampleRate: SAMPLE_RATE,
      maxOutageMs: 1500,
      onResult: () => {},
      onUnavailable: (e) => c.unavailable.push(e),
      onError: (e) => c.errors.push(e),
    });
    await vi.waitFor(() => expect(c.errors).toHaveLength(1), WAIT);
    expect(c.errors[0].code).toBe('VE_STT_DISCONNECTED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(Date.now() - started).toBeLessThan(1500 + 1000);
    const attempts = server.upgradeAttempts;
    await new Promise((r) => setTimeout(r, 500));
    expect(server.upgradeAttempts).toBe(attempts);
  });

  it('tells the recogniser\'s end-of-speech signals: speech_final after each utterance, UtteranceEnd after the gap', async () => {
    server = await DeepgramFakeServer.start();
    server.setScript(['hello there', 'I need a truck']);
    const c = open({ utteranceEndMs: 600 });
    const { pcm } = await twoUtterances();
    await feed(pcm);
    await vi.waitFor(() => expect(c.endOfSpeech.filter((s) => s.kind === 'utterance_end')).toHaveLength(2), WAIT);
    expect(server.connections[0].query).toMatchObject({ utterance_end_ms: '600', interim_results: 'true' });
    const [first, second] = finals(c);
    // Each signal is about the words just finalised: it ends where they end, in call time.
    expect(c.endOfSpeech).toEqual([
      { kind: 'speech_final', lastWordEndMs: first.endMs },
      { kind: 'utterance_end', lastWordEndMs: expect.closeTo(first.endMs, 0) },
      { kind: 'speech_final', lastWordEndMs: second.endMs },
      { kind: 'utterance_end', lastWordEndMs: expect.closeTo(second.endMs, 0) },
    ]);
  });

  it('flushes the open segment on finalize()', async () => {
    server = await DeepgramFakeServer.start();
    const c = open({ endpointingMs: false });
    await feed(await synthesizeSpeech('one moment please', SAMPLE_RATE));
    expect(finals(c)).toHaveLength(0);
    stream!.finalize();
    await vi.waitFor(() => expect(finals(c)).toHaveLength(1), WAIT);
    expect(finals(c)[0]).toMatchObject({ text: 'utterance 1', speechFinal: true });
    // The flush was the engine's request, not the recogniser's judgement that the speaker stopped.
    expect(c.endOfSpeech).toEqual([]);
    expect(server.connections[0].query.endpointing).toBe('false');
    expect(server.connections[0].controlMessages).toContainEqual({ type: 'Finalize' });
  });

  it('sends KeepAlive while no audio flows', async () => {
    server = await DeepgramFakeServer.start({ idleTimeoutMs: 1000 });
    open({ keepAliveIntervalMs: 100, language: 'en-GB' });
    await vi.waitFor(() =>
      expect(server!.connections[0]?.controlMessages.filter((m) => m.type === 'KeepAlive').length).toBeGreaterThanOrEqual(2),
      WAIT,
    );
    expect(server.connections[0].state).toBe('open');
    expect(server.connections[0].query.language).toBe('en-GB');
  });

  it('reports VE_STT_DISCONNECTED once the reconnection budget is spent', async () => {
    server = await DeepgramFakeServer.start();
    server.failNext({ kind: 'reject', status: 503 }, 10);
    const c = open({ reconnect: { maxAttempts: 2, initialDelayMs: 10 } });
    stream!.pushAudio(silence(20, SAMPLE_RATE));
    await vi.waitFor(() => expect(c.errors).toHaveLength(1), WAIT);
    expect(c.errors[0].code).toBe('VE_STT_DISCONNECTED');
    expect(c.errors[0].retryable).toBe(true);
    expect(server.upgradeAttempts).toBe(3);
    await stream!.close(); // idempotent after failure
  });

  it('gives up on a server that accepts and drops every connection at once', async () => {
    server = await DeepgramFakeServer.start();
    server.failNext({ kind: 'drop', afterMs: 0 }, 10);
    const c = open({ reconnect: { maxAttempts: 2, initialDelayMs: 10 } });
    await vi.waitFor(() => expect(c.errors).toHaveLength(1), WAIT);
    expect(c.errors[0].code).toBe('VE_STT_DISCONNECTED');
    expect(server.connections).toHaveLength(3);
  });

  it('keeps working when a result listener throws', async () => {
    server = await DeepgramFakeServer.start();
    let calls = 0;
    const stt = new DeepgramStt({ apiKey: 'k', baseUrl: server.url });
    stream = stt.stream({
      sampleRate: SAMPLE_RATE,
      onResult: (r) => {
        if (r.kind === 'final') calls++;
        throw new Error('listener bug');
      },
      onError: () => {},
    });
    const { pcm } = await twoUtterances();
    await feed(pcm);
    await vi.waitFor(() => expect(calls).toBe(2), WAIT);
  });
});
