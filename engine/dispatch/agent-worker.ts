/**
 * The engine process as a LiveKit agent worker: it registers under an agent name, answers LiveKit's
 * availability requests from its load, hosts each assigned job through `onJob`, reports job status,
 * honours terminations, reports its load, and re-registers whenever the session drops.
 *
 * What LiveKit (1.13, open source) does around it, read from its source and checked in
 * test/agent-worker.test.ts:
 * - A dispatch goes to one worker of the agent name that reports `available`, chosen at random
 *   weighted by `1 - load`; a worker that answers "not available" is skipped and the next is asked;
 *   when none accepts, the job is dropped (no retry, no queue).
 * - When a worker's session drops, LiveKit forgets it and its jobs (no re-dispatch, no migration; a
 *   dispatch's `restartPolicy` is stored but not acted on). The bots stay in their rooms: their
 *   media connections are separate. So after re-registering (under a new worker id) this worker
 *   keeps its calls and counts them in its load, but LiveKit will not send terminations for them:
 *   the engine notices those calls end through the room itself.
 * - A bot that leaves its room makes LiveKit terminate the job (reason "agent left room").
 */
import { JobStatus, WorkerMessage, WorkerStatus, type AvailabilityRequest, type JobAssignment, type ServerMessage } from '@livekit/protocol';
import { ClosedError, VoiceError } from '../errors.ts';
import { botIdentity } from '../transport/bot-identity.ts';
import { callIdForJob } from '../transport/call-room.ts';
import { JobLedger, type LedgerEntry, type WorkerReport } from './job-ledger.ts';
import type { LoadFigure, LoadSource } from './load.ts';
import { WorkerConnection } from './worker-connection.ts';
import type { AgentWorkerEvent, AgentWorkerEventOf, AgentWorkerEventType, DispatchedJob } from './worker-events.ts';

export interface AgentWorkerTiming {
  /** How often the load is reported besides every change of the job book. */
  loadReportIntervalMs: number;
  pingIntervalMs: number;
  /** No message from LiveKit for this long: the session is treated as dead and replaced. */
  silenceTimeoutMs: number;
  registerTimeoutMs: number;
  /** A job answered "available" whose assignment has not come by then is given up (agents-js: 7.5 s). */
  assignmentTimeoutMs: number;
  /** First delay before reconnecting; doubles per failed attempt up to the maximum, with jitter. */
  reconnectMinDelayMs: number;
  reconnectMaxDelayMs: number;
}

export const DEFAULT_AGENT_WORKER_TIMING: Readonly<AgentWorkerTiming> = Object.freeze({
  loadReportIntervalMs: 1000,
  pingIntervalMs: 3000,
  silenceTimeoutMs: 10_000,
  registerTimeoutMs: 10_000,
  assignmentTimeoutMs: 7500,
  reconnectMinDelayMs: 100,
  reconnectMaxDelayMs: 5000,
});

export interface AgentWorkerOptions {
  /** LiveKit URL (`ws(s)://` or `http(s)://`). */
  url: string;
  apiKey: string;
  apiSecret: string;
  /** LiveKit dispatches explicitly by this name (`AGENT_NAME`). */
  agentName: string;
  load: LoadSource;
  /** Hosts the job's call; resolves once it is hosted (the job is then reported running). */
  onJob(job: DispatchedJob): Promise<void>;
  /** LiveKit ended the job (its dispatch or room was deleted): stop the call. */
  onTerminate(job: DispatchedJob): Promise<void>;
  /** Load at or under which one more call is admitted, in (0, 1]; default 1. */
  loadThreshold?: number;
  /** Display name and attributes of the bot participant in every job token. */
  participantName?: string;
  participantAttributes?: Record<string, string>;
  /** Reported to LiveKit as the worker version. */
  version?: string;
  timing?: Partial<AgentWorkerTiming>;
  /** A listener threw; never rethrown. */
  onListenerError?: (error: unknown) => void;
}

interface JobData {
  callId: string;
  roomName: string;
  resuming: boolean;
  assignmentTimer: NodeJS.Timeout | undefined;
  /** Set once LiveKit assigned the job. */
  job: DispatchedJob | undefined;
}

