/* Compute kernels of the generative image core: float32, row-major, NCHW.
 *
 * Usage:
 *   // y[N,Co,Ho,Wo] = conv(x[N,C,H,W], w[Co,C,3,3]) + b[Co]
 *   ms_conv2d_params p = {.N = 1, .C = 64, .H = 32, .W = 32, .C_out = 64,
 *                         .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
 *                         .pad_h = 1, .pad_w = 1};
 *   size_t need = ms_conv2d_scratch_floats(&p);
 *   float *scratch = malloc(need * sizeof(float));      // caller owns scratch
 *   ms_status s = ms_conv2d(y, x, w, b, &p, scratch, need);
 *
 * Every op comes in two variants:
 *   ms_<op>_ref  plain loops, double accumulation where cheap; the yardstick.
 *   ms_<op>      the fast path: cache blocking, SIMD (AVX-512 / AVX2+FMA /
 *                portable GCC vectors, chosen at run time), the library's
 *                worker threads (medsynth/parallel.h).
 * Both have the same arguments, except that fast variants needing temporary
 * memory take (scratch, scratch_floats) last; the matching
 * ms_<op>_scratch_floats() says how many floats are enough.
 *
 * Argument order: outputs, inputs, weights, then sizes, then flags/scalars,
 * then scratch. Every pointer has its shape in a comment; all tensors are
 * dense and row-major unless a leading dimension is given.
 *
 * Determinism: a fast kernel gives identical bytes for any thread count
 * (omp_get_max_threads() at the call; from inside an OpenMP parallel region
 * or a medsynth/parallel.h item a kernel runs on one thread). Threads only
 * take independent output tiles, in whatever order they come free;
 * every output element is summed in one fixed order, and reductions
 * (GroupNorm statistics, softmax) use fixed blocks combined in fixed order.
 * The ISA path (AVX-512, AVX2, generic) is part of the result: different
 * paths may differ in the last bits. Fast and _ref agree within the
 * tolerances listed in docs/kernels.md.
 *
 * Memory: kernels never allocate. Scratch is borrowed for the call only; its
 * content on entry is irrelevant and on return unspecified. Outputs must not
 * overlap inputs unless a function says in-place is allowed.
 *
 * Errors: kernels whose sizes can be inconsistent return ms_status
 * (MS_ERR_INVALID for bad sizes, NULL pointers, or too little scratch) and
 * touch no output on error. Elementwise ops that cannot fail return void.
 * Size arithmetic is checked for overflow.
 *
 * Build option MS_WITH_OPENBLAS makes ms_sgemm call cblas_sgemm (for
 * comparison only; then the determinism guarantee is OpenBLAS's, not ours).
 *
 * References: PyTorch documentation of torch.nn.functional.conv2d,
 * group_norm, silu, gelu (approximate='none'), softmax, linear,
 * scaled_dot_product_attention; Goto & van de Geijn, "Anatomy of
 * high-performance matrix multiplication", ACM TOMS 34(3), 2008; Dao et al.,
 * "FlashAttention", NeurIPS 2022 (online softmax); Ho et al., DDPM (2020) and
 * the guided-diffusion `timestep_embedding`. */
#ifndef MEDSYNTH_KERNELS_H
#define MEDSYNTH_KERNELS_H

#include <stddef.h>

#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- SGEMM */

typedef enum {
  MS_TRANS_NO, /* op(X) = X   */
  MS_TRANS_YES, /* op(X) = X^T */
  MS_TRANS_COUNT
} ms_trans;

const char *ms_trans_name(ms_trans t);
/* "no"/"yes" -> value; MS_TRANS_COUNT for anything else (or NULL). */
ms_trans ms_trans_from_name(const char *name);

/* C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N]
 *
 *   C: [M rows, ldc stride], ldc >= N
 *   A: op(A) = A  -> A is [M, lda], lda >= K
 *      op(A) = A^T -> A is [K, lda], lda >= M
 *   B: op(B) = B  -> B is [K, ldb], ldb >= N
 *      op(B) = B^T -> B is [N, ldb], ldb >= K
 * When beta == 0, C is not read (NaN/Inf in C do not propagate), as in BLAS.
 * K == 0 gives C = beta*C. M == 0 or N == 0 is a no-op.
 * Summation order of the fast variant: k runs in blocks of a fixed size
 * (MS_SGEMM_KC); within a block sequentially with FMA; block results are
 * added to C in increasing k. The first block applies beta:
 *   C = beta*C + alpha*acc0;  C += alpha*acc1;  ...
 * This order depends on K only, never on M, N, the thread count or tiling.
 * Returns MS_ERR_INVALID for NULL pointers (with M,N,K > 0), leading
 * dimensions too small, or (fast) scratch_floats < ms_sgemm_scratch_floats. */
