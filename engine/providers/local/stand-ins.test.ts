/**
 * The offline stand-ins through the official SDK clients, as `npm start` uses them without keys: the
 * recogniser numbers the utterances it hears and says how long they were, the LLM acknowledges them,
 * the synthesiser speaks real (espeak-ng) audio, and every label says what they are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TranscriptResult } from '../stt.ts';
import { silence, synthesizeSpeech } from './speech.ts';
import { concatPcm, rms } from '../../pcm.ts';
import { standInResponder, standInTranscript } from './stand-in-replies.ts';
import { startStandIns, type StandIns } from './stand-ins.ts';

let standIns: StandIns;

beforeAll(async () => {
  standIns = await startStandIns({ stt: true, llm: true, tts: true });
});

afterAll(async () => {
  await standIns?.close();
});

describe('stand-in replies', () => {
  it('formats the placeholder transcript with the utterance number and its duration', () => {
    expect(standInTranscript(3, 1449)).toBe('[offline stand-in] utterance 3 (1.4 s)');
    expect(standInTranscript(12, 950)).toBe('[offline stand-in] utterance 12 (0.9 s)');
  });

  it('acknowledges the last placeholder in half seconds, and anything else briefly', () => {
    const reply = (text: string) => standInResponder({ model: 'm', tools: [], messages: [{ role: 'system', content: 'x' }, { role: 'user', content: text }] }).text;
    expect(reply('[offline stand-in] utterance 2 (1.4 s)')).toBe('Offline stand-in. You spoke for 1.5 seconds.');
    expect(reply('[offline stand-in] utterance 2 (0.1 s)')).toBe('Offline stand-in. You spoke for 0.5 seconds.');
    expect(reply('hello there')).toBe('Offline stand-in. I heard you.');
  });
});

describe('stand-in servers on their own thread', () => {
  it('label every provider and listen on loopback only', () => {
    for (const role of ['stt', 'llm', 'tts'] as const) {
      expect(standIns[role]!.provider.label).toMatch(/^\[offline stand-in\] /);
      expect(standIns[role]!.url).toMatch(/^(ws|http):\/\/127\.0\.0\.1:\d+/);
    }
  });

  // 48 kHz in frames that do not divide by 3 exercises the decimation's carry-over.
  it.each([
    { sampleRate: 16_000, frameSamples: 320 },
    { sampleRate: 48_000, frameSamples: 481 },
  ])('numbers each utterance of a $sampleRate Hz stream and gives its length', async ({ sampleRate, frameSamples }) => {
    const speech = await synthesizeSpeech('The gate is closed.', sampleRate);
    const pcm = concatPcm([silence(300, sampleRate), speech, silence(800, sampleRate), speech, silence(800, sampleRate)]);
    const finals: TranscriptResult[] = [];
    const stream = standIns.stt!.provider.stream({ sampleRate, onResult: (r) => r.kind === 'final' && r.text !== '' && finals.push(r), onError: () => {} });
    for (let offset = 0; offset < pcm.length; offset += frameSamples) stream.pushAudio(pcm.subarray(offset, offset + frameSamples));
    // The audio is queued while the connection opens; the stand-in segments it by its own clock.
    for (const deadline = performance.now() + 10_000; finals.length < 2 && performance.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    await stream.close();
    expect(finals.map((f) => f.text.replace(/\(\d+\.\d s\)/, '(x s)'))).toEqual([
      '[offline stand-in] utterance 1 (x s)',
      '[offline stand-in] utterance 2 (x s)',
    ]);
    const seconds = Number(/\((\d+\.\d) s\)/.exec(finals[0].text)![1]);
    expect(seconds).toBeGreaterThan(0.5);
    expect(seconds).toBeLessThan(speech.length / sampleRate + 0.3);
    // Times are call-relative in ms whatever rate the stand-in was fed: the first word starts after the 300 ms lead-in.
    expect(finals[0].startMs).toBeGreaterThanOrEqual(250);
    expect(finals[1].startMs).toBeGreaterThan(finals[0].endMs);
  });

  it('answers through the OpenAI SDK and speaks through the ElevenLabs SDK', async () => {
    let text = '';
    for await (const chunk of standIns.llm!.provider.complete({
      messages: [{ role: 'user', content: '[offline stand-in] utterance 1 (2.0 s)' }],
      signal: new AbortController().signal,
    })) {
      if (chunk.type === 'text') text += chunk.text;
    }
    expect(text).toBe('Offline stand-in. You spoke for 2 seconds.');

    const pieces: Int16Array[] = [];
    for await (const audio of standIns.tts!.provider.synthesize(text, { signal: new AbortController().signal })) pieces.push(audio.pcm);
    const audio = concatPcm(pieces);
    expect(audio.length / standIns.tts!.provider.sampleRate).toBeGreaterThan(1);
    expect(rms(audio)).toBeGreaterThan(500);
  });

  it('closes idempotently', async () => {
    const extra = await startStandIns({ stt: false, llm: true, tts: false });
    expect(extra.stt).toBeUndefined();
    const url = extra.llm!.url;
    await Promise.all([extra.close(), extra.close()]);
    await expect(fetch(`${url}/chat/completions`, { method: 'POST' })).rejects.toThrow();
  });
});
