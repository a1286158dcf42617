import { afterEach, describe, expect, it, vi } from 'vitest';
import { ElevenLabsFakeServer } from './local/elevenlabs-server.ts';
import { synthesizeSpeech } from './local/speech.ts';
import { concatPcm, rms } from '../pcm.ts';
import type { VoiceError } from '../errors.ts';
import { ElevenLabsTts, type ElevenLabsTtsOptions } from './elevenlabs-tts.ts';
import type { TtsAudio } from './tts.ts';

/** The machine is shared: give eventual conditions room without asserting on speed. */
const WAIT = { timeout: 10_000 };

let server: ElevenLabsFakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function tts(options: Partial<ElevenLabsTtsOptions> = {}): ElevenLabsTts {
  return new ElevenLabsTts({ apiKey: 'xi-test', voiceId: 'voice-1', baseUrl: server!.baseUrl, ...options });
}

async function collect(stream: AsyncIterable<TtsAudio>): Promise<TtsAudio[]> {
  const out: TtsAudio[] = [];
  for await (const a of stream) out.push(a);
  return out;
}

async function failure(stream: AsyncIterable<TtsAudio>): Promise<VoiceError> {
  try {
    await collect(stream);
  } catch (err) {
    return err as VoiceError;
  }
  throw new Error('expected synthesis to fail');
}

const TEXT = 'Your truck will arrive at noon.';

describe('ElevenLabsTts against the local ElevenLabs server', () => {
  it('streams real speech as PCM at the requested rate, intact across odd chunk boundaries', async () => {
    server = await ElevenLabsFakeServer.start({ apiKey: 'xi-test', chunkDelayMs: 5 });
    const voice = tts({ sampleRate: 16000, modelId: 'eleven_turbo_v2_5' });
    expect(voice.sampleRate).toBe(16000);
    const pieces = await collect(voice.synthesize(TEXT, { signal: new AbortController().signal }));
    expect(pieces.length).toBeGreaterThan(3);
    expect(pieces.every((p) => p.sampleRate === 16000)).toBe(true);
    const pcm = concatPcm(pieces.map((p) => p.pcm));
    expect(rms(pcm)).toBeGreaterThan(500);
    // The fake sends 3201-byte chunks; any byte lost or misaligned would change the samples.
    expect(pcm).toEqual(await synthesizeSpeech(TEXT, 16000));

    const req = server.requests[0];
    expect(req.path).toBe('/v1/text-to-speech/voice-1/stream');
    expect(req.query.output_format).toBe('pcm_16000');
    expect(req.headers['xi-api-key']).toBe('xi-test');
    expect(req.body).toMatchObject({ text: TEXT, model_id: 'eleven_turbo_v2_5' });
  });

  it('defaults to 24 kHz', async () => {
    server = await ElevenLabsFakeServer.start();
    const voice = tts();
    const pieces = await collect(voice.synthesize('Hello.', { signal: new AbortController().signal }));
    expect(voice.sampleRate).toBe(24000);
    expect(server.requests[0].query.output_format).toBe('pcm_24000');
    const pcm = concatPcm(pieces.map((p) => p.pcm));
    // About as long as the same speech at 24 kHz, so the rate is what the header says.
    expect(pcm.length).toBe((await synthesizeSpeech('Hello.', 24000)).length);
  });

  it('turns HTTP 500 into a retryable VE_TTS_FAILED and a bad key into a final one', async () => {
    server = await ElevenLabsFakeServer.start({ apiKey: 'right' });
    server.failNext({ kind: 'status', status: 500 });
    const e500 = await failure(tts({ apiKey: 'right' }).synthesize(TEXT, { signal: new AbortController().signal }));
    expect(e500).toMatchObject({ code: 'VE_TTS_FAILED', retryable: true, upstreamStatus: 500 });
    const e401 = await failure(tts({ apiKey: 'wrong' }).synthesize(TEXT, { signal: new AbortController().signal }));
    expect(e401).toMatchObject({ code: 'VE_TTS_FAILED', retryable: false, upstreamStatus: 401 });
    expect(server.requests).toHaveLength(2);
  });

  it('fails with a retryable VE_TTS_FAILED when the server hangs', async () => {
    server = await ElevenLabsFakeServer.start();
    server.failNext({ kind: 'hang' });
    const err = await failure(tts({ timeoutMs: 150 }).synthesize(TEXT, { signal: new AbortController().signal }));
    expect(err).toMatchObject({ code: 'VE_TTS_FAILED', retryable: true });
  });

  it('stops with VE_PROVIDER_ABORTED when the signal aborts, and the server sees the hang-up', async () => {
    server = await ElevenLabsFakeServer.start({ chunkDelayMs: 20 });
    const ac = new AbortController();
    const seen: TtsAudio[] = [];
    let err: VoiceError | undefined;
    try {
      for await (const a of tts().synthesize(TEXT, { signal: ac.signal })) {
        seen.push(a);
        ac.abort();
      }
    } catch (e) {
      err = e as VoiceError;
    }
    expect(err?.code).toBe('VE_PROVIDER_ABORTED');
    expect(seen).toHaveLength(1);
    await vi.waitFor(() => expect(server!.requests[0].clientAborted).toBe(true), WAIT);
  });

  it('ends the HTTP response when the consumer stops early', async () => {
    server = await ElevenLabsFakeServer.start({ chunkDelayMs: 20 });
    for await (const _ of tts().synthesize(TEXT, { signal: new AbortController().signal })) break;
    await vi.waitFor(() => expect(server!.requests[0].clientAborted).toBe(true), WAIT);
  });
});
