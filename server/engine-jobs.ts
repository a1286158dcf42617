/**
 * The engine side of a dispatched job (`--role engine`): LiveKit's agent worker hands over a job, and
 * the engine hosts its call exactly as a REST-created one: same `startBot`, same events, same outbox,
 * joined with the job's token as `botIdentity(callId)`.
 *
 * A call the control plane created (room `call-<callId>`) already has its record. A job whose room the
 * API never saw (a SIP dispatch rule, another service's `createDispatch`) gets one here, created
 * idempotently under `callIdForJob` (the room sid) when the job starts, with no owner: only admin keys
 * see it in `GET /v1/calls`. The engine also ends such a record itself when its call ends, because no
 * `POST /v1/calls/:id/end` or webhook handler may ever hear of it. A REST-created call's record stays
 * the control plane's (ended by `/end`, webhooks, reconciliation), as in the embedded default.
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
  /** Calls whose record this engine made (a dispatch the API never saw): it also ends them. */
  #recordsOwned = new Set<string>();
  #unsubscribe: () => void;

  constructor(options: JobHostOptions) {
    this.options = options;
    this.#unsubscribe = options.engine.onEvent((event) => {
      if (event.type !== 'call_ended') return;
      const jobId = this.#jobs.get(event.callId);
      if (jobId === undefined) return;
      this.#jobs.delete(event.callId);
      options.endJob(jobId);
      const owned = this.#recordsOwned.delete(event.callId);
      if (owned && !CALL_CONTINUES.has(event.data.reason)) void this.#endRecord(event.callId, event.data.reason);
    });
  }

  /** For `AgentWorker.onJob`: resolves once the bot is in the room and listening. */
  async host(job: DispatchedJob): Promise<void> {
    const meta = parseDispatchMetadata(job.metadata);
    if (await this.#ensureRecord(job)) this.#recordsOwned.add(job.callId);
    this.#jobs.set(job.callId, job.jobId);
    try {
      await this.options.engine.startBot({
        callId: job.callId,
        roomName: job.roomName,
        ...(meta.callerIdentity !== undefined ? { callerIdentity: meta.callerIdentity } : {}),
        ...(meta.instructions !== undefined ? { instructions: meta.instructions } : {}),
        ...(meta.greeting !== undefined ? { greeting: meta.greeting } : {}),
        join: { url: job.url, token: job.token },
      });
    } catch (error) {
      this.#jobs.delete(job.callId);
      this.#recordsOwned.delete(job.callId);
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

  /** Whether the call's record is a dispatch's (made here or by an earlier job into the same room). */
  async #ensureRecord(job: DispatchedJob): Promise<boolean> {
    const { store, log } = this.options;
    try {
      const existing = await store.getCall(job.callId);
      if (existing !== null) return existing.metadata[META_DISPATCH] !== undefined;
      await store.createCall({
        callId: job.callId,
        roomName: job.roomName,
        state: 'active',
        metadata: { [META_DISPATCH]: { jobId: job.jobId, dispatchId: job.dispatchId, agentName: job.agentName, roomSid: job.roomSid } },
      });
      log.info({ callId: job.callId, roomName: job.roomName, jobId: job.jobId }, 'dispatched call recorded');
      return true;
    } catch (error) {
      // Two jobs into one room (a re-dispatch): the other created it first. Anything else: the store
      // is down; the call is answered all the same and its events wait in the outbox.
      if (error instanceof VoiceError && error.code === 'VE_CALL_EXISTS') return true;
      log.warn({ err: error, callId: job.callId }, 'could not record the dispatched call; hosting it anyway');
      return false;
    }
  }

  async #endRecord(callId: string, reason: string): Promise<void> {
    try {
      // Not from `human`: a call handed to a dispatcher goes on without its bot.
      await this.options.store.updateCall(callId, { state: 'ended', endedAt: new Date().toISOString(), endReason: reason }, { ifState: ['created', 'active'] });
    } catch (error) {
      // Already ended by the API or a webhook, or handed to a human: not the engine's to end.
      if (error instanceof VoiceError && error.code === 'VE_CALL_STATE_CONFLICT') return;
      this.options.log.warn({ err: error, callId }, 'could not mark the dispatched call ended');
    }
  }
}
