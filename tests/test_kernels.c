/* Tests of the compute kernels (gen/kernels/): one table of ops (OPS: name,
 * shapes, reference, fast path per ISA, tolerance) run by one harness that
 * compares every fast path with _ref on odd shapes with 1, 2, 3 and 8
 * threads (test_kernels_ops_table); results worked out by hand, argument
 * checks, and the properties one op has alone (summation order, batch
 * invariance, nested calls, scratch limits). Guard canaries around every
 * buffer.
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

static const size_t ODD[] = {1, 7, 17, 63, 129, 257};
#define N_ODD (sizeof ODD / sizeof ODD[0])

/* ------------------------------------------------------------ sgemm */

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

static void test_kernels_linear_known_values(void **state) {
  (void)state;
  /* x = [1 2], W = [[1 1], [2 -1], [0 3]], b = [0.5 0 -1]: y = [3.5 0 5]. */
  const float x[2] = {1, 2}, W[6] = {1, 1, 2, -1, 0, 3}, b[3] = {0.5f, 0, -1};
  float y[3], yr[3], scratch[4096];
  assert_true(ms_linear_scratch_floats(1, 2, 3) <= 4096);
  assert_int_equal(ms_linear(y, x, W, b, 1, 2, 3, scratch, 4096), MS_OK);
  assert_int_equal(ms_linear_ref(yr, x, W, b, 1, 2, 3), MS_OK);
  assert_true(y[0] == 3.5f && y[1] == 0.0f && y[2] == 5.0f);
  assert_true(yr[0] == 3.5f && yr[1] == 0.0f && yr[2] == 5.0f);
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

/* In place gives the same bytes as out of place. */
static void test_kernels_group_norm_in_place(void **state) {
  (void)state;
  const size_t N = 2, C = 6, HW = 7, G = 3, n = N * C * HW;
  float *x = gbuf(n), *y = gbuf(n), *r = gbuf(n), *gm = gbuf(C), *bt = gbuf(C);
  fill(x, n, 11);
  fill(gm, C, 12);
  fill(bt, C, 13);
  for (int silu = 0; silu < 2; silu++) {
    memcpy(r, x, n * sizeof(float));
    if (silu) {
      assert_int_equal(ms_group_norm_silu(y, x, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
      assert_int_equal(ms_group_norm_silu(r, r, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
    } else {
      assert_int_equal(ms_group_norm(y, x, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
      assert_int_equal(ms_group_norm(r, r, gm, bt, N, C, HW, G, 1e-5f), MS_OK);
    }
    assert_memory_equal(y, r, n * sizeof(float));
  }
  gfree(x, n);
  gfree(y, n);
  gfree(r, n);
  gfree(gm, C);
  gfree(bt, C);
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
  /* in place: the same bytes */
  float z[4];
  memcpy(z, x, sizeof z);
  ms_gelu(z, z, 4);
  assert_memory_equal(z, y, sizeof z);
  memcpy(z, x, sizeof z);
  ms_silu(z, z, 4);
  ms_silu(y, x, 4);
  assert_memory_equal(z, y, sizeof z);
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

static void test_kernels_softmax_known_values_and_row_sums(void **state) {
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
    float *a = gbuf(n), *o = gbuf(n);
    fill(a, n, 21);
    for (size_t i = 0; i < n; i++) a[i] *= 20.0f;
    ms_softmax_rows(o, a, rows, cols);
    for (size_t r = 0; r < rows; r++) {
      double s = 0;
      for (size_t j = 0; j < cols; j++) s += o[r * cols + j];
      assert_true(fabs(s - 1.0) < 1e-5);
    }
    gfree(a, n);
    gfree(o, n);
  }
}

/* ------------------------------------------------------------ attention */



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
}

/* ------------------------------------------------------------ the op table */

/* Every kernel op is one row of OPS below and runs through one harness
 * (test_kernels_ops_table): for each shape of the row, inputs filled from a
 * fixed seed, the _ref result once, then the fast op on every path — each
 * ISA this CPU runs (rows with per-ISA entry points) and the dispatched
 * entry point — with 1, 2, 3 and 8 threads. Per path the bytes must be the
 * same for every thread count and every element within the row's bound of
 * _ref; the dispatched bytes equal those of the detected ISA's path. All
 * buffers carry guard canaries. Adding an op is one row and its small
 * functions; adding a shape is one line of its table. */

#define KT_IN 4   /* inputs per op at most */
#define KT_DIM 12 /* numbers per shape at most */

typedef struct {
  size_t nin[KT_IN]; /* floats of each input (0: unused) */
  size_t nout;       /* floats of the output buffer */
  size_t nscratch;   /* scratch floats (sized with 8 threads set) */
} kt_sizes;

typedef struct kt_op kt_op;
struct kt_op {
  const char *name;
  /* The shapes: writes up to `max` rows of KT_DIM numbers, returns how many. */
  size_t (*shapes)(double (*s)[KT_DIM], size_t max);
  void (*sizes)(const double *s, kt_sizes *z);
  /* Optional: replaces or rescales the seeded inputs. */
  void (*prepare)(const double *s, float *const *in, const kt_sizes *z);
  /* Optional: what the output holds before a call (default: NaN, which an
   * op that must not read its output cannot hide). */
  void (*init_out)(const double *s, float *const *in, float *out, size_t n);
  ms_status (*ref)(const double *s, float *const *in, float *out);
  /* isa == MS_KERNEL_ISA_COUNT: the dispatched entry point. */
  ms_status (*fast)(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                    float *scratch, size_t ns);
  int per_isa;
  /* The bound on |fast - ref| per element, given the inputs and _ref's
   * output; NULL: rtol * |ref| + atol. */
  void (*bound)(const kt_op *op, const double *s, float *const *in, const float *ref, double *b,
                size_t n);
  double rtol, atol;
};

#define Z(v) ((size_t)(v))

/* ---- sgemm: {ta, tb, M, N, K, alpha, beta}, padded leading dimensions */

static size_t kt_sgemm_lda(const double *s) { return (s[0] ? Z(s[2]) : Z(s[4])) + 3; }
static size_t kt_sgemm_ldb(const double *s) { return (s[1] ? Z(s[4]) : Z(s[3])) + 1; }
static size_t kt_sgemm_ldc(const double *s) { return Z(s[3]) + 5; }

static size_t kt_sgemm_shapes(double (*s)[KT_DIM], size_t max) {
  size_t n = 0;
#define ROW(...)                                       \
  do {                                                 \
    const double r_[] = {__VA_ARGS__};                 \
    assert_true(n < max);                              \
    memset(s[n], 0, sizeof s[n]);                      \
    memcpy(s[n], r_, sizeof r_);                       \
    n++;                                               \
  } while (0)
  /* Odd shapes; the four transpose combinations rotate over the shapes and
   * all four run on the cube's diagonal. beta 0 must not read C. */
  for (size_t mi = 0; mi < N_ODD; mi++)
    for (size_t ni = 0; ni < N_ODD; ni++)
      for (size_t ki = 0; ki < N_ODD; ki++)
        for (int t = 0; t < 4; t++) {
          if (!(mi == ni && ni == ki) && t != (int)((mi + ni + ki) % 4)) continue;
          ROW(t & 1, t >> 1, ODD[mi], ODD[ni], ODD[ki], t == 3 ? -1.25 : 1.0, (t & 1) ? 0.0 : 0.5);
        }
  /* K around and over the k block: the later blocks accumulate, beta once. */
  const double Ks[] = {MS_SGEMM_KC - 1, MS_SGEMM_KC, MS_SGEMM_KC + 1, 3 * MS_SGEMM_KC + 17};
  for (size_t i = 0; i < 4; i++) ROW(0, 1, 37, 45, Ks[i], 0.75, 2.0);
  /* Several MC/NC blocks and a grid over 8 threads. */
  ROW(0, 0, 700, 1100, 300, 1.0, 0.0);
  ROW(0, 0, 131, 263, 600, 0.5, 1.5);
  ROW(1, 1, 131, 263, 600, 1.0, 0.0);
  return n;
}

static void kt_sgemm_sizes(const double *s, kt_sizes *z) {
  const size_t M = Z(s[2]), N = Z(s[3]), K = Z(s[4]);
  z->nin[0] = (s[0] ? K : M) * kt_sgemm_lda(s);
  z->nin[1] = (s[1] ? N : K) * kt_sgemm_ldb(s);
  z->nin[2] = M * kt_sgemm_ldc(s); /* C before the call */
  z->nout = M * kt_sgemm_ldc(s);
  z->nscratch = ms_sgemm_scratch_floats(M, N, K);
}

static void kt_sgemm_init_out(const double *s, float *const *in, float *out, size_t n) {
  if (s[6] == 0.0)
    fill_nan(out, n);
  else
    memcpy(out, in[2], n * sizeof(float));
}

static ms_status kt_sgemm_ref(const double *s, float *const *in, float *out) {
  return ms_sgemm_ref(out, kt_sgemm_ldc(s), in[0], kt_sgemm_lda(s), in[1], kt_sgemm_ldb(s),
                      (ms_trans)s[0], (ms_trans)s[1], Z(s[2]), Z(s[3]), Z(s[4]), (float)s[5],
                      (float)s[6]);
}

static ms_status kt_sgemm_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                               float *sc, size_t ns) {
  const size_t lda = kt_sgemm_lda(s), ldb = kt_sgemm_ldb(s), ldc = kt_sgemm_ldc(s);
  if (isa == MS_KERNEL_ISA_COUNT)
    return ms_sgemm(out, ldc, in[0], lda, in[1], ldb, (ms_trans)s[0], (ms_trans)s[1], Z(s[2]),
                    Z(s[3]), Z(s[4]), (float)s[5], (float)s[6], sc, ns);
  return ms__sgemm_isa(isa, out, ldc, in[0], lda, in[1], ldb, (ms_trans)s[0], (ms_trans)s[1],
                       Z(s[2]), Z(s[3]), Z(s[4]), (float)s[5], (float)s[6], sc, ns);
}

/* |alpha| sum |a||b| + |beta c| times the blocked-summation factor of K;
 * 0 on the padding columns of C, which must keep their bytes. */
static void kt_sgemm_bound(const kt_op *op, const double *s, float *const *in, const float *ref,
                           double *b, size_t n) {
  (void)op;
  (void)ref;
  kt_sizes z;
  kt_sgemm_sizes(s, &z);
  float *aa = gbuf(z.nin[0]), *ab = gbuf(z.nin[1]), *S = gbuf(n);
  absv(aa, in[0], z.nin[0]);
  absv(ab, in[1], z.nin[1]);
  for (size_t i = 0; i < n; i++) S[i] = fabsf((float)s[6] * in[2][i]);
  assert_int_equal(ms_sgemm_ref(S, kt_sgemm_ldc(s), aa, kt_sgemm_lda(s), ab, kt_sgemm_ldb(s),
                                (ms_trans)s[0], (ms_trans)s[1], Z(s[2]), Z(s[3]), Z(s[4]),
                                fabsf((float)s[5]), 1.0f),
                   MS_OK);
  const size_t N = Z(s[3]), ldc = kt_sgemm_ldc(s);
  for (size_t i = 0; i < n; i++) b[i] = i % ldc < N ? gemm_tol_factor(Z(s[4])) * S[i] : 0.0;
  gfree(aa, z.nin[0]);
  gfree(ab, z.nin[1]);
  gfree(S, n);
}

/* ---- linear: {M, in, out} */

static size_t kt_linear_shapes(double (*s)[KT_DIM], size_t max) {
  size_t n = 0;
  for (size_t mi = 0; mi < N_ODD; mi += 2)
    for (size_t ii = 0; ii < N_ODD; ii++)
      for (size_t oi = 1; oi < N_ODD; oi += 2) ROW(ODD[mi], ODD[ii], ODD[oi]);
  ROW(23, 360, 24);
  return n;
}

static void kt_linear_sizes(const double *s, kt_sizes *z) {
  z->nin[0] = Z(s[0]) * Z(s[1]);
  z->nin[1] = Z(s[2]) * Z(s[1]);
  z->nin[2] = Z(s[2]);
  z->nout = Z(s[0]) * Z(s[2]);
  z->nscratch = ms_linear_scratch_floats(Z(s[0]), Z(s[1]), Z(s[2]));
}

static ms_status kt_linear_ref(const double *s, float *const *in, float *out) {
  return ms_linear_ref(out, in[0], in[1], in[2], Z(s[0]), Z(s[1]), Z(s[2]));
}

static ms_status kt_linear_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                                float *sc, size_t ns) {
  (void)isa;
  return ms_linear(out, in[0], in[1], in[2], Z(s[0]), Z(s[1]), Z(s[2]), sc, ns);
}

/* The reference on absolute inputs times the factor of K = in + 1 (bias). */
static void kt_linear_bound(const kt_op *op, const double *s, float *const *in, const float *ref,
                            double *b, size_t n) {
  (void)op;
  (void)ref;
  kt_sizes z;
  kt_linear_sizes(s, &z);
  float *a[3], *S = gbuf(n);
  for (int i = 0; i < 3; i++) {
    a[i] = gbuf(z.nin[i]);
    absv(a[i], in[i], z.nin[i]);
  }
  assert_int_equal(kt_linear_ref(s, a, S), MS_OK);
  for (size_t i = 0; i < n; i++) b[i] = gemm_tol_factor(Z(s[1]) + 1) * S[i];
  for (int i = 0; i < 3; i++) gfree(a[i], z.nin[i]);
  gfree(S, n);
}

/* ---- conv2d: {N, C, H, W, C_out, kh, kw, sh, sw, ph, pw, bias} */

static ms_conv2d_params kt_conv_p(const double *s) {
  ms_conv2d_params p = {Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]), Z(s[4]), Z(s[5]),
                        Z(s[6]), Z(s[7]), Z(s[8]), Z(s[9]), Z(s[10])};
  return p;
}

static size_t kt_conv_shapes(double (*s)[KT_DIM], size_t max) {
  static const double c[][11] = {
      /* N, C, H, W, C_out, kh, kw, sh, sw, ph, pw */
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
      {2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1},
      {1, 17, 13, 5, 33, 3, 3, 2, 2, 1, 1},
      {2, 4, 17, 17, 7, 1, 1, 1, 1, 0, 0},   /* pointwise: direct GEMM */
      {1, 5, 9, 11, 3, 1, 1, 2, 2, 0, 0},    /* strided 1x1 */
      {1, 6, 8, 8, 4, 1, 1, 1, 1, 1, 1},     /* padded 1x1 */
      {1, 3, 10, 7, 6, 5, 5, 1, 2, 2, 1},    /* 5x5, mixed strides and pads */
      {1, 2, 6, 6, 3, 3, 3, 3, 3, 0, 0},
      {1, 2, 4, 4, 2, 3, 3, 1, 1, 3, 3},     /* padding wider than the kernel reach */
      {1, 64, 40, 40, 40, 3, 3, 1, 1, 1, 1}, /* K > KC, several bands per thread */
      {1, 300, 30, 30, 3, 3, 3, 1, 1, 1, 1}, /* several im2col bands */
      {2, 40, 19, 23, 24, 3, 3, 1, 1, 1, 1}, /* a grid over 8 threads */
      {3, 48, 21, 27, 40, 3, 3, 1, 1, 1, 1}, /* ~4 MFLOP per thread, batch 3 */
      {3, 48, 21, 27, 40, 3, 3, 2, 2, 1, 1},
  };
  size_t n = 0;
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
    for (int bias = 1; bias >= 0; bias--)
      ROW(c[i][0], c[i][1], c[i][2], c[i][3], c[i][4], c[i][5], c[i][6], c[i][7], c[i][8], c[i][9],
          c[i][10], bias);
  return n;
}

static void kt_conv_sizes(const double *s, kt_sizes *z) {
  ms_conv2d_params p = kt_conv_p(s);
  size_t Ho, Wo;
  assert_int_equal(ms_conv2d_out_hw(&p, &Ho, &Wo), MS_OK);
  z->nin[0] = p.N * p.C * p.H * p.W;
  z->nin[1] = p.C_out * p.C * p.kh * p.kw;
  z->nin[2] = p.C_out;
  z->nout = p.N * p.C_out * Ho * Wo;
  z->nscratch = ms_conv2d_scratch_floats(&p);
}

static ms_status kt_conv_ref(const double *s, float *const *in, float *out) {
  ms_conv2d_params p = kt_conv_p(s);
  return ms_conv2d_ref(out, in[0], in[1], s[11] ? in[2] : NULL, &p);
}

static ms_status kt_conv_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                              float *sc, size_t ns) {
  ms_conv2d_params p = kt_conv_p(s);
  const float *b = s[11] ? in[2] : NULL;
  if (isa == MS_KERNEL_ISA_COUNT) return ms_conv2d(out, in[0], in[1], b, &p, sc, ns);
  return ms__conv2d_isa(isa, out, in[0], in[1], b, &p, sc, ns);
}

static void kt_conv_bound(const kt_op *op, const double *s, float *const *in, const float *ref,
                          double *b, size_t n) {
  (void)op;
  (void)ref;
  kt_sizes z;
  kt_conv_sizes(s, &z);
  float *a[3], *S = gbuf(n);
  for (int i = 0; i < 3; i++) {
    a[i] = gbuf(z.nin[i]);
    absv(a[i], in[i], z.nin[i]);
  }
  assert_int_equal(kt_conv_ref(s, a, S), MS_OK);
  for (size_t i = 0; i < n; i++) b[i] = gemm_tol_factor(Z(s[1] * s[5] * s[6])) * S[i];
  for (int i = 0; i < 3; i++) gfree(a[i], z.nin[i]);
  gfree(S, n);
}

/* ---- Winograd F(2x2, 3x3): {N, C, H, W, C_out, bias}; weights packed by
 * the path under test */

static ms_conv2d_params kt_wino_p(const double *s) {
  ms_conv2d_params p = {Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]), Z(s[4]), 3, 3, 1, 1, 1, 1};
  return p;
}

