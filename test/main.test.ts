/**
 * `npm start` end to end, as a newcomer runs it: `node server/main.ts` with no LIVEKIT_URL, no
 * MONGODB_URI and no provider keys. It must start its own LiveKit server on loopback, the embedded
 * store and the offline stand-ins, say so, take a call created through the API, answer a caller
 * (a real rtc-node participant) with audible speech, and exit cleanly on SIGTERM.
 */
import { AudioFrame, AudioSource, AudioStream, LocalAudioTrack, Room, RoomEvent, TrackKind, TrackPublishOptions, TrackSource, dispose } from '@livekit/rtc-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silence, synthesizeSpeech } from '../engine/providers/local/speech.ts';
import { concatPcm, rms } from '../engine/pcm.ts';
import { waitFor } from './support/caller.ts';
import { startEngineProcess, type EngineProcess } from './support/engine-process.ts';
import { tcpAccepts } from './support/process.ts';

const SAMPLE_RATE = 48_000;
const FRAME_SAMPLES = 480;

let engine: EngineProcess;
let baseUrl: string;
const room = new Room();
const api = (path: string, init?: RequestInit & { json?: unknown }) => engine.api(path, init);

beforeAll(async () => {
  engine = await startEngineProcess();
  baseUrl = engine.baseUrl;
}, 150_000);

afterAll(async () => {
  await room.disconnect().catch(() => {});
  await dispose();
  await engine?.kill();
});

describe('npm start with embedded defaults', () => {
  let livekitUrl = '';

  it('says what runs where, and reports the stand-ins in the API', async () => {
    const output = engine.output();
    expect(output).toContain(`HTTP API     ${baseUrl}`);
    expect(output).toMatch(/Live page\s+http:\/\/127\.0\.0\.1:\d+\/console\//);
    expect(output).toMatch(/LiveKit\s+ws:\/\/127\.0\.0\.1:\d+\s+local server on loopback/);
    expect(output).toContain(`embedded SQLite in ${engine.dataDir}`);
    expect(output.match(/OFFLINE STAND-IN/g)).toHaveLength(3);

    const ready = await fetch(`${baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    const info = (await (await api('/v1/engine')).json()) as Record<string, any>;
    expect(info.offlineStandIns).toBe(true);
    expect(info.runtime.livekit.local).toBe(true);
    for (const role of ['stt', 'llm', 'tts']) {
      expect(info.runtime.providers[role].kind).toBe('stand-in');
      expect(info.runtime.providers[role].url).toMatch(/^(ws|http):\/\/127\.0\.0\.1:\d+/);
    }
    livekitUrl = info.runtime.livekit.url;
    // The measured load, as admission uses it and LiveKit would be told, and the same figure on /metrics.
    expect(info.load).toMatchObject({ full: false, calls: 0, load: 0, turnDecisionTargetMs: 300 });
    expect(info.capacity.acceptingCalls).toBe(true);
    const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^ve_engine_load ${info.load.load}$`, 'm'));
    expect(metrics).toMatch(/^ve_engine_load_full 0$/m);
  });

  it('answers a caller who joins a call created through the API', async () => {
    const created = await api('/v1/calls', { method: 'POST', json: { callerIdentity: 'newcomer' } });
    expect(created.status).toBe(201);
    const call = (await created.json()) as { callId: string; livekitUrl: string; callerToken: string };
    expect(call.livekitUrl).toBe(livekitUrl);

    const received: Array<{ at: number; rms: number }> = [];
    room.on(RoomEvent.TrackSubscribed, (track) => {
      if (track.kind !== TrackKind.KIND_AUDIO) return;
      const reader = new AudioStream(track, { sampleRate: SAMPLE_RATE, numChannels: 1 }).getReader();
      void (async () => {
        for (;;) {
          const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
          if (done || value === undefined) return;
          received.push({ at: performance.now(), rms: rms(value.data) });
        }
      })();
    });
    await room.connect(call.livekitUrl, call.callerToken, { autoSubscribe: true, dynacast: false });
    const source = new AudioSource(SAMPLE_RATE, 1, 200);
    const track = LocalAudioTrack.createAudioTrack('microphone', source);
    const options = new TrackPublishOptions();
    options.source = TrackSource.SOURCE_MICROPHONE;
    await room.localParticipant!.publishTrack(track, options);

    // A sentence, then silence long enough for the VAD stop, Smart Turn and the reply.
    const speech = await synthesizeSpeech('Hello, my truck is at the north gate and I need the dock number.', SAMPLE_RATE);
    const pcm = concatPcm([silence(500, SAMPLE_RATE), speech, silence(6000, SAMPLE_RATE)]);
    const spokeAt = performance.now();
    const speechEndAt = spokeAt + ((500 + (speech.length * 1000) / SAMPLE_RATE) | 0);
    for (let offset = 0; offset < pcm.length; offset += FRAME_SAMPLES) {
      const frame = new Int16Array(FRAME_SAMPLES);
      frame.set(pcm.subarray(offset, offset + FRAME_SAMPLES));
      await source.captureFrame(new AudioFrame(frame, SAMPLE_RATE, 1, FRAME_SAMPLES));
      if (received.filter((f) => f.at > speechEndAt && f.rms > 300).length >= 50) break;
    }
    // At least half a second of audible bot speech after the caller stopped.
    await waitFor('the bot to answer audibly', () => received.filter((f) => f.at > speechEndAt && f.rms > 300).length >= 50, 20_000);

    // The stand-ins' words reach the call's transcript through the outbox.
    let resolved: { caller: { text: string }; bot: { text: string } } | null = null;
    for (const deadline = performance.now() + 20_000; resolved === null && performance.now() < deadline; ) {
      const detail = (await (await api(`/v1/calls/${call.callId}`)).json()) as { transcript: Array<{ speaker: string; text: string }> };
      const caller = detail.transcript.find((s) => s.speaker === 'caller');
      const bot = detail.transcript.find((s) => s.speaker === 'bot');
      if (caller && bot) resolved = { caller, bot };
      else await new Promise((r) => setTimeout(r, 200));
    }
    if (resolved === null) throw new Error('the transcript never held both sides');
    expect(resolved.caller.text).toMatch(/^\[offline stand-in\] utterance 1 \(\d+\.\d s\)$/);
    expect(resolved.bot.text).toMatch(/^Offline stand-in\. You spoke for [\d.]+ seconds\.$/);

    await track.close();
    await source.close();
  }, 90_000);

  it('closes everything and exits 0 on SIGTERM', async () => {
    const livekitPort = Number(new URL(livekitUrl).port);
    expect(await tcpAccepts(livekitPort)).toBe(true);
    engine.child.kill('SIGTERM');
    const exit = await engine.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    const output = engine.output();
    expect(output).toMatch(/SIGTERM: closing app, engine, media, stand-ins, outbox, store, local LiveKit/);
    expect(output).toContain('stopped');
    // The local LiveKit server went with it.
    expect(await tcpAccepts(livekitPort)).toBe(false);
  }, 40_000);
});
