import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['engine/**/*.test.ts', 'server/**/*.test.ts', 'wasm/**/*.test.ts', 'models/**/*.test.ts', 'bench/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['node_modules/**', '.cache/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Worker threads spawned by the engine load .ts files natively (Node 24 type stripping).
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: '.cache/test-results.json' },
  },
});