static size_t kt_wino_shapes(double (*s)[KT_DIM], size_t max) {
  static const double c[][5] = {
      /* N, C, H, W, C_out */
      {1, 1, 1, 1, 1},      /* one pixel: one partial tile */
      {1, 3, 5, 7, 2},      /* odd H and W */
      {2, 5, 7, 9, 13},     /* odd sizes, two images */
      {3, 17, 9, 6, 33},    /* C, C_out not multiples of 16 */
      {1, 16, 64, 64, 32},  /* UNet 64x64 level */
      {1, 64, 32, 32, 64},  /* 32x32 level */
      {2, 96, 16, 16, 128}, /* C > KC: four k blocks */
      {1, 128, 8, 8, 128},  /* 8x8 */
      {4, 8, 2, 2, 16},     /* 2x2 images, many per strip */
      {1, 4, 3, 130, 5},    /* tile rows wider than a strip */
      {5, 24, 15, 13, 20},  /* batch of odd images */
      {3, 32, 64, 64, 32},
  };
  size_t n = 0;
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
    for (int bias = 1; bias >= 0; bias--) ROW(c[i][0], c[i][1], c[i][2], c[i][3], c[i][4], bias);
  return n;
}

static void kt_wino_sizes(const double *s, kt_sizes *z) {
  ms_conv2d_params p = kt_wino_p(s);
  z->nin[0] = p.N * p.C * p.H * p.W;
  z->nin[1] = p.C_out * p.C * 9;
  z->nin[2] = p.C_out;
  z->nout = p.N * p.C_out * p.H * p.W;
  z->nscratch = ms_conv2d_winograd_scratch_floats(&p);
  assert_true(z->nscratch > 0);
}

