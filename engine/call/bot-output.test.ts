import { describe, expect, it } from 'vitest';
import { concatPcm } from '../pcm.ts';
import type { PacedOutput, PlayoutScheduler } from '../transport/playout-clock.ts';
import { BotOutput } from './bot-output.ts';

const SAMPLE_RATE = 48_000;
const FRAME = 480; // 10 ms

/** A sink that records frames, and a scheduler the test drives by hand. */
function setup() {
  const sent: Int16Array[] = [];
  const events: string[] = [];
  const scheduled = new Set<PacedOutput>();
  const clock: PlayoutScheduler = { start: (o) => void scheduled.add(o), stop: (o) => void scheduled.delete(o) };
  const output = new BotOutput(
    { sampleRate: SAMPLE_RATE, frameSamples: FRAME, sendFrame: (pcm) => void sent.push(pcm) },
    { onFirstAudio: (id) => void events.push(`first ${id}`), onPlayedOut: (id) => void events.push(`done ${id}`) },
    { clock },
  );
  return { output, sent, events, scheduled };
}

/** PCM whose sample i is (start + i) % 30000, so order and gaps are visible. */
function ramp(samples: number, start = 1): Int16Array {
  return Int16Array.from({ length: samples }, (_, i) => ((start + i) % 30_000) + 1);
}

describe('BotOutput', () => {
  it('sends 10 ms frames at real time, 40 ms ahead, and every sample in order', async () => {
    const { output, sent, events, scheduled } = setup();
    output.beginUtterance(1);
    const audio = ramp(SAMPLE_RATE); // 1 s
    expect(await output.write(1, audio, SAMPLE_RATE)).toBe(true);
    output.endUtterance();
    expect(scheduled.has(output)).toBe(true);
    for (let t = 0; t <= 2000; t += 20) {
      const more = output.pace(1000 + t);
      if (t < 960) {
        expect(sent.length, `at ${t} ms`).toBe((t + 40) / 10);
        expect(more).toBe(true);
      }
    }
    expect(sent.every((f) => f.length === FRAME)).toBe(true);
    expect(concatPcm(sent)).toEqual(audio);
    expect(events).toEqual(['first 1', 'done 1']);
    expect(output.speaking).toBe(false);
    expect(output.pace(4000)).toBe(false);
  });

  it('pads the last frame of an utterance instead of mixing it with the next', async () => {
    const { output, sent, events } = setup();
    output.beginUtterance(1);
    await output.write(1, ramp(FRAME + 100), SAMPLE_RATE);
    output.beginUtterance(2);
    await output.write(2, ramp(FRAME, 5000), SAMPLE_RATE);
    output.endUtterance();
    output.pace(0);
    expect(sent.length).toBe(3);
    expect(sent[1].subarray(0, 100)).toEqual(ramp(FRAME + 100).subarray(FRAME));
    expect(sent[1].subarray(100).every((s) => s === 0)).toBe(true);
    expect(sent[2]).toEqual(ramp(FRAME, 5000));
    expect(events).toEqual(['first 1', 'done 1', 'first 2', 'done 2']);
  });

  it('waits out an underrun of an open utterance and starts again when synthesis catches up', async () => {
    const { output, sent, scheduled } = setup();
    output.beginUtterance(1);
    await output.write(1, ramp(3 * FRAME + 10), SAMPLE_RATE);
    scheduled.clear();
    expect(output.pace(0)).toBe(false); // 4 frames due, 3 whole ones buffered
    expect(sent.length).toBe(3);
    await output.write(1, ramp(FRAME), SAMPLE_RATE);
    expect(scheduled.has(output)).toBe(true);
    output.pace(5000);
    expect(sent.length).toBe(4);
  });

  it('goes silent at once on a barge-in and counts only what was sent', async () => {
    const { output, sent, events } = setup();
    output.beginUtterance(1);
    await output.write(1, ramp(SAMPLE_RATE), SAMPLE_RATE);
    output.pace(0);
    output.pace(20);
    expect(output.playedSamples(1)).toBe(6 * FRAME);
    output.clear();
    expect(output.speaking).toBe(false);
    expect(output.pace(40)).toBe(false);
    // Six frames of speech, then digital silence so the far end does not conceal the cut syllable.
    expect(sent.length).toBe(9);
    expect(sent.slice(6).every((f) => f.length === FRAME && f.every((s) => s === 0))).toBe(true);
    expect(events).toEqual(['first 1']);
  });

  it('sends no silence when it stops before any audio went out, or stops twice', async () => {
    const { output, sent } = setup();
    output.beginUtterance(1);
    await output.write(1, ramp(SAMPLE_RATE), SAMPLE_RATE);
    output.clear();
    expect(sent).toEqual([]);
    output.beginUtterance(2);
    await output.write(2, ramp(SAMPLE_RATE), SAMPLE_RATE);
    output.pace(0);
    output.pause();
    output.pause();
    output.clear();
    expect(sent.length).toBe(4 + 3);
  });

  it('keeps buffered audio across a pause', async () => {
    const { output, sent } = setup();
    output.beginUtterance(1);
    const audio = ramp(20 * FRAME);
    await output.write(1, audio, SAMPLE_RATE);
    output.endUtterance();
    output.pace(0);
    output.pause();
    expect(output.pace(20)).toBe(false);
    expect(sent.length).toBe(4 + 3);
    expect(sent.slice(4).every((f) => f.every((s) => s === 0))).toBe(true);
    output.resume();
    for (let t = 1000; sent.length < 23 && t < 2000; t += 20) output.pace(t);
    expect(concatPcm(sent.filter((f) => f.some((s) => s !== 0)))).toEqual(audio);
  });

  it('skips the time lost in a stalled event loop instead of bursting it out', async () => {
    const { output, sent } = setup();
    output.beginUtterance(1);
    await output.write(1, ramp(SAMPLE_RATE), SAMPLE_RATE);
    output.pace(0);
    const before = sent.length;
    output.pace(1000);
    // At most the allowed lateness (100 ms) plus the lead (40 ms) plus the frame in progress.
    expect(sent.length - before).toBeLessThanOrEqual(15);
    expect(sent.length - before).toBeGreaterThanOrEqual(10);
  });
});
