/* DDIM step (Song et al. 2021, eq. 12):
 *   x_prev = sqrt(a_p) x0 + sqrt(1 - a_p - sigma^2) eps + sigma z,
 *   sigma  = eta sqrt((1 - a_p)/(1 - a_t)) sqrt(1 - a_t/a_p).
 * eta = 0 is deterministic; no clipping of x0. */
#include "sample/sample_private.h"

void ms__ddim_step(float *x, const float *out, const float *noise, size_t n, ms_prediction pred,
                   double a_t, double a_p, double eta) {
  double sa = sqrt(a_t), ss = sqrt(1 - a_t);
  double sigma = ms__ddim_sigma(a_t, a_p, eta);
  double ce = 1 - a_p - sigma * sigma;
  ce = ce > 0 ? sqrt(ce) : 0;
  double c0 = sqrt(a_p);
  for (size_t i = 0; i < n; i++) {
    double x0, eps;
    ms__split(pred, x[i], out[i], sa, ss, &x0, &eps);
    double v = c0 * x0 + ce * eps;
    if (sigma > 0) v += sigma * noise[i];
    x[i] = (float)v;
  }
}
