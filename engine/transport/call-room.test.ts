import { describe, expect, it } from 'vitest';
import { callIdForJob, callIdFromRoomName, callRoomName } from './call-room.ts';

describe('call rooms', () => {
  it('round-trips a call id through its room name', () => {
    expect(callIdFromRoomName(callRoomName('3f2a-b_9'))).toBe('3f2a-b_9');
  });

  it('does not claim rooms it did not name', () => {
    expect(callIdFromRoomName('sip-+4477')).toBeUndefined();
    expect(callIdFromRoomName('call-')).toBeUndefined();
    expect(callIdFromRoomName('call-a/b')).toBeUndefined();
    expect(callIdFromRoomName(undefined)).toBeUndefined();
  });

  it('gives a dispatched job the call id of our room, else the room sid, else the job id', () => {
    expect(callIdForJob({ roomName: 'call-abc', roomSid: 'RM_x', jobId: 'AJ_1' })).toBe('abc');
    expect(callIdForJob({ roomName: 'sip-+4477 123', roomSid: 'RM_x', jobId: 'AJ_1' })).toBe('RM_x');
    expect(callIdForJob({ roomName: 'sip-+4477 123', roomSid: '', jobId: 'AJ_1' })).toBe('AJ_1');
  });
});
