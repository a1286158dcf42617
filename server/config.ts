import { randomBytes } from 'node:crypto';
import { VoiceError } from '../engine/errors.ts';

/**
 * Configuration is read and validated once at start-up from an env-like object into one frozen, typed
 * `Config`. Nothing else in the project reads `process.env`. Every setting read here is listed in
 * `SETTINGS` (which generates `server/SETTINGS.md`); reading a name that is not listed throws, so the
 * table and the parser cannot drift apart.
 */

/** One documented setting: its variable name, default (as written in the environment) and meaning. */
export interface SettingSpec {
  name: string;
  section: string;
  /** `undefined` means "unset" (the feature is off or the value is required). */
  default: string | undefined;
  description: string;
}

export const SETTINGS: readonly SettingSpec[] = [
  { section: 'Roles', name: 'ROLE', default: 'all', description: 'What this process runs (`npm start -- --role <role>` sets it too). `all`: the embedded default, one process with the API, a local LiveKit when `LIVEKIT_URL` is unset, one engine and the embedded store. `api`: only the control plane; a call is a room plus an agent dispatch to `AGENT_NAME`, taken by whichever engine process LiveKit picks. `engine`: only an engine, registered with LiveKit as an agent worker under `AGENT_NAME`, serving `/healthz` and `/metrics` on `HOST:PORT`; any number of them, on any box. `api` and `engine` need `LIVEKIT_URL` and `MONGODB_URI` (the store they share; the embedded store is one process\'s).' },
  { section: 'HTTP', name: 'HOST', default: '127.0.0.1', description: 'Address the HTTP API listens on.' },
  { section: 'HTTP', name: 'PORT', default: '8080', description: 'TCP port of the HTTP API (0 picks a free port).' },
  { section: 'HTTP', name: 'BODY_LIMIT_BYTES', default: '65536', description: 'Largest accepted request body; larger bodies get 413 `VE_BODY_TOO_LARGE`.' },
  { section: 'HTTP', name: 'LOG_LEVEL', default: 'info', description: 'Log level: fatal, error, warn, info, debug, trace or silent.' },
  { section: 'Auth', name: 'API_KEYS', default: undefined, description: 'Comma list of `key[:name[:scopes]]` accepted as `Authorization: Bearer <key>`; scopes joined with `+`. `calls` (the default): create calls and read and act on the calls this key created. `read`: read only (GET routes and event streams of its own calls); every other method answers 403 `VE_FORBIDDEN`. `admin`: every call, not only its own, and the console\'s simulated callers; `read+admin` reads every call and changes nothing. Another key\'s call answers 404 `VE_CALL_NOT_FOUND`. Empty outside CI and production: an `admin` dev key is generated and logged. Empty in CI: every authenticated request is refused.' },
  { section: 'Auth', name: 'RATE_LIMIT_MAX', default: '600', description: 'Requests each API key (or, before authentication, each client address) may make per window.' },
  { section: 'Auth', name: 'RATE_LIMIT_WINDOW_MS', default: '60000', description: 'Length of the rate-limit window.' },
  { section: 'Auth', name: 'RATE_LIMIT_OVERRIDES', default: undefined, description: 'Per-key limits as a comma list of `name=max`, e.g. `dispatch=6000,monitor=60`.' },
  { section: 'Auth', name: 'CI', default: undefined, description: 'Set by CI systems; disables the generated dev key.' },
  { section: 'Auth', name: 'NODE_ENV', default: 'development', description: '`production` makes `API_KEYS` mandatory.' },
  { section: 'LiveKit', name: 'LIVEKIT_URL', default: undefined, description: 'LiveKit server URL given to clients and used for the server API. Unset: `npm start` runs a local LiveKit server on loopback (built on first use).' },
  { section: 'LiveKit', name: 'LIVEKIT_API_KEY', default: 'devkey', description: 'LiveKit API key (the default matches `livekit-server --dev`).' },
  { section: 'LiveKit', name: 'LIVEKIT_API_SECRET', default: 'secret', description: 'LiveKit API secret (the default matches `livekit-server --dev`).' },
  { section: 'LiveKit', name: 'LIVEKIT_REQUEST_TIMEOUT_MS', default: '5000', description: 'Timeout of room-service requests to LiveKit.' },
  { section: 'LiveKit', name: 'LIVEKIT_EGRESS_TIMEOUT_MS', default: '3000', description: 'Timeout of egress requests; without an egress service LiveKit only answers after 6-9 s, so keep this short.' },
  { section: 'LiveKit', name: 'LIVEKIT_TOKEN_TTL_S', default: '3600', description: 'Lifetime of minted participant tokens.' },
  { section: 'LiveKit', name: 'LIVEKIT_ROOM_EMPTY_TIMEOUT_S', default: '300', description: 'LiveKit closes a room that stays empty this long.' },
  { section: 'LiveKit', name: 'WEBHOOK_MAX_AGE_MS', default: '300000', description: 'Webhooks whose `createdAt` is older than this are rejected as replays.' },
  { section: 'LiveKit', name: 'AGENT_NAME', default: 'voice-density-engine', description: 'Agent name the engine registers with LiveKit\'s agent dispatch; calls are dispatched to it by this name (`AgentDispatchClient.createDispatch`, a SIP dispatch rule, a token\'s room configuration).' },
  { section: 'Storage', name: 'MONGODB_URI', default: undefined, description: 'MongoDB connection string; unset uses the embedded store under `DATA_DIR`.' },
  { section: 'Storage', name: 'DATA_DIR', default: '.cache/data', description: 'Directory of the embedded store and the outbox.' },
  { section: 'Storage', name: 'RECORDING_DIR', default: '.cache/recordings', description: 'Directory of engine-side WAV recordings.' },
  { section: 'Engine', name: 'ENGINE_WORKERS', default: '2', description: 'Worker threads in the media pool.' },
  { section: 'Engine', name: 'ENGINE_MAX_CALLS', default: '50', description: 'Hard cap of concurrent calls: past it `POST /v1/calls` answers 503 `VE_AT_CAPACITY` whatever the load says. Also the floor of the load one call adds (1 / this).' },
  { section: 'Engine', name: 'ENGINE_TURN_DECISION_TARGET_MS', default: '300', description: 'The turn-decision p95 (VAD stop to Smart Turn\'s answer) the engine keeps. Its load (`GET /v1/engine` `load`, `/metrics` `ve_engine_load`, what LiveKit\'s agent dispatch is told) is 1 when one more call would push that p95 past this target, derived from the measured Smart Turn utilisation and decision latency, process CPU, VAD lateness and event-loop delay (engine/load/load-model.ts).' },
  { section: 'Engine', name: 'ENGINE_LOAD_ADMISSION', default: 'true', description: 'Refuse new calls (503 `VE_AT_CAPACITY`, and `full` to LiveKit) while the measured load says one more call would miss `ENGINE_TURN_DECISION_TARGET_MS`. `false`: admit up to `ENGINE_MAX_CALLS` and only report the load (benchmarks that measure past full).' },
  { section: 'Engine', name: 'VAD_BACKEND', default: 'native', description: 'Silero VAD runtime: `native` (onnxruntime-node) or `wasm` (onnxruntime-web). Native by default: batched, a window costs about 100 µs native against 240 µs in WASM (bench/inference), and with 30 simulated callers each media worker used 8 % of a core instead of 16 %, and the engine 250 MB less memory.' },
  { section: 'Engine', name: 'SMART_TURN_BACKEND', default: 'native', description: 'Smart Turn runtime: `native` (onnxruntime-node) or `wasm` (onnxruntime-web). Native by default: on this 2-vCPU machine one Smart Turn v3.2 run takes about 83 ms native against 343 ms in WASM (bench/inference), and WASM cannot meet the 250 ms stop-to-decision target.' },
  { section: 'Engine', name: 'VAD_START_THRESHOLD', default: '0.7', description: 'Speech probability at which the VAD reports speech (0-1).' },
  { section: 'Engine', name: 'VAD_STOP_THRESHOLD', default: '0.35', description: 'Speech probability under which frames count as silence (0-1, below the start threshold).' },
  { section: 'Engine', name: 'VAD_START_MS', default: '200', description: 'Speech needed before the VAD reports a start.' },
  { section: 'Engine', name: 'VAD_STOP_MS', default: '200', description: 'Silence needed before the VAD reports a stop (and Smart Turn runs).' },
  { section: 'Engine', name: 'VAD_MIN_VOLUME', default: '0.6', description: 'Loudness gate of Pipecat\'s VAD (`min_volume`): a window counts as speech only when the smoothed BS.1770 loudness of the last 400 ms, mapped from -110..-10 LUFS to 0..1, is at least this. Confirms speech a few windows later after silence and ignores quiet blips. 0 turns it off (and saves 12-35 µs per window per call: one K-weighted pass over 400 ms, several calls side by side in WebAssembly).' },
  { section: 'Engine', name: 'VAD_MODEL_RESET_MS', default: '2000', description: 'Clear a call\'s Silero state after this much audio, at the first clearly non-speech moment while the VAD is quiet (Pipecat 1.14\'s rule: non-speech drifts the state so that the speech after it is under-reported). 0 never clears it.' },
  { section: 'Engine', name: 'SMART_TURN_DEADLINE_MS', default: '250', description: 'How long after the VAD stop decision (itself `VAD_STOP_MS` of silence after the speech) a Smart Turn answer is of use. A request that cannot answer by then (it waited too long for a turn thread, a typical run would end past it, or it is still running) is dropped or its answer ignored, and a fallback decides that pause: the recogniser\'s own end-of-speech signal about the caller\'s last words (Deepgram `speech_final` / `UtteranceEnd`) at once or as soon as it comes, else the silence rule. The turn event and the latency record say which (`deadline_stt`, `deadline_silence`); `/metrics` counts turns by rule (`ve_engine_turn_decisions_<rule>_total`). 250 keeps the stop-to-decision p95 under 300 ms with room for the event loop\'s timer lateness.' },
  { section: 'Engine', name: 'SMART_TURN_SKIP_RESUMED_SPEECH_UNDER_MS', default: '0', description: 'A VAD stop that ends resumed speech shorter than this (VAD start to stop), after Smart Turn said the turn was incomplete, is not scored again: the "incomplete" stands and the silence rule counts from the new stop. Saves Smart Turn runs on a full box; off (0) by default: on the density conversations 500 saves 3 of 82 runs and changes no decision (nor on four probe clips ending in a short word after a pause), too little evidence and saving to stop scoring every stop as Pipecat does (`npm run bench -- turn-runs`, README).' },
  { section: 'Engine', name: 'SMART_TURN_SILENCE_FALLBACK_MS', default: '3000', description: 'Silence after which a turn counts as complete whatever Smart Turn says.' },
  { section: 'Engine', name: 'SMART_TURN_PRE_SPEECH_MS', default: '500', description: 'Audio before the turn\'s first speech start that Smart Turn is given, on top of `VAD_START_MS` (Pipecat `pre_speech_ms`). Smart Turn scores the current user turn only, as Pipecat builds it: from its first speech start less this allowance, up to the stop, kept across "incomplete" decisions and cleared when the turn completes.' },
  { section: 'Engine', name: 'SMART_TURN_MAX_DURATION_MS', default: '8000', description: 'Smart Turn is given at most the last this-many ms of the turn (Pipecat `max_duration_secs`; the model takes 8 s, zero-padded at the front).' },
  { section: 'Engine', name: 'ENGINE_VAD_BATCH_WINDOW_MS', default: '20', description: 'Shortest time between two VAD steps of a media worker. The calls\' frames arrive at different moments; waiting lets one batched VAD run take most of them, for at most this much added latency. 0 runs the VAD as soon as any call has a window.' },
  { section: 'Engine', name: 'ENGINE_VAD_SKIP_DIGITAL_SILENCE', default: 'true', description: 'Answer VAD windows that are exact digital silence (every sample 0) with probability 0 without running Silero, and start the call\'s VAD state afresh after them. A caller who sends nothing (muted, or no DTX between utterances) reaches the engine as zeros once libwebrtc\'s concealment fades out.' },
  { section: 'Engine', name: 'ENGINE_TURN_WORKERS', default: '1', description: 'Worker threads that run Smart Turn, apart from the media workers.' },
  { section: 'Engine', name: 'SMART_TURN_MODEL_PATH', default: undefined, description: 'Smart Turn v3.2 ONNX file (checksum-verified). Unset: the model cache `.cache/models`, else the `pipecat-ai` wheel through pip, else Hugging Face when `ALLOW_MODEL_HUB` is on.' },
  { section: 'Engine', name: 'STT_OUTAGE_MAX_MS', default: '60000', description: 'How long a call\'s speech recogniser may stay unreachable before the call ends with reason `stt_unavailable`. Meanwhile the engine reconnects with backoff, reports `VE_STT_UNAVAILABLE` on the call\'s events, tells a caller who ends a turn that it cannot hear them (once per outage), and answers again once the recogniser is back.' },
  { section: 'Engine', name: 'ALLOW_MODEL_HUB', default: 'false', description: 'Allow downloading missing models from Hugging Face (needs internet; off in tests and CI).' },
  { section: 'Barge-in', name: 'BARGE_IN_MIN_SPEECH_MS', default: '600', description: 'Caller speech over the bot without recognised words after which the bot pauses (it resumes if no words follow).' },
  { section: 'Barge-in', name: 'BARGE_IN_MIN_WORDS', default: '1', description: 'Recognised words, not counting backchannels such as "okay" or "uh-huh", needed to interrupt the bot.' },
  { section: 'Barge-in', name: 'BARGE_IN_RESUME_MS', default: '2000', description: 'A pause for caller noise (a cough) that brings no words within this time resumes the bot (a false interruption).' },
  { section: 'Providers', name: 'DEEPGRAM_API_KEY', default: undefined, description: 'Deepgram key for speech-to-text.' },
  { section: 'Providers', name: 'DEEPGRAM_URL', default: 'wss://api.deepgram.com', description: 'Deepgram base URL for live streaming recognition.' },
  { section: 'Providers', name: 'OPENAI_API_KEY', default: undefined, description: 'OpenAI key for the language model.' },
  { section: 'Providers', name: 'OPENAI_BASE_URL', default: undefined, description: 'OpenAI-compatible base URL (unset uses the SDK default).' },
  { section: 'Providers', name: 'OPENAI_MODEL', default: 'gpt-4o-mini', description: 'Chat model name.' },
  { section: 'Providers', name: 'ELEVENLABS_API_KEY', default: undefined, description: 'ElevenLabs key for text-to-speech.' },
  { section: 'Providers', name: 'ELEVENLABS_BASE_URL', default: undefined, description: 'ElevenLabs base URL (unset uses the SDK default).' },
  { section: 'Providers', name: 'ELEVENLABS_VOICE_ID', default: '21m00Tcm4TlvDq8ikWAM', description: 'ElevenLabs voice.' },
];

