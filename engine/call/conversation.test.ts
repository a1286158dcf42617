import { describe, expect, it } from 'vitest';
import { Conversation, heardText, spokenSoFar } from './conversation.ts';

describe('heardText', () => {
  const sentences = [
    { text: 'Your truck is booked.', startSample: 0, endSample: 1000 },
    { text: 'The driver will call you at nine tomorrow morning.', startSample: 1000, endSample: 3000 },
    { text: 'Anything else?', startSample: 3000, endSample: 3500 },
  ];

  it('keeps whole sentences played and the played share of the one in progress', () => {
    expect(heardText(sentences, 0)).toBe('');
    expect(heardText(sentences, 1000)).toBe('Your truck is booked.');
    expect(heardText(sentences, 2000)).toBe('Your truck is booked. The driver will call…');
    expect(heardText(sentences, 3500)).toBe('Your truck is booked. The driver will call you at nine tomorrow morning. Anything else?');
  });

  it('spokenSoFar only grows with the samples played, and heardText extends it', () => {
    let previous = '';
    for (let played = 0; played <= 3600; played += 37) {
      const { text } = spokenSoFar(sentences, played);
      expect(text.startsWith(previous), `at ${played}`).toBe(true);
      expect(heardText(sentences, played).startsWith(text), `at ${played}`).toBe(true);
      previous = text;
    }
    expect(spokenSoFar(sentences, 2000)).toEqual({ text: 'Your truck is booked. The driver will call', cut: true });
    expect(previous).toBe(heardText(sentences, 3600));
  });
});

describe('Conversation', () => {
  it('joins consecutive caller turns and skips empty bot turns', () => {
    const conversation = new Conversation('be brief');
    conversation.addUser('Hello.');
    conversation.addAssistant('');
    conversation.addUser('Are you there?');
    expect(conversation.messages).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'Hello. Are you there?' },
    ]);
  });
});
