/**
 * What LiveKit's disconnect reasons mean for a call. A caller who left on purpose (their app called
 * `room.disconnect()`, a SIP caller put the phone down: both arrive as CLIENT_INITIATED) is not coming
 * back, so waiting the grace period would only hold a slot and keep a silent bot in the room; the grace
 * period is for connections that dropped (SIGNAL_CLOSE, CONNECTION_TIMEOUT, JOIN_FAILURE, ...), which
 * the caller's SDK may still rebuild.
 */
import { DisconnectReason } from '@livekit/rtc-node';
import type { RoomEndReason } from './call-transport.ts';

/** The caller left the room: end now with a reason, or wait the grace period (`null`). */
export function callerDeparture(reason: DisconnectReason | undefined): RoomEndReason | null {
  switch (reason) {
    case DisconnectReason.CLIENT_INITIATED:
      return 'caller_hung_up';
    case DisconnectReason.PARTICIPANT_REMOVED:
      return 'caller_removed';
    case DisconnectReason.ROOM_DELETED:
      return 'room_deleted';
    default:
      return null;
  }
}

/** The bot's own connection ended: end now with a reason, or try to rejoin (`null`). */
export function botDeparture(reason: DisconnectReason): RoomEndReason | null {
  switch (reason) {
    case DisconnectReason.ROOM_DELETED:
      return 'room_deleted';
    case DisconnectReason.PARTICIPANT_REMOVED:
      return 'bot_removed';
    // Only close() disconnects the bot on purpose, and a closed transport reports nothing.
    case DisconnectReason.CLIENT_INITIATED:
      return 'bot_removed';
    default:
      return null;
  }
}