ms_status ms_sgemm_ref(float *C, size_t ldc,
                       const float *A, size_t lda, const float *B, size_t ldb,
                       ms_trans trans_a, ms_trans trans_b,
                       size_t M, size_t N, size_t K, float alpha, float beta);
ms_status ms_sgemm(float *C, size_t ldc,
                   const float *A, size_t lda, const float *B, size_t ldb,
                   ms_trans trans_a, ms_trans trans_b,
                   size_t M, size_t N, size_t K, float alpha, float beta,
                   float *scratch, size_t scratch_floats);
/* Scratch for ms_sgemm: packed A and B panels for each thread, sized for
 * omp_get_max_threads() at the time of this query (at most about 0.35 M
 * floats, 1.4 MB, per thread; less for small shapes). Given less, ms_sgemm
 * runs on as many threads as the scratch allows (same bytes); below one
 * thread's share it returns MS_ERR_INVALID. 0 for M, N or K == 0. */
size_t ms_sgemm_scratch_floats(size_t M, size_t N, size_t K);

/* Block size of the k loop (see the summation order above). */
#define MS_SGEMM_KC 256

/* --------------------------------------------------------------- Linear */

/* PyTorch nn.Linear: y[M,out] = x[M,in] * W[out,in]^T + b[out].
 *   y: [M, out]   x: [M, in]   w: [out, in]   b: [out] or NULL
 * Fast variant = ms_sgemm (same determinism), bias added after the GEMM. */
ms_status ms_linear_ref(float *y, const float *x, const float *w, const float *b,
                        size_t M, size_t in, size_t out);
ms_status ms_linear(float *y, const float *x, const float *w, const float *b,
                    size_t M, size_t in, size_t out, float *scratch, size_t scratch_floats);
size_t ms_linear_scratch_floats(size_t M, size_t in, size_t out);

/* --------------------------------------------------------------- Conv2d */

/* torch.nn.functional.conv2d with groups = 1, dilation = 1, zero padding.
 * Output size: Ho = (H + 2*pad_h - kh) / stride_h + 1 (floor), same for W. */
typedef struct {
  size_t N, C, H, W;        /* input  [N, C, H, W] */
  size_t C_out;             /* output channels */
  size_t kh, kw;            /* kernel size, >= 1 */
  size_t stride_h, stride_w; /* >= 1 */
  size_t pad_h, pad_w;      /* zero padding on each side */
} ms_conv2d_params;

/* Output height/width; MS_ERR_INVALID when a size is 0, a stride is 0, or
 * the kernel does not fit the padded input. */
ms_status ms_conv2d_out_hw(const ms_conv2d_params *p, size_t *Ho, size_t *Wo);

/*   y: [N, C_out, Ho, Wo]   x: [N, C, H, W]
 *   w: [C_out, C, kh, kw]   b: [C_out] or NULL
 * Fast variant: implicit GEMM over the whole batch (GEMM columns are the
 * N*Ho*Wo output pixels): input patches are packed straight from x into
 * the sgemm micro-kernel's panels, no im2col matrix is built. Each output
 * is bias + sum over k = (c, ky, kx) in ms_sgemm's fixed order, so y has
 * the same bytes as ms_sgemm over the im2col matrix with C = bias and
 * beta = 1 (beta = 0 without bias), whatever N, the thread count, or the
 * tiling. The thread count is chosen per call from the shape and
 * omp_get_max_threads() (tiny convolutions run on one thread). */
ms_status ms_conv2d_ref(float *y, const float *x, const float *w, const float *b,
                        const ms_conv2d_params *p);
ms_status ms_conv2d(float *y, const float *x, const float *w, const float *b,
                    const ms_conv2d_params *p, float *scratch, size_t scratch_floats);
