import { DisconnectReason } from '@livekit/rtc-node';
import { describe, expect, it } from 'vitest';
import { botDeparture, callerDeparture } from './caller-departure.ts';

describe('callerDeparture', () => {
  it('ends the call at once when the caller left on purpose or the room went away', () => {
    expect(callerDeparture(DisconnectReason.CLIENT_INITIATED)).toBe('caller_hung_up');
    expect(callerDeparture(DisconnectReason.PARTICIPANT_REMOVED)).toBe('caller_removed');
    expect(callerDeparture(DisconnectReason.ROOM_DELETED)).toBe('room_deleted');
  });

  it('waits the grace period for a dropped connection or an unknown reason', () => {
    for (const reason of [
      undefined,
      DisconnectReason.UNKNOWN_REASON,
      DisconnectReason.SIGNAL_CLOSE,
      DisconnectReason.CONNECTION_TIMEOUT,
      DisconnectReason.JOIN_FAILURE,
      DisconnectReason.MEDIA_FAILURE,
      DisconnectReason.STATE_MISMATCH,
      DisconnectReason.DUPLICATE_IDENTITY,
      DisconnectReason.MIGRATION,
    ]) {
      expect(callerDeparture(reason), String(reason)).toBeNull();
    }
  });
});

describe('botDeparture', () => {
  it('says what ended the room for the bot, and rejoins after a drop', () => {
    expect(botDeparture(DisconnectReason.ROOM_DELETED)).toBe('room_deleted');
    expect(botDeparture(DisconnectReason.PARTICIPANT_REMOVED)).toBe('bot_removed');
    expect(botDeparture(DisconnectReason.SIGNAL_CLOSE)).toBeNull();
    expect(botDeparture(DisconnectReason.CONNECTION_TIMEOUT)).toBeNull();
  });
});
