/* Tests of the compute kernels (gen/kernels/): fast variants against _ref on
 * odd shapes, guard canaries around every output, identical bytes for 1, 2,
 * 3 and 8 threads, results worked out by hand, and argument checks.
 * ctest-labels: unit
 *
 * Tolerances (docs/kernels.md): GEMM-like ops (sgemm, linear, conv2d) are
 * checked element by element against the rounding-error bound of blocked
 * float summation,
 *   |fast - ref| <= 2^-23 * (min(K, KC) + ceil(K/KC) + 2) * (|alpha| S + |beta c|)
 * where S = sum_k |a_ik||b_kj| (computed with _ref on absolute values).
 * Other ops use the relative/absolute bounds stated next to each check. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/kern_internal.h"
#include "medsynth/kernels.h"

/* ------------------------------------------------------------ helpers */

#define GUARD 16
static const uint32_t CANARY = 0x7fc0dea1u; /* a quiet NaN with a payload */

/* n floats with GUARD canary floats on each side; returns the inner pointer. */
static float *gbuf(size_t n) {
  float *p = malloc((n + 2 * GUARD) * sizeof(float));
  assert_non_null(p);
  for (size_t i = 0; i < n + 2 * GUARD; i++) memcpy(p + i, &CANARY, 4);
  return p + GUARD;
}

/* Asserts that the canaries on both sides are intact, then frees. */
static void gfree(float *p, size_t n) {
  if (!p) return;
  float *base = p - GUARD;
  for (size_t i = 0; i < GUARD; i++) {
    uint32_t a, b;
    memcpy(&a, base + i, 4);
    memcpy(&b, p + n + i, 4);
    if (a != CANARY || b != CANARY) fail_msg("guard overwritten at offset %zu", i);
  }
  free(base);
}

static uint32_t lcg_state;
static float frand(void) {
  lcg_state = lcg_state * 1664525u + 1013904223u;
  return (float)(lcg_state >> 8) / 16777216.0f * 2.0f - 1.0f; /* [-1, 1) */
}
static void fill(float *p, size_t n, uint32_t seed) {
  lcg_state = seed;
  for (size_t i = 0; i < n; i++) p[i] = frand();
}
static void fill_nan(float *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = NAN;
}
static void absv(float *dst, const float *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = fabsf(src[i]);
}

static double gemm_tol_factor(size_t K) {
  size_t kc = K < MS_SGEMM_KC ? K : MS_SGEMM_KC;
  return ldexp(1.0, -23) * (double)(kc + (K + MS_SGEMM_KC - 1) / MS_SGEMM_KC + 2);
}

/* Elementwise |got - want| <= factor * bound[i] + abs_floor; reports the
 * worst element relative to its bound. */
static void check_bound(const char *what, const float *got, const float *want,
                        const float *bound, size_t n, double factor, double abs_floor) {
  double worst = 0.0;
  size_t wi = 0;
  for (size_t i = 0; i < n; i++) {
    double tol = factor * (double)bound[i] + abs_floor;
    double d = fabs((double)got[i] - (double)want[i]);
    if (isnan(got[i]) != isnan(want[i])) fail_msg("%s: NaN mismatch at %zu", what, i);
    double r = tol > 0 ? d / tol : (d > 0 ? INFINITY : 0);
    if (r > worst) {
      worst = r;
      wi = i;
    }
  }
  if (worst > 1.0)
    fail_msg("%s: element %zu got %.9g want %.9g (|diff| %.3g, %.2fx the tolerance)", what, wi,
             (double)got[wi], (double)want[wi], fabs((double)got[wi] - (double)want[wi]), worst);
}

/* |got - want| <= rtol*|want| + atol, worst element reported. */
static void check_close(const char *what, const float *got, const float *want, size_t n,
                        double rtol, double atol) {
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)want[i]);
    if (!(d <= rtol * fabs((double)want[i]) + atol))
      fail_msg("%s: element %zu got %.9g want %.9g", what, i, (double)got[i], (double)want[i]);
  }
}

static const size_t ODD[] = {1, 7, 17, 63, 129, 257};
#define N_ODD (sizeof ODD / sizeof ODD[0])

/* ------------------------------------------------------------ sgemm */

/* One fast-vs-ref comparison of C = alpha op(A) op(B) + beta C with padded
 * leading dimensions and guards around every buffer. */
static void sgemm_case(ms_kernel_isa isa, ms_trans ta, ms_trans tb, size_t M, size_t N,
                       size_t K, float alpha, float beta, uint32_t seed) {
  const size_t ar = ta == MS_TRANS_NO ? M : K, ac = ta == MS_TRANS_NO ? K : M;
  const size_t br = tb == MS_TRANS_NO ? K : N, bc = tb == MS_TRANS_NO ? N : K;
  const size_t lda = ac + 3, ldb = bc + 1, ldc = N + 5;
  const size_t na = ar * lda, nb = br * ldb, nc = M * ldc;
  float *A = gbuf(na), *B = gbuf(nb), *C = gbuf(nc), *R = gbuf(nc), *S = gbuf(nc);
  float *Aa = gbuf(na), *Ba = gbuf(nb);
  fill(A, na, seed);
  fill(B, nb, seed + 1);
  fill(C, nc, seed + 2);
  memcpy(R, C, nc * sizeof(float));
  if (beta == 0.0f) fill_nan(C, nc); /* must not be read */
  absv(Aa, A, na);
  absv(Ba, B, nb);
  for (size_t i = 0; i < nc; i++) S[i] = fabsf(beta * R[i]);
  size_t ns = ms_sgemm_scratch_floats(M, N, K);
  float *scratch = gbuf(ns ? ns : 1);
  assert_int_equal(ms__sgemm_isa(isa, C, ldc, A, lda, B, ldb, ta, tb, M, N, K, alpha, beta,
                                 scratch, ns),
                   MS_OK);
  assert_int_equal(ms_sgemm_ref(R, ldc, A, lda, B, ldb, ta, tb, M, N, K, alpha, beta), MS_OK);
  /* S = |alpha| sum |a||b| + |beta c| */
  assert_int_equal(ms_sgemm_ref(S, ldc, Aa, lda, Ba, ldb, ta, tb, M, N, K, fabsf(alpha), 1.0f),
                   MS_OK);
  char what[128];
  snprintf(what, sizeof what, "sgemm %s ta=%d tb=%d M=%zu N=%zu K=%zu", ms_kernel_isa_name(isa),
           ta, tb, M, N, K);
  /* Padding columns between rows of C must be untouched: compare whole rows. */
  for (size_t i = 0; i < M; i++) {
    for (size_t j = N; j < ldc; j++) {
      float want = beta == 0.0f ? NAN : R[i * ldc + j];
      uint32_t g, w;
      memcpy(&g, C + i * ldc + j, 4);
      memcpy(&w, &want, 4);
      if (beta != 0.0f && g != w) fail_msg("%s: padding column written at (%zu,%zu)", what, i, j);
      if (beta == 0.0f && !isnan(C[i * ldc + j])) fail_msg("%s: padding written", what);
    }
  }
  for (size_t i = 0; i < M; i++)
    check_bound(what, C + i * ldc, R + i * ldc, S + i * ldc, N, gemm_tol_factor(K), 0.0);
  gfree(A, na);
  gfree(B, nb);
  gfree(C, nc);
  gfree(R, nc);
  gfree(S, nc);
  gfree(Aa, na);
  gfree(Ba, nb);
  gfree(scratch, ns ? ns : 1);
}

static void test_kernels_sgemm_matches_ref_odd_shapes(void **state) {
  (void)state;
  uint32_t seed = 1;
  for (int isa = 0; isa < MS_KERNEL_ISA_COUNT; isa++) {
    if (!ms__isa_supported((ms_kernel_isa)isa)) continue;
    for (size_t mi = 0; mi < N_ODD; mi++)
      for (size_t ni = 0; ni < N_ODD; ni++)
        for (size_t ki = 0; ki < N_ODD; ki++) {
          /* All transposes on the detected path; one rotating combination on
           * the others, so every path sees every combination across shapes. */
          for (int t = 0; t < 4; t++) {
            if (isa != (int)ms_kernel_isa_detect() && t != (int)((mi + ni + ki) % 4)) continue;
            float beta = (t & 1) ? 0.0f : 0.5f;
            sgemm_case((ms_kernel_isa)isa, (ms_trans)(t & 1), (ms_trans)(t >> 1), ODD[mi],
                       ODD[ni], ODD[ki], t == 3 ? -1.25f : 1.0f, beta, seed++);
          }
        }
  }
}

static void test_kernels_sgemm_long_k_crosses_blocks(void **state) {
  (void)state;
  /* K > KC exercises the "later block" accumulation and beta only once. */
  const size_t Ks[] = {MS_SGEMM_KC - 1, MS_SGEMM_KC, MS_SGEMM_KC + 1, 3 * MS_SGEMM_KC + 17};
  for (size_t i = 0; i < 4; i++)
    for (int isa = 0; isa < MS_KERNEL_ISA_COUNT; isa++)
      if (ms__isa_supported((ms_kernel_isa)isa))
        sgemm_case((ms_kernel_isa)isa, MS_TRANS_NO, MS_TRANS_YES, 37, 45, Ks[i], 0.75f, 2.0f,
                   100 + (uint32_t)i);
  /* Large M and N: several MC/NC blocks and threads. */
  sgemm_case(ms_kernel_isa_detect(), MS_TRANS_NO, MS_TRANS_NO, 700, 1100, 300, 1.0f, 0.0f, 7);
}

static void test_kernels_sgemm_known_values(void **state) {
  (void)state;
  /* [1 2 3; 4 5 6] * [7 8; 9 10; 11 12] = [58 64; 139 154]; with alpha 2,
   * beta 1 and C = [1 2; 3 4]: [117 130; 281 312]. */
  const float A[6] = {1, 2, 3, 4, 5, 6}, At[6] = {1, 4, 2, 5, 3, 6};
  const float B[6] = {7, 8, 9, 10, 11, 12}, Bt[6] = {7, 9, 11, 8, 10, 12};
  const float want[4] = {117, 130, 281, 312};
  float scratch[4096];
  for (int t = 0; t < 4; t++) {
    ms_trans ta = (ms_trans)(t & 1), tb = (ms_trans)(t >> 1);
    const float *a = ta ? At : A, *b = tb ? Bt : B;
    size_t lda = ta ? 2 : 3, ldb = tb ? 3 : 2;
    float c1[4] = {1, 2, 3, 4}, c2[4] = {1, 2, 3, 4};
    assert_true(ms_sgemm_scratch_floats(2, 2, 3) <= 4096);
    assert_int_equal(ms_sgemm(c1, 2, a, lda, b, ldb, ta, tb, 2, 2, 3, 2.0f, 1.0f, scratch, 4096),
                     MS_OK);
    assert_int_equal(ms_sgemm_ref(c2, 2, a, lda, b, ldb, ta, tb, 2, 2, 3, 2.0f, 1.0f), MS_OK);
    for (int i = 0; i < 4; i++) {
      assert_true(c1[i] == want[i]);
      assert_true(c2[i] == want[i]);
    }
  }
  /* K == 0: C = beta*C; beta == 0 clears NaN. */
  float c[2] = {NAN, 3.0f};
  assert_int_equal(ms_sgemm(c, 2, NULL, 1, NULL, 1, MS_TRANS_NO, MS_TRANS_NO, 1, 2, 0, 1.0f, 0.0f,
                            NULL, 0),
                   MS_OK);
  assert_true(c[0] == 0.0f && c[1] == 0.0f);
}