/* 0 when p is invalid. The weights packed once per call (about
 * C_out*C*kh*kw floats, C_out rounded up to the micro-kernel) plus the
 * larger of 12 K floats per thread, for omp_get_max_threads() at the time
 * of the query (capped by the shape's useful thread count), and, for
 * stride-1 kernels wider than one tap, a zero-padded copy of the input
 * (N*C*(H+2*pad_h)*(W+2*pad_w) floats, read in place instead of packing
 * strips on AVX-512). Given less, ms_conv2d packs strips and runs on as
 * many threads as the scratch allows (same bytes); below one thread's
 * share it returns MS_ERR_INVALID. */
size_t ms_conv2d_scratch_floats(const ms_conv2d_params *p);

/* Weights packed once for many ms_conv2d_prepacked calls (a model's
 * weights at load time), so no call repacks them:
 *   size_t n = ms_conv2d_packed_floats(&p);          // 0 when p is invalid
 *   ms_conv2d_pack_weights(wp, n, w, &p);            // wp: caller's n floats
 *   ms_conv2d_prepacked(y, x, wp, b, &p2, scratch, ms_conv2d_prepacked_scratch_floats(&p2));
 * The packed layout depends on this CPU's kernel path, C_out, C*kh*kw and
 * the output size Ho*Wo, never on N: p2 may differ from p in N only. The
 * result is the same bytes as ms_conv2d's. wp is borrowed for the call;
 * the scratch contract is ms_conv2d's without the packed weights. */
size_t ms_conv2d_packed_floats(const ms_conv2d_params *p);
ms_status ms_conv2d_pack_weights(float *wp, size_t wp_floats, const float *w,
                                 const ms_conv2d_params *p);
ms_status ms_conv2d_prepacked(float *y, const float *x, const float *wp, const float *b,
                              const ms_conv2d_params *p, float *scratch, size_t scratch_floats);
size_t ms_conv2d_prepacked_scratch_floats(const ms_conv2d_params *p);

/* Winograd F(2x2, 3x3) for kh = kw = 3, stride 1, pad 1 (any N, C, H, W):
 * 16 multiplies per 2x2 output block instead of 36. The weights are
 * transformed and packed once:
 *   if (ms_conv2d_winograd_suits(&p)) {                // worth it here?
 *     size_t n = ms_conv2d_winograd_packed_floats(&p); // 0: unsupported
 *     ms_conv2d_winograd_pack_weights(wp, n, w, &p);
 *     ms_conv2d_winograd(y, x, wp, b, &p2, scratch,
 *                        ms_conv2d_winograd_scratch_floats(&p2));
 *   }
 * p2 may differ from p in N, H and W. Not the same bytes as ms_conv2d
 * (another algorithm; within a few float ulps of the transformed
 * magnitudes of the exact result), but each output's arithmetic depends
 * only on the kernel path, C and C_out: the same bytes for any N, batch
 * split or thread count. supported: the shape can run (MS_ERR_UNSUPPORTED
 * otherwise); suits: supported and faster than ms_conv2d_prepacked on this
 * CPU's path (maps of at least 16x16; never on the generic path). The
 * scratch is per thread, for omp_get_max_threads() at the query; given
 * less, fewer threads run (same bytes); below one thread's share the call
 * returns MS_ERR_INVALID. */
int ms_conv2d_winograd_supported(const ms_conv2d_params *p);
int ms_conv2d_winograd_suits(const ms_conv2d_params *p);
size_t ms_conv2d_winograd_packed_floats(const ms_conv2d_params *p);
ms_status ms_conv2d_winograd_pack_weights(float *wp, size_t wp_floats, const float *w,
                                          const ms_conv2d_params *p);
size_t ms_conv2d_winograd_scratch_floats(const ms_conv2d_params *p);
ms_status ms_conv2d_winograd(float *y, const float *x, const float *wp, const float *b,
                             const ms_conv2d_params *p, float *scratch, size_t scratch_floats);

/* ------------------------------------------------------------ GroupNorm */

/* torch.nn.functional.group_norm: for each (n, group g of C/G channels)
 * mean and biased variance over (C/G)*HW values;
 *   y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c]
 *   y, x: [N, C, HW]   gamma, beta: [C] or NULL (NULL = 1 resp. 0)
 * C % G == 0 required. In-place (y == x) allowed.
 * _silu variants apply SiLU to the result (the common GroupNorm+SiLU pair).
 * Fast variant: per (n, g) two passes (mean, then centred sum of squares)
 * with 16 float partial sums over fixed element blocks, combined in fixed
 * order; (n, g) pairs are split over threads. */
ms_status ms_group_norm_ref(float *y, const float *x, const float *gamma, const float *beta,
                            size_t N, size_t C, size_t HW, size_t G, float eps);
