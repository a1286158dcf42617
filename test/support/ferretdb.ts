/**
 * FerretDB v1 (MongoDB wire protocol over SQLite) on loopback, for tests that need a database on a
 * machine where no MongoDB server can be installed. It lacks transactions, change streams, TTL,
 * partial/sparse indexes and arrayFilters: code needing those must degrade, and is tested against a
 * real MongoDB where a user has one (`MONGODB_URI`, see {@link mongoUriForTests}).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedBinary, logDir, freePort, startChild, tcpAccepts, waitForReady, type ManagedChild } from './process.ts';

export interface FerretDbHandle {
  /** `mongodb://127.0.0.1:PORT/`; pick a database name per test. */
  uri: string;
  /** Stops the server and deletes its data. Idempotent. */
  stop(): Promise<void>;
  /** Stops, then starts again on the same port over the same data (for reconnect/persistence tests). */
  restart(): Promise<void>;
}

export async function startFerretDb(): Promise<FerretDbHandle> {
  const binary = cachedBinary('ferretdb');
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing; build it with: bash scripts/install-servers.sh`);
  }
  // Data in the OS temp dir: it is thrown away at stop, and SQLite is happier off network mounts.
  const baseDir = mkdtempSync(join(tmpdir(), 'ferretdb-'));
  const dataDir = join(baseDir, 'data');
  const stateDir = join(baseDir, 'state');
  mkdirSync(dataDir);
  mkdirSync(stateDir);

  let port = 0;

  const launch = async (): Promise<ManagedChild> => {
    const logPath = join(logDir('ferretdb'), `${port}.log`);
    const next = startChild(
      binary,
      [
        '--handler=sqlite',
        // The URL must end in '/': FerretDB keeps one SQLite file per database in that directory.
        `--sqlite-url=file:${dataDir}/`,
        `--listen-addr=127.0.0.1:${port}`,
        `--state-dir=${stateDir}`,
        '--telemetry=disable',
        '--debug-addr=-',
        '--log-level=warn',
      ],
      logPath,
    );
    try {
      await waitForReady(next, `ferretdb on port ${port}`, () => tcpAccepts(port));
    } catch (err) {
      await next.stop(1000);
      throw err;
    }
    return next;
  };

  // A fresh port may be grabbed by a parallel test between probe and bind; retry on a new one.
  let child: ManagedChild | undefined;
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3 && child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch();
    } catch (err) {
      lastError = err;
    }
  }
  if (child === undefined) {
    rmSync(baseDir, { recursive: true, force: true });
    throw lastError;
  }
  let current: ManagedChild = child;
  let stopped = false;

  let stopping: Promise<void> | undefined;
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    stop: () => {
      stopping ??= (async () => {
        stopped = true;
        await current.stop();
        rmSync(baseDir, { recursive: true, force: true });
      })();
      return stopping;
    },
    restart: async () => {
      if (stopped) throw new Error('ferretdb was stopped; start a new one');
      await current.stop();
      current = await launch();
    },
  };
}

export interface MongoForTests {
  uri: string;
  /** True when the URI came from `MONGODB_URI` (a real MongoDB the user runs). */
  external: boolean;
  /** Stops the FerretDB this started; does nothing for an external database. */
  stop(): Promise<void>;
}

/**
 * The database tests should use: the user's real MongoDB when `MONGODB_URI` is set, otherwise a
 * FerretDB started for the caller. With an external database, tests share it: use a unique
 * database name per test file and drop it afterwards.
 */
export async function mongoUriForTests(): Promise<MongoForTests> {
  const external = process.env.MONGODB_URI;
  if (external !== undefined && external !== '') {
    return { uri: external, external: true, stop: async () => undefined };
  }
  const ferret = await startFerretDb();
  return { uri: ferret.uri, external: false, stop: ferret.stop };
}