static void test_kernels_sgemm_rejects_bad_arguments(void **state) {
  (void)state;
  float A[12] = {0}, B[12] = {0}, C[12], scratch[8192];
  for (int i = 0; i < 12; i++) C[i] = (float)i;
  /* lda < K */
  assert_int_equal(ms_sgemm(C, 3, A, 2, B, 3, MS_TRANS_NO, MS_TRANS_NO, 3, 3, 3, 1, 0, scratch,
                            8192),
                   MS_ERR_INVALID);
  assert_int_equal(ms_sgemm_ref(C, 3, A, 2, B, 3, MS_TRANS_NO, MS_TRANS_NO, 3, 3, 3, 1, 0),
                   MS_ERR_INVALID);
  /* ldc < N */
  assert_int_equal(ms_sgemm_ref(C, 2, A, 3, B, 3, MS_TRANS_NO, MS_TRANS_NO, 3, 3, 3, 1, 0),
                   MS_ERR_INVALID);
  /* ldb < K for a transposed B */
  assert_int_equal(ms_sgemm_ref(C, 3, A, 3, B, 2, MS_TRANS_NO, MS_TRANS_YES, 3, 3, 3, 1, 0),
                   MS_ERR_INVALID);
  /* bad enum, NULL */
  assert_int_equal(ms_sgemm_ref(C, 3, A, 3, B, 3, (ms_trans)7, MS_TRANS_NO, 3, 3, 3, 1, 0),
                   MS_ERR_INVALID);
  assert_int_equal(ms_sgemm_ref(C, 3, NULL, 3, B, 3, MS_TRANS_NO, MS_TRANS_NO, 3, 3, 3, 1, 0),
                   MS_ERR_INVALID);
  /* too little scratch */
  assert_int_equal(ms_sgemm(C, 3, A, 3, B, 3, MS_TRANS_NO, MS_TRANS_NO, 3, 3, 3, 1, 0, scratch,
                            ms_sgemm_scratch_floats(3, 3, 3) / 2),
                   MS_ERR_INVALID);
  /* overflowing leading dimension */
  assert_int_equal(ms_sgemm_ref(C, SIZE_MAX / 2, A, 3, B, 3, MS_TRANS_NO, MS_TRANS_NO, 3, 3, 3, 1,
                                0),
                   MS_ERR_INVALID);
  for (int i = 0; i < 12; i++) assert_true(C[i] == (float)i); /* untouched */
}

/* ------------------------------------------------------------ conv2d */

static void conv_case(const ms_conv2d_params *p, int with_bias, uint32_t seed) {
  size_t Ho, Wo;
  assert_int_equal(ms_conv2d_out_hw(p, &Ho, &Wo), MS_OK);
  const size_t nx = p->N * p->C * p->H * p->W, nw = p->C_out * p->C * p->kh * p->kw;
  const size_t ny = p->N * p->C_out * Ho * Wo;
  float *x = gbuf(nx), *w = gbuf(nw), *b = gbuf(p->C_out), *y = gbuf(ny), *r = gbuf(ny);
  float *xa = gbuf(nx), *wa = gbuf(nw), *ba = gbuf(p->C_out), *s = gbuf(ny);
  fill(x, nx, seed);
  fill(w, nw, seed + 1);
  fill(b, p->C_out, seed + 2);
  fill_nan(y, ny);
  absv(xa, x, nx);
  absv(wa, w, nw);
  absv(ba, b, p->C_out);
  size_t ns = ms_conv2d_scratch_floats(p);
  assert_true(ns > 0);
  float *scratch = gbuf(ns);
  assert_int_equal(ms_conv2d(y, x, w, with_bias ? b : NULL, p, scratch, ns), MS_OK);
  assert_int_equal(ms_conv2d_ref(r, x, w, with_bias ? b : NULL, p), MS_OK);
  assert_int_equal(ms_conv2d_ref(s, xa, wa, with_bias ? ba : NULL, p), MS_OK);
  char what[160];
  snprintf(what, sizeof what, "conv2d N%zu C%zu %zux%zu -> %zu k%zux%zu s%zu,%zu p%zu,%zu bias%d",
           p->N, p->C, p->H, p->W, p->C_out, p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h,
           p->pad_w, with_bias);
  check_bound(what, y, r, s, ny, gemm_tol_factor(p->C * p->kh * p->kw), 0.0);
  gfree(x, nx);
  gfree(w, nw);
  gfree(b, p->C_out);
  gfree(y, ny);
  gfree(r, ny);
  gfree(xa, nx);
  gfree(wa, nw);
  gfree(ba, p->C_out);
  gfree(s, ny);
  gfree(scratch, ns);
}

static void test_kernels_conv2d_matches_ref(void **state) {
  (void)state;
  const ms_conv2d_params cases[] = {
      /* N, C, H, W, C_out, kh, kw, sh, sw, ph, pw */
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
      {2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1},
      {1, 17, 13, 5, 33, 3, 3, 2, 2, 1, 1},
      {2, 4, 17, 17, 7, 1, 1, 1, 1, 0, 0},  /* pointwise: direct GEMM */
      {1, 5, 9, 11, 3, 1, 1, 2, 2, 0, 0},   /* strided 1x1 */
      {1, 6, 8, 8, 4, 1, 1, 1, 1, 1, 1},    /* padded 1x1 */
      {1, 3, 10, 7, 6, 5, 5, 1, 2, 2, 1},   /* 5x5, mixed strides and pads */
      {1, 2, 6, 6, 3, 3, 3, 3, 3, 0, 0},
      {1, 2, 4, 4, 2, 3, 3, 1, 1, 3, 3},    /* padding wider than the kernel reach */
      {1, 64, 40, 40, 40, 3, 3, 1, 1, 1, 1}, /* K > KC, several bands per thread */
      {1, 300, 30, 30, 3, 3, 3, 1, 1, 1, 1}, /* several im2col bands */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    conv_case(&cases[i], 1, 50 + (uint32_t)i);
    conv_case(&cases[i], 0, 70 + (uint32_t)i);
  }
}

