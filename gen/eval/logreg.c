/* Ridge-penalised logistic regression (Newton / IRLS) and ridge linear
 * regression for the evaluator's pMSE and train-on-synthetic scores.
 *
 * Gradients and Hessians are accumulated over fixed blocks of 2048 rows,
 * each block into its own buffer, and the blocks summed in order, so the
 * result is identical for any thread count. Systems are solved by GSL's
 * Cholesky decomposition; the ridge term keeps them positive definite even
 * for perfectly separable data (a plain copy of the training table).
 *
 * Reference: Hastie, Tibshirani & Friedman, "The Elements of Statistical
 * Learning", 2nd ed., s.4.4.1 (IRLS). */
#include <gsl/gsl_linalg.h>
#include "core/alloc.h"
#include <gsl/gsl_matrix.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "eval/eval_internal.h"

#define BLOCK 2048

double ms__logreg_prob(const double *beta, const double *x, size_t p) {
  double eta = beta[0];
  for (size_t j = 0; j < p; j++) eta += beta[j + 1] * x[j];
  if (eta > 35) eta = 35;
  if (eta < -35) eta = -35;
  return 1 / (1 + exp(-eta));
}

double ms__linreg_predict(const double *beta, const double *x, size_t p) {
  double s = beta[0];
  for (size_t j = 0; j < p; j++) s += beta[j + 1] * x[j];
  return s;
}

/* Accumulates H = sum w_i x_i x_i^T and g = sum r_i x_i over augmented rows
 * (1, x_i). mode 0: logistic (w = p(1-p), r = y - p); mode 1: linear
 * (w = 1, r = y). */
typedef struct {
  double *bh;
  const double *beta, *X, *y;
  size_t n, p;
  int mode;
} acc_job;

/* Block b of BLOCK rows into its own slot of bh (summed in block order by
 * the caller, so the thread count never changes a bit). */
static void acc_block(void *ctx, size_t b, size_t worker) {
  const acc_job *j = ctx;
  (void)worker;
  const size_t p = j->p, q = p + 1, n = j->n;
  const double *X = j->X, *y = j->y;
  double *h = j->bh + b * (q * q + q + 1), *gg = h + q * q, *ls = gg + q;
  double xa[q];
  for (size_t i = b * BLOCK; i < n && i < (b + 1) * BLOCK; i++) {
    xa[0] = 1;
    memcpy(xa + 1, X + i * p, p * sizeof *xa);
    double w, r;
    if (j->mode == 0) {
      double pr = ms__logreg_prob(j->beta, X + i * p, p);
      w = pr * (1 - pr);
      r = y[i] - pr;
      *ls -= y[i] > 0.5 ? log(pr + 1e-300) : log(1 - pr + 1e-300);
    } else {
      w = 1;
      r = y[i];
    }
    for (size_t a = 0; a < q; a++) {
      gg[a] += r * xa[a];
      double wa = w * xa[a];
      for (size_t c = a; c < q; c++) h[a * q + c] += wa * xa[c];
    }
  }
}

static ms_status accumulate(double *H, double *g, const double *beta, const double *X,
                            const double *y, size_t n, size_t p, int mode, double *loss) {
  size_t q = p + 1, nb = (n + BLOCK - 1) / BLOCK;
  double *bh = ms__calloc(nb * (q * q + q + 1), sizeof *bh);
  if (!bh) return MS_ERR_NOMEM;
  acc_job j = {bh, beta, X, y, n, p, mode};
  ms__parallel(nb, ms__parallel_threads(), acc_block, &j);
  memset(H, 0, q * q * sizeof *H);
  memset(g, 0, q * sizeof *g);
  *loss = 0;
  for (size_t b = 0; b < nb; b++) {
    double *h = bh + b * (q * q + q + 1);
    for (size_t a = 0; a < q * q; a++) H[a] += h[a];
    for (size_t a = 0; a < q; a++) g[a] += h[q * q + a];
    *loss += h[q * q + q];
  }
  for (size_t a = 0; a < q; a++)
    for (size_t c = 0; c < a; c++) H[a * q + c] = H[c * q + a];
  free(bh);
  return MS_OK;
}

static ms_status solve(double *x, const double *H, const double *g, size_t q) {
  gsl_matrix *A = gsl_matrix_alloc(q, q);
  gsl_vector *b = gsl_vector_alloc(q), *s = gsl_vector_alloc(q);
  ms_status st = MS_OK;
  if (!A || !b || !s) st = MS_ERR_NOMEM;
  else {
    memcpy(A->data, H, q * q * sizeof *H);
    memcpy(b->data, g, q * sizeof *g);
    if (gsl_linalg_cholesky_decomp1(A) || gsl_linalg_cholesky_solve(A, b, s)) st = MS_ERR_MATH;
    else memcpy(x, s->data, q * sizeof *x);
  }
  gsl_matrix_free(A);
  gsl_vector_free(b);
  gsl_vector_free(s);
  return st;
}

ms_status ms__logreg_fit(double *beta, const double *X, const double *y, size_t n, size_t p,
                         double lambda) {
  size_t q = p + 1;
  double *H = ms__malloc(q * q * sizeof *H), *g = ms__malloc(q * sizeof *g), *step = ms__malloc(q * sizeof *step);
  ms_status st = H && g && step ? MS_OK : MS_ERR_NOMEM;
  memset(beta, 0, q * sizeof *beta);
  double prev = INFINITY;
  for (int it = 0; it < 30 && !st; it++) {
    double loss;
    if ((st = accumulate(H, g, beta, X, y, n, p, 0, &loss))) break;
    for (size_t a = 1; a < q; a++) {
      H[a * q + a] += lambda;
      g[a] -= lambda * beta[a];
      loss += 0.5 * lambda * beta[a] * beta[a];
    }
    for (size_t a = 0; a < q; a++) H[a * q + a] += 1e-9;
    if ((st = solve(step, H, g, q))) break;
    double mx = 0;
    for (size_t a = 0; a < q; a++) {
      beta[a] += step[a];
      if (fabs(step[a]) > mx) mx = fabs(step[a]);
    }
    if (mx < 1e-8 || fabs(prev - loss) < 1e-10 * (1 + fabs(loss))) break;
    prev = loss;
  }
  free(H);
  free(g);
  free(step);
  return st;
}

ms_status ms__linreg_fit(double *beta, const double *X, const double *y, size_t n, size_t p,
                         double lambda) {
  size_t q = p + 1;
  double *H = ms__malloc(q * q * sizeof *H), *g = ms__malloc(q * sizeof *g);
  ms_status st = H && g ? MS_OK : MS_ERR_NOMEM;
  double loss;
  if (!st) st = accumulate(H, g, beta, X, y, n, p, 1, &loss);
  if (!st) {
    for (size_t a = 1; a < q; a++) H[a * q + a] += lambda;
    H[0] += 1e-9;
    st = solve(beta, H, g, q);
  }
  free(H);
  free(g);
  return st;
}
