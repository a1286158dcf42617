/**
 * The LiveKit identity the engine's bot joins a call's room with. Every identity with this prefix is
 * reserved for the engine: the control plane never mints a token for one (a second participant with
 * the bot's identity would kick the bot out of the room).
 */
export const BOT_IDENTITY_PREFIX = 'bot-';

export function botIdentity(callId: string): string {
  return `${BOT_IDENTITY_PREFIX}${callId}`;
}

export function isBotIdentity(identity: string): boolean {
  return identity.startsWith(BOT_IDENTITY_PREFIX);
}
