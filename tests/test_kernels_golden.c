/* Parity of the compute kernels with PyTorch: reads the inputs and PyTorch
 * float32 outputs written by models/reference/kernels_golden.py into
 * tests/golden/kernels/kernels.h5 and runs every case through both the _ref
 * and the fast variant.
 * ctest-labels: golden
 *
 * Tolerances (also in docs/kernels.md), |ours - torch| <= bound:
 *   sgemm, linear, conv2d  2^-22 * (K + 2) * (|alpha| sum_k |a||b| + |beta c| + |bias|)
 *                          (both sides carry float summation error <= K 2^-24 * S)
 *   group_norm(+silu)      1e-5 * |torch| + 2e-5
 *   silu                   1e-6 * |torch| + 1e-12
 *   gelu                   1e-6 * |torch| + 2^-23 * |x|  (PyTorch evaluates
 *                          0.5x(1 + erf(x/sqrt2)) in float: for x < 0 the
 *                          1 + erf cancels, an absolute error of about
 *                          0.5|x| ulp(1); below x ~ -5.9 it returns 0.
 *                          Ours uses erfc and is accurate there.)
 *   softmax                1e-5 * |torch| + 1e-7
 *   attention              2e-5 absolute (outputs are convex combinations
 *                          of values in [-1, 1))
 *   avgpool2x              2^-22 * |torch| (PyTorch sums the four in another
 *                          order: at most a couple of ulp apart)
 *   timestep_embedding     2e-6 + 2^-21 * |t|  (PyTorch's exp and its
 *                          division by `half` may round freq one ulp
 *                          differently; t * freq then moves by up to a few
 *                          ulp of t, and cos/sin with it: ~5e-4 at t = 999.
 *                          float32 embeddings of large t are no more
 *                          accurate than that on either side.)
 *   upsample, add, add_channel, concat: bit-identical.
 * Each failing comparison reports the case, the variant and the worst
 * element. Every op must appear in the file at least once. */
#include <hdf5.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "medsynth/kernels.h"

#define GOLDEN_PATH MS_SOURCE_DIR "/tests/golden/kernels/kernels.h5"

typedef struct {
  hid_t g;
  const char *name;
} gcase;

static int64_t attr_i(const gcase *c, const char *name) {
  int64_t v = 0;
  hid_t a = H5Aopen(c->g, name, H5P_DEFAULT);
  if (a < 0) fail_msg("%s: missing attribute %s", c->name, name);
  assert_true(H5Aread(a, H5T_NATIVE_INT64, &v) >= 0);
  H5Aclose(a);
  return v;
}

static double attr_d(const gcase *c, const char *name) {
  double v = 0;
  hid_t a = H5Aopen(c->g, name, H5P_DEFAULT);
  if (a < 0) fail_msg("%s: missing attribute %s", c->name, name);
  assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
  H5Aclose(a);
  return v;
}

/* Reads dataset `name` of exactly n floats (any rank). Caller frees. */
static float *read_ds(const gcase *c, const char *name, size_t n) {
  hid_t d = H5Dopen2(c->g, name, H5P_DEFAULT);
  if (d < 0) fail_msg("%s: missing dataset %s", c->name, name);
  hid_t sp = H5Dget_space(d);
  hssize_t cnt = H5Sget_simple_extent_npoints(sp);
  if (cnt < 0 || (size_t)cnt != n)
    fail_msg("%s/%s: %lld elements, expected %zu", c->name, name, (long long)cnt, n);
  float *buf = malloc((n ? n : 1) * sizeof(float));
  assert_non_null(buf);
  assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  H5Sclose(sp);
  H5Dclose(d);
  return buf;
}

static float *zalloc(size_t n) {
  float *p = calloc(n ? n : 1, sizeof(float));
  assert_non_null(p);
  return p;
}

/* |got - want| <= rtol*|want| + atol + bf*bound[i]; reports the worst. */
static void compare(const gcase *c, const char *variant, const float *got, const float *want,
                    size_t n, double rtol, double atol, const float *bound, double bf) {
  double worst = 0, worst_d = 0;
  size_t wi = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - (double)want[i]);
    double tol = rtol * fabs((double)want[i]) + atol + (bound ? bf * (double)bound[i] : 0.0);
    double r = d == 0 ? 0 : (tol > 0 ? d / tol : INFINITY);
    if (isnan(got[i]) || isnan(want[i])) r = INFINITY;
    if (r > worst) {
      worst = r;
      worst_d = d;
      wi = i;
    }
  }
  if (worst > 1.0)
    fail_msg("%s (%s): worst element %zu: got %.9g, torch %.9g, |diff| %.3g = %.2fx tolerance",
             c->name, variant, wi, (double)got[wi], (double)want[wi], worst_d, worst);
}

