/**
 * Start-up reconciliation against a real LiveKit server: a live call whose room was deleted behind the
 * API's back is ended with `reconciled_room_gone`; a call whose room exists is left as it was.
 */
import { RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECONCILED_ROOM_GONE, reconcileCalls } from '../server/reconcile-calls.ts';
import { FakeEngine } from '../server/testing/fake-engine.ts';
import { startHarness, type Harness } from '../server/testing/harness.ts';
import { startLiveKitServer, type LiveKitServerHandle } from './support/livekit-server.ts';

let livekit: LiveKitServerHandle;
let h: Harness;
let rooms: RoomServiceClient;

beforeAll(async () => {
  livekit = await startLiveKitServer();
  h = await startHarness({ livekit, engine: new FakeEngine({ maxCalls: 100 }) });
  rooms = new RoomServiceClient(livekit.httpUrl, livekit.apiKey, livekit.apiSecret);
});

afterAll(async () => {
  await h?.close();
  await livekit?.stop();
});

async function createCall(): Promise<{ callId: string; roomName: string }> {
  const res = await h.api('/v1/calls', { method: 'POST', json: {} });
  expect(res.status).toBe(201);
  return (await res.json()) as { callId: string; roomName: string };
}

describe('reconcileCalls', () => {
  it('ends the live calls whose room is gone, paging through every live state, and leaves the others', async () => {
    const kept = await createCall();
    const gone = await createCall();
    // More created calls than a page holds, both before and after the kept one.
    const goneCreated = [gone, await createCall(), await createCall(), await createCall()];
    const newest = await createCall();
    const goneActive = await createCall();
    const goneHuman = await createCall();
    const keptActive = await createCall();
    const alreadyEnded = await createCall();
    await h.store.updateCall(goneActive.callId, { state: 'active' });
    await h.store.updateCall(keptActive.callId, { state: 'active' });
    await h.store.updateCall(goneHuman.callId, { state: 'human' });
    await h.store.updateCall(alreadyEnded.callId, { state: 'ended', endReason: 'ended_by_api' });
    for (const call of [...goneCreated, goneActive, goneHuman, alreadyEnded]) await rooms.deleteRoom(call.roomName);
    const before = await h.store.getCall(kept.callId);
    const newestBefore = await h.store.getCall(newest.callId);

    // Pages of 2, so that ending calls while paging through their state is exercised.
    const result = await reconcileCalls({ store: h.store, livekit: h.livekit, createdGraceMs: 0, pageSize: 2 });
    const goneAll = [...goneCreated, goneActive, goneHuman];
    expect(result.ended.sort()).toEqual(goneAll.map((c) => c.callId).sort());
    for (const call of goneAll) {
      expect(await h.store.getCall(call.callId)).toMatchObject({ state: 'ended', endReason: RECONCILED_ROOM_GONE });
    }
    expect(await h.store.getCall(kept.callId)).toEqual(before);
    expect(await h.store.getCall(newest.callId)).toEqual(newestBefore);
    expect(await h.store.getCall(keptActive.callId)).toMatchObject({ state: 'active' });
    expect(await h.store.getCall(alreadyEnded.callId)).toMatchObject({ state: 'ended', endReason: 'ended_by_api' });
    expect((await rooms.listRooms([kept.roomName])).map((r) => r.name)).toEqual([kept.roomName]);

    // A second pass finds nothing left to do.
    expect((await reconcileCalls({ store: h.store, livekit: h.livekit, createdGraceMs: 0 })).ended).toEqual([]);
  });

  it('leaves a call still being created (within the grace period) alone', async () => {
    const fresh = await createCall();
    await rooms.deleteRoom(fresh.roomName);
    const result = await reconcileCalls({ store: h.store, livekit: h.livekit });
    expect(result.ended).not.toContain(fresh.callId);
    expect(await h.store.getCall(fresh.callId)).toMatchObject({ state: 'created' });
    const later = await reconcileCalls({ store: h.store, livekit: h.livekit, now: () => new Date(Date.now() + 60_000) });
    expect(later.ended).toContain(fresh.callId);
  });
});
