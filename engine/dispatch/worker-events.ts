/**
 * What crosses the agent worker's boundary: the job it hands to the engine, and the events it
 * emits (for logs, metrics and tests). One discriminated union, one member per event name.
 */
import type { RefusalReason } from './job-ledger.ts';

/** A job LiveKit assigned to this worker: host its call exactly as a REST-created call. */
export interface DispatchedJob {
  jobId: string;
  /** Empty for jobs not created by an explicit dispatch. */
  dispatchId: string;
  agentName: string;
  roomName: string;
  roomSid: string;
  /** From `callIdForJob`: the REST call's id for rooms named `call-<callId>`, else the room sid. */
  callId: string;
  /** The identity the job's token carries (`botIdentity(callId)`). */
  identity: string;
  /** LiveKit URL to join with `token` (the assignment's, else the worker's own). */
  url: string;
  /** Join token minted by LiveKit for `identity`, valid for about an hour. */
  token: string;
  /** The dispatch's metadata, as given to `createDispatch` (often JSON). */
  metadata: string;
  /** The dispatch's attributes. */
  attributes: Record<string, string>;
  /** LiveKit says the job ran on another worker before. */
  resuming: boolean;
}

export type JobOutcome = 'running' | 'success' | 'failed';

export type AgentWorkerEvent =
  | { type: 'registered'; workerId: string; /** 1 for the first registration, then 2, 3... after reconnects. */ registrations: number; serverVersion: string; nodeId: string; jobCount: number }
  | { type: 'disconnected'; workerId: string; code: number; reason: string; reconnectInMs: number }
  | { type: 'availability'; jobId: string; roomName: string; callId: string; accepted: boolean; reason?: RefusalReason; load: number }
  | { type: 'job_status'; jobId: string; callId: string; status: JobOutcome; error?: string }
  | { type: 'connect_failed'; error: unknown; failedAttempts: number; retryInMs: number }
  | { type: 'error'; where: 'load' | 'message'; error: unknown };

export type AgentWorkerEventType = AgentWorkerEvent['type'];

export type AgentWorkerEventOf<K extends AgentWorkerEventType> = Extract<AgentWorkerEvent, { type: K }>;