static ms_status kt_wino_ref(const double *s, float *const *in, float *out) {
  ms_conv2d_params p = kt_wino_p(s);
  return ms_conv2d_ref(out, in[0], in[1], s[5] ? in[2] : NULL, &p);
}

static ms_status kt_wino_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                              float *sc, size_t ns) {
  ms_conv2d_params p = kt_wino_p(s);
  const size_t nwp = ms_conv2d_winograd_packed_floats(&p);
  float *wp = gbuf(nwp);
  const float *b = s[5] ? in[2] : NULL;
  ms_status st;
  if (isa == MS_KERNEL_ISA_COUNT) {
    st = ms_conv2d_winograd_pack_weights(wp, nwp, in[1], &p);
    if (st == MS_OK) st = ms_conv2d_winograd(out, in[0], wp, b, &p, sc, ns);
  } else {
    st = ms__conv2d_winograd_pack_weights_isa(isa, wp, nwp, in[1], &p);
    if (st == MS_OK) st = ms__conv2d_winograd_isa(isa, out, in[0], wp, b, &p, sc, ns);
  }
  gfree(wp, nwp);
  return st;
}

/* The transformed operands are exact sums of at most 4 inputs (|V| <= 4
 * max|x|) and 2.25 max|w| (|U|), the GEMM over C rounds like ms_sgemm with
 * K = C, and the output transform adds 9 products of A, so per element
 * |y - ref| <= gemm_tol_factor(C) * 9 * 16 * 2.25 * C * max|x| max|w| +
 * 2^-22 |ref| (inputs lie in [-1, 1)). The error is also held to 2e-6 of
 * the tensor's max |ref| (F(2,3) in float32 measures about 1e-7 .. 5e-7 on
 * these shapes; the PyTorch parity tests allow 1e-4). */
