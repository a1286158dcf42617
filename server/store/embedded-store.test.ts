import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeCallStoreContract, makeEvent, makeSegment } from './call-store.contract.ts';
import { EmbeddedCallStore } from './embedded-store.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'embedded-store-'));
}

describeCallStoreContract('embedded (node:sqlite)', async () => {
  const dataDir = tempDir();
  return { store: EmbeddedCallStore.open({ dataDir }), cleanup: async () => rmSync(dataDir, { recursive: true, force: true }) };
});

describe('EmbeddedCallStore durability', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('keeps calls, events, segments, webhooks and idempotency keys across close and reopen', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const first = EmbeddedCallStore.open({ dataDir });
    const { call } = await first.createCall({ roomName: 'r', metadata: { n: 1 } }, { idempotencyKey: 'k' });
    await first.addParticipant(call.callId, { identity: 'caller-1', role: 'caller', joinedAt: '2024-05-01T00:00:00Z' });
    await first.appendEvents([makeEvent(call.callId, 1), makeEvent(call.callId, 2)]);
    await first.appendSegments([makeSegment(call.callId, 1)]);
    await first.markWebhookProcessed('wh');
    const before = await first.getCall(call.callId);
    await first.close();

    const second = EmbeddedCallStore.open({ dataDir });
    try {
      expect(await second.getCall(call.callId)).toEqual(before);
      expect((await second.listEvents(call.callId)).map((e) => e.seq)).toEqual([1, 2]);
      expect(await second.listSegments(call.callId)).toEqual([makeSegment(call.callId, 1)]);
      expect(await second.markWebhookProcessed('wh')).toBe(false);
      const again = await second.createCall({ roomName: 'r' }, { idempotencyKey: 'k' });
      expect(again).toEqual({ call: before, created: false });
    } finally {
      await second.close();
    }
  });

  it('uses WAL so a second connection reads while the first one is open', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const a = EmbeddedCallStore.open({ dataDir });
    const b = EmbeddedCallStore.open({ dataDir });
    try {
      await a.createCall({ callId: 'shared', roomName: 'r' });
      expect((await b.getCall('shared'))?.roomName).toBe('r');
    } finally {
      await a.close();
      await b.close();
    }
  });
});
