/* Tests of the post-processing of DP releases for small budgets: the smooth
 * shape fitted to a noisy numeric histogram (gen/fit/dp_shape.c) and the
 * spectral estimate of the copula's correlations (gen/fit/dp_corr.c);
 * docs/privacy.md, "Numeric column" and "Correlations".
 * ctest-labels: unit
 *
 * Covers: exact counts of a lognormal give back its quantiles; two separate
 * peaks are refused (the histogram is kept); under noise of the size fit
 * --epsilon 1 gives a 400-row table, the fitted quantiles stay within a
 * tolerance from the noise of their median; a one-factor correlation matrix
 * buried in the noise of a 31-column release is found, and noise alone
 * passes for a component in few of 200 draws (about 1 % expected). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <gsl/gsl_cdf.h>

#include "fit/fit_internal.h"
#include "medsynth/rng.h"

#define NB 8
#define NQ MS__DP_SMOOTH_KNOTS

/* Eight bins over [10, 100) with edges equal on the log scale, and the
 * expected counts of n lognormal(log 30, 0.4) values truncated to them. */
static void lognormal_bins(double *lo, double *hi, double *cnt, double n) {
  double a = log(10), b = log(100), mu = log(30), s = 0.4;
  double z = gsl_cdf_ugaussian_P((b - mu) / s) - gsl_cdf_ugaussian_P((a - mu) / s);
  for (int i = 0; i < NB; i++) {
    double l0 = a + (b - a) * i / NB, l1 = a + (b - a) * (i + 1) / NB;
    lo[i] = exp(l0), hi[i] = exp(l1);
    cnt[i] = n * (gsl_cdf_ugaussian_P((l1 - mu) / s) - gsl_cdf_ugaussian_P((l0 - mu) / s)) / z;
  }
  hi[NB - 1] = 100, lo[0] = 10;
}

/* The value of a piecewise-linear quantile table at probability u. */
static double table_at(const double *qp, const double *qv, double u) {
  for (int j = 1; j < NQ; j++)
    if (qp[j] >= u) return qv[j - 1] + (qv[j] - qv[j - 1]) * (u - qp[j - 1]) / (qp[j] - qp[j - 1]);
  return qv[NQ - 1];
}

static void test_shape_exact_lognormal(void **state) {
  (void)state;
  double lo[NB], hi[NB], cnt[NB], qp[NQ], qv[NQ];
  lognormal_bins(lo, hi, cnt, 400);
  /* and the exact counts of two spans of four bins each */
  int span[NB] = {0, 0, 0, 0, 1, 1, 1, 1};
  double g[2] = {cnt[0] + cnt[1] + cnt[2] + cnt[3], cnt[4] + cnt[5] + cnt[6] + cnt[7]};
  assert_int_equal(ms__dp_smooth_shape(lo, hi, cnt, NB, 1, span, g, 2, 1, 0, qp, qv, NQ), 1);
  assert_true(qp[0] == 0 && qp[NQ - 1] == 1);
  for (int j = 1; j < NQ; j++) assert_true(qp[j] > qp[j - 1] && qv[j] >= qv[j - 1]);
  /* the family holds the truth: quantiles to the grid search's precision
   * (and the linear interpolation between knots 1/40 apart) */
  double z = gsl_cdf_ugaussian_P((log(100) - log(30)) / 0.4) - gsl_cdf_ugaussian_P((log(10) - log(30)) / 0.4);
  double f0 = gsl_cdf_ugaussian_P((log(10) - log(30)) / 0.4);
  /* the end knots are the law's quantiles half a row (of 400) from either
   * end, inside the range, not the range's edges */
  double te = 0.5 / 400;
  double t0 = exp(log(30) + 0.4 * gsl_cdf_ugaussian_Pinv(f0 + te * z));
  double t1 = exp(log(30) + 0.4 * gsl_cdf_ugaussian_Pinv(f0 + (1 - te) * z));
  assert_true(qv[0] > 10 && qv[NQ - 1] < 100);
  assert_true(fabs(qv[0] / t0 - 1) < 0.01 && fabs(qv[NQ - 1] / t1 - 1) < 0.01);
  for (double u = 0.1; u < 0.95; u += 0.2) {
    double truth = exp(log(30) + 0.4 * gsl_cdf_ugaussian_Pinv(f0 + u * z));
    assert_true(fabs(table_at(qp, qv, u) / truth - 1) < 0.01);
  }
}

