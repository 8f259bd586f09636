/* A reference for the zCDP -> (epsilon, delta) conversion the fit uses
 * (Canonne, Kamath & Steinke 2020, Prop. 12): delta(rho) = min over a > 1
 * of exp((a - 1)(a rho - eps) + a ln(1 - 1/a)) / (a - 1), here by a plain
 * scan of 200,000 log-spaced a in (1, 10^5] (no bisection, no calculus).
 * The checks: rho is allowed (delta(rho) <= delta), tight (1.01 rho is
 * not) and at least the rho of Bun & Steinke's eps = rho + 2 sqrt(rho ln
 * (1/delta)). */
#ifndef MS_TESTS_ZCDP_REF_H
#define MS_TESTS_ZCDP_REF_H
#include <math.h>

static double zcdp_ref_delta(double rho, double eps) {
  double best = 1;
  for (int i = 1; i <= 200000; i++) {
    double a = 1 + pow(10, -6 + 11 * (double)i / 200000);
    double dl = exp((a - 1) * (a * rho - eps) + a * log1p(-1 / a)) / (a - 1);
    if (dl < best) best = dl;
  }
  return best;
}

static int zcdp_ref_ok(double rho, double eps, double delta) {
  double L = log(1 / delta), sr = sqrt(L + eps) - sqrt(L);
  return zcdp_ref_delta(rho, eps) <= delta * 1.001 && zcdp_ref_delta(rho * 1.01, eps) > delta &&
         rho >= sr * sr;
}
#endif