static void test_kernels_conv2d_known_values(void **state) {
  (void)state;
  /* x = [1 2 3; 4 5 6; 7 8 9] */
  const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  float scratch[65536], y[9], yr[9];
  /* 2x2 kernel [1 0; 0 -1], no padding: x[i,j] - x[i+1,j+1] = -4 everywhere. */
  const float w1[4] = {1, 0, 0, -1};
  ms_conv2d_params p = {1, 1, 3, 3, 1, 2, 2, 1, 1, 0, 0};
  assert_true(ms_conv2d_scratch_floats(&p) <= 65536);
  assert_int_equal(ms_conv2d(y, x, w1, NULL, &p, scratch, 65536), MS_OK);
  assert_int_equal(ms_conv2d_ref(yr, x, w1, NULL, &p), MS_OK);
  for (int i = 0; i < 4; i++) assert_true(y[i] == -4.0f && yr[i] == -4.0f);
  /* 3x3 box of ones, padding 1, bias 0.5: sums of the 3x3 neighbourhoods. */
  float ones[9];
  for (int i = 0; i < 9; i++) ones[i] = 1.0f;
  const float bias = 0.5f;
  const float box[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
  ms_conv2d_params q = {1, 1, 3, 3, 1, 3, 3, 1, 1, 1, 1};
  assert_int_equal(ms_conv2d(y, x, ones, &bias, &q, scratch, 65536), MS_OK);
  assert_int_equal(ms_conv2d_ref(yr, x, ones, &bias, &q), MS_OK);
  for (int i = 0; i < 9; i++) assert_true(y[i] == box[i] + 0.5f && yr[i] == box[i] + 0.5f);
  /* Same with stride 2: the four corners of the box sums. */
  q.stride_h = q.stride_w = 2;
  size_t Ho, Wo;
  assert_int_equal(ms_conv2d_out_hw(&q, &Ho, &Wo), MS_OK);
  assert_int_equal(Ho, 2);
  assert_int_equal(Wo, 2);
  assert_int_equal(ms_conv2d(y, x, ones, NULL, &q, scratch, 65536), MS_OK);
  assert_true(y[0] == 12 && y[1] == 16 && y[2] == 24 && y[3] == 28);
  /* Two input channels, 1x1: y = 2*x0 - x1 with x1 = x0 reversed. */
  float x2[18];
  for (int i = 0; i < 9; i++) {
    x2[i] = x[i];
    x2[9 + i] = x[8 - i];
  }
  const float w2[2] = {2, -1};
  ms_conv2d_params pw = {1, 2, 3, 3, 1, 1, 1, 1, 1, 0, 0};
  assert_int_equal(ms_conv2d(y, x2, w2, NULL, &pw, scratch, 65536), MS_OK);
  for (int i = 0; i < 9; i++) assert_true(y[i] == 2 * x[i] - x[8 - i]);
}

static void test_kernels_conv2d_rejects_bad_arguments(void **state) {
  (void)state;
  float x[16] = {0}, w[9] = {0}, y[16], scratch[16];
  for (int i = 0; i < 16; i++) y[i] = 7.0f;
  ms_conv2d_params p = {1, 1, 2, 2, 1, 3, 3, 1, 1, 0, 0}; /* kernel larger than input */
  assert_int_equal(ms_conv2d_out_hw(&p, NULL, NULL), MS_ERR_INVALID);
  assert_int_equal(ms_conv2d_ref(y, x, w, NULL, &p), MS_ERR_INVALID);
  assert_int_equal(ms_conv2d_scratch_floats(&p), 0);
  p.stride_h = 0;
  p.pad_h = p.pad_w = 1;
  assert_int_equal(ms_conv2d_out_hw(&p, NULL, NULL), MS_ERR_INVALID);
  ms_conv2d_params q = {1, 1, 4, 4, 1, 3, 3, 1, 1, 1, 1};
  assert_true(ms_conv2d_scratch_floats(&q) > 16);
  assert_int_equal(ms_conv2d(y, x, w, NULL, &q, scratch, 16), MS_ERR_INVALID);
  for (int i = 0; i < 16; i++) assert_true(y[i] == 7.0f);
}

/* Explicit im2col of image n: col[(c*kh + ky)*kw + kx, oy*Wo + ox]. */
static void im2col_full(float *col, const float *x, const ms_conv2d_params *p, size_t n, size_t Ho,
                        size_t Wo) {
  const size_t C = p->C, H = p->H, W = p->W, kh = p->kh, kw = p->kw;
  for (size_t c = 0; c < C; c++)
    for (size_t ky = 0; ky < kh; ky++)
      for (size_t kx = 0; kx < kw; kx++)
        for (size_t oy = 0; oy < Ho; oy++)
          for (size_t ox = 0; ox < Wo; ox++) {
            long iy = (long)(oy * p->stride_h + ky) - (long)p->pad_h;
            long ix = (long)(ox * p->stride_w + kx) - (long)p->pad_w;
            float v = 0.0f;
            if (iy >= 0 && iy < (long)H && ix >= 0 && ix < (long)W)
              v = x[((n * C + c) * H + (size_t)iy) * W + (size_t)ix];
            col[((c * kh + ky) * kw + kx) * Ho * Wo + oy * Wo + ox] = v;
          }
}

/* The implicit-GEMM conv2d on `isa` gives exactly the bytes of ms_sgemm
 * (same ISA) over the explicit im2col matrix with a bias-filled C and
 * beta = 1 (beta = 0 without bias), image by image: the documented
 * summation order. Output and scratch start as NaN canaries. */
static void conv_bytes_case(ms_kernel_isa isa, const ms_conv2d_params *p, int with_bias,
                            uint32_t seed) {
  size_t Ho, Wo;
  assert_int_equal(ms_conv2d_out_hw(p, &Ho, &Wo), MS_OK);
  const size_t K = p->C * p->kh * p->kw, P = Ho * Wo, Co = p->C_out;
  const size_t nx = p->N * p->C * p->H * p->W, nw = Co * K, ny = p->N * Co * P;
  float *x = gbuf(nx), *w = gbuf(nw), *b = gbuf(Co), *y = gbuf(ny), *r = gbuf(ny);
  float *col = gbuf(K * P);
  fill(x, nx, seed);
  fill(w, nw, seed + 1);
  fill(b, Co, seed + 2);
  fill_nan(y, ny);
  size_t ns = ms_conv2d_scratch_floats(p), ng = ms_sgemm_scratch_floats(Co, P, K);
  float *sc = gbuf(ns), *sg = gbuf(ng);
  fill_nan(sc, ns);
  assert_int_equal(ms__conv2d_isa(isa, y, x, w, with_bias ? b : NULL, p, sc, ns), MS_OK);
  for (size_t n = 0; n < p->N; n++) {
    float *rn = r + n * Co * P;
    for (size_t co = 0; co < Co; co++)
      for (size_t i = 0; i < P; i++) rn[co * P + i] = with_bias ? b[co] : NAN;
    im2col_full(col, x, p, n, Ho, Wo);
    assert_int_equal(ms__sgemm_isa(isa, rn, P, w, K, col, P, MS_TRANS_NO, MS_TRANS_NO, Co, P, K,
                                   1.0f, with_bias ? 1.0f : 0.0f, sg, ng),
                     MS_OK);
  }
  if (memcmp(y, r, ny * sizeof(float)) != 0) {
    size_t i = 0;
    while (memcmp(y + i, r + i, sizeof(float)) == 0) i++;
    fail_msg("conv2d %s N%zu C%zu %zux%zu -> %zu k%zu s%zu p%zu bias%d: element %zu is %.9g, "
             "im2col+sgemm gives %.9g",
             ms_kernel_isa_name(isa), p->N, p->C, p->H, p->W, Co, p->kh, p->stride_h, p->pad_h,
             with_bias, i, (double)y[i], (double)r[i]);
  }
  /* Weights packed once for one image (N = 1), then used for the whole
   * batch: the same bytes again. */
  ms_conv2d_params p1 = *p;
  p1.N = 1;
  const size_t nwp = ms_conv2d_packed_floats(&p1), nsp = ms_conv2d_prepacked_scratch_floats(p);
  assert_true(nwp >= nw && nsp > 0 && nsp <= ns);
  float *wp = gbuf(nwp), *sp = gbuf(nsp);
  fill_nan(wp, nwp);
  fill_nan(sp, nsp);
  fill_nan(y, ny);
  assert_int_equal(ms__conv2d_pack_weights_isa(isa, wp, nwp - 1, w, &p1), MS_ERR_INVALID);
  assert_int_equal(ms__conv2d_pack_weights_isa(isa, wp, nwp, w, &p1), MS_OK);
  assert_int_equal(
      ms__conv2d_prepacked_isa(isa, y, x, wp, with_bias ? b : NULL, p, sp, nsp), MS_OK);
  if (memcmp(y, r, ny * sizeof(float)) != 0)
    fail_msg("prepacked conv2d %s N%zu C%zu %zux%zu -> %zu k%zu: bytes differ from ms_conv2d",
             ms_kernel_isa_name(isa), p->N, p->C, p->H, p->W, Co, p->kh);
  gfree(wp, nwp);
  gfree(sp, nsp);
  gfree(x, nx);
  gfree(w, nw);
  gfree(b, Co);
  gfree(y, ny);
  gfree(r, ny);
  gfree(col, K * P);
  gfree(sc, ns);
  gfree(sg, ng);
}

static void test_kernels_conv2d_same_bytes_as_im2col_gemm(void **state) {
  (void)state;
  const ms_conv2d_params cases[] = {
      /* N, C, H, W, C_out, kh, kw, sh, sw, ph, pw */
      {1, 32, 16, 16, 64, 3, 3, 1, 1, 1, 1},  /* UNet-like, strips inside one image */
      {3, 5, 7, 9, 13, 3, 3, 1, 1, 1, 1},     /* strips straddle rows and images */
      {2, 17, 13, 11, 33, 3, 3, 2, 2, 1, 1},  /* stride 2, odd sizes */
      {4, 3, 8, 8, 1, 3, 3, 1, 1, 1, 1},      /* one output channel */
      {2, 30, 9, 10, 40, 1, 1, 1, 1, 0, 0},   /* pointwise */
      {1, 40, 12, 12, 24, 3, 3, 1, 1, 1, 1},  /* K = 360 > KC */
      {2, 3, 10, 7, 6, 5, 5, 1, 2, 2, 1},     /* 5x5, mixed strides */
      {1, 2, 4, 4, 2, 3, 3, 1, 1, 3, 3},      /* padding wider than the kernel reach */
      {1, 3, 6, 70, 8, 3, 3, 1, 1, 1, 1},     /* rows wider than a strip */
      {5, 8, 2, 2, 16, 3, 3, 1, 1, 1, 1},     /* 2x2 images, many per strip */
      {1, 4, 9, 40, 9, 3, 10, 1, 1, 1, 4},    /* kernel wider than the SIMD packer takes */
      {2, 6, 11, 45, 16, 3, 3, 2, 1, 1, 1},   /* stride 2 rows, stride 1 columns */
      {1, 5, 9, 70, 8, 3, 3, 1, 2, 1, 1},     /* stride 2 columns over wide rows */
      {2, 3, 12, 13, 8, 4, 4, 2, 2, 1, 2},    /* even kernel, stride 2, asymmetric pads */
      {1, 2, 5, 6, 3, 3, 3, 3, 3, 1, 1},      /* stride 3: the scalar packer */
      {1, 16, 64, 64, 32, 3, 3, 1, 1, 1, 1},  /* the UNet's 64x64 level */
      {2, 40, 16, 16, 24, 3, 3, 1, 1, 1, 1},  /* K = 360 over two images, 16x16 */
      {1, 3, 5, 5, 2, 3, 5, 1, 1, 0, 2},      /* unequal pads, kh != kw */
  };
  for (int isa = 0; isa < MS_KERNEL_ISA_COUNT; isa++) {
    if (!ms__isa_supported((ms_kernel_isa)isa)) continue;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      conv_bytes_case((ms_kernel_isa)isa, &cases[i], 1, 90 + (uint32_t)i);
      conv_bytes_case((ms_kernel_isa)isa, &cases[i], 0, 110 + (uint32_t)i);
    }
  }
}

/* With only one thread's share of scratch (no room for the zero-padded
 * input copy of the unpacked stride-1 path), a prepacked conv2d falls back
 * to strip packing: the same bytes, on every ISA path. */
static void test_kernels_conv2d_unpacked_path_same_bytes_as_packed(void **state) {
  (void)state;
  const ms_conv2d_params cases[] = {
      {1, 32, 64, 64, 32, 3, 3, 1, 1, 1, 1},
      {3, 7, 9, 11, 17, 3, 3, 1, 1, 1, 1},
      {1, 96, 16, 16, 128, 3, 3, 1, 1, 1, 1}, /* K = 864: four k blocks */
      {2, 5, 6, 50, 9, 5, 3, 1, 1, 2, 0},
  };
  for (int isa = 0; isa < MS_KERNEL_ISA_COUNT; isa++) {
    if (!ms__isa_supported((ms_kernel_isa)isa)) continue;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      const ms_conv2d_params *p = &cases[i];
      size_t Ho, Wo;
      assert_int_equal(ms_conv2d_out_hw(p, &Ho, &Wo), MS_OK);
      const size_t K = p->C * p->kh * p->kw, nx = p->N * p->C * p->H * p->W,
                   ny = p->N * p->C_out * Ho * Wo, nw = p->C_out * K;
      const size_t nwp = ms_conv2d_packed_floats(p), nsp = ms_conv2d_prepacked_scratch_floats(p);
      const size_t small = (K < MS_SGEMM_KC ? K : MS_SGEMM_KC) * 48 + 32;
      float *x = gbuf(nx), *w = gbuf(nw), *b = gbuf(p->C_out), *wp = gbuf(nwp), *sp = gbuf(nsp);
      float *y1 = gbuf(ny), *y2 = gbuf(ny);
      fill(x, nx, 200 + (uint32_t)i);
      fill(w, nw, 300 + (uint32_t)i);
      fill(b, p->C_out, 400 + (uint32_t)i);
      fill_nan(y1, ny);
      fill_nan(y2, ny);
      assert_true(small <= nsp);
      assert_int_equal(ms__conv2d_pack_weights_isa((ms_kernel_isa)isa, wp, nwp, w, p), MS_OK);
      assert_int_equal(ms__conv2d_prepacked_isa((ms_kernel_isa)isa, y1, x, wp, b, p, sp, nsp),
                       MS_OK);
      const int saved = omp_get_max_threads();
      omp_set_num_threads(1);
      assert_int_equal(ms__conv2d_prepacked_isa((ms_kernel_isa)isa, y2, x, wp, b, p, sp, small),
                       MS_OK);
      omp_set_num_threads(saved);
      if (memcmp(y1, y2, ny * sizeof(float)) != 0)
        fail_msg("conv2d %s case %zu: packed and unpacked paths differ",
                 ms_kernel_isa_name((ms_kernel_isa)isa), i);
      gfree(x, nx);
      gfree(w, nw);
      gfree(b, p->C_out);
      gfree(wp, nwp);
      gfree(sp, nsp);
      gfree(y1, ny);
      gfree(y2, ny);
    }
  }
}

