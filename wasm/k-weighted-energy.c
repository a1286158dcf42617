/*
 * Mean K-weighted energy (ITU-R BS.1770) of 400 ms blocks, several at once, for the VAD's loudness gate
 * (engine/stages/vad-volume.ts). Compiled to WebAssembly by scripts/build-wasm.sh.
 *
 * Each block is filtered from a zero state by the 4th-order K-weighting filter in direct form II, with
 * the additions in exactly the order libloudness uses (Pipecat's `loudness` package), so that the
 * energies are the ones Pipecat computes: the filter's recursion subtracts the newest state first, and
 * each 100 ms sub-block is summed four squares at a time, then the four sub-blocks newest first.
 *
 * That recursion is one long dependency chain per sample (a multiply and four subtractions), so one
 * block leaves the CPU mostly waiting. Independent blocks (other calls' windows of the same VAD step) go
 * through it side by side instead: two per float64x2 vector, and up to four vectors interleaved. Every
 * lane does exactly the scalar arithmetic.
 */

typedef double f64x2 __attribute__((vector_size(16)));

#define EXPORT(name) __attribute__((export_name(#name))) name
#define MAX_VECTORS 4
#define MAX_BLOCKS (2 * MAX_VECTORS)
#define BLOCK_SAMPLES 6400
#define SUB_BLOCKS 4

/* Written by the wrapper: up to MAX_BLOCKS blocks of BLOCK_SAMPLES float32 samples, block-major. */
static float blocks[MAX_BLOCKS * BLOCK_SAMPLES];
/* b0..b4, a1..a4 of the combined K-weighting filter, filled once by the wrapper. */
static double coefficients[9];
/* Output: the mean K-weighted energy of each block. */
static double energies[MAX_BLOCKS];

float *EXPORT(blocks_ptr)(void) { return blocks; }
double *EXPORT(coefficients_ptr)(void) { return coefficients; }
double *EXPORT(energies_ptr)(void) { return energies; }
int EXPORT(max_blocks)(void) { return MAX_BLOCKS; }
int EXPORT(block_samples)(void) { return BLOCK_SAMPLES; }

#define SPLAT(x) ((f64x2){(x), (x)})

/* Filters `vectors` pairs of blocks (2 * vectors blocks) side by side; `sub_block` samples per sub-block. */
static void filter_blocks(int vectors, int sub_block) {
  const f64x2 b0 = SPLAT(coefficients[0]), b1 = SPLAT(coefficients[1]), b2 = SPLAT(coefficients[2]);
  const f64x2 b3 = SPLAT(coefficients[3]), b4 = SPLAT(coefficients[4]);
  const f64x2 a1 = SPLAT(coefficients[5]), a2 = SPLAT(coefficients[6]), a3 = SPLAT(coefficients[7]), a4 = SPLAT(coefficients[8]);
  f64x2 v1[MAX_VECTORS], v2[MAX_VECTORS], v3[MAX_VECTORS], v4[MAX_VECTORS], sub_sums[MAX_VECTORS][SUB_BLOCKS];
  for (int k = 0; k < vectors; k++) v1[k] = v2[k] = v3[k] = v4[k] = SPLAT(0.0);
  for (int s = 0; s < SUB_BLOCKS; s++) {
    f64x2 sum[MAX_VECTORS];
    for (int k = 0; k < vectors; k++) sum[k] = SPLAT(0.0);
    for (int i = s * sub_block; i < (s + 1) * sub_block; i += 4) {
      for (int k = 0; k < vectors; k++) {
        const float *x0 = blocks + (2 * k) * BLOCK_SAMPLES, *x1 = blocks + (2 * k + 1) * BLOCK_SAMPLES;
        f64x2 y[4];
        for (int j = 0; j < 4; j++) {
          f64x2 x = {(double)x0[i + j], (double)x1[i + j]};
          f64x2 v0 = x - a1 * v1[k] - a2 * v2[k] - a3 * v3[k] - a4 * v4[k];
          y[j] = b0 * v0 + b1 * v1[k] + b2 * v2[k] + b3 * v3[k] + b4 * v4[k];
          v4[k] = v3[k];
          v3[k] = v2[k];
          v2[k] = v1[k];
          v1[k] = v0;
        }
        sum[k] += y[0] * y[0] + y[1] * y[1] + (y[2] * y[2] + y[3] * y[3]);
      }
    }
    for (int k = 0; k < vectors; k++) sub_sums[k][s] = sum[k];
  }
  for (int k = 0; k < vectors; k++) {
    f64x2 total = SPLAT(0.0) + (sub_sums[k][3] + sub_sums[k][2] + (sub_sums[k][1] + sub_sums[k][0]));
    f64x2 mean = total / SPLAT((double)(SUB_BLOCKS * sub_block));
    energies[2 * k] = mean[0];
    energies[2 * k + 1] = mean[1];
  }
}

/*
 * Fills energies[0 .. count) for blocks[0 .. count), each of 4 * sub_block samples (sub_block a multiple
 * of 4, 4 * sub_block <= BLOCK_SAMPLES). Blocks past `count` in the last vector are computed and ignored.
 */
void EXPORT(compute)(int count, int sub_block) {
  if (count <= 0) return;
  if (count > MAX_BLOCKS) count = MAX_BLOCKS;
  const int vectors = (count + 1) / 2;
  /* Specialised so that the compiler keeps every chain in registers. */
  if (vectors == 1) filter_blocks(1, sub_block);
  else if (vectors == 2) filter_blocks(2, sub_block);
  else if (vectors == 3) filter_blocks(3, sub_block);
  else filter_blocks(4, sub_block);
}
