/*
 * Smart Turn v3 input features (Whisper-style log-mel energies) on Pipecat's precision path, compiled to
 * WebAssembly by scripts/build-wasm.sh. Pipecat's reference (`_whisper_features.py`) normalises the
 * waveform in float32 as numpy computes it, then promotes to float64 for the spectrum and the mel
 * projection. This file does the same:
 *
 * - float32 mean and variance with numpy's pairwise summation (same blocks, same eight accumulators, same
 *   order), float32 subtraction, division and square root: bit-identical to numpy's float32 results;
 * - float64 from there on: centred reflect padding, periodic Hann, a 400-point real DFT, power, mel.
 *
 * The DFT is not numpy's pocketfft, so the float64 spectrum differs from numpy's in the last bits (as
 * does OpenBLAS's matrix product for the mel projection); after the final rounding to float32 such
 * differences almost never show. The log10, the clamp and the final float32 rounding are done in the
 * TypeScript wrapper (engine/stages/smart-turn-features.ts), which also fills every table used here.
 *
 * The 400-point real DFT packs the frame as 200 complex points z[n] = x[2n] + i x[2n+1], runs a
 * Stockham (self-sorting) FFT of radices 4, 2, 5, 5 and separates the even and odd halves. Two frames go
 * through it at once, one per lane of a float64x2 vector: every lane does exactly the scalar arithmetic.
 *
 * Freestanding: no libc, no allocation; every buffer is static, so the memory never grows and the
 * wrapper's views stay valid.
 */

typedef double f64x2 __attribute__((vector_size(16)));

#define CLIP_SAMPLES 128000
#define FRAME_SAMPLES 400
#define HALF_FRAME 200
#define HOP_SAMPLES 160
#define CENTER_PAD 200
#define FRAMES 800
#define BINS 201
#define MELS 80
#define MAX_MEL_WEIGHTS (2 * BINS)

#define SPLAT(x) ((f64x2){(x), (x)})
#define EXPORT(name) __attribute__((export_name(#name))) name

/* The clip: the wrapper writes its last `kept` samples at the end, `compute` zeroes the front. */
static float clip[CLIP_SAMPLES];
/* Squared deviations from the mean, for the variance. */
static float squares[CLIP_SAMPLES];
/* Normalised clip in float64 with CENTER_PAD reflected samples on each side. */
static double padded[CLIP_SAMPLES + 2 * CENTER_PAD];
/* Output: mel energies, mel-major [MELS][FRAMES]. */
static double energies[MELS * FRAMES];

/* Tables filled once by the wrapper. */
static double hann[FRAME_SAMPLES];
/* e^{-2 pi i k / 400} for the even/odd separation, k = 0..200. */
static double split_re[HALF_FRAME + 1], split_im[HALF_FRAME + 1];
/* Stage twiddles, index q * (radix - 1) + (r - 1): e^{-2 pi i q r / n}. */
static double twiddle4_re[50 * 3], twiddle4_im[50 * 3];
static double twiddle2_re[25], twiddle2_im[25];
static double twiddle5_re[5 * 4], twiddle5_im[5 * 4];
/* cos(2 pi/5), cos(4 pi/5), sin(2 pi/5), sin(4 pi/5). */
static double radix5_constants[4];
/* Sparse triangular filters: filter m has mel_count[m] weights from bin mel_first[m], at mel_offset[m]. */
static double mel_weights[MAX_MEL_WEIGHTS];
static int mel_first[MELS], mel_count[MELS], mel_offset[MELS];

/* FFT work arrays: two frames, one per lane. */
static f64x2 a_re[HALF_FRAME], a_im[HALF_FRAME], b_re[HALF_FRAME], b_im[HALF_FRAME], power[BINS];

