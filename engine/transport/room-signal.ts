/**
 * How a control plane in another process tells a call's bot to change mode: through the LiveKit
 * room's metadata (`RoomServiceClient.updateRoomMetadata`), which reaches every participant's Room as
 * `RoomMetadataChanged`, on whichever engine process hosts the bot. The metadata is a JSON object;
 * the bot reads one key of it and leaves the rest to whoever else uses the room's metadata.
 */
import type { BotMode } from '../events.ts';

/** The key of the room metadata that carries the bot mode the control plane asks for. */
export const ROOM_BOT_MODE_KEY = 've.botMode';

const BOT_MODES: readonly BotMode[] = ['active', 'transcriber'];

/** The bot mode a room's metadata asks for, or `undefined` when it asks for none (or is not ours). */
export function botModeFromRoomMetadata(metadata: string): BotMode | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(metadata);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const mode = (parsed as Record<string, unknown>)[ROOM_BOT_MODE_KEY];
  return BOT_MODES.find((m) => m === mode);
}

/** `metadata` (a JSON object, or anything else, which is then kept under `metadata`) asking for `mode`. */
export function roomMetadataWithBotMode(metadata: string, mode: BotMode): string {
  let base: Record<string, unknown> = {};
  if (metadata !== '') {
    try {
      const parsed: unknown = JSON.parse(metadata);
      base = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { metadata };
    } catch {
      base = { metadata };
    }
  }
  return JSON.stringify({ ...base, [ROOM_BOT_MODE_KEY]: mode });
}
