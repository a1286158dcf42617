/**
 * The engine as the control plane sees it in the `api` role: no media engine in this process. A call's
 * bot is started by an agent dispatch to `AGENT_NAME` (LiveKit's `AgentDispatchClient`); LiveKit hands
 * the job to an engine process (`--role engine`) by the load those report, and that engine hosts it
 * exactly as a REST-created call and writes its events to the shared store.
 *
 * What crosses processes and what does not (yet):
 * - start: the dispatch carries the call's caller identity, instructions and greeting as its metadata
 *   (`DispatchMetadata`); the engine reads it back from the job.
 * - stop (`/end`, handoff with the bot removed): the bot participant is removed from its room
 *   (`RoomServiceClient.removeParticipant`); its engine sees it leave and ends the call, and LiveKit
 *   ends the job. `/end` then deletes the room as ever.
 * - bot mode `transcriber`: the room's metadata carries it (engine/transport/room-signal.ts); LiveKit
 *   delivers the update to the bot's Room as `RoomMetadataChanged` on whichever engine hosts it.
 * - engine-side recording and `say`: not built across processes; they answer 501 `VE_ENGINE_REMOTE`.
 * - live event streams: the engines write events to the store; this process serves history from it,
 *   but its live SSE/WebSocket streams see no events of remote calls (issue 12 item 4).
 * - capacity: admission from the workers' reports is issue 12 item 6; until then this process admits
 *   and LiveKit drops a dispatch no worker accepts.
 */
import { AgentDispatchClient, RoomServiceClient, ServerError } from 'livekit-server-sdk';
import { botIdentity } from '../engine/transport/bot-identity.ts';
import type { CallEngine, EngineCapacity, StartBotRequest } from '../engine/call-engine.ts';
import type { BotMode, EngineEventListener } from '../engine/events.ts';
import { roomMetadataWithBotMode } from '../engine/transport/room-signal.ts';
import { ApiError } from './errors.ts';

/** What a REST-created call's dispatch carries to the engine that takes the job. */
export interface DispatchMetadata {
  callId: string;
  callerIdentity?: string;
  instructions?: string;
  greeting?: string;
}

/** The dispatch metadata of a job, or `{}` for a job someone else dispatched (free text, other JSON). */
export function parseDispatchMetadata(metadata: string): Partial<DispatchMetadata> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(metadata);
  } catch {
    return {};
  }
  if (parsed === null || typeof parsed !== 'object') return {};
  const { callId, callerIdentity, instructions, greeting } = parsed as Record<string, unknown>;
  return {
    ...(typeof callId === 'string' ? { callId } : {}),
    ...(typeof callerIdentity === 'string' ? { callerIdentity } : {}),
    ...(typeof instructions === 'string' ? { instructions } : {}),
    ...(typeof greeting === 'string' ? { greeting } : {}),
  };
}

export interface DispatchEngineOptions {
  livekit: { url: string; apiKey: string; apiSecret: string; requestTimeoutMs: number };
  agentName: string;
  maxCalls: number;
  /** The room of a call (from the store): dispatched calls' rooms are not named after them. */
  roomOf(callId: string): Promise<string | undefined>;
}

export class DispatchEngine implements CallEngine {
  readonly agentName: string;
  #client: AgentDispatchClient;
  #rooms: RoomServiceClient;
  #roomOf: (callId: string) => Promise<string | undefined>;
  #maxCalls: number;
  #dispatched = 0;

  constructor(options: DispatchEngineOptions) {
    this.agentName = options.agentName;
    this.#maxCalls = options.maxCalls;
    this.#roomOf = options.roomOf;
    const httpUrl = options.livekit.url.replace(/^ws/, 'http');
    const clientOptions = { requestTimeout: options.livekit.requestTimeoutMs / 1000 };
    this.#client = new AgentDispatchClient(httpUrl, options.livekit.apiKey, options.livekit.apiSecret, clientOptions);
    this.#rooms = new RoomServiceClient(httpUrl, options.livekit.apiKey, options.livekit.apiSecret, { ...clientOptions, failover: false });
  }

  capacity(): EngineCapacity {
    return { activeCalls: 0, maxCalls: this.#maxCalls, acceptingCalls: true };
  }

  async startBot(req: StartBotRequest): Promise<void> {
    const metadata: DispatchMetadata = {
      callId: req.callId,
      ...(req.callerIdentity !== undefined ? { callerIdentity: req.callerIdentity } : {}),
      ...(req.instructions !== undefined ? { instructions: req.instructions } : {}),
      ...(req.greeting !== undefined ? { greeting: req.greeting } : {}),
    };
    try {
      await this.#client.createDispatch(req.roomName, this.agentName, { metadata: JSON.stringify(metadata) });
    } catch (err) {
      throw new ApiError('VE_LIVEKIT_UNAVAILABLE', 'LiveKit createDispatch failed', { cause: err });
    }
    this.#dispatched++;
  }

  /** Removes the bot from its room; a bot (or room) already gone is fine. */
  async stopBot(callId: string): Promise<void> {
    const roomName = await this.#roomOf(callId);
    if (roomName === undefined) return;
    try {
      await this.#rooms.removeParticipant(roomName, botIdentity(callId));
    } catch (err) {
      if (err instanceof ServerError && (err.status === 404 || err.code === 'not_found')) return;
      throw new ApiError('VE_LIVEKIT_UNAVAILABLE', 'LiveKit removeParticipant failed', { cause: err });
    }
  }

  /**
   * Asks the bot through the room's metadata (engine/transport/room-signal.ts); resolves once LiveKit
   * took the update, not once the bot applied it (its `bot_mode` event says so, in the store).
   */
  async setBotMode(callId: string, mode: BotMode): Promise<void> {
    const roomName = await this.#roomOf(callId);
    if (roomName === undefined) throw new ApiError('VE_CALL_NOT_FOUND');
    try {
      const [room] = await this.#rooms.listRooms([roomName]);
      await this.#rooms.updateRoomMetadata(roomName, roomMetadataWithBotMode(room?.metadata ?? '', mode));
    } catch (err) {
      throw new ApiError('VE_LIVEKIT_UNAVAILABLE', 'LiveKit updateRoomMetadata failed', { cause: err });
    }
  }

  async say(callId: string): Promise<void> {
    throw remote(callId, 'say');
  }

  async startRecording(callId: string): Promise<void> {
    throw remote(callId, 'engine-side recording');
  }

  async stopRecording(callId: string): Promise<{ filePath: string; durationMs: number }> {
    throw remote(callId, 'engine-side recording');
  }

  onEvent(_listener: EngineEventListener): () => void {
    return () => {};
  }

  metrics(): Record<string, number> {
    return { dispatches_created_total: this.#dispatched };
  }

  async close(): Promise<void> {}
}

function remote(callId: string, what: string): ApiError {
  return new ApiError('VE_ENGINE_REMOTE', `call ${callId} runs on an engine process; ${what} is not available across processes yet`);
}
