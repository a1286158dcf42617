import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../engine/events.ts';
import { EventHub, RECENT_EVENTS_PER_CALL } from './event-hub.ts';

function event(callId: string, seq: number): EngineEvent {
  return { callId, seq, eventId: `${callId}-${seq}`, type: 'vad', at: new Date(0).toISOString(), data: { event: 'speech_start', offsetMs: seq } };
}

describe('EventHub', () => {
  it('delivers events only to subscribers of their call', () => {
    const hub = new EventHub();
    const a: number[] = [];
    const b: number[] = [];
    hub.subscribe('a', (e) => a.push(e.seq));
    hub.subscribe('b', (e) => b.push(e.seq));
    hub.publish(event('a', 1));
    hub.publish(event('b', 7));
    hub.publish(event('a', 2));
    expect(a).toEqual([1, 2]);
    expect(b).toEqual([7]);
    expect(hub.subscriberCount).toBe(2);
  });

  it('drops a throwing subscriber without disturbing the others', () => {
    const hub = new EventHub();
    const got: number[] = [];
    hub.subscribe('a', () => {
      throw new Error('broken socket');
    });
    hub.subscribe('a', (e) => got.push(e.seq));
    expect(() => hub.publish(event('a', 1))).not.toThrow();
    hub.publish(event('a', 2));
    expect(got).toEqual([1, 2]);
    expect(hub.subscriberCount).toBe(1);
  });

  it('unsubscribes idempotently', () => {
    const hub = new EventHub();
    const got: number[] = [];
    const off = hub.subscribe('a', (e) => got.push(e.seq));
    off();
    off();
    hub.publish(event('a', 1));
    expect(got).toEqual([]);
    expect(hub.subscriberCount).toBe(0);
  });

  it('keeps the most recent events per call for resuming, in seq order', () => {
    const hub = new EventHub();
    for (let seq = 1; seq <= RECENT_EVENTS_PER_CALL + 10; seq++) hub.publish(event('a', seq));
    const recent = hub.recent('a', 0);
    expect(recent).toHaveLength(RECENT_EVENTS_PER_CALL);
    expect(recent[0].seq).toBe(11);
    expect(hub.recent('a', RECENT_EVENTS_PER_CALL + 8).map((e) => e.seq)).toEqual([RECENT_EVENTS_PER_CALL + 9, RECENT_EVENTS_PER_CALL + 10]);
    expect(hub.recent('unknown', 0)).toEqual([]);
  });

  it('ignores everything after close', () => {
    const hub = new EventHub();
    const got: number[] = [];
    hub.subscribe('a', (e) => got.push(e.seq));
    hub.close();
    hub.publish(event('a', 1));
    hub.subscribe('a', (e) => got.push(e.seq));
    hub.publish(event('a', 2));
    expect(got).toEqual([]);
    expect(hub.recent('a', 0)).toEqual([]);
  });
});
