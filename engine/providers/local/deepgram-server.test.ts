import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, type WsSocket } from './ws.ts';
import { DeepgramFakeServer } from './deepgram-server.ts';
import { silence, synthesizeSpeech } from './speech.ts';
import { concatPcm } from '../../pcm.ts';

type Msg = { type: string; [k: string]: any };

const SAMPLE_RATE = 16000;
let server: DeepgramFakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function open(url: string, headers: Record<string, string> = {}): Promise<{ ws: WsSocket; messages: Msg[]; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const messages: Msg[] = [];
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    ws.on('open', () => resolve({ ws, messages, closed }));
    ws.on('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

function sendIn20msChunks(ws: WsSocket, pcm: Int16Array): void {
  const chunk = SAMPLE_RATE / 50;
  for (let i = 0; i < pcm.length; i += chunk) {
    const part = pcm.slice(i, i + chunk);
    ws.send(Buffer.from(part.buffer));
  }
}

async function conversation(): Promise<Int16Array> {
  return concatPcm([
    silence(300, SAMPLE_RATE),
    await synthesizeSpeech('hello there', SAMPLE_RATE),
    silence(700, SAMPLE_RATE),
    await synthesizeSpeech('I need a truck', SAMPLE_RATE),
    silence(700, SAMPLE_RATE),
  ]);
}

describe('DeepgramFakeServer', () => {
  it('segments real speech into interim and final Results with the scripted text', async () => {
    server = await DeepgramFakeServer.start({ apiKey: 'k' });
    server.setScript(['hello there', 'I need a truck']);
    const { ws, messages, closed } = await open(
      `${server.url}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true&vad_events=true&endpointing=300`,
      { Authorization: 'Token k' },
    );
    sendIn20msChunks(ws, await conversation());
    ws.send(JSON.stringify({ type: 'CloseStream' }));
    expect(await closed).toBe(1000);

    expect(messages[0].type).toBe('Metadata');
    expect(messages.at(-1)!.type).toBe('Metadata');
    const results = messages.filter((m) => m.type === 'Results');
    const finals = results.filter((m) => m.is_final && m.channel.alternatives[0].transcript !== '');
    expect(finals.map((m) => m.channel.alternatives[0].transcript)).toEqual(['hello there', 'I need a truck']);
    expect(finals.every((m) => m.speech_final === true)).toBe(true);
    expect(results.some((m) => !m.is_final && m.channel.alternatives[0].transcript.length > 0)).toBe(true);
    expect(messages.filter((m) => m.type === 'SpeechStarted')).toHaveLength(2);
    // Speech starts after the 300 ms of leading silence; the second segment after the first.
    const firstWords = finals[0].channel.alternatives[0].words;
    expect(firstWords[0].start).toBeGreaterThanOrEqual(0.28);
    expect(finals[1].channel.alternatives[0].words[0].start).toBeGreaterThan(firstWords.at(-1).end);
    // Final windows tile the audio.
    expect(finals[1].start).toBeCloseTo(finals[0].start + finals[0].duration, 5);
    expect(server.connections[0].query.sample_rate).toBe('16000');
    expect(server.connections[0].controlMessages).toEqual([{ type: 'CloseStream' }]);
  });

  it('sends scripted interim guesses that revise, not only extend, before the final', async () => {
    server = await DeepgramFakeServer.start({ interim: ({ count, text }) => (count === 1 ? 'I need a duck' : text) });
    server.setScript(['I need a truck']);
    const { ws, messages, closed } = await open(`${server.url}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300`);
    sendIn20msChunks(ws, concatPcm([await synthesizeSpeech('I need a truck', SAMPLE_RATE), silence(700, SAMPLE_RATE)]));
    ws.send(JSON.stringify({ type: 'CloseStream' }));
    await closed;
    const texts = messages.filter((m) => m.type === 'Results' && m.channel.alternatives[0].transcript !== '').map((m) => [m.is_final, m.channel.alternatives[0].transcript]);
    expect(texts[0]).toEqual([false, 'I need a duck']);
    expect(texts.at(-1)).toEqual([true, 'I need a truck']);
  });

  it('answers Finalize with a from_finalize final for the open segment', async () => {
    server = await DeepgramFakeServer.start();
    const { ws, messages, closed } = await open(`${server.url}/v1/listen?encoding=linear16&sample_rate=16000&endpointing=false`);
    sendIn20msChunks(ws, await synthesizeSpeech('just one thing', SAMPLE_RATE));
    ws.send(JSON.stringify({ type: 'KeepAlive' }));
    ws.send(JSON.stringify({ type: 'Finalize' }));
    ws.send(JSON.stringify({ type: 'CloseStream' }));
    await closed;
    const finals = messages.filter((m) => m.type === 'Results' && m.is_final);
    expect(finals[0]).toMatchObject({ from_finalize: true, channel: { alternatives: [{ transcript: 'utterance 1' }] } });
    expect(server.connections[0].controlMessages.map((m) => m.type)).toEqual(['KeepAlive', 'Finalize', 'CloseStream']);
  });

  it('refuses a wrong key with 401 and injected failures with their status', async () => {
    server = await DeepgramFakeServer.start({ apiKey: 'right' });
    await expect(open(`${server.url}/v1/listen`, { Authorization: 'Token wrong' })).rejects.toThrow('status 401');
    server.failNext({ kind: 'reject', status: 503 });
    await expect(open(`${server.url}/v1/listen`, { Authorization: 'Token right' })).rejects.toThrow('status 503');
    expect(server.upgradeAttempts).toBe(2);
  });

  it('drops the socket without a close frame after the configured audio', async () => {
    server = await DeepgramFakeServer.start();
    server.failNext({ kind: 'drop', afterAudioMs: 200 });
    const { ws, closed } = await open(`${server.url}/v1/listen?sample_rate=16000`);
    sendIn20msChunks(ws, silence(1000, SAMPLE_RATE));
    expect(await closed).toBe(1006);
    expect(server.connections[0].state).toBe('drop');
    expect(server.connections[0].audioBytes).toBeLessThan(1000 * 32);
  });

  it('drops one connection on demand and leaves the others open', async () => {
    server = await DeepgramFakeServer.start();
    const a = await open(`${server.url}/v1/listen`);
    const b = await open(`${server.url}/v1/listen`);
    const [recordA, recordB] = server.connections;
    expect(server.dropConnection(recordA)).toBe(true);
    expect(await a.closed).toBe(1006);
    expect(recordA.state).toBe('drop');
    expect(recordB.state).toBe('open');
    expect(server.dropConnection(recordA)).toBe(false);
    b.ws.close();
    expect(await b.closed).toBe(1005);
  });

  it('closes an idle stream with 1011 like the real service', async () => {
    server = await DeepgramFakeServer.start({ idleTimeoutMs: 100 });
    const { closed } = await open(`${server.url}/v1/listen`);
    expect(await closed).toBe(1011);
  });
});
