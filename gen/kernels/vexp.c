/* exp for the kernels: one fixed algorithm, vectorised (AVX-512, AVX2) with
 * a scalar fallback that performs the same IEEE operations, so every path,
 * lane and thread gives the same bytes for the same x.
 *
 * Algorithm (Cephes expf, evaluated with fused multiply-adds):
 *   xc = clamp(x, -104, 89)              (NaN propagates)
 *   n  = round(xc * log2(e))             (fma with the 1.5*2^23 shifter)
 *   r  = xc - n*ln2_hi - n*ln2_lo        (two fmas; |r| <= ln2/2)
 *   p  = degree-5 Horner polynomial in r (fmas), e^r = p*r^2 + r + 1
 *   exp(x) = e^r * 2^(n - n/2) * 2^(n/2) (two exact-or-once-rounded scalings,
 *                                         so results between 2^-149 and
 *                                         2^-126 round correctly, and
 *                                         x > 88.72 gives +inf, x < -103.9 0)
 * Accuracy: at most 2 ulp from the correctly rounded exp over the finite
 * range (tested over a sweep; typically 1 ulp), +inf / 0 / NaN as expf.
 * The scalar fallback uses fmaf, which is exact-rounded like the FMA
 * instructions, so it matches the vector paths bit for bit.
 *
 * Reference: S. L. Moshier, Cephes Math Library, expf.c (coefficients);
 * W. J. Cody and W. Waite, "Software Manual for the Elementary Functions"
 * (1980), range reduction. */
#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MS_HAVE_X86 1
#endif

#include "core/pool.h"
#include "kern_internal.h"

#define EXP_HI 89.0f
#define EXP_LO -104.0f
#define LOG2E 1.44269504088896341f
#define SHIFTER 12582912.0f /* 1.5 * 2^23 */
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f

static inline float pow2i(int k) { /* 2^k for -126 <= k <= 127 */
  uint32_t u = (uint32_t)(k + 127) << 23;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

float ms__expf(float x) {
  if (x != x) return x + x;
  float xc = x < EXP_HI ? x : EXP_HI;
  xc = xc > EXP_LO ? xc : EXP_LO;
  const float n = fmaf(xc, LOG2E, SHIFTER) - SHIFTER;
  float r = fmaf(n, -LN2_HI, xc);
  r = fmaf(n, -LN2_LO, r);
  float p = P0;
  p = fmaf(p, r, P1);
  p = fmaf(p, r, P2);
  p = fmaf(p, r, P3);
  p = fmaf(p, r, P4);
  p = fmaf(p, r, P5);
  const float r2 = r * r;
  float e = fmaf(p, r2, r) + 1.0f;
  const int k = (int)n, k1 = k >> 1, k2 = k - k1;
  return e * pow2i(k1) * pow2i(k2);
}

static inline float silu1(float v) { return v / (1.0f + ms__expf(-v)); }

/* lane[0] after the fixed tree l += l+8, +4, +2, +1 over 16 lanes. */
static inline float sum16(float lane[16]) {
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; l++) lane[l] += lane[l + w];
  return lane[0];
}

#ifdef MS_HAVE_X86
/* The steps of ms__expf on one vector of W bits (exp16: AVX-512, exp8:
 * AVX2). NaN lanes: the conversion gives INT_MIN and garbage scales, but e
 * is NaN and stays NaN. */