/**
 * What an API key may do. `calls`: create calls, read and act on its own; `read`: only read its own;
 * `admin`: the same on every call (with `read`: read every call, change nothing).
 */
export type ApiScope = 'calls' | 'read' | 'admin';
export const API_SCOPES: readonly ApiScope[] = ['calls', 'read', 'admin'];

export interface ApiKey {
  /** The bearer secret. */
  key: string;
  /** Shown in logs and used as the rate-limit bucket; never the secret itself. */
  name: string;
  /** As configured, with `calls` added when neither `calls` nor `read` was given. Sorted. */
  scopes: readonly ApiScope[];
}

export type Backend = 'wasm' | 'native';

/** What one process runs; see the `ROLE` setting. */
export type Role = 'all' | 'api' | 'engine';
export const ROLES: readonly Role[] = ['all', 'api', 'engine'];

export interface Config {
  role: Role;
  http: { host: string; port: number; bodyLimitBytes: number; logLevel: string };
  auth: {
    apiKeys: readonly ApiKey[];
    /** Set when `API_KEYS` was empty and a key was generated for local development; log it once. */
    generatedDevKey: string | undefined;
  };
  rateLimit: { max: number; windowMs: number; overrides: Readonly<Record<string, number>> };
  livekit: {
    url: string;
    /** LIVEKIT_URL was not given: the start command runs a local server and fills `url` in. */
    embedded: boolean;
    apiKey: string;
    apiSecret: string;
    requestTimeoutMs: number;
    egressTimeoutMs: number;
    tokenTtlS: number;
    roomEmptyTimeoutS: number;
    webhookMaxAgeMs: number;
    /** The agent worker registers under it; the control plane dispatches to it. */
    agentName: string;
  };
  store: { mongodbUri: string | undefined; dataDir: string };
  recording: { dir: string };
  engine: {
    workers: number;
    turnWorkers: number;
    vadBatchWindowMs: number;
    vadSkipDigitalSilence: boolean;
    maxCalls: number;
    /** The turn-decision p95 the measured load is scaled to (1 = one more call would miss it). */
    turnDecisionTargetMs: number;
    /** Admit by the measured load as well as by `maxCalls`. */
    loadAdmission: boolean;
    vadBackend: Backend;
    smartTurnBackend: Backend;
    vad: { startThreshold: number; stopThreshold: number; startMs: number; stopMs: number; minVolume: number; modelResetMs: number };
    smartTurn: { deadlineMs: number; silenceFallbackMs: number; skipResumedSpeechUnderMs: number; preSpeechMs: number; maxDurationMs: number; modelPath: string | undefined };
    allowModelHub: boolean;
    sttOutageMaxMs: number;
  };
  bargeIn: { minSpeechMs: number; minWords: number; resumeMs: number };
  providers: {
    deepgram: { apiKey: string | undefined; url: string };
    openai: { apiKey: string | undefined; baseUrl: string | undefined; model: string };
    elevenlabs: { apiKey: string | undefined; baseUrl: string | undefined; voiceId: string };
  };
}

