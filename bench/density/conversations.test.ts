import { describe, expect, it } from 'vitest';
import {
  BETWEEN_TURNS_PAUSE_MS,
  buildConversation,
  CALLER_PHRASES,
  CONVERSATION_POOL_SIZE,
  conversationScript,
  IN_TURN_PAUSE_MS,
  TURNS_PER_CONVERSATION,
  UTTERANCES_PER_TURN,
} from './conversations.ts';

type Step = ReturnType<typeof conversationScript>[number];
const isPause = (s: Step): s is { pauseMs: number } => 'pauseMs' in s;

describe('conversationScript', () => {
  it('is the same script for the same index in every process', () => {
    expect(conversationScript(3)).toEqual(conversationScript(3));
  });

  it('gives the pool different conversations', () => {
    const scripts = Array.from({ length: CONVERSATION_POOL_SIZE }, (_, i) => JSON.stringify(conversationScript(i)));
    expect(new Set(scripts).size).toBe(CONVERSATION_POOL_SIZE);
  });

  it('has turns of 1-3 utterances with in-turn pauses of 300-900 ms, each turn ending in a 2-5 s pause', () => {
    const inTurn = (ms: number) => ms >= IN_TURN_PAUSE_MS.min && ms <= IN_TURN_PAUSE_MS.max;
    const betweenTurns = (ms: number) => ms >= BETWEEN_TURNS_PAUSE_MS.min && ms <= BETWEEN_TURNS_PAUSE_MS.max;
    for (let index = 0; index < CONVERSATION_POOL_SIZE; index++) {
      const script = conversationScript(index);
      // Turns as [utterances, in-turn pauses], split at the between-turns pauses.
      const turns: Array<{ utterances: number; pauses: number }> = [];
      let current = { utterances: 0, pauses: 0 };
      for (const step of script) {
        if (!isPause(step)) {
          expect(CALLER_PHRASES).toContain(step.say);
          current.utterances++;
        } else if (betweenTurns(step.pauseMs)) {
          turns.push(current);
          current = { utterances: 0, pauses: 0 };
        } else {
          expect(inTurn(step.pauseMs)).toBe(true);
          current.pauses++;
        }
      }
      // The audio loops: it ends on a between-turns pause, so the last turn is not glued to the first.
      expect(current).toEqual({ utterances: 0, pauses: 0 });
      expect(turns).toHaveLength(TURNS_PER_CONVERSATION);
      for (const turn of turns) {
        expect(turn.utterances).toBeGreaterThanOrEqual(UTTERANCES_PER_TURN.min);
        expect(turn.utterances).toBeLessThanOrEqual(UTTERANCES_PER_TURN.max);
        expect(turn.pauses).toBe(turn.utterances - 1);
      }
    }
  });
});

describe('buildConversation', () => {
  it('synthesises utterances of about 1-4 s at 48 kHz', () => {
    const conversation = buildConversation(0, 48_000);
    expect(conversation.sampleRate).toBe(48_000);
    expect(conversation.segments.length).toBeGreaterThanOrEqual(TURNS_PER_CONVERSATION);
    for (const segment of conversation.segments) {
      const seconds = (segment.endSample - segment.startSample) / 48_000;
      expect(seconds).toBeGreaterThan(0.8);
      expect(seconds).toBeLessThan(4.5);
    }
    // The last sample of speech is followed by at least the shortest between-turns pause.
    const last = conversation.segments[conversation.segments.length - 1];
    expect(conversation.pcm.length - last.endSample).toBeGreaterThanOrEqual((BETWEEN_TURNS_PAUSE_MS.min / 1000) * 48_000);
  });
});
