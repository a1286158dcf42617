// The live console: engine load and the calls running now (polled from GET /v1/engine), a timeline per
// call (from its SSE stream, read with fetch so that the API key travels in a header), a call from the
// browser's microphone through LiveKit's browser SDK, and server-side simulated callers.
import { Room, RoomEvent, Track } from './vendor/livekit-client.esm.mjs';
import { CallTimeline, foldSseMessage, parseSseBlock, renderTimeline } from './timeline.js';

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

/** Exposed for people poking at the page and for the browser test. */
const state = {
  apiKey: null,
  engine: null,
  selectedCallId: null,
  timeline: null,
  micCall: null,
  botAudioPeak: 0,
  errors: [],
};
window.consoleState = state;

// ---- API key ----------------------------------------------------------------------------------------

function readKey() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('key');
  if (fromHash) {
    sessionStorage.setItem('ve-api-key', fromHash);
    // Out of the address bar (and of screenshots, bookmarks and the Referer), kept for this tab.
    history.replaceState(null, '', location.pathname);
    return fromHash;
  }
  return sessionStorage.getItem('ve-api-key');
}

function askForKey(message) {
  const form = $('key-form');
  form.hidden = false;
  $('key-input').placeholder = message ?? 'Bearer key (printed by npm start)';
  form.onsubmit = (e) => {
    e.preventDefault();
    const key = $('key-input').value.trim();
    if (!key) return;
    sessionStorage.setItem('ve-api-key', key);
    state.apiKey = key;
    form.hidden = true;
    void poll();
  };
}

async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${state.apiKey}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const res = await fetch(path, { ...init, headers, body });
  if (res.status === 401) {
    askForKey('that key was refused; paste a valid one');
    throw new Error('unauthorized');
  }
  if (!res.ok) {
    const error = await res.json().catch(() => ({}));
    throw new Error(error?.error?.message ?? `HTTP ${res.status}`);
  }
  return res.json();
}

// ---- engine load, runtime, calls ----------------------------------------------------------------------

const fmtMs = (v) => (typeof v === 'number' ? `${v < 10 ? v.toFixed(1) : Math.round(v)} ms` : '–');

function renderRuntime(runtime) {
  const el = $('runtime');
  if (!runtime) {
    el.textContent = 'runtime details are not available (app started without server/main.ts)';
    return;
  }
  const rows = [
    ['LiveKit', `${runtime.livekit.url} ${runtime.livekit.local ? '(local server on loopback)' : '(external)'}`],
    ['store', runtime.store],
    ['engine', `VAD ${runtime.engine.vadBackend}, Smart Turn ${runtime.engine.smartTurnBackend}, ${runtime.engine.workers} media + ${runtime.engine.turnWorkers} turn workers`],
  ];
  for (const role of ['stt', 'llm', 'tts']) {
    const p = runtime.providers[role];
    rows.push([role, `${p.kind === 'stand-in' ? 'OFFLINE STAND-IN · ' : ''}${p.label} · ${p.url}`, p.kind === 'stand-in']);
  }
  el.replaceChildren(
    ...rows.flatMap(([k, v, warn]) => {
      const key = document.createElement('span');
      key.className = 'k';
      key.textContent = k;
      const value = document.createElement('span');
      value.textContent = v;
      if (warn) value.className = 'standin';
      return [key, value];
    }),
  );
}

function renderEngine(engine) {
  const m = engine.metrics;
  $('m-calls').textContent = `${engine.capacity.activeCalls} / ${engine.capacity.maxCalls}`;
  $('m-cpu').textContent = `${Math.round(engine.process.cpuPercent)} %`;
  $('m-cpu').title = `% of one core; the machine has ${engine.process.cpuCores}`;
  $('m-frame').textContent = fmtMs(m.frame_latency_p99_ms);
  $('m-turn').textContent = fmtMs(m.turn_decision_latency_p95_ms);
  $('m-drops').textContent = String(m.input_dropped_samples_total ?? '–');
  $('m-loop').textContent = fmtMs(m.event_loop_delay_p99_ms);
  $('m-rss').textContent = `${Math.round(engine.process.rssBytes / 2 ** 20)} MB`;
  const sim = engine.simulatedCallers;
  $('m-sim').textContent = `${sim.callers} (${sim.botResponses}/${sim.utterances} answered)`;
  $('m-simlat').textContent = fmtMs(sim.responseLatencyMs.p50);
  $('standin-badge').hidden = !engine.offlineStandIns;

  const body = $('calls-body');
  body.replaceChildren(
    ...engine.calls.map((call) => {
      const tr = document.createElement('tr');
      tr.dataset.callId = call.callId;
      if (call.callId === state.selectedCallId) tr.className = 'selected';
      const mine = state.micCall?.callId === call.callId;
      const cells = [
        `${call.callId.slice(0, 8)}${mine ? ' (you)' : call.simulated ? ' (sim)' : ''}`,
        call.botState,
        String(call.turns),
        fmtMs(call.lastResponseMs),
      ];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        if (call.simulated) td.className = 'sim';
        tr.append(td);
      }
      tr.onclick = () => select(call.callId);
      return tr;
    }),
  );
  if (state.selectedCallId === null && engine.calls.length > 0) select(engine.calls[0].callId);
}

async function poll() {
  if (!state.apiKey) return;
  try {
    const engine = await api('/v1/engine');
    state.engine = engine;
    renderRuntime(engine.runtime);
    renderEngine(engine);
  } catch (error) {
    state.errors.push(String(error));
  }
}

// ---- per-call timeline over SSE ------------------------------------------------------------------------

