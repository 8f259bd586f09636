/* The AVX-512 micro-kernel tile of the packed SGEMM kernels (sgemm_blocked.c)
 * and of the implicit-GEMM conv2d kernel (conv2d.c): one accumulation and
 * one store sequence, so every element sees the same FMAs on every path.
 * Include after <immintrin.h>.
 *
 * A tile is ROWS x COLS zmm accumulators c<r>_<h>: ROWS(X, COLS) expands
 * X(r, COLS) for each row r of A, COLS(X, r) expands X(r, h) for each
 * 16-float column block h of B. */
#ifndef MS_UKR_AVX512_H
#define MS_UKR_AVX512_H

#define MS__Z_ROWS8(X, A) X(0, A) X(1, A) X(2, A) X(3, A) X(4, A) X(5, A) X(6, A) X(7, A)
#define MS__Z_ROWS14(X, A) MS__Z_ROWS8(X, A) X(8, A) X(9, A) X(10, A) X(11, A) X(12, A) X(13, A)
#define MS__Z_COLS2(X, r) X(r, 0) X(r, 1)
#define MS__Z_COLS3(X, r) X(r, 0) X(r, 1) X(r, 2)

/* Declares the accumulators, zeroed. */
#define MS__Z_DECL1(r, h) __m512 c##r##_##h = _mm512_setzero_ps();
#define MS__Z_DECL(r, COLS) COLS(MS__Z_DECL1, r)
#define MS__Z_ZERO(ROWS, COLS) ROWS(MS__Z_DECL, COLS)

/* One k step: c<r>_<h> += a[r] * (B row at p, block h), one FMA each. */
#define MS__Z_LOADB(p, h) const __m512 b##h = _mm512_loadu_ps((p) + 16 * h);
#define MS__Z_FMA1(r, h) c##r##_##h = _mm512_fmadd_ps(av, b##h, c##r##_##h);
#define MS__Z_FMA(r, COLS) \
  av = _mm512_set1_ps(a[r]); \
  COLS(MS__Z_FMA1, r)
#define MS__Z_STEP(ROWS, COLS, p) \
  {                               \
    COLS(MS__Z_LOADB, p)          \
    __m512 av;                    \
    ROWS(MS__Z_FMA, COLS)         \
  }

/* first: C = beta*C + alpha*acc (beta == 0: C is not read), else
 * C = C + alpha*acc; va, vb hold alpha and beta. */
__attribute__((target("avx512f,fma"))) static inline __m512 ms__z_st16(const float *cr, __m512 acc,
                                                                        __m512 va, __m512 vb,
                                                                        float beta, int first) {
  if (first && beta == 0.0f) return _mm512_mul_ps(va, acc);
  __m512 cv = _mm512_loadu_ps(cr);
  if (first) cv = _mm512_mul_ps(vb, cv);
  return _mm512_fmadd_ps(va, acc, cv);
}

/* Stores the tile to c (leading dimension ldc) through ms__z_st16. */
#define MS__Z_ST1(r, h)                                                                   \
  _mm512_storeu_ps(c + r * ldc + 16 * h,                                                  \
                   ms__z_st16(c + r * ldc + 16 * h, c##r##_##h, va, vb, beta, first));
#define MS__Z_ST(r, COLS) COLS(MS__Z_ST1, r)
#define MS__Z_STORE(ROWS, COLS) ROWS(MS__Z_ST, COLS)

#endif
