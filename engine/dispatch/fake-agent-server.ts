/**
 * A stand-in for LiveKit's `/agent` endpoint, for tests that need to place server messages exactly
 * (two availability requests in one tick, an assignment after the worker gave up, a server that goes
 * silent). It speaks the same protobuf messages; the real server is exercised in
 * test/agent-worker.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Job, JobType, Room, ServerMessage, WorkerMessage } from '@livekit/protocol';
import { WebSocketServer, type RawData, type WsServer, type WsSocket } from '../providers/local/ws.ts';
import { withTimeout } from '../with-timeout.ts';

export interface FakeAgentServerOptions {
  /** Answer the upgrade with this HTTP status instead of accepting it. */
  refuseWithStatus?: number;
}

/** The `message` oneof of a `ServerMessage`, as a plain object. */
export type ServerMessageBody = NonNullable<NonNullable<ConstructorParameters<typeof ServerMessage>[0]>['message']>;

/** One worker session as the server sees it. */
export interface FakeWorkerSession {
  readonly workerId: string;
  readonly received: WorkerMessage[];
  /** Stop answering pings (the TCP connection stays up): a hung server. */
  silent: boolean;
  send(message: ServerMessageBody): void;
  /** Drop the TCP connection without a close frame. */
  drop(): void;
  readonly closed: Promise<void>;
}

function bytesOf(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

export function fakeJob(id: string, roomName: string, roomSid = `RM_${id}`): Job {
  return new Job({ id, dispatchId: `AD_${id}`, type: JobType.JT_ROOM, room: new Room({ name: roomName, sid: roomSid }), agentName: 'test-agent', metadata: '{"k":1}' });
}

export class FakeAgentServer {
  readonly url: string;
  readonly sessions: FakeWorkerSession[] = [];
  readonly #http: Server;
  readonly #wss: WsServer;
  readonly #sockets = new Set<WsSocket>();
  #sessionWaiters: Array<() => void> = [];

  private constructor(http: Server, wss: WsServer, url: string) {
    this.#http = http;
    this.#wss = wss;
    this.url = url;
  }

  static async start(options: FakeAgentServerOptions = {}): Promise<FakeAgentServer> {
    const http = createServer((_req, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({ noServer: true });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const server = new FakeAgentServer(http, wss, `ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
    http.on('upgrade', (req, socket, head) => {
      if (req.url !== '/agent' || !req.headers.authorization?.startsWith('Bearer ') || options.refuseWithStatus !== undefined) {
        socket.end(`HTTP/1.1 ${options.refuseWithStatus ?? 401} Refused\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => server.#accept(ws));
    });
    return server;
  }

  #accept(ws: WsSocket): void {
    this.#sockets.add(ws);
    const workerId = `AW_fake${this.sessions.length + 1}`;
    const received: WorkerMessage[] = [];
    const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
    const session: FakeWorkerSession = {
      workerId,
      received,
      silent: false,
      send: (message) => ws.send(new ServerMessage({ message }).toBinary()),
      drop: () => ws.terminate(),
      closed,
    };
    ws.on('message', (data) => {
      const message = WorkerMessage.fromBinary(bytesOf(data));
      received.push(message);
      if (message.message.case === 'register') {
        this.sessions.push(session);
        session.send({ case: 'register', value: { workerId, serverInfo: { version: 'fake', nodeId: 'ND_fake' } } });
        for (const wake of this.#sessionWaiters.splice(0)) wake();
      } else if (message.message.case === 'ping' && !session.silent) {
        session.send({ case: 'pong', value: { lastTimestamp: message.message.value.timestamp, timestamp: BigInt(Date.now()) } });
      }
    });
  }

  /** The `n`-th registered session (1-based), once it exists. */
  async session(n: number, timeoutMs = 5000): Promise<FakeWorkerSession> {
    await withTimeout(
      (async () => {
        while (this.sessions.length < n) await new Promise<void>((resolve) => this.#sessionWaiters.push(resolve));
      })(),
      timeoutMs,
      `worker session ${n}`,
    );
    return this.sessions[n - 1];
  }

  async close(): Promise<void> {
    for (const ws of this.#sockets) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }
}

type WorkerMessageCase = NonNullable<WorkerMessage['message']['case']>;
export type WorkerMessageValue<K extends WorkerMessageCase> = Extract<WorkerMessage['message'], { case: K }> extends { value: infer V } ? V : never;

/** All messages of one kind the worker sent in this session, in order. */
export function sentMessages<K extends WorkerMessageCase>(session: FakeWorkerSession, kind: K): Array<WorkerMessageValue<K>> {
  return session.received.filter((m) => m.message.case === kind).map((m) => m.message.value as unknown as WorkerMessageValue<K>);
}

/** Polls the session's messages until one of `kind` satisfies `match`; returns it. */
export async function nextMessage<K extends WorkerMessageCase>(
  session: FakeWorkerSession,
  kind: K,
  match: (value: WorkerMessageValue<K>) => boolean = () => true,
  timeoutMs = 3000,
): Promise<WorkerMessageValue<K>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = sentMessages(session, kind).find(match);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no ${kind} message matched within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