#define EXP_VEC(NAME, TARGET, W)                                                                 \
  __attribute__((target(TARGET))) static inline __m##W NAME(__m##W x) {                          \
    __m##W xc =                                                                                   \
        _mm##W##_max_ps(_mm##W##_set1_ps(EXP_LO), _mm##W##_min_ps(_mm##W##_set1_ps(EXP_HI), x));  \
    const __m##W sh = _mm##W##_set1_ps(SHIFTER);                                                  \
    const __m##W n = _mm##W##_sub_ps(_mm##W##_fmadd_ps(xc, _mm##W##_set1_ps(LOG2E), sh), sh);     \
    __m##W r = _mm##W##_fmadd_ps(n, _mm##W##_set1_ps(-LN2_HI), xc);                               \
    r = _mm##W##_fmadd_ps(n, _mm##W##_set1_ps(-LN2_LO), r);                                       \
    __m##W p = _mm##W##_set1_ps(P0);                                                              \
    p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(P1));                                            \
    p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(P2));                                            \
    p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(P3));                                            \
    p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(P4));                                            \
    p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(P5));                                            \
    const __m##W r2 = _mm##W##_mul_ps(r, r);                                                      \
    __m##W e = _mm##W##_add_ps(_mm##W##_fmadd_ps(p, r2, r), _mm##W##_set1_ps(1.0f));              \
    const __m##W##i k = _mm##W##_cvtps_epi32(n), k1 = _mm##W##_srai_epi32(k, 1);                  \
    const __m##W##i k2 = _mm##W##_sub_epi32(k, k1), b = _mm##W##_set1_epi32(127);                 \
    e = _mm##W##_mul_ps(                                                                          \
        e, _mm##W##_castsi##W##_ps(_mm##W##_slli_epi32(_mm##W##_add_epi32(k1, b), 23)));          \
    return _mm##W##_mul_ps(                                                                       \
        e, _mm##W##_castsi##W##_ps(_mm##W##_slli_epi32(_mm##W##_add_epi32(k2, b), 23)));          \
  }
EXP_VEC(exp16, "avx512f,fma", 512)
EXP_VEC(exp8, "avx2,fma", 256)
#undef EXP_VEC

/* Lanes 0 .. n-1 (n < 8) of an AVX2 mask. */
__attribute__((target("avx2"))) static inline __m256i mask8(size_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

/* The mask of lanes 0 .. n-1 (all lanes for n >= 16 on AVX-512, n >= 8 on
 * AVX2), and masked loads and stores by it. */
__attribute__((target("avx512f"))) static inline __mmask16 tail16(size_t n) {
  return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}
__attribute__((target("avx2"))) static inline __m256i tail8(size_t n) {
  return n >= 8 ? _mm256_set1_epi32(-1) : mask8(n);
}
#define LD512(m, p) _mm512_maskz_loadu_ps(m, p)
#define ST512(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define LD256(m, p) _mm256_maskload_ps(p, m)
#define ST256(p, m, v) _mm256_maskstore_ps(p, m, v)

/* exp (silu = 0) or x / (1 + exp(-x)) (silu = 1) over y[0 .. n), L lanes a
 * step, the tail through the mask TAIL. */
#define EXP_ARRAY(NAME, TARGET, W, L, TAIL, EXPV)                                                 \
  __attribute__((target(TARGET))) static void NAME(float *y, const float *x, size_t n,           \
                                                   int silu) {                                    \
    for (size_t i = 0; i < n; i += L) {                                                           \
      const __typeof__(TAIL(0)) m = TAIL(n - i);                                                  \
      const __m##W v = LD##W(m, x + i);                                                           \
      __m##W r;                                                                                   \
      if (silu)                                                                                   \
        r = _mm##W##_div_ps(                                                                      \
            v, _mm##W##_add_ps(_mm##W##_set1_ps(1.0f),                                            \
                               EXPV(_mm##W##_sub_ps(_mm##W##_setzero_ps(), v))));                 \
      else                                                                                        \
        r = EXPV(v);                                                                              \
      ST##W(y + i, m, r);                                                                         \
    }                                                                                             \
  }
EXP_ARRAY(exp_avx512, "avx512f,fma", 512, 16, tail16, exp16)
EXP_ARRAY(exp_avx2, "avx2,fma", 256, 8, tail8, exp8)
#undef EXP_ARRAY

__attribute__((target("avx512f,fma"))) static float exp_sub_sum_avx512(float *y, const float *x,
                                                                       size_t n, float mx) {
  __m512 acc = _mm512_setzero_ps();
  const __m512 vm = _mm512_set1_ps(mx);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    const __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(LD512(m, x + i), vm)));
    ST512(y + i, m, e);
    acc = _mm512_add_ps(acc, e);
  }
  float lane[16];
  _mm512_storeu_ps(lane, acc);
  return sum16(lane);
}

