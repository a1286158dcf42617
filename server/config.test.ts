import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, SETTINGS, loadConfig, roleFromArgs, startupNotices } from './config.ts';
import { SETTINGS_DOC_PATH, renderSettingsMarkdown } from './settings-doc.ts';

const KEY = 'k'.repeat(20);

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('VE_CONFIG_INVALID');
    return (err as ConfigError).problems;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({ API_KEYS: KEY });
    expect(config.http).toEqual({ host: '127.0.0.1', port: 8080, bodyLimitBytes: 65536, logLevel: 'info' });
    expect(config.store).toEqual({ mongodbUri: undefined, dataDir: '.cache/data' });
    expect(config.engine.vadBackend).toBe('native');
    expect(config.engine.vadBatchWindowMs).toBe(20);
    expect(config.engine.vadSkipDigitalSilence).toBe(true);
    expect(config.engine.allowModelHub).toBe(false);
    expect(config.engine.sttOutageMaxMs).toBe(60_000);
    expect(loadConfig({ API_KEYS: KEY, STT_OUTAGE_MAX_MS: '5000' }).engine.sttOutageMaxMs).toBe(5000);
    expect(problems({ API_KEYS: KEY, STT_OUTAGE_MAX_MS: '10' })).toEqual(['STT_OUTAGE_MAX_MS must be an integer from 1000 to 3600000 (got "10")']);
    expect(config.livekit).toMatchObject({ url: '', embedded: true });
    expect(loadConfig({ API_KEYS: KEY, LIVEKIT_URL: 'wss://lk.example.com' }).livekit).toMatchObject({ url: 'wss://lk.example.com', embedded: false });
    expect(config.bargeIn).toEqual({ minSpeechMs: 600, minWords: 1, resumeMs: 2000 });
  });

  it('parses API keys with and without names and scopes; the default scope is calls', () => {
    const y = 'y'.repeat(16);
    const z = 'z'.repeat(16);
    const a = 'a'.repeat(16);
    const config = loadConfig({ API_KEYS: ` ${KEY}:dispatch , ${'x'.repeat(16)} , ${y}:monitor:admin+read, ${z}:ops:admin, ${a}:view:read` });
    expect(config.auth.apiKeys).toEqual([
      { key: KEY, name: 'dispatch', scopes: ['calls'] },
      { key: 'x'.repeat(16), name: 'key2', scopes: ['calls'] },
      { key: y, name: 'monitor', scopes: ['read', 'admin'] },
      { key: z, name: 'ops', scopes: ['calls', 'admin'] },
      { key: a, name: 'view', scopes: ['read'] },
    ]);
    expect(config.auth.generatedDevKey).toBeUndefined();
    expect(problems({ API_KEYS: `${KEY}:a:root` })).toEqual([expect.stringMatching(/^API_KEYS entry 1 \(a\) has invalid scopes "root"/)]);
    expect(problems({ API_KEYS: `${KEY}:a:read+` })).toEqual([expect.stringMatching(/^API_KEYS entry 1 \(a\) has invalid scopes/)]);
    expect(problems({ API_KEYS: `${KEY}:a:read:admin` })).toEqual([expect.stringMatching(/^API_KEYS entry 1 \(a\) has invalid scopes "read:admin"/)]);
  });

  it('generates a dev key outside CI and production, and none in CI', () => {
    const dev = loadConfig({});
    expect(dev.auth.generatedDevKey).toMatch(/^dev_/);
    expect(dev.auth.apiKeys).toEqual([{ key: dev.auth.generatedDevKey, name: 'dev', scopes: ['calls', 'admin'] }]);
    expect(startupNotices(dev).join('\n')).toContain(dev.auth.generatedDevKey);
    const ci = loadConfig({ CI: 'true' });
    expect(ci.auth.apiKeys).toEqual([]);
    expect(startupNotices(ci).join('\n')).toContain('refused');
    expect(problems({ NODE_ENV: 'production' })).toEqual(['API_KEYS is required when NODE_ENV=production']);
  });

  it('lists every problem at once', () => {
    const found = problems({
      API_KEYS: 'short',
      PORT: '70000',
      VAD_BACKEND: 'gpu',
      VAD_START_THRESHOLD: '1.5',
      LIVEKIT_URL: 'ftp://x',
      MONGODB_URI: 'http://db',
      ALLOW_MODEL_HUB: 'maybe',
      RATE_LIMIT_OVERRIDES: 'nobody=5,broken',
    });
    expect(found.some((p) => p.startsWith('API_KEYS entry 1'))).toBe(true);
    for (const name of ['PORT', 'VAD_BACKEND', 'VAD_START_THRESHOLD', 'LIVEKIT_URL', 'MONGODB_URI', 'ALLOW_MODEL_HUB']) {
      expect(found.some((p) => p.startsWith(name)), name).toBe(true);
    }
    expect(found.filter((p) => p.startsWith('RATE_LIMIT_OVERRIDES'))).toHaveLength(2);
  });

  it('reads the agent name the worker registers under', () => {
    expect(loadConfig({ API_KEYS: KEY }).livekit.agentName).toBe('voice-density-engine');
    expect(loadConfig({ API_KEYS: KEY, AGENT_NAME: ' dispatch-eu ' }).livekit.agentName).toBe('dispatch-eu');
    expect(problems({ API_KEYS: KEY, AGENT_NAME: 'x'.repeat(129) })).toEqual([`AGENT_NAME must be 1 to 128 printable ASCII characters (got "${'x'.repeat(129)}")`]);
  });

  it('rejects a stop threshold above the start threshold', () => {
    expect(problems({ API_KEYS: KEY, VAD_START_THRESHOLD: '0.3', VAD_STOP_THRESHOLD: '0.5' })).toEqual([
      'VAD_STOP_THRESHOLD must not be above VAD_START_THRESHOLD',
    ]);
  });

  it('returns a deeply frozen object', () => {
    const config = loadConfig({ API_KEYS: KEY, RATE_LIMIT_OVERRIDES: 'key1=5' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.engine.vad)).toBe(true);
    expect(Object.isFrozen(config.auth.apiKeys[0])).toBe(true);
    expect(config.rateLimit.overrides).toEqual({ key1: 5 });
  });

  it('treats blank values as unset', () => {
    expect(loadConfig({ API_KEYS: KEY, PORT: '  ' }).http.port).toBe(8080);
  });
});