static void test_shape_refuses_two_peaks(void **state) {
  (void)state;
  double lo[NB], hi[NB], cnt[NB] = {150, 50, 0, 0, 0, 0, 50, 150}, qp[NQ] = {0}, qv[NQ] = {0};
  for (int i = 0; i < NB; i++) lo[i] = i, hi[i] = i + 1;
  /* residuals far above what noise of sd 5 explains */
  assert_int_equal(ms__dp_smooth_shape(lo, hi, cnt, NB, 5, NULL, NULL, 0, 0, 0, qp, qv, NQ), 0);
  assert_true(qv[5] == 0 && qp[5] == 0);
  /* with noise of sd 100 the same counts cannot be told from one hump */
  assert_int_equal(ms__dp_smooth_shape(lo, hi, cnt, NB, 100, NULL, NULL, 0, 0, 0, qp, qv, NQ), 1);
}

/* Noise of sd 47 (fit --epsilon 1 on a 31-column table) on 400 rows: over
 * 100 draws the fitted median's error is of the noise's size, not of the
 * range's (the median of the truncated truth is 30.1; the range 10..100). */
static void test_shape_under_noise(void **state) {
  (void)state;
  double lo[NB], hi[NB], cnt[NB], nc[NB], qp[NQ], qv[NQ], sigma = 47;
  lognormal_bins(lo, hi, cnt, 400);
  ms_rng_key k = ms_rng_key_make(11, ms_rng_stream("test/dp_shape"));
  double err = 0;
  int acc = 0;
  for (int r = 0; r < 100; r++) {
    for (int i = 0; i < NB; i++) nc[i] = cnt[i] + sigma * ms_rng_normal(k, (uint64_t)r, (uint32_t)i);
    if (!ms__dp_smooth_shape(lo, hi, nc, NB, sigma, NULL, NULL, 0, 0, 0, qp, qv, NQ)) continue;
    acc++;
    err += fabs(log(table_at(qp, qv, 0.5) / 30.1));
  }
  /* the chi^2 test at 99.9 % refuses about 0.1 % of draws from the family */
  assert_true(acc >= 95);
  /* a log error of 0.2 is a median off by a fifth; a point (the old
   * histogram's failure) anywhere in 10..100 would average about 0.6 */
  assert_true(err / acc < 0.2);
}

/* d = 31 columns, 400 rows (the diagonal: 400 present values each), sigma
 * 280 (fit --epsilon 1 on breast_cancer):
 * sixteen columns share one factor (correlation 0.81), the rest are
 * independent. */
static void noisy_sums(double *S, size_t d, int factor, double sigma, ms_rng_key k, uint64_t draw) {
  for (size_t a = 0; a < d; a++)
    for (size_t b = a; b < d; b++) {
      double r = a == b ? 1 : factor && a < 16 && b < 16 ? 0.81 : 0;
      S[a * d + b] = 400 * r + (a == b ? 0 : sigma * ms_rng_normal(k, draw, (uint32_t)(a * d + b)));
      if (b > a) S[b * d + a] = 0;
    }
}

static void test_corr_finds_factor(void **state) {
  (void)state;
  size_t d = 31, kept = 0;
  double *S = malloc(d * d * sizeof *S), shrink = 0;
  assert_non_null(S);
  ms_rng_key k = ms_rng_key_make(3, ms_rng_stream("test/dp_corr"));
  noisy_sums(S, d, 1, 280, k, 0);
  assert_int_equal(ms__dp_corr_estimate(S, d, 280, &shrink, &kept), MS_OK);
  assert_true(kept >= 1);
  assert_true(shrink > 0 && shrink <= 1);
  double in = 0, out = 0, err = 0, err0 = 0;
  size_t nin = 0, nout = 0;
  for (size_t a = 0; a < d; a++) {
    assert_true(S[a * d + a] == 1);
    for (size_t b = a + 1; b < d; b++) {
      assert_true(S[a * d + b] == S[b * d + a] && fabs(S[a * d + b]) <= 1);
      double r = a < 16 && b < 16 ? 0.81 : 0;
      err += (S[a * d + b] - r) * (S[a * d + b] - r), err0 += r * r;
      if (r > 0) in += S[a * d + b], nin++;
      else out += fabs(S[a * d + b]), nout++;
    }
  }
  /* entry noise is 280 / 400: the factor comes back as a clear positive
   * block (true 0.81), the rest stays small, and the matrix is much closer
   * to the truth than the identity (all the James-Stein shrinkage gives at
   * this noise); over seven seeds of the noise the block's mean ranged
   * 0.49-0.65, the rest 0.08-0.10, the error 0.38-0.50 of the identity's */
  assert_true(in / (double)nin > 0.4);
  assert_true(out / (double)nout < 0.15);
  assert_true(err < 0.6 * err0);
  free(S);
}

