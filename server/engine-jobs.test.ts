import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DispatchedJob } from '../engine/dispatch/worker-events.ts';
import { META_DISPATCH, JobHost } from './engine-jobs.ts';
import { EmbeddedCallStore } from './store/embedded-store.ts';
import { FakeEngine } from './testing/fake-engine.ts';

const log = { warn: () => {}, info: () => {} };

function job(overrides: Partial<DispatchedJob> = {}): DispatchedJob {
  return {
    jobId: 'AJ_1',
    dispatchId: 'AD_1',
    agentName: 'voice-density-engine',
    roomName: 'sip-room',
    roomSid: 'RM_abc',
    callId: 'RM_abc',
    identity: 'bot-RM_abc',
    url: 'ws://127.0.0.1:7880',
    token: 'job-token',
    metadata: '',
    attributes: {},
    resuming: false,
    ...overrides,
  };
}

describe('JobHost', () => {
  let dir: string;
  let store: EmbeddedCallStore;
  let engine: FakeEngine;
  let ended: string[];
  let host: JobHost;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 've-jobs-'));
    store = EmbeddedCallStore.open({ dataDir: dir });
    engine = new FakeEngine();
    ended = [];
    host = new JobHost({ engine, store, log, endJob: (jobId) => ended.push(jobId) });
  });
  afterEach(async () => {
    host.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hosts a job with its token, caller, instructions and greeting from a REST dispatch\'s metadata, keeping the API\'s record', async () => {
    await store.createCall({ callId: 'c1', roomName: 'call-c1', owner: 'dispatch' });
    await host.host(job({ callId: 'c1', roomName: 'call-c1', metadata: JSON.stringify({ callId: 'c1', callerIdentity: 'caller-c1', instructions: 'Be brief.', greeting: 'Hello.' }) }));
    expect(engine.calls.get('c1')?.req).toEqual({ callId: 'c1', roomName: 'call-c1', callerIdentity: 'caller-c1', instructions: 'Be brief.', greeting: 'Hello.', join: { url: 'ws://127.0.0.1:7880', token: 'job-token' } });
    const call = await store.getCall('c1');
    expect(call?.owner).toBe('dispatch');
    expect(call?.metadata[META_DISPATCH]).toBeUndefined();
    // Its end is the control plane's to record (/end, webhooks): the job ends, the record stays.
    engine.emit('c1', 'call_ended', { reason: 'caller_left' });
    expect(ended).toEqual(['AJ_1']);
    await new Promise((r) => setTimeout(r, 20));
    expect((await store.getCall('c1'))?.state).toBe('created');
  });

  it('records a call the API never saw once, owner-less, and a second job into the same room continues it', async () => {
    await host.host(job());
    const call = await store.getCall('RM_abc');
    expect(call).toMatchObject({ callId: 'RM_abc', roomName: 'sip-room', state: 'active' });
    expect(call?.owner).toBeUndefined();
    expect(call?.metadata[META_DISPATCH]).toMatchObject({ jobId: 'AJ_1', dispatchId: 'AD_1' });
    await engine.stopBot('RM_abc');
    await host.host(job({ jobId: 'AJ_2' }));
    expect((await store.listCalls({})).calls).toHaveLength(1);
  });

  it('ends the job when its call ends, and the record unless the call goes on without this engine', async () => {
    await host.host(job());
    engine.emit('RM_abc', 'call_ended', { reason: 'caller_left' });
    expect(ended).toEqual(['AJ_1']);
    await expect.poll(async () => (await store.getCall('RM_abc'))?.state).toBe('ended');
    expect((await store.getCall('RM_abc'))?.endReason).toBe('caller_left');

    await host.host(job({ jobId: 'AJ_3', roomSid: 'RM_def', callId: 'RM_def' }));
    engine.emit('RM_def', 'call_ended', { reason: 'engine_closed' });
    expect(ended).toEqual(['AJ_1', 'AJ_3']);
    await new Promise((r) => setTimeout(r, 20));
    expect((await store.getCall('RM_def'))?.state).toBe('active');
  });

  it('a job whose bot cannot start is not held', async () => {
    engine.failNext('startBot', new Error('no room'));
    await expect(host.host(job())).rejects.toThrow('no room');
    expect(host.jobs().size).toBe(0);
  });
});