let streamAbort = null;

function select(callId) {
  if (state.selectedCallId === callId) return;
  streamAbort?.abort();
  state.selectedCallId = callId;
  state.timeline = new CallTimeline(callId);
  $('detail-call').textContent = callId;
  for (const tr of $('calls-body').children) tr.classList.toggle('selected', tr.dataset.callId === callId);
  streamAbort = new AbortController();
  void followEvents(state.timeline, streamAbort.signal);
}

async function followEvents(timeline, signal) {
  // Reconnects after a drop, resuming after the last event seen (the server replays from its store, or
  // sends `reset` where it cannot: the timeline then starts again and the call is re-read).
  while (!signal.aborted && !timeline.ended) {
    try {
      const headers = { authorization: `Bearer ${state.apiKey}` };
      if (timeline.lastSeq >= 0) headers['last-event-id'] = String(timeline.lastSeq);
      const res = await fetch(`/v1/calls/${encodeURIComponent(timeline.callId)}/events`, { headers, signal });
      if (!res.ok) throw new Error(`events: HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const message = parseSseBlock(block);
          if (message !== null && foldSseMessage(timeline, message)) void reread(timeline);
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      state.errors.push(String(error));
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** After a reset the stream goes on from live; the call's record says how it stands (ended or not). */
async function reread(timeline) {
  try {
    const call = await api(`/v1/calls/${encodeURIComponent(timeline.callId)}`);
    timeline.log.push({ at: Date.now(), cls: '', text: `call re-read: ${call.state}, ${call.transcript.length} transcript segments` });
    if (call.state === 'ended') timeline.ended = true;
  } catch (error) {
    state.errors.push(String(error));
  }
}

function drawTimeline() {
  if (state.timeline) {
    renderTimeline(state.timeline, {
      caller: $('lane-caller'),
      turn: $('lane-turn'),
      bot: $('lane-bot'),
      int: $('lane-int'),
      turns: $('turns-body'),
      log: $('log'),
    });
  }
  setTimeout(() => requestAnimationFrame(drawTimeline), 200);
}

// ---- a call from the browser's microphone ----------------------------------------------------------------

function meter(mediaStreamTrack) {
  const context = new AudioContext();
  const source = context.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const tick = () => {
    if (state.micCall === null) return context.close();
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const level = Math.sqrt(sum / samples.length);
    state.botAudioPeak = Math.max(state.botAudioPeak, level);
    $('bot-level').style.width = `${Math.min(100, level * 400)}%`;
    requestAnimationFrame(tick);
  };
  void context.resume().then(tick);
}

async function micCall() {
  $('mic-call').disabled = true;
  $('mic-status').textContent = 'creating call…';
  try {
    const call = await api('/v1/calls', { method: 'POST', json: { callerName: 'browser microphone' } });
    const room = new Room({ adaptiveStream: false, dynacast: false });
    state.micCall = { callId: call.callId, room };
    room.on(RoomEvent.TrackSubscribed, (track) => {
      if (track.kind !== Track.Kind.Audio) return;
      const el = track.attach();
      el.id = 'bot-audio';
      document.body.append(el);
      meter(track.mediaStreamTrack);
    });
    room.on(RoomEvent.Disconnected, () => endMicCall(false));
    $('mic-status').textContent = 'joining LiveKit…';
    await room.connect(call.livekitUrl, call.callerToken);
    await room.localParticipant.setMicrophoneEnabled(true);
    $('mic-status').textContent = `in call ${call.callId.slice(0, 8)}: speak, then pause`;
    $('hang-up').disabled = false;
    select(call.callId);
  } catch (error) {
    $('mic-status').textContent = `failed: ${error.message ?? error}`;
    state.errors.push(String(error));
    await endMicCall(true);
  }
}

async function endMicCall(byUser) {
  const call = state.micCall;
  if (call === null) return;
  state.micCall = null;
  $('hang-up').disabled = true;
  $('mic-call').disabled = false;
  $('bot-audio')?.remove();
  if (byUser) await call.room.disconnect();
  await api(`/v1/calls/${call.callId}/end`, { method: 'POST', json: {} }).catch(() => {});
  if (!$('mic-status').textContent.startsWith('failed')) $('mic-status').textContent = 'call ended';
}

// ---- simulated callers -------------------------------------------------------------------------------------

async function addSimulated() {
  const count = Math.max(1, Math.min(50, Number($('sim-count').value) || 1));
  $('sim-add').disabled = true;
  $('sim-status').textContent = `placing ${count} calls…`;
  try {
    const result = await api('/v1/console/simulated-callers', { method: 'POST', json: { count } });
    $('sim-status').textContent = `added ${result.added.length}`;
  } catch (error) {
    $('sim-status').textContent = `failed: ${error.message ?? error}`;
  } finally {
    $('sim-add').disabled = false;
    void poll();
  }
}

async function removeSimulated() {
  $('sim-status').textContent = 'hanging up…';
  try {
    await api('/v1/console/simulated-callers', { method: 'DELETE' });
    $('sim-status').textContent = 'removed';
  } catch (error) {
    $('sim-status').textContent = `failed: ${error.message ?? error}`;
  }
  void poll();
}

// ---- start -------------------------------------------------------------------------------------------------

$('mic-call').onclick = () => void micCall();
$('hang-up').onclick = () => void endMicCall(true);
$('sim-add').onclick = () => void addSimulated();
$('sim-remove').onclick = () => void removeSimulated();
state.apiKey = readKey();
if (!state.apiKey) askForKey();
void poll();
setInterval(() => void poll(), POLL_MS);
drawTimeline();
