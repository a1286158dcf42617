/**
 * The tools the call's LLM may call, and what the call does once a reply that called them has been
 * spoken: a handoff to a human, or the end of the call after a goodbye. The bot says a fixed line when
 * the LLM called a tool without saying anything.
 */
import type { ToolSpec } from '../providers/llm.ts';
import type { CallEvents } from './call-events.ts';
import type { Conversation } from './conversation.ts';
import type { Reply } from './reply.ts';

export const CALL_TOOLS: ToolSpec[] = [
  {
    name: 'transfer_to_human',
    description: 'Hand the call to a human dispatcher.',
    parameters: { type: 'object', properties: { reason: { type: 'string' } }, required: [] },
  },
  {
    name: 'end_call',
    description: 'End the call once the caller is done.',
    parameters: { type: 'object', properties: {}, required: [] },
  },
];

export interface ToolContext {
  conversation: Conversation;
  events: CallEvents;
  transferReply: string;
  goodbyeReply: string;
}

/** Acts on the reply's tool calls once its text has been synthesised; `reply.after` says what follows its playout. */
export async function handleToolCalls(reply: Reply, ctx: ToolContext): Promise<void> {
  for (const call of reply.toolCalls) {
    if (call.name === 'transfer_to_human') {
      if (reply.sentences.length === 0) await reply.speak(ctx.transferReply);
      reply.after = 'transfer';
      ctx.conversation.addToolResult(call.id, 'transfer started');
      const reason = safeJson(call.argumentsJson).reason;
      ctx.events.emit('handoff_requested', { reason: typeof reason === 'string' ? reason : null, turnId: reply.turnId });
    } else if (call.name === 'end_call') {
      if (reply.sentences.length === 0) await reply.speak(ctx.goodbyeReply);
      reply.after = 'end';
      ctx.conversation.addToolResult(call.id, 'call ending');
    }
  }
}

function safeJson(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text);
    return typeof value === 'object' && value !== null ? value : {};
  } catch {
    return {};
  }
}
