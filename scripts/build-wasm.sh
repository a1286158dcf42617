#!/usr/bin/env bash
# Rebuilds the project's own WebAssembly (wasm/*.c -> wasm/*.wasm). The .wasm files are committed, so
# neither installs nor CI need a C toolchain; run this after editing a .c file and commit both.
# Needs clang and lld (Debian: apt-get install -y --no-install-recommends clang lld).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLANG="${CLANG:-$(command -v clang || command -v clang-14 || true)}"
if [[ -z "$CLANG" ]] || ! command -v wasm-ld >/dev/null && ! command -v wasm-ld-14 >/dev/null; then
  echo "clang and wasm-ld are needed: apt-get install -y --no-install-recommends clang lld" >&2
  exit 1
fi

# -O3 without -ffast-math: the float32 part must keep numpy's exact order of operations, and
# WebAssembly has no fused multiply-add for the compiler to contract into.
for source in wasm/whisper-log-mel.c wasm/k-weighted-energy.c; do
  "$CLANG" --target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -Wl,--no-entry \
    -o "${source%.c}.wasm" "$source"
  echo "built ${source%.c}.wasm ($(stat -c %s "${source%.c}.wasm") bytes)"
done
