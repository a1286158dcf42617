/**
 * How a call ends when the caller goes, on a real LiveKit server: a caller who hangs up (their SDK
 * sends a leave, CLIENT_INITIATED), a caller the server removed or a deleted room ends the call at
 * once; only a caller whose connection dropped (a process killed without a leave) gets the grace
 * period to come back. The harness's grace period is long here (4 s) so "at once" and "after the grace
 * period" cannot be confused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessToken } from 'livekit-server-sdk';
import { dispose, Room, RoomEvent, type RemoteParticipant } from '@livekit/rtc-node';
import { startVoiceHarness, eventsOf, type VoiceHarness } from './support/voice-harness.ts';
import { waitFor } from './support/caller.ts';

const GRACE_MS = 4000;
let harness: VoiceHarness;
const children: ChildProcess[] = [];
const observers: Room[] = [];

beforeAll(async () => {
  harness = await startVoiceHarness({ callerLeftGraceMs: GRACE_MS });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(observers.map((room) => room.disconnect().catch(() => {})));
  await harness?.close();
  await dispose();
});

async function tokenFor(roomName: string, identity: string): Promise<string> {
  const token = new AccessToken(harness.livekit.apiKey, harness.livekit.apiSecret, { identity });
  token.addGrant({ roomJoin: true, room: roomName, canPublish: true, canSubscribe: true });
  return token.toJwt();
}

const endedOf = (callId: string) => eventsOf(harness.events, callId, 'call_ended')[0];

describe('the caller goes', () => {
  it('ends the call at once, as caller_hung_up, when the caller hangs up', async () => {
    const caller = await harness.placeCall('hangup');
    await waitFor('bot listening', () => harness.engine.call('hangup')?.botState === 'listening', 30_000);
    const leftAt = performance.now();
    await caller.leave();
    const ended = await waitFor('call_ended', () => endedOf('hangup'), 10_000);
    const afterMs = performance.now() - leftAt;
    expect(ended.data.reason).toBe('caller_hung_up');
    expect(afterMs).toBeLessThan(1000);
    expect(harness.engine.capacity().activeCalls).toBe(0);
  });

  it('ends the call at once, as room_deleted, when the room is deleted', async () => {
    await harness.placeCall('deleted');
    await waitFor('bot listening', () => harness.engine.call('deleted')?.botState === 'listening', 30_000);
    const deletedAt = performance.now();
    await harness.rooms.deleteRoom('room-deleted');
    const ended = await waitFor('call_ended', () => endedOf('deleted'), 10_000);
    expect(ended.data.reason).toBe('room_deleted');
    expect(performance.now() - deletedAt).toBeLessThan(1000);
  });

  it('ends the call at once, as caller_removed, when the server removes the caller', async () => {
    const caller = await harness.placeCall('removed');
    await waitFor('bot listening', () => harness.engine.call('removed')?.botState === 'listening', 30_000);
    const removedAt = performance.now();
    await harness.rooms.removeParticipant('room-removed', caller.identity);
    const ended = await waitFor('call_ended', () => endedOf('removed'), 10_000);
    expect(ended.data.reason).toBe('caller_removed');
    expect(performance.now() - removedAt).toBeLessThan(1000);
  });

  it('waits the grace period, then ends as caller_left, when the caller’s connection drops', async () => {
    const roomName = 'room-dropped';
    const identity = 'caller-dropped';
    await harness.rooms.createRoom({ name: roomName, emptyTimeout: 60 });
    // Someone else in the room sees when, and why, the server lets the dropped caller go.
    const observer = new Room();
    observers.push(observer);
    let left: { at: number; reason: unknown } | undefined;
    observer.on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
      if (p.identity === identity) left = { at: performance.now(), reason: p.disconnectReason };
    });
    await observer.connect(harness.livekit.url, await tokenFor(roomName, 'observer'), { autoSubscribe: false, dynacast: false });

    const child = spawn(process.execPath, [fileURLToPath(new URL('./support/dropped-caller.ts', import.meta.url))], {
      env: { ...process.env, LIVEKIT_URL: harness.livekit.url, LIVEKIT_TOKEN: await tokenFor(roomName, identity) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    await once(child.stdout!, 'data');
    await harness.engine.startBot({ callId: 'dropped', roomName, callerIdentity: identity });
    child.kill('SIGKILL');

    const seen = await waitFor('the server drops the caller', () => left, 60_000);
    // Not a hang-up: the call is still there when the caller is reported gone ...
    await new Promise((r) => setTimeout(r, GRACE_MS / 2));
    expect(endedOf('dropped'), `ended at once (server said reason ${String(seen.reason)})`).toBeUndefined();
    // ... and ends once the grace period has passed.
    const ended = await waitFor('call_ended', () => endedOf('dropped'), GRACE_MS + 10_000);
    expect(ended.data.reason).toBe('caller_left');
    expect(performance.now() - seen.at).toBeGreaterThanOrEqual(GRACE_MS - 200);
  }, 120_000);
});
