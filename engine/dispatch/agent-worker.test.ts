/**
 * The worker against a stand-in `/agent` endpoint, where the test decides exactly when each server
 * message arrives. The same flows against a real LiveKit server are in test/agent-worker.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { JobStatus, WorkerStatus } from '@livekit/protocol';
import { AgentWorker, type AgentWorkerOptions } from './agent-worker.ts';
import { FakeAgentServer, fakeJob, nextMessage, sentMessages } from './fake-agent-server.ts';
import type { AgentWorkerEvent, DispatchedJob } from './worker-events.ts';
import type { LoadFigure } from './load.ts';
import { withTimeout } from '../with-timeout.ts';

const FAST = { loadReportIntervalMs: 100, pingIntervalMs: 50, silenceTimeoutMs: 300, registerTimeoutMs: 1000, assignmentTimeoutMs: 300, reconnectMinDelayMs: 20, reconnectMaxDelayMs: 100 };

let server: FakeAgentServer | undefined;
const workers: AgentWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close()));
  await server?.close();
  server = undefined;
});

function worker(overrides: Partial<AgentWorkerOptions> = {}): { worker: AgentWorker; events: AgentWorkerEvent[] } {
  const w = new AgentWorker({
    url: server!.url,
    apiKey: 'devkey',
    apiSecret: 'secret-secret-secret-secret-secret',
    agentName: 'test-agent',
    load: () => ({ load: 0, loadPerCall: 0.1 }),
    onJob: async () => undefined,
    onTerminate: async () => undefined,
    timing: FAST,
    ...overrides,
  });
  workers.push(w);
  const events: AgentWorkerEvent[] = [];
  for (const type of ['registered', 'disconnected', 'availability', 'job_status', 'connect_failed', 'error'] as const) w.on(type, (e) => events.push(e));
  return { worker: w, events };
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('AgentWorker protocol', () => {
  it('registers under its agent name for room jobs, with the bot permissions', async () => {
    server = await FakeAgentServer.start();
    const { worker: w } = worker();
    expect(await w.start()).toEqual({ workerId: 'AW_fake1' });
    const session = await server.session(1);
    const register = await nextMessage(session, 'register');
    expect(register).toMatchObject({ agentName: 'test-agent', version: 'voice-density-engine' });
    expect(register.allowedPermissions).toMatchObject({ canPublish: true, canSubscribe: true, canPublishData: true, canUpdateMetadata: true, agent: true });
    expect(await nextMessage(session, 'updateWorker')).toMatchObject({ status: WorkerStatus.WS_AVAILABLE, load: 0, jobCount: 0 });
    // Keepalive: pings go out and their pongs give a round-trip time.
    await nextMessage(session, 'ping');
    await expect.poll(() => w.status().rttMs).toBeGreaterThanOrEqual(0);
  });

  it('accepts only one of two availability requests that arrive together for the last slot (agents#4884)', async () => {
    server = await FakeAgentServer.start();
    // Two of three slots in use; the engine's figure does not move while the new jobs are pending.
    const figure: LoadFigure = { load: 2 / 3, loadPerCall: 1 / 3 };
    const { worker: w, events } = worker({ load: () => figure });
    await w.start();
    const session = await server.session(1);
    session.send({ case: 'availability', value: { job: fakeJob('AJ_a', 'call-a') } });
    session.send({ case: 'availability', value: { job: fakeJob('AJ_b', 'call-b') } });
    await nextMessage(session, 'availability', (a) => a.jobId === 'AJ_b');
    const answers = sentMessages(session, 'availability');
    expect(answers.map((a) => [a.jobId, a.available])).toEqual([
      ['AJ_a', true],
      ['AJ_b', false],
    ]);
    expect(events.flatMap((e) => (e.type === 'availability' ? [[e.accepted, e.reason]] : []))).toEqual([
      [true, undefined],
      [false, 'full'],
    ]);
    // The accepted job already counts: the worker reports itself full before it is even assigned.
    const lastReport = sentMessages(session, 'updateWorker').at(-1)!;
    expect(lastReport).toMatchObject({ status: WorkerStatus.WS_FULL, jobCount: 1 });
    expect(lastReport.load).toBeCloseTo(1, 5);
  });

  it('answers with the bot identity, hosts the assigned job, and reports it running only once hosted', async () => {
    server = await FakeAgentServer.start();
    const hosting = deferred();
    const jobs: DispatchedJob[] = [];
    const { worker: w } = worker({
      participantName: 'AI agent',
      participantAttributes: { 've.role': 'bot' },
      onJob: async (job) => {
        jobs.push(job);
        await hosting.promise;
      },
    });
    await w.start();
    const session = await server.session(1);
    session.send({ case: 'availability', value: { job: fakeJob('AJ_1', 'call-c1') } });
    const answer = await nextMessage(session, 'availability');
    expect(answer).toMatchObject({ jobId: 'AJ_1', available: true, participantIdentity: 'bot-c1', participantName: 'AI agent', participantAttributes: { 've.role': 'bot' } });
    session.send({ case: 'assignment', value: { job: fakeJob('AJ_1', 'call-c1'), token: 'jwt-from-livekit' } });
    await expect.poll(() => jobs.length).toBe(1);
    expect(jobs[0]).toMatchObject({ jobId: 'AJ_1', dispatchId: 'AD_AJ_1', callId: 'c1', identity: 'bot-c1', roomName: 'call-c1', url: server.url, token: 'jwt-from-livekit', metadata: '{"k":1}' });
    expect(w.jobs()).toEqual([{ jobId: 'AJ_1', callId: 'c1', phase: 'starting' }]);
    expect(sentMessages(session, 'updateJob')).toEqual([]);
    hosting.resolve();
    expect(await nextMessage(session, 'updateJob')).toMatchObject({ jobId: 'AJ_1', status: JobStatus.JS_RUNNING });
    expect(w.endJob('AJ_1')).toBe(true);
    expect(await nextMessage(session, 'updateJob', (u) => u.status !== JobStatus.JS_RUNNING)).toMatchObject({ jobId: 'AJ_1', status: JobStatus.JS_SUCCESS });
    expect(w.jobs()).toEqual([]);
    expect(w.endJob('AJ_1')).toBe(false);
    expect(w.metrics()).toMatchObject({ agent_worker_connected: 1, agent_worker_jobs: 0, agent_worker_jobs_accepted_total: 1, agent_worker_jobs_succeeded_total: 1, agent_worker_jobs_failed_total: 0 });
  });

  it('reports a job whose call could not be hosted as failed and frees its slot', async () => {
    server = await FakeAgentServer.start();
    const { worker: w } = worker({ load: () => ({ load: 0, loadPerCall: 1 }), onJob: async () => Promise.reject(new Error('room join failed')) });
    await w.start();
    const session = await server.session(1);
    session.send({ case: 'availability', value: { job: fakeJob('AJ_1', 'elsewhere') } });
    expect(await nextMessage(session, 'availability')).toMatchObject({ available: true, participantIdentity: 'bot-RM_AJ_1' });
    session.send({ case: 'assignment', value: { job: fakeJob('AJ_1', 'elsewhere'), token: 't' } });
    expect(await nextMessage(session, 'updateJob')).toMatchObject({ jobId: 'AJ_1', status: JobStatus.JS_FAILED, error: 'room join failed' });
    expect(w.status().report).toEqual({ load: 0, full: false, jobCount: 0 });
  });

  it('stops a call terminated while it was being hosted once hosting finishes', async () => {
    server = await FakeAgentServer.start();
    const hosting = deferred();
    const terminated: string[] = [];
    const { worker: w } = worker({ onJob: () => hosting.promise, onTerminate: async (job) => void terminated.push(job.jobId) });
    await w.start();
    const session = await server.session(1);
    session.send({ case: 'availability', value: { job: fakeJob('AJ_1', 'call-x') } });
    await nextMessage(session, 'availability');
    session.send({ case: 'assignment', value: { job: fakeJob('AJ_1', 'call-x'), token: 't' } });
    await expect.poll(() => w.jobs()[0]?.phase).toBe('starting');
    session.send({ case: 'termination', value: { jobId: 'AJ_1' } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(terminated).toEqual([]);
    hosting.resolve();
    expect(await nextMessage(session, 'updateJob', (u) => u.status === JobStatus.JS_SUCCESS)).toMatchObject({ jobId: 'AJ_1' });
    expect(terminated).toEqual(['AJ_1']);
  });

  it('reports a job once when the engine ends its call while a termination is stopping it', async () => {
    server = await FakeAgentServer.start();
    const stopping = deferred();
    let w!: AgentWorker;
    ({ worker: w } = worker({
      onTerminate: async (job) => {
        // Stopping the bot ends the call, and the engine reports that as it does for any call end.
        w.endJob(job.jobId);
        await stopping.promise;
      },
    }));
    await w.start();
    const session = await server.session(1);
    session.send({ case: 'availability', value: { job: fakeJob('AJ_1', 'call-x') } });
    await nextMessage(session, 'availability');
    session.send({ case: 'assignment', value: { job: fakeJob('AJ_1', 'call-x'), token: 't' } });
    await nextMessage(session, 'updateJob', (u) => u.status === JobStatus.JS_RUNNING);
    session.send({ case: 'termination', value: { jobId: 'AJ_1' } });
    await nextMessage(session, 'updateJob', (u) => u.status === JobStatus.JS_SUCCESS);
    stopping.resolve();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sentMessages(session, 'updateJob').map((u) => u.status)).toEqual([JobStatus.JS_RUNNING, JobStatus.JS_SUCCESS]);
  });

  it('gives up a job whose assignment does not come, and refuses it when it comes late', async () => {
    server = await FakeAgentServer.start();
    const hosted: string[] = [];
    const { worker: w, events } = worker({ load: () => ({ load: 0, loadPerCall: 1 }), onJob: async (job) => void hosted.push(job.jobId) });
    await w.start();
    const session = await server.session(1);
    session.send({ case: 'availability', value: { job: fakeJob('AJ_1', 'call-late') } });
    await nextMessage(session, 'availability');
    expect(w.status().report.full).toBe(true);
    await expect.poll(() => events.some((e) => e.type === 'job_status' && e.status === 'failed')).toBe(true);
    expect(w.status().report.full).toBe(false);
    session.send({ case: 'assignment', value: { job: fakeJob('AJ_1', 'call-late'), token: 't' } });
    expect(await nextMessage(session, 'updateJob')).toMatchObject({ jobId: 'AJ_1', status: JobStatus.JS_FAILED });
    expect(hosted).toEqual([]);
  });

  it('re-registers after the session drops and keeps reporting the calls it still holds', async () => {
    server = await FakeAgentServer.start();
    const { worker: w, events } = worker({ load: () => ({ load: 0.2, loadPerCall: 0.1 }) });
    await w.start();
    const first = await server.session(1);
    first.send({ case: 'availability', value: { job: fakeJob('AJ_run', 'call-run') } });
    first.send({ case: 'availability', value: { job: fakeJob('AJ_wait', 'call-wait') } });
    await nextMessage(first, 'availability', (a) => a.jobId === 'AJ_wait');
    first.send({ case: 'assignment', value: { job: fakeJob('AJ_run', 'call-run'), token: 't' } });
    await nextMessage(first, 'updateJob', (u) => u.status === JobStatus.JS_RUNNING);
    first.drop();
    const second = await server.session(2);
    expect(second.workerId).not.toBe(first.workerId);
    // The running call is still ours; the job that was waiting for its assignment is gone with the session.
    expect(w.jobs()).toEqual([{ jobId: 'AJ_run', callId: 'run', phase: 'running' }]);
    expect(await nextMessage(second, 'updateJob')).toMatchObject({ jobId: 'AJ_run', status: JobStatus.JS_RUNNING });
    expect(await nextMessage(second, 'updateWorker')).toMatchObject({ jobCount: 1, status: WorkerStatus.WS_AVAILABLE });
    expect(events.filter((e) => e.type === 'registered').map((e) => e.type === 'registered' && e.registrations)).toEqual([1, 2]);
    expect(events.find((e) => e.type === 'disconnected')).toMatchObject({ workerId: first.workerId });
  });

  it('replaces a session whose server went silent without closing it', async () => {
    server = await FakeAgentServer.start();
    const { worker: w, events } = worker();
    await w.start();
    const first = await server.session(1);
    first.silent = true;
    const second = await server.session(2, 3000);
    expect(second.workerId).toBe('AW_fake2');
    expect(events.find((e) => e.type === 'disconnected')).toMatchObject({ reason: `no message from LiveKit for ${FAST.silenceTimeoutMs} ms` });
  });

  it('rejects start with VE_AGENT_UNAUTHORIZED when LiveKit refuses the key', async () => {
    server = await FakeAgentServer.start({ refuseWithStatus: 401 });
    const { worker: w } = worker();
    await expect(w.start()).rejects.toMatchObject({ code: 'VE_AGENT_UNAUTHORIZED', retryable: false });
  });

  it('keeps retrying an unreachable server, and close() ends that at once and is idempotent', async () => {
    server = await FakeAgentServer.start();
    const unreachable = server.url.replace(/:\d+$/, ':1');
    const { worker: w, events } = worker({ url: unreachable });
    const started = w.start();
    await expect.poll(() => events.filter((e) => e.type === 'connect_failed').length).toBeGreaterThanOrEqual(2);
    const t0 = Date.now();
    await Promise.all([w.close(), w.close()]);
    expect(Date.now() - t0).toBeLessThan(500);
    await expect(started).rejects.toMatchObject({ code: 'VE_CLOSED' });
    await expect(w.start()).rejects.toMatchObject({ code: 'VE_CLOSED' });
  });

  it('closes its session on close(), refusing nothing it already hosts', async () => {
    server = await FakeAgentServer.start();
    const { worker: w } = worker();
    await w.start();
    const session = await server.session(1);
    await withTimeout(Promise.all([w.close(), session.closed]), 2000, 'session closed');
    expect(w.status().connected).toBe(false);
  });
});
