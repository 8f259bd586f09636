/* Blocked SGEMM: packed panels, SIMD micro-kernels, threads over output tiles.
 *
 * Threads (core/pool.h): C is cut into a tm x tn grid of rectangles made of
 * whole MR x NR tiles, one per thread; the threads take rectangles in order
 * as they become free (a helper that has not woken up leaves its rectangle
 * to the caller), and each runs the serial algorithm below on its
 * rectangle with its own share of the scratch. No barriers inside. Unlike
 * the convolutions, SGEMM is not cut finer: every rectangle packs its own
 * panels of A and B, and four rectangles instead of two cost 3-5 % more
 * work at 1024^3 (10 % on a 64-row conv-shaped product).
 *
 * Serial loop nest (Goto/BLIS):
 *   for jc (columns, blocks of <= NC)
 *     for pc (k, blocks of exactly MS_SGEMM_KC, last one shorter)
 *       pack op(B)[pc.., jc..] into NR-wide micro-panels
 *       for ic (rows, blocks of <= MC)
 *         pack op(A)[ic.., pc..] into MR-tall micro-panels
 *         for each MR x NR tile:
 *           acc = sum over the kc values of this block, sequential FMA
 *           first pc block: C = beta*C + alpha*acc   (beta == 0: C = alpha*acc)
 *           later blocks:   C = C + alpha*acc        (one FMA)
 * Determinism: every C element belongs to one tile; its value is produced
 * by the same instructions in the same k order whatever the thread count,
 * grid, or M/N blocking (those only decide *who* computes a tile). Partial
 * edge tiles run the same micro-kernel on a copy of the tile, so edges
 * round exactly like interior tiles. Packing is a pure copy (zero padding).
 *
 * Micro-kernels: AVX-512F (MR 14 x NR 32: 28 zmm accumulators, B row in two
 * zmm, A broadcast), AVX2+FMA (6 x 16: 12 ymm), portable GCC vectors
 * (4 x 8, 128-bit vectors; contracts to FMA only where the target has it).
 * All use the same KC, so they differ only by FMA-vs-mul/add rounding.
 *
 * Reference: Goto & van de Geijn, ACM TOMS 34(3), 2008; Van Zee & van de
 * Geijn, "BLIS", ACM TOMS 41(3), 2015. */
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MS_HAVE_X86 1
#endif

#include "core/pool.h"
#include "kern_internal.h"
#ifdef MS_HAVE_X86
#include "ukr_avx512.h"
#endif

#define KC MS_SGEMM_KC
#define MC 336  /* multiple of 14, 6 and 4 */
#define NC 1024 /* multiple of 32, 16 and 8 */
#define MAX_MR 14
#define MAX_NR 32

typedef ms__ukr_fn ukr_fn;

typedef struct {
  size_t mr, nr;
  ukr_fn ukr;
} isa_cfg;

/* ------------------------------------------------------------ kernels */

typedef float v4f __attribute__((vector_size(16)));

static void ukr_generic(size_t kc, const float *restrict a, const float *restrict b,
                        float *restrict c, size_t ldc, float alpha, float beta, int first) {
  v4f acc[4][2];
  for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = (v4f){0, 0, 0, 0};
  for (size_t k = 0; k < kc; k++) {
    v4f b0, b1;
    memcpy(&b0, b + 8 * k, sizeof b0);
    memcpy(&b1, b + 8 * k + 4, sizeof b1);
    for (int r = 0; r < 4; r++) {
      const float av = a[4 * k + r];
      acc[r][0] += av * b0;
      acc[r][1] += av * b1;
    }
  }
  for (int r = 0; r < 4; r++) {
    for (int h = 0; h < 2; h++) {
      float *cr = c + (size_t)r * ldc + 4 * h;
      v4f cv;
      if (first && beta == 0.0f) {
        cv = alpha * acc[r][h];
      } else {
        memcpy(&cv, cr, sizeof cv);
        cv = first ? alpha * acc[r][h] + beta * cv : alpha * acc[r][h] + cv;
      }
      memcpy(cr, &cv, sizeof cv);
    }
  }
}

