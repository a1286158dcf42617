import { describe, expect, it } from 'vitest';
import { botModeFromRoomMetadata, roomMetadataWithBotMode } from './room-signal.ts';

describe('room signal', () => {
  it('carries the bot mode in the room metadata and keeps what else is there', () => {
    const metadata = roomMetadataWithBotMode(JSON.stringify({ callId: 'c1' }), 'transcriber');
    expect(JSON.parse(metadata)).toEqual({ callId: 'c1', 've.botMode': 'transcriber' });
    expect(botModeFromRoomMetadata(metadata)).toBe('transcriber');
    expect(botModeFromRoomMetadata(roomMetadataWithBotMode(metadata, 'active'))).toBe('active');
    expect(JSON.parse(roomMetadataWithBotMode('from a SIP rule', 'transcriber'))).toEqual({ metadata: 'from a SIP rule', 've.botMode': 'transcriber' });
  });

  it('ignores metadata that asks for no mode, or one it does not know', () => {
    for (const m of ['', 'x', 'null', '[]', '{"callId":"c1"}', '{"ve.botMode":"removed"}']) expect(botModeFromRoomMetadata(m)).toBeUndefined();
  });
});
