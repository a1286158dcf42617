/**
 * Durable outbox between the live calls and the call store. `appendEvents` / `appendSegments` /
 * `appendLatencies` write to
 * a local journal and return at once; a background flusher copies journal entries to the store in
 * journal order, batched, retrying with exponential backoff while the store is down, and deletes entries
 * only after the store acknowledged them. A new Outbox over the same journal replays what is left, and
 * because every event and segment has a producer-chosen id the store ignores redeliveries.
 *
 * The journal is a node:sqlite file (WAL, synchronous=NORMAL) rather than a hand-rolled append-only log:
 * - a batch of appends is one atomic commit, and SQLite recovers torn writes after a crash, which an
 *   append-only file would need framing, checksums and a recovery scan for;
 * - acknowledged entries are deleted in place; an append-only log needs a cursor file and compaction;
 * - in WAL mode with synchronous=NORMAL a commit is an append to the WAL without fsync (fsync happens at
 *   checkpoints), so an append costs tens of microseconds and survives a process crash. Power loss may
 *   drop the last commits; `synchronous: 'full'` trades an fsync per append for that.
 * The journal is owned by one process: two Outbox instances on one file would deliver entries twice
 * (harmless, ids are idempotent) but their backlog counters would be wrong.
 *
 * Ordering: entries are delivered strictly in journal order per kind (events, segments), so for one call
 * a later event is never acknowledged before an earlier one. A batch the store rejects with a
 * non-retryable error (`retryable: false`, i.e. the data itself is bad) is retried entry by entry and the
 * offending entries are moved to a dead-letter table, so one bad entry cannot block every call.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { ClosedError } from '../../engine/errors.ts';
import type { AppendResult, CallEvent, CallRecord, TranscriptSegment, TurnLatency } from './call-store.ts';
import { normaliseEvent, normaliseSegment, normaliseLatency } from './call-record.ts';

export const OUTBOX_JOURNAL_FILE = 'outbox.sqlite';

/** The part of a CallStore the outbox writes to. */
export interface OutboxTarget {
  appendEvents(events: CallEvent[]): Promise<AppendResult>;
  appendSegments(segments: TranscriptSegment[]): Promise<AppendResult>;
  appendLatency(callId: string, latency: TurnLatency): Promise<CallRecord>;
}

/** A per-turn latency summary on its way to its call's record. */
export interface CallLatency {
  callId: string;
  latency: TurnLatency;
}

export interface OutboxOptions {
  /** Directory for the journal file; created if missing. */
  dataDir: string;
  store: OutboxTarget;
  /** Entries per store write. Default 200. */
  batchSize?: number;
  /** How long appends gather before a flush starts, so a burst becomes one batch. Default 20. */
  flushDelayMs?: number;
  /** First retry delay after a failure; doubles per consecutive failure. Default 100. */
  minBackoffMs?: number;
  /** Retry delay ceiling, which bounds how soon a recovered database is noticed. Default 5000. */
  maxBackoffMs?: number;
  synchronous?: 'normal' | 'full';
  /** Told about every failed delivery attempt. A listener that throws is ignored. */
  onError?: (err: unknown) => void;
}

export interface OutboxErrorInfo {
  code: string;
  message: string;
  at: string;
}

export interface OutboxStats {
  /** Entries journaled but not yet acknowledged by the store. */
  backlog: number;
  /** Age of the oldest unacknowledged entry; null when the backlog is empty. */
  oldestEntryAgeMs: number | null;
  /** Entries acknowledged by the store since this instance opened. */
  delivered: number;
  /** Failed delivery attempts since this instance opened. */
  failures: number;
  /** Failures since the last successful delivery; > 0 means the store is currently failing. */
  consecutiveFailures: number;
  /** Entries the store rejected as invalid, kept in the journal's dead_letters table. */
  deadLetters: number;
  lastError: OutboxErrorInfo | null;
  lastDeliveredAt: string | null;
}

type EntryKind = 'event' | 'segment' | 'latency';

interface EntryRow {
  id: number;
  kind: EntryKind;
  payload: string;
}