/** Start-up fails with this when any setting is invalid; the message lists every problem at once. */
export class ConfigError extends VoiceError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('VE_CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`, { status: 500 });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const SPEC_BY_NAME = new Map(SETTINGS.map((s) => [s.name, s]));

class Reader {
  readonly problems: string[] = [];
  readonly #env: Readonly<Record<string, string | undefined>>;

  constructor(env: Readonly<Record<string, string | undefined>>) {
    this.#env = env;
  }

  /** The trimmed value, or the documented default when unset or blank. */
  raw(name: string): string | undefined {
    const spec = SPEC_BY_NAME.get(name);
    if (spec === undefined) throw new Error(`setting ${name} is not declared in SETTINGS`);
    const value = this.#env[name]?.trim();
    return value === undefined || value === '' ? spec.default : value;
  }

  string(name: string): string {
    const value = this.raw(name);
    if (value === undefined) {
      this.problems.push(`${name} is required`);
      return '';
    }
    return value;
  }

  optional(name: string): string | undefined {
    return this.raw(name);
  }

  int(name: string, min: number, max: number): number {
    const value = this.string(name);
    if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`);
      return min;
    }
    return Number(value);
  }

  number(name: string, min: number, max: number): number {
    const value = this.string(name);
    const n = Number(value);
    if (value === '' || !Number.isFinite(n) || n < min || n > max) {
      this.problems.push(`${name} must be a number from ${min} to ${max} (got ${JSON.stringify(value)})`);
      return min;
    }
    return n;
  }

  bool(name: string): boolean {
    const value = this.string(name).toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(value)) return true;
    if (['0', 'false', 'no', 'off'].includes(value)) return false;
    this.problems.push(`${name} must be true or false (got ${JSON.stringify(value)})`);
    return false;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T {
    const value = this.string(name);
    if (!(allowed as readonly string[]).includes(value)) {
      this.problems.push(`${name} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
      return allowed[0];
    }
    return value as T;
  }

  url(name: string, protocols: readonly string[], required: boolean): string | undefined {
    const value = required ? this.string(name) : this.optional(name);
    if (value === undefined || (required && value === '')) return value;
    let parsed: URL | undefined;
    try {
      parsed = new URL(value);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || !protocols.includes(parsed.protocol)) {
      this.problems.push(`${name} must be a ${protocols.join(' or ')} URL (got ${JSON.stringify(value)})`);
    }
    return value;
  }
}