float *EXPORT(clip_ptr)(void) { return clip; }
double *EXPORT(energies_ptr)(void) { return energies; }
double *EXPORT(hann_ptr)(void) { return hann; }
double *EXPORT(split_re_ptr)(void) { return split_re; }
double *EXPORT(split_im_ptr)(void) { return split_im; }
double *EXPORT(twiddle4_re_ptr)(void) { return twiddle4_re; }
double *EXPORT(twiddle4_im_ptr)(void) { return twiddle4_im; }
double *EXPORT(twiddle2_re_ptr)(void) { return twiddle2_re; }
double *EXPORT(twiddle2_im_ptr)(void) { return twiddle2_im; }
double *EXPORT(twiddle5_re_ptr)(void) { return twiddle5_re; }
double *EXPORT(twiddle5_im_ptr)(void) { return twiddle5_im; }
double *EXPORT(radix5_constants_ptr)(void) { return radix5_constants; }
double *EXPORT(mel_weights_ptr)(void) { return mel_weights; }
int *EXPORT(mel_first_ptr)(void) { return mel_first; }
int *EXPORT(mel_count_ptr)(void) { return mel_count; }
int *EXPORT(mel_offset_ptr)(void) { return mel_offset; }

/* numpy's float32 pairwise sum (loops_utils.h: blocks of at most 128, eight accumulators, halves split
   at a multiple of 8). The order of the additions is what makes the result bit-identical. */
static float pairwise_sum(const float *a, int n) {
  if (n < 8) {
    float sum = 0.f;
    for (int i = 0; i < n; i++) sum += a[i];
    return sum;
  }
  if (n <= 128) {
    float r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7];
    int i;
    for (i = 8; i < n - (n % 8); i += 8) {
      r0 += a[i];
      r1 += a[i + 1];
      r2 += a[i + 2];
      r3 += a[i + 3];
      r4 += a[i + 4];
      r5 += a[i + 5];
      r6 += a[i + 6];
      r7 += a[i + 7];
    }
    float sum = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++) sum += a[i];
    return sum;
  }
  int half = n / 2;
  half -= half % 8;
  return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

static inline void rotate(f64x2 *out_re, f64x2 *out_im, f64x2 re, f64x2 im, double w_re, double w_im) {
  *out_re = re * SPLAT(w_re) - im * SPLAT(w_im);
  *out_im = re * SPLAT(w_im) + im * SPLAT(w_re);
}

/* Stage 1: radix 4, n = 200, stride 1 (a -> b). */
static void stage_radix4(void) {
  for (int q = 0; q < 50; q++) {
    const int w = q * 3, o = 4 * q;
    f64x2 x0r = a_re[q], x0i = a_im[q], x1r = a_re[q + 50], x1i = a_im[q + 50];
    f64x2 x2r = a_re[q + 100], x2i = a_im[q + 100], x3r = a_re[q + 150], x3i = a_im[q + 150];
    f64x2 s02r = x0r + x2r, s02i = x0i + x2i, d02r = x0r - x2r, d02i = x0i - x2i;
    f64x2 s13r = x1r + x3r, s13i = x1i + x3i, d13r = x1r - x3r, d13i = x1i - x3i;
    b_re[o] = s02r + s13r;
    b_im[o] = s02i + s13i;
    rotate(&b_re[o + 1], &b_im[o + 1], d02r + d13i, d02i - d13r, twiddle4_re[w], twiddle4_im[w]);
    rotate(&b_re[o + 2], &b_im[o + 2], s02r - s13r, s02i - s13i, twiddle4_re[w + 1], twiddle4_im[w + 1]);
    rotate(&b_re[o + 3], &b_im[o + 3], d02r - d13i, d02i + d13r, twiddle4_re[w + 2], twiddle4_im[w + 2]);
  }
}

/* Stage 2: radix 2, n = 50, stride 4 (b -> a). */
static void stage_radix2(void) {
  for (int q = 0; q < 25; q++) {
    for (int t = 0; t < 4; t++) {
      const int i0 = t + 4 * q, i1 = i0 + 100, o = t + 8 * q;
      f64x2 x0r = b_re[i0], x0i = b_im[i0], x1r = b_re[i1], x1i = b_im[i1];
      a_re[o] = x0r + x1r;
      a_im[o] = x0i + x1i;
      rotate(&a_re[o + 4], &a_im[o + 4], x0r - x1r, x0i - x1i, twiddle2_re[q], twiddle2_im[q]);
    }
  }
}

