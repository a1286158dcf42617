/**
 * The engine side of a dispatched job (`--role engine`): LiveKit's agent worker hands over a job, and
 * the engine hosts its call exactly as a REST-created one: same `startBot`, same events, same outbox,
 * joined with the job's token as `botIdentity(callId)`.
 *
 * A call the control plane created (room `call-<callId>`) already has its record. A job whose room the
 * API never saw (a SIP dispatch rule, another service's `createDispatch`) gets one here, created
 * idempotently under `callIdForJob` (the room sid) when the job starts, with no owner: only admin keys
 * see it in `GET /v1/calls`. The engine also ends such a record itself when its call ends, because no
 * `POST /v1/calls/:id/end` or webhook handler may ever hear of it.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { DispatchedJob } from '../engine/dispatch/worker-events.ts';
import { VoiceError } from '../engine/errors.ts';
import type { VoiceEngine } from '../engine/voice-engine.ts';
import { INTERNAL_METADATA_PREFIX } from './schemas.ts';
import { parseDispatchMetadata } from './dispatch-engine.ts';
import type { CallStore } from './store/call-store.ts';

/** Where the record of a dispatched call came from: `api` (POST /v1/calls) or `dispatch` (created by the engine). */
export const META_DISPATCH = `${INTERNAL_METADATA_PREFIX}Dispatch`;

/** `call_ended` reasons after which the call goes on without this engine: its record stays open. */
const CALL_CONTINUES = new Set(['stopped', 'engine_closed']);

export interface JobHostOptions {
  engine: Pick<VoiceEngine, 'startBot' | 'stopBot' | 'onEvent'>;
  store: Pick<CallStore, 'getCall' | 'createCall' | 'updateCall'>;
  log: Pick<FastifyBaseLogger, 'warn' | 'info'>;
  /** Tells the agent worker a job's call ended (AgentWorker.endJob). */
  endJob(jobId: string): void;
}

export class JobHost {
  readonly options: JobHostOptions;
  /** callId -> jobId of the calls this engine hosts for LiveKit. */
  #jobs = new Map<string, string>();
  #unsubscribe: () => void;

  constructor(options: JobHostOptions) {
    this.options = options;
    this.#unsubscribe = options.engine.onEvent((event) => {
      if (event.type !== 'call_ended') return;
      const jobId = this.#jobs.get(event.callId);
      if (jobId === undefined) return;
      this.#jobs.delete(event.callId);
      options.endJob(jobId);
      if (!CALL_CONTINUES.has(event.data.reason)) void this.#endRecord(event.callId, event.data.reason);
    });
  }

  /** For `AgentWorker.onJob`: resolves once the bot is in the room and listening. */
  async host(job: DispatchedJob): Promise<void> {
    const meta = parseDispatchMetadata(job.metadata);
    await this.#ensureRecord(job);
    this.#jobs.set(job.callId, job.jobId);
    try {
      await this.options.engine.startBot({
        callId: job.callId,
        roomName: job.roomName,
        ...(meta.callerIdentity !== undefined ? { callerIdentity: meta.callerIdentity } : {}),
        ...(meta.instructions !== undefined ? { instructions: meta.instructions } : {}),
        join: { url: job.url, token: job.token },
      });
    } catch (error) {
      this.#jobs.delete(job.callId);
      throw error;
    }
  }

  /** For `AgentWorker.onTerminate`: LiveKit ended the job (room or dispatch deleted). */
  async terminate(job: DispatchedJob): Promise<void> {
    await this.options.engine.stopBot(job.callId);
  }

  /** The calls hosted for LiveKit jobs, as callId -> jobId. */
  jobs(): ReadonlyMap<string, string> {
    return this.#jobs;
  }

  close(): void {
    this.#unsubscribe();
  }

  async #ensureRecord(job: DispatchedJob): Promise<void> {
    const { store, log } = this.options;
    try {
      if ((await store.getCall(job.callId)) !== null) return;
      await store.createCall({
        callId: job.callId,
        roomName: job.roomName,
        state: 'active',
        metadata: { [META_DISPATCH]: { jobId: job.jobId, dispatchId: job.dispatchId, agentName: job.agentName, roomSid: job.roomSid } },
      });
      log.info({ callId: job.callId, roomName: job.roomName, jobId: job.jobId }, 'dispatched call recorded');
    } catch (error) {
      // Two jobs into one room (a re-dispatch): the other created it first. Anything else: the store
      // is down; the call is answered all the same and its events wait in the outbox.
      if (error instanceof VoiceError && error.code === 'VE_CALL_EXISTS') return;
      log.warn({ err: error, callId: job.callId }, 'could not record the dispatched call; hosting it anyway');
    }
  }

  async #endRecord(callId: string, reason: string): Promise<void> {
    try {
      await this.options.store.updateCall(callId, { state: 'ended', endedAt: new Date().toISOString(), endReason: reason }, { ifState: ['created', 'active', 'human'] });
    } catch (error) {
      // Already ended by the API or a webhook: nothing to do.
      if (error instanceof VoiceError && error.code === 'VE_CALL_STATE_CONFLICT') return;
      this.options.log.warn({ err: error, callId }, 'could not mark the dispatched call ended');
    }
  }
}