static void kt_wino_bound(const kt_op *op, const double *s, float *const *in, const float *ref,
                          double *b, size_t n) {
  (void)op;
  (void)in;
  const double C = s[1], worst = gemm_tol_factor(Z(C)) * 9 * 16 * 2.25 * C;
  double maxref = 0;
  for (size_t i = 0; i < n; i++) maxref = fmax(maxref, fabs((double)ref[i]));
  for (size_t i = 0; i < n; i++)
    b[i] = fmin(worst + ldexp(fabs((double)ref[i]), -22), 2e-6 * maxref);
}

/* ---- GroupNorm (+SiLU): {N, C, HW, G}; x far from 0 */

static size_t kt_gn_shapes(double (*s)[KT_DIM], size_t max) {
  static const double c[][4] = {{1, 1, 1, 1},    {2, 6, 7, 3},      {1, 32, 63, 8},
                                {3, 17, 17, 17}, {1, 64, 257, 32}, {2, 8, 1000, 2},
                                {2, 40, 437, 8}};
  size_t n = 0;
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) ROW(c[i][0], c[i][1], c[i][2], c[i][3]);
  return n;
}

static void kt_gn_sizes(const double *s, kt_sizes *z) {
  z->nin[0] = Z(s[0] * s[1] * s[2]);
  z->nin[1] = z->nin[2] = Z(s[1]);
  z->nout = z->nin[0];
}

static void kt_gn_prepare(const double *s, float *const *in, const kt_sizes *z) {
  (void)s;
  for (size_t i = 0; i < z->nin[0]; i++) in[0][i] = in[0][i] * 3.0f + 5.0f;
}

static ms_status kt_gn_ref(const double *s, float *const *in, float *out) {
  return ms_group_norm_ref(out, in[0], in[1], in[2], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]), 1e-5f);
}
static ms_status kt_gn_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                            float *sc, size_t ns) {
  (void)isa, (void)sc, (void)ns;
  return ms_group_norm(out, in[0], in[1], in[2], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]), 1e-5f);
}
static ms_status kt_gns_ref(const double *s, float *const *in, float *out) {
  return ms_group_norm_silu_ref(out, in[0], in[1], in[2], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]),
                                1e-5f);
}
static ms_status kt_gns_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                             float *sc, size_t ns) {
  (void)isa, (void)sc, (void)ns;
  return ms_group_norm_silu(out, in[0], in[1], in[2], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]), 1e-5f);
}