/** A key given neither `calls` nor `read` gets `calls`: `admin` alone reads and acts on every call. */
function normaliseScopes(scopes: readonly ApiScope[]): ApiScope[] {
  const set = new Set(scopes);
  if (!set.has('read') && !set.has('calls')) set.add('calls');
  return API_SCOPES.filter((s) => set.has(s));
}

function parseApiKeys(r: Reader): ApiKey[] {
  const raw = r.optional('API_KEYS');
  if (raw === undefined) return [];
  const keys: ApiKey[] = [];
  const seen = new Set<string>();
  raw.split(',').forEach((entry, index) => {
    const trimmed = entry.trim();
    if (trimmed === '') return;
    const [key, name = `key${index + 1}`, scopeList, ...rest] = trimmed.split(':');
    // Short keys are guessable; names end up in metrics labels, so keep them to a safe alphabet.
    if (key.length < 16 || !/^[\x21-\x7e]+$/.test(key)) {
      r.problems.push(`API_KEYS entry ${index + 1} must be at least 16 printable characters without spaces or colons`);
      return;
    }
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      r.problems.push(`API_KEYS entry ${index + 1} has an invalid name ${JSON.stringify(name)} (use A-Z a-z 0-9 _ . -)`);
      return;
    }
    const scopes = scopeList === undefined ? [] : scopeList.split('+');
    const unknown = scopes.filter((s) => !(API_SCOPES as readonly string[]).includes(s));
    if (rest.length > 0 || unknown.length > 0) {
      r.problems.push(`API_KEYS entry ${index + 1} (${name}) has invalid scopes ${JSON.stringify(trimmed.split(':').slice(2).join(':'))} (use ${API_SCOPES.join(', ')} joined with +)`);
      return;
    }
    if (seen.has(name)) r.problems.push(`API_KEYS names must be unique (${name} repeats)`);
    seen.add(name);
    keys.push({ key, name, scopes: normaliseScopes(scopes as ApiScope[]) });
  });
  return keys;
}

