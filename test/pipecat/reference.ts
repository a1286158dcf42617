/**
 * Runs `reference.py` (Pipecat's own turn-taking, in the environment of `venv.ts`) with one JSON request
 * and returns its JSON answer. The answer types below mirror what the script prints.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensurePipecatVenv } from './venv.ts';

export interface FeaturesAnswer {
  clips: Array<{ name: string; probability: number; complete: boolean }>;
  versions: Record<string, string | null>;
}

export type ReferenceSessionEvent =
  | { type: 'speech_start'; confirmedAtSamples: number }
  | { type: 'speech_end'; confirmedAtSamples: number; complete: boolean; probability?: number; scoredFromSamples?: number }
  | { type: 'turn_complete'; rule: 'model' | 'silence'; atSamples: number };

export interface SessionAnswer {
  conversations: Array<{ name: string; events: ReferenceSessionEvent[] }>;
  versions: Record<string, string | null>;
}

const SCRIPT = fileURLToPath(new URL('./reference.py', import.meta.url));

export function runPipecatReference(request: { command: 'features'; clips: Array<{ name: string; path: string }> }): Promise<FeaturesAnswer>;
export function runPipecatReference(request: { command: 'session'; conversations: Array<{ name: string; path: string }> }): Promise<SessionAnswer>;
export function runPipecatReference(request: object): Promise<unknown> {
  const python = ensurePipecatVenv();
  return new Promise((resolve, reject) => {
    // No network, no threads beyond what the analyzers ask for: the reference must be reproducible.
    const child = spawn(python, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1', PYTHONHASHSEED: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`reference.py exited with ${code}:\n${stderr.slice(-4000)}`));
      try {
        resolve(JSON.parse(stdout));
      } catch (error) {
        reject(new Error(`reference.py printed no JSON: ${(error as Error).message}\n${stdout.slice(0, 500)}\n${stderr.slice(-2000)}`));
      }
    });
    child.stdin.end(JSON.stringify(request));
  });
}
