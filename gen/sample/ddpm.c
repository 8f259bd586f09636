/* DDPM ancestral step (Ho et al. 2020, eqs. 6-7) on a possibly respaced
 * timestep sequence: with beta = 1 - a_t/a_p,
 *   mean = sqrt(a_p) beta/(1 - a_t) x0 + sqrt(1 - beta)(1 - a_p)/(1 - a_t) x_t,
 *   var  = beta (1 - a_p)/(1 - a_t)   (the posterior variance beta-tilde),
 *   x_prev = mean + sqrt(var) z, with no noise on the step to clean data.
 * With S = T this is the original sampler. */
#include "sample/sample_private.h"

void ms__ddpm_step(float *x, const float *out, const float *noise, size_t n, ms_prediction pred,
                   double a_t, double a_p) {
  double sa = sqrt(a_t), ss = sqrt(1 - a_t);
  double beta = 1 - a_t / a_p;
  double c0 = sqrt(a_p) * beta / (1 - a_t);
  double ct = sqrt(1 - beta) * (1 - a_p) / (1 - a_t);
  double var = beta * (1 - a_p) / (1 - a_t);
  double sd = var > 0 ? sqrt(var) : 0;
  for (size_t i = 0; i < n; i++) {
    double x0, eps;
    ms__split(pred, x[i], out[i], sa, ss, &x0, &eps);
    double v = c0 * x0 + ct * x[i];
    if (sd > 0) v += sd * noise[i];
    x[i] = (float)v;
  }
}
