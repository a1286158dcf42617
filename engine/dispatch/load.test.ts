import { describe, expect, it } from 'vitest';
import { callCountLoad } from './load.ts';

describe('callCountLoad', () => {
  it('is the share of the call budget in use, one call costing one share', () => {
    expect(callCountLoad(() => ({ activeCalls: 10, maxCalls: 40, acceptingCalls: true }))()).toEqual({ load: 0.25, loadPerCall: 0.025 });
  });

  it('is full when the engine does not accept calls, whatever it holds', () => {
    expect(callCountLoad(() => ({ activeCalls: 0, maxCalls: 40, acceptingCalls: false }))().load).toBe(1);
  });
});
