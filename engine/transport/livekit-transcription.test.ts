import { describe, expect, it } from 'vitest';
import { TranscriptionStreams, type TextStreamSender, type TextWriter } from './livekit-transcription.ts';

interface SentStream {
  sender: string;
  attributes: Record<string, string>;
  chunks: string[];
  closed: boolean;
}

/** A LocalParticipant that records the streams it is asked to send. */
function fakeSender(streams: SentStream[], opts: { slowOpenMs?: number } = {}): TextStreamSender {
  return {
    async streamText(options) {
      if (opts.slowOpenMs) await new Promise((r) => setTimeout(r, opts.slowOpenMs));
      const stream: SentStream = { sender: options.senderIdentity, attributes: options.attributes, chunks: [], closed: false };
      streams.push(stream);
      const writer: TextWriter = {
        async write(text) {
          if (stream.closed) throw new Error('write after close');
          stream.chunks.push(text);
        },
        async close() {
          stream.closed = true;
        },
      };
      return writer;
    },
  };
}

const caller = { senderIdentity: 'caller-1', trackSid: 'TR_caller' };
const bot = { senderIdentity: 'bot-1', trackSid: 'TR_bot' };

describe('TranscriptionStreams', () => {
  it('sends a snapshot segment as one stream per update in the speaker\'s name, final only on the last', async () => {
    const streams: SentStream[] = [];
    const sender = fakeSender(streams);
    const t = new TranscriptionStreams(() => sender);
    await t.publishSnapshot({ ...caller, segmentId: 's1', text: 'I need', final: false });
    // A revised guess replaces the previous text rather than extending it.
    await t.publishSnapshot({ ...caller, segmentId: 's1', text: 'I need a duck', final: false });
    await t.publishSnapshot({ ...caller, segmentId: 's1', text: 'I need a truck', final: true });
    expect(streams).toEqual([
      { sender: 'caller-1', attributes: { 'lk.segment_id': 's1', 'lk.transcription_final': 'false', 'lk.transcribed_track_id': 'TR_caller' }, chunks: ['I need'], closed: true },
      { sender: 'caller-1', attributes: { 'lk.segment_id': 's1', 'lk.transcription_final': 'false', 'lk.transcribed_track_id': 'TR_caller' }, chunks: ['I need a duck'], closed: true },
      { sender: 'caller-1', attributes: { 'lk.segment_id': 's1', 'lk.transcription_final': 'true', 'lk.transcribed_track_id': 'TR_caller' }, chunks: ['I need a truck'], closed: true },
    ]);
  });

  it('skips a queued snapshot update that a newer one of the same segment replaces', async () => {
    const streams: SentStream[] = [];
    const sender = fakeSender(streams, { slowOpenMs: 5 });
    const t = new TranscriptionStreams(() => sender);
    const sent = [t.publishSnapshot({ ...caller, segmentId: 's1', text: 'one', final: false })];
    await new Promise((r) => setTimeout(r, 1)); // 'one' is being sent
    sent.push(
      t.publishSnapshot({ ...caller, segmentId: 's1', text: 'one two', final: false }),
      t.publishSnapshot({ ...caller, segmentId: 's1', text: 'one two three', final: true }),
    );
    await Promise.all(sent);
    expect(streams.map((s) => [s.chunks.join(''), s.attributes['lk.transcription_final']])).toEqual([
      ['one', 'false'],
      ['one two three', 'true'],
    ]);
  });

  it('sends a delta segment as one stream, appending what each update adds, closed when final', async () => {
    const streams: SentStream[] = [];
    const sender = fakeSender(streams, { slowOpenMs: 5 });
    const t = new TranscriptionStreams(() => sender);
    // Published without waiting, as the voice call does: the queue keeps them in order.
    const sent = [
      t.publishDelta({ ...bot, segmentId: 'b1', text: 'Sure.', final: false }),
      t.publishDelta({ ...bot, segmentId: 'b1', text: 'Sure. The north', final: false }),
      t.publishDelta({ ...bot, segmentId: 'b1', text: 'Sure. The north', final: false }),
      t.publishDelta({ ...bot, segmentId: 'b1', text: 'Sure. The north gate…', final: true }),
    ];
    await Promise.all(sent);
    expect(streams).toEqual([
      {
        sender: 'bot-1',
        attributes: { 'lk.segment_id': 'b1', 'lk.transcription_final': 'false', 'lk.transcribed_track_id': 'TR_bot' },
        chunks: ['Sure.', ' The north', ' gate…'],
        closed: true,
      },
    ]);
  });

  it('leaves out the track id when the speaker\'s track is not known', async () => {
    const streams: SentStream[] = [];
    const sender = fakeSender(streams);
    const t = new TranscriptionStreams(() => sender);
    await t.publishSnapshot({ senderIdentity: 'caller-1', trackSid: '', segmentId: 's1', text: 'hi', final: true });
    expect(streams[0].attributes).toEqual({ 'lk.segment_id': 's1', 'lk.transcription_final': 'true' });
  });

  it('starts a delta segment again in a new stream when an update does not extend it, or after a rejoin', async () => {
    const streams: SentStream[] = [];
    let sender = fakeSender(streams);
    const t = new TranscriptionStreams(() => sender);
    await t.publishDelta({ ...bot, segmentId: 'b1', text: 'Sure. The', final: false });
    await t.publishDelta({ ...bot, segmentId: 'b1', text: 'Sorry.', final: false });
    sender = fakeSender(streams); // the room was joined again: the old stream died with the old room
    await t.publishDelta({ ...bot, segmentId: 'b1', text: 'Sorry. Dock', final: true });
    expect(streams.map((s) => [s.chunks, s.closed])).toEqual([
      [['Sure. The'], true],
      [['Sorry.'], false],
      [['Sorry. Dock'], true],
    ]);
  });

  it('close() ends the open delta segments and drops later updates', async () => {
    const streams: SentStream[] = [];
    const sender = fakeSender(streams);
    const t = new TranscriptionStreams(() => sender);
    void t.publishDelta({ ...bot, segmentId: 'b1', text: 'Sure. The', final: false });
    await t.close();
    await t.close();
    await t.publishDelta({ ...bot, segmentId: 'b1', text: 'Sure. The north', final: false });
    await t.publishSnapshot({ ...caller, segmentId: 's1', text: 'hi', final: true });
    expect(streams).toHaveLength(1);
    expect(streams[0]).toMatchObject({ chunks: ['Sure. The'], closed: true });
  });

  it('reports a failed stream and goes on with the next', async () => {
    const streams: SentStream[] = [];
    const errors: unknown[] = [];
    let fail = true;
    const t = new TranscriptionStreams(
      () => ({
        streamText: async (options) => {
          if (fail) {
            fail = false;
            throw new Error('engine is closed');
          }
          return fakeSender(streams).streamText(options);
        },
      }),
      (e) => errors.push(e),
    );
    await t.publishSnapshot({ ...caller, segmentId: 's1', text: 'one', final: true });
    await t.publishSnapshot({ ...caller, segmentId: 's2', text: 'two', final: true });
    expect(errors).toHaveLength(1);
    expect(streams.map((s) => s.chunks[0])).toEqual(['two']);
  });
});
