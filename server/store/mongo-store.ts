/**
 * CallStore on MongoDB (driver v7), restricted to what FerretDB v1 also supports: no transactions,
 * change streams, TTL, partial/sparse indexes, arrayFilters or $push modifiers.
 *
 * - `calls`: `_id` is the callId (the unique callId index for free). Read-modify-write of a call is an
 *   optimistic compare-and-set on `rev` (replaceOne filtered by the rev that was read), which keeps
 *   participant/latency/metadata rules in one place (`call-record.ts`) and loses no concurrent update.
 * - `idempotency`: `_id` is the key and maps to the callId. A unique sparse index on
 *   `calls.idempotencyKey` would be simpler but FerretDB has no sparse indexes.
 * - `events`: `_id` is the eventId; `segments`: unique `(callId, segmentId)`. Both written by ordered
 *   upserts with `$setOnInsert`, so a replay writes nothing and raises no duplicate-key error.
 * - `webhooks`: `_id` is the webhook id; a duplicate-key error means "seen before".
 *
 * Indexes are created lazily before the first operation (retried on the next one if the database was
 * down), so an engine can start while the database is unreachable; `ready()` forces it.
 */
import {
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  type AnyBulkWriteOperation,
  type Collection,
  type Db,
  type Document,
  type Filter,
} from 'mongodb';
import { setTimeout as sleep } from 'node:timers/promises';
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
import { CallExistsError, CallNotFoundError, CallStateConflictError, StoreConflictError, StoreUnavailableError } from './errors.ts';

export interface MongoStoreOptions {
  /** mongodb:// URI. */
  uri: string;
  /** Defaults to the URI's database, else 'voice'. */
  dbName?: string;
  /** How long an operation waits for a reachable server before failing retryably. Default 2000. */
  serverSelectionTimeoutMs?: number;
  /** Socket inactivity limit. Default 10000. */
  socketTimeoutMs?: number;
  /** Injectable clock for tests. */
  now?: () => Date;
}

const DUPLICATE_KEY = 11000;
/** Enough for a burst of concurrent writers on one call; each retry re-reads the winner's version. */
const MAX_CAS_ATTEMPTS = 30;

type CallDoc = CallRecord & { _id: string };
type EventDoc = CallEvent & { _id: string };
type SegmentDoc = TranscriptSegment & { _id?: unknown };
interface IdempotencyDoc {
  _id: string;
  callId: string;
  createdAt: string;
}
interface WebhookDoc {
  _id: string;
  processedAt: string;
}

function isDuplicateKey(err: unknown): boolean {
  if (!(err instanceof MongoError)) return false;
  if (err.code === DUPLICATE_KEY) return true;
  const writeErrors = (err as { writeErrors?: { code?: number }[] }).writeErrors;
  return Array.isArray(writeErrors) && writeErrors.length > 0 && writeErrors.every((w) => w.code === DUPLICATE_KEY);
}

function isUnavailable(err: unknown): boolean {
  if (
    err instanceof MongoNetworkError ||
    err instanceof MongoServerSelectionError ||
    err instanceof MongoNotConnectedError ||
    err instanceof MongoTopologyClosedError
  ) {
    return true;
  }
  // PoolClearedError and friends carry this label; the server is reachable again only after a retry.
  return err instanceof MongoError && (err.hasErrorLabel('RetryableWriteError') || err.hasErrorLabel('ResetPool'));
}

/** Runs tasks with the same key one after another; different keys run concurrently. */
class KeyedLock {
  #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    // Drop the entry when nothing queued behind us, so the map does not grow with every call ever seen.
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}

function stripId<T>(doc: (T & { _id?: unknown }) | null): T | null {
  if (!doc) return null;
  const { _id: _ignored, ...rest } = doc;
  return rest as T;
}