/* Winograd F(2x2, 3x3): y against ms_conv2d_ref (double accumulation).
 * Tolerance: the transformed operands are exact sums of at most 4 inputs
 * (|V| <= 4 max|x|) and 2.25 max|w| (|U|), the GEMM over C rounds like
 * ms_sgemm with K = C (gemm_tol_factor), and the output transform adds 9
 * products of A, so |y - ref| <= gemm_tol_factor(C) * 9 * 16 * 2.25 * C *
 * max|x| * max|w| + 2^-22 |ref| per element (a worst-case bound). The test
 * also holds the observed error to 2e-6 of the tensor's max |ref| (F(2,3)
 * in float32 measures about 1e-7 .. 5e-7 on these shapes; the PyTorch
 * parity tests allow 1e-4). Every ISA path this CPU runs is forced. */
static void wino_case(ms_kernel_isa isa, const ms_conv2d_params *p, int with_bias, uint32_t seed,
                      double *worst_rel) {
  const size_t nx = p->N * p->C * p->H * p->W, ny = p->N * p->C_out * p->H * p->W,
               nw = p->C_out * p->C * 9;
  const size_t nwp = ms_conv2d_winograd_packed_floats(p), ns = ms_conv2d_winograd_scratch_floats(p);
  assert_true(nwp > 0 && ns > 0);
  float *x = gbuf(nx), *w = gbuf(nw), *b = gbuf(p->C_out), *y = gbuf(ny), *r = gbuf(ny);
  float *wp = gbuf(nwp), *sc = gbuf(ns);
  fill(x, nx, seed);
  fill(w, nw, seed + 1000);
  fill(b, p->C_out, seed + 2000);
  fill_nan(y, ny);
  assert_int_equal(ms__conv2d_winograd_pack_weights_isa(isa, wp, nwp, w, p), MS_OK);
  assert_int_equal(ms__conv2d_winograd_isa(isa, y, x, wp, with_bias ? b : NULL, p, sc, ns), MS_OK);
  assert_int_equal(ms_conv2d_ref(r, x, w, with_bias ? b : NULL, p), MS_OK);
  double maxref = 0, maxerr = 0;
  for (size_t i = 0; i < ny; i++) maxref = fmax(maxref, fabs((double)r[i]));
  const double bound = gemm_tol_factor(p->C) * 9 * 16 * 2.25 * (double)p->C;
  for (size_t i = 0; i < ny; i++) {
    const double e = fabs((double)y[i] - (double)r[i]);
    if (!(e <= bound + ldexp(fabs((double)r[i]), -22)))
      fail_msg("winograd %s case C%zu %zux%zu element %zu: %g vs %g", ms_kernel_isa_name(isa),
               p->C, p->H, p->W, i, (double)y[i], (double)r[i]);
    maxerr = fmax(maxerr, e);
  }
  if (maxerr > 2e-6 * maxref)
    fail_msg("winograd %s C%zu %zux%zu: max error %g of max |ref| %g", ms_kernel_isa_name(isa),
             p->C, p->H, p->W, maxerr, maxref);
  if (maxerr / maxref > *worst_rel) *worst_rel = maxerr / maxref;
  gfree(x, nx);
  gfree(w, nw);
  gfree(b, p->C_out);
  gfree(y, ny);
  gfree(r, ny);
  gfree(wp, nwp);
  gfree(sc, ns);
}

static void test_kernels_conv2d_winograd_matches_ref(void **state) {
  (void)state;
  const ms_conv2d_params cases[] = {
      /* N, C, H, W, C_out, kh, kw, sh, sw, ph, pw */
      {1, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1},      /* one pixel: one partial tile */
      {1, 3, 5, 7, 2, 3, 3, 1, 1, 1, 1},      /* odd H and W */
      {2, 5, 7, 9, 13, 3, 3, 1, 1, 1, 1},     /* odd sizes, two images */
      {3, 17, 9, 6, 33, 3, 3, 1, 1, 1, 1},    /* C, C_out not multiples of 16 */
      {1, 16, 64, 64, 32, 3, 3, 1, 1, 1, 1},  /* UNet 64x64 level */
      {1, 64, 32, 32, 64, 3, 3, 1, 1, 1, 1},  /* 32x32 level */
      {2, 96, 16, 16, 128, 3, 3, 1, 1, 1, 1}, /* C > KC: four k blocks */
      {1, 128, 8, 8, 128, 3, 3, 1, 1, 1, 1},  /* 8x8 */
      {4, 8, 2, 2, 16, 3, 3, 1, 1, 1, 1},     /* 2x2 images, many per strip */
      {1, 4, 3, 130, 5, 3, 3, 1, 1, 1, 1},    /* tile rows wider than a strip */
      {5, 24, 15, 13, 20, 3, 3, 1, 1, 1, 1},  /* batch of odd images */
  };
  double worst = 0;
  for (int isa = 0; isa < MS_KERNEL_ISA_COUNT; isa++) {
    if (!ms__isa_supported((ms_kernel_isa)isa)) continue;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      wino_case((ms_kernel_isa)isa, &cases[i], 1, 500 + (uint32_t)i, &worst);
      wino_case((ms_kernel_isa)isa, &cases[i], 0, 600 + (uint32_t)i, &worst);
    }
  }
  print_message("winograd: worst max|err| / max|ref| %.3g\n", worst);
}

/* Winograd bytes do not depend on the thread count, on the scratch given
 * (fewer threads), on the batch (image n alone = image n of the batch) or
 * on a nested call; on every ISA path. Unsupported shapes and too little
 * scratch are refused. */
static void test_kernels_conv2d_winograd_same_bytes_any_threads_and_batch(void **state) {
  (void)state;
  const ms_conv2d_params cases[] = {
      {5, 24, 15, 13, 20, 3, 3, 1, 1, 1, 1},
      {3, 32, 64, 64, 32, 3, 3, 1, 1, 1, 1},
      {2, 96, 16, 16, 128, 3, 3, 1, 1, 1, 1},
  };
  for (int isa = 0; isa < MS_KERNEL_ISA_COUNT; isa++) {
    if (!ms__isa_supported((ms_kernel_isa)isa)) continue;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      const ms_conv2d_params *p = &cases[i];
      ms_conv2d_params p1 = *p;
      p1.N = 1;
      const size_t P = p->H * p->W, nxi = p->C * P, nyi = p->C_out * P, nw = p->C_out * p->C * 9;
      const int saved = omp_get_max_threads();
      omp_set_num_threads(4);
      const size_t nwp = ms_conv2d_winograd_packed_floats(p), ns = ms_conv2d_winograd_scratch_floats(p);
      omp_set_num_threads(saved);
      const size_t n1 = ms_conv2d_winograd_scratch_floats(&p1);
      float *x = gbuf(p->N * nxi), *w = gbuf(nw), *b = gbuf(p->C_out), *wp = gbuf(nwp);
      float *sc = gbuf(ns), *s1 = gbuf(n1), *y = gbuf(p->N * nyi), *y2 = gbuf(p->N * nyi),
            *yi = gbuf(nyi);
      fill(x, p->N * nxi, 700 + (uint32_t)i);
      fill(w, nw, 800 + (uint32_t)i);
      fill(b, p->C_out, 900 + (uint32_t)i);
      assert_int_equal(ms__conv2d_winograd_pack_weights_isa((ms_kernel_isa)isa, wp, nwp, w, p),
                       MS_OK);
      fill_nan(y, p->N * nyi);
      omp_set_num_threads(1);
      assert_int_equal(ms__conv2d_winograd_isa((ms_kernel_isa)isa, y, x, wp, b, p, sc, ns), MS_OK);
      const int threads[] = {2, 3, 4};
      for (size_t k = 0; k < 3; k++) {
        omp_set_num_threads(threads[k]);
        fill_nan(y2, p->N * nyi);
        assert_int_equal(ms__conv2d_winograd_isa((ms_kernel_isa)isa, y2, x, wp, b, p, sc, ns),
                         MS_OK);
        if (memcmp(y, y2, p->N * nyi * sizeof(float)) != 0)
          fail_msg("winograd %s case %zu: %d threads differ from 1",
                   ms_kernel_isa_name((ms_kernel_isa)isa), i, threads[k]);
      }
      /* nested call: one thread */
      fill_nan(y2, p->N * nyi);
      ms_status st = MS_OK;
#pragma omp parallel num_threads(2)
      {
#pragma omp single
        st = ms__conv2d_winograd_isa((ms_kernel_isa)isa, y2, x, wp, b, p, sc, ns);
      }
      assert_int_equal(st, MS_OK);
      assert_memory_equal(y, y2, p->N * nyi * sizeof(float));
      omp_set_num_threads(saved);
      for (size_t n = 0; n < p->N; n++) {
        fill_nan(yi, nyi);
        assert_int_equal(
            ms__conv2d_winograd_isa((ms_kernel_isa)isa, yi, x + n * nxi, wp, b, &p1, s1, n1),
            MS_OK);
        if (memcmp(yi, y + n * nyi, nyi * sizeof(float)) != 0)
          fail_msg("winograd %s case %zu: image %zu alone differs from the batch",
                   ms_kernel_isa_name((ms_kernel_isa)isa), i, n);
      }
      assert_int_equal(ms__conv2d_winograd_isa((ms_kernel_isa)isa, y2, x, wp, b, p, sc, 8),
                       MS_ERR_INVALID);
      gfree(x, p->N * nxi);
      gfree(w, nw);
      gfree(b, p->C_out);
      gfree(wp, nwp);
      gfree(sc, ns);
      gfree(s1, n1);
      gfree(y, p->N * nyi);
      gfree(y2, p->N * nyi);
      gfree(yi, nyi);
    }
  }
  const ms_conv2d_params bad[] = {
      {1, 4, 8, 8, 4, 3, 3, 2, 2, 1, 1}, /* stride 2 */
      {1, 4, 8, 8, 4, 3, 3, 1, 1, 0, 0}, /* pad 0 */
      {1, 4, 8, 8, 4, 1, 1, 1, 1, 0, 0}, /* 1x1 */
      {1, 4, 8, 8, 4, 5, 5, 1, 1, 2, 2}, /* 5x5 */
  };
  float dummy[16] = {0};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_false(ms_conv2d_winograd_supported(&bad[i]));
    assert_false(ms_conv2d_winograd_suits(&bad[i]));
    assert_int_equal(ms_conv2d_winograd_packed_floats(&bad[i]), 0);
    assert_int_equal(ms_conv2d_winograd_scratch_floats(&bad[i]), 0);
    assert_int_equal(ms_conv2d_winograd(dummy, dummy, dummy, NULL, &bad[i], dummy, 16),
                     MS_ERR_UNSUPPORTED);
  }
}