ms_status ms_group_norm(float *y, const float *x, const float *gamma, const float *beta,
                        size_t N, size_t C, size_t HW, size_t G, float eps);
ms_status ms_group_norm_silu_ref(float *y, const float *x, const float *gamma,
                                 const float *beta, size_t N, size_t C, size_t HW, size_t G,
                                 float eps);
ms_status ms_group_norm_silu(float *y, const float *x, const float *gamma, const float *beta,
                             size_t N, size_t C, size_t HW, size_t G, float eps);

/* ---------------------------------------------------------- Activations */

/* y = x * sigmoid(x) = x / (1 + exp(-x)).  y, x: [n]; in-place allowed. */
void ms_silu_ref(float *y, const float *x, size_t n);
void ms_silu(float *y, const float *x, size_t n);

/* y = exp(x).  y, x: [n]; in-place allowed.
 * _ref: double exp, rounded. Fast: the vectorised float exp that SiLU,
 * GroupNorm+SiLU, softmax and attention use (Cephes polynomial with FMA;
 * AVX-512, AVX2 and the scalar fallback give the same bytes); at most
 * 2 ulp from the correctly rounded value, +inf above 88.72, 0 below
 * -103.9 (denormals in between rounded once), NaN for NaN. */
void ms_exp_ref(float *y, const float *x, size_t n);
void ms_exp(float *y, const float *x, size_t n);

/* Exact GELU (PyTorch default, approximate='none'):
 *   y = 0.5 * x * (1 + erf(x / sqrt(2))).  y, x: [n]; in-place allowed. */
void ms_gelu_ref(float *y, const float *x, size_t n);
void ms_gelu(float *y, const float *x, size_t n);

/* Softmax over each row (numerically stable: exp(x - rowmax) / sum).
 *   y, x: [rows, cols]; in-place allowed. cols == 0 is a no-op. */
void ms_softmax_rows_ref(float *y, const float *x, size_t rows, size_t cols);
void ms_softmax_rows(float *y, const float *x, size_t rows, size_t cols);

/* ------------------------------------------------------------ Attention */

/* Where q, k, v and o keep head h, channel j (0 <= j < head_dim), token t of
 * batch item n. Channels of all heads are concatenated: c = h*head_dim + j
 * (the PyTorch `view(N, T, heads, head_dim)` split).
 *   MS_ATTN_NCT: [N, heads*head_dim, T]  - what a 1x1 conv on NCHW gives
 *                (T = H*W), so no transposes are needed around the UNet.
 *   MS_ATTN_NTC: [N, T, heads*head_dim]  - what a linear layer gives. */
typedef enum { MS_ATTN_NCT, MS_ATTN_NTC, MS_ATTN_LAYOUT_COUNT } ms_attn_layout;

const char *ms_attn_layout_name(ms_attn_layout l);
/* "nct"/"ntc" -> value; MS_ATTN_LAYOUT_COUNT otherwise. */
ms_attn_layout ms_attn_layout_from_name(const char *name);

/* Scaled dot-product attention per head (no mask, no dropout):
 *   o = softmax(q k^T / sqrt(head_dim)) v
 *   o, q: [N, heads*head_dim, Tq] or [N, Tq, heads*head_dim] (see layout)
 *   k, v: [N, heads*head_dim, Tk] or [N, Tk, heads*head_dim]
 * Self-attention over H*W tokens is Tq = Tk = H*W. o must not overlap q, k, v.
 * The scale is (float)(1/sqrt((double)head_dim)).
 * _ref materialises one row of scores at a time (double accumulation).
 * Fast variant: blocked "online softmax" over key blocks of fixed size, so
 * memory is O(block * head_dim) per thread, independent of T; work items
 * (n, h, query block) are split over threads; key blocks are visited in
 * increasing order. */
ms_status ms_attention_ref(float *o, const float *q, const float *k, const float *v,
                           size_t N, size_t heads, size_t head_dim, size_t Tq, size_t Tk,
                           ms_attn_layout layout);
ms_status ms_attention(float *o, const float *q, const float *k, const float *v,
                       size_t N, size_t heads, size_t head_dim, size_t Tq, size_t Tk,
                       ms_attn_layout layout, float *scratch, size_t scratch_floats);
