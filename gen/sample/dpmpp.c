/* DPM-Solver++ 2M (Lu et al. 2022, Algorithm 2), data prediction, multistep.
 * With alpha = sqrt(a), sigma = sqrt(1 - a), lambda = log(alpha/sigma) and
 * h = lambda_p - lambda_t:
 *   first step:  D = x0_t
 *   later steps: r = h_prev/h, D = (1 + 1/(2r)) x0_t - (1/(2r)) x0_prev
 *   x_p = (sigma_p/sigma_t) x - alpha_p expm1(-h) D
 * The step to clean data (a_p = 1, lambda = inf) is first order: x_p = x0_t.
 * Deterministic (no noise). */
#include <string.h>

#include "sample/sample_private.h"

void ms__dpmpp_step(float *x, float *x0_prev, const float *out, size_t n, ms_prediction pred,
                    double a_t, double a_p, int first, double *h_prev) {
  double sa = sqrt(a_t), ss = sqrt(1 - a_t);
  if (a_p >= 1.0) {
    for (size_t i = 0; i < n; i++) {
      double x0, eps;
      ms__split(pred, x[i], out[i], sa, ss, &x0, &eps);
      x[i] = (float)x0;
      x0_prev[i] = (float)x0;
    }
    return;
  }
  double ap = sqrt(a_p), sp = sqrt(1 - a_p);
  double h = log(ap / sp) - log(sa / ss);
  double cx = sp / ss, cd = -ap * expm1(-h);
  double w0 = 1, w1 = 0;
  if (!first) {
    double r = *h_prev / h;
    w0 = 1 + 1 / (2 * r);
    w1 = -1 / (2 * r);
  }
  for (size_t i = 0; i < n; i++) {
    double x0, eps;
    ms__split(pred, x[i], out[i], sa, ss, &x0, &eps);
    double D = w0 * x0 + (first ? 0 : w1 * (double)x0_prev[i]);
    x[i] = (float)(cx * x[i] + cd * D);
    x0_prev[i] = (float)x0;
  }
  *h_prev = h;
}
