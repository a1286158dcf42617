/**
 * A call's transcripts on LiveKit's `lk.transcription` text streams, sent the way LiveKit Agents sends
 * them (agents-js `voice/room_io/_output.ts`, ParticipantTranscriptionOutput), so that a LiveKit client
 * (components' `useTranscriptions`, the agents playground, `registerTextStreamHandler`) shows who said
 * what:
 * - every stream names its speaker as sender (`senderIdentity`: LiveKit keeps it on a text stream when
 *   the sender joined as kind agent) and carries `lk.segment_id`, `lk.transcription_final` and, when the
 *   speaker's microphone track is known, `lk.transcribed_track_id`;
 * - a snapshot segment (the caller's, as agents-js sends the user's) is one short stream per update,
 *   each holding the segment's whole text so far, `lk.transcription_final` 'false' until the last one,
 *   which says 'true'. A recogniser that revises its interim text is thereby handled as agents-js
 *   handles it: each update replaces the previous one;
 * - a delta segment (the bot's, as agents-js sends the agent's) is one stream, opened with
 *   `lk.transcription_final` 'false', to which the new text is appended as it comes; closing the stream
 *   ends the segment. rtc-node cannot put attributes on a stream's trailer, so no 'true' follows (the
 *   same limit agents-js documents for its Node delta streams).
 * Streams go out one at a time, in the order they were published; a caller update that a newer one of
 * the same segment already replaces is skipped.
 */

/** A text stream being written (rtc-node's TextStreamWriter). */
export interface TextWriter {
  write(text: string): Promise<void>;
  close(): Promise<void>;
}

/** What is used of rtc-node's LocalParticipant. */
export interface TextStreamSender {
  streamText(options: { topic: string; attributes: Record<string, string>; senderIdentity: string }): Promise<TextWriter>;
}

/** LiveKit's text-stream topic and attribute names (agents-js `constants.ts`). */
export const TRANSCRIPTION_TOPIC = 'lk.transcription';
export const SEGMENT_ID_ATTRIBUTE = 'lk.segment_id';
export const TRANSCRIPTION_FINAL_ATTRIBUTE = 'lk.transcription_final';
export const TRANSCRIBED_TRACK_ATTRIBUTE = 'lk.transcribed_track_id';

export interface SegmentUpdate {
  segmentId: string;
  /** The segment's whole text so far. */
  text: string;
  final: boolean;
  /** Who spoke it: the stream's sender. */
  senderIdentity: string;
  /** The speaker's microphone track, or '' when not known yet. */
  trackSid: string;
}

interface DeltaSegment {
  /** Text handed to the queue so far (what the stream will hold once the queue has run). */
  queuedText: string;
  writer: TextWriter | null;
  /** The participant the writer belongs to: after a rejoin the segment is sent again in a new stream. */
  sender: TextStreamSender | null;
}

/** Longest wait in `close()` for queued streams to go out before the room is left. */
const CLOSE_FLUSH_MS = 1000;

export class TranscriptionStreams {
  #sender: () => TextStreamSender | undefined;
  #queue: Promise<void> = Promise.resolve();
  #latestSnapshot = new Map<string, SegmentUpdate>();
  #deltaSegments = new Map<string, DeltaSegment>();
  #onError: (error: unknown) => void;
  #closed = false;

  /** `sender` is read for every stream, so that a room joined again is used from then on. */
  constructor(sender: () => TextStreamSender | undefined, onError: (error: unknown) => void = () => {}) {
    this.#sender = sender;
    this.#onError = onError;
  }

  /** One update of a snapshot segment: a stream of its own with the whole text. */
  publishSnapshot(update: SegmentUpdate): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#latestSnapshot.set(update.segmentId, update);
    return this.#enqueue(async () => {
      // A newer update of this segment is queued behind this one and replaces it.
      if (this.#latestSnapshot.get(update.segmentId) !== update) return;
      this.#latestSnapshot.delete(update.segmentId);
      const sender = this.#sender();
      if (!sender) return;
      const writer = await sender.streamText(streamOptions(update, update.final));
      await writer.write(update.text);
      await writer.close();
    });
  }

  /** The text of a delta segment so far; what it adds to the previous update is appended to its stream. */
  publishDelta(update: SegmentUpdate): Promise<void> {
    if (this.#closed) return Promise.resolve();
    let segment = this.#deltaSegments.get(update.segmentId);
    if (!segment) {
      segment = { queuedText: '', writer: null, sender: null };
      this.#deltaSegments.set(update.segmentId, segment);
    }
    const open = segment;
    // The bot's text only grows; should an update not extend the last one, its segment starts again.
    const restart = !update.text.startsWith(open.queuedText);
    const delta = restart ? update.text : update.text.slice(open.queuedText.length);
    open.queuedText = update.text;
    if (update.final) this.#deltaSegments.delete(update.segmentId);
    return this.#enqueue(async () => {
      const sender = this.#sender();
      if (!sender) return;
      if (open.writer && (restart || open.sender !== sender)) {
        const stale = open.writer;
        open.writer = null;
        if (open.sender === sender) await stale.close();
      }
      let text = delta;
      if (!open.writer && (delta !== '' || update.final) && update.text !== '') {
        // A new stream (first words, a restart or a new room) carries the whole text so far.
        text = update.text;
        open.writer = await sender.streamText(streamOptions(update, false));
        open.sender = sender;
      }
      if (text !== '' && open.writer) await open.writer.write(text);
      if (update.final && open.writer) {
        const writer = open.writer;
        open.writer = null;
        await writer.close();
      }
    });
  }

  #enqueue(send: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(send).catch((error: unknown) => this.#onError(error));
    this.#queue = run;
    return run;
  }

  /** Idempotent: sends what is queued (bounded), ends the open delta segments, and drops later updates. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const open = [...this.#deltaSegments.values()];
    this.#deltaSegments.clear();
    const done = this.#queue.then(async () => {
      const sender = this.#sender();
      await Promise.allSettled(open.map((s) => (s.writer && s.sender === sender ? s.writer.close() : undefined)));
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_FLUSH_MS)))]);
    clearTimeout(timer);
  }
}

function streamOptions(update: SegmentUpdate, final: boolean): { topic: string; attributes: Record<string, string>; senderIdentity: string } {
  const attributes: Record<string, string> = {
    [SEGMENT_ID_ATTRIBUTE]: update.segmentId,
    [TRANSCRIPTION_FINAL_ATTRIBUTE]: String(final),
  };
  if (update.trackSid !== '') attributes[TRANSCRIBED_TRACK_ATTRIBUTE] = update.trackSid;
  return { topic: TRANSCRIPTION_TOPIC, attributes, senderIdentity: update.senderIdentity };
}
