import { VoiceError } from '../engine/errors.ts';
import type { LiveKitGateway } from './livekit.ts';
import { MAX_LIST_LIMIT, type CallState, type CallStore } from './store/call-store.ts';

/** `endReason` of a call ended by reconciliation because its LiveKit room no longer exists. */
export const RECONCILED_ROOM_GONE = 'reconciled_room_gone';

/**
 * A `created` call younger than this is left alone: another node sharing the store may be setting it up
 * (its room not created yet). Longer than a call's setup: LiveKit's request timeout plus the bot's start.
 */
export const RECONCILE_CREATED_GRACE_MS = 30_000;

const LIVE_STATES: CallState[] = ['created', 'active', 'human'];

export interface ReconcileOptions {
  store: Pick<CallStore, 'listCalls' | 'updateCall'>;
  livekit: Pick<LiveKitGateway, 'listRooms'>;
  /** Default `RECONCILE_CREATED_GRACE_MS`. */
  createdGraceMs?: number;
  /** Calls read per store page; default `MAX_LIST_LIMIT`. */
  pageSize?: number;
  now?: () => Date;
}

export interface ReconcileResult {
  /** Live calls whose room was looked up. */
  checked: number;
  /** Calls ended because their room was gone. */
  ended: string[];
}

/**
 * Start-up reconciliation. A call the store still holds as live (`created`, `active`, `human`) whose
 * LiveKit room no longer exists will never get its `room_finished` webhook (sent while this node was
 * down, or LiveKit restarted too): it is ended with `endReason: reconciled_room_gone`. Calls whose room
 * exists are not touched. Throws `VE_LIVEKIT_UNAVAILABLE` or a store error; what was ended before stays
 * ended.
 */
export async function reconcileCalls(options: ReconcileOptions): Promise<ReconcileResult> {
  const { store, livekit } = options;
  const now = options.now ?? (() => new Date());
  const createdCutoff = new Date(now().getTime() - (options.createdGraceMs ?? RECONCILE_CREATED_GRACE_MS)).toISOString();
  const result: ReconcileResult = { checked: 0, ended: [] };

  for (const state of LIVE_STATES) {
    // The cursor is a (createdAt, callId) position, so ending calls of this state while paging through
    // them skips none.
    let cursor: string | undefined;
    do {
      const page = await store.listCalls({ state, limit: options.pageSize ?? MAX_LIST_LIMIT, before: cursor });
      cursor = page.nextCursor;
      const candidates = page.calls.filter((call) => state !== 'created' || call.createdAt < createdCutoff);
      if (candidates.length === 0) continue;
      const existing = new Set(await livekit.listRooms(candidates.map((call) => call.roomName)));
      result.checked += candidates.length;
      for (const call of candidates) {
        if (existing.has(call.roomName)) continue;
        try {
          await store.updateCall(
            call.callId,
            { state: 'ended', endedAt: now().toISOString(), endReason: RECONCILED_ROOM_GONE },
            { ifState: LIVE_STATES },
          );
          result.ended.push(call.callId);
        } catch (err) {
          // Ended meanwhile (a webhook, an API request): nothing left to reconcile.
          if (!(err instanceof VoiceError && err.code === 'VE_CALL_STATE_CONFLICT')) throw err;
        }
      }
    } while (cursor !== undefined);
  }
  return result;
}
