/* The copula's correlation matrix from its released noisy sums of score
 * products (post-processing; docs/privacy.md, "Correlations").
 *
 * S holds the noisy off-diagonal upper triangle of sum_r z_r z_r^T, every
 * entry with N(0, sigma^2) noise, and on its diagonal each column's
 * released count of present values (the released row count times one minus
 * the released missing share), which is what the column's sum of squared
 * scores estimates (scores are standard normal through the released
 * marginal); entry (a, b) is divided by sqrt(S_aa S_bb).
 *
 * The off-diagonal part A = R - I + E, E of independent entries of sd s =
 * sigma / (mean diagonal), is then denoised by its spectrum: the
 * eigenvalues of a symmetric noise matrix lie in [-2 s sqrt(d), 2 s
 * sqrt(d)] (Wigner), and a component of strength theta > s sqrt(d) shows as
 * an eigenvalue mu = theta + d s^2 / theta whose eigenvector has squared
 * overlap 1 - d s^2 / theta^2 with the true one (spiked Wigner model;
 * Benaych-Georges & Nadakuditi 2011). The components above the 99th
 * percentile of the largest eigenvalue of noise alone (Tracy-Widom) are
 * kept with strength theta (1 - d s^2 / theta^2) (the Frobenius-optimal
 * shrinkage of a rank-one spike); what they leave (all of the off-diagonal
 * when none is kept) is shrunk by its James-Stein-type share of signal
 * variance. */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "fit/fit_internal.h"
#include "fit/fit_model.h"

ms_status ms__dp_corr_estimate(double *S, size_t d, double sigma, double *shrink, size_t *kept) {
  double D = 0;
  for (size_t a = 0; a < d; a++) D += S[a * d + a];
  D /= (double)d;
  double *diag = ms__malloc(d * sizeof *diag);
  if (!diag) return MS_ERR_NOMEM;
  for (size_t a = 0; a < d; a++) diag[a] = S[a * d + a];
  *kept = 0;
  *shrink = 0;
  if (!(D > 0)) {
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) S[a * d + b] = a == b;
    free(diag);
    return MS_OK;
  }
  double s = sigma / D, ss = 0;
  size_t npairs = 0;
  for (size_t a = 0; a < d; a++) {
    for (size_t b = a + 1; b < d; b++) {
      double v = diag[a] > 0 && diag[b] > 0 ? S[a * d + b] / sqrt(diag[a] * diag[b]) : 0;
      S[a * d + b] = S[b * d + a] = v;
      npairs++;
    }
    S[a * d + a] = 0;
  }
  free(diag);
  if (!npairs) {
    S[0] = 1;
    return MS_OK;
  }
  gsl_matrix *A = gsl_matrix_alloc(d, d), *V = gsl_matrix_alloc(d, d);
  gsl_vector *ev = gsl_vector_alloc(d);
  gsl_eigen_symmv_workspace *ws = gsl_eigen_symmv_alloc(d);
  double *out = ms__calloc(d * d, sizeof *out);
  ms_status st = MS_OK;
  if (!A || !V || !ev || !ws || !out) {
    st = MS_ERR_NOMEM;
    goto done;
  }
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) gsl_matrix_set(A, a, b, S[a * d + b]);
  if (gsl_eigen_symmv(A, ev, V, ws)) {
    st = MS_ERR_MATH;
    goto done;
  }
  /* the largest eigenvalue of noise alone: s sqrt(d) (2 + d^(-2/3) TW1),
   * TW1 the Tracy-Widom (GOE) law, 2.02 its 99th percentile */
  double w2 = (double)d * s * s, lim = sqrt(w2) * (2 + 2.02 * pow((double)d, -2.0 / 3));
  for (size_t k = 0; k < d; k++) {
    double mu = gsl_vector_get(ev, k);
    if (!(mu > lim)) continue;
    double theta = (mu + sqrt(mu * mu - 4 * w2)) / 2, str = theta * (1 - w2 / (theta * theta));
    for (size_t a = 0; a < d; a++)
      for (size_t b = a + 1; b < d; b++) out[a * d + b] += str * gsl_matrix_get(V, a, k) * gsl_matrix_get(V, b, k);
    if (!*kept) *shrink = 1 - w2 / (theta * theta);
    (*kept)++;
  }
  /* what the kept components leave (all of it when none is kept) is shrunk
   * by its James-Stein share of signal variance */
  for (size_t a = 0; a < d; a++)
    for (size_t b = a + 1; b < d; b++) {
      double r = S[a * d + b] - out[a * d + b];
      ss += r * r;
    }
  double tot = ss / (double)npairs, sig = tot - s * s > 0 ? tot - s * s : 0, lam = tot > 0 ? sig / tot : 0;
  if (!*kept) *shrink = lam;
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) {
      size_t u = a < b ? a * d + b : b * d + a;
      double v = a == b ? 1 : out[u] + lam * (S[u] - out[u]);
      S[a * d + b] = v > 1 ? 1 : v < -1 ? -1 : v;
    }
