/**
 * Turns a byte stream of 16-bit little-endian PCM into Int16Array pieces. HTTP chunk boundaries fall
 * anywhere, including between the two bytes of a sample; the odd byte is carried to the next chunk.
 */
export class Pcm16Assembler {
  private carry: number | undefined;

  /** Whole samples completed by `bytes`; may be empty. The result never aliases `bytes`. */
  push(bytes: Uint8Array): Int16Array {
    if (bytes.length === 0) return new Int16Array(0);
    const joined = this.carry === undefined ? bytes : prepend(this.carry, bytes);
    const count = joined.length >> 1;
    this.carry = joined.length % 2 === 1 ? joined[joined.length - 1] : undefined;
    const samples = new Int16Array(count);
    if (LITTLE_ENDIAN) {
      new Uint8Array(samples.buffer).set(joined.subarray(0, count * 2));
    } else {
      const view = new DataView(joined.buffer, joined.byteOffset, count * 2);
      for (let i = 0; i < count; i++) samples[i] = view.getInt16(i * 2, true);
    }
    return samples;
  }

  /** Whether a lone byte is waiting for its pair (at the end of a stream: a truncated sample). */
  get hasPartialSample(): boolean {
    return this.carry !== undefined;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function prepend(first: number, rest: Uint8Array): Uint8Array {
  const out = new Uint8Array(rest.length + 1);
  out[0] = first;
  out.set(rest, 1);
  return out;
}
