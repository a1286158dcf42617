/**
 * What the bot said, as the caller heard it. The room gets a reply's words as their audio plays
 * (spokenSoFar: each word once its share of its sentence's audio has been sent), so that the text a
 * client shows is what the caller has heard, and a barge-in's heard text only extends it. Only the
 * final text of a reply is an event.
 */
import type { CallTransport } from '../transport/call-transport.ts';
import type { CallEvents } from './call-events.ts';
import { spokenSoFar } from './conversation.ts';
import type { Reply } from './reply.ts';

export class BotTranscript {
  #callId: string;
  #events: CallEvents;
  #transport: CallTransport;

  constructor(callId: string, events: CallEvents, transport: CallTransport) {
    this.#callId = callId;
    this.#events = events;
    this.#transport = transport;
  }

  /** Sends the room the reply's words whose audio has played, when they changed. */
  progress(reply: Reply): void {
    const { text } = spokenSoFar(reply.timedSentences(), reply.playedSamples());
    if (text === reply.spokenText) return;
    reply.spokenText = text;
    void this.#transport.publishTranscript({ segmentId: this.#segmentId(reply), speaker: 'bot', text, final: false }).catch(() => {});
  }

  /** The reply's text as said (all of it, or what was heard before a barge-in): an event, and final in the room. */
  final(reply: Reply, text: string): void {
    const segmentId = this.#segmentId(reply);
    this.#events.emit('transcript', { segmentId, speaker: 'bot', text, final: true, turnId: reply.turnId });
    void this.#transport.publishTranscript({ segmentId, speaker: 'bot', text, final: true }).catch(() => {});
  }

  #segmentId(reply: Reply): string {
    return `${this.#callId}:bot:${reply.id}`;
  }
}
