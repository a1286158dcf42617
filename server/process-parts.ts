/**
 * The parts a process is assembled from, whatever its role (server/main.ts): the store and this
 * process's own outbox journal, the voice engine with its media engine and providers, and the
 * ordered clean-up that closes them.
 */
import { MediaEngine } from '../engine/media-engine.ts';
import { VoiceEngine } from '../engine/voice-engine.ts';
import type { Config } from './config.ts';
import { engineOptions, resolveEngineModels } from './engine-options.ts';
import { startProviders, type Providers } from './providers.ts';
import type { CallStore } from './store/call-store.ts';
import { openCallStore } from './store/open-store.ts';
import { Outbox } from './store/outbox.ts';

/** Start-up progress lines, before the app's own logger exists. */
export type ProgressLog = (line: string) => void;

export type Cleanup = Array<{ what: string; close: () => Promise<unknown> }>;

/** The call store (MongoDB or embedded) and this process's own outbox journal under DATA_DIR. */
export function openStoreAndOutbox(config: Config, cleanup: Cleanup): { store: CallStore; outbox: Outbox } {
  const store: CallStore = openCallStore({ dataDir: config.store.dataDir, mongodbUri: config.store.mongodbUri });
  cleanup.push({ what: 'store', close: () => store.close() });
  const outbox = Outbox.open({ dataDir: config.store.dataDir, store });
  cleanup.push({ what: 'outbox', close: () => outbox.close() });
  return { store, outbox };
}

/** The media engine (warmed up), the provider clients or stand-ins, and the voice engine over them. */
export async function startVoiceEngine(
  config: Config,
  log: ProgressLog,
  cleanup: Cleanup,
  onListenerError: (error: unknown) => void,
): Promise<{ engine: VoiceEngine; media: MediaEngine; providers: Providers; models: { vadPath: string; smartTurnPath: string } }> {
  log('resolving models ...');
  const models = await resolveEngineModels(config, log);
  const options = engineOptions(config, models);

  const providers = await startProviders(config.providers);
  cleanup.push({ what: 'provider stand-ins', close: () => providers.close() });

  log(`starting the media engine (${config.engine.workers} media + ${config.engine.turnWorkers} Smart Turn workers, warming up) ...`);
  const media = await MediaEngine.start(options.media);
  cleanup.push({ what: 'media engine', close: () => media.close() });

  const engine = new VoiceEngine({
    ...options.voice,
    media,
    livekit: { url: config.livekit.url, apiKey: config.livekit.apiKey, apiSecret: config.livekit.apiSecret },
    providers: { stt: providers.stt, llm: providers.llm, tts: providers.tts },
    onListenerError,
  });
  cleanup.push({ what: 'voice engine', close: () => engine.close() });
  return { engine, media, providers, models };
}

/** Closes in reverse start order: the app stops taking requests before the engine goes, the store last but LiveKit. */
export function closer(cleanup: Cleanup, log: ProgressLog): () => Promise<void> {
  return async () => {
    for (const step of cleanup.reverse()) {
      try {
        await step.close();
      } catch (error) {
        log(`closing ${step.what} failed: ${(error as Error).message}`);
      }
    }
    cleanup.length = 0;
  };
}