function parseOverrides(r: Reader): Record<string, number> {
  const raw = r.optional('RATE_LIMIT_OVERRIDES');
  const overrides: Record<string, number> = {};
  if (raw === undefined) return overrides;
  for (const entry of raw.split(',')) {
    const match = /^\s*([A-Za-z0-9_.-]{1,64})\s*=\s*(\d{1,9})\s*$/.exec(entry);
    if (match === null) {
      r.problems.push(`RATE_LIMIT_OVERRIDES entry ${JSON.stringify(entry)} must look like name=max`);
      continue;
    }
    overrides[match[1]] = Number(match[2]);
  }
  return overrides;
}

/** An empty name would mean LiveKit's automatic dispatch to every room; control characters break logs. */
function parseAgentName(r: Reader): string {
  const name = r.string('AGENT_NAME');
  if (!/^[\x20-\x7e]{1,128}$/.test(name)) r.problems.push(`AGENT_NAME must be 1 to 128 printable ASCII characters (got ${JSON.stringify(name)})`);
  return name;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Reads and validates every setting. Throws one `ConfigError` listing all problems. The result is deeply
 * frozen. Pass an explicit object in tests; `process.env` is only the default.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  /** Settings given on the command line (`--role`), over the environment's. */
  overrides: Readonly<Record<string, string>> = {},
): Config {
  const r = new Reader({ ...env, ...overrides });
  const ci = r.optional('CI');
  const isCi = ci !== undefined && !['0', 'false', 'no', 'off'].includes(ci.toLowerCase());
  const nodeEnv = r.string('NODE_ENV');

  let apiKeys = parseApiKeys(r);
  let generatedDevKey: string | undefined;
  if (apiKeys.length === 0 && nodeEnv === 'production') {
    r.problems.push('API_KEYS is required when NODE_ENV=production');
  } else if (apiKeys.length === 0 && !isCi) {
    generatedDevKey = `dev_${randomBytes(24).toString('base64url')}`;
    // The person at the console is the operator: the dev key sees every call and may simulate callers.
    apiKeys = [{ key: generatedDevKey, name: 'dev', scopes: normaliseScopes(['admin']) }];
  }

  const rateLimit = {
    max: r.int('RATE_LIMIT_MAX', 1, 1_000_000_000),
    windowMs: r.int('RATE_LIMIT_WINDOW_MS', 100, 86_400_000),
    overrides: parseOverrides(r),
  };
  for (const name of Object.keys(rateLimit.overrides)) {
    if (!apiKeys.some((k) => k.name === name)) r.problems.push(`RATE_LIMIT_OVERRIDES names unknown API key ${name}`);
  }

  const vad = {
    startThreshold: r.number('VAD_START_THRESHOLD', 0, 1),
    stopThreshold: r.number('VAD_STOP_THRESHOLD', 0, 1),
    startMs: r.int('VAD_START_MS', 0, 10_000),
    stopMs: r.int('VAD_STOP_MS', 0, 10_000),
    minVolume: r.number('VAD_MIN_VOLUME', 0, 1),
    modelResetMs: r.int('VAD_MODEL_RESET_MS', 0, 600_000),
  };
  if (vad.stopThreshold > vad.startThreshold) {
    r.problems.push('VAD_STOP_THRESHOLD must not be above VAD_START_THRESHOLD');
  }

  const role = r.oneOf('ROLE', ROLES);
  if (role !== 'all') {
    // The split roles share LiveKit and the store with other processes; nothing local will do.
    if (r.optional('LIVEKIT_URL') === undefined) r.problems.push(`ROLE=${role} needs LIVEKIT_URL (the LiveKit server every process shares)`);
    if (r.optional('MONGODB_URI') === undefined) {
      r.problems.push(`ROLE=${role} needs MONGODB_URI: the api and engine processes share the call store, and the embedded store (node:sqlite) is one process's`);
    }
  }

  const config: Config = {
    role,
    http: {
      host: r.string('HOST'),
      port: r.int('PORT', 0, 65_535),
      bodyLimitBytes: r.int('BODY_LIMIT_BYTES', 1024, 64 * 1024 * 1024),
      logLevel: r.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    },
    auth: { apiKeys, generatedDevKey },
    rateLimit,
    livekit: {
      url: r.url('LIVEKIT_URL', ['ws:', 'wss:', 'http:', 'https:'], false) ?? '',
      embedded: r.optional('LIVEKIT_URL') === undefined,
      apiKey: r.string('LIVEKIT_API_KEY'),
      apiSecret: r.string('LIVEKIT_API_SECRET'),
      requestTimeoutMs: r.int('LIVEKIT_REQUEST_TIMEOUT_MS', 100, 120_000),
      egressTimeoutMs: r.int('LIVEKIT_EGRESS_TIMEOUT_MS', 100, 120_000),
      tokenTtlS: r.int('LIVEKIT_TOKEN_TTL_S', 60, 86_400),
      roomEmptyTimeoutS: r.int('LIVEKIT_ROOM_EMPTY_TIMEOUT_S', 1, 86_400),
      webhookMaxAgeMs: r.int('WEBHOOK_MAX_AGE_MS', 1000, 86_400_000),
      agentName: parseAgentName(r),
    },
    store: {
      mongodbUri: r.url('MONGODB_URI', ['mongodb:', 'mongodb+srv:'], false),
      dataDir: r.string('DATA_DIR'),
    },
    recording: { dir: r.string('RECORDING_DIR') },
    engine: {
      workers: r.int('ENGINE_WORKERS', 1, 256),
      turnWorkers: r.int('ENGINE_TURN_WORKERS', 1, 256),
      vadBatchWindowMs: r.int('ENGINE_VAD_BATCH_WINDOW_MS', 0, 100),
      vadSkipDigitalSilence: r.bool('ENGINE_VAD_SKIP_DIGITAL_SILENCE'),
      maxCalls: r.int('ENGINE_MAX_CALLS', 1, 100_000),
      turnDecisionTargetMs: r.int('ENGINE_TURN_DECISION_TARGET_MS', 50, 60_000),
      loadAdmission: r.bool('ENGINE_LOAD_ADMISSION'),
      vadBackend: r.oneOf('VAD_BACKEND', ['wasm', 'native'] as const),
      smartTurnBackend: r.oneOf('SMART_TURN_BACKEND', ['wasm', 'native'] as const),
      vad,
      smartTurn: {
        deadlineMs: r.int('SMART_TURN_DEADLINE_MS', 10, 60_000),
        silenceFallbackMs: r.int('SMART_TURN_SILENCE_FALLBACK_MS', 100, 60_000),
        skipResumedSpeechUnderMs: r.int('SMART_TURN_SKIP_RESUMED_SPEECH_UNDER_MS', 0, 10_000),
        preSpeechMs: r.int('SMART_TURN_PRE_SPEECH_MS', 0, 8000),
        maxDurationMs: r.int('SMART_TURN_MAX_DURATION_MS', 100, 8000),
        modelPath: r.optional('SMART_TURN_MODEL_PATH'),
      },
      allowModelHub: r.bool('ALLOW_MODEL_HUB'),
      sttOutageMaxMs: r.int('STT_OUTAGE_MAX_MS', 1000, 3_600_000),
    },
    bargeIn: {
      minSpeechMs: r.int('BARGE_IN_MIN_SPEECH_MS', 0, 10_000),
      minWords: r.int('BARGE_IN_MIN_WORDS', 0, 100),
      resumeMs: r.int('BARGE_IN_RESUME_MS', 0, 60_000),
    },
    providers: {
      deepgram: { apiKey: r.optional('DEEPGRAM_API_KEY'), url: r.url('DEEPGRAM_URL', ['ws:', 'wss:', 'http:', 'https:'], true) ?? '' },
      openai: {
        apiKey: r.optional('OPENAI_API_KEY'),
        baseUrl: r.url('OPENAI_BASE_URL', ['http:', 'https:'], false),
        model: r.string('OPENAI_MODEL'),
      },
      elevenlabs: {
        apiKey: r.optional('ELEVENLABS_API_KEY'),
        baseUrl: r.url('ELEVENLABS_BASE_URL', ['http:', 'https:'], false),
        voiceId: r.string('ELEVENLABS_VOICE_ID'),
      },
    },
  };

  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return deepFreeze(config);
}

/**
 * The command line: `--role <all|api|engine>` (or `--role=<role>`) sets `ROLE` for this process, so
 * that `npm start -- --role engine` reads like what it does. Anything else is refused.
 */
export function roleFromArgs(args: readonly string[]): { ROLE?: string } {
  let role: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--role' && i + 1 < args.length) role = args[++i];
    else if (arg.startsWith('--role=')) role = arg.slice('--role='.length);
    else throw new Error(`unknown argument ${JSON.stringify(arg)}; usage: npm start [-- --role all|api|engine]`);
  }
  return role === undefined ? {} : { ROLE: role };
}

/** Lines to log once at start-up (the generated dev key, a CI run without keys). */
export function startupNotices(config: Config): string[] {
  const notices: string[] = [];
  if (config.auth.generatedDevKey !== undefined) {
    notices.push(`API_KEYS is empty: generated a development key (scope admin) for this run: ${config.auth.generatedDevKey}`);
  }
  if (config.auth.apiKeys.length === 0) {
    notices.push('API_KEYS is empty in CI: every authenticated request will be refused');
  }
  return notices;
}
