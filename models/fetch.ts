/**
 * `npm run setup:models`: resolves every model in the manifest into the local cache and says where each
 * one came from. Flags: `--allow-hub` (permit Hugging Face), `--no-pip`, `--cache-dir DIR`.
 * Exits non-zero when any model is unavailable.
 */
import { MODEL_IDS, MODELS } from './manifest.ts';
import { DEFAULT_CACHE_DIR, resolveModel } from './model-manager.ts';

interface FetchArgs {
  allowHub: boolean;
  allowPip: boolean;
  cacheDir: string;
}

function parseArgs(argv: string[]): FetchArgs {
  const args: FetchArgs = { allowHub: false, allowPip: true, cacheDir: DEFAULT_CACHE_DIR };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--allow-hub') args.allowHub = true;
    else if (arg === '--no-pip') args.allowPip = false;
    else if (arg === '--cache-dir' && argv[i + 1] !== undefined) args.cacheDir = argv[++i];
    else throw new Error(`unknown argument ${arg}; usage: node models/fetch.ts [--allow-hub] [--no-pip] [--cache-dir DIR]`);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  let failures = 0;
  for (const id of MODEL_IDS) {
    const started = performance.now();
    try {
      const path = await resolveModel(id, {
        cacheDir: args.cacheDir,
        allowHub: args.allowHub,
        allowPip: args.allowPip,
        log: (msg) => console.log(`  ${msg}`),
      });
      const elapsedMs = Math.round(performance.now() - started);
      console.log(`ok   ${id} -> ${path} (${MODELS[id].sizeBytes} bytes, sha256 verified, ${elapsedMs} ms, ${MODELS[id].license})`);
    } catch (err) {
      failures++;
      console.error(`FAIL ${id}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return failures === 0 ? 0 : 1;
}

process.exitCode = await main();
