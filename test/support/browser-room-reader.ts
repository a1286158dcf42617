/**
 * The room read from Debian's headless Chromium with LiveKit's browser SDK (livekit-client), as a web
 * front end of a LiveKit agent reads it: a page served on loopback joins the room, registers an
 * `lk.transcription` text stream handler and follows the participants' attributes; the test reads the
 * page's RoomView (room-reader.ts). Its chunk times are the page's clock.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { readerToken, type RoomView } from './room-reader.ts';

const CHROMIUM = '/usr/bin/chromium';

/** Runs in the page: the same view as RtcNodeRoomReader, from livekit-client's API. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>room reader</title>
<script type="module">
import { Room, RoomEvent, ParticipantKind, Track } from './livekit-client.esm.mjs';
const view = { streams: [], participants: {}, agentStates: [], attributeKeys: [], left: [] };
window.readerView = view;
function note(p) {
  const attributes = { ...p.attributes };
  const microphone = [...p.trackPublications.values()].find((t) => t.source === Track.Source.Microphone);
  const isAgent = p.kind === ParticipantKind.AGENT;
  view.participants[p.identity] = { identity: p.identity, isAgent, attributes, microphoneSid: microphone?.trackSid };
  for (const key of Object.keys(attributes)) if (!view.attributeKeys.includes(key)) view.attributeKeys.push(key);
  const state = attributes['lk.agent.state'];
  if (isAgent && state !== undefined && view.agentStates.at(-1) !== state) view.agentStates.push(state);
}
window.joinRoom = async (url, token) => {
  const room = new Room();
  room.registerTextStreamHandler('lk.transcription', async (reader, participantInfo) => {
    const read = { sender: participantInfo.identity, streamId: reader.info.id, attributes: { ...reader.info.attributes }, chunks: [], ended: false };
    view.streams.push(read);
    for await (const text of reader) read.chunks.push({ atMs: performance.now(), text });
    read.attributes = { ...reader.info.attributes };
    read.ended = true;
  });
  room.on(RoomEvent.ParticipantConnected, note);
  room.on(RoomEvent.ParticipantAttributesChanged, (_changed, p) => { if (p !== room.localParticipant) note(p); });
  room.on(RoomEvent.TrackPublished, (_publication, p) => note(p));
  room.on(RoomEvent.ParticipantDisconnected, (p) => view.left.push(p.identity));
  await room.connect(url, token, { autoSubscribe: false });
  for (const p of room.remoteParticipants.values()) note(p);
  window.readerRoom = room;
};
</script>`;

export class BrowserRoomReader {
  #server: Server;
  #context: BrowserContext;
  #page: Page;
  #profileDir: string;

  private constructor(server: Server, context: BrowserContext, page: Page, profileDir: string) {
    this.#server = server;
    this.#context = context;
    this.#page = page;
    this.#profileDir = profileDir;
  }

  static async join(opts: { url: string; apiKey: string; apiSecret: string; roomName: string; identity: string }): Promise<BrowserRoomReader> {
    const livekitClient = readFileSync(createRequire(import.meta.url).resolve('livekit-client').replace(/[^/]+$/, 'livekit-client.esm.mjs'));
    const server = createServer((request, response) => {
      if (request.url === '/livekit-client.esm.mjs') {
        response.writeHead(200, { 'content-type': 'text/javascript' }).end(livekitClient);
      } else {
        response.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const profileDir = mkdtempSync(join(tmpdir(), 've-room-reader-'));
    const context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      // Loopback only: without the networking flags Chromium reaches for outside hosts.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const reader = new BrowserRoomReader(server, context, page, profileDir);
    try {
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => typeof (window as unknown as { joinRoom?: unknown }).joinRoom === 'function');
      const token = await readerToken(opts);
      await page.evaluate(([url, jwt]) => (window as unknown as { joinRoom(u: string, t: string): Promise<void> }).joinRoom(url, jwt), [opts.url, token] as const);
    } catch (error) {
      await reader.close();
      throw error;
    }
    return reader;
  }

  view(): Promise<RoomView> {
    return this.#page.evaluate(() => (window as unknown as { readerView: RoomView }).readerView);
  }

  async close(): Promise<void> {
    await this.#page.evaluate(() => (window as unknown as { readerRoom?: { disconnect(): Promise<void> } }).readerRoom?.disconnect()).catch(() => {});
    await this.#context.close().catch(() => {});
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
    rmSync(this.#profileDir, { recursive: true, force: true });
  }
}
