/**
 * What the offline stand-ins say, and the messages of their thread. Kept apart from `stand-ins.ts` so
 * that the stand-in thread does not load the vendors' SDK clients.
 */
import type { Responder, WireMessage } from './openai-server.ts';

/** Marks every text and label the stand-ins produce. */
export const STAND_IN_TAG = '[offline stand-in]';

/** The placeholder transcript of the n-th utterance of a call, e.g. `[offline stand-in] utterance 3 (1.4 s)`. */
export function standInTranscript(index: number, durationMs: number): string {
  return `${STAND_IN_TAG} utterance ${index} (${(durationMs / 1000).toFixed(1)} s)`;
}

const UTTERANCE_PATTERN = /utterance (\d+) \(([\d.]+) s\)/;

function textOf(content: WireMessage['content']): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => p.text ?? '').join('');
  return '';
}

/**
 * A short spoken acknowledgement of the caller's last utterance. Short on purpose: it is what every
 * simulated caller hears, and the density being measured is the engine's, not espeak-ng's.
 */
export const standInResponder: Responder = ({ messages }) => {
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const said = textOf(lastUser?.content);
  const match = UTTERANCE_PATTERN.exec(said);
  if (match === null) return { text: 'Offline stand-in. I heard you.' };
  // Rounded to half seconds so that replies repeat and the synthesiser's cache absorbs them.
  const seconds = Math.max(0.5, Math.round(Number(match[2]) * 2) / 2);
  return { text: `Offline stand-in. You spoke for ${seconds} seconds.` };
};

/** Which providers to stand in for. */
export interface StandInRoles {
  stt: boolean;
  llm: boolean;
  tts: boolean;
}

/** What the stand-in thread tells its owner. */
export type StandInWorkerMessage =
  | { type: 'ready'; urls: { stt?: string; llm?: string; tts?: string } }
  | { type: 'closed' };