describe('SETTINGS', () => {
  it('names each setting once', () => {
    const names = SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('has defaults that load', () => {
    const env: Record<string, string> = { API_KEYS: KEY };
    for (const s of SETTINGS) if (s.default !== undefined) env[s.name] = s.default;
    expect(() => loadConfig(env)).not.toThrow();
  });

  it('matches server/SETTINGS.md (regenerate with `node server/settings-doc.ts`)', () => {
    expect(readFileSync(SETTINGS_DOC_PATH, 'utf8')).toBe(renderSettingsMarkdown());
  });

  it('is the only place in the control plane that reads the environment', async () => {
    const { readdirSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = new URL('.', import.meta.url).pathname;
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        // server/store/ belongs to the persistence layer, checked by its own tests.
        if (entry.isDirectory()) {
          if (entry.name !== 'store') walk(path);
        }
        else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && entry.name !== 'config.ts') {
          if (readFileSync(path, 'utf8').includes('process.env')) offenders.push(path);
        }
      }
    };
    walk(root);
    expect(offenders).toEqual([]);
  });
});

describe('ROLE', () => {
  it('defaults to the embedded all-in-one process', () => {
    expect(loadConfig({ API_KEYS: KEY }).role).toBe('all');
  });

  it('api and engine need LIVEKIT_URL and MONGODB_URI, and say why', () => {
    expect(() => loadConfig({ API_KEYS: KEY, ROLE: 'engine' })).toThrow(/ROLE=engine needs LIVEKIT_URL[\s\S]*ROLE=engine needs MONGODB_URI.*one process's/);
    const config = loadConfig({ API_KEYS: KEY, ROLE: 'api', LIVEKIT_URL: 'ws://lk:7880', MONGODB_URI: 'mongodb://db/voice' });
    expect(config.role).toBe('api');
    expect(() => loadConfig({ API_KEYS: KEY, ROLE: 'worker' })).toThrow(/ROLE/);
  });

  it('--role on the command line overrides the environment', () => {
    expect(roleFromArgs([])).toEqual({});
    expect(roleFromArgs(['--role', 'engine'])).toEqual({ ROLE: 'engine' });
    expect(roleFromArgs(['--role=api'])).toEqual({ ROLE: 'api' });
    expect(() => roleFromArgs(['--rol', 'api'])).toThrow(/unknown argument/);
    const env = { API_KEYS: KEY, ROLE: 'all', LIVEKIT_URL: 'ws://lk:7880', MONGODB_URI: 'mongodb://db/voice' };
    expect(loadConfig(env, roleFromArgs(['--role', 'engine'])).role).toBe('engine');
  });
});
