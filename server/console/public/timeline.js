// @ts-check
// One call's timeline, folded from its event stream (GET /v1/calls/:id/events): caller speech from the
// VAD, Smart Turn decisions with their probability, bot speech, interruptions, and per-turn latency.
// Times are the events' wall-clock `at`, so caller and bot lanes share one clock. Type-checked against
// the engine's event contract (engine/events.ts) by `npm run typecheck`.

/** @typedef {import('../../../engine/events.ts').EngineEvent} EngineEvent */

/** Seconds of history the lanes show. */
export const WINDOW_MS = 30_000;
const MAX_LOG_LINES = 300;

export class CallTimeline {
  constructor(callId) {
    this.callId = callId;
    this.lastSeq = -1;
    /** @type {Array<{start:number,end:number|null}>} */
    this.callerSpeech = [];
    this.botSpeech = [];
    /** @type {Array<{at:number,probability:number|null,complete:boolean,label:string}>} */
    this.turnMarks = [];
    this.interruptions = [];
    /** turnId -> row */
    this.turns = new Map();
    this.log = [];
    this.ended = false;
  }

  /**
   * The stream said events before `fromSeq` cannot be sent (a `reset`): what was folded so far may have
   * holes, so it is dropped and the timeline starts again from `fromSeq`.
   */
  reset({ reason, fromSeq }) {
    Object.assign(this, new CallTimeline(this.callId));
    this.lastSeq = fromSeq - 1;
    this.log.push({ at: Date.now(), cls: 'error', text: `stream reset (${reason}): events before #${fromSeq} are not shown` });
  }

  /**
   * Folds one event in; returns false for a replayed duplicate.
   * @param {EngineEvent} event
   */
  add(event) {
    if (event.seq <= this.lastSeq) return false;
    this.lastSeq = event.seq;
    const at = Date.parse(event.at);
    switch (event.type) {
      case 'vad':
        if (event.data.event === 'speech_start') this.callerSpeech.push({ start: at, end: null });
        else if (event.data.event === 'speech_end') closeLast(this.callerSpeech, at);
        break;
      case 'turn': {
        const d = event.data;
        if (d.event === 'smart_turn_result') {
          this.turnMarks.push({ at, probability: d.probability, complete: d.complete === true, label: `p=${fmtP(d.probability)}` });
          this.#turn(d.turnId).probability = d.probability;
        } else if (d.event === 'user_turn_complete') {
          const row = this.#turn(d.turnId);
          row.probability = d.probability ?? row.probability;
          row.rule = d.rule;
          row.completeAt = at;
          if (d.rule !== 'model') this.turnMarks.push({ at, probability: d.probability ?? null, complete: true, label: String(d.rule) });
        }
        break;
      }
      case 'bot_status':
        if (event.data.state === 'speaking') this.botSpeech.push({ start: at, end: null });
        else closeLast(this.botSpeech, at);
        break;
      case 'interruption':
        this.interruptions.push({ at, label: String(event.data.event) });
        if (event.data.event === 'interrupted') closeLast(this.botSpeech, at);
        break;
      case 'latency': {
        const d = event.data;
        const row = this.#turn(d.turnId);
        row.responseMs = d.responseMs;
        row.stagesMs = d.stagesMs;
        row.probability = d.smartTurn.probability ?? row.probability;
        row.rule = d.smartTurn.rule;
        break;
      }
      case 'call_ended':
        this.ended = true;
        closeLast(this.callerSpeech, at);
        closeLast(this.botSpeech, at);
        break;
    }
    const line = describe(event);
    if (line !== null) {
      this.log.push({ at, ...line });
      if (this.log.length > MAX_LOG_LINES) this.log.shift();
    }
    return true;
  }

  #turn(turnId) {
    const key = String(turnId);
    let row = this.turns.get(key);
    if (row === undefined) {
      row = { turnId: key, probability: null, rule: null, responseMs: null, stagesMs: {}, completeAt: null };
      this.turns.set(key, row);
    }
    return row;
  }
}

/** One SSE message block (`id:`, `event:`, `data:` lines) as `{ event, data }`; null for a comment. */
export function parseSseBlock(block) {
  const fields = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(': ');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 2);
  }
  return fields.data === undefined ? null : { event: fields.event, data: JSON.parse(fields.data) };
}

/**
 * Folds one SSE message into the timeline; true for a `reset`, after which the caller re-reads the call.
 * @param {CallTimeline} timeline
 * @param {{ event: string, data: any }} message
 */
export function foldSseMessage(timeline, message) {
  if (message.event === 'reset') {
    timeline.reset(message.data);
    return true;
  }
  timeline.add(message.data);
  return false;
}

function closeLast(segments, at) {
  const last = segments[segments.length - 1];
  if (last && last.end === null) last.end = at;
}

function fmtP(p) {
  return typeof p === 'number' ? p.toFixed(2) : '–';
}

