/* Keyed counter-based random numbers.
 *
 * Usage:
 *   ms_rng_key k = ms_rng_key_make(seed, ms_rng_stream("/tables/0/fields/3"));
 *   double u = ms_rng_uniform(k, row, 0);     // draw 0 of this row
 *   double z = ms_rng_normal(k, row, 1);      // draw 1 of this row
 *
 * Every random number in medsynth is a pure function of (seed, stream, index,
 * lane): no generator state crosses rows, chunks or threads, so any row can
 * be produced alone, in any order, by any thread, and give the same bytes.
 *
 *  - stream: xxh64 of a stable name (a field's JSON Pointer, "ddpm/noise").
 *  - key:    xxh64 of (seed, stream) as little-endian bytes, split into the
 *            two 32-bit words of a Philox4x32-10 key.
 *  - counter: (index lo, index hi, lane lo, lane hi). `index` is the row or
 *            element; `lane` is the draw number within it.
 * One Philox block yields four 32-bit words. ms_rng_u64 uses words 0,1 (word
 * 0 low); ms_rng_uniform is (u64 >> 11 + 0.5) * 2^-53, in the open interval
 * (0, 1); ms_rng_normal is Box-Muller on the two u64-derived uniforms of one
 * block (words 0,1 and 2,3), taking the cosine branch.
 *
 * GSL distributions draw from this generator through the gsl_rng adapter of
 * medsynth/rng_gsl.h.
 *
 * Reference: Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11 (Philox4x32-10 constants and round function). */
#ifndef MEDSYNTH_RNG_H
#define MEDSYNTH_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint32_t k0, k1;
} ms_rng_key;

typedef struct {
  uint32_t v[4];
} ms_rng_block;

/* xxh64 (seed 0) of a NUL-terminated name. */
uint64_t ms_rng_stream(const char *name);
/* xxh64 (seed 0) of name bytes; for names that are not NUL-terminated. */
uint64_t ms_rng_stream_n(const char *name, size_t len);
/* Derives a sub-stream: xxh64 of (parent, tag) as little-endian bytes. */
uint64_t ms_rng_stream_sub(uint64_t parent, uint64_t tag);

ms_rng_key ms_rng_key_make(uint64_t seed, uint64_t stream);

/* The raw Philox4x32-10 block for counter (index, lane). */
ms_rng_block ms_rng_philox(ms_rng_key key, uint64_t index, uint64_t lane);

uint64_t ms_rng_u64(ms_rng_key key, uint64_t index, uint64_t lane);
double ms_rng_uniform(ms_rng_key key, uint64_t index, uint64_t lane);
double ms_rng_normal(ms_rng_key key, uint64_t index, uint64_t lane);
/* Uniform integer in [0, n) without modulo bias (keyed rejection over
 * successive words of the block and following lanes). n > 0. */
uint64_t ms_rng_below(ms_rng_key key, uint64_t index, uint64_t lane, uint64_t n);

/* out[i] = ms_rng_uniform(key, index[i], lane) for i < n, bit for bit; many
 * rows at once, so the Philox rounds run in SIMD lanes (several times faster
 * than n separate calls). index and out must not overlap. */
void ms_rng_uniform_n(ms_rng_key key, const uint64_t *index, uint64_t lane, double *out, size_t n);
/* The same for ms_rng_u64 and ms_rng_normal. */
void ms_rng_u64_n(ms_rng_key key, const uint64_t *index, uint64_t lane, uint64_t *out, size_t n);
void ms_rng_normal_n(ms_rng_key key, const uint64_t *index, uint64_t lane, double *out, size_t n);
/* Both Box-Muller normals of one block: *z0 = ms_rng_normal(key, index,
 * lane) (the cosine) and *z1 its sine partner, independent of it. The _n
 * form fills z0[i], z1[i] for rows index[i], i < n, bit for bit as the
 * single calls (SIMD Philox as ms_rng_normal_n); arrays must not overlap. */
void ms_rng_normal2(ms_rng_key key, uint64_t index, uint64_t lane, double *z0, double *z1);
void ms_rng_normal2_n(ms_rng_key key, const uint64_t *index, uint64_t lane, double *z0, double *z1,
                      size_t n);

/* Fills out[0..n) with standard normals: element i uses block
 * (index = base + i/2 ... ) -- precisely, pair p = i/2 uses block
 * (base_index + p, lane) and yields both Box-Muller outputs (cos, sin).
 * Used for bulk noise (images), where element i's value depends only on
 * (key, base_index, lane, i). */
void ms_rng_normal_fill(ms_rng_key key, uint64_t base_index, uint64_t lane, float *out, size_t n);

/* Single-precision normals, four per Philox block: words 0, 1 of block
 * (index, lane) give out[0], out[1] and words 2, 3 give out[2], out[3], by
 * Box-Muller in float arithmetic with medsynth's own logarithm and
 * sine/cosine polynomials (gen/core/rng.c), so every path (scalar, AVX2)
 * and every machine with IEEE single precision gives the same bits. The
 * radius comes from 23 bits of the first word of a pair, so |z| <= 5.77
 * (a standard normal exceeds that with probability 8e-9). For noise
 * images: in bulk with AVX2 about 1 ms per million values, against 19 ms
 * for ms_rng_normal_fill (double precision through libm). */
void ms_rng_normal4(ms_rng_key key, uint64_t index, uint64_t lane, float out[4]);
/* out[i] for i < n is element i % 4 of ms_rng_normal4(key, base_index + i / 4,
 * lane), bit for bit; blocks run in SIMD lanes where the CPU has AVX2. */
void ms_rng_normal4_fill(ms_rng_key key, uint64_t base_index, uint64_t lane, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
