import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/process.ts';
import { openCallStore } from './open-store.ts';

describe('openCallStore', () => {
  it('uses the embedded store when no MongoDB URI is configured', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'open-store-'));
    const store = openCallStore({ dataDir });
    try {
      expect(store.kind).toBe('embedded');
      await store.ping();
    } finally {
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('returns a MongoDB store even when the database is unreachable, reporting it through ping()', async () => {
    // A port nothing listens on: the engine must still start.
    const port = await freePort();
    const store = openCallStore({ dataDir: '/nonexistent-not-used', mongodbUri: `mongodb://127.0.0.1:${port}/` });
    try {
      expect(store.kind).toBe('mongodb');
      await expect(store.ping()).rejects.toMatchObject({ code: 'VE_STORE_UNAVAILABLE', retryable: true });
    } finally {
      await store.close();
    }
  });
});