function fmtMs(ms) {
  return typeof ms === 'number' ? `${Math.round(ms)} ms` : '–';
}

/** @param {EngineEvent} event */
function describe(event) {
  switch (event.type) {
    case 'vad':
      return { cls: 'caller', text: `VAD ${event.data.event}` };
    case 'turn': {
      const d = event.data;
      if (d.event === 'smart_turn_result') return { cls: 'turn', text: `Smart Turn p=${fmtP(d.probability)} → ${d.complete ? 'complete' : 'incomplete'} (turn ${d.turnId})` };
      if (d.event === 'user_turn_complete') return { cls: 'turn', text: `turn ${d.turnId} complete by ${d.rule}` };
      return { cls: 'turn', text: `${d.event} (turn ${d.turnId})` };
    }
    case 'transcript': {
      const d = event.data;
      if (!d.final) return null;
      return { cls: d.speaker === 'bot' ? 'bot' : 'caller', text: `${d.speaker}: ${d.text}` };
    }
    case 'bot_status': {
      const d = event.data;
      return { cls: 'bot', text: `bot ${d.state}${d.providers ? ` (stt ${d.providers.stt}, llm ${d.providers.llm}, tts ${d.providers.tts})` : ''}` };
    }
    case 'interruption': {
      const d = event.data;
      return { cls: 'int', text: `interruption: ${d.event}${d.event === 'interrupted' && d.heardText ? ` (heard "${d.heardText}")` : ''}` };
    }
    case 'latency':
      return { cls: 'bot', text: `turn ${event.data.turnId}: response ${fmtMs(event.data.responseMs)}` };
    case 'error':
      return { cls: 'error', text: `${event.data.stage} ${event.data.code}${event.data.recovered ? ' (recovered)' : ''}` };
    case 'call_ended':
      return { cls: 'error', text: `call ended: ${event.data.reason}` };
    default:
      return { cls: '', text: event.type };
  }
}

function place(el, startMs, endMs, now) {
  const from = now - WINDOW_MS;
  const left = Math.max(0, (startMs - from) / WINDOW_MS);
  const right = Math.min(1, ((endMs ?? now) - from) / WINDOW_MS);
  el.style.left = `${left * 100}%`;
  el.style.width = `${Math.max(0, right - left) * 100}%`;
}

function renderSegments(track, segments, cls, now) {
  track.replaceChildren();
  for (const s of segments) {
    if ((s.end ?? now) < now - WINDOW_MS) continue;
    const el = document.createElement('div');
    el.className = `seg ${cls}`;
    place(el, s.start, s.end, now);
    track.append(el);
  }
}

function renderMarks(track, marks, cls, now) {
  track.replaceChildren();
  for (const m of marks) {
    if (m.at < now - WINDOW_MS) continue;
    const el = document.createElement('div');
    el.className = `mark ${cls}${m.complete === false ? ' incomplete' : ''}`;
    el.style.left = `${((m.at - (now - WINDOW_MS)) / WINDOW_MS) * 100}%`;
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = m.label;
    el.append(tag);
    track.append(el);
  }
}

/** Draws the lanes, the turn table and the event log into the page's elements. */
export function renderTimeline(timeline, els, now = Date.now()) {
  renderSegments(els.caller, timeline.callerSpeech, 'caller', now);
  renderSegments(els.bot, timeline.botSpeech, 'bot', now);
  renderMarks(els.turn, timeline.turnMarks, 'turn', now);
  renderMarks(els.int, timeline.interruptions, 'int', now);

  const rows = [...timeline.turns.values()].filter((r) => r.rule !== null || r.responseMs !== null).reverse();
  els.turns.replaceChildren(
    ...rows.map((r) => {
      const tr = document.createElement('tr');
      tr.dataset.turnId = r.turnId;
      const s = r.stagesMs ?? {};
      for (const text of [r.turnId, fmtP(r.probability), r.rule ?? '–', fmtMs(r.responseMs), fmtMs(s.endOfUtterance), fmtMs(s.sttFinal), fmtMs(s.llmFirstToken), fmtMs(s.ttsFirstByte)]) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }),
  );

  // Keyed on the log's length too: a reset or a re-read call adds lines without a new event.
  if (els.log.dataset.count !== `${timeline.lastSeq}/${timeline.log.length}`) {
    els.log.dataset.count = `${timeline.lastSeq}/${timeline.log.length}`;
    els.log.replaceChildren(
      ...timeline.log
        .slice()
        .reverse()
        .map((line) => {
          const li = document.createElement('li');
          const t = document.createElement('span');
          t.className = 't';
          t.textContent = new Date(line.at).toLocaleTimeString();
          const text = document.createElement('span');
          text.className = line.cls;
          text.textContent = line.text;
          li.append(t, text);
          return li;
        }),
    );
  }
}
