/**
 * The voice engine's own faults on the real engine and LiveKit server: a start that fails (no media
 * worker up) gives its capacity slot back; a stop that arrives while the bot is still joining cancels
 * the start, leaving no bot in the room and nothing in the engine; a call whose audio crashes the media
 * workers twice is ended with an error instead of crashing them again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispose } from '@livekit/rtc-node';
import type { VoiceError } from '../engine/errors.ts';
import { startVoiceHarness, eventsOf, type VoiceHarness } from './support/voice-harness.ts';
import { TestCaller, waitFor } from './support/caller.ts';

let harness: VoiceHarness;
const callers: TestCaller[] = [];

beforeAll(async () => {
  // One media worker: the tests kill "the" worker to leave the engine without one.
  harness = await startVoiceHarness({ media: { allowFaultInjection: true, workers: 1 } });
});

afterAll(async () => {
  await Promise.all(callers.map((c) => c.leave()));
  await harness?.close();
  await dispose();
});

describe('voice engine faults', () => {
  it('gives the capacity slot back when the call media cannot open (no media worker up)', async () => {
    const { maxCalls } = harness.engine.options;
    const worker = harness.media.poolStats().workers[0];
    harness.media.crashWorker(worker.id);
    await waitFor('the media worker to die', () => harness.media.poolStats().workers[0].live === false, 10_000);
    // One request after the other, as clients retry; the replacement worker loads and warms up its
    // models for far longer than these failures take.
    const codes: string[] = [];
    for (let i = 0; i <= maxCalls; i++) {
      codes.push(await harness.engine.startBot({ callId: `no-worker-${i}`, roomName: `room-no-worker-${i}` }).then(() => 'started', (e: VoiceError) => e.code));
    }
    expect(codes).toEqual(Array(maxCalls + 1).fill('VE_NO_MEDIA_WORKER'));
    expect(harness.media.poolStats().workers[0].live).toBe(false);
    expect(harness.engine.capacity()).toEqual({ activeCalls: 0, maxCalls, acceptingCalls: true });

    await waitFor('the replacement worker', () => harness.media.poolStats().workers[0].live, 30_000);
    const caller = await harness.placeCall('after-no-worker');
    callers.push(caller);
    expect(eventsOf(harness.events, 'after-no-worker', 'bot_status', { joined: true })).toHaveLength(1);
    expect(harness.engine.capacity().activeCalls).toBe(1);
    await harness.engine.stopBot('after-no-worker');
    expect(harness.engine.capacity().activeCalls).toBe(0);
  });

  it('cancels a start when the bot is stopped while joining: no bot in the room, no room re-created', async () => {
    const callId = 'stopped-while-joining';
    const roomName = `room-${callId}`;
    await harness.rooms.createRoom({ name: roomName, emptyTimeout: 60 });
    const caller = await TestCaller.join({ ...harness.livekit, roomName, identity: `caller-${callId}` });
    callers.push(caller);

    const starting = harness.engine.startBot({ callId, roomName, callerIdentity: caller.identity });
    const stopped = harness.engine.stopBot(callId);
    await expect(starting).rejects.toMatchObject({ code: 'VE_BOT_START_CANCELLED' });
    await stopped;
    expect(harness.engine.capacity().activeCalls).toBe(0);
    expect(harness.engine.call(callId)).toBeUndefined();
    expect(harness.media.getCall(callId)).toBeUndefined();
    expect(eventsOf(harness.events, callId)).toEqual([]);

    // The bot joined and left again before stopBot resolved; LiveKit's own view may lag a little.
    const identities = async () => (await harness.rooms.listParticipants(roomName)).map((p) => p.identity);
    const deadline = performance.now() + 5000;
    while ((await identities()).length > 1 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await identities()).toEqual([caller.identity]);

    // What the control plane does next: delete the room. Nothing brings it back.
    await harness.rooms.deleteRoom(roomName);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await harness.rooms.listRooms([roomName])).toEqual([]);
  });

  it('ends a call whose audio crashed the media worker twice, with an error event and reason media_crashed', async () => {
    const callId = 'poison-audio';
    const caller = await harness.placeCall(callId);
    callers.push(caller);
    const restartsBefore = harness.media.metrics().workerRestarts;
    // The caller's microphone sends silence frames all the time: the worker soon processes them.
    harness.media.crashOnCallAudio(callId);
    const ended = await waitFor('call_ended', () => eventsOf(harness.events, callId, 'call_ended')[0], 30_000);
    expect(ended.data.reason).toBe('media_crashed');
    const errors = eventsOf(harness.events, callId, 'error', { stage: 'media' });
    expect(errors.map((e) => [e.data.code, e.data.recovered])).toEqual([['VE_MEDIA_CRASHED', false]]);
    expect(eventsOf(harness.events, callId, 'worker_restarted')).toHaveLength(1);
    expect(harness.engine.call(callId)).toBeUndefined();
    expect(harness.engine.capacity().activeCalls).toBe(0);
    // Two crashes, two restarts; the worker serves again and takes new calls.
    await waitFor('the worker back', () => harness.media.poolStats().workers[0].live, 30_000);
    expect(harness.media.metrics().workerRestarts - restartsBefore).toBe(2);
    const next = await harness.placeCall('after-poison');
    callers.push(next);
    expect(harness.engine.call('after-poison')).toBeDefined();
    await harness.engine.stopBot('after-poison');
  });
});
