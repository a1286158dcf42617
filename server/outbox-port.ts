import type { FastifyBaseLogger } from 'fastify';
import type { EngineEvent, LatencyEventData } from '../engine/events.ts';
import type { OutboxPort } from './context.ts';
import type { TurnLatency } from './store/call-store.ts';
import type { Outbox } from './store/outbox.ts';

/** A latency event as the call record keeps it: the turn id as a string, only the stages that happened. */
export function turnLatency(data: LatencyEventData, at: string): TurnLatency {
  const stagesMs: Record<string, number> = {};
  for (const [stage, ms] of Object.entries(data.stagesMs)) if (ms !== null) stagesMs[stage] = ms;
  return {
    turnId: String(data.turnId),
    at,
    ...(data.responseMs !== null ? { responseMs: data.responseMs } : {}),
    stagesMs,
    smartTurn: { rule: data.smartTurn.rule, probability: data.smartTurn.probability },
  };
}

/**
 * Adapts the durable `Outbox` to what the API needs. Every engine event is journaled; a final
 * `transcript` event also becomes a transcript segment, and a `latency` event the call's per-turn
 * latency record. All three go through the journal, so none is lost while the database is down.
 */
export function outboxPort(outbox: Pick<Outbox, 'appendEvents' | 'appendSegments' | 'appendLatencies' | 'stats' | 'flush'>, log: Pick<FastifyBaseLogger, 'warn'>): OutboxPort {
  let journalFailing = false;

  return {
    enqueue(event: EngineEvent): void {
      try {
        outbox.appendEvents([event]);
        if (event.type === 'transcript' && event.data.final) {
          const d = event.data;
          outbox.appendSegments([
            { callId: event.callId, segmentId: d.segmentId, seq: event.seq, speaker: d.speaker, text: d.text, startMs: d.startMs ?? 0, endMs: d.endMs ?? 0, final: true },
          ]);
        } else if (event.type === 'latency') {
          outbox.appendLatencies([{ callId: event.callId, latency: turnLatency(event.data, event.at) }]);
        }
        journalFailing = false;
      } catch (err) {
        journalFailing = true;
        log.warn({ err, callId: event.callId, eventType: event.type }, 'outbox append failed');
      }
    },
    backlog: () => outbox.stats().backlog,
    healthy: () => !journalFailing,
    flush: () => outbox.flush(),
  };
}
