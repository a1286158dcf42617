import { afterEach, describe, expect, it } from 'vitest';
import { ElevenLabsFakeServer } from './elevenlabs-server.ts';
import { synthesizeSpeech } from './speech.ts';

let server: ElevenLabsFakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const post = (path: string, body: object, headers: Record<string, string> = {}) =>
  fetch(`${server!.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'xi-api-key': 'k', ...headers },
    body: JSON.stringify(body),
  });

describe('ElevenLabsFakeServer', () => {
  it('returns the whole PCM on the non-streaming path', async () => {
    server = await ElevenLabsFakeServer.start({ apiKey: 'k' });
    const res = await post('/v1/text-to-speech/v1?output_format=pcm_22050', { text: 'Good morning.', model_id: 'm' });
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const expected = await synthesizeSpeech('Good morning.', 22050);
    expect(bytes.length).toBe(expected.byteLength);
    expect(server.requests[0]).toMatchObject({ voiceId: 'v1', streaming: false, bytesSent: expected.byteLength });
  });

  it('validates the key, the text and the output format like the real API', async () => {
    server = await ElevenLabsFakeServer.start({ apiKey: 'k' });
    expect((await post('/v1/text-to-speech/v/stream?output_format=pcm_16000', { text: 'x' }, { 'xi-api-key': 'bad' })).status).toBe(401);
    expect((await post('/v1/text-to-speech/v/stream?output_format=pcm_16000', {})).status).toBe(422);
    expect((await post('/v1/text-to-speech/v/stream', { text: 'x' })).status).toBe(400); // default mp3
    expect((await post('/v1/voices', { text: 'x' })).status).toBe(404);
  });

  it('drops the connection after the configured number of chunks', async () => {
    server = await ElevenLabsFakeServer.start({ chunkDelayMs: 5, chunkBytes: 1000 });
    server.failNext({ kind: 'drop', afterChunks: 2 });
    const res = await post('/v1/text-to-speech/v/stream?output_format=pcm_16000', { text: 'A longer sentence to speak.' });
    await expect(res.arrayBuffer()).rejects.toThrow();
    expect(server.requests[0].bytesSent).toBe(2000);
  });
});
