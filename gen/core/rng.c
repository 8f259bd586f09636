/* Philox4x32-10 keyed by xxh64, batched forms of its draws (AVX2 lanes when
 * the CPU has them, same bits as the scalar calls), and a gsl_rng adapter.
 *
 * Invariant: every output is a pure function of (key, index, lane); see
 * medsynth/rng.h for the exact mapping, which is part of the reproducibility
 * contract (docs/reproducibility.md) and must not change within a major
 * version. */
#include "medsynth/rng.h"
#include "medsynth/rng_gsl.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

/* MS_RNG_NO_SIMD: the portable scalar code only (what a build for another
 * CPU than x86-64 compiles; tests/test_rng.c runs against both) */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MS_RNG_NO_SIMD)
#include <immintrin.h>
#define MS_RNG_HAVE_AVX2 1
#endif

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

uint64_t ms_rng_stream(const char *name) { return XXH64(name, strlen(name), 0); }

uint64_t ms_rng_stream_n(const char *name, size_t len) { return XXH64(name, len, 0); }

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t ms_rng_stream_sub(uint64_t parent, uint64_t tag) {
  unsigned char buf[16];
  put_le64(buf, parent);
  put_le64(buf + 8, tag);
  return XXH64(buf, sizeof buf, 0);
}

ms_rng_key ms_rng_key_make(uint64_t seed, uint64_t stream) {
  uint64_t h = ms_rng_stream_sub(seed, stream);
  ms_rng_key k = {(uint32_t)h, (uint32_t)(h >> 32)};
  return k;
}

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