/* Image n of a batch gets the same bytes as the same image alone, and a call
 * from inside a parallel region (nested: one thread) the same bytes again. */
static void test_kernels_conv2d_batch_invariant(void **state) {
  (void)state;
  ms_conv2d_params pb = {5, 24, 15, 13, 20, 3, 3, 1, 1, 1, 1}, p1 = pb;
  p1.N = 1;
  const size_t P = 15 * 13, nxi = 24 * P, nyi = 20 * P, nw = 20 * 24 * 9;
  float *x = gbuf(5 * nxi), *w = gbuf(nw), *b = gbuf(20), *y = gbuf(5 * nyi), *y1 = gbuf(nyi);
  fill(x, 5 * nxi, 3);
  fill(w, nw, 4);
  fill(b, 20, 5);
  fill_nan(y, 5 * nyi);
  size_t ns = ms_conv2d_scratch_floats(&pb), n1 = ms_conv2d_scratch_floats(&p1);
  float *sc = gbuf(ns), *s1 = gbuf(n1);
  assert_int_equal(ms_conv2d(y, x, w, b, &pb, sc, ns), MS_OK);
  for (size_t n = 0; n < 5; n++) {
    fill_nan(y1, nyi);
    assert_int_equal(ms_conv2d(y1, x + n * nxi, w, b, &p1, s1, n1), MS_OK);
    if (memcmp(y1, y + n * nyi, nyi * sizeof(float)) != 0)
      fail_msg("conv2d: image %zu of a batch of 5 differs from the image alone", n);
  }
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  float *y2 = gbuf(5 * nyi);
  fill_nan(y2, 5 * nyi);
  ms_status st = MS_ERR_INTERNAL;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    st = ms_conv2d(y2, x, w, b, &pb, sc, ns);
  }
  omp_set_num_threads(saved);
  assert_int_equal(st, MS_OK);
  assert_memory_equal(y, y2, 5 * nyi * sizeof(float));
  gfree(x, 5 * nxi);
  gfree(w, nw);
  gfree(b, 20);
  gfree(y, 5 * nyi);
  gfree(y1, nyi);
  gfree(y2, 5 * nyi);
  gfree(sc, ns);
  gfree(s1, n1);
}

/* ------------------------------------------------------------ linear */

static void test_kernels_linear_matches_ref_and_known(void **state) {
  (void)state;
  /* x = [1 2], W = [[1 1], [2 -1], [0 3]], b = [0.5 0 -1]: y = [3.5 0 5]. */
  const float x[2] = {1, 2}, W[6] = {1, 1, 2, -1, 0, 3}, b[3] = {0.5f, 0, -1};
  float y[3], yr[3], scratch[4096];
  assert_true(ms_linear_scratch_floats(1, 2, 3) <= 4096);
  assert_int_equal(ms_linear(y, x, W, b, 1, 2, 3, scratch, 4096), MS_OK);
  assert_int_equal(ms_linear_ref(yr, x, W, b, 1, 2, 3), MS_OK);
  assert_true(y[0] == 3.5f && y[1] == 0.0f && y[2] == 5.0f);
  assert_true(yr[0] == 3.5f && yr[1] == 0.0f && yr[2] == 5.0f);
  for (size_t mi = 0; mi < N_ODD; mi += 2)
    for (size_t ii = 0; ii < N_ODD; ii++)
      for (size_t oi = 1; oi < N_ODD; oi += 2) {
        size_t M = ODD[mi], in = ODD[ii], out = ODD[oi];
        float *X = gbuf(M * in), *Wt = gbuf(out * in), *B = gbuf(out), *Y = gbuf(M * out),
              *R = gbuf(M * out), *S = gbuf(M * out), *Xa = gbuf(M * in), *Wa = gbuf(out * in),
              *Ba = gbuf(out);
        fill(X, M * in, 5);
        fill(Wt, out * in, 6);
        fill(B, out, 7);
        absv(Xa, X, M * in);
        absv(Wa, Wt, out * in);
        absv(Ba, B, out);
        size_t ns = ms_linear_scratch_floats(M, in, out);
        float *sc = gbuf(ns);
        assert_int_equal(ms_linear(Y, X, Wt, B, M, in, out, sc, ns), MS_OK);
        assert_int_equal(ms_linear_ref(R, X, Wt, B, M, in, out), MS_OK);
        assert_int_equal(ms_linear_ref(S, Xa, Wa, Ba, M, in, out), MS_OK);
        check_bound("linear", Y, R, S, M * out, gemm_tol_factor(in + 1), 0.0);
        gfree(X, M * in);
        gfree(Wt, out * in);
        gfree(B, out);
        gfree(Y, M * out);
        gfree(R, M * out);
        gfree(S, M * out);
        gfree(Xa, M * in);
        gfree(Wa, out * in);
        gfree(Ba, out);
        gfree(sc, ns);
      }
}

/* ------------------------------------------------------------ GroupNorm */

static void test_kernels_group_norm_known_values(void **state) {
  (void)state;
  /* One group of [1 2 3 4]: mean 2.5, biased variance 1.25. */
  const float x[4] = {1, 2, 3, 4};
  float y[4], yr[4];
  const double sd = sqrt(1.25);
  assert_int_equal(ms_group_norm(y, x, NULL, NULL, 1, 2, 2, 1, 0.0f), MS_OK);
  assert_int_equal(ms_group_norm_ref(yr, x, NULL, NULL, 1, 2, 2, 1, 0.0f), MS_OK);
  for (int i = 0; i < 4; i++) {
    double want = ((double)x[i] - 2.5) / sd;
    assert_true(fabs(y[i] - want) < 1e-6 && fabs(yr[i] - want) < 1e-7);
  }
  /* Two groups of one channel each, affine: gamma [2 1], beta [0 10]. */
  const float g[2] = {2, 1}, b[2] = {0, 10};
  assert_int_equal(ms_group_norm(y, x, g, b, 1, 2, 2, 2, 0.0f), MS_OK);
  /* channel 0 = [1 2] -> [-1 1] * 2; channel 1 = [3 4] -> [-1 1] + 10 */
  assert_true(fabsf(y[0] + 2) < 1e-6f && fabsf(y[1] - 2) < 1e-6f);
  assert_true(fabsf(y[2] - 9) < 1e-6f && fabsf(y[3] - 11) < 1e-6f);
  /* eps matters: constant input gives 0, not NaN. */
  const float c[4] = {3, 3, 3, 3};
  assert_int_equal(ms_group_norm(y, c, NULL, NULL, 1, 1, 4, 1, 1e-5f), MS_OK);
  for (int i = 0; i < 4; i++) assert_true(y[i] == 0.0f);
  /* C % G != 0 */
  assert_int_equal(ms_group_norm(y, x, NULL, NULL, 1, 3, 1, 2, 1e-5f), MS_ERR_INVALID);
  assert_int_equal(ms_group_norm_ref(y, x, NULL, NULL, 1, 4, 1, 0, 1e-5f), MS_ERR_INVALID);
}