export class MongoCallStore implements CallStore {
  readonly kind = 'mongodb';
  readonly client: MongoClient;
  readonly db: Db;
  #calls: Collection<CallDoc>;
  #idempotency: Collection<IdempotencyDoc>;
  #events: Collection<EventDoc>;
  #segments: Collection<SegmentDoc>;
  #webhooks: Collection<WebhookDoc>;
  #now: () => Date;
  #closed = false;
  #ready: Promise<void> | null = null;
  #callLock = new KeyedLock();

  constructor(options: MongoStoreOptions) {
    this.client = new MongoClient(options.uri, {
      serverSelectionTimeoutMS: options.serverSelectionTimeoutMs ?? 2000,
      connectTimeoutMS: options.serverSelectionTimeoutMs ?? 2000,
      socketTimeoutMS: options.socketTimeoutMs ?? 10_000,
      // Optional record fields are absent, never null, in both backends.
      ignoreUndefined: true,
    });
    this.db = this.client.db(options.dbName ?? (this.#dbNameFromUri(options.uri) || 'voice'));
    this.#calls = this.db.collection<CallDoc>('calls');
    this.#idempotency = this.db.collection<IdempotencyDoc>('idempotency');
    this.#events = this.db.collection<EventDoc>('events');
    this.#segments = this.db.collection<SegmentDoc>('segments');
    this.#webhooks = this.db.collection<WebhookDoc>('webhooks');
    this.#now = options.now ?? (() => new Date());
  }

  /** Connects and creates indexes, failing fast with StoreUnavailableError if the server is down. */
  static async open(options: MongoStoreOptions): Promise<MongoCallStore> {
    const store = new MongoCallStore(options);
    try {
      await store.ready();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  #dbNameFromUri(uri: string): string {
    const match = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]+)/.exec(uri);
    return match ? decodeURIComponent(match[1]) : '';
  }

  /** Ensures the indexes exist; memoised, and retried on the next call after a failure. */
  ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('call store'));
    this.#ready ??= this.#createIndexes().catch((err: unknown) => {
      this.#ready = null;
      throw this.#translate(err);
    });
    return this.#ready;
  }

  async #createIndexes(): Promise<void> {
    // Explicitly: with driver v7 an operation's implicit connect that fails leaves the client with a
    // closed topology ("Topology is closed") for good, while a failed connect() can simply be retried.
    await this.client.connect();
    // One index per command: FerretDB v1 drops the connection (a server-side panic) when a
    // multi-index createIndexes names indexes that already exist, i.e. on every restart.
    await this.#calls.createIndex({ createdAt: -1, _id: -1 }, { name: 'createdAt_callId' });
    await this.#calls.createIndex({ state: 1, createdAt: -1, _id: -1 }, { name: 'state_createdAt_callId' });
    await this.#calls.createIndex({ owner: 1, createdAt: -1, _id: -1 }, { name: 'owner_createdAt_callId' });
    await this.#events.createIndex({ callId: 1, seq: 1 }, { name: 'callId_seq' });
    await this.#segments.createIndex({ callId: 1, segmentId: 1 }, { name: 'callId_segmentId', unique: true });
    await this.#segments.createIndex({ callId: 1, seq: 1 }, { name: 'callId_seq' });
  }

  #translate(err: unknown): unknown {
    if (this.#closed) return new ClosedError('call store');
    if (isUnavailable(err)) return new StoreUnavailableError(`MongoDB unavailable: ${(err as Error).message}`, { cause: err });
    return err;
  }

  /** Every public operation goes through here: closed check, lazy indexes, error translation. */
  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('call store');
    await this.ready();
    try {
      return await fn();
    } catch (err) {
      throw this.#translate(err);
    }
  }

  async #read(callId: string): Promise<CallRecord | null> {
    return stripId<CallRecord>(await this.#calls.findOne({ _id: callId }));
  }

  /**
   * Read-modify-write of one call, serialised per call within this process and guarded by a
   * compare-and-set on `rev`. The CAS is what makes concurrent writers in several processes safe on
   * MongoDB; FerretDB v1 does not apply even a filtered single-document update atomically (concurrent
   * `$inc`s are lost there), so on FerretDB only the in-process serialisation holds.
   * `change` returns null for "nothing to do".
   */
  #mutate(callId: string, change: (call: CallRecord) => CallRecord | null): Promise<CallRecord> {
    return this.#callLock.run(callId, () => this.#compareAndSet(callId, change));
  }

  #compareAndSet(callId: string, change: (call: CallRecord) => CallRecord | null): Promise<CallRecord> {
    return this.#run(async () => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const call = await this.#read(callId);
        if (!call) throw new CallNotFoundError(callId);
        const next = change(call);
        if (!next) return call;
        const result = await this.#calls.replaceOne({ _id: callId, rev: call.rev }, next);
        if (result.matchedCount === 1) return next;
        // Lost the race: a little jitter keeps a burst of writers from colliding in lockstep.
        await sleep(Math.random() * Math.min(50, 2 ** attempt));
      }
      throw new StoreConflictError(callId);
    });
  }

  async createCall(input: NewCall, options: { idempotencyKey?: string } = {}): Promise<CreateCallResult> {
    const key = options.idempotencyKey;
    const record = newCallRecord(input, key, this.#now());
    return this.#run(async () => {
      if (key === undefined) {
        try {
          await this.#calls.insertOne({ _id: record.callId, ...record });
        } catch (err) {
          if (isDuplicateKey(err)) throw new CallExistsError(record.callId);
          throw err;
        }
        return { call: record, created: true };
      }

      // Claim the key first. Whoever claims it decides the callId; everyone with the same key then
      // upserts that callId, so exactly one insert happens even if the claimer crashed before it.
      let claimed = true;
      try {
        await this.#idempotency.insertOne({ _id: key, callId: record.callId, createdAt: record.createdAt });
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        claimed = false;
        const mapping = await this.#idempotency.findOne({ _id: key });
        if (!mapping) throw err;
        record.callId = mapping.callId;
      }
      let created = false;
      try {
        const result = await this.#calls.updateOne({ _id: record.callId }, { $setOnInsert: record }, { upsert: true });
        created = result.upsertedCount === 1;
      } catch (err) {
        // Two upserts of the same _id can race to insert; the loser sees a duplicate key.
        if (!isDuplicateKey(err)) throw err;
      }
      const call = await this.#read(record.callId);
      if (!call) throw new CallNotFoundError(record.callId);
      if (call.idempotencyKey !== key) {
        // The callId was already taken by a call created without this key.
        if (claimed) await this.#idempotency.deleteOne({ _id: key });
        throw new CallExistsError(record.callId);
      }
      return { call, created };
    });
  }

  async getCall(callId: string): Promise<CallRecord | null> {
    return this.#run(() => this.#read(callId));
  }

  async findCallByIdempotencyKey(idempotencyKey: string): Promise<CallRecord | null> {
    return this.#run(async () => {
      const mapping = await this.#idempotency.findOne({ _id: idempotencyKey });
      if (!mapping) return null;
      // A claim whose call was never inserted (the claimer crashed) reads as unknown; createCall completes it.
      const call = await this.#read(mapping.callId);
      return call !== null && call.idempotencyKey === idempotencyKey ? call : null;
    });
  }

  async releaseIdempotencyKey(idempotencyKey: string, callId: string): Promise<boolean> {
    return this.#run(async () => (await this.#idempotency.deleteOne({ _id: idempotencyKey, callId })).deletedCount === 1);
  }

  async listCalls(query: ListCallsQuery = {}): Promise<CallPage> {
    const limit = listLimit(query.limit);
    if (query.state !== undefined) checkState(query.state);
    const filter: Filter<CallDoc> = {};
    if (query.state !== undefined) filter.state = query.state;
    if (query.owner !== undefined) filter.owner = query.owner;
    if (query.before !== undefined) {
      const cursor = decodeCursor(query.before);
      filter.$or = [{ createdAt: { $lt: cursor.createdAt } }, { createdAt: cursor.createdAt, _id: { $lt: cursor.callId } }];
    }
    return this.#run(async () => {
      const docs = await this.#calls
        .find(filter)
        .sort({ createdAt: -1, _id: -1 })
        .limit(limit + 1)
        .toArray();
      const calls = docs.slice(0, limit).map((d) => stripId<CallRecord>(d) as CallRecord);
      const page: CallPage = { calls };
      if (docs.length > limit) page.nextCursor = encodeCursor(calls[calls.length - 1]);
      return page;
    });
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

  /** Runs ordered upserts; a concurrent writer of the same id can make one fail with a duplicate key, so retry once. */
  async #upsertAll<T extends Document>(collection: Collection<T>, ops: AnyBulkWriteOperation<T>[]): Promise<number> {
    if (ops.length === 0) return 0;
    try {
      return (await collection.bulkWrite(ops, { ordered: true })).upsertedCount;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return (await collection.bulkWrite(ops, { ordered: true })).upsertedCount;
    }
  }

  async appendEvents(events: CallEvent[]): Promise<AppendResult> {
    const docs = events.map(normaliseEvent);
    return this.#run(async () => {
      const ops: AnyBulkWriteOperation<EventDoc>[] = docs.map((e) => ({
        updateOne: { filter: { _id: e.eventId }, update: { $setOnInsert: e }, upsert: true },
      }));
      return { written: await this.#upsertAll(this.#events, ops) };
    });
  }

  async appendSegments(segments: TranscriptSegment[]): Promise<AppendResult> {
    const docs = segments.map(normaliseSegment).filter((s) => s !== null);
    return this.#run(async () => {
      const ops: AnyBulkWriteOperation<SegmentDoc>[] = docs.map(({ callId, segmentId, ...rest }) => ({
        updateOne: { filter: { callId, segmentId }, update: { $setOnInsert: rest }, upsert: true },
      }));
      return { written: await this.#upsertAll(this.#segments, ops) };
    });
  }

  async listEvents(callId: string, query: ListBySeqQuery = {}): Promise<CallEvent[]> {
    const limit = listLimit(query.limit, DEFAULT_LIST_LIMIT);
    const filter: Filter<EventDoc> = query.afterSeq === undefined ? { callId } : { callId, seq: { $gt: query.afterSeq } };
    return this.#run(async () => {
      const docs = await this.#events.find(filter).sort({ seq: 1, _id: 1 }).limit(limit).toArray();
      return docs.map((d) => stripId<CallEvent>(d) as CallEvent);
    });
  }

  async listSegments(callId: string, query: ListBySeqQuery = {}): Promise<TranscriptSegment[]> {
    const limit = query.limit === undefined ? 0 : listLimit(query.limit);
    const filter: Filter<SegmentDoc> = query.afterSeq === undefined ? { callId } : { callId, seq: { $gt: query.afterSeq } };
    return this.#run(async () => {
      const docs = await this.#segments.find(filter).sort({ seq: 1, segmentId: 1 }).limit(limit).toArray();
      // Rebuild field by field: upsert puts the filter fields first, and the contract has a fixed shape.
      return docs.map((d) => ({
        callId: d.callId,
        segmentId: d.segmentId,
        seq: d.seq,
        speaker: d.speaker,
        text: d.text,
        startMs: d.startMs,
        endMs: d.endMs,
        final: d.final,
      }));
    });
  }

  async markWebhookProcessed(webhookId: string): Promise<boolean> {
    return this.#run(async () => {
      try {
        await this.#webhooks.insertOne({ _id: webhookId, processedAt: this.#now().toISOString() });
        return true;
      } catch (err) {
        if (isDuplicateKey(err)) return false;
        throw err;
      }
    });
  }

  async isWebhookProcessed(webhookId: string): Promise<boolean> {
    return this.#run(async () => (await this.#webhooks.findOne({ _id: webhookId })) !== null);
  }

  async ping(): Promise<void> {
    return this.#run(async () => {
      await this.db.command({ ping: 1 });
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.client.close();
  }
}
