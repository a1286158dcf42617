/**
 * The LLM's view of the call. The bot's turns enter it as they were heard: when the caller cuts in,
 * only the text of the audio actually played is kept.
 */
import type { ChatMessage, ToolCall } from '../providers/llm.ts';

export class Conversation {
  readonly messages: ChatMessage[] = [];

  constructor(instructions: string) {
    this.messages.push({ role: 'system', content: instructions });
  }

  addUser(text: string): void {
    const last = this.messages[this.messages.length - 1];
    // Two caller turns in a row (the bot said nothing in between) read as one.
    if (last?.role === 'user') last.content = `${last.content} ${text}`;
    else this.messages.push({ role: 'user', content: text });
  }

  addAssistant(text: string, toolCalls?: ToolCall[]): void {
    if (text === '' && !toolCalls?.length) return;
    this.messages.push({ role: 'assistant', content: text, ...(toolCalls?.length ? { toolCalls } : {}) });
  }

  addToolResult(toolCallId: string, content: string): void {
    this.messages.push({ role: 'tool', content, toolCallId });
  }

  snapshot(): ChatMessage[] {
    return this.messages.map((m) => ({ ...m }));
  }
}

type TimedSentence = { text: string; startSample: number; endSample: number };

/**
 * The text a listener heard of a reply cut after `playedSamples`, given each sentence's span of
 * samples: whole sentences played, then the words of the sentence in progress in proportion to its
 * audio played, then an ellipsis.
 */
export function heardText(sentences: TimedSentence[], playedSamples: number): string {
  const { text, cut } = spokenSoFar(sentences, playedSamples);
  return cut ? `${text}…` : text;
}

/**
 * The words of a reply whose audio has played by `playedSamples` (a word counts once the share of its
 * sentence's audio up to its end has played), and whether the last sentence is cut short. It only
 * grows as `playedSamples` does, so the room can be sent the bot's words as they are heard and the
 * text heard at a barge-in extends what was sent.
 */
export function spokenSoFar(sentences: TimedSentence[], playedSamples: number): { text: string; cut: boolean } {
  const parts: string[] = [];
  for (const sentence of sentences) {
    if (playedSamples >= sentence.endSample) {
      parts.push(sentence.text);
      continue;
    }
    if (playedSamples > sentence.startSample) {
      const fraction = (playedSamples - sentence.startSample) / Math.max(1, sentence.endSample - sentence.startSample);
      const words = sentence.text.split(/\s+/);
      const count = Math.floor(words.length * fraction);
      if (count > 0) return { text: [...parts, words.slice(0, count).join(' ')].join(' '), cut: true };
    }
    break;
  }
  return { text: parts.join(' '), cut: false };
}
