/**
 * The live page in Debian's headless Chromium (driven by playwright-core): the browser's fake
 * microphone speaks a synthesised sentence, the page places a call through LiveKit's browser SDK, the
 * bot (offline stand-ins) answers audibly, and the timeline shows the turn with its Smart Turn decision
 * and latency. A screenshot is kept in test-artifacts/console.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silence, synthesizeSpeech } from '../engine/providers/local/speech.ts';
import { concatPcm } from '../engine/pcm.ts';
import { ENGINE_API_KEY, startEngineProcess, type EngineProcess } from './support/engine-process.ts';
import { repoRoot } from './support/process.ts';

const CHROMIUM = '/usr/bin/chromium';
const SAMPLE_RATE = 48_000;

let engine: EngineProcess;
let context: BrowserContext;
let page: Page;
let workDir: string;

/** 16-bit mono PCM as a WAV file, the format Chromium's fake audio capture reads. */
function writeWav(path: string, pcm: Int16Array, sampleRate: number): void {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + pcm.byteLength, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(pcm.byteLength, 40);
  writeFileSync(path, Buffer.concat([header, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength)]));
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing; fix with: apt-get install -y --no-install-recommends chromium (or run: CI=true bash .ci/run)`);
  workDir = mkdtempSync(join(tmpdir(), 've-console-'));
  // The fake microphone loops this file: a sentence, then silence long enough for a turn and the reply.
  const speech = await synthesizeSpeech('Hello, I am at the loading dock and the gate is closed.', SAMPLE_RATE);
  const wavPath = join(workDir, 'caller.wav');
  writeWav(wavPath, concatPcm([silence(1000, SAMPLE_RATE), speech, silence(7000, SAMPLE_RATE)]), SAMPLE_RATE);

  engine = await startEngineProcess();
  context = await chromium.launchPersistentContext(join(workDir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wavPath}`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
}, 180_000);

afterAll(async () => {
  await context?.close().catch(() => {});
  await engine?.kill();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('the live page', () => {
  it('places a call from the fake microphone; the bot answers and the timeline shows the turn', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    await page.goto(`${engine.baseUrl}/console/#key=${ENGINE_API_KEY}`);
    // The key moved out of the address bar; the page shows what runs where, stand-ins flagged.
    await page.waitForFunction(() => document.getElementById('runtime')!.textContent!.includes('OFFLINE STAND-IN'));
    expect(page.url()).not.toContain(ENGINE_API_KEY);
    expect(await page.isVisible('#standin-badge')).toBe(true);

    await page.click('#mic-call');
    await page.waitForFunction(() => document.getElementById('mic-status')!.textContent!.startsWith('in call'), undefined, { timeout: 30_000 });
    const callId = await page.evaluate(() => (window as unknown as { consoleState: { micCall: { callId: string } } }).consoleState.micCall.callId);
    expect(callId).toMatch(/^[0-9a-f-]{36}$/);

    // A turn row with the Smart Turn probability and a measured response time.
    const row = page.locator('#turns-body tr').first();
    await row.waitFor({ timeout: 45_000 });
    await page.waitForFunction(() => /\d+ ms/.test(document.querySelector('#turns-body tr td:nth-child(4)')?.textContent ?? ''), undefined, { timeout: 45_000 });
    const cells = await row.locator('td').allTextContents();
    expect(cells[1]).toMatch(/^(0\.\d\d|1\.00|–)$/);
    expect(cells[2]).toMatch(/^(model|silence)$/);
    expect(Number(cells[3].replace(/ ms$/, ''))).toBeGreaterThan(0);

    // The lanes hold caller speech, a Smart Turn mark with its probability, and bot speech.
    expect(await page.locator('#lane-caller .seg').count()).toBeGreaterThan(0);
    expect(await page.locator('#lane-turn .mark').count()).toBeGreaterThan(0);
    await page.waitForFunction(() => document.querySelectorAll('#lane-bot .seg').length > 0, undefined, { timeout: 20_000 });
    // The bot's words and audio reached the browser.
    await page.waitForFunction(() => document.getElementById('log')!.textContent!.includes('bot: Offline stand-in.'), undefined, { timeout: 20_000 });
    await page.waitForFunction(() => (window as unknown as { consoleState: { botAudioPeak: number } }).consoleState.botAudioPeak > 0.02, undefined, { timeout: 20_000 });
    expect(await page.locator('#log').textContent()).toMatch(/caller: \[offline stand-in\] utterance \d+ \(\d+\.\d s\)/);
    expect(await page.locator('#calls-body').textContent()).toContain(`${callId.slice(0, 8)} (you)`);

    const artifacts = join(repoRoot, 'test-artifacts');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'console.png'), fullPage: true });

    await page.click('#hang-up');
    await page.waitForFunction(() => document.getElementById('mic-status')!.textContent === 'call ended');
    expect(pageErrors).toEqual([]);
  }, 150_000);
});