static void test_corr_noise_alone(void **state) {
  (void)state;
  size_t d = 31, kept = 0, false_pos = 0;
  double *S = malloc(d * d * sizeof *S), shrink = 0;
  assert_non_null(S);
  ms_rng_key k = ms_rng_key_make(5, ms_rng_stream("test/dp_corr"));
  for (uint64_t r = 0; r < 200; r++) {
    noisy_sums(S, d, 0, 280, k, r);
    assert_int_equal(ms__dp_corr_estimate(S, d, 280, &shrink, &kept), MS_OK);
    false_pos += kept > 0;
  }
  /* about 1 % expected (2 of 200); 10 or more has probability below 1e-4 */
  assert_true(false_pos < 10);
  free(S);
}

/* Clipping's bias, removed. 200,000 rows of 10 normal scores with a block
 * of four at 0.8 and a pair at -0.6, each row clipped to squared norm d / 2
 * (as the DP copula does): the sums divided by the first-order factor leave
 * the block near 0.62 (short by 0.18), and the fixed point brings every
 * entry within 0.04 of the truth (its Monte Carlo error is about 0.015, the
 * sampling error of the sums 0.003); independent pairs stay near 0. */
static void test_corr_unclip(void **state) {
  (void)state;
  const size_t d = 10, n = 200000;
  double R[100], S[100] = {0}, z[10], g[10];
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) R[a * d + b] = a == b ? 1 : a < 4 && b < 4 ? 0.8 : 0;
  R[5 * d + 6] = R[6 * d + 5] = -0.6;
  /* Cholesky factor of R by hand (lower) */
  double L[100] = {0};
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b <= a; b++) {
      double v = R[a * d + b];
      for (size_t c = 0; c < b; c++) v -= L[a * d + c] * L[b * d + c];
      L[a * d + b] = a == b ? sqrt(v) : v / L[b * d + b];
    }
  const double C2 = MS__CORR_CLIP_SHARE * (double)d, cfac = ms__dp_corr_clip_factor(d, C2);
  ms_rng_key k = ms_rng_key_make(11, ms_rng_stream("test/unclip"));
  for (size_t r = 0; r < n; r++) {
    double nn = 0;
    for (size_t a = 0; a < d; a++) g[a] = ms_rng_normal(k, r, a);
    for (size_t a = 0; a < d; a++) {
      z[a] = 0;
      for (size_t b = 0; b <= a; b++) z[a] += L[a * d + b] * g[b];
      nn += z[a] * z[a];
    }
    double w = nn > C2 ? C2 / nn : 1;
    for (size_t a = 0; a < d; a++)
      for (size_t b = a + 1; b < d; b++) S[a * d + b] += z[a] * z[b] * w;
  }
  double first = 0;
  for (size_t a = 0; a < d; a++) {
    S[a * d + a] = 1;
    for (size_t b = a + 1; b < d; b++) S[a * d + b] = S[b * d + a] = S[a * d + b] / (double)n / cfac;
  }
  first = S[0 * d + 1];
  assert_true(first < 0.7);
  assert_int_equal(ms__dp_corr_unclip(S, d, C2, 1), MS_OK);
  double worst = 0;
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) worst = fmax(worst, fabs(S[a * d + b] - R[a * d + b]));
  assert_true(worst < 0.04);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shape_exact_lognormal),  cmocka_unit_test(test_shape_refuses_two_peaks),
      cmocka_unit_test(test_shape_under_noise),      cmocka_unit_test(test_corr_finds_factor),
      cmocka_unit_test(test_corr_noise_alone),      cmocka_unit_test(test_corr_unclip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
