/**
 * vitest global setup: one LiveKit server on loopback for the whole run, shared by every test file
 * through `inject('livekitUrl')` etc. Tests that need their own configuration (webhooks, Redis)
 * start their own with `startLiveKitServer`; tests that need a database use `mongoUriForTests`.
 */
import type { TestProject } from 'vitest/node';
import { startLiveKitServer } from './support/livekit-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `ws://127.0.0.1:PORT` of the shared LiveKit server. */
    livekitUrl: string;
    livekitApiKey: string;
    livekitApiSecret: string;
  }
}

/** Starts the shared server; the returned function is vitest's teardown. */
export default async function setup(project: Pick<TestProject, 'provide'>): Promise<() => Promise<void>> {
  const server = await startLiveKitServer();
  project.provide('livekitUrl', server.url);
  project.provide('livekitApiKey', server.apiKey);
  project.provide('livekitApiSecret', server.apiSecret);
  return async () => {
    await server.stop();
  };
}
