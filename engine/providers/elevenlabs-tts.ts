import { ElevenLabsClient, ElevenLabsError } from '@elevenlabs/elevenlabs-js';
import { VoiceError } from '../errors.ts';
import { isRetryableStatus, ProviderAbortedError, TtsFailedError } from './errors.ts';
import { Pcm16Assembler } from './pcm-bytes.ts';
import type { TextToSpeech, TtsAudio } from './tts.ts';

/** ElevenLabs streaming text-to-speech (`/v1/text-to-speech/:voiceId/stream`) through the official SDK, as raw PCM. */

/** Sample rates ElevenLabs offers as raw PCM (`output_format=pcm_<rate>`). */
export type ElevenLabsPcmRate = 8000 | 16000 | 22050 | 24000 | 32000 | 44100 | 48000;

export interface ElevenLabsTtsOptions {
  apiKey: string;
  voiceId: string;
  /** e.g. `https://api.elevenlabs.io` (the default) or a regional/local server. */
  baseUrl?: string;
  /** Default `eleven_flash_v2_5`, the low-latency model. */
  modelId?: string;
  /** Default 24000. */
  sampleRate?: ElevenLabsPcmRate;
  /** ElevenLabs' latency/quality trade-off, 0 (off) to 4. */
  optimizeStreamingLatency?: number;
  voiceSettings?: { stability?: number; similarityBoost?: number; style?: number; useSpeakerBoost?: boolean; speed?: number };
  /** Longest wait for the first audio (and then between chunks) before VE_TTS_FAILED. Default 5000 ms. */
  timeoutMs?: number;
  /** SDK-level retries before any audio arrived. Default 0: the caller decides, knowing whether the user still waits. */
  maxRetries?: number;
}

export class ElevenLabsTts implements TextToSpeech {
  readonly label: string;
  readonly sampleRate: number;
  private readonly client: ElevenLabsClient;
  private readonly options: ElevenLabsTtsOptions;

  constructor(options: ElevenLabsTtsOptions) {
    this.options = options;
    this.sampleRate = options.sampleRate ?? 24000;
    this.label = `elevenlabs/${options.modelId ?? 'eleven_flash_v2_5'}/${options.voiceId}`;
    this.client = new ElevenLabsClient({ apiKey: options.apiKey, ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}) });
  }

  async *synthesize(text: string, opts: { signal: AbortSignal }): AsyncGenerator<TtsAudio> {
    const { signal } = opts;
    if (signal.aborted) throw new ProviderAbortedError('speech synthesis', { cause: signal.reason });
    const timeoutMs = this.options.timeoutMs ?? 5000;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    // Like the LLM: the clock runs only while waiting on the server, not while the consumer holds audio.
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
    };
    const pause = (): void => clearTimeout(timer);
    const fail = (cause: unknown): VoiceError => {
      if (cause instanceof VoiceError) return cause;
      if (signal.aborted) return new ProviderAbortedError('speech synthesis', { cause });
      if (timedOut) return new TtsFailedError(`speech synthesis produced no audio within ${timeoutMs} ms`, { retryable: true, cause });
      const status = cause instanceof ElevenLabsError ? cause.statusCode : undefined;
      return new TtsFailedError(
        `speech synthesis failed${status ? ` with HTTP ${status}` : ''}: ${(cause as Error)?.message ?? String(cause)}`,
        { upstreamStatus: status, retryable: isRetryableStatus(status), cause },
      );
    };

    arm();
    try {
      const o = this.options;
      const body = await this.client.textToSpeech.stream(
        o.voiceId,
        {
          text,
          modelId: o.modelId ?? 'eleven_flash_v2_5',
          outputFormat: `pcm_${this.sampleRate}` as 'pcm_24000',
          ...(o.optimizeStreamingLatency !== undefined ? { optimizeStreamingLatency: o.optimizeStreamingLatency } : {}),
          ...(o.voiceSettings !== undefined ? { voiceSettings: o.voiceSettings } : {}),
        },
        { abortSignal: controller.signal, maxRetries: o.maxRetries ?? 0 },
      );
      const assembler = new Pcm16Assembler();
      for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
        const pcm = assembler.push(bytes);
        if (pcm.length === 0) continue;
        pause();
        yield { pcm, sampleRate: this.sampleRate };
        arm();
      }
      if (controller.signal.aborted) throw fail(controller.signal.reason);
    } catch (err) {
      throw fail(err);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      // Ends the HTTP response when the consumer stops early (barge-in).
      controller.abort();
    }
  }
}