static void exact(const gcase *c, const char *variant, const float *got, const float *want,
                  size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(got + i, want + i, sizeof(float)) != 0)
      fail_msg("%s (%s): element %zu: got %.9g, torch %.9g (must be identical)", c->name,
               variant, i, (double)got[i], (double)want[i]);
}

static void absv(float *dst, const float *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = fabsf(src[i]);
}

static double gemm_bf(size_t K) { return ldexp(1.0, -22) * (double)(K + 2); }

/* ------------------------------------------------------------ per op */

static void run_sgemm(const gcase *c) {
  size_t M = (size_t)attr_i(c, "M"), N = (size_t)attr_i(c, "N"), K = (size_t)attr_i(c, "K");
  ms_trans ta = attr_i(c, "ta") ? MS_TRANS_YES : MS_TRANS_NO;
  ms_trans tb = attr_i(c, "tb") ? MS_TRANS_YES : MS_TRANS_NO;
  float alpha = (float)attr_d(c, "alpha"), beta = (float)attr_d(c, "beta");
  float *A = read_ds(c, "A", M * K), *B = read_ds(c, "B", K * N), *C0 = read_ds(c, "C0", M * N);
  float *want = read_ds(c, "out", M * N);
  size_t lda = ta ? M : K, ldb = tb ? K : N;
  float *C = zalloc(M * N), *S = zalloc(M * N), *Aa = zalloc(M * K), *Ba = zalloc(K * N);
  absv(Aa, A, M * K);
  absv(Ba, B, K * N);
  for (size_t i = 0; i < M * N; i++) S[i] = fabsf(beta * C0[i]);
  assert_int_equal(ms_sgemm_ref(S, N, Aa, lda, Ba, ldb, ta, tb, M, N, K, fabsf(alpha), 1.0f), MS_OK);
  memcpy(C, C0, M * N * sizeof(float));
  assert_int_equal(ms_sgemm_ref(C, N, A, lda, B, ldb, ta, tb, M, N, K, alpha, beta), MS_OK);
  compare(c, "ref", C, want, M * N, 0, 0, S, gemm_bf(K));
  size_t ns = ms_sgemm_scratch_floats(M, N, K);
  float *sc = zalloc(ns);
  memcpy(C, C0, M * N * sizeof(float));
  assert_int_equal(ms_sgemm(C, N, A, lda, B, ldb, ta, tb, M, N, K, alpha, beta, sc, ns), MS_OK);
  compare(c, "fast", C, want, M * N, 0, 0, S, gemm_bf(K));
  free(A), free(B), free(C0), free(want), free(C), free(S), free(Aa), free(Ba), free(sc);
}

static void run_conv2d(const gcase *c) {
  ms_conv2d_params p = {0};
  p.N = (size_t)attr_i(c, "N");
  p.C = (size_t)attr_i(c, "C");
  p.H = (size_t)attr_i(c, "H");
  p.W = (size_t)attr_i(c, "W");
  p.C_out = (size_t)attr_i(c, "C_out");
  p.kh = (size_t)attr_i(c, "kh");
  p.kw = (size_t)attr_i(c, "kw");
  p.stride_h = p.stride_w = (size_t)attr_i(c, "stride");
  p.pad_h = p.pad_w = (size_t)attr_i(c, "pad");
  int bias = (int)attr_i(c, "bias");
  size_t Ho, Wo;
  assert_int_equal(ms_conv2d_out_hw(&p, &Ho, &Wo), MS_OK);
  size_t nx = p.N * p.C * p.H * p.W, nw = p.C_out * p.C * p.kh * p.kw;
  size_t ny = p.N * p.C_out * Ho * Wo, K = p.C * p.kh * p.kw;
  float *x = read_ds(c, "x", nx), *w = read_ds(c, "w", nw), *b = read_ds(c, "b", p.C_out);
  float *want = read_ds(c, "out", ny);
  float *y = zalloc(ny), *S = zalloc(ny), *xa = zalloc(nx), *wa = zalloc(nw), *ba = zalloc(p.C_out);
  absv(xa, x, nx);
  absv(wa, w, nw);
  absv(ba, b, p.C_out);
  assert_int_equal(ms_conv2d_ref(S, xa, wa, bias ? ba : NULL, &p), MS_OK);
  assert_int_equal(ms_conv2d_ref(y, x, w, bias ? b : NULL, &p), MS_OK);
  compare(c, "ref", y, want, ny, 0, 0, S, gemm_bf(K));
  size_t ns = ms_conv2d_scratch_floats(&p);
  float *sc = zalloc(ns);
  assert_int_equal(ms_conv2d(y, x, w, bias ? b : NULL, &p, sc, ns), MS_OK);
  compare(c, "fast", y, want, ny, 0, 0, S, gemm_bf(K));
  free(x), free(w), free(b), free(want), free(y), free(S), free(xa), free(wa), free(ba), free(sc);
}

