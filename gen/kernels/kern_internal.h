/* Private helpers shared by the kernel files in gen/kernels/.
 *
 * Invariants: nothing here allocates or keeps state; ISA selection is a
 * pure function of the CPU (__builtin_cpu_supports) or of the caller's
 * explicit choice (tests force each path through ms__sgemm_isa). */
#ifndef MS_KERN_INTERNAL_H
#define MS_KERN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/kernels.h"

/* a*b into *out; 0 on overflow, 1 on success. */
static inline int ms__mul_ok(size_t a, size_t b, size_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

/* Number of elements a strided matrix of rows x cols with leading dimension
 * ld spans ((rows-1)*ld + cols), or SIZE_MAX on overflow. rows, cols > 0. */
static inline size_t ms__span(size_t rows, size_t cols, size_t ld) {
  size_t t;
  if (!ms__mul_ok(rows - 1, ld, &t) || t > SIZE_MAX - cols) return SIZE_MAX;
  return t + cols;
}

/* Argument check shared by ms_sgemm_ref and ms_sgemm. */
ms_status ms__sgemm_check(const float *C, size_t ldc, const float *A, size_t lda,
                          const float *B, size_t ldb, ms_trans ta, ms_trans tb, size_t M,
                          size_t N, size_t K);

/* ms_sgemm on an explicit ISA path (which must be supported by this CPU;
 * MS_ERR_UNSUPPORTED otherwise). Never uses OpenBLAS. */
ms_status ms__sgemm_isa(ms_kernel_isa isa, float *C, size_t ldc, const float *A, size_t lda,
                        const float *B, size_t ldb, ms_trans ta, ms_trans tb, size_t M,
                        size_t N, size_t K, float alpha, float beta, float *scratch,
                        size_t scratch_floats);

/* One thread's share of ms_sgemm scratch (the least ms_sgemm accepts). */
size_t ms__sgemm_min_scratch(size_t M, size_t N, size_t K);

/* 1 when this CPU can run `isa`. */
int ms__isa_supported(ms_kernel_isa isa);

#endif