/* ---- elementwise maps: {n}; x swept over [-30, 30] */

static size_t kt_map_shapes(double (*s)[KT_DIM], size_t max) {
  size_t n = 0;
  ROW(1);
  ROW(37);
  ROW(100003);
  return n;
}

static void kt_map_sizes(const double *s, kt_sizes *z) { z->nin[0] = z->nout = Z(s[0]); }

static void kt_map_prepare(const double *s, float *const *in, const kt_sizes *z) {
  (void)s;
  const size_t n = z->nin[0];
  for (size_t i = 0; i < n; i++)
    in[0][i] = n > 1 ? -30.0f + 60.0f * (float)i / (float)(n - 1) : 0.5f;
}

#define KT_MAP(op)                                                                           \
  static ms_status kt_##op##_ref(const double *s, float *const *in, float *out) {           \
    ms_##op##_ref(out, in[0], Z(s[0]));                                                      \
    return MS_OK;                                                                            \
  }                                                                                          \
  static ms_status kt_##op##_fast(ms_kernel_isa isa, const double *s, float *const *in,     \
                                  float *out, float *sc, size_t ns) {                       \
    (void)isa, (void)sc, (void)ns;                                                           \
    ms_##op(out, in[0], Z(s[0]));                                                            \
    return MS_OK;                                                                            \
  }
KT_MAP(silu)
KT_MAP(gelu)
KT_MAP(exp)

/* ---- softmax over rows: {rows, cols}; inputs scaled to [-20, 20) */

static size_t kt_softmax_shapes(double (*s)[KT_DIM], size_t max) {
  static const double cols[] = {1, 7, 17, 63, 129, 4097};
  size_t n = 0;
  for (size_t i = 0; i < 6; i++) ROW(13, cols[i]);
  ROW(80, 437);
  return n;
}

static void kt_softmax_sizes(const double *s, kt_sizes *z) { z->nin[0] = z->nout = Z(s[0] * s[1]); }

static void kt_softmax_prepare(const double *s, float *const *in, const kt_sizes *z) {
  (void)s;
  for (size_t i = 0; i < z->nin[0]; i++) in[0][i] *= 20.0f;
}

static ms_status kt_softmax_ref(const double *s, float *const *in, float *out) {
  ms_softmax_rows_ref(out, in[0], Z(s[0]), Z(s[1]));
  return MS_OK;
}
static ms_status kt_softmax_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                                 float *sc, size_t ns) {
  (void)isa, (void)sc, (void)ns;
  ms_softmax_rows(out, in[0], Z(s[0]), Z(s[1]));
  return MS_OK;
}

/* ---- attention: {N, heads, d, Tq, Tk, layout}; q scaled by 3 (peaky) */

static size_t kt_attn_shapes(double (*s)[KT_DIM], size_t max) {
  static const double c[][5] = {
      {1, 1, 1, 1, 1},     {2, 3, 8, 7, 65},    {1, 2, 17, 130, 63}, {1, 1, 64, 257, 257},
      {1, 4, 32, 64, 128},
      /* the UNet's 16x16 attention; tails of the six-key and six-channel
       * register tiles (Tk % 6, d % 6) and of the query lanes (Tq % 64) */
      {2, 4, 32, 256, 256}, {1, 3, 13, 70, 71},  {1, 2, 6, 5, 6},
      {2, 3, 16, 150, 150}, /* a grid over 8 threads */
  };
  size_t n = 0;
  for (int l = 0; l < MS_ATTN_LAYOUT_COUNT; l++)
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
      ROW(c[i][0], c[i][1], c[i][2], c[i][3], c[i][4], l);
  return n;
}

static void kt_attn_sizes(const double *s, kt_sizes *z) {
  const size_t C = Z(s[0] * s[1] * s[2]);
  z->nin[0] = z->nout = C * Z(s[3]);
  z->nin[1] = z->nin[2] = C * Z(s[4]);
  z->nscratch = ms_attention_scratch_floats(Z(s[2]), 8);
}

static void kt_attn_prepare(const double *s, float *const *in, const kt_sizes *z) {
  (void)s;
  for (size_t i = 0; i < z->nin[0]; i++) in[0][i] *= 3.0f;
}

static ms_status kt_attn_ref(const double *s, float *const *in, float *out) {
  return ms_attention_ref(out, in[0], in[1], in[2], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]), Z(s[4]),
                          (ms_attn_layout)s[5]);
}

static ms_status kt_attn_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                              float *sc, size_t ns) {
  if (isa == MS_KERNEL_ISA_COUNT)
    return ms_attention(out, in[0], in[1], in[2], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]), Z(s[4]),
                        (ms_attn_layout)s[5], sc, ns);
  return ms__attention_isa(isa, out, in[0], in[1], in[2], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]),
                           Z(s[4]), (ms_attn_layout)s[5], sc, ns);
}

/* Outputs are convex combinations of v in [-1, 1): an absolute bound. The
 * float scores carry ~d * 2^-24 * |q||k| error, amplified by exp. */
static void kt_attn_bound(const kt_op *op, const double *s, float *const *in, const float *ref,
                          double *b, size_t n) {
  (void)op, (void)in, (void)ref;
  for (size_t i = 0; i < n; i++) b[i] = 2e-5 * (1.0 + s[2] / 32.0);
}

/* ---- data movement (exact): {N, C, H, W} */

static size_t kt_nchw_shapes(double (*s)[KT_DIM], size_t max) {
  size_t n = 0;
  ROW(1, 1, 1, 1);
  ROW(2, 3, 7, 5);
  ROW(1, 5, 16, 17);
  return n;
}

static void kt_up_sizes(const double *s, kt_sizes *z) {
  z->nin[0] = Z(s[0] * s[1] * s[2] * s[3]);
  z->nout = 4 * z->nin[0];
}
static ms_status kt_up_ref(const double *s, float *const *in, float *out) {
  ms_upsample_nearest2x_ref(out, in[0], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]));
  return MS_OK;
}
static ms_status kt_up_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                            float *sc, size_t ns) {
  (void)isa, (void)sc, (void)ns;
  ms_upsample_nearest2x(out, in[0], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]));
  return MS_OK;
}