/* One radix-5 butterfly: inputs at in + k*span, outputs at out + r*stride, rotated by twiddle row q
   unless this is the last stage (q < 0). */
static inline void butterfly5(const f64x2 *x_re, const f64x2 *x_im, f64x2 *y_re, f64x2 *y_im, int in, int span, int out, int stride, int q) {
  const f64x2 c1 = SPLAT(radix5_constants[0]), c2 = SPLAT(radix5_constants[1]);
  const f64x2 s1 = SPLAT(radix5_constants[2]), s2 = SPLAT(radix5_constants[3]);
  f64x2 x0r = x_re[in], x0i = x_im[in];
  f64x2 x1r = x_re[in + span], x1i = x_im[in + span], x2r = x_re[in + 2 * span], x2i = x_im[in + 2 * span];
  f64x2 x3r = x_re[in + 3 * span], x3i = x_im[in + 3 * span], x4r = x_re[in + 4 * span], x4i = x_im[in + 4 * span];
  f64x2 t1r = x1r + x4r, t1i = x1i + x4i, t2r = x2r + x3r, t2i = x2i + x3i;
  f64x2 t3r = x1r - x4r, t3i = x1i - x4i, t4r = x2r - x3r, t4i = x2i - x3i;
  y_re[out] = x0r + t1r + t2r;
  y_im[out] = x0i + t1i + t2i;
  f64x2 m1r = x0r + c1 * t1r + c2 * t2r, m1i = x0i + c1 * t1i + c2 * t2i;
  f64x2 m2r = x0r + c2 * t1r + c1 * t2r, m2i = x0i + c2 * t1i + c1 * t2i;
  f64x2 n1r = s1 * t3r + s2 * t4r, n1i = s1 * t3i + s2 * t4i;
  f64x2 n2r = s2 * t3r - s1 * t4r, n2i = s2 * t3i - s1 * t4i;
  /* X1 = m1 - i n1, X2 = m2 - i n2, X3 = m2 + i n2, X4 = m1 + i n1. */
  f64x2 re[4] = {m1r + n1i, m2r + n2i, m2r - n2i, m1r - n1i};
  f64x2 im[4] = {m1i - n1r, m2i - n2r, m2i + n2r, m1i + n1r};
  for (int r = 0; r < 4; r++) {
    const int o = out + (r + 1) * stride;
    if (q < 0) {
      y_re[o] = re[r];
      y_im[o] = im[r];
    } else {
      rotate(&y_re[o], &y_im[o], re[r], im[r], twiddle5_re[q * 4 + r], twiddle5_im[q * 4 + r]);
    }
  }
}

/* Stage 3: radix 5, n = 25, stride 8 (a -> b). Stage 4: radix 5, n = 5, stride 40, no twiddles (b -> a). */
static void stage_radix5(void) {
  for (int q = 0; q < 5; q++)
    for (int t = 0; t < 8; t++) butterfly5(a_re, a_im, b_re, b_im, t + 8 * q, 40, t + 40 * q, 8, q);
}
static void stage_radix5_last(void) {
  for (int t = 0; t < 40; t++) butterfly5(b_re, b_im, a_re, a_im, t, 40, t, 40, -1);
}