export interface AgentWorkerStatus {
  workerId: string | undefined;
  connected: boolean;
  registrations: number;
  /** Round trip of the last ping, -1 when unknown. */
  rttMs: number;
  report: WorkerReport;
}

/** The `message` oneof of a `WorkerMessage`, as a plain object. */
type WorkerMessageBody = NonNullable<NonNullable<ConstructorParameters<typeof WorkerMessage>[0]>['message']>;

/** The figure used when the load source throws: full, so nothing is admitted on a guess. */
const UNKNOWN_LOAD: LoadFigure = { load: 1, loadPerCall: 1 };

export class AgentWorker {
  readonly options: AgentWorkerOptions;
  readonly timing: AgentWorkerTiming;
  #ledger: JobLedger<JobData>;
  #listeners = new Set<(event: AgentWorkerEvent) => void>();
  #connection: WorkerConnection | undefined;
  #registrations = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #started: Promise<{ workerId: string }> | undefined;
  #resolveStarted: ((value: { workerId: string }) => void) | undefined;
  #rejectStarted: ((error: unknown) => void) | undefined;
  #endSession: (() => void) | undefined;
  #reportTimer: NodeJS.Timeout | undefined;
  #counters = { accepted: 0, refused: 0, succeeded: 0, failed: 0 };

  constructor(options: AgentWorkerOptions) {
    if (options.agentName.trim() === '') {
      // An empty name means automatic dispatch to every room: never what an engine process wants.
      throw new VoiceError('VE_AGENT_NAME_REQUIRED', 'an agent worker needs a non-empty agent name');
    }
    this.options = options;
    this.timing = { ...DEFAULT_AGENT_WORKER_TIMING, ...options.timing };
    this.#ledger = new JobLedger({ loadThreshold: options.loadThreshold });
  }

