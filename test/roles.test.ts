/**
 * The split roles on the real LiveKit server (test global setup) and a real database (FerretDB over
 * the MongoDB wire protocol): one `npm start -- --role api` process and one `--role engine` process,
 * each a child process sharing only LiveKit and MONGODB_URI. A call created through the API reaches
 * the engine as a LiveKit agent job; a dispatch made directly with livekit-server-sdk into a room the
 * API never saw (what a SIP dispatch rule does) is answered and recorded too. The engine runs the
 * offline provider stand-ins: the recogniser reports "utterance N", the LLM acknowledges it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { dispose } from '@livekit/rtc-node';
import { TestCaller, waitFor } from './support/caller.ts';
import { startEngineProcess, type EngineProcess } from './support/engine-process.ts';
import { startFerretDb, type FerretDbHandle } from './support/ferretdb.ts';
import { synthesizeSpeech } from './support/speech.ts';

const url = inject('livekitUrl');
const apiKey = inject('livekitApiKey');
const apiSecret = inject('livekitApiSecret');
/** A key that is not admin: it sees only the calls it created. */
const CALLS_KEY = 'roles-calls-key-0123456789abcdef';

let ferret: FerretDbHandle;
let api: EngineProcess;
let engine: EngineProcess;
const callers: TestCaller[] = [];
const agentName = `roles-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  ferret = await startFerretDb();
  const shared = {
    LIVEKIT_URL: url,
    LIVEKIT_API_KEY: apiKey,
    LIVEKIT_API_SECRET: apiSecret,
    MONGODB_URI: `${ferret.uri}roles_${randomUUID().slice(0, 8)}`,
    AGENT_NAME: agentName,
    LOG_LEVEL: 'warn',
  };
  // Started side by side: the engine's model warm-up is the long part.
  [api, engine] = await Promise.all([
    // The polls below would pass the default per-key rate limit.
    startEngineProcess({ ...shared, API_KEYS: `main-test-key-0123456789abcdef:tester:admin,${CALLS_KEY}:dispatch`, RATE_LIMIT_MAX: '100000' }, { args: ['--role', 'api'] }),
    startEngineProcess(shared, { args: ['--role', 'engine'] }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all(callers.map((c) => c.leave()));
  await Promise.all([api?.kill(), engine?.kill()]);
  await ferret?.stop();
  await dispose();
});

interface Segment {
  speaker: string;
  text: string;
}
interface CallDetail {
  callId: string;
  roomName: string;
  state: string;
  transcript: Segment[];
}

async function readCall(callId: string): Promise<CallDetail> {
  const res = await api.api(`/v1/calls/${callId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as CallDetail;
}

/** Speaks once and waits for the bot's voice at the caller's ear. */
async function speakAndHearAnswer(caller: TestCaller): Promise<void> {
  const spoken = caller.say(synthesizeSpeech('Hello, can you send someone to the north gate please?', { sampleRate: 48_000 }));
  await spoken.done;
  await waitFor('the bot to answer at the caller', () => caller.firstAudible(spoken.startedAt), 30_000);
}

/** The transcript in the store, as the API serves it, with a caller turn and the bot's reply. */
async function transcriptWithAnswer(callId: string): Promise<CallDetail> {
  return waitFor(
    'caller and bot segments in GET /v1/calls/:id',
    async () => {
      const call = await readCall(callId);
      const speakers = new Set(call.transcript.map((s) => s.speaker));
      return speakers.has('caller') && speakers.has('bot') ? call : null;
    },
    20_000,
  );
}

/**
 * The stored event containing `needle`, read through the API's SSE route, which replays the store.
 * Re-opened until it shows: the api role has no live events of remote calls (README: Roles), so an
 * event written after a stream opened never reaches that stream.
 */
async function storedEventText(callId: string, needle: string, timeoutMs: number): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let text = '';
  while (performance.now() < deadline) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 1000);
    text = '';
    try {
      const res = await api.api(`/v1/calls/${callId}/events`, { signal: abort.signal });
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        const at = text.indexOf(needle);
        if (at >= 0) return text.slice(text.lastIndexOf('\n', at), text.indexOf('\n', at));
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }
  throw new Error(`no ${needle} among the stored events of ${callId} within ${timeoutMs} ms (last read: ${text.slice(-300)})`);
}

