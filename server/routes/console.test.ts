/**
 * The live page's routes on the app with the in-test FakeEngine: static files (public), the engine
 * summary (authenticated) and the calls-running-now list folded from engine events. No LiveKit server
 * is contacted: nothing here creates rooms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallEngine } from '../../engine/call-engine.ts';
import { EngineLoad, type LoadProbe } from '../../engine/load/engine-load.ts';
import { FakeEngine } from '../testing/fake-engine.ts';
import { ADMIN_API_KEY, TEST_API_KEY_NAME, startHarness, type Harness } from '../testing/harness.ts';

let h: Harness;
const engine = new FakeEngine({ maxCalls: 7 });

beforeAll(async () => {
  // An address nobody answers on: these routes never talk to LiveKit.
  h = await startHarness({ livekit: { url: 'ws://127.0.0.1:9', apiKey: 'devkey', apiSecret: 'x'.repeat(32) }, engine });
});

afterAll(async () => {
  await h?.close();
});

describe('the live page', () => {
  it('serves the page, its scripts and LiveKit\'s browser SDK without a key', async () => {
    const redirect = await fetch(`${h.baseUrl}/console`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/console/');
    const html = await fetch(`${h.baseUrl}/console/`);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await html.text()).toContain('<script type="module" src="app.js">');
    for (const file of ['app.js', 'timeline.js']) {
      const res = await fetch(`${h.baseUrl}/console/${file}`);
      expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    }
    const sdk = await fetch(`${h.baseUrl}/console/vendor/livekit-client.esm.mjs`);
    expect(sdk.status).toBe(200);
    const text = await sdk.text();
    // Loads in a browser as is: no bare module specifiers to resolve.
    expect(text).not.toMatch(/(?:^|[;}\s])import\s*[\w{},*$\s]*from\s*["'][^./]/);
    expect(text).toMatch(/export\s*\{[^}]*\bRoom\b/);
  });

  it('serves nothing but the listed files', async () => {
    for (const name of ['__proto__', 'constructor', 'toString', '..%2Fapp.ts', 'missing.js']) {
      const res = await fetch(`${h.baseUrl}/console/${name}`);
      expect(res.status, name).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('VE_NOT_FOUND');
    }
  });

  it('reports engine load and the calls running now to an authenticated client', async () => {
    expect((await fetch(`${h.baseUrl}/v1/engine`)).status).toBe(401);

    engine.emit('call-a', 'bot_status', { state: 'listening', joined: true });
    engine.emit('call-b', 'bot_status', { state: 'listening', joined: true });
    engine.emit('call-a', 'turn', { event: 'user_turn_complete', turnId: 1, probability: 0.9, rule: 'model', speechEndMs: 1000, decidedAtMs: 1200 });
    engine.emit('call-a', 'latency', { turnId: 1, responseMs: 420, stagesMs: { endOfUtterance: 200, sttFinal: 210, llmFirstToken: 100, ttsFirstByte: 90 }, smartTurn: { probability: 0.9, rule: 'model' } });
    engine.emit('call-a', 'bot_status', { state: 'speaking' });
    engine.emit('call-b', 'call_ended', { reason: 'caller_left' });
    // Events of a call the page never saw start are not a call running now.
    engine.emit('call-c', 'turn', { event: 'user_turn_complete', turnId: 1, probability: null, rule: 'silence', speechEndMs: 0, decidedAtMs: 3000 });

    const res = await h.api('/v1/engine', { key: ADMIN_API_KEY });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body.capacity).toEqual(engine.capacity());
    expect(body.capacity.maxCalls).toBe(7);
    // An engine that admits by count only has no measured load.
    expect(body.load).toBeNull();
    expect(body.runtime).toBeNull();
    expect(body.offlineStandIns).toBe(false);
    expect(body.process.cpuCores).toBeGreaterThan(0);
    expect(body.process.rssBytes).toBeGreaterThan(0);
    expect(body.calls).toEqual([{ callId: 'call-a', startedAt: expect.any(String), botState: 'speaking', simulated: false, turns: 1, lastResponseMs: 420 }]);
    expect(body.simulatedCallers).toMatchObject({ callers: 0, failed: 0, responseLatencyMs: { count: 0, p50: null } });
  });

  it('shows the measured load and its parts as the engine reports them, null where nothing was measured', async () => {
    let calls = 3;
    const probe: LoadProbe = { activeCalls: () => calls, smartTurnThreads: 1, smartTurnBusyMs: () => 0, subscribe: () => () => {} };
    const load = new EngineLoad(probe, { turnDecisionTargetMs: 300, maxCalls: 7, sampleEventLoop: false });
    const withLoad: CallEngine = engine;
    withLoad.load = () => load.report();
    try {
      const body = (await (await h.api('/v1/engine', { key: ADMIN_API_KEY })).json()) as { load: Record<string, any> };
      expect(body.load).toMatchObject({ calls: 3, full: false, limit: 'maxCalls', turnDecisionTargetMs: 300, parts: { smartTurn: 0, maxCalls: 3 / 7 } });
      expect(body.load.load).toBeCloseTo(3 / 7, 9);
      expect(body.load.loadPerCall).toBeCloseTo(1 / 7, 9);
      expect(body.load.measured).toMatchObject({ turnDecisions: 0, turnDecisionP95Ms: null, smartTurnQueueWaitP95Ms: null, vadLatenessP95Ms: null, eventLoopDelayP99Ms: null });
      calls = 7;
      const atCap = (await (await h.api('/v1/engine', { key: ADMIN_API_KEY })).json()) as { load: Record<string, any> };
      expect(atCap.load).toMatchObject({ calls: 7, full: true, load: 1 });
    } finally {
      delete withLoad.load;
      load.close();
    }
  });

  it('lists only its own running calls to a key without the admin scope', async () => {
    await h.store.createCall({ callId: 'call-own', roomName: 'room-own', owner: TEST_API_KEY_NAME });
    await h.store.createCall({ callId: 'call-other', roomName: 'room-other', owner: 'other' });
    for (const callId of ['call-own', 'call-other']) engine.emit(callId, 'bot_status', { state: 'listening', joined: true });
    const mine = (await (await h.api('/v1/engine')).json()) as { calls: { callId: string }[] };
    expect(mine.calls.map((c) => c.callId)).toEqual(['call-own']);
    const all = (await (await h.api('/v1/engine', { key: ADMIN_API_KEY })).json()) as { calls: { callId: string }[] };
    expect(all.calls.map((c) => c.callId)).toEqual(['call-other', 'call-own', 'call-a']);
  });

  it('keeps the simulated callers to admin keys, and validates their number before placing any', async () => {
    for (const method of ['POST', 'DELETE']) {
      const res = await h.api('/v1/console/simulated-callers', { method, json: method === 'POST' ? { count: 1 } : undefined });
      expect(res.status, method).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('VE_FORBIDDEN');
    }
    for (const count of [0, 51, 1.5, 'many', null]) {
      const res = await h.api('/v1/console/simulated-callers', { method: 'POST', json: { count }, key: ADMIN_API_KEY });
      expect(res.status, String(count)).toBe(400);
    }
    const removed = await h.api('/v1/console/simulated-callers', { method: 'DELETE', key: ADMIN_API_KEY });
    expect(removed.status).toBe(200);
    expect(((await removed.json()) as any).simulatedCallers.callers).toBe(0);
  });

  it('lists /v1/engine and the simulated-callers routes in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as any;
    expect(doc.paths['/v1/engine'].get.responses['200']).toBeDefined();
    expect(doc.paths['/v1/console/simulated-callers'].post.requestBody.content['application/json'].schema.properties.count.maximum).toBe(50);
    expect(doc.paths['/console/{file}']).toBeUndefined();
  });
});

describe("the page's timeline", () => {
  interface Timeline {
    lastSeq: number;
    log: { text: string }[];
    callerSpeech: unknown[];
  }
  interface TimelineModule {
    CallTimeline: new (callId: string) => Timeline;
    parseSseBlock(block: string): { event: string; data: unknown } | null;
    foldSseMessage(timeline: Timeline, message: { event: string; data: unknown }): boolean;
  }

  it('starts again from fromSeq on a reset instead of keeping a timeline with a hole', async () => {
    const page = (await import(new URL('../console/public/timeline.js', import.meta.url).href)) as TimelineModule;
    const timeline = new page.CallTimeline('call-r');
    const event = (seq: number, data: Record<string, unknown>) =>
      `id: ${seq}\nevent: vad\ndata: ${JSON.stringify({ callId: 'call-r', seq, eventId: `e${seq}`, type: 'vad', at: new Date().toISOString(), data })}`;
    for (const block of [': stream start', event(1, { event: 'speech_start' }), event(2, { event: 'speech_end' })]) {
      const message = page.parseSseBlock(block);
      if (message !== null) expect(page.foldSseMessage(timeline, message)).toBe(false);
    }
    expect(timeline.lastSeq).toBe(2);
    expect(timeline.callerSpeech).toHaveLength(1);

    const reset = page.parseSseBlock(`event: reset\ndata: ${JSON.stringify({ type: 'reset', callId: 'call-r', reason: 'store_unavailable', fromSeq: 40 })}`);
    expect(page.foldSseMessage(timeline, reset!)).toBe(true);
    expect(timeline.lastSeq).toBe(39);
    expect(timeline.callerSpeech).toEqual([]);
    expect(timeline.log.map((l) => l.text)).toEqual(['stream reset (store_unavailable): events before #40 are not shown']);
    expect(page.foldSseMessage(timeline, page.parseSseBlock(event(40, { event: 'speech_start' }))!)).toBe(false);
    expect(timeline.lastSeq).toBe(40);
  });
});