static void test_kernels_group_norm_matches_ref(void **state) {
  (void)state;
  const size_t shapes[][4] = {/* N, C, HW, G */
                              {1, 1, 1, 1},   {2, 6, 7, 3},     {1, 32, 63, 8},
                              {3, 17, 17, 17}, {1, 64, 257, 32}, {2, 8, 1000, 2}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    size_t N = shapes[s][0], C = shapes[s][1], HW = shapes[s][2], G = shapes[s][3];
    size_t n = N * C * HW;
    float *x = gbuf(n), *y = gbuf(n), *r = gbuf(n), *gm = gbuf(C), *bt = gbuf(C);
    fill(x, n, 11 + (uint32_t)s);
    for (size_t i = 0; i < n; i++) x[i] = x[i] * 3.0f + 5.0f; /* mean far from 0 */
    fill(gm, C, 12);
    fill(bt, C, 13);
    for (int silu = 0; silu < 2; silu++) {
      if (silu) {
        assert_int_equal(ms_group_norm_silu(y, x, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
        assert_int_equal(ms_group_norm_silu_ref(r, x, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
      } else {
        assert_int_equal(ms_group_norm(y, x, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
        assert_int_equal(ms_group_norm_ref(r, x, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
      }
      /* Normalised values are O(1); gamma, beta in [-1, 1). */
      check_close(silu ? "group_norm_silu" : "group_norm", y, r, n, 1e-5, 1e-5);
    }
    /* In place gives the same bytes as out of place. */
    assert_int_equal(ms_group_norm(y, x, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
    memcpy(r, x, n * sizeof(float));
    assert_int_equal(ms_group_norm(r, r, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
    assert_memory_equal(y, r, n * sizeof(float));
    gfree(x, n);
    gfree(y, n);
    gfree(r, n);
    gfree(gm, C);
    gfree(bt, C);
  }
}

/* ------------------------------------------------------------ activations */

static void test_kernels_activations_known_values(void **state) {
  (void)state;
  /* silu(1) = 1/(1+e^-1), gelu(1) = Phi(1), gelu(-1) = -(1 - Phi(1)). */
  const float x[4] = {0.0f, 1.0f, -1.0f, 2.0f};
  const double silu_want[4] = {0.0, 0.7310585786300049, -0.2689414213699951, 1.7615941559557649};
  const double gelu_want[4] = {0.0, 0.8413447460685429, -0.15865525393145707, 1.9544997361036416};
  float y[4], yr[4];
  ms_silu(y, x, 4);
  ms_silu_ref(yr, x, 4);
  for (int i = 0; i < 4; i++)
    assert_true(fabs(y[i] - silu_want[i]) < 2e-7 && fabs(yr[i] - silu_want[i]) < 1e-7);
  ms_gelu(y, x, 4);
  ms_gelu_ref(yr, x, 4);
  for (int i = 0; i < 4; i++)
    assert_true(fabs(y[i] - gelu_want[i]) < 2e-7 && fabs(yr[i] - gelu_want[i]) < 1e-7);
}

static void test_kernels_activations_match_ref(void **state) {
  (void)state;
  const size_t n = 100003;
  float *x = gbuf(n), *y = gbuf(n), *r = gbuf(n);
  for (size_t i = 0; i < n; i++) x[i] = -30.0f + 60.0f * (float)i / (float)(n - 1);
  ms_silu(y, x, n);
  ms_silu_ref(r, x, n);
  /* float expf and division: a few ulp relative, tiny absolute near the
   * underflowing left tail. */
  check_close("silu", y, r, n, 4e-7, 1e-30);
  ms_gelu(y, x, n);
  ms_gelu_ref(r, x, n);
  /* erfcf deep in the tail is good to a few ulp: 1e-6 relative. */
  check_close("gelu", y, r, n, 1e-6, 1e-30);
  /* in place */
  memcpy(r, x, n * sizeof(float));
  ms_gelu(r, r, n);
  assert_memory_equal(y, r, n * sizeof(float));
  gfree(x, n);
  gfree(y, n);
  gfree(r, n);
}

/* Units in the last place between two floats of the same sign. */
static int64_t ulp_dist(float a, float b) {
  int32_t ia, ib;
  memcpy(&ia, &a, 4);
  memcpy(&ib, &b, 4);
  int64_t oa = ia < 0 ? -(int64_t)(ia & 0x7fffffff) : ia;
  int64_t ob = ib < 0 ? -(int64_t)(ib & 0x7fffffff) : ib;
  return oa > ob ? oa - ob : ob - oa;
}

/* ms_exp: <= 2 ulp from the correctly rounded exp over a sweep of float
 * bit patterns in [-110, 90] (denormal results included), the special
 * values, and the same bytes whatever the element's position in the array
 * (vector lanes, masked tails) and as the scalar ms__expf. */
static void test_kernels_exp_accuracy_and_position(void **state) {
  (void)state;
  const size_t n = 1u << 16;
  float *x = gbuf(n), *y = gbuf(n), *r = gbuf(n);
  int64_t worst = 0;
  float worst_x = 0;
  size_t cnt = 0;
  for (uint64_t bits = 0; bits < 0x100000000ull;) {
    size_t m = 0;
    for (; m < n && bits < 0x100000000ull; bits += 997) {
      uint32_t u = (uint32_t)bits;
      float v;
      memcpy(&v, &u, 4);
      if (v >= -110.0f && v <= 90.0f) x[m++] = v;
    }
    fill_nan(y, n);
    ms_exp(y, x, m);
    ms_exp_ref(r, x, m);
    for (size_t i = 0; i < m; i++) {
      int64_t d = ulp_dist(y[i], r[i]);
      if (d > worst) {
        worst = d;
        worst_x = x[i];
      }
      if (ms__expf(x[i]) != y[i]) fail_msg("exp: scalar and vector differ at x = %.9g", (double)x[i]);
    }
    cnt += m;
  }
  assert_true(cnt > 2000000);
  if (worst > 2) fail_msg("exp: %lld ulp at x = %.9g", (long long)worst, (double)worst_x);
  /* special values */
  const float sp[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 89.0f, 88.0f, -88.0f, -103.0f, -104.0f, -1e30f};
  float ys[11];
  ms_exp(ys, sp, 11);
  assert_true(isnan(ys[0]));
  assert_true(ys[1] == INFINITY && ys[2] == 0.0f && ys[3] == 1.0f && ys[4] == 1.0f);
  assert_true(ys[5] == INFINITY && isfinite(ys[6]) && ys[7] > 0.0f && ys[8] > 0.0f);
  assert_true(ys[9] == 0.0f && ys[10] == 0.0f);
  assert_true(ulp_dist(ys[6], (float)exp(88.0)) <= 2 && ulp_dist(ys[7], (float)exp(-88.0)) <= 2);
  /* position independence: every offset and length 0..40 */
  fill(x, 64, 5);
  for (size_t i = 0; i < 64; i++) x[i] *= 20.0f;
  float full[64];
  ms_exp(full, x, 64);
  for (size_t off = 0; off < 24; off++)
    for (size_t len = 0; len + off <= 64 && len <= 40; len++) {
      fill_nan(y, 64);
      ms_exp(y, x + off, len);
      if (len) assert_memory_equal(y, full + off, len * sizeof(float));
      assert_true(isnan(y[len])); /* nothing written past the end */
    }
  gfree(x, n);
  gfree(y, n);
  gfree(r, n);
}

/* NaN in, NaN out (not hidden by the exp clamp); nothing else disturbed. */
static void test_kernels_exp_users_propagate_nan(void **state) {
  (void)state;
  float x[37], y[37];
  for (int i = 0; i < 37; i++) x[i] = 0.1f * (float)i - 1.0f;
  x[20] = NAN;
  ms_silu(y, x, 37);
  assert_true(isnan(y[20]) && !isnan(y[19]) && !isnan(y[21]));
  ms_softmax_rows(y, x, 1, 37); /* the sum is NaN: the whole row */
  for (int i = 0; i < 37; i++) assert_true(isnan(y[i]));
  ms_softmax_rows(y, x, 2, 17); /* row 0 (x[0..16]) is clean, row 1 has the NaN */
  for (int i = 0; i < 17; i++) assert_true(!isnan(y[i]));
  assert_true(isnan(y[17]));
  float g[2] = {1.0f, 1.0f}, bt[2] = {0.0f, 0.0f};
  assert_int_equal(ms_group_norm_silu(y, x, g, bt, 1, 2, 18, 1, 1e-5f), MS_OK);
  for (int i = 0; i < 36; i++) assert_true(isnan(y[i])); /* the group statistics are NaN */
}

/* ------------------------------------------------------------ softmax */

static void test_kernels_softmax_known_and_ref(void **state) {
  (void)state;
  const float x[5] = {1, 2, 3, 1000, 1000};
  float y[5], yr[5];
  ms_softmax_rows(y, x, 1, 3);
  ms_softmax_rows(y + 3, x + 3, 1, 2); /* stability: would overflow without the max */
  ms_softmax_rows_ref(yr, x, 1, 3);
  const double want[3] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  for (int i = 0; i < 3; i++)
    assert_true(fabs(y[i] - want[i]) < 1e-7 && fabs(yr[i] - want[i]) < 1e-7);
  assert_true(y[3] == 0.5f && y[4] == 0.5f);
  const size_t cols_list[] = {1, 7, 17, 63, 129, 4097};
  for (size_t c = 0; c < 6; c++) {
    size_t rows = 13, cols = cols_list[c], n = rows * cols;
    float *a = gbuf(n), *o = gbuf(n), *rf = gbuf(n);
    fill(a, n, 21);
    for (size_t i = 0; i < n; i++) a[i] *= 20.0f;
    ms_softmax_rows(o, a, rows, cols);
    ms_softmax_rows_ref(rf, a, rows, cols);
    /* exp(x - max) with x - max rounded in float: relative error about
     * |x - max| * 2^-24 plus a few ulp; |x - max| < 40 here. */
    check_close("softmax", o, rf, n, 8e-6, 1e-37);
    for (size_t r = 0; r < rows; r++) {
      double s = 0;
      for (size_t j = 0; j < cols; j++) s += o[r * cols + j];
      assert_true(fabs(s - 1.0) < 1e-5);
    }
    gfree(a, n);
    gfree(o, n);
    gfree(rf, n);
  }
}

/* ------------------------------------------------------------ attention */

static void attn_case(size_t N, size_t heads, size_t d, size_t Tq, size_t Tk,
                      ms_attn_layout layout, uint32_t seed) {
  const size_t C = heads * d, nq = N * C * Tq, nk = N * C * Tk;
  float *q = gbuf(nq), *k = gbuf(nk), *v = gbuf(nk), *o = gbuf(nq), *r = gbuf(nq);
  fill(q, nq, seed);
  fill(k, nk, seed + 1);
  fill(v, nk, seed + 2);
  for (size_t i = 0; i < nq; i++) q[i] *= 3.0f; /* peaky softmax */
  fill_nan(o, nq);
  size_t ns = ms_attention_scratch_floats(d, 0);
  float *sc = gbuf(ns);
  assert_int_equal(ms_attention_ref(r, q, k, v, N, heads, d, Tq, Tk, layout), MS_OK);
  /* Every ISA path this CPU runs (the dispatched one among them). */
  for (int isa = 0; isa < MS_KERNEL_ISA_COUNT; isa++) {
    fill_nan(o, nq);
    ms_status st = ms__attention_isa((ms_kernel_isa)isa, o, q, k, v, N, heads, d, Tq, Tk, layout,
                                     sc, ns);
    if (!ms__isa_supported((ms_kernel_isa)isa)) {
      assert_int_equal(st, MS_ERR_UNSUPPORTED);
      continue;
    }
    assert_int_equal(st, MS_OK);
    /* Outputs are convex combinations of v in [-1, 1): absolute bound. The
     * float scores carry ~d * 2^-24 * |q||k| error, amplified by exp. */
    char what[160];
    snprintf(what, sizeof what, "attention %s %s N%zu h%zu d%zu Tq%zu Tk%zu",
             ms_kernel_isa_name((ms_kernel_isa)isa), ms_attn_layout_name(layout), N, heads, d,
             Tq, Tk);
    check_bound(what, o, r, r, nq, 0.0, 2e-5 * (1.0 + (double)d / 32.0));
  }
  fill_nan(o, nq);
  assert_int_equal(ms_attention(o, q, k, v, N, heads, d, Tq, Tk, layout, sc, ns), MS_OK);
  check_bound("attention dispatched", o, r, r, nq, 0.0, 2e-5 * (1.0 + (double)d / 32.0));
  gfree(q, nq);
  gfree(k, nk);
  gfree(v, nk);
  gfree(o, nq);
  gfree(r, nq);
  gfree(sc, ns);
}

static void test_kernels_attention_matches_ref(void **state) {
  (void)state;
  for (int l = 0; l < MS_ATTN_LAYOUT_COUNT; l++) {
    attn_case(1, 1, 1, 1, 1, (ms_attn_layout)l, 1);
    attn_case(2, 3, 8, 7, 65, (ms_attn_layout)l, 2);
    attn_case(1, 2, 17, 130, 63, (ms_attn_layout)l, 3);
    attn_case(1, 1, 64, 257, 257, (ms_attn_layout)l, 4);
    attn_case(1, 4, 32, 64, 128, (ms_attn_layout)l, 5);
    /* the UNet's 16x16 attention; tails of the six-key and six-channel
     * register tiles (Tk % 6, d % 6) and of the query lanes (Tq % 64) */
    attn_case(2, 4, 32, 256, 256, (ms_attn_layout)l, 6);
    attn_case(1, 3, 13, 70, 71, (ms_attn_layout)l, 7);
    attn_case(1, 2, 6, 5, 6, (ms_attn_layout)l, 8);
  }
}

static void test_kernels_attention_known_values(void **state) {
  (void)state;
  /* d = 1, one query q = 1, keys [0, ln 3]: weights [1/4, 3/4];
   * v = [4, 8] -> o = 1 + 6 = 7. A second head with q = 0 averages: 6. */
  const float q[2] = {1.0f, 0.0f}; /* NCT: [1, 2 channels, 1 token] */
  const float k[4] = {0.0f, (float)log(3.0), 5.0f, -5.0f};
  const float v[4] = {4.0f, 8.0f, 4.0f, 8.0f};
  float o[2], orf[2], sc[65536];
  assert_true(ms_attention_scratch_floats(1, 0) <= 65536);
  assert_int_equal(ms_attention(o, q, k, v, 1, 2, 1, 1, 2, MS_ATTN_NCT, sc, 65536), MS_OK);
  assert_int_equal(ms_attention_ref(orf, q, k, v, 1, 2, 1, 1, 2, MS_ATTN_NCT), MS_OK);
  assert_true(fabsf(o[0] - 7.0f) < 1e-6f && fabsf(orf[0] - 7.0f) < 1e-6f);
  assert_true(fabsf(o[1] - 6.0f) < 1e-6f && fabsf(orf[1] - 6.0f) < 1e-6f);
  /* The two layouts are transposes of each other. */
  const size_t heads = 2, d = 5, T = 11, C = heads * d;
  float qn[110], kn[110], vn[110], qt[110], kt[110], vt[110], on[110], ot[110];
  fill(qn, 110, 31);
  fill(kn, 110, 32);
  fill(vn, 110, 33);
  for (size_t c = 0; c < C; c++)
    for (size_t t = 0; t < T; t++) {
      qt[t * C + c] = qn[c * T + t];
      kt[t * C + c] = kn[c * T + t];
      vt[t * C + c] = vn[c * T + t];
    }
  assert_int_equal(ms_attention(on, qn, kn, vn, 1, heads, d, T, T, MS_ATTN_NCT, sc, 65536), MS_OK);
  assert_int_equal(ms_attention(ot, qt, kt, vt, 1, heads, d, T, T, MS_ATTN_NTC, sc, 65536), MS_OK);
  for (size_t c = 0; c < C; c++)
    for (size_t t = 0; t < T; t++) assert_true(ot[t * C + c] == on[c * T + t]);
  assert_int_equal(ms_attention(on, qn, kn, vn, 1, heads, d, T, T, MS_ATTN_NCT, sc, 10),
                   MS_ERR_INVALID);
  assert_int_equal(ms_attention_ref(on, qn, kn, vn, 1, heads, d, T, 0, MS_ATTN_NCT),
                   MS_ERR_INVALID);
}

/* ------------------------------------------------------------ small ops */

static void test_kernels_resample_add_concat(void **state) {
  (void)state;
  /* upsample [1 2; 3 4] -> [1 1 2 2; 1 1 2 2; 3 3 4 4; 3 3 4 4] */
  const float x[4] = {1, 2, 3, 4};
  const float up_want[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
  float up[16], upr[16];
  ms_upsample_nearest2x(up, x, 1, 1, 2, 2);
  ms_upsample_nearest2x_ref(upr, x, 1, 1, 2, 2);
  assert_memory_equal(up, up_want, sizeof up);
  assert_memory_equal(upr, up_want, sizeof up);
  /* avgpool of a 3x5 map drops the last row and column (floor). */
  const float m[15] = {1, 2, 3, 4, 99, 5, 6, 7, 8, 99, 99, 99, 99, 99, 99};
  float pool[2], poolr[2];
  ms_avgpool2x(pool, m, 1, 1, 3, 5);
  ms_avgpool2x_ref(poolr, m, 1, 1, 3, 5);
  assert_true(pool[0] == 3.5f && pool[1] == 5.5f);
  assert_memory_equal(pool, poolr, sizeof pool);
  /* add, add_channel */
  float s[4], sr[4];
  ms_add(s, x, up_want, 4);
  ms_add_ref(sr, x, up_want, 4);
  assert_true(s[0] == 2 && s[1] == 3 && s[2] == 5 && s[3] == 6);
  assert_memory_equal(s, sr, sizeof s);
  const float bch[2] = {10, 20}; /* N=1, C=2, HW=2 */
  ms_add_channel(s, x, bch, 1, 2, 2);
  ms_add_channel_ref(sr, x, bch, 1, 2, 2);
  assert_true(s[0] == 11 && s[1] == 12 && s[2] == 23 && s[3] == 24);
  assert_memory_equal(s, sr, sizeof s);
  /* concat: N=2, Ca=1, Cb=2, HW=1 */
  const float a[2] = {1, 2}, b[4] = {3, 4, 5, 6};
  const float cat_want[6] = {1, 3, 4, 2, 5, 6};
  float cat[6], catr[6];
  ms_concat_channels(cat, a, b, 2, 1, 2, 1);
  ms_concat_channels_ref(catr, a, b, 2, 1, 2, 1);
  assert_memory_equal(cat, cat_want, sizeof cat);
  assert_memory_equal(catr, cat_want, sizeof cat);
  /* Odd shapes, fast == ref bit for bit, guards intact. */
  const size_t N = 2, C = 3, H = 7, W = 5, n = N * C * H * W;
  float *in = gbuf(n), *u1 = gbuf(4 * n), *u2 = gbuf(4 * n), *p1 = gbuf(n / 4 + 1),
        *p2 = gbuf(n / 4 + 1), *c1 = gbuf(4 * n), *c2 = gbuf(4 * n), *bb = gbuf(N * C);
  fill(in, n, 41);
  fill(bb, N * C, 42);
  ms_upsample_nearest2x(u1, in, N, C, H, W);
  ms_upsample_nearest2x_ref(u2, in, N, C, H, W);
  assert_memory_equal(u1, u2, 4 * n * sizeof(float));
  ms_avgpool2x(p1, in, N, C, H, W);
  ms_avgpool2x_ref(p2, in, N, C, H, W);
  assert_memory_equal(p1, p2, N * C * (H / 2) * (W / 2) * sizeof(float));
  ms_concat_channels(c1, in, u1, N, C, 3 * C, H * W);
  ms_concat_channels_ref(c2, in, u1, N, C, 3 * C, H * W);
  assert_memory_equal(c1, c2, 4 * n * sizeof(float)); /* C + 3C channels */
  ms_add_channel(c1, in, bb, N, C, H * W);
  ms_add_channel_ref(c2, in, bb, N, C, H * W);
  assert_memory_equal(c1, c2, n * sizeof(float));
  gfree(in, n);
  gfree(u1, 4 * n);
  gfree(u2, 4 * n);
  gfree(p1, n / 4 + 1);
  gfree(p2, n / 4 + 1);
  gfree(c1, 4 * n);
  gfree(c2, 4 * n);
  gfree(bb, N * C);
}

static void test_kernels_timestep_embedding_known_values(void **state) {
  (void)state;
  /* dim 4: half 2, freqs [1, exp(-ln(10000)/2) = 0.01];
   * t = 1 -> [cos 1, cos 0.01, sin 1, sin 0.01]; t = 0 -> [1 1 0 0]. */
  const float t[2] = {1.0f, 0.0f};
  float y[8], yr[8];
  assert_int_equal(ms_timestep_embedding(y, t, 2, 4, 10000.0f), MS_OK);
  assert_int_equal(ms_timestep_embedding_ref(yr, t, 2, 4, 10000.0f), MS_OK);
  const double want[8] = {cos(1.0), cos(0.01), sin(1.0), sin(0.01), 1, 1, 0, 0};
  for (int i = 0; i < 8; i++)
    assert_true(fabs(y[i] - want[i]) < 1e-6 && fabs(yr[i] - want[i]) < 1e-6);
  /* odd dim: last column 0 */
  float z[5];
  assert_int_equal(ms_timestep_embedding(z, t, 1, 5, 10000.0f), MS_OK);
  assert_true(z[4] == 0.0f && fabs(z[0] - cos(1.0)) < 1e-6);
  assert_int_equal(ms_timestep_embedding(z, t, 1, 1, 10000.0f), MS_ERR_INVALID);
  assert_int_equal(ms_timestep_embedding_ref(z, t, 1, 4, 0.0f), MS_ERR_INVALID);
  /* fast vs ref over DDPM timesteps: same float args, cos/sin within 1e-6. */
  float ts[1000], e1[1000 * 32], e2[1000 * 32];
  for (int i = 0; i < 1000; i++) ts[i] = (float)i;
  assert_int_equal(ms_timestep_embedding(e1, ts, 1000, 32, 10000.0f), MS_OK);
  assert_int_equal(ms_timestep_embedding_ref(e2, ts, 1000, 32, 10000.0f), MS_OK);
  check_close("timestep_embedding", e1, e2, 1000 * 32, 0.0, 1e-6);
}

/* ------------------------------------------------------------ determinism */

/* Runs `body` (which writes `out` of n floats) with 1, 2, 3 and 8 threads
 * and asserts identical bytes. */
#define SAME_BYTES_FOR_THREADS(what, out, n, body)                               \
  do {                                                                           \
    float *first_ = malloc((n) * sizeof(float));                                 \
    assert_non_null(first_);                                                     \
    const int counts_[4] = {1, 2, 3, 8};                                         \
    for (int ti_ = 0; ti_ < 4; ti_++) {                                          \
      omp_set_num_threads(counts_[ti_]);                                         \
      fill_nan(out, n);                                                          \
      body;                                                                      \
      if (ti_ == 0)                                                              \
        memcpy(first_, out, (n) * sizeof(float));                                \
      else if (memcmp(first_, out, (n) * sizeof(float)) != 0)                    \
        fail_msg("%s: bytes differ between 1 and %d threads", what, counts_[ti_]); \
    }                                                                            \
    free(first_);                                                                \
  } while (0)

static void test_kernels_identical_bytes_for_any_thread_count(void **state) {
  (void)state;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(8); /* scratch queries below size for 8 threads */
  /* sgemm on every path, with K > KC and ragged edges. */
  {
    const size_t M = 131, N = 263, K = 600;
    float *A = gbuf(M * K), *B = gbuf(K * N), *C = gbuf(M * N), *C0 = gbuf(M * N);
    fill(A, M * K, 1);
    fill(B, K * N, 2);
    fill(C0, M * N, 3);
    size_t ns = ms_sgemm_scratch_floats(M, N, K);
    float *sc = gbuf(ns);
    for (int isa = 0; isa < MS_KERNEL_ISA_COUNT; isa++) {
      if (!ms__isa_supported((ms_kernel_isa)isa)) continue;
      SAME_BYTES_FOR_THREADS("sgemm", C, M * N, {
        memcpy(C, C0, M * N * sizeof(float));
        assert_int_equal(ms__sgemm_isa((ms_kernel_isa)isa, C, N, A, K, B, N, MS_TRANS_NO,
                                       MS_TRANS_NO, M, N, K, 0.5f, 1.5f, sc, ns),
                         MS_OK);
      });
      /* from inside a parallel region (nested: a team of one) */
      float *Cn = gbuf(M * N);
      memcpy(C, C0, M * N * sizeof(float));
      memcpy(Cn, C0, M * N * sizeof(float));
      assert_int_equal(ms__sgemm_isa((ms_kernel_isa)isa, C, N, A, K, B, N, MS_TRANS_NO,
                                     MS_TRANS_NO, M, N, K, 0.5f, 1.5f, sc, ns),
                       MS_OK);
      ms_status stn = MS_ERR_INTERNAL;
#pragma omp parallel num_threads(2)
      {
#pragma omp single
        stn = ms__sgemm_isa((ms_kernel_isa)isa, Cn, N, A, K, B, N, MS_TRANS_NO, MS_TRANS_NO, M, N,
                            K, 0.5f, 1.5f, sc, ns);
      }
      assert_int_equal(stn, MS_OK);
      if (memcmp(C, Cn, M * N * sizeof(float)) != 0) fail_msg("sgemm: nested call differs");
      gfree(Cn, M * N);
      SAME_BYTES_FOR_THREADS("sgemm^T", C, M * N, {
        assert_int_equal(ms__sgemm_isa((ms_kernel_isa)isa, C, N, A, M, B, K, MS_TRANS_YES,
                                       MS_TRANS_YES, M, N, K, 1.0f, 0.0f, sc, ns),
                         MS_OK);
      });
    }
    gfree(A, M * K);
    gfree(B, K * N);
    gfree(C, M * N);
    gfree(C0, M * N);
    gfree(sc, ns);
  }
  /* conv2d (banded im2col + GEMM), linear */
  {
    ms_conv2d_params p = {2, 40, 19, 23, 24, 3, 3, 1, 1, 1, 1};
    size_t Ho, Wo;
    assert_int_equal(ms_conv2d_out_hw(&p, &Ho, &Wo), MS_OK);
    size_t nx = 2 * 40 * 19 * 23, nw = 24 * 40 * 9, ny = 2 * 24 * Ho * Wo;
    float *x = gbuf(nx), *w = gbuf(nw), *b = gbuf(24), *y = gbuf(nx); /* nx > ny */
    fill(x, nx, 4);
    fill(w, nw, 5);
    fill(b, 24, 6);
    size_t ns = ms_conv2d_scratch_floats(&p);
    float *sc = gbuf(ns);
    SAME_BYTES_FOR_THREADS("conv2d", y, ny,
                           assert_int_equal(ms_conv2d(y, x, w, b, &p, sc, ns), MS_OK));
    /* big enough for 8 threads (about 4 MFLOP each), batch 3, stride 1 and 2 */
    for (size_t st = 1; st <= 2; st++) {
      ms_conv2d_params q = {3, 48, 21, 27, 40, 3, 3, st, st, 1, 1};
      size_t qHo, qWo;
      assert_int_equal(ms_conv2d_out_hw(&q, &qHo, &qWo), MS_OK);
      const size_t qx = 3 * 48 * 21 * 27, qw = 40 * 48 * 9, qy = 3 * 40 * qHo * qWo;
      float *xq = gbuf(qx), *wq = gbuf(qw), *yq = gbuf(qy), *yl = gbuf(qy);
      fill(xq, qx, 11);
      fill(wq, qw, 12);
      size_t nq = ms_conv2d_scratch_floats(&q);
      float *sq = gbuf(nq);
      SAME_BYTES_FOR_THREADS("conv2d batch 3", yq, qy,
                             assert_int_equal(ms_conv2d(yq, xq, wq, b, &q, sq, nq), MS_OK));
      /* less scratch than 8 threads need: fewer threads, same bytes; less
       * than one thread's share: refused, output untouched */
      omp_set_num_threads(8);
      size_t lo = 0, n1 = nq; /* the least scratch accepted: binary search */
      while (lo + 1 < n1) {
        size_t mid = lo + (n1 - lo) / 2;
        if (ms_conv2d(yl, xq, wq, b, &q, sq, mid) == MS_OK)
          n1 = mid;
        else
          lo = mid;
      }
      assert_true(n1 < nq / 2);
      fill_nan(yl, qy);
      assert_int_equal(ms_conv2d(yl, xq, wq, b, &q, sq, n1), MS_OK);
      assert_memory_equal(yq, yl, qy * sizeof(float));
      for (size_t i = 0; i < qy; i++) yl[i] = 7.0f;
      assert_int_equal(ms_conv2d(yl, xq, wq, b, &q, sq, n1 - 1), MS_ERR_INVALID);
      for (size_t i = 0; i < qy; i++) assert_true(yl[i] == 7.0f);
      gfree(xq, qx);
      gfree(wq, qw);
      gfree(yq, qy);
      gfree(yl, qy);
      gfree(sq, nq);
    }
    size_t nl = ms_linear_scratch_floats(23, 360, 24); /* w is [24, 360] */
    float *sl = gbuf(nl);
    SAME_BYTES_FOR_THREADS("linear", y, 23 * 24,
                           assert_int_equal(ms_linear(y, x, w, b, 23, 360, 24, sl, nl), MS_OK));
    /* GroupNorm(+SiLU), softmax, SiLU, GELU over the same input */
    SAME_BYTES_FOR_THREADS("group_norm", y, nx,
                           assert_int_equal(ms_group_norm(y, x, w, w + 40, 2, 40, 19 * 23, 8, 1e-5f),
                                            MS_OK));
    SAME_BYTES_FOR_THREADS("group_norm_silu", y, nx,
                           assert_int_equal(ms_group_norm_silu(y, x, w, w + 40, 2, 40, 19 * 23, 8,
                                                               1e-5f),
                                            MS_OK));
    SAME_BYTES_FOR_THREADS("softmax", y, nx, ms_softmax_rows(y, x, 80, 19 * 23));
    SAME_BYTES_FOR_THREADS("silu", y, nx, ms_silu(y, x, nx));
    SAME_BYTES_FOR_THREADS("exp", y, nx, ms_exp(y, x, nx));
    SAME_BYTES_FOR_THREADS("gelu", y, nx, ms_gelu(y, x, nx));
    gfree(x, nx);
    gfree(w, nw);
    gfree(b, 24);
    gfree(y, nx);
    gfree(sc, ns);
    gfree(sl, nl);
  }
  /* attention, both layouts */
  {
    const size_t N = 2, heads = 3, d = 16, T = 150, n = N * heads * d * T;
    float *q = gbuf(n), *k = gbuf(n), *v = gbuf(n), *o = gbuf(n);
    fill(q, n, 7);
    fill(k, n, 8);
    fill(v, n, 9);
    size_t ns = ms_attention_scratch_floats(d, 8);
    float *sc = gbuf(ns);
    for (int l = 0; l < MS_ATTN_LAYOUT_COUNT; l++)
      SAME_BYTES_FOR_THREADS("attention", o, n,
                             assert_int_equal(ms_attention(o, q, k, v, N, heads, d, T, T,
                                                           (ms_attn_layout)l, sc, ns),
                                              MS_OK));
    /* Less scratch than 8 threads need: fewer threads, same bytes. */
    float *o2 = gbuf(n);
    omp_set_num_threads(8);
    assert_int_equal(ms_attention(o, q, k, v, N, heads, d, T, T, MS_ATTN_NCT, sc, ns), MS_OK);
    assert_int_equal(ms_attention(o2, q, k, v, N, heads, d, T, T, MS_ATTN_NCT, sc, ns / 8 + 1),
                     MS_OK);
    assert_memory_equal(o, o2, n * sizeof(float));
    gfree(o2, n);
    gfree(q, n);
    gfree(k, n);
    gfree(v, n);
    gfree(o, n);
    gfree(sc, ns);
  }
  omp_set_num_threads(saved);
}

static void test_kernels_enum_names(void **state) {
  (void)state;
  assert_string_equal(ms_trans_name(MS_TRANS_YES), "yes");
  assert_string_equal(ms_attn_layout_name(MS_ATTN_NTC), "ntc");
  assert_string_equal(ms_kernel_isa_name(MS_KERNEL_ISA_AVX512), "avx512");
  assert_string_equal(ms_kernel_isa_name(MS_KERNEL_ISA_COUNT), "unknown");
  for (int i = 0; i < MS_TRANS_COUNT; i++)
    assert_int_equal(ms_trans_from_name(ms_trans_name((ms_trans)i)), i);
  for (int i = 0; i < MS_ATTN_LAYOUT_COUNT; i++)
    assert_int_equal(ms_attn_layout_from_name(ms_attn_layout_name((ms_attn_layout)i)), i);
  for (int i = 0; i < MS_KERNEL_ISA_COUNT; i++)
    assert_int_equal(ms_kernel_isa_from_name(ms_kernel_isa_name((ms_kernel_isa)i)), i);
  assert_int_equal(ms_trans_from_name("maybe"), MS_TRANS_COUNT);
  assert_int_equal(ms_attn_layout_from_name(NULL), MS_ATTN_LAYOUT_COUNT);
  assert_int_equal(ms_kernel_isa_from_name("sse"), MS_KERNEL_ISA_COUNT);
  assert_true(ms__isa_supported(ms_kernel_isa_detect()));
  assert_int_equal(ms__sgemm_isa(MS_KERNEL_ISA_COUNT, NULL, 1, NULL, 1, NULL, 1, MS_TRANS_NO,
                                 MS_TRANS_NO, 1, 1, 1, 1, 0, NULL, 0),
                   MS_ERR_INVALID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kernels_sgemm_known_values),
      cmocka_unit_test(test_kernels_sgemm_rejects_bad_arguments),
      cmocka_unit_test(test_kernels_sgemm_matches_ref_odd_shapes),
      cmocka_unit_test(test_kernels_sgemm_long_k_crosses_blocks),
      cmocka_unit_test(test_kernels_conv2d_known_values),
      cmocka_unit_test(test_kernels_conv2d_rejects_bad_arguments),
      cmocka_unit_test(test_kernels_conv2d_matches_ref),
      cmocka_unit_test(test_kernels_conv2d_same_bytes_as_im2col_gemm),
      cmocka_unit_test(test_kernels_conv2d_batch_invariant),
      cmocka_unit_test(test_kernels_conv2d_unpacked_path_same_bytes_as_packed),
      cmocka_unit_test(test_kernels_conv2d_winograd_matches_ref),
      cmocka_unit_test(test_kernels_conv2d_winograd_same_bytes_any_threads_and_batch),
      cmocka_unit_test(test_kernels_linear_matches_ref_and_known),
      cmocka_unit_test(test_kernels_group_norm_known_values),
      cmocka_unit_test(test_kernels_group_norm_matches_ref),
      cmocka_unit_test(test_kernels_activations_known_values),
      cmocka_unit_test(test_kernels_activations_match_ref),
      cmocka_unit_test(test_kernels_exp_accuracy_and_position),
      cmocka_unit_test(test_kernels_exp_users_propagate_nan),
      cmocka_unit_test(test_kernels_softmax_known_and_ref),
      cmocka_unit_test(test_kernels_attention_known_values),
      cmocka_unit_test(test_kernels_attention_matches_ref),
      cmocka_unit_test(test_kernels_resample_add_concat),
      cmocka_unit_test(test_kernels_timestep_embedding_known_values),
      cmocka_unit_test(test_kernels_identical_bytes_for_any_thread_count),
      cmocka_unit_test(test_kernels_enum_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