static void run_linear(const gcase *c) {
  size_t M = (size_t)attr_i(c, "M"), in = (size_t)attr_i(c, "in"), out = (size_t)attr_i(c, "out");
  float *x = read_ds(c, "x", M * in), *w = read_ds(c, "w", out * in), *b = read_ds(c, "b", out);
  float *want = read_ds(c, "out", M * out);
  float *y = zalloc(M * out), *S = zalloc(M * out), *xa = zalloc(M * in), *wa = zalloc(out * in),
        *ba = zalloc(out);
  absv(xa, x, M * in);
  absv(wa, w, out * in);
  absv(ba, b, out);
  assert_int_equal(ms_linear_ref(S, xa, wa, ba, M, in, out), MS_OK);
  assert_int_equal(ms_linear_ref(y, x, w, b, M, in, out), MS_OK);
  compare(c, "ref", y, want, M * out, 0, 0, S, gemm_bf(in + 1));
  size_t ns = ms_linear_scratch_floats(M, in, out);
  float *sc = zalloc(ns);
  assert_int_equal(ms_linear(y, x, w, b, M, in, out, sc, ns), MS_OK);
  compare(c, "fast", y, want, M * out, 0, 0, S, gemm_bf(in + 1));
  free(x), free(w), free(b), free(want), free(y), free(S), free(xa), free(wa), free(ba), free(sc);
}

static void run_group_norm(const gcase *c, int silu) {
  size_t N = (size_t)attr_i(c, "N"), C = (size_t)attr_i(c, "C"), HW = (size_t)attr_i(c, "HW");
  size_t G = (size_t)attr_i(c, "G");
  float eps = (float)attr_d(c, "eps");
  size_t n = N * C * HW;
  float *x = read_ds(c, "x", n), *g = read_ds(c, "gamma", C), *b = read_ds(c, "beta", C);
  float *want = read_ds(c, "out", n), *y = zalloc(n);
  assert_int_equal((silu ? ms_group_norm_silu_ref : ms_group_norm_ref)(y, x, g, b, N, C, HW, G, eps),
                   MS_OK);
  compare(c, "ref", y, want, n, 1e-5, 2e-5, NULL, 0);
  assert_int_equal((silu ? ms_group_norm_silu : ms_group_norm)(y, x, g, b, N, C, HW, G, eps), MS_OK);
  compare(c, "fast", y, want, n, 1e-5, 2e-5, NULL, 0);
  free(x), free(g), free(b), free(want), free(y);
}

static void run_unary(const gcase *c, void (*ref)(float *, const float *, size_t),
                      void (*fast)(float *, const float *, size_t), double rtol, double atol,
                      double x_factor) {
  size_t n = (size_t)attr_i(c, "n");
  float *x = read_ds(c, "x", n), *want = read_ds(c, "out", n), *y = zalloc(n), *xa = zalloc(n);
  absv(xa, x, n);
  ref(y, x, n);
  compare(c, "ref", y, want, n, rtol, atol, xa, x_factor);
  fast(y, x, n);
  compare(c, "fast", y, want, n, rtol, atol, xa, x_factor);
  free(x), free(want), free(y), free(xa);
}