static void kt_pool_sizes(const double *s, kt_sizes *z) {
  z->nin[0] = Z(s[0] * s[1] * s[2] * s[3]);
  z->nout = Z(s[0] * s[1]) * (Z(s[2]) / 2) * (Z(s[3]) / 2);
}
static ms_status kt_pool_ref(const double *s, float *const *in, float *out) {
  ms_avgpool2x_ref(out, in[0], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]));
  return MS_OK;
}
static ms_status kt_pool_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                              float *sc, size_t ns) {
  (void)isa, (void)sc, (void)ns;
  ms_avgpool2x(out, in[0], Z(s[0]), Z(s[1]), Z(s[2]), Z(s[3]));
  return MS_OK;
}

static void kt_add_sizes(const double *s, kt_sizes *z) {
  z->nin[0] = z->nin[1] = z->nout = Z(s[0] * s[1] * s[2] * s[3]);
}
static ms_status kt_add_ref(const double *s, float *const *in, float *out) {
  ms_add_ref(out, in[0], in[1], Z(s[0] * s[1] * s[2] * s[3]));
  return MS_OK;
}
static ms_status kt_add_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                             float *sc, size_t ns) {
  (void)isa, (void)sc, (void)ns;
  ms_add(out, in[0], in[1], Z(s[0] * s[1] * s[2] * s[3]));
  return MS_OK;
}

static void kt_addc_sizes(const double *s, kt_sizes *z) {
  z->nin[0] = z->nout = Z(s[0] * s[1] * s[2] * s[3]);
  z->nin[1] = Z(s[0] * s[1]);
}
static ms_status kt_addc_ref(const double *s, float *const *in, float *out) {
  ms_add_channel_ref(out, in[0], in[1], Z(s[0]), Z(s[1]), Z(s[2] * s[3]));
  return MS_OK;
}
static ms_status kt_addc_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                              float *sc, size_t ns) {
  (void)isa, (void)sc, (void)ns;
  ms_add_channel(out, in[0], in[1], Z(s[0]), Z(s[1]), Z(s[2] * s[3]));
  return MS_OK;
}

/* concat of a (C channels) and b (3C channels) */
static void kt_cat_sizes(const double *s, kt_sizes *z) {
  z->nin[0] = Z(s[0] * s[1] * s[2] * s[3]);
  z->nin[1] = 3 * z->nin[0];
  z->nout = 4 * z->nin[0];
}
static ms_status kt_cat_ref(const double *s, float *const *in, float *out) {
  ms_concat_channels_ref(out, in[0], in[1], Z(s[0]), Z(s[1]), 3 * Z(s[1]), Z(s[2] * s[3]));
  return MS_OK;
}
static ms_status kt_cat_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                             float *sc, size_t ns) {
  (void)isa, (void)sc, (void)ns;
  ms_concat_channels(out, in[0], in[1], Z(s[0]), Z(s[1]), 3 * Z(s[1]), Z(s[2] * s[3]));
  return MS_OK;
}

/* ---- timestep embedding: {N, dim}; t = 0, 1, ..., N-1 (DDPM steps) */

static size_t kt_temb_shapes(double (*s)[KT_DIM], size_t max) {
  size_t n = 0;
  ROW(1000, 32);
  ROW(17, 7);
  return n;
}
static void kt_temb_sizes(const double *s, kt_sizes *z) {
  z->nin[0] = Z(s[0]);
  z->nout = Z(s[0] * s[1]);
}
static void kt_temb_prepare(const double *s, float *const *in, const kt_sizes *z) {
  (void)s;
  for (size_t i = 0; i < z->nin[0]; i++) in[0][i] = (float)i;
}
static ms_status kt_temb_ref(const double *s, float *const *in, float *out) {
  return ms_timestep_embedding_ref(out, in[0], Z(s[0]), Z(s[1]), 10000.0f);
}
static ms_status kt_temb_fast(ms_kernel_isa isa, const double *s, float *const *in, float *out,
                              float *sc, size_t ns) {
  (void)isa, (void)sc, (void)ns;
  return ms_timestep_embedding(out, in[0], Z(s[0]), Z(s[1]), 10000.0f);
}
#undef ROW

