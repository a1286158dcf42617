/** Conversions between the neutral tensors and either onnxruntime package's tensors (same shape of API). */
import type { NeutralTensor, TensorFeeds } from './backend.ts';

interface OrtTensorLike {
  readonly type: string;
  readonly data: unknown;
  readonly dims: readonly number[];
}

/** `make` builds the package's own Tensor: each package only accepts its own class. */
export function toOrt<T>(feeds: TensorFeeds, make: (t: NeutralTensor) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const name in feeds) out[name] = make(feeds[name]);
  return out;
}

export function fromOrt(results: Readonly<Record<string, unknown>>): TensorFeeds {
  const out: TensorFeeds = {};
  for (const name in results) out[name] = neutral(results[name] as OrtTensorLike);
  return out;
}

function neutral(t: OrtTensorLike): NeutralTensor {
  const dims = Array.from(t.dims);
  if (t.type === 'float32') return { type: 'float32', data: t.data as Float32Array, dims };
  if (t.type === 'int64') return { type: 'int64', data: t.data as BigInt64Array, dims };
  throw new Error(`output tensor type ${t.type} is not supported by the neutral tensor type`);
}