static void run_softmax(const gcase *c) {
  size_t rows = (size_t)attr_i(c, "rows"), cols = (size_t)attr_i(c, "cols"), n = rows * cols;
  float *x = read_ds(c, "x", n), *want = read_ds(c, "out", n), *y = zalloc(n);
  ms_softmax_rows_ref(y, x, rows, cols);
  compare(c, "ref", y, want, n, 1e-5, 1e-7, NULL, 0);
  ms_softmax_rows(y, x, rows, cols);
  compare(c, "fast", y, want, n, 1e-5, 1e-7, NULL, 0);
  free(x), free(want), free(y);
}

static void run_attention(const gcase *c) {
  size_t N = (size_t)attr_i(c, "N"), heads = (size_t)attr_i(c, "heads");
  size_t d = (size_t)attr_i(c, "head_dim"), Tq = (size_t)attr_i(c, "Tq"), Tk = (size_t)attr_i(c, "Tk");
  ms_attn_layout layout = attr_i(c, "layout") ? MS_ATTN_NTC : MS_ATTN_NCT;
  size_t nq = N * heads * d * Tq, nk = N * heads * d * Tk;
  float *q = read_ds(c, "q", nq), *k = read_ds(c, "k", nk), *v = read_ds(c, "v", nk);
  float *want = read_ds(c, "out", nq), *o = zalloc(nq);
  assert_int_equal(ms_attention_ref(o, q, k, v, N, heads, d, Tq, Tk, layout), MS_OK);
  compare(c, "ref", o, want, nq, 0, 2e-5, NULL, 0);
  size_t ns = ms_attention_scratch_floats(d, 0);
  float *sc = zalloc(ns);
  assert_int_equal(ms_attention(o, q, k, v, N, heads, d, Tq, Tk, layout, sc, ns), MS_OK);
  compare(c, "fast", o, want, nq, 0, 2e-5, NULL, 0);
  free(q), free(k), free(v), free(want), free(o), free(sc);
}

static void run_resample(const gcase *c, int up) {
  size_t N = (size_t)attr_i(c, "N"), C = (size_t)attr_i(c, "C"), H = (size_t)attr_i(c, "H"),
         W = (size_t)attr_i(c, "W");
  size_t n = N * C * H * W, no = up ? 4 * n : N * C * (H / 2) * (W / 2);
  float *x = read_ds(c, "x", n), *want = read_ds(c, "out", no), *y = zalloc(no);
  if (up) {
    ms_upsample_nearest2x_ref(y, x, N, C, H, W);
    exact(c, "ref", y, want, no);
    ms_upsample_nearest2x(y, x, N, C, H, W);
    exact(c, "fast", y, want, no);
  } else {
    ms_avgpool2x_ref(y, x, N, C, H, W);
    compare(c, "ref", y, want, no, ldexp(1.0, -22), 0, NULL, 0);
    ms_avgpool2x(y, x, N, C, H, W);
    compare(c, "fast", y, want, no, ldexp(1.0, -22), 0, NULL, 0);
  }
  free(x), free(want), free(y);
}

static void run_small(const gcase *c, const char *op) {
  if (strcmp(op, "add") == 0) {
    size_t n = (size_t)attr_i(c, "n");
    float *a = read_ds(c, "a", n), *b = read_ds(c, "b", n), *want = read_ds(c, "out", n);
    float *y = zalloc(n);
    ms_add_ref(y, a, b, n);
    exact(c, "ref", y, want, n);
    ms_add(y, a, b, n);
    exact(c, "fast", y, want, n);
    free(a), free(b), free(want), free(y);
  } else if (strcmp(op, "add_channel") == 0) {
    size_t N = (size_t)attr_i(c, "N"), C = (size_t)attr_i(c, "C"), HW = (size_t)attr_i(c, "HW");
    float *x = read_ds(c, "x", N * C * HW), *b = read_ds(c, "b", N * C);
    float *want = read_ds(c, "out", N * C * HW), *y = zalloc(N * C * HW);
    ms_add_channel_ref(y, x, b, N, C, HW);
    exact(c, "ref", y, want, N * C * HW);
    ms_add_channel(y, x, b, N, C, HW);
    exact(c, "fast", y, want, N * C * HW);
    free(x), free(b), free(want), free(y);
  } else {
    size_t N = (size_t)attr_i(c, "N"), Ca = (size_t)attr_i(c, "Ca"), Cb = (size_t)attr_i(c, "Cb"),
           HW = (size_t)attr_i(c, "HW");
    size_t n = N * (Ca + Cb) * HW;
    float *a = read_ds(c, "a", N * Ca * HW), *b = read_ds(c, "b", N * Cb * HW);
    float *want = read_ds(c, "out", n), *y = zalloc(n);
    ms_concat_channels_ref(y, a, b, N, Ca, Cb, HW);
    exact(c, "ref", y, want, n);
    ms_concat_channels(y, a, b, N, Ca, Cb, HW);
    exact(c, "fast", y, want, n);
    free(a), free(b), free(want), free(y);
  }
}