#ifdef MS_HAVE_X86
__attribute__((target("avx2,fma"))) static inline __m256 st8(const float *cr, __m256 acc,
                                                              __m256 va, __m256 vb, float beta,
                                                              int first) {
  if (first && beta == 0.0f) return _mm256_mul_ps(va, acc);
  __m256 cv = _mm256_loadu_ps(cr);
  if (first) cv = _mm256_mul_ps(vb, cv);
  return _mm256_fmadd_ps(va, acc, cv);
}

__attribute__((target("avx2,fma"))) static void ukr_avx2(size_t kc, const float *restrict a,
                                                          const float *restrict b,
                                                          float *restrict c, size_t ldc,
                                                          float alpha, float beta, int first) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (size_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 av;
#define AVX2_ROW(r)                            \
  av = _mm256_broadcast_ss(a + r);             \
  c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0); \
  c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);
    AVX2_ROW(0) AVX2_ROW(1) AVX2_ROW(2) AVX2_ROW(3) AVX2_ROW(4) AVX2_ROW(5)
#undef AVX2_ROW
    a += 6;
    b += 16;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#define AVX2_ST(r)                                                                   \
  _mm256_storeu_ps(c + r * ldc, st8(c + r * ldc, c##r##0, va, vb, beta, first));     \
  _mm256_storeu_ps(c + r * ldc + 8, st8(c + r * ldc + 8, c##r##1, va, vb, beta, first));
  AVX2_ST(0) AVX2_ST(1) AVX2_ST(2) AVX2_ST(3) AVX2_ST(4) AVX2_ST(5)
#undef AVX2_ST
}

/* AVX-512 micro-kernel of MR rows x NR = 16 * (blocks in COLS) columns,
 * tile in ukr_avx512.h. ukr_avx512: 14 x 32, 28 zmm accumulators, B row in
 * two zmm. ukr_avx512_8x48, for the implicit-GEMM conv2d (output-channel
 * counts are multiples of 8, not of 14): 24 zmm accumulators, B row in
 * three zmm. Each accumulator lane sees the same FMA sequence in both, so
 * the two kernels give the same bytes for the same element. */
#define UKR_AVX512(NAME, MR, NR, ROWS, COLS)                                                      \
  __attribute__((target("avx512f,fma"))) static void NAME(                                        \
      size_t kc, const float *restrict a, const float *restrict b, float *restrict c, size_t ldc, \
      float alpha, float beta, int first) {                                                       \
    MS__Z_ZERO(ROWS, COLS)                                                                        \
    for (size_t k = 0; k < kc; k++) {                                                             \
      MS__Z_STEP(ROWS, COLS, b)                                                                   \
      a += MR;                                                                                    \
      b += NR;                                                                                    \
    }                                                                                             \
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                           \
    MS__Z_STORE(ROWS, COLS)                                                                       \
  }
UKR_AVX512(ukr_avx512, 14, 32, MS__Z_ROWS14, MS__Z_COLS2)
UKR_AVX512(ukr_avx512_8x48, 8, 48, MS__Z_ROWS8, MS__Z_COLS3)
#undef UKR_AVX512
#endif

static int isa_config(ms_kernel_isa isa, isa_cfg *cfg) {
  switch (isa) {
    case MS_KERNEL_ISA_GENERIC:
      *cfg = (isa_cfg){4, 8, ukr_generic};
      return 1;
#ifdef MS_HAVE_X86
    case MS_KERNEL_ISA_AVX2:
      *cfg = (isa_cfg){6, 16, ukr_avx2};
      return 1;
    case MS_KERNEL_ISA_AVX512:
      *cfg = (isa_cfg){14, 32, ukr_avx512};
      return 1;
#endif
    default:
      return 0;
  }
}

int ms__sgemm_ukr(ms_kernel_isa isa, int wide, size_t *mr, size_t *nr, ms__ukr_fn *fn) {
  isa_cfg cfg;
  if ((unsigned)isa >= MS_KERNEL_ISA_COUNT || !ms__isa_supported(isa) || !isa_config(isa, &cfg))
    return 0;
#ifdef MS_HAVE_X86
  if (wide && isa == MS_KERNEL_ISA_AVX512) cfg = (isa_cfg){8, 48, ukr_avx512_8x48};
#else
  (void)wide;
#endif
  *mr = cfg.mr;
  *nr = cfg.nr;
  *fn = cfg.ukr;
  return 1;
}

/* ------------------------------------------------------------ packing */

static inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
static inline size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* Strip s of op(A): rows i0 + s*mr .. (+mr), k = p0 .. p0+kc, as dst[k*mr + r]. */
static void pack_a_strip(float *restrict dst, const float *restrict A, size_t lda, ms_trans ta,
                         size_t i0, size_t rows, size_t p0, size_t kc, size_t mr) {
  if (ta == MS_TRANS_NO) {
    for (size_t r = 0; r < mr; r++) {
      if (r < rows) {
        const float *src = A + (i0 + r) * lda + p0;
        for (size_t k = 0; k < kc; k++) dst[k * mr + r] = src[k];
      } else {
        for (size_t k = 0; k < kc; k++) dst[k * mr + r] = 0.0f;
      }
    }
  } else {
    for (size_t k = 0; k < kc; k++) {
      const float *src = A + (p0 + k) * lda + i0;
      size_t r = 0;
      for (; r < rows; r++) dst[k * mr + r] = src[r];
      for (; r < mr; r++) dst[k * mr + r] = 0.0f;
    }
  }
}

/* Strip s of op(B): columns j0 .. j0+cols (<= nr), k = p0 .. p0+kc, as dst[k*nr + c]. */
static void pack_b_strip(float *restrict dst, const float *restrict B, size_t ldb, ms_trans tb,
                         size_t p0, size_t kc, size_t j0, size_t cols, size_t nr) {
  if (tb == MS_TRANS_NO) {
    for (size_t k = 0; k < kc; k++) {
      const float *src = B + (p0 + k) * ldb + j0;
      size_t c = 0;
      for (; c < cols; c++) dst[k * nr + c] = src[c];
      for (; c < nr; c++) dst[k * nr + c] = 0.0f;
    }
  } else {
    for (size_t c = 0; c < nr; c++) {
      if (c < cols) {
        const float *src = B + (j0 + c) * ldb + p0;
        for (size_t k = 0; k < kc; k++) dst[k * nr + c] = src[k];
      } else {
        for (size_t k = 0; k < kc; k++) dst[k * nr + c] = 0.0f;
      }
    }
  }
}

/* ------------------------------------------------------------ driver */

/* Scratch of one thread working on an m x n part of C. */
static size_t need_for(const isa_cfg *cfg, size_t m, size_t n, size_t K) {
  size_t kc = min_sz(K, KC);
  return round_up(min_sz(m, MC), cfg->mr) * kc + kc * round_up(min_sz(n, NC), cfg->nr) + 32;
}

/* Per-thread share, the largest over all ISA paths so that one size fits
 * whichever path runs. */
static size_t per_thread_floats(size_t M, size_t N, size_t K) {
  static const isa_cfg cfgs[] = {{4, 8, NULL}, {6, 16, NULL}, {14, 32, NULL}};
  size_t need = 0;
  for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
    size_t n = need_for(&cfgs[i], M, N, K);
    if (n > need) need = n;
  }
  return need;
}

/* Threads worth using: tiny products stay on one thread (never changes bytes). */
static size_t useful_threads(size_t M, size_t N, size_t K) {
  size_t nt = ms__parallel_threads();
  if ((double)M * (double)N * (double)K < 48.0 * 48.0 * 48.0) nt = 1;
  return nt < 1 ? 1 : nt;
}

size_t ms__sgemm_min_scratch(size_t M, size_t N, size_t K) {
  if (M == 0 || N == 0 || K == 0) return 0;
  return per_thread_floats(M, N, K);
}

size_t ms_sgemm_scratch_floats(size_t M, size_t N, size_t K) {
  if (M == 0 || N == 0 || K == 0) return 0;
  return per_thread_floats(M, N, K) * useful_threads(M, N, K);
}

static float *align64(float *p) {
  uintptr_t u = (uintptr_t)p;
  return (float *)((u + 63) & ~(uintptr_t)63);
}

/* Block length for `total` split into blocks of at most `cap`, balanced and
 * rounded up to `unit` (only decides tiling, never the arithmetic). */
static size_t balanced_block(size_t total, size_t cap, size_t unit) {
  size_t nb = (total + cap - 1) / cap;
  return min_sz(cap, round_up((total + nb - 1) / nb, unit));
}

/* The whole serial algorithm on C[0:M, 0:N] (a thread's rectangle). */
static void gemm_serial(const isa_cfg *cfg, float *C, size_t ldc, const float *A, size_t lda,
                        const float *B, size_t ldb, ms_trans ta, ms_trans tb, size_t M,
                        size_t N, size_t K, float alpha, float beta, float *ws) {
  const size_t mr = cfg->mr, nr = cfg->nr;
  const ukr_fn ukr = cfg->ukr;
  const size_t mcb = balanced_block(M, MC, mr), ncb = balanced_block(N, NC, nr);
  float *Ap = align64(ws);
  float *Bp = align64(Ap + round_up(min_sz(M, MC), mr) * min_sz(K, KC));
  for (size_t jc = 0; jc < N; jc += ncb) {
    const size_t nc = min_sz(ncb, N - jc);
    const size_t n_jr = (nc + nr - 1) / nr;
    for (size_t pc = 0; pc < K; pc += KC) {
      const size_t kc = min_sz(KC, K - pc);
      const int first = pc == 0;
      for (size_t jr = 0; jr < n_jr; jr++)
        pack_b_strip(Bp + jr * nr * kc, B, ldb, tb, pc, kc, jc + jr * nr,
                     min_sz(nr, nc - jr * nr), nr);
      for (size_t ic = 0; ic < M; ic += mcb) {
        const size_t mc = min_sz(mcb, M - ic);
        const size_t n_ir = (mc + mr - 1) / mr;
        for (size_t ir = 0; ir < n_ir; ir++)
          pack_a_strip(Ap + ir * mr * kc, A, lda, ta, ic + ir * mr, min_sz(mr, mc - ir * mr),
                       pc, kc, mr);
        for (size_t jr = 0; jr < n_jr; jr++) {
          const size_t cols = min_sz(nr, nc - jr * nr);
          const float *bp = Bp + jr * nr * kc;
          for (size_t ir = 0; ir < n_ir; ir++) {
            const size_t rows = min_sz(mr, mc - ir * mr);
            float *ct = C + (ic + ir * mr) * ldc + jc + jr * nr;
            const float *ap = Ap + ir * mr * kc;
            if (rows == mr && cols == nr) {
              ukr(kc, ap, bp, ct, ldc, alpha, beta, first);
            } else {
              float tile[MAX_MR * MAX_NR] __attribute__((aligned(64)));
              memset(tile, 0, sizeof tile);
              if (!(first && beta == 0.0f))
                for (size_t r = 0; r < rows; r++)
                  memcpy(tile + r * nr, ct + r * ldc, cols * sizeof(float));
              ukr(kc, ap, bp, tile, nr, alpha, beta, first);
              for (size_t r = 0; r < rows; r++)
                memcpy(ct + r * ldc, tile + r * nr, cols * sizeof(float));
            }
          }
        }
      }
    }
  }
}

/* Split an nt-thread run into a tm x tn grid of C rectangles (in whole
 * MR x NR tiles) with the smallest largest rectangle; ties prefer column
 * splits (each thread then packs a disjoint part of B). */
static void choose_grid(size_t nt, size_t M, size_t N, size_t mr, size_t nr, size_t *tm,
                        size_t *tn) {
  const size_t tiles_m = (M + mr - 1) / mr, tiles_n = (N + nr - 1) / nr;
  size_t best_m = 1, best_n = 1;
  double best = 1e300;
  for (size_t a = 1; a <= nt; a++) {
    if (nt % a) continue;
    size_t b = nt / a; /* a row bands, b column bands */
    if (a > tiles_m || b > tiles_n) continue;
    double w = (double)((tiles_m + a - 1) / a) * (double)((tiles_n + b - 1) / b);
    if (w < best || (w == best && b > best_n)) {
      best = w;
      best_m = a;
      best_n = b;
    }
  }
  *tm = best_m;
  *tn = best_n;
}

typedef struct {
  const isa_cfg *cfg;
  float *C;
  size_t ldc;
  const float *A;
  size_t lda;
  const float *B;
  size_t ldb;
  ms_trans ta, tb;
  size_t M, N, K;
  float alpha, beta;
  float *scratch;
  size_t per;
  size_t tm, tn, tiles_m, tiles_n;
} gemm_job;

/* Rectangle t of the tm x tn grid, on the worker's packing buffers. */
static void gemm_rect(void *ctx, size_t t, size_t worker) {
  const gemm_job *j = ctx;
  const size_t mr = j->cfg->mr, nr = j->cfg->nr, M = j->M, N = j->N;
  const size_t bi = t / j->tn, bj = t % j->tn;
  const size_t m0 = min_sz(M, bi * j->tiles_m / j->tm * mr);
  const size_t m1 = min_sz(M, (bi + 1) * j->tiles_m / j->tm * mr);
  const size_t n0 = min_sz(N, bj * j->tiles_n / j->tn * nr);
  const size_t n1 = min_sz(N, (bj + 1) * j->tiles_n / j->tn * nr);
  if (m1 <= m0 || n1 <= n0) return;
  const float *As = j->ta == MS_TRANS_NO ? j->A + m0 * j->lda : j->A + m0;
  const float *Bs = j->tb == MS_TRANS_NO ? j->B + n0 : j->B + n0 * j->ldb;
  gemm_serial(j->cfg, j->C + m0 * j->ldc + n0, j->ldc, As, j->lda, Bs, j->ldb, j->ta, j->tb,
              m1 - m0, n1 - n0, j->K, j->alpha, j->beta, j->scratch + worker * j->per);
}

ms_status ms__sgemm_isa(ms_kernel_isa isa, float *C, size_t ldc, const float *A, size_t lda,
                        const float *B, size_t ldb, ms_trans ta, ms_trans tb, size_t M,
                        size_t N, size_t K, float alpha, float beta, float *scratch,
                        size_t scratch_floats) {
  ms_status s = ms__sgemm_check(C, ldc, A, lda, B, ldb, ta, tb, M, N, K);
  if (s != MS_OK) return s;
  if (M == 0 || N == 0) return MS_OK;
  isa_cfg cfg;
  if ((unsigned)isa >= MS_KERNEL_ISA_COUNT || !ms__isa_supported(isa) || !isa_config(isa, &cfg))
    return MS_ERR_UNSUPPORTED;
  if (K == 0) {
    for (size_t i = 0; i < M; i++)
      for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return MS_OK;
  }
  const size_t per = per_thread_floats(M, N, K);
  if (!scratch || scratch_floats < per) return MS_ERR_INVALID;
  size_t nt = useful_threads(M, N, K);
  if (nt > scratch_floats / per) nt = scratch_floats / per;
  /* Some thread counts cannot be split (more threads than tiles); use the
   * largest count the grid can take. */
  size_t tm = 1, tn = 1;
  for (; nt > 1; nt--) {
    choose_grid(nt, M, N, cfg.mr, cfg.nr, &tm, &tn);
    if (tm * tn == nt) break;
  }
  if (nt <= 1) {
    gemm_serial(&cfg, C, ldc, A, lda, B, ldb, ta, tb, M, N, K, alpha, beta, scratch);
    return MS_OK;
  }
  gemm_job j = {&cfg, C, ldc, A, lda, B, ldb, ta, tb, M, N, K, alpha, beta, scratch, per,
                tm, tn, (M + cfg.mr - 1) / cfg.mr, (N + cfg.nr - 1) / cfg.nr};
  ms__parallel(tm * tn, nt, gemm_rect, &j);
  return MS_OK;
}
