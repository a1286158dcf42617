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

/**
 * The text a listener heard of a reply cut after `playedSamples`, given each sentence's span of
 * samples: whole sentences played, then the words of the sentence in progress in proportion to its
 * audio played, then an ellipsis.
 */
export function heardText(sentences: Array<{ text: string; startSample: number; endSample: number }>, playedSamples: number): string {
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
      if (count > 0) parts.push(`${words.slice(0, count).join(' ')}…`);
    }
    break;
  }
  return parts.join(' ');
}