  /**
   * Starts registering; resolves at the first registration. Connection failures are retried for
   * ever (LiveKit may start after the engine); only a refused key (`VE_AGENT_UNAUTHORIZED`) before
   * the first registration rejects, and closes the worker. Idempotent.
   */
  start(): Promise<{ workerId: string }> {
    if (this.#started) return this.#started;
    this.#started = new Promise((resolve, reject) => {
      this.#resolveStarted = resolve;
      this.#rejectStarted = reject;
    });
    // Closing before the first registration rejects it; that must not crash a caller that did not wait.
    this.#started.catch(() => undefined);
    if (this.#closed) {
      this.#rejectStarted?.(new ClosedError('agent worker'));
      return this.#started;
    }
    this.#reportTimer = setInterval(() => this.#sendReport(), this.timing.loadReportIntervalMs);
    this.#loop = this.#run();
    return this.#started;
  }

  get workerId(): string | undefined {
    return this.#connection?.workerId;
  }

  status(): AgentWorkerStatus {
    return {
      workerId: this.workerId,
      connected: this.#connection?.open ?? false,
      registrations: this.#registrations,
      rttMs: this.#connection?.lastRttMs ?? -1,
      report: this.#ledger.report(this.#readLoad()),
    };
  }

  /** Flat gauges and counters for /metrics; the same load figure LiveKit is told. */
  metrics(): Record<string, number> {
    const { connected, registrations, rttMs, report } = this.status();
    return {
      agent_worker_connected: connected ? 1 : 0,
      agent_worker_registrations_total: registrations,
      agent_worker_rtt_ms: rttMs,
      agent_worker_load: report.load,
      agent_worker_full: report.full ? 1 : 0,
      agent_worker_jobs: report.jobCount,
      agent_worker_jobs_accepted_total: this.#counters.accepted,
      agent_worker_jobs_refused_total: this.#counters.refused,
      agent_worker_jobs_succeeded_total: this.#counters.succeeded,
      agent_worker_jobs_failed_total: this.#counters.failed,
    };
  }

  /** The jobs this worker holds, in every phase. */
  jobs(): Array<{ jobId: string; callId: string; phase: LedgerEntry<JobData>['phase'] }> {
    return this.#ledger.entries().map((e) => ({ jobId: e.jobId, callId: e.data.callId, phase: e.phase }));
  }

  /** The engine ended a job's call (caller left, call ended through the API): report it to LiveKit. */
  endJob(jobId: string, outcome: { error?: string } = {}): boolean {
    const entry = this.#ledger.get(jobId);
    if (entry === undefined || entry.phase === 'accepted') return false;
    this.#finish(entry, outcome.error);
    return true;
  }

  /** Refuse every new job and report full from now on; held jobs go on until they end. */
  drain(): void {
    this.#ledger.drain();
    this.#sendReport();
  }

  /** Returns the unsubscribe function. A listener that throws never breaks the worker. */
  on<K extends AgentWorkerEventType>(type: K, listener: (event: AgentWorkerEventOf<K>) => void): () => void {
    const wrapped = (event: AgentWorkerEvent): void => {
      if (event.type === type) listener(event as AgentWorkerEventOf<K>);
    };
    this.#listeners.add(wrapped);
    return () => this.#listeners.delete(wrapped);
  }

  /**
   * Idempotent. Leaves LiveKit (the session closes, LiveKit forgets this worker) and gives up jobs
   * not yet assigned. Calls already hosted are the engine's: they keep running until it stops them.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      clearInterval(this.#reportTimer);
      this.#abort.abort();
      for (const entry of this.#ledger.entries()) {
        if (entry.phase !== 'accepted') continue;
        clearTimeout(entry.data.assignmentTimer);
        this.#ledger.release(entry.jobId);
      }
      this.#rejectStarted?.(new ClosedError('agent worker'));
      const connection = this.#connection;
      this.#connection = undefined;
      this.#endSession?.();
      await connection?.close();
      await this.#loop;
    })();
    return this.#closing;
  }

  async #run(): Promise<void> {
    let failedAttempts = 0;
    while (!this.#closed) {
      const sessionEnded = new Promise<{ code: number; reason: string }>((resolve) => {
        this.#endSession = () => resolve({ code: 1000, reason: 'worker closed' });
      });
      let lost: ((info: { code: number; reason: string }) => void) | undefined;
      const sessionLost = new Promise<{ code: number; reason: string }>((resolve) => (lost = resolve));
      let connection: WorkerConnection;
      try {
        connection = await WorkerConnection.open(
          {
            url: this.options.url,
            apiKey: this.options.apiKey,
            apiSecret: this.options.apiSecret,
            agentName: this.options.agentName,
            version: this.options.version ?? 'voice-density-engine',
            registerTimeoutMs: this.timing.registerTimeoutMs,
            pingIntervalMs: this.timing.pingIntervalMs,
            silenceTimeoutMs: this.timing.silenceTimeoutMs,
          },
          {
            onRegistered: (registered) => {
              this.#connection = registered;
              this.#registered(registered);
            },
            onMessage: (message) => this.#onMessage(message),
            onLost: (info) => lost?.(info),
            onProtocolError: (error) => this.#emit({ type: 'error', where: 'message', error }),
          },
          this.#abort.signal,
        );
      } catch (error) {
        if (this.#closed) return;
        if (error instanceof VoiceError && error.code === 'VE_AGENT_UNAUTHORIZED' && this.#registrations === 0) {
          this.#rejectStarted?.(error);
          void this.close();
          return;
        }
        failedAttempts++;
        const retryInMs = this.#backoffMs(failedAttempts);
        this.#emit({ type: 'connect_failed', error, failedAttempts, retryInMs });
        await this.#sleep(retryInMs);
        continue;
      }
      if (this.#closed) {
        await connection.close();
        return;
      }
      failedAttempts = 0;
      const info = await Promise.race([sessionLost, sessionEnded]);
      if (this.#closed) return;
      this.#connection = undefined;
      this.#sessionLost(connection.workerId, info);
      await this.#sleep(this.timing.reconnectMinDelayMs);
    }
  }

  #registered(connection: WorkerConnection): void {
    this.#registrations++;
    // LiveKit forgot our jobs with the old session; they still run, so say so under the new id
    // (LiveKit 1.13 ignores updates for jobs it does not know) and count them in the load.
    for (const entry of this.#ledger.entries()) {
      if (entry.phase === 'running') this.#sendJobStatus(entry.jobId, JobStatus.JS_RUNNING);
    }
    this.#sendReport();
    this.#resolveStarted?.({ workerId: connection.workerId });
    this.#emit({
      type: 'registered',
      workerId: connection.workerId,
      registrations: this.#registrations,
      serverVersion: connection.serverVersion,
      nodeId: connection.nodeId,
      jobCount: this.#ledger.size,
    });
  }

  #sessionLost(workerId: string, info: { code: number; reason: string }): void {
    // An assignment can only come on the session that asked; those jobs are gone with it.
    for (const entry of this.#ledger.entries()) {
      if (entry.phase !== 'accepted') continue;
      clearTimeout(entry.data.assignmentTimer);
      this.#ledger.release(entry.jobId);
    }
    this.#emit({ type: 'disconnected', workerId, code: info.code, reason: info.reason, reconnectInMs: this.timing.reconnectMinDelayMs });
  }

  #onMessage(message: ServerMessage): void {
    switch (message.message.case) {
      case 'availability':
        this.#onAvailability(message.message.value);
        return;
      case 'assignment':
        this.#onAssignment(message.message.value);
        return;
      case 'termination':
        this.#onTermination(message.message.value.jobId);
        return;
      default:
        return;
    }
  }

  /** Synchronous from reading the load to answering: see JobLedger. */
  #onAvailability(request: AvailabilityRequest): void {
    const job = request.job;
    if (job === undefined) return;
    const roomName = job.room?.name ?? '';
    const callId = callIdForJob({ roomName, roomSid: job.room?.sid ?? '', jobId: job.id });
    const admission = this.#ledger.admit(job.id, this.#readLoad(), { callId, roomName, resuming: request.resuming, assignmentTimer: undefined, job: undefined });
    if (admission.accepted) {
      const entry = this.#ledger.get(job.id)!;
      entry.data.assignmentTimer = setTimeout(() => this.#assignmentTimedOut(entry), this.timing.assignmentTimeoutMs);
      this.#send({
        case: 'availability',
        value: {
          jobId: job.id,
          available: true,
          participantIdentity: botIdentity(callId),
          participantName: this.options.participantName ?? '',
          participantAttributes: this.options.participantAttributes ?? {},
        },
      });
      this.#counters.accepted++;
      this.#emit({ type: 'availability', jobId: job.id, roomName, callId, accepted: true, load: admission.loadAfter });
      this.#sendReport();
    } else {
      this.#send({ case: 'availability', value: { jobId: job.id, available: false } });
      this.#counters.refused++;
      this.#emit({ type: 'availability', jobId: job.id, roomName, callId, accepted: false, reason: admission.reason, load: admission.load });
    }
  }

  #assignmentTimedOut(entry: LedgerEntry<JobData>): void {
    if (this.#ledger.get(entry.jobId) !== entry || entry.phase !== 'accepted') return;
    this.#ledger.release(entry.jobId);
    this.#counters.failed++;
    this.#emit({ type: 'job_status', jobId: entry.jobId, callId: entry.data.callId, status: 'failed', error: `no assignment within ${this.timing.assignmentTimeoutMs} ms` });
    this.#sendReport();
  }

  #onAssignment(assignment: JobAssignment): void {
    const proto = assignment.job;
    if (proto === undefined) return;
    const entry = this.#ledger.get(proto.id);
    if (entry === undefined || entry.phase !== 'accepted') {
      // We gave up waiting (or never accepted it): tell LiveKit so the job does not look hosted.
      this.#sendJobStatus(proto.id, JobStatus.JS_FAILED, 'the worker was no longer waiting for this assignment');
      return;
    }
    clearTimeout(entry.data.assignmentTimer);
    this.#ledger.move(proto.id, 'starting');
    entry.data.job = {
      jobId: proto.id,
      dispatchId: proto.dispatchId,
      agentName: proto.agentName,
      roomName: entry.data.roomName,
      roomSid: proto.room?.sid ?? '',
      callId: entry.data.callId,
      identity: botIdentity(entry.data.callId),
      url: assignment.url || this.options.url,
      token: assignment.token,
      metadata: proto.metadata,
      attributes: { ...proto.attributes },
      resuming: entry.data.resuming,
    };
    void this.#host(entry, entry.data.job);
  }

  async #host(entry: LedgerEntry<JobData>, job: DispatchedJob): Promise<void> {
    try {
      await this.options.onJob(job);
    } catch (error) {
      this.#finish(entry, error instanceof Error ? error.message : String(error));
      return;
    }
    // The engine may have ended the call already (endJob while starting).
    if (this.#ledger.get(job.jobId) !== entry) return;
    this.#ledger.move(job.jobId, 'running');
    this.#sendJobStatus(job.jobId, JobStatus.JS_RUNNING);
    this.#emit({ type: 'job_status', jobId: job.jobId, callId: job.callId, status: 'running' });
    this.#sendReport();
    if (entry.terminateRequested) void this.#terminate(entry, job);
  }

  #onTermination(jobId: string): void {
    const entry = this.#ledger.get(jobId);
    if (entry === undefined) return;
    switch (entry.phase) {
      case 'accepted':
        clearTimeout(entry.data.assignmentTimer);
        this.#ledger.release(jobId);
        this.#sendReport();
        return;
      case 'starting':
        // Stopped once hosting finishes: stopping a half-started call races its start.
        entry.terminateRequested = true;
        return;
      case 'running':
        void this.#terminate(entry, entry.data.job!);
        return;
      case 'ending':
        return;
    }
  }

  async #terminate(entry: LedgerEntry<JobData>, job: DispatchedJob): Promise<void> {
    this.#ledger.move(job.jobId, 'ending');
    let error: string | undefined;
    try {
      await this.options.onTerminate(job);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    this.#finish(entry, error);
  }

  /** Reports the end of a job once, whoever ends it first (the engine or a termination). */
  #finish(entry: LedgerEntry<JobData>, error: string | undefined): void {
    if (this.#ledger.get(entry.jobId) !== entry) return;
    this.#ledger.release(entry.jobId);
    clearTimeout(entry.data.assignmentTimer);
    this.#sendJobStatus(entry.jobId, error === undefined ? JobStatus.JS_SUCCESS : JobStatus.JS_FAILED, error);
    if (error === undefined) this.#counters.succeeded++;
    else this.#counters.failed++;
    this.#emit({ type: 'job_status', jobId: entry.jobId, callId: entry.data.callId, status: error === undefined ? 'success' : 'failed', ...(error === undefined ? {} : { error }) });
    this.#sendReport();
  }

  #readLoad(): LoadFigure {
    try {
      return this.options.load();
    } catch (error) {
      this.#emit({ type: 'error', where: 'load', error });
      return UNKNOWN_LOAD;
    }
  }

  #sendReport(): void {
    if (this.#connection === undefined) return;
    const report = this.#ledger.report(this.#readLoad());
    this.#send({
      case: 'updateWorker',
      value: { status: report.full ? WorkerStatus.WS_FULL : WorkerStatus.WS_AVAILABLE, load: report.load, jobCount: report.jobCount },
    });
  }

  #sendJobStatus(jobId: string, status: JobStatus, error?: string): void {
    this.#send({ case: 'updateJob', value: { jobId, status, error: error ?? '' } });
  }

  #send(message: WorkerMessageBody): void {
    this.#connection?.send(new WorkerMessage({ message }));
  }

  #backoffMs(failedAttempts: number): number {
    const ceilingMs = Math.min(this.timing.reconnectMaxDelayMs, this.timing.reconnectMinDelayMs * 2 ** failedAttempts);
    // Jitter spreads the engines out when a LiveKit node comes back.
    return Math.round(ceilingMs * (0.5 + Math.random() / 2));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.#abort.signal;
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #emit(event: AgentWorkerEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.options.onListenerError?.(error);
      }
    }
  }
}