/* Mel energies of frames f and g (one per lane). */
static void frame_pair(int f, int g) {
  const double *x = padded + f * HOP_SAMPLES, *y = padded + g * HOP_SAMPLES;
  for (int n = 0; n < HALF_FRAME; n++) {
    a_re[n] = (f64x2){x[2 * n] * hann[2 * n], y[2 * n] * hann[2 * n]};
    a_im[n] = (f64x2){x[2 * n + 1] * hann[2 * n + 1], y[2 * n + 1] * hann[2 * n + 1]};
  }
  stage_radix4();
  stage_radix2();
  stage_radix5();
  stage_radix5_last();

  /* X[k] = E[k] + e^{-2 pi i k/400} O[k], E = (Z[k] + conj Z[200-k]) / 2, O = (Z[k] - conj Z[200-k]) / 2i. */
  f64x2 dc = a_re[0] + a_im[0], nyquist = a_re[0] - a_im[0];
  power[0] = dc * dc;
  power[HALF_FRAME] = nyquist * nyquist;
  for (int k = 1; k < HALF_FRAME; k++) {
    f64x2 pr = a_re[k], pi = a_im[k], qr = a_re[HALF_FRAME - k], qi = -a_im[HALF_FRAME - k];
    f64x2 even_re = SPLAT(0.5) * (pr + qr), even_im = SPLAT(0.5) * (pi + qi);
    f64x2 odd_re = SPLAT(0.5) * (pi - qi), odd_im = SPLAT(-0.5) * (pr - qr);
    f64x2 w_re = SPLAT(split_re[k]), w_im = SPLAT(split_im[k]);
    f64x2 re = even_re + w_re * odd_re - w_im * odd_im;
    f64x2 im = even_im + w_re * odd_im + w_im * odd_re;
    power[k] = re * re + im * im;
  }

  for (int m = 0; m < MELS; m++) {
    f64x2 energy = SPLAT(0.0);
    const double *w = mel_weights + mel_offset[m];
    const f64x2 *p = power + mel_first[m];
    for (int j = 0; j < mel_count[m]; j++) energy += SPLAT(w[j]) * p[j];
    energies[m * FRAMES + f] = energy[0];
    energies[m * FRAMES + g] = energy[1];
  }
}

/*
 * The clip's last `kept` samples are in clip[CLIP_SAMPLES - kept ..). Pads them at the front with zeros to 8 s,
 * normalises in float32 as numpy does, and fills `energies` for the 800 kept frames. Frames lying wholly
 * in the (constant) front padding have the same spectrum: one is computed and copied. Returns how many
 * leading frames are such copies of frame 0.
 */
int EXPORT(compute)(int kept) {
  if (kept < 0) kept = 0;
  if (kept > CLIP_SAMPLES) kept = CLIP_SAMPLES;
  const int front = CLIP_SAMPLES - kept;
  for (int i = 0; i < front; i++) clip[i] = 0.f;

  /* np.mean / np.var on float32: float32 sums, divided by the count (exact in float32). */
  const float mean = pairwise_sum(clip, CLIP_SAMPLES) / (float)CLIP_SAMPLES;
  for (int i = 0; i < CLIP_SAMPLES; i++) {
    const float d = clip[i] - mean;
    squares[i] = d * d;
  }
  const float variance = pairwise_sum(squares, CLIP_SAMPLES) / (float)CLIP_SAMPLES;
  /* numpy 2 promotes `float32 + 1e-7` to float32 (NEP 50). */
  const float deviation = __builtin_sqrtf(variance + 1e-7f);
  for (int i = 0; i < CLIP_SAMPLES; i++) padded[CENTER_PAD + i] = (double)((clip[i] - mean) / deviation);
  /* numpy "reflect": mirror about the edge sample without repeating it. */
  const int last = CENTER_PAD + CLIP_SAMPLES - 1;
  for (int j = 1; j <= CENTER_PAD; j++) {
    padded[CENTER_PAD - j] = padded[CENTER_PAD + j];
    padded[last + j] = padded[last - j];
  }

  const int copies = front > CENTER_PAD ? (front - CENTER_PAD) / HOP_SAMPLES + 1 : 0;
  const int first = copies > 0 ? copies - 1 : 0;
  for (int f = first; f < FRAMES; f += 2) frame_pair(f, f + 1 < FRAMES ? f + 1 : f);
  for (int f = 0; f < first; f++)
    for (int m = 0; m < MELS; m++) energies[m * FRAMES + f] = energies[m * FRAMES + first];
  return copies;
}