describe('npm start -- --role api and --role engine, sharing LiveKit and MongoDB', () => {
  it('the api role refuses to start without MONGODB_URI (the embedded store is one process\'s)', async () => {
    await expect(startEngineProcess({ LIVEKIT_URL: url }, { args: ['--role', 'api'] })).rejects.toThrow(/ROLE=api needs MONGODB_URI/);
  });

  it('the engine serves /healthz and /metrics, with the agent worker registered', async () => {
    expect((await fetch(`${engine.baseUrl}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${engine.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/^ve_agent_worker_connected 1$/m);
    expect(metrics).toMatch(/^ve_engine_calls_active \d+$/m);
    expect(engine.output()).toContain('role engine');
  });

  it('POST /v1/calls on the api process: the engine process gets the job, answers the caller, and the transcript is in the API', async () => {
    const res = await api.api('/v1/calls', { method: 'POST', json: { callerName: 'roles test' } });
    const body = (await res.json()) as { callId: string; roomName: string; livekitUrl: string; callerIdentity: string; callerToken: string };
    expect(res.status).toBe(201);
    const caller = await TestCaller.connect({ url: body.livekitUrl, token: body.callerToken, identity: body.callerIdentity });
    callers.push(caller);
    // The bot is the engine process's, joined with the job's token under the call's bot identity.
    await waitFor('the bot in the room', () => caller.room.remoteParticipants.has(`bot-${body.callId}`), 20_000);
    await speakAndHearAnswer(caller);
    const call = await transcriptWithAnswer(body.callId);
    expect(call.roomName).toBe(body.roomName);
    expect(call.transcript.find((s) => s.speaker === 'caller')?.text).toMatch(/utterance 1/);

    // Engine-side recording needs the call's engine, which lives in another process: said so, not "failed".
    const recording = await api.api(`/v1/calls/${body.callId}/recording/start`, { method: 'POST' });
    expect(recording.status).toBe(501);
    expect(((await recording.json()) as { error: { code: string } }).error.code).toBe('VE_ENGINE_REMOTE');

    // Transcriber mode crosses processes through the room's metadata: the bot stays, silent, and the
    // caller's words are still transcribed into the store.
    const botSegments = call.transcript.filter((s) => s.speaker === 'bot').length;
    const transcriber = await api.api(`/v1/calls/${body.callId}/handoff`, { method: 'POST', json: { botMode: 'transcriber' } });
    expect(transcriber.status).toBe(200);
    // The engine applied it: its `bot_mode` event reached the store (replayed by the API's SSE route).
    expect(await storedEventText(body.callId, '"type":"bot_mode"', 10_000)).toContain('"mode":"transcriber"');
    const spoken = caller.say(synthesizeSpeech('This is the dispatcher speaking now, thank you.', { sampleRate: 48_000 }));
    await spoken.done;
    const afterHandoff = await waitFor(
      'the second caller turn in the store',
      async () => {
        const c = await readCall(body.callId);
        return c.transcript.filter((s) => s.speaker === 'caller').length >= 2 ? c : null;
      },
      20_000,
    );
    // Long enough for the bot to have answered had it still been active: Smart Turn's silence
    // fallback (3 s) plus the stand-in LLM and TTS (< 1 s).
    await new Promise((r) => setTimeout(r, 4500));
    expect(caller.firstAudible(spoken.startedAt)).toBeNull();
    expect((await readCall(body.callId)).transcript.filter((s) => s.speaker === 'bot')).toHaveLength(botSegments);
    expect(afterHandoff.state).toBe('human');

    // Removing the bot works across processes: the API removes it from the room, its engine ends the call.
    const removed = await api.api(`/v1/calls/${body.callId}/handoff`, { method: 'POST', json: { botMode: 'remove' } });
    expect(removed.status).toBe(200);
    await waitFor('the bot to leave the room', () => !caller.room.remoteParticipants.has(`bot-${body.callId}`), 10_000);
    await waitFor('the engine to drop the call', async () => /^ve_engine_calls_active 0$/m.test(await (await fetch(`${engine.baseUrl}/metrics`)).text()), 10_000);
    expect((await readCall(body.callId)).state).toBe('human');
    const ended = await api.api(`/v1/calls/${body.callId}/end`, { method: 'POST' });
    expect(ended.status).toBe(200);
    expect((await readCall(body.callId)).state).toBe('ended');
  }, 80_000);

  it('a dispatch made directly with livekit-server-sdk into a fresh room is answered and recorded, visible to admin keys only', async () => {
    const roomName = `sip-${randomUUID().slice(0, 8)}`;
    const dispatches = new AgentDispatchClient(url, apiKey, apiSecret);
    const caller = await TestCaller.join({ url, apiKey, apiSecret, roomName, identity: 'sip-caller' });
    callers.push(caller);
    await dispatches.createDispatch(roomName, agentName, { metadata: 'from a SIP dispatch rule' });
    await waitFor('the bot in the room', () => [...caller.room.remoteParticipants.keys()].some((id) => id.startsWith('bot-')), 20_000);
    await speakAndHearAnswer(caller);

    const listed = await waitFor(
      'the dispatched call in GET /v1/calls',
      async () => {
        const page = (await (await api.api('/v1/calls?limit=100')).json()) as { calls: Array<{ callId: string; roomName: string }> };
        return page.calls.find((c) => c.roomName === roomName);
      },
      10_000,
    );
    const call = await transcriptWithAnswer(listed.callId);
    expect(call.state).toBe('active');
    // Its bot identity is the call's: the engine and the API derived the same id (the room sid).
    expect(caller.room.remoteParticipants.has(`bot-${listed.callId}`)).toBe(true);

    // Nobody's API key created it: a non-admin key neither lists nor reads it.
    const asCalls = (path: string) => fetch(`${api.baseUrl}${path}`, { headers: { authorization: `Bearer ${CALLS_KEY}` } });
    const theirs = (await (await asCalls('/v1/calls?limit=100')).json()) as { calls: Array<{ roomName: string }> };
    expect(theirs.calls.some((c) => c.roomName === roomName)).toBe(false);
    expect((await asCalls(`/v1/calls/${listed.callId}`)).status).toBe(404);

    // The caller hangs up: the engine ends the record itself (no API or webhook ever heard of the call).
    await caller.leave();
    callers.splice(callers.indexOf(caller), 1);
    await waitFor('the record ended', async () => (await readCall(listed.callId)).state === 'ended', 15_000);
  }, 80_000);
});
