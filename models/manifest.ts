/**
 * The models the engine runs, with the checksums every copy must match and where a copy can come from.
 * Sources are tried in the order listed here, after the two that apply to every model (a configured
 * path, then the local cache); see `resolveModel` in `model-manager.ts`.
 */

/** A file shipped inside an installed npm package, relative to the project root. */
export interface PackageSource {
  kind: 'package';
  /** Path relative to the project root, e.g. `node_modules/<pkg>/dist/model.onnx`. */
  relativePath: string;
}

/** A plain HTTPS download (Hugging Face). Only tried when the caller passes `allowHub: true`. */
export interface HubSource {
  kind: 'hub';
  url: string;
}

/** A Python wheel fetched with `pip download` through the ordinary package registry client. */
export interface PipWheelSource {
  kind: 'pip';
  /** Requirement spec handed to pip, pinned so the checksum stays valid, e.g. `pipecat-ai==1.14.0`. */
  requirement: string;
  /** Path of the model file inside the wheel (a zip archive). */
  member: string;
}

export type ModelSource = PackageSource | HubSource | PipWheelSource;

export interface ModelEntry {
  id: string;
  /** Name of the file in the cache directory. */
  fileName: string;
  /** Lower-case hex SHA-256 of the exact file. */
  sha256: string;
  sizeBytes: number;
  license: string;
  sources: readonly ModelSource[];
}

export const MODELS = {
  'silero-vad-v6': {
    id: 'silero-vad-v6',
    fileName: 'silero_vad_v6.onnx',
    sha256: '1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3',
    sizeBytes: 2_327_524,
    license: 'MIT (snakers4/silero-vad)',
    sources: [{ kind: 'package', relativePath: 'node_modules/@ricky0123/vad-web/dist/silero_vad_v6.onnx' }],
  },
  'smart-turn-v3.2': {
    id: 'smart-turn-v3.2',
    fileName: 'smart-turn-v3.2-cpu.onnx',
    sha256: '2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f',
    sizeBytes: 8_679_182,
    license: 'BSD-2-Clause (Daily / pipecat-ai/smart-turn)',
    sources: [
      { kind: 'hub', url: 'https://huggingface.co/pipecat-ai/smart-turn-v3/resolve/main/smart-turn-v3.2-cpu.onnx' },
      {
        kind: 'pip',
        requirement: 'pipecat-ai==1.14.0',
        member: 'pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx',
      },
    ],
  },
} as const satisfies Record<string, ModelEntry>;

export type ModelId = keyof typeof MODELS;

export const MODEL_IDS = Object.keys(MODELS) as ModelId[];

export function isModelId(id: string): id is ModelId {
  return Object.hasOwn(MODELS, id);
}
