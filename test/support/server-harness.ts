/**
 * The product as `npm start` runs it, in this process: `startServer` from server/main.ts with a test
 * configuration (the shared loopback LiveKit server, a temporary DATA_DIR, one API key), the real
 * VoiceEngine on the real models, and the providers' official SDKs configured, through DEEPGRAM_URL,
 * OPENAI_BASE_URL and ELEVENLABS_BASE_URL, to point at local wire-protocol servers the test controls.
 * Tests drive it through the HTTP API, and a caller joins with the token `POST /v1/calls` returns.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { EngineEvent } from '../../engine/events.ts';
import { loadConfig } from '../../server/config.ts';
import { startServer, type RunningServer } from '../../server/main.ts';
import { DeepgramFakeServer } from '../../engine/providers/local/deepgram-server.ts';
import { OpenAiFakeServer } from '../../engine/providers/local/openai-server.ts';
import { ElevenLabsFakeServer } from '../../engine/providers/local/elevenlabs-server.ts';
import { TestCaller } from './caller.ts';

export const SERVER_API_KEY = 'real-call-key-0123456789abcdef';

/** An engine event as the test saw it, with its arrival on this process's monotonic clock. */
export type SeenEvent = EngineEvent & { seenAtMonoMs: number };

export interface PlacedApiCall {
  callId: string;
  roomName: string;
  caller: TestCaller;
}

export interface ServerHarness {
  server: RunningServer;
  deepgram: DeepgramFakeServer;
  openai: OpenAiFakeServer;
  elevenlabs: ElevenLabsFakeServer;
  events: SeenEvent[];
  /** fetch() against the API with the test key; `json` becomes the body. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** `POST /v1/calls`, then a caller joins the room with the returned token. */
  placeCall(): Promise<PlacedApiCall>;
  close(): Promise<void>;
}

export { eventsOf } from './events.ts';

/** `settings`: environment-style overrides of the test configuration. */
export async function startServerHarness(opts: { settings?: Record<string, string> } = {}): Promise<ServerHarness> {
  const dataDir = mkdtempSync(join(tmpdir(), 've-real-'));
  const [deepgram, openai, elevenlabs] = await Promise.all([DeepgramFakeServer.start(), OpenAiFakeServer.start(), ElevenLabsFakeServer.start()]);
  const config = loadConfig({
    CI: '1',
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    API_KEYS: `${SERVER_API_KEY}:tester`,
    RATE_LIMIT_MAX: '100000',
    LIVEKIT_URL: inject('livekitUrl'),
    LIVEKIT_API_KEY: inject('livekitApiKey'),
    LIVEKIT_API_SECRET: inject('livekitApiSecret'),
    DATA_DIR: dataDir,
    RECORDING_DIR: join(dataDir, 'recordings'),
    DEEPGRAM_API_KEY: 'test-key',
    DEEPGRAM_URL: deepgram.url,
    OPENAI_API_KEY: 'test-key',
    OPENAI_BASE_URL: openai.baseUrl,
    ELEVENLABS_API_KEY: 'test-key',
    ELEVENLABS_BASE_URL: elevenlabs.baseUrl,
    ...opts.settings,
  });
  let server: RunningServer;
  try {
    server = await startServer(config, () => {});
  } catch (error) {
    await Promise.all([deepgram.close(), openai.close(), elevenlabs.close()]);
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const events: SeenEvent[] = [];
  server.engine.onEvent((e) => events.push({ ...e, seenAtMonoMs: performance.now() }));
  const callers: TestCaller[] = [];

  const api = (path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${SERVER_API_KEY}`);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    return fetch(`${server.baseUrl}${path}`, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
  };

  return {
    server,
    deepgram,
    openai,
    elevenlabs,
    events,
    api,
    async placeCall() {
      const res = await api('/v1/calls', { method: 'POST', json: { callerName: 'test driver' } });
      const body = (await res.json()) as { callId: string; roomName: string; livekitUrl: string; callerIdentity: string; callerToken: string };
      if (res.status !== 201) throw new Error(`POST /v1/calls answered ${res.status}: ${JSON.stringify(body)}`);
      const caller = await TestCaller.connect({ url: body.livekitUrl, token: body.callerToken, identity: body.callerIdentity });
      callers.push(caller);
      return { callId: body.callId, roomName: body.roomName, caller };
    },
    async close() {
      await Promise.all(callers.map((c) => c.leave()));
      await server.close();
      await Promise.all([deepgram.close(), openai.close(), elevenlabs.close()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
