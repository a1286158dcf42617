/**
 * One WebSocket session between an agent worker and a LiveKit server (`/agent`, protobuf binary
 * `WorkerMessage` / `ServerMessage`). It registers, then hands every server message to its owner,
 * keeps the session alive with `WorkerPing`s, and notices a silent server (a half-open TCP
 * connection never closes by itself). It never reconnects: a lost session is the owner's to replace.
 *
 * The protocol as LiveKit 1.13 implements it (pkg/service/agentservice.go, pkg/agent/worker.go):
 * the first message must be `register`, answered by `register` with the worker id, within 10 s
 * (the worker is in the dispatch table only once LiveKit reads the next message, so "registered"
 * here means the pong of a ping sent right after);
 * after that the server sends `availability` (answer within 10 s), `assignment` right after an
 * "available" answer, `termination`, and `pong` for each `ping`; it sends WebSocket ping frames
 * every 10 s (the `ws` package answers them). An unknown message closes the session server-side.
 */
import { JobType, ParticipantPermission, ServerMessage, WorkerMessage } from '@livekit/protocol';
import { AccessToken } from 'livekit-server-sdk';
import { ClosedError, VoiceError } from '../errors.ts';
import { WebSocket, type RawData, type WsSocket } from '../providers/local/ws.ts';

export interface WorkerConnectionOptions {
  /** LiveKit URL (`ws(s)://` or `http(s)://`); the session goes to its `/agent` path. */
  url: string;
  apiKey: string;
  apiSecret: string;
  agentName: string;
  /** Reported to LiveKit as the worker's version. */
  version: string;
  /** Give up when the server has not confirmed the registration by then. */
  registerTimeoutMs: number;
  pingIntervalMs: number;
  /** No message from the server for this long means the session is dead, closed or not. */
  silenceTimeoutMs: number;
}

export interface WorkerConnectionHandlers {
  /** LiveKit can dispatch to the worker now; called before any job message is handed over. */
  onRegistered(connection: WorkerConnection): void;
  onMessage(message: ServerMessage): void;
  /** Once, when the registered session ends for any reason other than `close()`. */
  onLost(info: { code: number; reason: string }): void;
  onProtocolError(error: unknown): void;
}

