import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Pcm16Assembler } from './pcm-bytes.ts';

describe('Pcm16Assembler', () => {
  it('reassembles samples split across chunks at any byte boundary', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -32768, max: 32767 }), { maxLength: 64 }),
        fc.array(fc.integer({ min: 0, max: 130 }), { maxLength: 10 }),
        (values, cuts) => {
          const source = new Int16Array(values);
          const bytes = new Uint8Array(source.buffer);
          const points = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b);
          const asm = new Pcm16Assembler();
          const out: number[] = [];
          let last = 0;
          for (const p of [...points, bytes.length]) {
            out.push(...asm.push(bytes.subarray(last, p)));
            last = p;
          }
          expect(out).toEqual(values);
          expect(asm.hasPartialSample).toBe(false);
        },
      ),
    );
  });

  it('holds a lone byte until its pair arrives', () => {
    const asm = new Pcm16Assembler();
    expect(asm.push(Uint8Array.of(0x34)).length).toBe(0);
    expect(asm.hasPartialSample).toBe(true);
    expect([...asm.push(Uint8Array.of(0x12, 0xff, 0xff))]).toEqual([0x1234, -1]);
    expect(asm.hasPartialSample).toBe(false);
  });
});
