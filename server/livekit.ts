import {
  AccessToken,
  EgressClient,
  EncodedFileOutput,
  EncodedFileType,
  RoomServiceClient,
  ServerError,
  TrackSource,
  WebhookReceiver,
  type VideoGrant,
  type WebhookEvent,
} from 'livekit-server-sdk';
import type { Config } from './config.ts';
import { ApiError } from './errors.ts';

/**
 * The LiveKit operations the control plane uses, behind a narrow interface so that route plugins never
 * touch SDK types directly. `createLiveKitClients` backs it with livekit-server-sdk.
 */
export interface LiveKitGateway {
  /** Public URL handed to clients along with their token. */
  readonly url: string;
  createRoom(roomName: string, metadata: Record<string, unknown>): Promise<void>;
  /** Idempotent: deleting a room that no longer exists succeeds. */
  deleteRoom(roomName: string): Promise<void>;
  /** Names of the rooms that exist now, among `names` when given (else all of them). */
  listRooms(names?: string[]): Promise<string[]>;
  /** Starts an audio-only room composite egress to `filePath`; returns the egress id. */
  startEgress(roomName: string, filePath: string): Promise<string>;
  stopEgress(egressId: string): Promise<void>;
  mintToken(request: TokenRequest): Promise<MintedToken>;
  /** Verifies the signature and body hash; throws `VE_WEBHOOK_SIGNATURE` otherwise. */
  receiveWebhook(body: string, authorization: string | undefined): Promise<WebhookEvent>;
}

/** `dispatcher`: the human who takes over a call (LiveKit's own word `agent` means the AI participant). */
export type TokenRole = 'caller' | 'dispatcher' | 'observer' | 'bot';

export interface TokenRequest {
  role: TokenRole;
  roomName: string;
  identity: string;
  name?: string;
  ttlS: number;
}

export interface MintedToken {
  token: string;
  identity: string;
  expiresAt: string;
}

/** Participant attribute carrying the role, so webhooks can tell who joined without guessing. */
export const ROLE_ATTRIBUTE = 've.role';

/**
 * Least privilege per role: callers publish their microphone only; dispatchers publish and send data;
 * observers only listen and stay hidden; the bot (engine) is a LiveKit agent that may publish data.
 */
export function grantFor(role: TokenRole, roomName: string): VideoGrant {
  const base: VideoGrant = { roomJoin: true, room: roomName, canSubscribe: true, canUpdateOwnMetadata: false };
  switch (role) {
    case 'caller':
      return { ...base, canPublish: true, canPublishSources: [TrackSource.MICROPHONE], canPublishData: false };
    case 'dispatcher':
      return { ...base, canPublish: true, canPublishSources: [TrackSource.MICROPHONE], canPublishData: true };
    case 'bot':
      return { ...base, canPublish: true, canPublishSources: [TrackSource.MICROPHONE], canPublishData: true, agent: true };
    case 'observer':
      return { ...base, canPublish: false, canPublishData: false, hidden: true };
  }
}

function isEgressUnavailable(err: unknown): boolean {
  if (err instanceof ServerError) return err.status === 503 || err.code === 'unavailable' || err.status >= 500;
  const name = (err as { name?: unknown } | null)?.name;
  // AbortSignal.timeout() rejects fetch with a TimeoutError; a refused connection is a TypeError.
  return name === 'TimeoutError' || name === 'AbortError' || err instanceof TypeError;
}

function livekitFailure(what: string, err: unknown): ApiError {
  return new ApiError('VE_LIVEKIT_UNAVAILABLE', `LiveKit ${what} failed`, { cause: err });
}

export function createLiveKitClients(config: Config['livekit']): LiveKitGateway {
  const httpUrl = config.url.replace(/^ws/, 'http');
  // failover only applies to LiveKit Cloud hosts; off so that a local server error is reported at once.
  const rooms = new RoomServiceClient(httpUrl, config.apiKey, config.apiSecret, {
    requestTimeout: config.requestTimeoutMs / 1000,
    failover: false,
  });
  const egress = new EgressClient(httpUrl, config.apiKey, config.apiSecret, {
    requestTimeout: config.egressTimeoutMs / 1000,
    failover: false,
  });
  const receiver = new WebhookReceiver(config.apiKey, config.apiSecret);

  return {
    url: config.url,
    async createRoom(roomName, metadata) {
      try {
        await rooms.createRoom({ name: roomName, emptyTimeout: config.roomEmptyTimeoutS, metadata: JSON.stringify(metadata) });
      } catch (err) {
        throw livekitFailure('createRoom', err);
      }
    },
    async deleteRoom(roomName) {
      try {
        await rooms.deleteRoom(roomName);
      } catch (err) {
        if (err instanceof ServerError && (err.status === 404 || err.code === 'not_found')) return;
        throw livekitFailure('deleteRoom', err);
      }
    },
    async listRooms(names) {
      try {
        return (await rooms.listRooms(names)).map((room) => room.name);
      } catch (err) {
        throw livekitFailure('listRooms', err);
      }
    },
    async startEgress(roomName, filePath) {
      try {
        const output = new EncodedFileOutput({ fileType: EncodedFileType.OGG, filepath: filePath });
        const info = await egress.startRoomCompositeEgress(roomName, output, { audioOnly: true });
        return info.egressId;
      } catch (err) {
        if (isEgressUnavailable(err)) throw new ApiError('VE_EGRESS_UNAVAILABLE', undefined, { cause: err });
        throw livekitFailure('startRoomCompositeEgress', err);
      }
    },
    async stopEgress(egressId) {
      try {
        await egress.stopEgress(egressId);
      } catch (err) {
        if (isEgressUnavailable(err)) throw new ApiError('VE_EGRESS_UNAVAILABLE', undefined, { cause: err });
        throw livekitFailure('stopEgress', err);
      }
    },
    async mintToken(request) {
      const at = new AccessToken(config.apiKey, config.apiSecret, {
        identity: request.identity,
        name: request.name,
        ttl: request.ttlS,
        attributes: { [ROLE_ATTRIBUTE]: request.role },
      });
      at.addGrant(grantFor(request.role, request.roomName));
      const token = await at.toJwt();
      return { token, identity: request.identity, expiresAt: new Date(Date.now() + request.ttlS * 1000).toISOString() };
    },
    async receiveWebhook(body, authorization) {
      if (authorization === undefined || authorization === '') throw new ApiError('VE_WEBHOOK_SIGNATURE');
      try {
        return await receiver.receive(body, authorization);
      } catch (err) {
        throw new ApiError('VE_WEBHOOK_SIGNATURE', undefined, { cause: err });
      }
    },
  };
}
