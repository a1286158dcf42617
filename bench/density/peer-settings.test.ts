import { describe, expect, it } from 'vitest';
import { DEFAULT_MEDIA_OPTIONS } from '../../engine/media-engine.ts';
import { PEER_SETTINGS } from './peer-settings.ts';

describe('PEER_SETTINGS', () => {
  it('are the engine defaults, so both architectures run the same VAD, turn window, history and warm-up', () => {
    expect(PEER_SETTINGS.vad).toEqual(DEFAULT_MEDIA_OPTIONS.vad);
    expect(PEER_SETTINGS.vadMinVolume).toBe(DEFAULT_MEDIA_OPTIONS.vadMinVolume);
    expect(PEER_SETTINGS.vadModelResetIntervalMs).toBe(DEFAULT_MEDIA_OPTIONS.vadModelResetIntervalMs);
    expect(PEER_SETTINGS.historyMs).toBe(DEFAULT_MEDIA_OPTIONS.historyMs);
    expect(PEER_SETTINGS.turnWindow).toEqual(DEFAULT_MEDIA_OPTIONS.turnWindow);
    expect(PEER_SETTINGS.vadWarmUpRuns).toBe(DEFAULT_MEDIA_OPTIONS.warmUp.vadRuns);
    expect(PEER_SETTINGS.smartTurnWarmUpRuns).toBe(DEFAULT_MEDIA_OPTIONS.warmUp.smartTurnRuns);
    // The peers' turn detector runs with its own defaults; the engine must not override them either.
    expect(DEFAULT_MEDIA_OPTIONS.turn).toEqual({});
  });
});