/* Scratch for ms_attention with up to n_threads threads (n_threads <= 0:
 * omp_get_max_threads()). With less scratch than that, ms_attention runs on
 * as many threads as the scratch allows (same bytes); with less than one
 * thread's share it returns MS_ERR_INVALID. */
size_t ms_attention_scratch_floats(size_t head_dim, int n_threads);

/* ------------------------------------------------- Resampling and misc */

/* Nearest-neighbour 2x upsampling (F.interpolate(scale_factor=2,
 * mode="nearest")): y[n,c,i,j] = x[n,c,i/2,j/2].
 *   y: [N, C, 2H, 2W]   x: [N, C, H, W] */
void ms_upsample_nearest2x_ref(float *y, const float *x, size_t N, size_t C, size_t H, size_t W);
void ms_upsample_nearest2x(float *y, const float *x, size_t N, size_t C, size_t H, size_t W);

/* 2x2 average pooling, stride 2 (F.avg_pool2d(x, 2)); odd trailing rows and
 * columns are dropped (floor), as in PyTorch.
 *   y: [N, C, H/2, W/2]   x: [N, C, H, W] */
void ms_avgpool2x_ref(float *y, const float *x, size_t N, size_t C, size_t H, size_t W);
void ms_avgpool2x(float *y, const float *x, size_t N, size_t C, size_t H, size_t W);

/* y = a + b.  y, a, b: [n]; in-place (y == a or y == b) allowed. */
void ms_add_ref(float *y, const float *a, const float *b, size_t n);
void ms_add(float *y, const float *a, const float *b, size_t n);

/* Per-channel broadcast add (e.g. a timestep embedding projected to C):
 *   y[n,c,i] = x[n,c,i] + b[n,c]
 *   y, x: [N, C, HW]   b: [N, C]; in-place (y == x) allowed. */
void ms_add_channel_ref(float *y, const float *x, const float *b, size_t N, size_t C, size_t HW);
void ms_add_channel(float *y, const float *x, const float *b, size_t N, size_t C, size_t HW);

/* torch.cat([a, b], dim=1):
 *   y: [N, Ca+Cb, HW]   a: [N, Ca, HW]   b: [N, Cb, HW] */
void ms_concat_channels_ref(float *y, const float *a, const float *b, size_t N, size_t Ca,
                            size_t Cb, size_t HW);
void ms_concat_channels(float *y, const float *a, const float *b, size_t N, size_t Ca,
                        size_t Cb, size_t HW);

/* Sinusoidal timestep embedding, [cos, sin] order (guided-diffusion
 * `timestep_embedding`; diffusers with flip_sin_to_cos=True, shift 0):
 *   half     = dim / 2   (integer division)
 *   freq[i]  = exp(-ln(max_period) * i / half),   i = 0 .. half-1
 *   arg[n,i] = t[n] * freq[i]
 *   y[n, i]        = cos(arg[n,i])
 *   y[n, half + i] = sin(arg[n,i])
 *   y[n, dim-1]    = 0 when dim is odd
 * Evaluated in float32 the way PyTorch does it: freq[i] =
 * expf(((float)-ln(max_period) * (float)i) / (float)half),
 * arg = (float)t * freq (one float multiply); cos/sin of that float arg.
 *   y: [N, dim]   t: [N] (timesteps as float)
 * max_period is 10000 in every common UNet. MS_ERR_INVALID for dim < 2 or
 * max_period <= 0. */
ms_status ms_timestep_embedding_ref(float *y, const float *t, size_t N, size_t dim,
                                    float max_period);
ms_status ms_timestep_embedding(float *y, const float *t, size_t N, size_t dim,
                                float max_period);

/* ------------------------------------------------------------- Dispatch */

/* The SIMD path the fast kernels take on this CPU (chosen per call with
 * __builtin_cpu_supports; no global state). */
typedef enum {
  MS_KERNEL_ISA_GENERIC, /* GCC vector extensions, any CPU */
  MS_KERNEL_ISA_AVX2,    /* AVX2 + FMA */
  MS_KERNEL_ISA_AVX512,  /* AVX-512F + FMA */
  MS_KERNEL_ISA_COUNT
} ms_kernel_isa;

ms_kernel_isa ms_kernel_isa_detect(void);
const char *ms_kernel_isa_name(ms_kernel_isa isa);
/* "generic"/"avx2"/"avx512" -> value; MS_KERNEL_ISA_COUNT otherwise. */
ms_kernel_isa ms_kernel_isa_from_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif
