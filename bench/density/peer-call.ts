/**
 * The peers' architecture for one call, as its own OS process: LiveKit Agents and Pipecat run one
 * process per call, each with its own native inference sessions. This process holds its own
 * onnxruntime-node sessions for Silero VAD and Smart Turn, its own Speex resampler, runs the VAD
 * unbatched (one stream, B=1 per 32 ms window) and Smart Turn on every VAD stop, in process, with the
 * project's own stages, so the comparison is of architectures and not of implementations.
 *
 * Driven by the density parent over IPC: it says `ready` once its models are loaded and warm, starts
 * feeding itself its caller's audio in real time on `start`, clears its statistics on `measure`, and
 * sends its report and exits on `stop`.
 *
 * Run (by bench/density.ts): node bench/density/peer-call.ts --index 3 --seed 1
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createModelSession } from '../../engine/inference/backend.ts';
import { SileroVad, VAD_SAMPLE_RATE, VAD_WINDOW_SAMPLES } from '../../engine/stages/silero-vad.ts';
import { VadHysteresis } from '../../engine/stages/vad-hysteresis.ts';
import { SmartTurnModel, SMART_TURN_BLOCK_LENGTH } from '../../engine/stages/smart-turn-model.ts';
import { loadFeatureExtractor } from '../../engine/stages/smart-turn-features.ts';
import { loadResamplerModule, Resampler } from '../../engine/stages/resampler.ts';
import { AudioHistory } from '../../engine/stages/audio-history.ts';
import { completedTurnEndSamples, TurnWindow, type TurnAudioRange } from '../../engine/stages/turn-window.ts';
import { VadVolume } from '../../engine/stages/vad-volume.ts';
import { SileroReset } from '../../engine/stages/silero-reset.ts';
import { TurnDetector } from '../../engine/turn/turn-detector.ts';
import { PEER_SETTINGS } from './peer-settings.ts';
import { resolveModel } from '../../models/model-manager.ts';
import { buildConversation, seededRandom } from './conversations.ts';
import { LoopingAudio, RealTimeFeeder } from './caller-feed.ts';
import { FRAME_MS, FRAME_SAMPLES, INPUT_SAMPLE_RATE, LOOP_MONITOR_RESOLUTION_MS, type PeerCommand, type PeerMessage } from './common.ts';

const { values } = parseArgs({
  options: {
    index: { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string', default: '1' },
    'tick-ms': { type: 'string', default: '5' },
  },
});
const index = Number(values.index);
const threads = Number(values.threads);

function send(message: PeerMessage, then?: () => void): void {
  process.send?.(message, undefined, undefined, () => then?.());
}

if (!process.send) {
  process.stderr.write('peer-call.ts is started by bench/density.ts over IPC\n');
  process.exit(2);
}

try {
  await main();
} catch (error) {
  send({ type: 'failed', message: (error as Error).stack ?? String(error) }, () => process.exit(1));
}

async function main(): Promise<void> {
  const loadStarted = performance.now();
  const [vadPath, smartTurnPath] = await Promise.all([resolveModel('silero-vad-v6'), resolveModel('smart-turn-v3.2')]);
  const [vadSession, turnSession, extractor] = await Promise.all([
    createModelSession('native', vadPath, { threads }),
    createModelSession('native', smartTurnPath, { threads }),
    loadFeatureExtractor(),
    loadResamplerModule(),
  ]);
  const vad = SileroVad.create(vadSession);
  const turnModel = SmartTurnModel.create(turnSession);
  // The same warm-up the engine gives its workers, so neither side measures a cold runtime.
  const warm = new Map([['call', new Float32Array(VAD_WINDOW_SAMPLES)]]);
  vad.addStream('call');
  for (let i = 0; i < PEER_SETTINGS.vadWarmUpRuns; i++) await vad.run(warm);
  vad.resetStream('call');
  for (let i = 0; i < PEER_SETTINGS.smartTurnWarmUpRuns; i++) await turnModel.predict([new Float32Array(SMART_TURN_BLOCK_LENGTH)]);

  const resampler = Resampler.create({ inputSampleRate: INPUT_SAMPLE_RATE, outputSampleRate: VAD_SAMPLE_RATE });
  // Room for the longest turn window plus the windows that may be queued behind the VAD.
  const history = new AudioHistory(Math.round(((Math.max(PEER_SETTINGS.historyMs, PEER_SETTINGS.turnWindow.maxDurationMs) + 2000) * VAD_SAMPLE_RATE) / 1000));
  const hysteresis = new VadHysteresis(PEER_SETTINGS.vad);
  // The engine's per-call stages, so that both sides do the same work per window and per stop.
  const turnWindow = new TurnWindow({ ...PEER_SETTINGS.turnWindow, vadStartMs: PEER_SETTINGS.vad.startMs, sampleRate: VAD_SAMPLE_RATE });
  const vadVolume = new VadVolume({ minVolume: PEER_SETTINGS.vadMinVolume, sampleRate: VAD_SAMPLE_RATE });
  const volumeScratch = new Float32Array(vadVolume.windowSamples);
  const sileroReset = new SileroReset({ intervalMs: PEER_SETTINGS.vadModelResetIntervalMs });
  let clearedAtSamples = 0;
  let stopConfirmedAtSamples = 0;
  const turn = new TurnDetector();
  const conversation = buildConversation(index, INPUT_SAMPLE_RATE);
  const random = seededRandom(Number(values.seed) * 1_000_003 + index * 7919);
  const audio = new LoopingAudio(conversation.pcm, FRAME_SAMPLES, Math.floor(random() * conversation.pcm.length));
  const feeder = new RealTimeFeeder({ frameMs: FRAME_MS, tickMs: Number(values['tick-ms']) });

  const eventLoop = monitorEventLoopDelay({ resolution: LOOP_MONITOR_RESOLUTION_MS });
  let measuring = false;
  let frameLatencyMs: number[] = [];
  let stopToTurnDecisionMs: number[] = [];
  let featureMs: number[] = [];
  const fresh = () => ({ requests: 0, failures: 0, speechStarts: 0, speechEnds: 0, turnsByModel: 0, turnsBySilence: 0 });
  let counts = fresh();

  /** Complete windows waiting for the VAD, each with the arrival time of the frame that completed it. */
  const queue: Array<{ samples: Float32Array; frameAt: number }> = [];
  let pending = new Float32Array(VAD_WINDOW_SAMPLES);
  let pendingLength = 0;
  let vadBusy = false;
  let processedSamples = 0;

  function onFrame(frame: Int16Array): void {
    const frameAt = performance.now();
    const pcm = resampler.process(frame);
    const floats = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) floats[i] = pcm[i] / 32768;
    history.append(floats);
    let offset = 0;
    while (offset < floats.length) {
      const take = Math.min(VAD_WINDOW_SAMPLES - pendingLength, floats.length - offset);
      pending.set(floats.subarray(offset, offset + take), pendingLength);
      pendingLength += take;
      offset += take;
      if (pendingLength === VAD_WINDOW_SAMPLES) {
        queue.push({ samples: pending, frameAt });
        pending = new Float32Array(VAD_WINDOW_SAMPLES);
        pendingLength = 0;
      }
    }
    if (!vadBusy) void pump();
  }

  /** B=1: one model run per window, in order, as a per-call process does. */
  async function pump(): Promise<void> {
    vadBusy = true;
    try {
      while (queue.length > 0) {
        const window = queue.shift()!;
        const probability = (await vad.run(new Map([['call', window.samples]]))).get('call')!;
        if (measuring) frameLatencyMs.push(performance.now() - window.frameAt);
        const endSamples = hysteresis.offsetSamples + VAD_WINDOW_SAMPLES;
        if (sileroReset.afterWindow(probability, hysteresis.quiet)) vad.resetStream('call');
        const loud = !vadVolume.enabled || vadVolume.loudEnough(vadVolume.afterWindow(history.copyRange(endSamples - vadVolume.windowSamples, endSamples, volumeScratch)));
        const event = hysteresis.push(loud ? probability : 0);
        processedSamples = hysteresis.offsetSamples;
        applyTurnEvents(turn.onAudioProgress(processedSamples).events);
        if (event?.type === 'speech_start') {
          if (measuring) counts.speechStarts++;
          turnWindow.onSpeechStart(processedSamples, clearedAtSamples);
          applyTurnEvents(turn.onSpeechStart(event.offsetSamples).events);
        } else if (event?.type === 'speech_end') {
          if (measuring) counts.speechEnds++;
          stopConfirmedAtSamples = processedSamples;
          const range = turnWindow.onSpeechEnd(processedSamples, clearedAtSamples);
          const step = turn.onSpeechEnd(event.offsetSamples);
          applyTurnEvents(step.events);
          if (step.request) requestSmartTurn(step.request.requestId, range);
        }
      }
    } finally {
      vadBusy = false;
    }
  }

  function requestSmartTurn(requestId: number, range: TurnAudioRange): void {
    const featuresStarted = performance.now();
    // As the engine does: the current turn's audio up to the stop.
    const features = extractor.extract(history.range(range.startSamples, range.endSamples));
    const requested = performance.now();
    const wasMeasuring = measuring;
    if (measuring) {
      featureMs.push(requested - featuresStarted);
      counts.requests++;
    }
    turnModel.predict([features]).then(
      ([probability]) => {
        if (wasMeasuring && measuring) stopToTurnDecisionMs.push(performance.now() - requested);
        applyTurnEvents(turn.onSmartTurnResult(requestId, probability, processedSamples).events);
      },
      () => {
        if (measuring) counts.failures++;
        applyTurnEvents(turn.onSmartTurnFailed(requestId).events);
      },
    );
  }

  function applyTurnEvents(events: ReturnType<TurnDetector['onAudioProgress']>['events']): void {
    for (const event of events) {
      if (event.type !== 'user_turn_complete') continue;
      clearedAtSamples = completedTurnEndSamples(event.rule, stopConfirmedAtSamples, event.decidedAtSamples);
      if (!measuring) continue;
      if (event.rule === 'model') counts.turnsByModel++;
      else counts.turnsBySilence++;
    }
  }

  feeder.add(random() * FRAME_MS, () => onFrame(audio.next()));

  // The parent died or gave up: a call process has nobody left to report to.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (command: PeerCommand) => {
    if (command.type === 'start') {
      feeder.start();
      eventLoop.enable();
    } else if (command.type === 'measure') {
      measuring = true;
      frameLatencyMs = [];
      stopToTurnDecisionMs = [];
      featureMs = [];
      counts = fresh();
      feeder.resetStats();
      eventLoop.reset();
    } else if (command.type === 'stop') {
      measuring = false;
      feeder.stop();
      eventLoop.disable();
      const { requests, failures, ...events } = counts;
      // Leave once the report is out; the sessions die with the process.
      send({
        type: 'report',
        frameLatencyMs,
        stopToTurnDecisionMs,
        featureMs,
        eventLoopDelayP99Ms: eventLoop.percentile(99) / 1e6,
        feeder: feeder.stats(),
        pendingWindows: queue.length,
        smartTurn: { requests, failures },
        events,
      }, () => process.exit(0));
    }
  });
  send({ type: 'ready', loadMs: performance.now() - loadStarted });
}
