/**
 * How a call maps to a LiveKit room. The control plane names the room of a call it creates
 * `call-<callId>`; a job LiveKit dispatches into any other room (a SIP dispatch rule, another
 * service's dispatch) still needs a call id, and the engine and the control plane must derive the
 * same one without talking to each other.
 */
export const CALL_ROOM_PREFIX = 'call-';

/** Call ids are safe in room names, identities, file names and metric labels. */
const CALL_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function callRoomName(callId: string): string {
  return `${CALL_ROOM_PREFIX}${callId}`;
}

/** The call id of a room this control plane named, or `undefined` for any other room. */
export function callIdFromRoomName(roomName: string | undefined): string | undefined {
  if (roomName === undefined || !roomName.startsWith(CALL_ROOM_PREFIX)) return undefined;
  const callId = roomName.slice(CALL_ROOM_PREFIX.length);
  return CALL_ID_PATTERN.test(callId) ? callId : undefined;
}

/**
 * The call id a dispatched job hosts: ours from the room name; otherwise the room's sid, which
 * LiveKit keeps for the room's whole life, so a second dispatch into the same room (a re-dispatch
 * after an engine died) continues the same call instead of starting another; the job id only when
 * the job carries no room sid.
 */
export function callIdForJob(job: { roomName: string; roomSid: string; jobId: string }): string {
  const ours = callIdFromRoomName(job.roomName);
  if (ours !== undefined) return ours;
  if (CALL_ID_PATTERN.test(job.roomSid)) return job.roomSid;
  return job.jobId;
}