/* name, shapes, sizes, prepare, init_out, ref, fast, per_isa, bound, rtol, atol */
static const kt_op OPS[] = {
    {"sgemm", kt_sgemm_shapes, kt_sgemm_sizes, NULL, kt_sgemm_init_out, kt_sgemm_ref,
     kt_sgemm_fast, 1, kt_sgemm_bound, 0, 0},
    {"linear", kt_linear_shapes, kt_linear_sizes, NULL, NULL, kt_linear_ref, kt_linear_fast, 0,
     kt_linear_bound, 0, 0},
    {"conv2d", kt_conv_shapes, kt_conv_sizes, NULL, NULL, kt_conv_ref, kt_conv_fast, 1,
     kt_conv_bound, 0, 0},
    {"conv2d_winograd", kt_wino_shapes, kt_wino_sizes, NULL, NULL, kt_wino_ref, kt_wino_fast, 1,
     kt_wino_bound, 0, 0},
    /* normalised values are O(1); gamma, beta in [-1, 1) */
    {"group_norm", kt_gn_shapes, kt_gn_sizes, kt_gn_prepare, NULL, kt_gn_ref, kt_gn_fast, 0, NULL,
     1e-5, 1e-5},
    {"group_norm_silu", kt_gn_shapes, kt_gn_sizes, kt_gn_prepare, NULL, kt_gns_ref, kt_gns_fast, 0,
     NULL, 1e-5, 1e-5},
    /* float expf and division: a few ulp relative, tiny absolute in the
     * underflowing left tail */
    {"silu", kt_map_shapes, kt_map_sizes, kt_map_prepare, NULL, kt_silu_ref, kt_silu_fast, 0, NULL,
     4e-7, 1e-30},
    /* erfcf deep in the tail is good to a few ulp */
    {"gelu", kt_map_shapes, kt_map_sizes, kt_map_prepare, NULL, kt_gelu_ref, kt_gelu_fast, 0, NULL,
     1e-6, 1e-30},
    /* at most 2 ulp: 2 * 2^-23 relative */
    {"exp", kt_map_shapes, kt_map_sizes, kt_map_prepare, NULL, kt_exp_ref, kt_exp_fast, 0, NULL,
     2.4e-7, 1e-37},
    /* exp(x - max) with x - max rounded in float: about |x - max| 2^-24 plus
     * a few ulp; |x - max| < 40 here */
    {"softmax", kt_softmax_shapes, kt_softmax_sizes, kt_softmax_prepare, NULL, kt_softmax_ref,
     kt_softmax_fast, 0, NULL, 8e-6, 1e-37},
    {"attention", kt_attn_shapes, kt_attn_sizes, kt_attn_prepare, NULL, kt_attn_ref, kt_attn_fast,
     1, kt_attn_bound, 0, 0},
    {"upsample_nearest2x", kt_nchw_shapes, kt_up_sizes, NULL, NULL, kt_up_ref, kt_up_fast, 0, NULL,
     0, 0},
    {"avgpool2x", kt_nchw_shapes, kt_pool_sizes, NULL, NULL, kt_pool_ref, kt_pool_fast, 0, NULL, 0,
     0},
    {"add", kt_nchw_shapes, kt_add_sizes, NULL, NULL, kt_add_ref, kt_add_fast, 0, NULL, 0, 0},
    {"add_channel", kt_nchw_shapes, kt_addc_sizes, NULL, NULL, kt_addc_ref, kt_addc_fast, 0, NULL,
     0, 0},
    {"concat_channels", kt_nchw_shapes, kt_cat_sizes, NULL, NULL, kt_cat_ref, kt_cat_fast, 0, NULL,
     0, 0},
    /* same float arguments; cos/sin within 1e-6 */
    {"timestep_embedding", kt_temb_shapes, kt_temb_sizes, kt_temb_prepare, NULL, kt_temb_ref,
     kt_temb_fast, 0, NULL, 0, 1e-6},
};

static void kt_describe(char *buf, size_t cap, const kt_op *op, const double *s, int isa) {
  int k = snprintf(buf, cap, "%s %s {", op->name,
                   isa == MS_KERNEL_ISA_COUNT ? "dispatched" : ms_kernel_isa_name((ms_kernel_isa)isa));
  int last = KT_DIM - 1;
  while (last > 0 && s[last] == 0) last--;
  for (int i = 0; i <= last && k > 0 && (size_t)k < cap; i++)
    k += snprintf(buf + k, cap - (size_t)k, i ? ", %g" : "%g", s[i]);
  if (k > 0 && (size_t)k < cap) snprintf(buf + k, cap - (size_t)k, "}");
}

/* Every element within its bound (NaN only where _ref has NaN). */
static void kt_check(const char *what, const float *got, const float *want, const double *bound,
                     size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (isnan(got[i]) || isnan(want[i])) {
      if (isnan(got[i]) != isnan(want[i])) fail_msg("%s: NaN mismatch at element %zu", what, i);
      continue;
    }
    const double d = fabs((double)got[i] - (double)want[i]);
    if (!(d <= bound[i]))
      fail_msg("%s: element %zu is %.9g, _ref %.9g (|diff| %.3g, bound %.3g)", what, i,
               (double)got[i], (double)want[i], d, bound[i]);
  }
}

/* One shape of one op: every path, every thread count. */
static void kt_run(const kt_op *op, const double *s, uint32_t seed) {
  static const int threads[] = {1, 2, 3, 8};
  kt_sizes z;
  memset(&z, 0, sizeof z);
  omp_set_num_threads(8); /* scratch sized for the most threads below */
  op->sizes(s, &z);
  float *in[KT_IN] = {0};
  for (int i = 0; i < KT_IN; i++) {
    if (!z.nin[i]) continue;
    in[i] = gbuf(z.nin[i]);
    fill(in[i], z.nin[i], seed + (uint32_t)i);
  }
  if (op->prepare) op->prepare(s, in, &z);
  const size_t n = z.nout, ns = z.nscratch ? z.nscratch : 1;
  float *ref = gbuf(n), *out = gbuf(n), *first = gbuf(n), *detected = gbuf(n), *sc = gbuf(ns);
  double *bound = malloc(n * sizeof(double));
  assert_non_null(bound);
  if (op->init_out)
    op->init_out(s, in, ref, n);
  else
    fill_nan(ref, n);
  assert_int_equal(op->ref(s, in, ref), MS_OK);
  if (op->bound) {
    op->bound(op, s, in, ref, bound, n);
  } else {
    for (size_t i = 0; i < n; i++) bound[i] = op->rtol * fabs((double)ref[i]) + op->atol;
  }
  const ms_kernel_isa det = ms_kernel_isa_detect();
  for (int isa = op->per_isa ? 0 : MS_KERNEL_ISA_COUNT; isa <= MS_KERNEL_ISA_COUNT; isa++) {
    char what[256];
    kt_describe(what, sizeof what, op, s, isa);
    if (isa < MS_KERNEL_ISA_COUNT && !ms__isa_supported((ms_kernel_isa)isa)) {
      if (op->init_out)
        op->init_out(s, in, out, n);
      else
        fill_nan(out, n);
      if (op->fast((ms_kernel_isa)isa, s, in, out, sc, ns) == MS_OK)
        fail_msg("%s: a path this CPU cannot run was not refused", what);
      continue;
    }
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
      omp_set_num_threads(threads[t]);
      if (op->init_out)
        op->init_out(s, in, out, n);
      else
        fill_nan(out, n);
      ms_status st = op->fast((ms_kernel_isa)isa, s, in, out, sc, ns);
      if (st != MS_OK) fail_msg("%s, %d threads: status %d", what, threads[t], (int)st);
      if (t == 0) {
        kt_check(what, out, ref, bound, n);
        memcpy(first, out, n * sizeof(float));
      } else if (memcmp(first, out, n * sizeof(float)) != 0) {
        fail_msg("%s: bytes differ between 1 and %d threads", what, threads[t]);
      }
    }
    if (isa == (int)det) memcpy(detected, first, n * sizeof(float));
    if (op->per_isa && isa == MS_KERNEL_ISA_COUNT && memcmp(first, detected, n * sizeof(float)))
      fail_msg("%s: bytes differ from the detected ISA's path (%s)", what, ms_kernel_isa_name(det));
  }
  for (int i = 0; i < KT_IN; i++)
    if (in[i]) gfree(in[i], z.nin[i]);
  gfree(ref, n);
  gfree(out, n);
  gfree(first, n);
  gfree(detected, n);
  gfree(sc, ns);
  free(bound);
}

