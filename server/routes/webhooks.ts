import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { WebhookEvent } from 'livekit-server-sdk';
import { VoiceError } from '../../engine/errors.ts';
import { callIdFromRoomName } from '../../engine/transport/call-room.ts';
import { isBotIdentity } from '../../engine/transport/bot-identity.ts';
import { callerIdentityOf } from '../call-view.ts';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { ROLE_ATTRIBUTE } from '../livekit.ts';
import { errors } from '../schemas.ts';
import type { CallRecord, ParticipantRole } from '../store/call-store.ts';

export interface WebhooksOptions extends Record<string, unknown> {
  ctx: AppContext;
}

/** `ParticipantInfo.Kind.AGENT` in LiveKit's protocol: the engine's bot joins as an agent. */
const PARTICIPANT_KIND_AGENT = 4;
/** `EgressStatus` values that mean the egress is over. */
const EGRESS_COMPLETE = 3;
const EGRESS_FAILED_STATUSES = new Set([4, 5, 6]);

const WebhookResponse = Type.Object({ status: Type.Union([Type.Literal('applied'), Type.Literal('ignored')]) });

/**
 * The role attribute of tokens minted here says who joined; the engine's bot is a LiveKit agent with a
 * reserved identity. A participant with neither (a token minted elsewhere) is recorded as an observer.
 */
function roleOf(call: CallRecord, participant: NonNullable<WebhookEvent['participant']>): ParticipantRole {
  const attribute = participant.attributes?.[ROLE_ATTRIBUTE];
  if (attribute === 'caller' || attribute === 'dispatcher' || attribute === 'observer') return attribute;
  if (attribute === 'bot' || participant.kind === PARTICIPANT_KIND_AGENT || isBotIdentity(participant.identity)) return 'bot';
  if (participant.identity === callerIdentityOf(call)) return 'caller';
  if (participant.identity.startsWith('dispatcher-')) return 'dispatcher';
  return 'observer';
}

function isStateConflict(err: unknown): boolean {
  return err instanceof VoiceError && err.code === 'VE_CALL_STATE_CONFLICT';
}

/**
 * `POST /v1/livekit/webhook`: LiveKit's signed notifications. The signature and body hash are checked with
 * `WebhookReceiver`; an event older than `WEBHOOK_MAX_AGE_MS` or whose id was already processed is refused
 * as a replay. The event is applied first and its id recorded only then: when applying fails (the store
 * is down), the answer is a 5xx and LiveKit's notifier retries the delivery, which applies it then. So an
 * event may be applied twice (applied, then the mark failed; or two deliveries racing): every application
 * is idempotent, including a join or a leave delivered again after the participant left or rejoined.
 */
export async function webhooksRoutes(app: FastifyInstance, { ctx }: WebhooksOptions): Promise<void> {
  const { store, engine, livekit, config, metrics } = ctx;

  // The signature covers the exact bytes, so the body must reach the verifier unparsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/webhook+json', 'application/json'], { parseAs: 'string' }, (_request, body, done) =>
    done(null, body),
  );

  // Webhooks carry no API key; limit them per source address instead (LiveKit bursts on busy rooms).
  const limit = app.rateLimit({
    max: config.rateLimit.max * 10,
    keyGenerator: (request) => `webhook:${request.ip}`,
  });

  app.post<{ Body: string }>(
    '/v1/livekit/webhook',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'LiveKit webhook receiver (signed by LiveKit, not by an API key)',
        security: [],
        response: { 200: WebhookResponse, ...errors(400, 401, 409, 413, 415, 429, 500, 503) },
      },
      config: { public: true },
      onRequest: limit,
    },
    async (request) => {
      const authorization = request.headers.authorization;
      let event: WebhookEvent;
      try {
        event = await livekit.receiveWebhook(typeof request.body === 'string' ? request.body : '', authorization);
      } catch (err) {
        metrics.webhooks.inc({ result: 'forged' });
        throw err;
      }
      const createdAtMs = Number(event.createdAt) * 1000;
      if (!(createdAtMs > 0) || Date.now() - createdAtMs > config.livekit.webhookMaxAgeMs) {
        metrics.webhooks.inc({ result: 'stale' });
        throw new ApiError('VE_WEBHOOK_STALE');
      }
      if (event.id === '') throw new ApiError('VE_VALIDATION', 'webhook event has no id');
      if (await store.isWebhookProcessed(event.id)) {
        metrics.webhooks.inc({ result: 'replay' });
        throw new ApiError('VE_WEBHOOK_REPLAY');
      }

      let applied: boolean;
      try {
        applied = await apply(event, new Date(createdAtMs).toISOString());
        // False when a concurrent delivery of the same event got there first: both applied it, harmlessly.
        await store.markWebhookProcessed(event.id);
      } catch (err) {
        // Not marked: LiveKit retries a 5xx, and the retry applies the event.
        metrics.webhooks.inc({ result: 'failed' });
        throw err;
      }
      metrics.webhooks.inc({ result: applied ? event.event : 'ignored' });
      return { status: applied ? ('applied' as const) : ('ignored' as const) };
    },
  );

  async function apply(event: WebhookEvent, at: string): Promise<boolean> {
    // Rooms this control plane created are named `call-<callId>`; webhooks for other rooms are ignored.
    const callId = callIdFromRoomName(event.room?.name ?? event.egressInfo?.roomName);
    if (callId === undefined) return false;
    const call = await store.getCall(callId);
    if (call === null) return false;
    const participant = event.participant;

    switch (event.event) {
      case 'participant_joined': {
        if (participant === undefined) return false;
        const role = roleOf(call, participant);
        // This very join applied before and the participant has left since: adding it again would be a
        // phantom rejoin. (While present, addParticipant itself is a no-op.)
        const seen = call.participants.some((p) => p.identity === participant.identity && p.joinedAt === at && p.leftAt !== undefined);
        if (!seen) await store.addParticipant(callId, { identity: participant.identity, role, joinedAt: at });
        if (role === 'caller' && call.state === 'created') {
          await store.updateCall(callId, { state: 'active' }, { ifState: ['created'] }).catch((err: unknown) => {
            if (!isStateConflict(err)) throw err;
          });
        }
        return true;
      }
      case 'participant_left':
      case 'participant_connection_aborted': {
        if (participant === undefined) return false;
        // A leave delivered again after the participant rejoined must not end the new presence.
        const present = call.participants.find((p) => p.identity === participant.identity && p.leftAt === undefined);
        if (present !== undefined && present.joinedAt <= at) await store.markParticipantLeft(callId, participant.identity, at);
        return true;
      }
      case 'room_finished':
        if (call.state !== 'ended') {
          await store
            .updateCall(callId, { state: 'ended', endedAt: at, endReason: 'room_finished' }, { ifState: ['created', 'active', 'human'] })
            .catch((err: unknown) => {
              if (!isStateConflict(err)) throw err;
            });
        }
        // The room is gone, so the bot has nothing left to do; it may already have stopped.
        await engine.stopBot(callId).catch(() => {});
        return true;
      case 'egress_ended': {
        const info = event.egressInfo;
        if (info === undefined || call.recording?.egressId !== info.egressId) return false;
        const failed = EGRESS_FAILED_STATUSES.has(info.status);
        await store.updateCall(callId, {
          recording: {
            status: failed ? 'failed' : info.status === EGRESS_COMPLETE ? 'ended' : call.recording.status,
            endedAt: at,
            ...(failed && info.error !== '' ? { error: info.error } : {}),
          },
        });
        return true;
      }
      default:
        return false;
    }
  }
}
