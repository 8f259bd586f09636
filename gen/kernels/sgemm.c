/* SGEMM: C = alpha*op(A)*op(B) + beta*C, float32, row-major.
 *
 * ms_sgemm_ref is the yardstick: one double accumulator per output element,
 * k in increasing order. ms_sgemm checks its arguments and hands over to the
 * blocked, packed, SIMD implementation in sgemm_blocked.c (or to
 * cblas_sgemm when built with MS_WITH_OPENBLAS, for comparison only).
 *
 * Invariant: with beta == 0, C is only written, never read (BLAS rule), so
 * NaN left in an output buffer cannot leak into results. */
#include <math.h>

#include "kern_internal.h"

#ifdef MS_WITH_OPENBLAS
#include <cblas.h>
#include <limits.h>
#endif

ms_status ms__sgemm_check(const float *C, size_t ldc, const float *A, size_t lda,
                          const float *B, size_t ldb, ms_trans ta, ms_trans tb, size_t M,
                          size_t N, size_t K) {
  if ((unsigned)ta >= MS_TRANS_COUNT || (unsigned)tb >= MS_TRANS_COUNT) return MS_ERR_INVALID;
  if (M == 0 || N == 0) return MS_OK;
  if (!C || ldc < N || ms__span(M, N, ldc) == SIZE_MAX) return MS_ERR_INVALID;
  if (K == 0) return MS_OK;
  if (!A || !B) return MS_ERR_INVALID;
  size_t ar = ta == MS_TRANS_NO ? M : K, ac = ta == MS_TRANS_NO ? K : M;
  size_t br = tb == MS_TRANS_NO ? K : N, bc = tb == MS_TRANS_NO ? N : K;
  if (lda < ac || ms__span(ar, ac, lda) == SIZE_MAX) return MS_ERR_INVALID;
  if (ldb < bc || ms__span(br, bc, ldb) == SIZE_MAX) return MS_ERR_INVALID;
  return MS_OK;
}

ms_status ms_sgemm_ref(float *C, size_t ldc, const float *A, size_t lda, const float *B,
                       size_t ldb, ms_trans trans_a, ms_trans trans_b, size_t M, size_t N,
                       size_t K, float alpha, float beta) {
  ms_status s = ms__sgemm_check(C, ldc, A, lda, B, ldb, trans_a, trans_b, M, N, K);
  if (s != MS_OK) return s;
  /* Element strides of op(A) and op(B) along (row, k) and (k, col). */
  size_t a_i = trans_a == MS_TRANS_NO ? lda : 1, a_k = trans_a == MS_TRANS_NO ? 1 : lda;
  size_t b_k = trans_b == MS_TRANS_NO ? ldb : 1, b_j = trans_b == MS_TRANS_NO ? 1 : ldb;
  for (size_t i = 0; i < M; i++) {
    for (size_t j = 0; j < N; j++) {
      double acc = 0.0;
      for (size_t k = 0; k < K; k++)
        acc += (double)A[i * a_i + k * a_k] * (double)B[k * b_k + j * b_j];
      double r = (double)alpha * acc;
      if (beta != 0.0f) r += (double)beta * (double)C[i * ldc + j];
      C[i * ldc + j] = (float)r;
    }
  }
  return MS_OK;
}

ms_status ms_sgemm(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb,
                   ms_trans trans_a, ms_trans trans_b, size_t M, size_t N, size_t K, float alpha,
                   float beta, float *scratch, size_t scratch_floats) {
#ifdef MS_WITH_OPENBLAS
  ms_status s = ms__sgemm_check(C, ldc, A, lda, B, ldb, trans_a, trans_b, M, N, K);
  if (s != MS_OK) return s;
  if (M == 0 || N == 0) return MS_OK;
  /* Same scratch contract as the built-in path, so callers work with both. */
  if (K && (!scratch || scratch_floats < ms__sgemm_min_scratch(M, N, K))) return MS_ERR_INVALID;
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
      ldc > INT_MAX)
    return MS_ERR_RANGE;
  if (K == 0) {
    for (size_t i = 0; i < M; i++)
      for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return MS_OK;
  }
  cblas_sgemm(CblasRowMajor, trans_a == MS_TRANS_NO ? CblasNoTrans : CblasTrans,
              trans_b == MS_TRANS_NO ? CblasNoTrans : CblasTrans, (int)M, (int)N, (int)K, alpha,
              A, (int)(lda ? lda : 1), B, (int)(ldb ? ldb : 1), beta, C, (int)ldc);
  return MS_OK;
#else
  return ms__sgemm_isa(ms_kernel_isa_detect(), C, ldc, A, lda, B, ldb, trans_a, trans_b, M, N,
                       K, alpha, beta, scratch, scratch_floats);
#endif
}