static void test_kernels_ops_table(void **state) {
  (void)state;
  const int saved = omp_get_max_threads();
  enum { MAX_SHAPES = 512 };
  double(*shapes)[KT_DIM] = calloc(MAX_SHAPES, sizeof *shapes);
  assert_non_null(shapes);
  for (size_t o = 0; o < sizeof OPS / sizeof OPS[0]; o++) {
    const size_t ns = OPS[o].shapes(shapes, MAX_SHAPES);
    assert_true(ns > 0);
    for (size_t i = 0; i < ns; i++) kt_run(&OPS[o], shapes[i], (uint32_t)(1000 * o + 7 * i + 1));
  }
  free(shapes);
  omp_set_num_threads(saved);
}

/* ------------------------------------------------------------ determinism */

/* A call from inside a parallel region (nested: a team of one) gives the
 * bytes of a call from outside, on every sgemm path; with less scratch than
 * 8 threads need, conv2d and attention run on fewer threads with the same
 * bytes, and with less than one thread's share they refuse and leave the
 * output untouched. (Thread counts 1, 2, 3 and 8 for every op and shape:
 * test_kernels_ops_table.) */
static void test_kernels_nested_and_scratch_limited_calls(void **state) {
  (void)state;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(8); /* scratch queries below size for 8 threads */
  {
    const size_t M = 131, N = 263, K = 600;
    float *A = gbuf(M * K), *B = gbuf(K * N), *C = gbuf(M * N), *C0 = gbuf(M * N),
          *Cn = gbuf(M * N);
    fill(A, M * K, 1);
    fill(B, K * N, 2);
    fill(C0, M * N, 3);
    size_t ns = ms_sgemm_scratch_floats(M, N, K);
    float *sc = gbuf(ns);
    for (int isa = 0; isa < MS_KERNEL_ISA_COUNT; isa++) {
      if (!ms__isa_supported((ms_kernel_isa)isa)) continue;
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
    }
    gfree(A, M * K);
    gfree(B, K * N);
    gfree(C, M * N);
    gfree(C0, M * N);
    gfree(Cn, M * N);
    gfree(sc, ns);
  }
  for (size_t st = 1; st <= 2; st++) {
    ms_conv2d_params q = {3, 48, 21, 27, 40, 3, 3, st, st, 1, 1};
    size_t qHo, qWo;
    assert_int_equal(ms_conv2d_out_hw(&q, &qHo, &qWo), MS_OK);
    const size_t qx = 3 * 48 * 21 * 27, qw = 40 * 48 * 9, qy = 3 * 40 * qHo * qWo;
    float *xq = gbuf(qx), *wq = gbuf(qw), *b = gbuf(40), *yq = gbuf(qy), *yl = gbuf(qy);
    fill(xq, qx, 11);
    fill(wq, qw, 12);
    fill(b, 40, 13);
    omp_set_num_threads(8);
    size_t nq = ms_conv2d_scratch_floats(&q);
    float *sq = gbuf(nq);
    assert_int_equal(ms_conv2d(yq, xq, wq, b, &q, sq, nq), MS_OK);
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
    gfree(b, 40);
    gfree(yq, qy);
    gfree(yl, qy);
    gfree(sq, nq);
  }
  {
    const size_t N = 2, heads = 3, d = 16, T = 150, n = N * heads * d * T;
    float *q = gbuf(n), *k = gbuf(n), *v = gbuf(n), *o = gbuf(n), *o2 = gbuf(n);
    fill(q, n, 7);
    fill(k, n, 8);
    fill(v, n, 9);
    omp_set_num_threads(8);
    size_t ns = ms_attention_scratch_floats(d, 8);
    float *sc = gbuf(ns);
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
      cmocka_unit_test(test_kernels_conv2d_known_values),
      cmocka_unit_test(test_kernels_conv2d_rejects_bad_arguments),
      cmocka_unit_test(test_kernels_conv2d_same_bytes_as_im2col_gemm),
      cmocka_unit_test(test_kernels_conv2d_batch_invariant),
      cmocka_unit_test(test_kernels_conv2d_unpacked_path_same_bytes_as_packed),
      cmocka_unit_test(test_kernels_conv2d_winograd_same_bytes_any_threads_and_batch),
      cmocka_unit_test(test_kernels_linear_known_values),
      cmocka_unit_test(test_kernels_group_norm_known_values),
      cmocka_unit_test(test_kernels_group_norm_in_place),
      cmocka_unit_test(test_kernels_activations_known_values),
      cmocka_unit_test(test_kernels_exp_accuracy_and_position),
      cmocka_unit_test(test_kernels_exp_users_propagate_nan),
      cmocka_unit_test(test_kernels_softmax_known_values_and_row_sums),
      cmocka_unit_test(test_kernels_attention_known_values),
      cmocka_unit_test(test_kernels_resample_add_concat),
      cmocka_unit_test(test_kernels_timestep_embedding_known_values),
      cmocka_unit_test(test_kernels_ops_table),
      cmocka_unit_test(test_kernels_nested_and_scratch_limited_calls),
      cmocka_unit_test(test_kernels_enum_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
