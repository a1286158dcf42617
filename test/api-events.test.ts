/**
 * Live call events over SSE and WebSocket: replay from the store, resume with Last-Event-ID / afterSeq,
 * then live, each event once and in order.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RECENT_EVENTS_PER_CALL } from '../server/event-hub.ts';
import { FakeEngine } from '../server/testing/fake-engine.ts';
import { TEST_API_KEY, startHarness, type Harness } from '../server/testing/harness.ts';
import { StoreFaults } from '../server/testing/store-faults.ts';
import { startLiveKitServer, type LiveKitServerHandle } from './support/livekit-server.ts';

let livekit: LiveKitServerHandle;
let h: Harness;
const engine = new FakeEngine({ maxCalls: 100 });
const faults = new StoreFaults();

beforeAll(async () => {
  livekit = await startLiveKitServer();
  h = await startHarness({ livekit, engine, wrapStore: (store) => faults.wrap(store) });
});

afterEach(() => faults.restore());

afterAll(async () => {
  await h?.close();
  await livekit?.stop();
});

interface SseMessage {
  id: string;
  event: string;
  data: { seq: number; type: string; data: Record<string, unknown>; reason?: string; fromSeq?: number };
}

/**
 * Checks that a resumed stream never skips silently: after `afterSeq`, each event is the next seq, unless
 * a `reset` says where the stream goes on. Returns the resets seen.
 */
function expectNoSilentGap(messages: SseMessage[], afterSeq: number): { reason?: string; fromSeq?: number }[] {
  const resets: { reason?: string; fromSeq?: number }[] = [];
  let expected = afterSeq + 1;
  for (const m of messages) {
    if (m.event === 'reset') {
      expect(m.data.fromSeq).toBeGreaterThan(expected - 1);
      resets.push(m.data);
      expected = m.data.fromSeq!;
      continue;
    }
    expect(Number(m.id), `event after seq ${expected - 1}`).toBe(expected);
    expected++;
  }
  return resets;
}

/** Reads SSE messages from a fetch response: `take(n)` waits for the next n messages. */
function sseReader(res: Response): { take(count: number, timeoutMs?: number): Promise<SseMessage[]>; close(): Promise<void> } {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const queue: SseMessage[] = [];
  let buffer = '';
  return {
    async take(count, timeoutMs = 6000) {
      const deadline = Date.now() + timeoutMs;
      while (queue.length < count) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const got = queue.map((m) => (m.event === 'reset' ? 'reset' : m.id));
            reject(new Error(`got ${queue.length} of ${count} messages: ${got.slice(0, 5).join(',')} ... ${got.slice(-3).join(',')}`));
          }, Math.max(0, deadline - Date.now()));
        });
        const { value, done } = await Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
        if (done) throw new Error(`stream ended after ${queue.length} of ${count} messages`);
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(': ');
            fields[line.slice(0, colon)] = line.slice(colon + 2);
          }
          if (fields.data !== undefined) queue.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) });
        }
      }
      return queue.splice(0, count);
    },
    close: () => reader.cancel(),
  };
}

async function readSse(res: Response, count: number): Promise<SseMessage[]> {
  const sse = sseReader(res);
  const messages = await sse.take(count);
  await sse.close();
  return messages;
}

async function newCall(): Promise<string> {
  const res = await h.api('/v1/calls', { method: 'POST', json: {} });
  return ((await res.json()) as { callId: string }).callId;
}