/** `ws://host:port/agent` for any LiveKit URL form the configuration accepts. */
export function agentSocketUrl(livekitUrl: string): string {
  const url = new URL(livekitUrl);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/agent`;
  return url.toString();
}

function bytesOf(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/** What a worker asks LiveKit to put in every job token: the bot publishes audio, reads, and sets its attributes. */
const BOT_PERMISSIONS = new ParticipantPermission({
  canSubscribe: true,
  canPublish: true,
  canPublishData: true,
  canUpdateMetadata: true,
  agent: true,
});

function pingMessage(): WorkerMessage {
  return new WorkerMessage({ message: { case: 'ping', value: { timestamp: BigInt(Date.now()) } } });
}

export class WorkerConnection {
  readonly workerId: string;
  readonly serverVersion: string;
  readonly nodeId: string;
  /** Round trip of the last ping, or -1 before the first pong. */
  lastRttMs = -1;
  readonly #ws: WsSocket;
  readonly #options: WorkerConnectionOptions;
  readonly #handlers: WorkerConnectionHandlers;
  #lastHeardAtMs = Date.now();
  #pingTimer: NodeJS.Timeout;
  #closed = false;
  #socketClosed: Promise<void>;
  /** Why this side dropped the socket, reported to `onLost` instead of the bare 1006. */
  #dropReason = '';

  private constructor(ws: WsSocket, socketClosed: Promise<void>, registered: { workerId: string; serverVersion: string; nodeId: string }, options: WorkerConnectionOptions, handlers: WorkerConnectionHandlers) {
    this.#ws = ws;
    this.#socketClosed = socketClosed;
    this.workerId = registered.workerId;
    this.serverVersion = registered.serverVersion;
    this.nodeId = registered.nodeId;
    this.#options = options;
    this.#handlers = handlers;
    this.#pingTimer = setInterval(() => this.#keepAlive(), options.pingIntervalMs);
  }

  /**
   * Connects and registers. Rejects with `VE_AGENT_UNAUTHORIZED` (LiveKit refused the key: retrying
   * will not help), `VE_AGENT_CONNECT_FAILED` or `VE_AGENT_REGISTER_TIMEOUT` (both retryable).
   */
  static async open(options: WorkerConnectionOptions, handlers: WorkerConnectionHandlers, signal?: AbortSignal): Promise<WorkerConnection> {
    if (signal?.aborted) throw new ClosedError('agent worker');
    const token = new AccessToken(options.apiKey, options.apiSecret, { ttl: '10m' });
    token.addGrant({ agent: true });
    const jwt = await token.toJwt();
    if (signal?.aborted) throw new ClosedError('agent worker');
    const ws = new WebSocket(agentSocketUrl(options.url), { headers: { Authorization: `Bearer ${jwt}` } });
    let connection: WorkerConnection | undefined;
    let registered: { workerId: string; serverVersion: string; nodeId: string } | undefined;
    let closeInfo: { code: number; reason: string } | undefined;
    const socketClosed = new Promise<void>((resolve) => {
      ws.on('close', (code, reason) => {
        closeInfo = { code, reason: reason.toString() };
        resolve();
      });
    });

    return new Promise<WorkerConnection>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        ws.terminate();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new VoiceError('VE_AGENT_REGISTER_TIMEOUT', `LiveKit did not confirm the worker registration within ${options.registerTimeoutMs} ms`, { retryable: true })),
        options.registerTimeoutMs,
      );
      const onAbort = (): void => fail(new ClosedError('agent worker'));
      signal?.addEventListener('abort', onAbort, { once: true });
      ws.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        fail(
          status === 401 || status === 403
            ? new VoiceError('VE_AGENT_UNAUTHORIZED', `LiveKit refused the agent worker (HTTP ${status}): check LIVEKIT_API_KEY and LIVEKIT_API_SECRET`, { retryable: false })
            : new VoiceError('VE_AGENT_CONNECT_FAILED', `LiveKit answered the agent socket with HTTP ${status}`, { retryable: true }),
        );
      });
      ws.on('error', (error) => {
        if (!settled) fail(new VoiceError('VE_AGENT_CONNECT_FAILED', `agent socket failed: ${error.message}`, { retryable: true, cause: error }));
      });
      void socketClosed.then(() => {
        if (!settled) fail(new VoiceError('VE_AGENT_CONNECT_FAILED', `LiveKit closed the agent socket before registering (code ${closeInfo?.code})`, { retryable: true }));
        else if (connection !== undefined) connection.#lost(closeInfo ?? { code: 1006, reason: '' });
      });
      ws.on('open', () => {
        const register = new WorkerMessage({
          message: {
            case: 'register',
            value: { type: JobType.JT_ROOM, agentName: options.agentName, version: options.version, allowedPermissions: BOT_PERMISSIONS },
          },
        });
        ws.send(register.toBinary(), () => undefined);
      });
      ws.on('message', (data, isBinary) => {
        if (!isBinary) return;
        let message: ServerMessage;
        try {
          message = ServerMessage.fromBinary(bytesOf(data));
        } catch (error) {
          if (connection) connection.#handlers.onProtocolError(error);
          else fail(new VoiceError('VE_AGENT_CONNECT_FAILED', 'LiveKit sent an unreadable message while registering', { retryable: true, cause: error }));
          return;
        }
        if (connection) {
          connection.#heard(message);
          return;
        }
        if (settled) return;
        if (registered === undefined) {
          if (message.message.case !== 'register') {
            fail(new VoiceError('VE_AGENT_CONNECT_FAILED', `LiveKit answered the registration with "${message.message.case}"`, { retryable: true }));
            return;
          }
          const { workerId, serverInfo } = message.message.value;
          registered = { workerId, serverVersion: serverInfo?.version ?? '', nodeId: serverInfo?.nodeId ?? '' };
          // LiveKit sends "register" before it adds the worker to its dispatch table, and reads our
          // next message (this ping) only after: until the pong, a dispatch could find no worker
          // and be dropped for good.
          ws.send(pingMessage().toBinary(), () => undefined);
          return;
        }
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        connection = new WorkerConnection(ws, socketClosed, registered, options, handlers);
        // Before handing the message over: it may already be a job request to answer on this session.
        handlers.onRegistered(connection);
        resolve(connection);
        connection.#heard(message);
      });
    });
  }

  get open(): boolean {
    return !this.#closed && this.#ws.readyState === this.#ws.OPEN;
  }

  /** Sends if the session is open; a message for a lost session is dropped (the owner re-reports after re-registering). */
  send(message: WorkerMessage): boolean {
    if (!this.open) return false;
    this.#ws.send(message.toBinary(), () => undefined);
    return true;
  }

  /** Drops the socket without a closing handshake, as a network failure does; `onLost` follows. */
  terminate(reason = 'terminated by the worker'): void {
    this.#dropReason ||= reason;
    this.#ws.terminate();
  }

  /** Idempotent. Ends the session with a closing handshake; `onLost` is not called. */
  async close(): Promise<void> {
    if (this.#closed) return this.#socketClosed;
    this.#closed = true;
    clearInterval(this.#pingTimer);
    this.#ws.close(1000, 'worker closing');
    // The server answers the close frame at once; do not let a dead one hold shutdown up.
    const timer = setTimeout(() => this.#ws.terminate(), 1000);
    await this.#socketClosed;
    clearTimeout(timer);
  }

  #heard(message: ServerMessage): void {
    this.#lastHeardAtMs = Date.now();
    if (message.message.case === 'pong') {
      this.lastRttMs = Date.now() - Number(message.message.value.lastTimestamp);
      return;
    }
    this.#handlers.onMessage(message);
  }

  #keepAlive(): void {
    if (Date.now() - this.#lastHeardAtMs > this.#options.silenceTimeoutMs) {
      this.terminate(`no message from LiveKit for ${this.#options.silenceTimeoutMs} ms`);
      return;
    }
    this.send(pingMessage());
  }

  #lost(info: { code: number; reason: string }): void {
    clearInterval(this.#pingTimer);
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.onLost(this.#dropReason ? { code: info.code, reason: this.#dropReason } : info);
  }
}