interface FlushWaiter {
  /** Resolve once every entry with id <= this is acknowledged. */
  uptoId: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  call_id TEXT NOT NULL,
  payload TEXT NOT NULL,
  enqueued_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  call_id TEXT NOT NULL,
  payload TEXT NOT NULL,
  error_code TEXT NOT NULL,
  error_message TEXT NOT NULL,
  failed_at TEXT NOT NULL
);
`;

function errorInfo(err: unknown): OutboxErrorInfo {
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'VE_STORE_UNAVAILABLE',
    message: typeof e?.message === 'string' ? e.message : String(err),
    at: new Date().toISOString(),
  };
}

/** Only errors that say the data is bad are poison; anything else (outage, timeout, unknown) is retried. */
function isPoison(err: unknown): boolean {
  return (err as { retryable?: unknown })?.retryable === false;
}

export class Outbox {
  readonly path: string;
  #db: DatabaseSync;
  #store: OutboxTarget;
  #batchSize: number;
  #flushDelayMs: number;
  #minBackoffMs: number;
  #maxBackoffMs: number;
  #onError: ((err: unknown) => void) | undefined;
  #stmts: { insert: StatementSync; head: StatementSync; remove: StatementSync; oldest: StatementSync; dead: StatementSync };

  #closed = false;
  #backlog: number;
  #deadLetters: number;
  #lastId: number;
  #delivered = 0;
  #failures = 0;
  #consecutiveFailures = 0;
  #lastError: OutboxErrorInfo | null = null;
  #lastDeliveredAt: string | null = null;

  #timer: NodeJS.Timeout | null = null;
  #timerDueAt = 0;
  #pumping: Promise<void> | null = null;
  /** Work arrived while a run was in progress; run again when it ends. */
  #pumpAgain = false;
  /** A retry is scheduled after a failure; appends then wait for it instead of retrying at once. */
  #backingOff = false;
  #waiters: FlushWaiter[] = [];

  private constructor(path: string, db: DatabaseSync, options: OutboxOptions) {
    this.path = path;
    this.#db = db;
    this.#store = options.store;
    this.#batchSize = options.batchSize ?? 200;
    this.#flushDelayMs = options.flushDelayMs ?? 20;
    this.#minBackoffMs = options.minBackoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.#onError = options.onError;
    this.#stmts = {
      insert: db.prepare('INSERT INTO entries (kind, call_id, payload, enqueued_at) VALUES (?, ?, ?, ?)'),
      head: db.prepare('SELECT id, kind, payload FROM entries ORDER BY id LIMIT ?'),
      remove: db.prepare('DELETE FROM entries WHERE id = ?'),
      oldest: db.prepare('SELECT id, enqueued_at FROM entries ORDER BY id LIMIT 1'),
      dead: db.prepare(
        'INSERT OR REPLACE INTO dead_letters (id, kind, call_id, payload, error_code, error_message, failed_at) ' +
          'SELECT id, kind, call_id, payload, ?, ?, ? FROM entries WHERE id = ?',
      ),
    };
    this.#backlog = Number((db.prepare('SELECT COUNT(*) AS n FROM entries').get() as { n: number }).n);
    this.#deadLetters = Number((db.prepare('SELECT COUNT(*) AS n FROM dead_letters').get() as { n: number }).n);
    this.#lastId = Number((db.prepare('SELECT COALESCE(MAX(id), 0) AS n FROM entries').get() as { n: number }).n);
  }

  /** Opens (creating if needed) `<dataDir>/outbox.sqlite` and starts replaying any backlog. */
  static open(options: OutboxOptions): Outbox {
    mkdirSync(options.dataDir, { recursive: true });
    const path = join(options.dataDir, OUTBOX_JOURNAL_FILE);
    const db = new DatabaseSync(path, { timeout: 2000 });
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec(`PRAGMA synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      db.exec(SCHEMA);
    } catch (err) {
      db.close();
      throw err;
    }
    const outbox = new Outbox(path, db, options);
    if (outbox.#backlog > 0) outbox.#kick(0);
    return outbox;
  }

  /**
   * Journals events for delivery. Synchronous and never waits for the store; throws only for invalid
   * input (`VE_STORE_INVALID_INPUT`, a caller bug) or when closed.
   */
  appendEvents(events: CallEvent[]): void {
    this.#append(
      'event',
      events.map((e) => {
        const doc = normaliseEvent(e);
        return { callId: doc.callId, payload: JSON.stringify(doc) };
      }),
    );
  }

  /** Journals final segments for delivery; interim ones are dropped here, as the store would. */
  appendSegments(segments: TranscriptSegment[]): void {
    const rows: { callId: string; payload: string }[] = [];
    for (const s of segments) {
      const doc = normaliseSegment(s);
      if (doc) rows.push({ callId: doc.callId, payload: JSON.stringify(doc) });
    }
    this.#append('segment', rows);
  }

  /** Journals per-turn latency summaries; delivered after the events and segments of the same batch. */
  appendLatencies(latencies: CallLatency[]): void {
    this.#append(
      'latency',
      latencies.map((l) => ({ callId: l.callId, payload: JSON.stringify({ callId: l.callId, latency: normaliseLatency(l.latency) }) })),
    );
  }

  #append(kind: EntryKind, rows: { callId: string; payload: string }[]): void {
    if (this.#closed) throw new ClosedError('outbox');
    if (rows.length === 0) return;
    const now = Date.now();
    this.#db.exec('BEGIN');
    try {
      for (const row of rows) this.#lastId = Number(this.#stmts.insert.run(kind, row.callId, row.payload, now).lastInsertRowid);
      this.#db.exec('COMMIT');
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
    this.#backlog += rows.length;
    // While backing off, appends must not turn into a retry storm; the backoff timer will come.
    if (!this.#backingOff) this.#kick(this.#flushDelayMs);
  }

  stats(): OutboxStats {
    let oldestEntryAgeMs: number | null = null;
    if (!this.#closed && this.#backlog > 0) {
      const row = this.#stmts.oldest.get() as { enqueued_at: number } | undefined;
      if (row) oldestEntryAgeMs = Math.max(0, Date.now() - Number(row.enqueued_at));
    }
    return {
      backlog: this.#backlog,
      oldestEntryAgeMs,
      delivered: this.#delivered,
      failures: this.#failures,
      consecutiveFailures: this.#consecutiveFailures,
      deadLetters: this.#deadLetters,
      lastError: this.#lastError,
      lastDeliveredAt: this.#lastDeliveredAt,
    };
  }

  /**
   * Resolves when every entry appended before this call has been acknowledged by the store (or dead-
   * lettered). Starts a delivery attempt now, even during a backoff, and keeps retrying while the store
   * is down; rejects with `ClosedError` if the outbox closes first. Race it with a timeout at shutdown.
   */
  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('outbox'));
    const uptoId = this.#lastId;
    if (this.#backlog === 0 || this.#headId() > uptoId) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ uptoId, resolve, reject }));
    this.#kick(0);
    return done;
  }

  /**
   * Stops delivering and closes the journal. Unacknowledged entries stay in the journal for the next
   * instance. Waits for an in-flight store write to settle, so its acknowledgement is not lost.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    const err = new ClosedError('outbox');
    for (const w of this.#waiters.splice(0)) w.reject(err);
    await this.#pumping;
    this.#db.close();
  }

  #headId(): number {
    const row = this.#stmts.oldest.get() as { id: number } | undefined;
    return row ? Number(row.id) : Number.POSITIVE_INFINITY;
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Schedules a pump run in `delayMs` unless one is due sooner; a running pump picks up new work itself. */
  #kick(delayMs: number): void {
    if (this.#closed) return;
    if (this.#pumping) {
      // The run may already have seen an empty journal; make sure it looks once more.
      this.#pumpAgain = true;
      return;
    }
    const dueAt = Date.now() + delayMs;
    if (this.#timer && this.#timerDueAt <= dueAt) return;
    this.#clearTimer();
    this.#timerDueAt = dueAt;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#startPump();
    }, delayMs);
    // Background delivery must not keep a finished process alive; a pending flush() must.
    if (this.#waiters.length === 0) this.#timer.unref();
  }

  #startPump(): void {
    if (this.#closed || this.#pumping) return;
    this.#backingOff = false;
    this.#pumpAgain = false;
    this.#pumping = this.#pump().then((retryAfterMs) => {
      this.#pumping = null;
      if (retryAfterMs !== null) {
        this.#backingOff = true;
        this.#kick(retryAfterMs);
      } else if (this.#pumpAgain) {
        this.#kick(0);
      }
    });
  }

  /** Delivers until the journal is empty; on failure returns the backoff delay before the next try. */
  async #pump(): Promise<number | null> {
    while (!this.#closed) {
      try {
        // Inside the try: a journal read error (disk trouble) is retried like a store outage.
        const rows = this.#stmts.head.all(this.#batchSize) as unknown as EntryRow[];
        if (rows.length === 0) break;
        await this.#deliver(rows);
      } catch (err) {
        if (this.#closed) break;
        this.#recordFailure(err);
        const backoffMs = Math.min(this.#maxBackoffMs, this.#minBackoffMs * 2 ** Math.min(this.#consecutiveFailures - 1, 20));
        // Jitter so many engines do not hammer a recovering database in step.
        return Math.round(backoffMs * (0.5 + Math.random() * 0.5));
      }
      this.#settleWaiters();
    }
    if (!this.#closed) this.#settleWaiters();
    return null;
  }

  /** Delivers one batch: events, segments, then latencies, each in journal order. Throws on a retryable failure. */
  async #deliver(rows: EntryRow[]): Promise<void> {
    for (const kind of ['event', 'segment', 'latency'] as const) {
      const ofKind = rows.filter((r) => r.kind === kind);
      if (ofKind.length === 0) continue;
      try {
        await this.#write(kind, ofKind);
        this.#acknowledge(ofKind);
      } catch (err) {
        if (!isPoison(err) || this.#closed) throw err;
        await this.#isolatePoison(kind, ofKind);
      }
    }
  }

  async #write(kind: EntryKind, rows: EntryRow[]): Promise<void> {
    if (kind === 'event') await this.#store.appendEvents(rows.map((r) => JSON.parse(r.payload) as CallEvent));
    else if (kind === 'segment') await this.#store.appendSegments(rows.map((r) => JSON.parse(r.payload) as TranscriptSegment));
    else {
      // One document update per latency (the store has no batch form); idempotent by turn id, so a
      // batch that fails half-way is simply delivered again.
      for (const row of rows) {
        const { callId, latency } = JSON.parse(row.payload) as CallLatency;
        await this.#store.appendLatency(callId, latency);
      }
    }
  }

  /** Retries a rejected batch one entry at a time; invalid entries go to dead_letters, the rest through. */
  async #isolatePoison(kind: EntryKind, rows: EntryRow[]): Promise<void> {
    for (const row of rows) {
      try {
        await this.#write(kind, [row]);
        this.#acknowledge([row]);
      } catch (err) {
        if (!isPoison(err) || this.#closed) throw err;
        this.#recordFailure(err, { poison: true });
        const info = errorInfo(err);
        this.#transaction(() => {
          this.#stmts.dead.run(info.code, info.message, info.at, row.id);
          this.#stmts.remove.run(row.id);
        });
        this.#backlog--;
        this.#deadLetters++;
      }
    }
  }

  #acknowledge(rows: EntryRow[]): void {
    // Also while closing: close() waits for this write, so the acknowledgement is kept.
    this.#transaction(() => {
      for (const row of rows) this.#stmts.remove.run(row.id);
    });
    this.#backlog -= rows.length;
    this.#delivered += rows.length;
    this.#consecutiveFailures = 0;
    this.#lastDeliveredAt = new Date().toISOString();
  }

  #transaction(fn: () => void): void {
    this.#db.exec('BEGIN');
    try {
      fn();
      this.#db.exec('COMMIT');
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  #recordFailure(err: unknown, options: { poison?: boolean } = {}): void {
    this.#failures++;
    // Bad data says nothing about the store being down.
    if (!options.poison) this.#consecutiveFailures++;
    this.#lastError = errorInfo(err);
    try {
      this.#onError?.(err);
    } catch {
      // A throwing listener must not stop delivery.
    }
  }

  #settleWaiters(): void {
    if (this.#waiters.length === 0) return;
    const headId = this.#headId();
    this.#waiters = this.#waiters.filter((w) => {
      if (headId <= w.uptoId) return true;
      w.resolve();
      return false;
    });
  }
}