describe('GET /v1/calls/:id/events (SSE)', () => {
  it('replays stored events, then streams live ones, each once and in order', async () => {
    const callId = await newCall(); // seq 1 = bot_status from startBot
    engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: 2 });
    engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: 3 });
    await h.outbox.flush();

    const res = await h.api(`/v1/calls/${callId}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const sse = sseReader(res);
    const replayed = await sse.take(3);
    // The stream is now live: these arrive through the hub, not the store.
    engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: 4 });
    engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: 5 });
    const messages = [...replayed, ...(await sse.take(2))];
    await sse.close();
    expect(messages.map((m) => Number(m.id))).toEqual([1, 2, 3, 4, 5]);
    expect(messages.map((m) => m.event)).toEqual(['bot_status', 'vad', 'vad', 'vad', 'vad']);
    expect(messages[4].data.data).toEqual({ event: 'speech_start', offsetMs: 5 });
  });

  it('resumes after Last-Event-ID, including events the outbox has not written yet', async () => {
    const callId = await newCall();
    for (let n = 2; n <= 6; n++) engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: n });
    const res = await h.api(`/v1/calls/${callId}/events`, { headers: { 'last-event-id': '3' } });
    expect(res.status).toBe(200);
    const messages = await readSse(res, 3);
    expect(messages.map((m) => Number(m.id))).toEqual([4, 5, 6]);
  });

  it('resumes with every event once, in order, while the outbox is still writing them to the store', async () => {
    const callId = await newCall();
    await h.outbox.flush();
    // The store refuses the outbox's writes for a while: it is behind the hub by more than the hub keeps.
    faults.fail('appendEvents');
    const total = RECENT_EVENTS_PER_CALL + 44;
    for (let n = 2; n <= total; n++) engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: n });
    const res = await h.api(`/v1/calls/${callId}/events`, { headers: { 'last-event-id': '10' } });
    expect(res.status).toBe(200);
    setTimeout(() => faults.restore('appendEvents'), 300);
    const messages = await readSse(res, total - 10);
    expect(faults.refused.get('appendEvents')).toBeGreaterThan(0);
    expect(expectNoSilentGap(messages, 10)).toEqual([]);
    expect(messages.map((m) => Number(m.id))).toEqual(Array.from({ length: total - 10 }, (_, i) => 11 + i));
  });

  it('resumes with every event once, in order, from a store that is up to date', async () => {
    const callId = await newCall();
    const total = RECENT_EVENTS_PER_CALL + 44;
    for (let n = 2; n <= total; n++) engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: n });
    await h.outbox.flush();
    const res = await h.api(`/v1/calls/${callId}/events`, { headers: { 'last-event-id': '10' } });
    const messages = await readSse(res, total - 10);
    expect(expectNoSilentGap(messages, 10)).toEqual([]);
    expect(Number(messages.at(-1)!.id)).toBe(total);
  });

  it('sends an explicit reset, never a silent gap, when resuming while the store is down', async () => {
    const callId = await newCall();
    const total = RECENT_EVENTS_PER_CALL + 44;
    for (let n = 2; n <= total; n++) engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: n });
    await h.outbox.flush();
    faults.fail('listEvents');
    const res = await h.api(`/v1/calls/${callId}/events`, { headers: { 'last-event-id': '10' } });
    expect(res.status).toBe(200);
    const sse = sseReader(res);
    // The hub holds only the newest RECENT_EVENTS_PER_CALL: 11..44 cannot be sent, so a reset must come.
    const first = total - RECENT_EVENTS_PER_CALL + 1;
    const replayed = await sse.take(1 + RECENT_EVENTS_PER_CALL);
    expect(faults.refused.get('listEvents')).toBeGreaterThan(1);
    expect(replayed[0]).toMatchObject({ event: 'reset', data: { type: 'reset', callId, reason: 'store_unavailable', fromSeq: first } });
    expect(replayed[0].id).toBeUndefined();
    engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: total + 1 });
    const messages = [...replayed, ...(await sse.take(1))];
    await sse.close();
    expect(expectNoSilentGap(messages, 10)).toHaveLength(1);
    expect(Number(messages.at(-1)!.id)).toBe(total + 1);
  });

  it('refuses an unknown call, a bad id and a bad Last-Event-ID with catalogued codes', async () => {
    const unknown = await h.api('/v1/calls/does-not-exist/events');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).error.code).toBe('VE_CALL_NOT_FOUND');
    const badId = await h.api('/v1/calls/..%2F..%2Fetc/events');
    expect(badId.status).toBe(400);
    const badHeader = await h.api(`/v1/calls/${await newCall()}/events`, { headers: { 'last-event-id': 'abc' } });
    expect(badHeader.status).toBe(400);
    expect(((await badHeader.json()) as any).error.code).toBe('VE_VALIDATION');
  });
});

describe('GET /v1/calls/:id/events/ws (WebSocket)', () => {
  function connect(path: string, key = TEST_API_KEY): WebSocket {
    // Node's WebSocket (undici) accepts headers as a non-standard option; browsers cannot send them.
    const Ctor = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;
    return new Ctor(`${h.baseUrl.replace('http', 'ws')}${path}`, { headers: { authorization: `Bearer ${key}` } });
  }

  it('streams events as JSON messages and resumes with afterSeq', async () => {
    const callId = await newCall();
    engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: 2 });
    const ws = connect(`/v1/calls/${callId}/events/ws?afterSeq=1`);
    const got: number[] = [];
    const done = new Promise<void>((resolve, reject) => {
      ws.onmessage = (msg) => {
        got.push((JSON.parse(String(msg.data)) as { seq: number }).seq);
        if (got.length === 3) resolve();
      };
      ws.onerror = () => reject(new Error('websocket error'));
    });
    await new Promise<void>((resolve) => (ws.onopen = () => resolve()));
    engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: 3 });
    engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: 4 });
    await done;
    ws.close();
    expect(got).toEqual([2, 3, 4]);
  });

  it('sends a reset message where events are missing while the store is down', async () => {
    const callId = await newCall();
    const total = RECENT_EVENTS_PER_CALL + 10;
    for (let n = 2; n <= total; n++) engine.emit(callId, 'vad', { event: 'speech_start', offsetMs: n });
    await h.outbox.flush();
    faults.fail('listEvents');
    const ws = connect(`/v1/calls/${callId}/events/ws?afterSeq=1`);
    const got: Record<string, any>[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`got ${got.length} messages, first ${JSON.stringify(got[0])}`)), 6000);
      ws.onmessage = (msg) => {
        got.push(JSON.parse(String(msg.data)) as Record<string, any>);
        if (got.length === 1 + RECENT_EVENTS_PER_CALL) {
          clearTimeout(timer);
          resolve();
        }
      };
      ws.onerror = () => reject(new Error('websocket error'));
    });
    ws.close();
    expect(got[0]).toEqual({ type: 'reset', callId, reason: 'store_unavailable', fromSeq: total - RECENT_EVENTS_PER_CALL + 1 });
    expect(got.slice(1).map((e) => e.seq)).toEqual(Array.from({ length: RECENT_EVENTS_PER_CALL }, (_, i) => total - RECENT_EVENTS_PER_CALL + 1 + i));
  });

  it('refuses the upgrade without a valid key, and a plain GET with 426', async () => {
    const callId = await newCall();
    const ws = connect(`/v1/calls/${callId}/events/ws`, 'wrong-key-0000000000000');
    const outcome = await new Promise<string>((resolve) => {
      ws.onopen = () => resolve('open');
      ws.onerror = () => resolve('error');
    });
    expect(outcome).toBe('error');
    const plain = await h.api(`/v1/calls/${callId}/events/ws`);
    expect(plain.status).toBe(426);
    expect(((await plain.json()) as any).error.code).toBe('VE_UPGRADE_REQUIRED');
  });
});