ms_rng_block ms_rng_philox(ms_rng_key key, uint64_t index, uint64_t lane) {
  uint32_t c0 = (uint32_t)index, c1 = (uint32_t)(index >> 32);
  uint32_t c2 = (uint32_t)lane, c3 = (uint32_t)(lane >> 32);
  uint32_t k0 = key.k0, k1 = key.k1;
  for (int r = 0; r < 10; r++) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(PHILOX_M0, c0, &hi0, &lo0);
    mulhilo(PHILOX_M1, c2, &hi1, &lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0;
    uint32_t n1 = lo1;
    uint32_t n2 = hi0 ^ c3 ^ k1;
    uint32_t n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  ms_rng_block b = {{c0, c1, c2, c3}};
  return b;
}

static inline double u64_to_open01(uint64_t x) {
  return ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

uint64_t ms_rng_u64(ms_rng_key key, uint64_t index, uint64_t lane) {
  ms_rng_block b = ms_rng_philox(key, index, lane);
  return (uint64_t)b.v[0] | ((uint64_t)b.v[1] << 32);
}

double ms_rng_uniform(ms_rng_key key, uint64_t index, uint64_t lane) {
  return u64_to_open01(ms_rng_u64(key, index, lane));
}

static void box_muller_w(uint64_t w0, uint64_t w1, double *z0, double *z1) {
  double u1 = u64_to_open01(w0);
  double u2 = u64_to_open01(w1);
  double r = sqrt(-2.0 * log(u1));
  double th = 2.0 * M_PI * u2;
  *z0 = r * cos(th);
  if (z1) *z1 = r * sin(th);
}

static void box_muller(ms_rng_block b, double *z0, double *z1) {
  box_muller_w((uint64_t)b.v[0] | ((uint64_t)b.v[1] << 32),
               (uint64_t)b.v[2] | ((uint64_t)b.v[3] << 32), z0, z1);
}

double ms_rng_normal(ms_rng_key key, uint64_t index, uint64_t lane) {
  double z;
  box_muller(ms_rng_philox(key, index, lane), &z, NULL);
  return z;
}

uint64_t ms_rng_below(ms_rng_key key, uint64_t index, uint64_t lane, uint64_t n) {
  /* Lemire-style threshold rejection on 64-bit words; each rejected word
   * moves on to the next block lane, so the result stays keyed. */
  uint64_t threshold = (0 - n) % n;
  for (uint64_t l = lane;; l += 1) {
    ms_rng_block b = ms_rng_philox(key, index, l);
    uint64_t w[2] = {(uint64_t)b.v[0] | ((uint64_t)b.v[1] << 32),
                     (uint64_t)b.v[2] | ((uint64_t)b.v[3] << 32)};
    for (int i = 0; i < 2; i++) {
      unsigned __int128 m = (unsigned __int128)w[i] * n;
      if ((uint64_t)m >= threshold) return (uint64_t)(m >> 64);
    }
  }
}

/* Philox blocks over many rows. With AVX2 (checked at run time) four
 * counters run through the rounds at once, twice interleaved: each 32-bit
 * word sits in a 64-bit lane with a zero upper half, so a round is one
 * vpmuludq per product plus shifts, masks and xors, the same integer
 * operations as ms_rng_philox; with AVX-512 eight per vector. Words are
 * turned into doubles by the scalar formulas (uniforms on AVX-512 by an
 * exact vector conversion and the same add and multiply), so every path
 * gives the scalar bits. */
/* Rows [0, m) with m the largest multiple of 2L <= n, L counters per
 * vector (AVX2: 4, AVX-512: 8), two vectors interleaved: w[i] = words 0-1
 * of row i's block as one u64 and, when w2 is not NULL, w2[i] = words 2-3.
 * W is the vector width in bits, SET1 the broadcast of a 64-bit integer;
 * the AVX2 and AVX-512 functions are this body with their intrinsics. */
#define PHILOX_SIMD(NAME, TARGET, W, L, SET1)                                                     \
  __attribute__((target(TARGET))) static size_t NAME(ms_rng_key key, const uint64_t *index,        \
                                                     uint64_t lane, uint64_t *w, uint64_t *w2,     \
                                                     size_t n) {                                   \
    const __m##W##i m0 = SET1(PHILOX_M0), m1 = SET1(PHILOX_M1);                                   \
    const __m##W##i lo32 = SET1(0xffffffffll);                                                     \
    const __m##W##i c2i = SET1((long long)(uint32_t)lane);                                         \
    const __m##W##i c3i = SET1((long long)(uint32_t)(lane >> 32));                                 \
    size_t i = 0;                                                                                  \
    for (; i + 2 * L <= n; i += 2 * L) {                                                           \
      __m##W##i xa = _mm##W##_loadu_si##W((const void *)(index + i));                             \
      __m##W##i xb = _mm##W##_loadu_si##W((const void *)(index + i + L));                         \
      __m##W##i a0 = _mm##W##_and_si##W(xa, lo32), a1 = _mm##W##_srli_epi64(xa, 32), a2 = c2i,    \
                a3 = c3i;                                                                          \
      __m##W##i b0 = _mm##W##_and_si##W(xb, lo32), b1 = _mm##W##_srli_epi64(xb, 32), b2 = c2i,    \
                b3 = c3i;                                                                          \
      uint32_t k0 = key.k0, k1 = key.k1;                                                           \
      for (int r = 0; r < 10; r++) {                                                               \
        __m##W##i K0 = SET1((long long)k0), K1 = SET1((long long)k1);                              \
        __m##W##i pa0 = _mm##W##_mul_epu32(m0, a0), pa1 = _mm##W##_mul_epu32(m1, a2);             \
        __m##W##i pb0 = _mm##W##_mul_epu32(m0, b0), pb1 = _mm##W##_mul_epu32(m1, b2);             \
        __m##W##i na0 =                                                                            \
            _mm##W##_xor_si##W(_mm##W##_xor_si##W(_mm##W##_srli_epi64(pa1, 32), a1), K0);          \
        __m##W##i na2 =                                                                            \
            _mm##W##_xor_si##W(_mm##W##_xor_si##W(_mm##W##_srli_epi64(pa0, 32), a3), K1);          \
        __m##W##i nb0 =                                                                            \
            _mm##W##_xor_si##W(_mm##W##_xor_si##W(_mm##W##_srli_epi64(pb1, 32), b1), K0);          \
        __m##W##i nb2 =                                                                            \
            _mm##W##_xor_si##W(_mm##W##_xor_si##W(_mm##W##_srli_epi64(pb0, 32), b3), K1);          \
        a1 = _mm##W##_and_si##W(pa1, lo32);                                                        \
        a3 = _mm##W##_and_si##W(pa0, lo32);                                                        \
        b1 = _mm##W##_and_si##W(pb1, lo32);                                                        \
        b3 = _mm##W##_and_si##W(pb0, lo32);                                                        \
        a0 = na0;                                                                                  \
        a2 = na2;                                                                                  \
        b0 = nb0;                                                                                  \
        b2 = nb2;                                                                                  \
        k0 += PHILOX_W0;                                                                           \
        k1 += PHILOX_W1;                                                                           \
      }                                                                                            \
      _mm##W##_storeu_si##W((void *)(w + i), _mm##W##_or_si##W(a0, _mm##W##_slli_epi64(a1, 32)));  \
      _mm##W##_storeu_si##W((void *)(w + i + L),                                                   \
                            _mm##W##_or_si##W(b0, _mm##W##_slli_epi64(b1, 32)));                   \
      if (w2) {                                                                                    \
        _mm##W##_storeu_si##W((void *)(w2 + i),                                                    \
                              _mm##W##_or_si##W(a2, _mm##W##_slli_epi64(a3, 32)));                 \
        _mm##W##_storeu_si##W((void *)(w2 + i + L),                                                \
                              _mm##W##_or_si##W(b2, _mm##W##_slli_epi64(b3, 32)));                 \
      }                                                                                            \
    }                                                                                              \
    return i;                                                                                      \
  }

#ifdef MS_RNG_HAVE_AVX2
PHILOX_SIMD(philox_avx2, "avx2", 256, 4, _mm256_set1_epi64x)
PHILOX_SIMD(philox_avx512, "avx512f", 512, 8, _mm512_set1_epi64)

/* u64_to_open01 over w[0..m), m a multiple of 8: the conversion of
 * x >> 11 < 2^53 is exact, then the same add and multiply. */
__attribute__((target("avx512f,avx512dq"))) static void open01_avx512(const uint64_t *w,
                                                                       double *out, size_t m) {
  const __m512d half = _mm512_set1_pd(0.5), sc = _mm512_set1_pd(1.0 / 9007199254740992.0);
  for (size_t j = 0; j < m; j += 8) {
    __m512d x = _mm512_cvtepu64_pd(_mm512_srli_epi64(_mm512_loadu_si512((const void *)(w + j)), 11));
    _mm512_storeu_pd(out + j, _mm512_mul_pd(_mm512_add_pd(x, half), sc));
  }
}

static int have_avx512(void) {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}
#endif
#undef PHILOX_SIMD

/* Rows staged per philox_avx2 call before conversion to doubles. */
#define MS_RNG_STAGE 256

void ms_rng_u64_n(ms_rng_key key, const uint64_t *index, uint64_t lane, uint64_t *out, size_t n) {
  size_t i = 0;
#ifdef MS_RNG_HAVE_AVX2
  if (have_avx512())
    i = philox_avx512(key, index, lane, out, NULL, n);
  else if (__builtin_cpu_supports("avx2"))
    i = philox_avx2(key, index, lane, out, NULL, n);
#endif
  for (; i < n; i++) out[i] = ms_rng_u64(key, index[i], lane);
}

#ifdef MS_RNG_HAVE_AVX2
/* Uniforms (normal = 0) or normals (normal = 1, both words of a row through
 * Box-Muller, the sine partners into sine unless it is NULL) for rows 0 ..
 * r-1 through philox_avx2 in stages; returns r (the caller draws the
 * remaining rows one by one, with identical bits). */
static size_t staged_avx2(ms_rng_key key, const uint64_t *index, uint64_t lane, double *out,
                          double *sine, size_t n, int normal) {
  uint64_t w[MS_RNG_STAGE], w2[MS_RNG_STAGE];
  size_t i = 0;
  int wide = have_avx512();
  while (n - i >= 8) {
    size_t m = n - i < MS_RNG_STAGE ? n - i : MS_RNG_STAGE;
    size_t done = wide && m >= 16 ? philox_avx512(key, index + i, lane, w, normal ? w2 : NULL, m)
                                  : philox_avx2(key, index + i, lane, w, normal ? w2 : NULL, m);
    if (normal && sine)
      for (size_t j = 0; j < done; j++) box_muller_w(w[j], w2[j], &out[i + j], &sine[i + j]);
    else if (normal)
      for (size_t j = 0; j < done; j++) box_muller_w(w[j], w2[j], &out[i + j], NULL);
    else if (wide)
      open01_avx512(w, out + i, done);
    else
      for (size_t j = 0; j < done; j++) out[i + j] = u64_to_open01(w[j]);
    i += done;
  }
  return i;
}
#endif

void ms_rng_normal2(ms_rng_key key, uint64_t index, uint64_t lane, double *z0, double *z1) {
  box_muller(ms_rng_philox(key, index, lane), z0, z1);
}

void ms_rng_normal2_n(ms_rng_key key, const uint64_t *index, uint64_t lane, double *z0, double *z1,
                      size_t n) {
  size_t i = 0;
#ifdef MS_RNG_HAVE_AVX2
  if (__builtin_cpu_supports("avx2")) i = staged_avx2(key, index, lane, z0, z1, n, 1);
#endif
  for (; i < n; i++) ms_rng_normal2(key, index[i], lane, &z0[i], &z1[i]);
}

/* Uniforms (normal = 0) or normals (normal = 1) for rows index[0 .. n). */
static inline __attribute__((always_inline)) void doubles_n(ms_rng_key key, const uint64_t *index,
                                                            uint64_t lane, double *out, size_t n,
                                                            int normal) {
  size_t i = 0;
#ifdef MS_RNG_HAVE_AVX2
  if (__builtin_cpu_supports("avx2")) i = staged_avx2(key, index, lane, out, NULL, n, normal);
#endif
  for (; i < n; i++)
    out[i] = normal ? ms_rng_normal(key, index[i], lane) : ms_rng_uniform(key, index[i], lane);
}

void ms_rng_uniform_n(ms_rng_key key, const uint64_t *index, uint64_t lane, double *out, size_t n) {
  doubles_n(key, index, lane, out, n, 0);
}

void ms_rng_normal_n(ms_rng_key key, const uint64_t *index, uint64_t lane, double *out, size_t n) {
  doubles_n(key, index, lane, out, n, 1);
}

void ms_rng_normal_fill(ms_rng_key key, uint64_t base_index, uint64_t lane, float *out, size_t n) {
  for (size_t p = 0; 2 * p < n; p++) {
    double z0, z1;
    box_muller(ms_rng_philox(key, base_index + p, lane), &z0, &z1);
    out[2 * p] = (float)z0;
    if (2 * p + 1 < n) out[2 * p + 1] = (float)z1;
  }
}

/* ---- single-precision normals, four per block --------------------------- */

/* Box-Muller in float with our own log and sine/cosine polynomials: fixed
 * IEEE operations in a fixed order (no library call, no fused multiply-add),
 * so the scalar code and the AVX2 lanes below compute the same bits, on any
 * machine. Constants are the Taylor coefficients, rounded to float.
 *
 * Radius from word a: u = (2 (a >> 9) + 1) 2^-24 in (0, 1), exact in float;
 * ln u = (e - 24) ln 2 + ln m with v = 2 (a >> 9) + 1 = m 2^e, m in
 * [sqrt(2)/2, sqrt(2)), ln m = 2 atanh(s) = s (2 + s^2 (2/3 + s^2 (2/5 +
 * s^2 (2/7 + s^2 2/9)))), s = (m - 1) / (m + 1), |s| < 0.172 (the next term
 * is below 1e-9 of ln m). r = sqrt(-2 ln u) <= sqrt(48 ln 2) = 5.77.
 *
 * Angle from word b: phi = ((b >> 9) + 0.5) 2^-23 pi/4, uniform in (0, pi/4);
 * (cos phi, sin phi) by Taylor polynomials to degree 8 and 9 (next terms
 * below 3e-8 of the value); then bits 0-2 of b pick one of the eight
 * symmetries of the square (swap the two, negate the first, negate the
 * second), which spreads the angle uniformly over the circle. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define NR_NO_FMA
#elif defined(__GNUC__)
#define NR_NO_FMA __attribute__((optimize("fp-contract=off")))
#else
#define NR_NO_FMA
#endif

#define NR_LN2 0.693147180559945309f
#define NR_PI4 0.785398163397448310f
#define NR_SQRT2_MANT 0x3504f3u /* mantissa bits of sqrt(2) in float */
#define NR_L9 (2.0f / 9)
#define NR_L7 (2.0f / 7)
#define NR_L5 (2.0f / 5)
#define NR_L3 (2.0f / 3)
#define NR_S9 (1.0f / 362880)
#define NR_S7 (-1.0f / 5040)
#define NR_S5 (1.0f / 120)
#define NR_S3 (-1.0f / 6)
#define NR_C8 (1.0f / 40320)
#define NR_C6 (-1.0f / 720)
#define NR_C4 (1.0f / 24)
#define NR_C2 (-0.5f)

static inline float f_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

static inline uint32_t bits_f(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

/* ((a x + b) x + c) x + d, one rounding per operation. */
NR_NO_FMA static inline float horner4(float x, float a, float b, float c, float d) {
  float p = a * x;
  p = p + b;
  p = p * x;
  p = p + c;
  p = p * x;
  return p + d;
}

NR_NO_FMA static void normal_pair_f(uint32_t a, uint32_t b, float *z0, float *z1) {
  uint32_t vb = bits_f((float)(int32_t)(((a >> 9) << 1) | 1u));
  int32_t e = (int32_t)(vb >> 23) - 127;
  uint32_t mant = vb & 0x7fffffu;
  uint32_t mb = mant | 0x3f800000u;
  if (mant > NR_SQRT2_MANT) {
    mb = mant | 0x3f000000u;
    e += 1;
  }
  float m = f_bits(mb);
  float s = (m - 1.0f) / (m + 1.0f);
  float s2 = s * s;
  float p = horner4(s2, NR_L9, NR_L7, NR_L5, NR_L3) * s2;
  p = p + 2.0f;
  float lnm = s * p;
  float lnu = (float)(e - 24) * NR_LN2;
  lnu = lnu + lnm;
  float r = sqrtf(-2.0f * lnu);

  float t = ((float)(int32_t)(b >> 9) + 0.5f) * 0x1p-23f;
  float ph = t * NR_PI4;
  float p2 = ph * ph;
  float q = horner4(p2, NR_S9, NR_S7, NR_S5, NR_S3) * p2;
  q = q * ph;
  float sn = ph + q;
  float c = horner4(p2, NR_C8, NR_C6, NR_C4, NR_C2) * p2;
  float cs = 1.0f + c;
  float x = cs, y = sn;
  if (b & 1u) x = sn, y = cs;
  if (b & 2u) x = -x;
  if (b & 4u) y = -y;
  *z0 = r * x;
  *z1 = r * y;
}

void ms_rng_normal4(ms_rng_key key, uint64_t index, uint64_t lane, float out[4]) {
  ms_rng_block k = ms_rng_philox(key, index, lane);
  normal_pair_f(k.v[0], k.v[1], &out[0], &out[1]);
  normal_pair_f(k.v[2], k.v[3], &out[2], &out[3]);
}

#ifdef MS_RNG_HAVE_AVX2
/* horner4 in eight lanes. */
NR_NO_FMA __attribute__((target("avx2"))) static inline __m256 horner4_avx2(__m256 x, float a, float b, float c,
                                                                            float d) {
  __m256 p = _mm256_mul_ps(_mm256_set1_ps(a), x);
  p = _mm256_add_ps(p, _mm256_set1_ps(b));
  p = _mm256_mul_ps(p, x);
  p = _mm256_add_ps(p, _mm256_set1_ps(c));
  p = _mm256_mul_ps(p, x);
  return _mm256_add_ps(p, _mm256_set1_ps(d));
}

/* normal_pair_f on eight pairs: a[k], b[k] -> out[2k], out[2k + 1]. The
 * same operations in the same order, lane by lane. */
NR_NO_FMA __attribute__((target("avx2"))) static void normal_pairs_avx2(const uint32_t *a, const uint32_t *b,
                                                                        float *out) {
  const __m256i one = _mm256_set1_epi32(1), mask23 = _mm256_set1_epi32(0x7fffff);
  __m256i va = _mm256_loadu_si256((const __m256i *)a), vb = _mm256_loadu_si256((const __m256i *)b);
  __m256i v = _mm256_or_si256(_mm256_slli_epi32(_mm256_srli_epi32(va, 9), 1), one);
  __m256i fb = _mm256_castps_si256(_mm256_cvtepi32_ps(v));
  __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(fb, 23), _mm256_set1_epi32(127));
  __m256i mant = _mm256_and_si256(fb, mask23);
  __m256i big = _mm256_cmpgt_epi32(mant, _mm256_set1_epi32((int)NR_SQRT2_MANT));
  __m256i mb = _mm256_or_si256(mant, _mm256_blendv_epi8(_mm256_set1_epi32(0x3f800000), _mm256_set1_epi32(0x3f000000),
                                                        big));
  e = _mm256_sub_epi32(e, big); /* big is -1 where true */
  __m256 m = _mm256_castsi256_ps(mb), one_f = _mm256_set1_ps(1.0f);
  __m256 s = _mm256_div_ps(_mm256_sub_ps(m, one_f), _mm256_add_ps(m, one_f));
  __m256 s2 = _mm256_mul_ps(s, s);
  __m256 p = _mm256_mul_ps(horner4_avx2(s2, NR_L9, NR_L7, NR_L5, NR_L3), s2);
  p = _mm256_add_ps(p, _mm256_set1_ps(2.0f));
  __m256 lnm = _mm256_mul_ps(s, p);
  __m256 lnu = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(e, _mm256_set1_epi32(24))), _mm256_set1_ps(NR_LN2));
  lnu = _mm256_add_ps(lnu, lnm);
  __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), lnu));

  __m256 t = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(vb, 9)), _mm256_set1_ps(0.5f)),
                           _mm256_set1_ps(0x1p-23f));
  __m256 ph = _mm256_mul_ps(t, _mm256_set1_ps(NR_PI4));
  __m256 p2 = _mm256_mul_ps(ph, ph);
  __m256 q = _mm256_mul_ps(horner4_avx2(p2, NR_S9, NR_S7, NR_S5, NR_S3), p2);
  q = _mm256_mul_ps(q, ph);
  __m256 sn = _mm256_add_ps(ph, q);
  __m256 c = _mm256_mul_ps(horner4_avx2(p2, NR_C8, NR_C6, NR_C4, NR_C2), p2);
  __m256 cs = _mm256_add_ps(one_f, c);
  __m256 swap = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(vb, one), one));
  __m256 x = _mm256_blendv_ps(cs, sn, swap), y = _mm256_blendv_ps(sn, cs, swap);
  const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
  x = _mm256_xor_ps(x, _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(vb, 30), sign)));
  y = _mm256_xor_ps(y, _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(vb, 29), sign)));
  __m256 z0 = _mm256_mul_ps(r, x), z1 = _mm256_mul_ps(r, y);
  __m256 lo = _mm256_unpacklo_ps(z0, z1), hi = _mm256_unpackhi_ps(z0, z1);
  _mm256_storeu_ps(out, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* Blocks base .. base + m - 1 with m a multiple of 8 (m <= MS_RNG_STAGE) into
 * out[0 .. 4m); returns the number of blocks done (a multiple of 8). */
static size_t normal4_stage_avx2(ms_rng_key key, uint64_t base, uint64_t lane, float *out, size_t m, int wide) {
  uint64_t idx[MS_RNG_STAGE], w[MS_RNG_STAGE], w2[MS_RNG_STAGE];
  uint32_t a[2 * MS_RNG_STAGE], b[2 * MS_RNG_STAGE];
  for (size_t q = 0; q < m; q++) idx[q] = base + q;
  size_t done = wide && m >= 16 ? philox_avx512(key, idx, lane, w, w2, m) : philox_avx2(key, idx, lane, w, w2, m);
  for (size_t q = 0; q < done; q++) {
    a[2 * q] = (uint32_t)w[q];
    b[2 * q] = (uint32_t)(w[q] >> 32);
    a[2 * q + 1] = (uint32_t)w2[q];
    b[2 * q + 1] = (uint32_t)(w2[q] >> 32);
  }
  for (size_t k = 0; k < 2 * done; k += 8) normal_pairs_avx2(a + k, b + k, out + 2 * k);
  return done;
}
#endif

void ms_rng_normal4_fill(ms_rng_key key, uint64_t base_index, uint64_t lane, float *out, size_t n) {
  size_t q = 0, full = n / 4;
#ifdef MS_RNG_HAVE_AVX2
  if (__builtin_cpu_supports("avx2")) {
    int wide = have_avx512();
    while (full - q >= 8) {
      size_t m = full - q < MS_RNG_STAGE ? full - q : MS_RNG_STAGE;
      q += normal4_stage_avx2(key, base_index + q, lane, out + 4 * q, m, wide);
    }
  }
#endif
  for (; q < full; q++) ms_rng_normal4(key, base_index + q, lane, out + 4 * q);
  if (4 * full < n) {
    float z[4];
    ms_rng_normal4(key, base_index + full, lane, z);
    memcpy(out + 4 * full, z, (n - 4 * full) * sizeof(float));
  }
}

/* ---- gsl_rng adapter ---------------------------------------------------- */

typedef struct {
  ms_rng_key key;
  uint64_t index;
  uint64_t lane;
  ms_rng_block block;
  int pos; /* next word of block to hand out, 0..4 */
} gsl_state;

static void gsl_state_reset(gsl_state *s, ms_rng_key key, uint64_t index, uint64_t lane) {
  s->key = key;
  s->index = index;
  s->lane = lane;
  s->block = ms_rng_philox(key, index, lane);
  s->pos = 0;
}

static void gsl_set(void *vstate, unsigned long seed) {
  gsl_state_reset(vstate, ms_rng_key_make((uint64_t)seed, 0), 0, 0);
}

static unsigned long gsl_get(void *vstate) {
  gsl_state *s = vstate;
  if (s->pos == 4) {
    s->lane++;
    s->block = ms_rng_philox(s->key, s->index, s->lane);
    s->pos = 0;
  }
  return s->block.v[s->pos++];
}

static double gsl_get_double(void *vstate) {
  /* 32-bit resolution like GSL's own generators; open interval (0,1). */
  return ((double)gsl_get(vstate) + 0.5) / 4294967296.0;
}

static const gsl_rng_type philox_type = {"medsynth-philox", 0xffffffffUL, 0, sizeof(gsl_state),
                                         gsl_set, gsl_get, gsl_get_double};

const gsl_rng_type *ms_rng_gsl_type(void) { return &philox_type; }

gsl_rng *ms_rng_gsl_new(void) {
  gsl_rng *r = gsl_rng_alloc(&philox_type);
  return r;
}

void ms_rng_gsl_reset(gsl_rng *r, ms_rng_key key, uint64_t index, uint64_t lane) {
  gsl_state_reset(r->state, key, index, lane);
}
