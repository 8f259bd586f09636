/* Standard normal quantile and CDF of records/dist.h (ms__normal_quantile,
 * ms__normal_cdf) against GSL's gsl_cdf_ugaussian_Pinv / gsl_cdf_ugaussian_P:
 * the generator's values depend on these bits, so they must be equal bit for
 * bit (not just close) over the whole domain: a dense grid, a million
 * pseudo-random inputs, the borders of the inline regions and the values
 * just around them, and the special inputs (0, 1, subnormals, infinities,
 * NaN). Likewise a quantile table's value through its guide
 * (ms__dist_quantile_guide) against the bisection without it.
 *
 * ctest-labels: unit
 */
#include <float.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "records/dist.h"

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s;
}

/* Bits equal (NaN compares by its bits too: both sides return GSL's). */
static int same(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static void check_quantile(double u, int *bad) {
  double got = ms__normal_quantile(u), want = gsl_cdf_ugaussian_Pinv(u);
  if (!same(got, want) && (*bad)++ < 5)
    print_error("quantile(%.17g) = %.17g, GSL %.17g\n", u, got, want);
}

static void check_cdf(double z, int *bad) {
  double got = ms__normal_cdf(z), want = gsl_cdf_ugaussian_P(z);
  if (!same(got, want) && (*bad)++ < 5)
    print_error("cdf(%.17g) = %.17g, GSL %.17g\n", z, got, want);
}

/* x and the 64 doubles on either side of it. */
static void around(double x, void (*check)(double, int *), int *bad) {
  double lo = x, hi = x;
  check(x, bad);
  for (int i = 0; i < 64; i++) {
    lo = nextafter(lo, -INFINITY);
    hi = nextafter(hi, INFINITY);
    check(lo, bad);
    check(hi, bad);
  }
}

/* A quantile table whose first values repeat holds a point mass at its
 * minimum; a lower bound at that value keeps the mass (the window starts at
 * P(X < min), not P(X <= min)). */
static void test_dist_quantiles_bound_keeps_point_mass(void **state) {
  (void)state;
  double probs[] = {0, 0.1, 0.3, 1}, values[] = {2, 2, 2, 10};
  ms__dist_args a;
  memset(&a, 0, sizeof a);
  a.qn = 4;
  a.qprobs = probs;
  a.qvalues = values;
  double flo, fhi;
  double mass = ms__dist_window(MS__DIST_QUANTILES, &a, 2, 10, &flo, &fhi);
  assert_true(flo == 0 && fhi == 1 && mass == 1);
  mass = ms__dist_window(MS__DIST_QUANTILES, &a, 6, 10, &flo, &fhi);
  assert_true(fabs(flo - 0.65) < 1e-12 && mass > 0.34);
  ms__dist_trunc w;
  ms__dist_trunc_init(&w, MS__DIST_QUANTILES, &a, 2, 10);
  int at_min = 0;
  for (int i = 0; i < 1000; i++) at_min += ms__dist_trunc_draw(&w, MS__DIST_QUANTILES, &a, (i + 0.5) / 1000) == 2;
  assert_int_equal(at_min, 300);
}

static void test_dist_normal_quantile_matches_gsl_bits(void **state) {
  (void)state;
  int bad = 0;
  for (int i = 0; i <= 1000000; i++) check_quantile(i / 1000000.0, &bad);
  uint64_t s = 7;
  for (int i = 0; i < 1000000; i++) check_quantile((double)(lcg(&s) >> 11) * 0x1p-53, &bad);
  /* region borders |u - 0.5| = 0.425, the centre, the ends */
  const double borders[] = {0.075, 0.925, 0.5, 0.5 - 0.425, 0.5 + 0.425, 0.0, 1.0};
  for (size_t i = 0; i < sizeof borders / sizeof *borders; i++)
    around(borders[i], check_quantile, &bad);
  const double special[] = {DBL_MIN, DBL_TRUE_MIN, 1e-300, 1 - DBL_EPSILON / 2, -0.0, NAN,
                            INFINITY, -INFINITY, 1.5, -0.5};
  for (size_t i = 0; i < sizeof special / sizeof *special; i++) check_quantile(special[i], &bad);
  assert_int_equal(bad, 0);
}

static void test_dist_normal_cdf_matches_gsl_bits(void **state) {
  (void)state;
  int bad = 0;
  for (int i = -400000; i <= 400000; i++) check_cdf(i / 10000.0, &bad);
  uint64_t s = 11;
  for (int i = 0; i < 1000000; i++) {
    /* mostly the inline region |z| < 0.66291, the rest beyond it */
    double v = (double)(lcg(&s) >> 11) * 0x1p-53;
    check_cdf(i % 4 ? (v - 0.5) * 1.4 : (v - 0.5) * 20.0, &bad);
  }
  const double borders[] = {0.66291, -0.66291, DBL_EPSILON / 2, -DBL_EPSILON / 2, 0.0,
                            4.0 * M_SQRT2, -4.0 * M_SQRT2};
  for (size_t i = 0; i < sizeof borders / sizeof *borders; i++) around(borders[i], check_cdf, &bad);
  const double special[] = {-0.0, DBL_TRUE_MIN, -DBL_TRUE_MIN, NAN, INFINITY, -INFINITY, 8.572,
                            -37.519, 1e300, -1e300};
  for (size_t i = 0; i < sizeof special / sizeof *special; i++) check_cdf(special[i], &bad);
  assert_int_equal(bad, 0);
}

/* The guide only shortens the search: for tables of 2 to 3,000 points,
 * crowded and sparse (points bunched near 0 and 1, gaps of 1e-9, the last
 * segment wide), the value of every u (a million pseudo-random ones, each
 * point and its neighbours, each guide border k / 2^b and its neighbours,
 * 0 and the largest double below 1) is the bisection's, bit for bit; and a
 * guide is built at the sizes the spec allows. */
static void test_dist_quantile_guide_matches_bisection(void **state) {
  (void)state;
  uint64_t s = 5;
  const size_t sizes[] = {2, 3, 4, 7, 31, 32, 33, 100, 1000, 3000};
  int bad = 0;
  for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
    for (int shape = 0; shape < 3; shape++) {
      size_t n = sizes[si];
      double *P = malloc(n * sizeof *P), *V = malloc(n * sizeof *V);
      assert_non_null(P);
      assert_non_null(V);
      P[0] = 0, V[0] = -3;
      for (size_t i = 1; i + 1 < n; i++) {
        double t = (double)i / (double)(n - 1), r = (double)(lcg(&s) >> 11) * 0x1p-53;
        P[i] = shape == 0 ? t : shape == 1 ? t * t * t : 0.5 * t + 0.4 * r * (double)(n > 2);
        if (!(P[i] > P[i - 1])) P[i] = P[i - 1] + 1e-9;
        V[i] = V[i - 1] + (double)(lcg(&s) >> 40) * 1e-3;
      }
      P[n - 1] = 1, V[n - 1] = V[n - 2] + 1;
      ms__dist_args g, b;
      memset(&b, 0, sizeof b);
      b.qn = n, b.qprobs = P, b.qvalues = V;
      assert_int_equal(ms__dist_check(MS__DIST_QUANTILES, &b, (char[64]){0}, 64), -1);
      g = b;
      g.qguide = ms__dist_quantile_guide(P, n, &g.qgbits);
      assert_non_null(g.qguide);
      assert_true(g.qgbits >= 4 && g.qgbits <= 16);
#define CHECK_U(uu)                                                                    \
  do {                                                                                 \
    double u_ = (uu);                                                                  \
    if (u_ >= 0 && u_ < 1 &&                                                           \
        !same(ms__dist_quantile(MS__DIST_QUANTILES, &g, u_), ms__dist_quantile(MS__DIST_QUANTILES, &b, u_)) && \
        bad++ < 5)                                                                     \
      print_error("n %zu shape %d: u %.17g differs\n", n, shape, u_);                \
  } while (0)
      for (int i = 0; i < 100000; i++) CHECK_U((double)(lcg(&s) >> 11) * 0x1p-53);
      for (size_t i = 0; i < n; i++) {
        CHECK_U(P[i]);
        CHECK_U(nextafter(P[i], 0));
        CHECK_U(nextafter(P[i], 2));
      }
      for (size_t k = 0; k < ((size_t)1 << g.qgbits); k++) {
        double t = ldexp((double)k, -(int)g.qgbits);
        CHECK_U(t);
        CHECK_U(nextafter(t, 0));
        CHECK_U(nextafter(t, 2));
      }
      CHECK_U(0.0);
      CHECK_U(nextafter(1.0, 0));
#undef CHECK_U
      free((void *)g.qguide);
      free(P);
      free(V);
    }
  assert_int_equal(bad, 0);
}

int main(void) {
  gsl_set_error_handler_off();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dist_quantiles_bound_keeps_point_mass),
      cmocka_unit_test(test_dist_normal_quantile_matches_gsl_bits),
      cmocka_unit_test(test_dist_normal_cdf_matches_gsl_bits),
      cmocka_unit_test(test_dist_quantile_guide_matches_bisection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
