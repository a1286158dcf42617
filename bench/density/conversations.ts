/**
 * The simulated callers' audio: a small pool of espeak-ng conversations shaped like the caller's side of
 * a phone call with a bot: turns of one to three utterances (about 1-4 s each) separated by short
 * in-turn pauses (300-900 ms, where the VAD stops and Smart Turn is asked), and long pauses between
 * turns (2-5 s, while the bot would be speaking). Scripts come from a seeded generator, so every process
 * of a run (the engine child and each peer process) builds the very same audio from the speech cache.
 */
import { synthesizeConversation, type Conversation, type ScriptStep } from '../../test/support/speech.ts';

/** What a caller to a dispatch line says: 4-12 words, i.e. about 1-4 s at espeak-ng's 160 words per minute. */
export const CALLER_PHRASES: readonly string[] = [
  'Hello there, good morning.',
  'Yes, that is right.',
  'Hi, this is driver forty two.',
  'I am at the loading dock now.',
  'My truck has a flat tyre on the highway.',
  'Can you send someone to help?',
  'Thanks a lot, that helps.',
  'The gate code does not work.',
  'I need to change my delivery window to tomorrow morning.',
  'Okay, sounds good.',
  'Which bay should I back into?',
  'The customer is not answering the door.',
  'I will be about twenty minutes late because of traffic.',
  'No, the other address on the list.',
  'Could you repeat the reference number please?',
  'It is the blue warehouse next to the petrol station.',
  'I have two pallets left on board.',
  'Sure, go ahead and book it.',
  'The paperwork says forty boxes but I count thirty eight.',
  'Where do I drop the empty trailer?',
  'My shift ends at six.',
  'Let me check my notes.',
  'I am parked outside the main entrance with the engine off.',
  'Please tell the warehouse I am here.',
  'I have been waiting at the north gate for almost half an hour.',
];

/** Pool size: enough different audio that calls are not in lock-step, small enough to synthesise once. */
export const CONVERSATION_POOL_SIZE = 8;
export const TURNS_PER_CONVERSATION = 4;
export const IN_TURN_PAUSE_MS = { min: 300, max: 900 } as const;
export const BETWEEN_TURNS_PAUSE_MS = { min: 2000, max: 5000 } as const;
export const UTTERANCES_PER_TURN = { min: 1, max: 3 } as const;

/** mulberry32: a tiny seeded generator, so runs are repeatable across processes. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uniformInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/**
 * The script of conversation `index`: TURNS_PER_CONVERSATION turns, each ending in a between-turns pause,
 * so that looping the audio joins the last turn to the first without a gap that is too short.
 */
export function conversationScript(index: number): ScriptStep[] {
  const random = seededRandom(0x5eed + index * 7919);
  const steps: ScriptStep[] = [];
  for (let turn = 0; turn < TURNS_PER_CONVERSATION; turn++) {
    const utterances = uniformInt(random, UTTERANCES_PER_TURN.min, UTTERANCES_PER_TURN.max);
    for (let u = 0; u < utterances; u++) {
      if (u > 0) steps.push({ pauseMs: uniformInt(random, IN_TURN_PAUSE_MS.min, IN_TURN_PAUSE_MS.max) });
      steps.push({ say: CALLER_PHRASES[Math.floor(random() * CALLER_PHRASES.length)] });
    }
    steps.push({ pauseMs: uniformInt(random, BETWEEN_TURNS_PAUSE_MS.min, BETWEEN_TURNS_PAUSE_MS.max) });
  }
  return steps;
}

/** Conversation `index` of the pool at `sampleRate` (synthesised once per machine, then read from `.cache/speech`). */
export function buildConversation(index: number, sampleRate: number): Conversation {
  return synthesizeConversation(conversationScript(index % CONVERSATION_POOL_SIZE), { sampleRate });
}

export function buildConversationPool(sampleRate: number, size = CONVERSATION_POOL_SIZE): Conversation[] {
  return Array.from({ length: size }, (_, i) => buildConversation(i, sampleRate));
}
