/**
 * The offline stand-in servers on their own thread. A real recogniser runs on another machine; its
 * stand-in must not eat the engine's main thread either (the Deepgram stand-in looks at every caller
 * sample, 48 000 a second per call). Started by `startStandIns` in `stand-ins.ts`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DeepgramFakeServer } from './deepgram-server.ts';
import { ElevenLabsFakeServer } from './elevenlabs-server.ts';
import { OpenAiFakeServer } from './openai-server.ts';
import { standInResponder, standInTranscript, type StandInRoles, type StandInWorkerMessage } from './stand-in-replies.ts';

const { roles, apiKey } = workerData as { roles: StandInRoles; apiKey: string };
const port = parentPort!;

const [stt, llm, tts] = await Promise.all([
  roles.stt ? DeepgramFakeServer.start({ apiKey, transcribe: ({ index, durationMs }) => standInTranscript(index, durationMs) }) : undefined,
  roles.llm ? OpenAiFakeServer.start({ apiKey, responder: standInResponder }) : undefined,
  roles.tts ? ElevenLabsFakeServer.start({ apiKey }) : undefined,
]);

port.on('message', (message: { type: 'close' }) => {
  if (message.type !== 'close') return;
  void Promise.allSettled([stt?.close(), llm?.close(), tts?.close()]).then(() => {
    port.postMessage({ type: 'closed' } satisfies StandInWorkerMessage);
    port.close();
  });
});
port.postMessage({ type: 'ready', urls: { stt: stt?.url, llm: llm?.baseUrl, tts: tts?.baseUrl } } satisfies StandInWorkerMessage);
