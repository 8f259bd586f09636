/* Private step functions of the samplers (one file each: ddpm.c, ddim.c,
 * dpmpp.c) and the prediction split they share.
 *
 * Each step updates x [n] in place from the model output `out` [n] at
 * alpha_bar a_t, moving to alpha_bar a_p (a_p = 1: clean data). All
 * coefficients are double; arithmetic per element is double, rounded once
 * to float. */
#ifndef MS_SAMPLE_PRIVATE_H
#define MS_SAMPLE_PRIVATE_H

#include <math.h>
#include <stddef.h>

#include "medsynth/sample.h"

/* (x0, eps) from the model output at alpha_bar a_t (sa = sqrt(a_t),
 * ss = sqrt(1 - a_t)). eps prediction: x0 = (x - ss*eps)/sa. v prediction
 * (v = sa*eps - ss*x0): x0 = sa*x - ss*v, eps = ss*x + sa*v. */
static inline void ms__split(ms_prediction pred, double x, double out, double sa, double ss,
                             double *x0, double *eps) {
  if (pred == MS_PRED_EPS) {
    *eps = out;
    *x0 = (x - ss * out) / sa;
  } else {
    *x0 = sa * x - ss * out;
    *eps = ss * x + sa * out;
  }
}

void ms__ddim_step(float *x, const float *out, const float *noise, size_t n, ms_prediction pred,
                   double a_t, double a_p, double eta);
/* noise may be NULL when a_p == 1 (no variance on the last step). */
void ms__ddpm_step(float *x, const float *out, const float *noise, size_t n, ms_prediction pred,
                   double a_t, double a_p);
/* x0_prev [n]: the previous step's x0 (read when !first, then overwritten
 * with this step's). *h_prev: the previous log-SNR step, updated. */
void ms__dpmpp_step(float *x, float *x0_prev, const float *out, size_t n, ms_prediction pred,
                    double a_t, double a_p, int first, double *h_prev);

/* sigma of a DDIM step (0 when eta == 0 or a_p == 1). */
static inline double ms__ddim_sigma(double a_t, double a_p, double eta) {
  if (eta == 0 || a_p >= 1.0) return 0;
  return eta * sqrt((1 - a_p) / (1 - a_t)) * sqrt(1 - a_t / a_p);
}

#endif
