/**
 * The FFI event router on a real LiveKit server: several rooms in one process, each caller sending its
 * own tone; every routed stream must hear its own caller's tone and nothing else, routed rooms must
 * still get their room events, and closing must leave no routed listener behind.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { AccessToken } from 'livekit-server-sdk';
import { AudioFrame, AudioSource, LocalAudioTrack, Room, RoomEvent, TrackKind, TrackPublishOptions, TrackSource, dispose, type RemoteTrack } from '@livekit/rtc-node';
import { rms } from '../engine/pcm.ts';
import { connectRoom, ffiEventRouter, openAudioStream } from '../engine/transport/ffi-event-router.ts';
import { withTimeout } from '../engine/with-timeout.ts';

const SAMPLE_RATE = 48_000;
const FRAME_SAMPLES = 960;

afterAll(async () => {
  await dispose();
});

async function token(room: string, identity: string): Promise<string> {
  const t = new AccessToken(inject('livekitApiKey'), inject('livekitApiSecret'), { identity, ttl: '10m' });
  t.addGrant({ room, roomJoin: true, canPublish: true, canSubscribe: true });
  return await t.toJwt();
}

function tone(frequencyHz: number, offsetSamples: number): Int16Array {
  const frame = new Int16Array(FRAME_SAMPLES);
  for (let i = 0; i < FRAME_SAMPLES; i++) frame[i] = Math.round(8000 * Math.sin((2 * Math.PI * frequencyHz * (offsetSamples + i)) / SAMPLE_RATE));
  return frame;
}

/** Dominant frequency from upward zero crossings; good enough to tell 300, 500 and 800 Hz apart. */
function estimateFrequencyHz(pcm: Int16Array, sampleRate: number): number {
  let crossings = 0;
  for (let i = 1; i < pcm.length; i++) if (pcm[i - 1] < 0 && pcm[i] >= 0) crossings++;
  return (crossings * sampleRate) / pcm.length;
}

describe('FFI event router', () => {
  it('delivers each stream its own audio and each room its own events, and forgets them on close', async () => {
    const router = ffiEventRouter();
    const routedBefore = router.routedListenerCount;
    const broadcastBefore = router.broadcastListenerCount;
    const frequenciesHz = [300, 500, 800];
    const pairs = frequenciesHz.map((frequencyHz, i) => ({ frequencyHz, roomName: `router-${i}-${Date.now()}`, caller: new Room(), agent: new Room() }));
    let publishing = true;
    const publishers: Array<Promise<void>> = [];
    const sources: AudioSource[] = [];
    try {
      // Every stream is open before any is read, so that each one's events compete with the others'.
      const readers = await Promise.all(
        pairs.map(async ({ frequencyHz, roomName, caller, agent }) => {
          const subscribed = new Promise<RemoteTrack>((resolve) => {
            agent.on(RoomEvent.TrackSubscribed, (track) => {
              if (track.kind === TrackKind.KIND_AUDIO) resolve(track);
            });
          });
          await connectRoom(agent, inject('livekitUrl'), await token(roomName, 'agent'), { autoSubscribe: true, dynacast: false });
          await connectRoom(caller, inject('livekitUrl'), await token(roomName, 'caller'), { autoSubscribe: false, dynacast: false });
          const source = new AudioSource(SAMPLE_RATE, 1, 100);
          sources.push(source);
          await caller.localParticipant!.publishTrack(LocalAudioTrack.createAudioTrack('tone', source), new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }));
          publishers.push(
            (async () => {
              for (let offset = 0; publishing; offset += FRAME_SAMPLES) await source.captureFrame(new AudioFrame(tone(frequencyHz, offset), SAMPLE_RATE, 1, FRAME_SAMPLES));
            })(),
          );
          const track = await withTimeout(subscribed, 20_000, `agent in ${roomName} subscribed (a routed room event)`);
          return openAudioStream(track, { sampleRate: SAMPLE_RATE, numChannels: 1, frameSizeMs: 20 }).getReader();
        }),
      );
      expect(router.routedListenerCount).toBe(routedBefore + 3 * pairs.length);
      // Only what is awaited right now is broadcast: at most one captureFrame callback per source.
      expect(router.broadcastListenerCount - broadcastBefore).toBeLessThanOrEqual(pairs.length);
      const heard = await Promise.all(
        readers.map(async (reader, i) => {
          // Half a second of audible audio, after the codec has settled.
          const audible: Int16Array[] = [];
          await withTimeout(
            (async () => {
              while (audible.length < 25) {
                const { done, value } = await reader.read();
                if (done) throw new Error('stream ended');
                if (value.samplesPerChannel !== FRAME_SAMPLES) throw new Error(`a ${value.samplesPerChannel}-sample frame`);
                if (rms(value.data) > 1000) audible.push(value.data.slice());
              }
            })(),
            20_000,
            `audio in ${pairs[i].roomName}`,
          );
          await reader.cancel();
          const pcm = new Int16Array(audible.length * FRAME_SAMPLES);
          audible.forEach((frame, j) => pcm.set(frame, j * FRAME_SAMPLES));
          return estimateFrequencyHz(pcm.subarray(5 * FRAME_SAMPLES), SAMPLE_RATE);
        }),
      );
      heard.forEach((frequencyHz, i) => expect(Math.abs(frequencyHz - frequenciesHz[i]), `room ${i} heard ${frequencyHz} Hz`).toBeLessThan(0.05 * frequenciesHz[i]));
      // Rooms stay routed while connected; the cancelled streams are gone.
      expect(router.routedListenerCount).toBe(routedBefore + 2 * pairs.length);
    } finally {
      publishing = false;
      await Promise.all(publishers.map((p) => p.catch(() => {})));
      for (const { caller, agent } of pairs) {
        await caller.disconnect();
        await agent.disconnect();
      }
      for (const source of sources) await source.close();
    }
    expect(router.routedListenerCount).toBe(routedBefore);
  });
});