__attribute__((target("avx2,fma"))) static float exp_sub_sum_avx2(float *y, const float *x,
                                                                  size_t n, float mx) {
  __m256 lo = _mm256_setzero_ps(), hi = lo;
  const __m256 vm = _mm256_set1_ps(mx);
  for (size_t i = 0; i < n; i += 8) {
    const __m256i m = tail8(n - i);
    __m256 e = exp8(_mm256_sub_ps(LD256(m, x + i), vm));
    e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
    ST256(y + i, m, e);
    if ((i / 8) % 2 == 0)
      lo = _mm256_add_ps(lo, e);
    else
      hi = _mm256_add_ps(hi, e);
  }
  float lane[16];
  _mm256_storeu_ps(lane, lo);
  _mm256_storeu_ps(lane + 8, hi);
  return sum16(lane);
}
#endif

/* exp (silu = 0) or silu (silu = 1) over y[0 .. n) on this CPU's path. */
static inline __attribute__((always_inline)) void exp_or_silu(float *y, const float *x, size_t n,
                                                              int silu) {
#ifdef MS_HAVE_X86
  const ms_kernel_isa isa = ms_kernel_isa_detect();
  if (isa == MS_KERNEL_ISA_AVX512) {
    exp_avx512(y, x, n, silu);
    return;
  }
  if (isa == MS_KERNEL_ISA_AVX2) {
    exp_avx2(y, x, n, silu);
    return;
  }
#endif
  if (silu)
    for (size_t i = 0; i < n; i++) y[i] = silu1(x[i]);
  else
    for (size_t i = 0; i < n; i++) y[i] = ms__expf(x[i]);
}

void ms__exp_array(float *y, const float *x, size_t n) { exp_or_silu(y, x, n, 0); }

void ms__silu_array(float *y, const float *x, size_t n) { exp_or_silu(y, x, n, 1); }

float ms__exp_sub_sum(float *y, const float *x, size_t n, float m) {
#ifdef MS_HAVE_X86
  const ms_kernel_isa isa = ms_kernel_isa_detect();
  if (isa == MS_KERNEL_ISA_AVX512) return exp_sub_sum_avx512(y, x, n, m);
  if (isa == MS_KERNEL_ISA_AVX2) return exp_sub_sum_avx2(y, x, n, m);
#endif
  float lane[16] = {0};
  for (size_t j = 0; j < n; j++) {
    const float e = ms__expf(x[j] - m);
    y[j] = e;
    lane[j & 15] += e;
  }
  return sum16(lane);
}

void ms_exp_ref(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = (float)exp((double)x[i]);
}

#define ARRAY_CHUNK 4096

typedef struct {
  float *y;
  const float *x;
  size_t n;
  void (*fn)(float *, const float *, size_t);
} array_job;

/* Chunks [c0, c1) of ARRAY_CHUNK floats. */
static void array_range(void *ctx, size_t c0, size_t c1) {
  const array_job *j = ctx;
  for (size_t c = c0; c < c1; c++) {
    const size_t i0 = c * ARRAY_CHUNK;
    j->fn(j->y + i0, j->x + i0, j->n - i0 < ARRAY_CHUNK ? j->n - i0 : ARRAY_CHUNK);
  }
}

void ms__parallel_array(float *y, const float *x, size_t n,
                        void (*fn)(float *, const float *, size_t)) {
  array_job j = {y, x, n, fn};
  ms__parallel_range((n + ARRAY_CHUNK - 1) / ARRAY_CHUNK, 8, array_range, &j);
}

void ms_exp(float *y, const float *x, size_t n) { ms__parallel_array(y, x, n, ms__exp_array); }