done:
  free(out);
  if (ws) gsl_eigen_symmv_free(ws);
  if (ev) gsl_vector_free(ev);
  if (V) gsl_matrix_free(V);
  if (A) gsl_matrix_free(A);
  return st;
}

/* For z of d independent standard normal scores, clipping to squared norm
 * C2 multiplies z z^T by min(1, C2 / ||z||^2), and E[z_a z_b min(1, C2 /
 * ||z||^2)] = R_ab E[min(||z||^2, C2)] / d to first order in R; E[min(X, C)]
 * = d P(chi2_{d+2} <= C) + C P(chi2_d > C) for X ~ chi2_d. */
double ms__dp_corr_clip_factor(size_t d, double C2) {
  double n = (double)d;
  return gsl_cdf_chisq_P(C2, n + 2) + C2 / n * gsl_cdf_chisq_Q(C2, n);
}

/* M = E_R[z z^T min(1, C2 / ||z||^2)] / cfac off the diagonal, over the
 * fixed standard normal draws g (nmc x d) mapped through R's Cholesky
 * factor. MS_ERR_MATH when R has none. */
static ms_status clipped_moment(const double *R, size_t d, double C2, double cfac, const double *g, size_t nmc,
                                gsl_matrix *L, double *z, double *M) {
  for (size_t a = 0; a < d; a++)
    for (size_t b = 0; b < d; b++) gsl_matrix_set(L, a, b, R[a * d + b]);
  gsl_error_handler_t *old = gsl_set_error_handler_off();
  int bad = gsl_linalg_cholesky_decomp1(L);
  gsl_set_error_handler(old);
  if (bad) return MS_ERR_MATH;
  for (size_t u = 0; u < d * d; u++) M[u] = 0;
  for (size_t t = 0; t < nmc; t++) {
    double nn = 0;
    for (size_t a = 0; a < d; a++) {
      double v = 0;
      for (size_t b = 0; b <= a; b++) v += gsl_matrix_get(L, a, b) * g[t * d + b];
      z[a] = v;
      nn += v * v;
    }
    double w = nn > C2 ? C2 / nn : 1;
    for (size_t a = 0; a < d; a++)
      for (size_t b = a + 1; b < d; b++) M[a * d + b] += z[a] * z[b] * w;
  }
  for (size_t a = 0; a < d; a++)
    for (size_t b = a + 1; b < d; b++) M[a * d + b] /= (double)nmc * cfac;
  return MS_OK;
}

/* The first-order factor leaves strong correlations short (a pair at 0.8
 * in a block of four comes out 0.62 when C2 = d / 2), since the rows that
 * are clipped are those the block makes long. A is taken as the clipped
 * moment of the correlation R sought, divided by that factor, and R is
 * found by the fixed point R <- repair(R + (A - M(R))) from R = A, M by
 * Monte Carlo over 20,000 draws keyed by the seed alone (data-independent:
 * post-processing). Up to MS__CORR_UNCLIP_MAX_D columns (the cost is
 * 20,000 d^2 a step); beyond, the first-order factor stands, the norms of
 * many scores varying little. A stays as it is when a step has no
 * Cholesky factor. */
ms_status ms__dp_corr_unclip(double *A, size_t d, double C2, uint64_t seed) {
  if (d < 2 || d > MS__CORR_UNCLIP_MAX_D) return MS_OK;
  const size_t nmc = 20000;
  const double cfac = ms__dp_corr_clip_factor(d, C2);
  double *g = ms__malloc(nmc * d * sizeof *g), *R = ms__malloc(d * d * sizeof *R), *M = ms__malloc(d * d * sizeof *M),
         *z = ms__malloc(d * sizeof *z);
  gsl_matrix *L = gsl_matrix_alloc(d, d);
  ms_status st = MS_OK;
  if (!g || !R || !M || !z || !L) {
    st = MS_ERR_NOMEM;
    goto out;
  }
  ms_rng_key k = ms__fit_dp_key(seed, "(copula)", "unclip");
  for (size_t i = 0; i < nmc * d; i++) g[i] = ms_rng_normal(k, i, 0);
  for (size_t u = 0; u < d * d; u++) R[u] = A[u];
  for (int it = 0; it < 12 && !st; it++) {
    if ((st = ms__fit_repair_correlation(R, d))) break;
    if ((st = clipped_moment(R, d, C2, cfac, g, nmc, L, z, M))) break;
    for (size_t a = 0; a < d; a++)
      for (size_t b = a + 1; b < d; b++) {
        double v = R[a * d + b] + (A[a * d + b] - M[a * d + b]);
        v = v > 0.999 ? 0.999 : v < -0.999 ? -0.999 : v;
        R[a * d + b] = R[b * d + a] = v;
      }
  }
  if (st == MS_ERR_MATH) st = MS_OK;
  else if (!st)
    for (size_t u = 0; u < d * d; u++) A[u] = R[u];
out:
  if (L) gsl_matrix_free(L);
  free(g), free(R), free(M), free(z);
  return st;
}
