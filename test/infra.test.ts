/**
 * Smoke tests of the test infrastructure itself: real speech fixtures, and real LiveKit, FerretDB
 * and Redis servers on loopback. If these fail, every end-to-end test built on them is meaningless.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessToken, RoomServiceClient, WebhookReceiver, type WebhookEvent } from 'livekit-server-sdk';
import { SignalResponse } from '@livekit/protocol';
import {
  AudioFrame,
  AudioSource,
  AudioStream,
  LocalAudioTrack,
  Room,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
  dispose,
  type RemoteTrack,
} from '@livekit/rtc-node';
import { MongoClient } from 'mongodb';
import {
  ESPEAK_SAMPLE_RATE,
  findSpeechBounds,
  readWav,
  synthesizeConversation,
  synthesizeSpeech,
  toOggOpus,
  writeWav,
} from './support/speech.ts';
import { startLiveKitServer, type LiveKitServerHandle } from './support/livekit-server.ts';
import { startFerretDb } from './support/ferretdb.ts';
import { answersPong, startRedisServer } from './support/redis-server.ts';
import { tcpAccepts } from './support/process.ts';
import globalSetup from './global-setup.ts';
import { withTimeout } from '../engine/with-timeout.ts';
import { rms } from '../engine/pcm.ts';

const scratch = mkdtempSync(join(tmpdir(), 'infra-test-'));

afterAll(async () => {
  rmSync(scratch, { recursive: true, force: true });
  // @livekit/rtc-node keeps native FFI threads alive; without this the fork may never exit.
  await dispose();
});


describe('speech fixtures', () => {
  it('synthesises audible speech at the requested rate', () => {
    const text = 'The quick brown fox jumps over the lazy dog.';
    const at16k = synthesizeSpeech(text, { sampleRate: 16_000 });
    const native = synthesizeSpeech(text, { sampleRate: ESPEAK_SAMPLE_RATE });
    // Nine words at 160 wpm: well over a second, well under ten.
    expect(at16k.length / 16_000).toBeGreaterThan(1);
    expect(at16k.length / 16_000).toBeLessThan(10);
    expect(rms(at16k)).toBeGreaterThan(500);
    // Same audio, resampled: the duration is preserved to within a few samples.
    expect(Math.abs(at16k.length / 16_000 - native.length / ESPEAK_SAMPLE_RATE)).toBeLessThan(0.005);
    // A second call is served from the cache and is bit-identical.
    expect(synthesizeSpeech(text, { sampleRate: 16_000 })).toEqual(at16k);
  });

  it('gives different audio for different text, voice and speed', () => {
    const base = synthesizeSpeech('Hello there.');
    expect(synthesizeSpeech('Goodbye now.')).not.toEqual(base);
    expect(synthesizeSpeech('Hello there.', { wordsPerMinute: 100 }).length).toBeGreaterThan(base.length);
    expect(synthesizeSpeech('Hello there.', { voice: 'en-gb' })).not.toEqual(base);
  });

  it('lays out a conversation with exact pauses and trimmed segment bounds', () => {
    const sampleRate = 16_000;
    const { pcm, segments } = synthesizeConversation(
      [{ pauseMs: 250 }, { say: 'I would like to book a table.' }, { pauseMs: 800 }, { say: 'For two, please.' }, { pauseMs: 100 }],
      { sampleRate },
    );
    expect(segments.map((s) => s.text)).toEqual(['I would like to book a table.', 'For two, please.']);
    const [first, second] = segments;
    expect(first.startSample).toBe(0.25 * sampleRate);
    expect(second.startSample - first.endSample).toBe(0.8 * sampleRate);
    expect(pcm.length - second.endSample).toBe(0.1 * sampleRate);
    // Pauses are digital silence; each segment starts and ends on audible samples.
    expect(rms(pcm.subarray(first.endSample, second.startSample))).toBe(0);
    for (const seg of segments) {
      expect(Math.abs(pcm[seg.startSample])).toBeGreaterThan(64);
      expect(Math.abs(pcm[seg.endSample - 1])).toBeGreaterThan(64);
      expect(findSpeechBounds(pcm.subarray(seg.startSample, seg.endSample))).toEqual({ startSample: 0, endSample: seg.endSample - seg.startSample });
    }
    // The segment is the espeak output minus its own leading/trailing silence, nothing more.
    const raw = synthesizeSpeech('For two, please.', { sampleRate });
    const bounds = findSpeechBounds(raw);
    expect(bounds.startSample).toBeGreaterThan(0);
    expect(Array.from(pcm.subarray(second.startSample, second.endSample))).toEqual(Array.from(raw.subarray(bounds.startSample, bounds.endSample)));
  });

  it('round-trips WAV files and reads headers with extra chunks', () => {
    const pcm = Int16Array.from({ length: 1001 }, (_, i) => Math.round(Math.sin(i / 7) * 12_000) - (i % 3));
    const plain = join(scratch, 'plain.wav');
    writeWav(plain, pcm, 24_000);
    expect(readWav(plain)).toEqual({ pcm, sampleRate: 24_000 });

    // The same audio with an odd-sized LIST chunk before the data and a data size that overruns the
    // file, as streaming writers leave it.
    const canonical = readFileSync(plain);
    const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc'), Buffer.from([0])]);
    const data = Buffer.from(canonical.subarray(36));
    data.writeUInt32LE(0xffffffff, 4);
    const header = Buffer.from(canonical.subarray(0, 36));
    const odd = join(scratch, 'odd.wav');
    writeFileSync(odd, Buffer.concat([header, list, data]));
    expect(readWav(odd)).toEqual({ pcm, sampleRate: 24_000 });

    const stereo = Buffer.from(canonical);
    stereo.writeUInt16LE(2, 22);
    const stereoPath = join(scratch, 'stereo.wav');
    writeFileSync(stereoPath, stereo);
    expect(() => readWav(stereoPath)).toThrow(/mono 16-bit/);
  });

  it('encodes Ogg Opus for lk --publish', () => {
    const wav = join(scratch, 'hello.wav');
    const ogg = join(scratch, 'hello.ogg');
    writeWav(wav, synthesizeSpeech('Hello from the test.', { sampleRate: 48_000 }), 48_000);
    toOggOpus(wav, ogg);
    const bytes = readFileSync(ogg);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('OggS');
    expect(bytes.includes(Buffer.from('OpusHead'))).toBe(true);
  });
});

async function joinToken(server: LiveKitServerHandle, room: string, identity: string): Promise<string> {
  const token = new AccessToken(server.apiKey, server.apiSecret, { identity, ttl: '10m' });
  token.addGrant({ room, roomJoin: true, canPublish: true, canSubscribe: true });
  return await token.toJwt();
}

describe('LiveKit server on loopback', () => {
  let server: LiveKitServerHandle;
  beforeAll(async () => {
    server = await startLiveKitServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('hands clients only loopback ICE servers', async () => {
    const token = await joinToken(server, 'ice-check', 'ice-probe');
    // Node's built-in WebSocket: the project has no typings for the `ws` package.
    const ws = new WebSocket(`${server.url}/rtc?access_token=${token}&protocol=16&auto_subscribe=1`);
    ws.binaryType = 'arraybuffer';
    try {
      const first = await withTimeout(
        new Promise<ArrayBuffer>((resolve, reject) => {
          ws.addEventListener('message', (event) => resolve(event.data as ArrayBuffer), { once: true });
          ws.addEventListener('error', () => reject(new Error('signal WebSocket failed')), { once: true });
        }),
        10_000,
        'JoinResponse',
      );
      const response = SignalResponse.fromBinary(new Uint8Array(first));
      expect(response.message.case).toBe('join');
      const urls = response.message.case === 'join' ? response.message.value.iceServers.flatMap((s) => s.urls) : [];
      expect(urls.length).toBeGreaterThan(0);
      for (const url of urls) expect(url).toMatch(/^(stun|turn)s?:127\.0\.0\.1:\d+/);
    } finally {
      ws.close();
    }
  });

  it('carries speech from one rtc-node participant to another', async () => {
    const roomName = 'infra-round-trip';
    const rooms = new RoomServiceClient(server.httpUrl, server.apiKey, server.apiSecret);
    await rooms.createRoom({ name: roomName, emptyTimeout: 60 });
    expect((await rooms.listRooms([roomName])).map((r) => r.name)).toEqual([roomName]);

    const sampleRate = 48_000;
    const frameSamples = sampleRate / 100; // 10 ms frames, what WebRTC's audio path works in
    const speech = synthesizeSpeech('One two three four five six seven eight nine ten.', { sampleRate });

    const caller = new Room();
    const agent = new Room();
    let publishing = true;
    try {
      const subscribed = new Promise<RemoteTrack>((resolve) => {
        agent.on(RoomEvent.TrackSubscribed, (track) => {
          if (track.kind === TrackKind.KIND_AUDIO) resolve(track);
        });
      });
      await agent.connect(server.url, await joinToken(server, roomName, 'agent'), { autoSubscribe: true, dynacast: false });
      await caller.connect(server.url, await joinToken(server, roomName, 'caller'), { autoSubscribe: false, dynacast: false });

      const source = new AudioSource(sampleRate, 1);
      const track = LocalAudioTrack.createAudioTrack('speech', source);
      await caller.localParticipant!.publishTrack(track, new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }));

      // Loop the speech until the receiver has heard enough; captureFrame paces to real time.
      const publisher = (async () => {
        for (let offset = 0; publishing; offset = (offset + frameSamples) % (speech.length - frameSamples)) {
          const frame = speech.slice(offset, offset + frameSamples);
          await source.captureFrame(new AudioFrame(frame, sampleRate, 1, frameSamples));
        }
      })();

      const remote = await withTimeout(subscribed, 15_000, 'agent subscribed to the caller track');
      const reader = new AudioStream(remote, { sampleRate, numChannels: 1 }).getReader();
      let audibleMs = 0;
      let receivedMs = 0;
      try {
        await withTimeout(
          (async () => {
            while (audibleMs < 500) {
              const { done, value: frame } = await reader.read();
              if (done) throw new Error('audio stream ended');
              receivedMs += (frame.samplesPerChannel / frame.sampleRate) * 1000;
              if (rms(frame.data) > 300) audibleMs += (frame.samplesPerChannel / frame.sampleRate) * 1000;
            }
          })(),
          20_000,
          '500 ms of audible audio at the agent',
        );
      } finally {
        await reader.cancel();
      }
      expect(audibleMs).toBeGreaterThanOrEqual(500);
      expect(receivedMs).toBeGreaterThanOrEqual(audibleMs);
      publishing = false;
      await publisher;
      await source.close();
    } finally {
      publishing = false;
      await caller.disconnect();
      await agent.disconnect();
    }
  });
});

describe('LiveKit webhooks and Redis', () => {
  let hookServer: Server;
  const events: WebhookEvent[] = [];
  let receiver: WebhookReceiver | undefined;
  let hookUrl = '';

  beforeAll(async () => {
    hookServer = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        res.end('ok');
        receiver
          ?.receive(body, req.headers.authorization)
          .then((event) => events.push(event))
          .catch(() => undefined);
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
    const address = hookServer.address();
    if (address === null || typeof address === 'string') throw new Error('no webhook address');
    hookUrl = `http://127.0.0.1:${address.port}/hook`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => hookServer.close(() => resolve()));
  });

  it('delivers signed webhooks and runs against a shared Redis', async () => {
    const redis = await startRedisServer();
    const port = Number(redis.address.split(':')[1]);
    let server: LiveKitServerHandle | undefined;
    try {
      expect(await answersPong(port)).toBe(true);
      server = await startLiveKitServer({ webhookUrls: [hookUrl], redisAddress: redis.address });
      receiver = new WebhookReceiver(server.apiKey, server.apiSecret);
      const rooms = new RoomServiceClient(server.httpUrl, server.apiKey, server.apiSecret);
      await rooms.createRoom({ name: 'hooked' });
      const deadline = Date.now() + 15_000;
      while (!events.some((e) => e.event === 'room_started' && e.room?.name === 'hooked') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(events.find((e) => e.event === 'room_started')?.room?.name).toBe('hooked');
    } finally {
      await server?.stop();
      await redis.stop();
    }
    expect(await tcpAccepts(port)).toBe(false);
  });
});

describe('FerretDB on loopback', () => {
  it('stores documents through the mongodb driver and keeps them across a restart', async () => {
    const ferret = await startFerretDb();
    try {
      const write = new MongoClient(ferret.uri, { serverSelectionTimeoutMS: 10_000 });
      try {
        const calls = write.db('infra').collection<{ callId: string; turns: number }>('calls');
        await calls.insertMany([
          { callId: 'a', turns: 3 },
          { callId: 'b', turns: 5 },
        ]);
        await calls.updateOne({ callId: 'a' }, { $inc: { turns: 1 } });
        expect((await calls.find({}, { projection: { _id: 0 } }).sort({ callId: 1 }).toArray())).toEqual([
          { callId: 'a', turns: 4 },
          { callId: 'b', turns: 5 },
        ]);
      } finally {
        await write.close();
      }

      await ferret.restart();

      const read = new MongoClient(ferret.uri, { serverSelectionTimeoutMS: 10_000 });
      try {
        const found = await read.db('infra').collection('calls').findOne({ callId: 'a' }, { projection: { _id: 0 } });
        expect(found).toEqual({ callId: 'a', turns: 4 });
      } finally {
        await read.close();
      }
    } finally {
      await ferret.stop();
    }
  });
});

describe('global setup', () => {
  it('provides a live server and stops it at teardown', async () => {
    const provided = new Map<string, unknown>();
    const teardown = await globalSetup({ provide: (key, value) => void provided.set(key, value) });
    const url = provided.get('livekitUrl');
    expect(typeof url).toBe('string');
    expect(provided.get('livekitApiKey')).toBe('devkey');
    expect(String(provided.get('livekitApiSecret')).length).toBeGreaterThanOrEqual(32);
    const httpUrl = String(url).replace(/^ws:/, 'http:');
    const rooms = new RoomServiceClient(httpUrl, String(provided.get('livekitApiKey')), String(provided.get('livekitApiSecret')));
    await rooms.createRoom({ name: 'from-global-setup' });
    expect((await rooms.listRooms()).map((r) => r.name)).toContain('from-global-setup');
    await teardown();
    expect(await tcpAccepts(Number(new URL(httpUrl).port))).toBe(false);
  });
});
