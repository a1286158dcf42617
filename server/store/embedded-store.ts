/**
 * CallStore on Node's built-in `node:sqlite`, for deployments without MongoDB. One file in the data
 * directory, WAL mode: readers never block the writer, and a committed transaction survives a process
 * crash. `synchronous=NORMAL` (the default here) may lose the last few commits on power loss but not on a
 * process crash; pass `synchronous: 'full'` to fsync every commit.
 *
 * Whole records are kept as JSON in `doc`; the indexed columns beside it exist only for the queries
 * (`callId`, `(state, createdAt)`, idempotency key, `(callId, seq)`; the owner is indexed as an expression on `doc`). The API is async to match the
 * contract; the work is synchronous and short (indexed single-row statements).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { ClosedError } from '../../engine/errors.ts';
import {
  DEFAULT_LIST_LIMIT,
  type AppendResult,
  type CallEvent,
  type CallPage,
  type CallParticipant,
  type CallPatch,
  type CallRecord,
  type CallStore,
  type CreateCallResult,
  type ListBySeqQuery,
  type ListCallsQuery,
  type NewCall,
  type TranscriptSegment,
  type TurnLatency,
  type UpdateCallOptions,
} from './call-store.ts';
import {
  applyPatch,
  checkState,
  decodeCursor,
  encodeCursor,
  listLimit,
  newCallRecord,
  normaliseEvent,
  normaliseSegment,
  withLatency,
  withParticipant,
  withParticipantLeft,
} from './call-record.ts';
import { CallExistsError, CallNotFoundError, CallStateConflictError, StoreUnavailableError } from './errors.ts';

export const EMBEDDED_DB_FILE = 'calls.sqlite';

export interface EmbeddedStoreOptions {
  /** Directory for the database file; created if missing. */
  dataDir: string;
  /** 'normal' (default) survives process crashes; 'full' also survives power loss, at an fsync per commit. */
  synchronous?: 'normal' | 'full';
  /** How long a statement waits for another connection's lock before failing retryably. */
  busyTimeoutMs?: number;
  /** Injectable clock for tests. */
  now?: () => Date;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS calls (
  call_id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  idempotency_key TEXT UNIQUE,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_created ON calls (created_at, call_id);
CREATE INDEX IF NOT EXISTS calls_state_created ON calls (state, created_at, call_id);
-- An index on the expression, not a column: databases created before owners existed need no migration.
CREATE INDEX IF NOT EXISTS calls_owner_created ON calls (json_extract(doc, '$.owner'), created_at, call_id);
CREATE TABLE IF NOT EXISTS events (
  event_id TEXT PRIMARY KEY,
  call_id TEXT NOT NULL,
  seq REAL NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_call_seq ON events (call_id, seq);
CREATE TABLE IF NOT EXISTS segments (
  call_id TEXT NOT NULL,
  segment_id TEXT NOT NULL,
  seq REAL NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (call_id, segment_id)
);
CREATE INDEX IF NOT EXISTS segments_call_seq ON segments (call_id, seq);
CREATE TABLE IF NOT EXISTS webhooks (
  webhook_id TEXT PRIMARY KEY,
  processed_at TEXT NOT NULL
);
`;

// SQLite primary result codes that mean "another connection holds the lock": worth retrying.
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;

function translate(err: unknown): unknown {
  const errcode = (err as { errcode?: number }).errcode;
  if (errcode !== undefined && ((errcode & 0xff) === SQLITE_BUSY || (errcode & 0xff) === SQLITE_LOCKED)) {
    return new StoreUnavailableError('embedded store is locked by another connection', { cause: err });
  }
  return err;
}

export class EmbeddedCallStore implements CallStore {
  readonly kind = 'embedded';
  readonly path: string;
  #db: DatabaseSync;
  #closed = false;
  #now: () => Date;
  #stmts: {
    getCall: StatementSync;
    getByKey: StatementSync;
    releaseKey: StatementSync;
    insertCall: StatementSync;
    updateCall: StatementSync;
    insertEvent: StatementSync;
    insertSegment: StatementSync;
    insertWebhook: StatementSync;
    getWebhook: StatementSync;
    listEvents: StatementSync;
    listSegments: StatementSync;
  };

  private constructor(path: string, db: DatabaseSync, now: () => Date) {
    this.path = path;
    this.#db = db;
    this.#now = now;
    this.#stmts = {
      getCall: db.prepare('SELECT doc FROM calls WHERE call_id = ?'),
      getByKey: db.prepare('SELECT doc FROM calls WHERE idempotency_key = ?'),
      releaseKey: db.prepare('UPDATE calls SET idempotency_key = NULL WHERE idempotency_key = ? AND call_id = ?'),
      insertCall: db.prepare('INSERT INTO calls (call_id, state, created_at, idempotency_key, doc) VALUES (?, ?, ?, ?, ?)'),
      updateCall: db.prepare('UPDATE calls SET state = ?, doc = ? WHERE call_id = ?'),
      insertEvent: db.prepare('INSERT OR IGNORE INTO events (event_id, call_id, seq, doc) VALUES (?, ?, ?, ?)'),
      insertSegment: db.prepare('INSERT OR IGNORE INTO segments (call_id, segment_id, seq, doc) VALUES (?, ?, ?, ?)'),
      insertWebhook: db.prepare('INSERT OR IGNORE INTO webhooks (webhook_id, processed_at) VALUES (?, ?)'),
      getWebhook: db.prepare('SELECT 1 AS seen FROM webhooks WHERE webhook_id = ?'),
      listEvents: db.prepare('SELECT doc FROM events WHERE call_id = ? AND seq > ? ORDER BY seq, event_id LIMIT ?'),
      listSegments: db.prepare('SELECT doc FROM segments WHERE call_id = ? AND seq > ? ORDER BY seq, segment_id LIMIT ?'),
    };
  }

  /** Opens (creating if needed) `<dataDir>/calls.sqlite`. */
  static open(options: EmbeddedStoreOptions): EmbeddedCallStore {
    mkdirSync(options.dataDir, { recursive: true });
    const path = join(options.dataDir, EMBEDDED_DB_FILE);
    const db = new DatabaseSync(path, { timeout: options.busyTimeoutMs ?? 2000 });
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec(`PRAGMA synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      db.exec(SCHEMA);
    } catch (err) {
      db.close();
      throw translate(err);
    }
    return new EmbeddedCallStore(path, db, options.now ?? (() => new Date()));
  }

  #check(): void {
    if (this.#closed) throw new ClosedError('call store');
  }

  /** Runs `fn` in one write transaction; IMMEDIATE takes the write lock up front so read-then-write is atomic. */
  #tx<T>(fn: () => T): T {
    this.#check();
    try {
      this.#db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      throw translate(err);
    }
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw translate(err);
    }
  }

  #read(callId: string): CallRecord | null {
    const row = this.#stmts.getCall.get(callId) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as CallRecord) : null;
  }

  #write(call: CallRecord): void {
    this.#stmts.updateCall.run(call.state, JSON.stringify(call), call.callId);
  }

  /** Read-modify-write of one call; `change` returns null for "nothing to do". */
  #mutate(callId: string, change: (call: CallRecord) => CallRecord | null): CallRecord {
    return this.#tx(() => {
      const call = this.#read(callId);
      if (!call) throw new CallNotFoundError(callId);
      const next = change(call);
      if (!next) return call;
      this.#write(next);
      return next;
    });
  }

  async createCall(input: NewCall, options: { idempotencyKey?: string } = {}): Promise<CreateCallResult> {
    const key = options.idempotencyKey;
    const record = newCallRecord(input, key, this.#now());
    return this.#tx(() => {
      if (key !== undefined) {
        const row = this.#stmts.getByKey.get(key) as { doc: string } | undefined;
        if (row) return { call: JSON.parse(row.doc) as CallRecord, created: false };
      }
      if (this.#read(record.callId)) throw new CallExistsError(record.callId);
      this.#stmts.insertCall.run(record.callId, record.state, record.createdAt, key ?? null, JSON.stringify(record));
      return { call: record, created: true };
    });
  }

  async getCall(callId: string): Promise<CallRecord | null> {
    this.#check();
    return this.#read(callId);
  }

  async findCallByIdempotencyKey(idempotencyKey: string): Promise<CallRecord | null> {
    this.#check();
    const row = this.#stmts.getByKey.get(idempotencyKey) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as CallRecord) : null;
  }

  async releaseIdempotencyKey(idempotencyKey: string, callId: string): Promise<boolean> {
    return this.#tx(() => Number(this.#stmts.releaseKey.run(idempotencyKey, callId).changes) === 1);
  }

  async listCalls(query: ListCallsQuery = {}): Promise<CallPage> {
    this.#check();
    const limit = listLimit(query.limit);
    if (query.state !== undefined) checkState(query.state);
    const where: string[] = [];
    const params: string[] = [];
    if (query.state !== undefined) {
      where.push('state = ?');
      params.push(query.state);
    }
    if (query.owner !== undefined) {
      // Written exactly as in calls_owner_created so that SQLite uses that index.
      where.push("json_extract(doc, '$.owner') = ?");
      params.push(query.owner);
    }
    if (query.before !== undefined) {
      const cursor = decodeCursor(query.before);
      // Row-value comparison walks the (created_at, call_id) index backwards from the cursor.
      where.push('(created_at, call_id) < (?, ?)');
      params.push(cursor.createdAt, cursor.callId);
    }
    const sql =
      `SELECT doc FROM calls ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ` +
      `ORDER BY created_at DESC, call_id DESC LIMIT ${limit + 1}`;
    const rows = this.#db.prepare(sql).all(...params) as { doc: string }[];
    const calls = rows.slice(0, limit).map((r) => JSON.parse(r.doc) as CallRecord);
    const page: CallPage = { calls };
    if (rows.length > limit) page.nextCursor = encodeCursor(calls[calls.length - 1]);
    return page;
  }

  async updateCall(callId: string, patch: CallPatch, options: UpdateCallOptions = {}): Promise<CallRecord> {
    return this.#mutate(callId, (call) => {
      if (options.ifState && !options.ifState.includes(call.state)) {
        throw new CallStateConflictError(callId, call.state, options.ifState);
      }
      return applyPatch(call, patch, this.#now());
    });
  }

  async addParticipant(callId: string, participant: CallParticipant): Promise<CallRecord> {
    return this.#mutate(callId, (call) => withParticipant(call, participant, this.#now()));
  }

  async markParticipantLeft(callId: string, identity: string, leftAt?: string): Promise<CallRecord> {
    return this.#mutate(callId, (call) => withParticipantLeft(call, identity, leftAt, this.#now()));
  }

  async appendLatency(callId: string, latency: TurnLatency): Promise<CallRecord> {
    return this.#mutate(callId, (call) => withLatency(call, latency, this.#now()));
  }

  async appendEvents(events: CallEvent[]): Promise<AppendResult> {
    const docs = events.map(normaliseEvent);
    return this.#tx(() => {
      let written = 0;
      for (const e of docs) written += Number(this.#stmts.insertEvent.run(e.eventId, e.callId, e.seq, JSON.stringify(e)).changes);
      return { written };
    });
  }

  async appendSegments(segments: TranscriptSegment[]): Promise<AppendResult> {
    const docs = segments.map(normaliseSegment).filter((s) => s !== null);
    return this.#tx(() => {
      let written = 0;
      for (const s of docs) written += Number(this.#stmts.insertSegment.run(s.callId, s.segmentId, s.seq, JSON.stringify(s)).changes);
      return { written };
    });
  }

  async listEvents(callId: string, query: ListBySeqQuery = {}): Promise<CallEvent[]> {
    this.#check();
    const rows = this.#stmts.listEvents.all(callId, query.afterSeq ?? -Infinity, listLimit(query.limit, DEFAULT_LIST_LIMIT)) as { doc: string }[];
    return rows.map((r) => JSON.parse(r.doc) as CallEvent);
  }

  async listSegments(callId: string, query: ListBySeqQuery = {}): Promise<TranscriptSegment[]> {
    this.#check();
    // No default cap: a transcript is read whole.
    const limit = query.limit === undefined ? -1 : listLimit(query.limit);
    const rows = this.#stmts.listSegments.all(callId, query.afterSeq ?? -Infinity, limit) as { doc: string }[];
    return rows.map((r) => JSON.parse(r.doc) as TranscriptSegment);
  }

  async markWebhookProcessed(webhookId: string): Promise<boolean> {
    this.#check();
    try {
      return Number(this.#stmts.insertWebhook.run(webhookId, this.#now().toISOString()).changes) === 1;
    } catch (err) {
      throw translate(err);
    }
  }

  async isWebhookProcessed(webhookId: string): Promise<boolean> {
    this.#check();
    try {
      return this.#stmts.getWebhook.get(webhookId) !== undefined;
    } catch (err) {
      throw translate(err);
    }
  }

  async ping(): Promise<void> {
    this.#check();
    try {
      this.#db.prepare('SELECT 1').get();
    } catch (err) {
      throw translate(err);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
