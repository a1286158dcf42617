/**
 * Worker thread for pcm-ring.test.ts: plays one side of a ring (or waits on a doorbell) per message,
 * so the property test exercises two real threads sharing memory.
 */
import { parentPort } from 'node:worker_threads';
import { Doorbell } from './doorbell.ts';
import { PcmRing } from './pcm-ring.ts';
import { consumeAll, produceCounter, type ConsumePlan, type ProducePlan } from './spsc-harness.ts';

export type WorkerRequest =
  | { id: number; role: 'produce'; buffer: SharedArrayBuffer; plan: ProducePlan; stallTimeoutMs: number }
  | { id: number; role: 'consume'; buffer: SharedArrayBuffer; plan: ConsumePlan; stallTimeoutMs: number }
  | { id: number; role: 'doorbell-wait'; buffer: SharedArrayBuffer; timeoutMs: number };

export type WorkerReply =
  | { id: number; acceptedPerChunk: number[] }
  | { id: number; received: Int16Array }
  | { id: number; waiting: true; seen: number }
  | { id: number; outcome: string }
  | { id: number; error: string };

const port = parentPort;
if (port === null) throw new Error('ring-test-worker.ts must run in a worker thread');

async function serve(request: WorkerRequest): Promise<WorkerReply> {
  if (request.role === 'produce') {
    return { id: request.id, acceptedPerChunk: await produceCounter(PcmRing.attach(request.buffer), request.plan, request.stallTimeoutMs) };
  }
  if (request.role === 'consume') {
    const ring = PcmRing.attach(request.buffer);
    return { id: request.id, received: await consumeAll(ring, request.plan, request.stallTimeoutMs) };
  }
  const bell = Doorbell.attach(request.buffer);
  const seen = bell.current();
  // Tell the main thread which value we hold before blocking, so its ring() must change it.
  port!.postMessage({ id: request.id, waiting: true, seen } satisfies WorkerReply);
  return { id: request.id, outcome: bell.waitSync(seen, request.timeoutMs) };
}

port.on('message', (request: WorkerRequest) => {
  serve(request).then(
    (reply) => port.postMessage(reply),
    (error: unknown) => port.postMessage({ id: request.id, error: String((error as Error)?.stack ?? error) }),
  );
});
