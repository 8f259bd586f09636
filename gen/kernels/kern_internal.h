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

/* SGEMM micro-kernel: for one MR x NR tile of C (leading dimension ldc),
 * acc = sum over kc of a[k*MR + r] * b[k*NR + j] (sequential FMA in k), then
 * first: C = beta*C + alpha*acc (beta == 0: C is not read), else
 * C = C + alpha*acc. a and b are packed micro-panels (zero padded). */
typedef void (*ms__ukr_fn)(size_t kc, const float *restrict a, const float *restrict b,
                           float *restrict c, size_t ldc, float alpha, float beta, int first);

/* The micro-kernel of `isa` and its tile (MR, NR); 0 if this CPU cannot
 * run it. wide != 0 asks for the 8 x 48 AVX-512 variant (same bytes per
 * element as the 14 x 32 one; other paths ignore it). ms_sgemm and the
 * implicit-GEMM conv2d share these kernels, so a conv2d output rounds
 * exactly like the GEMM over its im2col matrix. */
int ms__sgemm_ukr(ms_kernel_isa isa, int wide, size_t *mr, size_t *nr, ms__ukr_fn *fn);
#define MS__MAX_MR 14
#define MS__MAX_NR 48

/* ms_conv2d on an explicit ISA path (MS_ERR_UNSUPPORTED when this CPU
 * cannot run it); same arguments and scratch contract as ms_conv2d. */
ms_status ms__conv2d_isa(ms_kernel_isa isa, float *y, const float *x, const float *w,
                         const float *b, const ms_conv2d_params *p, float *scratch,
                         size_t scratch_floats);

/* ms_attention on an explicit ISA path (MS_ERR_UNSUPPORTED when this CPU
 * cannot run it); same arguments and scratch contract as ms_attention. */
ms_status ms__attention_isa(ms_kernel_isa isa, float *o, const float *q, const float *k,
                            const float *v, size_t N, size_t heads, size_t head_dim, size_t Tq,
                            size_t Tk, ms_attn_layout layout, float *scratch,
                            size_t scratch_floats);

/* ms_conv2d_pack_weights / ms_conv2d_prepacked on an explicit ISA path
 * (MS_ERR_UNSUPPORTED when this CPU cannot run it). Weights packed for one
 * ISA must be used with that ISA. */
ms_status ms__conv2d_pack_weights_isa(ms_kernel_isa isa, float *wp, size_t wp_floats,
                                      const float *w, const ms_conv2d_params *p);
ms_status ms__conv2d_prepacked_isa(ms_kernel_isa isa, float *y, const float *x, const float *wp,
                                   const float *b, const ms_conv2d_params *p, float *scratch,
                                   size_t scratch_floats);

/* ms_conv2d_winograd_pack_weights / ms_conv2d_winograd on an explicit ISA
 * path (MS_ERR_UNSUPPORTED when this CPU cannot run it); weights packed for
 * one ISA must be used with that ISA. */
ms_status ms__conv2d_winograd_pack_weights_isa(ms_kernel_isa isa, float *wp, size_t wp_floats,
                                               const float *w, const ms_conv2d_params *p);
ms_status ms__conv2d_winograd_isa(ms_kernel_isa isa, float *y, const float *x, const float *wp,
                                  const float *b, const ms_conv2d_params *p, float *scratch,
                                  size_t scratch_floats);

/* exp of gen/kernels/vexp.c: one algorithm, the same bytes on every ISA
 * path and for every element position (vector lanes, tails, scalar). */
float ms__expf(float x);
/* y[i] = exp(x[i]); in-place allowed. */
void ms__exp_array(float *y, const float *x, size_t n);
/* y[i] = x[i] / (1 + exp(-x[i])); in-place allowed. */
void ms__silu_array(float *y, const float *x, size_t n);
/* y[j] = exp(x[j] - m) for j < n; returns their sum over 16 lanes (lane l
 * takes j = l, l+16, ...) reduced by the fixed tree l += l+8, +4, +2, +1.
 * In-place allowed. */
float ms__exp_sub_sum(float *y, const float *x, size_t n, float m);
/* fn(y, x, n) (an elementwise array function such as ms__exp_array) split
 * over threads in fixed chunks, so any split gives the same bytes. */
void ms__parallel_array(float *y, const float *x, size_t n,
                        void (*fn)(float *, const float *, size_t));

/* One thread's share of ms_sgemm scratch (the least ms_sgemm accepts). */
size_t ms__sgemm_min_scratch(size_t M, size_t N, size_t K);

/* 1 when this CPU can run `isa`. */
int ms__isa_supported(ms_kernel_isa isa);

#endif
