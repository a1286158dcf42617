import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../events.ts';
import type { TranscriptResult } from '../providers/stt.ts';
import { FakeCallTransport } from '../../test/fakes/call.ts';
import { CallEvents } from './call-events.ts';
import { CallerTranscript } from './caller-transcript.ts';

function setup() {
  const events = new CallEvents('c1');
  const log: EngineEvent[] = [];
  events.on((e) => void log.push(e));
  const transport = new FakeCallTransport();
  return { t: new CallerTranscript('c1', events, transport), log, transport };
}

const final = (text: string, endMs: number): TranscriptResult => ({ kind: 'final', text, startMs: 0, endMs, confidence: 1, speechFinal: true });

describe('CallerTranscript', () => {
  it('numbers segments by final, and joins the finals since the last turn into its text', async () => {
    const { t, log, transport } = setup();
    t.publish({ ...final('my truck', 900), kind: 'interim' });
    t.publish(final(' My truck ', 1000));
    t.addFinal(final(' My truck ', 1000));
    t.publish(final('broke down.', 1900));
    t.addFinal(final('broke down.', 1900));
    t.speechEnded(2000);
    let asked = 0;
    const collected = await t.collect({ waitMs: 1000, askForFinal: () => void asked++, canWait: () => true });
    expect(collected).toEqual({ text: 'My truck broke down.', sttFinalAt: expect.any(Number) });
    expect(asked).toBe(0);
    expect(log.map((e) => (e.data as { segmentId: string }).segmentId)).toEqual(['c1:caller:0', 'c1:caller:0', 'c1:caller:1']);
    expect(transport.transcripts.map((p) => [p.segmentId, p.final])).toEqual([
      ['c1:caller:0', false],
      ['c1:caller:0', true],
      ['c1:caller:1', true],
    ]);
    // The next turn starts afresh.
    expect((await t.collect({ waitMs: 10, askForFinal: () => {}, canWait: () => true })).text).toBe('');
  });

  it('asks for the final words and waits until a final covers the end of speech', async () => {
    const { t } = setup();
    t.speechEnded(2000);
    let asked = 0;
    const started = performance.now();
    const collecting = t.collect({ waitMs: 5000, askForFinal: () => void asked++, canWait: () => true });
    t.addFinal(final('early', 1500)); // ends 500 ms before the speech did: not enough
    setTimeout(() => t.addFinal(final('words', 1750)), 30);
    expect(await collecting).toMatchObject({ text: 'early words' });
    expect(asked).toBe(1);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('stops waiting when woken and it may no longer wait, or when the wait is over', async () => {
    const { t } = setup();
    t.speechEnded(2000);
    let down = false;
    const started = performance.now();
    const collecting = t.collect({ waitMs: 5000, askForFinal: () => {}, canWait: () => !down });
    down = true;
    t.wake();
    expect(await collecting).toEqual({ text: '', sttFinalAt: undefined });
    expect(performance.now() - started).toBeLessThan(2000);
    const timed = performance.now();
    expect((await t.collect({ waitMs: 100, askForFinal: () => {}, canWait: () => true })).text).toBe('');
    expect(performance.now() - timed).toBeGreaterThanOrEqual(90);
  });
});
