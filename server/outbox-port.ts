import type { FastifyBaseLogger } from 'fastify';
import type { EngineEvent } from './call-engine.ts';
import type { OutboxPort } from './context.ts';
import type { CallStore, Speaker } from './store/call-store.ts';
import type { Outbox } from './store/outbox.ts';

const SPEAKERS: readonly string[] = ['caller', 'bot', 'agent'];

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/**
 * Adapts the durable `Outbox` to what the API needs. Every engine event is journaled; a final
 * `transcript` event also becomes a transcript segment. Latency summaries go straight to the store
 * (`appendLatency` is idempotent by turn id) because the outbox journals events and segments only: a
 * latency lost while the database is down is acceptable, a transcript line is not.
 */
export function outboxPort(
  outbox: Pick<Outbox, 'appendEvents' | 'appendSegments' | 'stats' | 'flush'>,
  store: Pick<CallStore, 'appendLatency'>,
  log: Pick<FastifyBaseLogger, 'warn'>,
): OutboxPort {
  let journalFailing = false;

  return {
    enqueue(event: EngineEvent): void {
      try {
        outbox.appendEvents([event]);
        const d = event.data;
        if (event.type === 'transcript' && d.final === true && typeof d.text === 'string' && SPEAKERS.includes(String(d.speaker))) {
          outbox.appendSegments([
            {
              callId: event.callId,
              segmentId: typeof d.segmentId === 'string' ? d.segmentId : event.eventId,
              seq: event.seq,
              speaker: d.speaker as Speaker,
              text: d.text,
              startMs: finite(d.startMs) ?? 0,
              endMs: finite(d.endMs) ?? 0,
              final: true,
            },
          ]);
        }
        journalFailing = false;
      } catch (err) {
        journalFailing = true;
        log.warn({ err, callId: event.callId, eventType: event.type }, 'outbox append failed');
      }
      // The engine numbers its turns; the store keys latencies by a string id.
      const turnId = event.data.turnId;
      if (event.type === 'latency' && (typeof turnId === 'string' || typeof turnId === 'number')) {
        const stagesMs = event.data.stagesMs;
        store
          .appendLatency(event.callId, {
            turnId: String(turnId),
            at: event.at,
            responseMs: finite(event.data.responseMs),
            stagesMs: stagesMs !== null && typeof stagesMs === 'object' ? (stagesMs as Record<string, number>) : undefined,
          })
          .catch((err: unknown) => log.warn({ err, callId: event.callId }, 'latency not stored'));
      }
    },
    backlog: () => outbox.stats().backlog,
    healthy: () => !journalFailing,
    flush: () => outbox.flush(),
  };
}