static void run_timestep(const gcase *c) {
  size_t N = (size_t)attr_i(c, "N"), dim = (size_t)attr_i(c, "dim");
  float mp = (float)attr_d(c, "max_period");
  float *t = read_ds(c, "t", N), *want = read_ds(c, "out", N * dim), *y = zalloc(N * dim);
  float *tb = zalloc(N * dim);
  for (size_t i = 0; i < N * dim; i++) tb[i] = fabsf(t[i / dim]);
  assert_int_equal(ms_timestep_embedding_ref(y, t, N, dim, mp), MS_OK);
  compare(c, "ref", y, want, N * dim, 0, 2e-6, tb, ldexp(1.0, -21));
  assert_int_equal(ms_timestep_embedding(y, t, N, dim, mp), MS_OK);
  compare(c, "fast", y, want, N * dim, 0, 2e-6, tb, ldexp(1.0, -21));
  free(t), free(want), free(y), free(tb);
}

/* ------------------------------------------------------------ driver */

static const char *const OPS[] = {"sgemm",     "conv2d",      "linear",
                                  "group_norm", "group_norm_silu", "silu",
                                  "gelu",      "softmax",     "attention",
                                  "upsample_nearest2x", "avgpool2x", "add",
                                  "add_channel", "concat_channels", "timestep_embedding"};
#define N_OPS (sizeof OPS / sizeof OPS[0])

typedef struct {
  char names[128][64];
  size_t count;
} name_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *data) {
  (void)g;
  (void)info;
  name_list *l = data;
  if (l->count < 128 && strlen(name) < 64) strcpy(l->names[l->count++], name);
  return 0;
}

static void test_kernels_golden_match_pytorch(void **state) {
  (void)state;
  hid_t f = H5Fopen(GOLDEN_PATH, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) fail_msg("cannot open %s", GOLDEN_PATH);
  name_list l = {.count = 0};
  assert_true(H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, &l) >= 0);
  size_t seen[N_OPS] = {0};
  for (size_t i = 0; i < l.count; i++) {
    gcase c = {H5Gopen2(f, l.names[i], H5P_DEFAULT), l.names[i]};
    assert_true(c.g >= 0);
    hid_t a = H5Aopen(c.g, "op", H5P_DEFAULT);
    if (a < 0) fail_msg("%s: no op attribute", c.name);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8); /* h5py writes UTF-8 strings */
    char *op = NULL;
    assert_true(H5Aread(a, st, &op) >= 0);
    size_t k = 0;
    while (k < N_OPS && strcmp(op, OPS[k]) != 0) k++;
    if (k < N_OPS) seen[k]++;
    switch (k) {
      case 0: run_sgemm(&c); break;
      case 1: run_conv2d(&c); break;
      case 2: run_linear(&c); break;
      case 3: run_group_norm(&c, 0); break;
      case 4: run_group_norm(&c, 1); break;
      case 5: run_unary(&c, ms_silu_ref, ms_silu, 1e-6, 1e-12, 0.0); break;
      case 6: run_unary(&c, ms_gelu_ref, ms_gelu, 1e-6, 0.0, ldexp(1.0, -23)); break;
      case 7: run_softmax(&c); break;
      case 8: run_attention(&c); break;
      case 9: run_resample(&c, 1); break;
      case 10: run_resample(&c, 0); break;
      case 11: case 12: case 13: run_small(&c, op); break;
      case 14: run_timestep(&c); break;
      default: fail_msg("%s: unknown op %s", c.name, op);
    }
    H5free_memory(op);
    H5Tclose(st);
    H5Aclose(a);
    H5Gclose(c.g);
  }
  H5Fclose(f);
  for (size_t k = 0; k < N_OPS; k++)
    if (!seen[k]) fail_msg("golden file has no case for op %s", OPS[k]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kernels_golden_match_pytorch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
