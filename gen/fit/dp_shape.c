/* A smooth shape for a DP numeric histogram (post-processing of released
 * noisy counts; docs/privacy.md, "Numeric column").
 *
 * When the noise of each bin is large against its count (few rows, small
 * epsilon), the noisy histogram itself is a poor marginal: the projection
 * onto non-negative counts leaves a few bins of noise peaks. A family of
 * two parameters fitted to all bins at once averages the noise over them:
 * a normal law of the Box-Cox transform y = (x^lambda - 1) / lambda (log x
 * for lambda = 0) of the value, lambda in {1, 1/2, 0, -1/2, -1} (only 1
 * when the bins reach zero or below), truncated to the bins' range, fitted
 * by least squares to the noisy counts. It is accepted when its residual
 * sum of squares is what the noise alone explains (below the 99.9th
 * percentile of sigma^2 chi^2 with the bins' count of degrees of freedom,
 * Wilson-Hilferty); else the caller keeps the histogram. */
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "fit/fit_internal.h"

#define LAMBDAS 5
#define GRID_SPANS_MAX 64
static const double lambdas[LAMBDAS] = {1, 0.5, 0, -0.5, -1};

static double box_cox(double x, double l) { return l == 0 ? log(x) : (pow(x, l) - 1) / l; }
static double box_cox_inv(double y, double l) {
  if (l == 0) return exp(y);
  double t = l * y + 1;
  return t > 0 ? pow(t, 1 / l) : 0;
}

/* The noisy counts a fit is scored against: nb fine bins (edges e0/e1 on
 * the transformed scale, counts cnt, noise sd sigma) and ns coarser spans
 * that each hold a run of the bins (span[b], counts g, noise sd sigma_g). */
typedef struct {
  const double *e0, *e1, *cnt, *g;
  const int *span;
  size_t nb, ns;
  double sigma, sigma_g, total;
} shape_data;

/* Sum over the bins and spans of squared residuals in units of their noise
 * variance, the model being total times the bin shares of N(mu, s^2)
 * truncated to [e0[0], e1[nb - 1]]. */
static double rss(const shape_data *x, double mu, double s) {
  double flo = gsl_cdf_ugaussian_P((x->e0[0] - mu) / s), fhi = gsl_cdf_ugaussian_P((x->e1[x->nb - 1] - mu) / s);
  double z = fhi - flo, ps[GRID_SPANS_MAX] = {0};
  if (!(z > 1e-12)) return INFINITY;
  double r = 0;
  for (size_t b = 0; b < x->nb; b++) {
    double pb = (gsl_cdf_ugaussian_P((x->e1[b] - mu) / s) - gsl_cdf_ugaussian_P((x->e0[b] - mu) / s)) / z;
    double d = x->cnt[b] - x->total * pb;
    r += d * d / (x->sigma * x->sigma);
    if (x->ns) ps[x->span[b]] += pb;
  }
  for (size_t i = 0; i < x->ns; i++) {
    double d = x->g[i] - x->total * ps[i];
    r += d * d / (x->sigma_g * x->sigma_g);
  }
  return r;
}

/* Best (mu, s) on a grid, then two finer grids around it. */
static double fit_normal(const shape_data *x, double *mu_out, double *s_out) {
  double a = x->e0[0], w = x->e1[x->nb - 1] - x->e0[0];
  double best = INFINITY, mu = a + w / 2, ls = log(w / 4);
  /* a spread below half the narrowest bin cannot be told from a point */
  double narrow = w;
  for (size_t b = 0; b < x->nb; b++) narrow = fmin(narrow, x->e1[b] - x->e0[b]);
  double mlo = a - w / 2, mstep = 2 * w / 40, slo = log(fmax(w / 100, narrow / 2)), sstep = (log(3 * w) - slo) / 30;
  for (int round = 0; round < 3; round++) {
    double bm = mu, bl = ls;
    for (int i = 0; i <= 40; i++)
      for (int j = 0; j <= 30; j++) {
        double m = mlo + mstep * i, l = slo + sstep * j;
        double r = rss(x, m, exp(l));
        if (r < best) best = r, bm = m, bl = l;
      }
    mu = bm, ls = bl;
    mlo = mu - 2 * mstep, mstep /= 10, slo = ls - 2 * sstep, sstep /= 7.5;
  }
  *mu_out = mu, *s_out = exp(ls);
  return best;
}

int ms__dp_smooth_shape(const double *lo, const double *hi, const double *cnt, size_t nb, double sigma,
                        const int *span, const double *g, size_t ns, double sigma_g, double known, double *qp,
                        double *qv, size_t nq) {
  if (nb < 3 || nq < 2 || !(sigma > 0) || ns > GRID_SPANS_MAX || (ns && !(sigma_g > 0))) return 0;
  for (size_t b = 0; b + 1 < nb; b++)
    if (hi[b] != lo[b + 1] || (ns && (span[b] < 0 || (size_t)span[b] >= ns))) return 0; /* contiguous only */
  if (ns && (span[nb - 1] < 0 || (size_t)span[nb - 1] >= ns)) return 0;
  double total = 0;
  for (size_t b = 0; b < nb; b++) total += cnt[b];
  if (known > 0) total = known;
  if (!(total > 0)) return 0;
  double *e0 = ms__malloc(2 * nb * sizeof *e0);
  if (!e0) return -1;
  double *e1 = e0 + nb;
  shape_data x = {e0, e1, cnt, g, span, nb, ns, sigma, sigma_g, total};
  double best = INFINITY, bl = 1, bmu = 0, bs = 1;
  for (int li = 0; li < LAMBDAS; li++) {
    double l = lambdas[li];
    if (l != 1 && !(lo[0] > 0)) continue;
    for (size_t b = 0; b < nb; b++) e0[b] = box_cox(lo[b], l), e1[b] = box_cox(hi[b], l);
    double mu, s, r = fit_normal(&x, &mu, &s);
    if (r < best) best = r, bl = l, bmu = mu, bs = s;
  }
  free(e0);
  /* chi^2 with a degree of freedom per count, its 99.9th percentile
   * (Wilson-Hilferty) */
  double k = (double)(nb + ns), zq = 3.090232306167813, c = 2 / (9 * k);
  double lim = k * pow(1 - c + zq * sqrt(c), 3);
  if (!(best <= lim)) return 0;
  double ya = box_cox(lo[0], bl), yb = box_cox(hi[nb - 1], bl);
  double flo = gsl_cdf_ugaussian_P((ya - bmu) / bs), fhi = gsl_cdf_ugaussian_P((yb - bmu) / bs);
  /* The table's end knots are the law's quantiles at half a row from
   * either end (1 / (2 total), the noisy total): the law's tails, not the
   * ends of the released range, bound the values, which a share of 1 /
   * (nq - 1) spread linearly up to a range edge would not. */
  double te = fmin(0.5 / total, 0.25 / (double)(nq - 1));
  for (size_t j = 0; j < nq; j++) {
    double u = (double)j / (double)(nq - 1), x;
    if (j == 0) u = te;
    else if (j + 1 == nq) u = 1 - te;
    x = box_cox_inv(bmu + bs * gsl_cdf_ugaussian_Pinv(flo + u * (fhi - flo)), bl);
    if (x < lo[0]) x = lo[0];
    if (x > hi[nb - 1]) x = hi[nb - 1];
    qp[j] = (double)j / (double)(nq - 1), qv[j] = x;
  }
  return 1;
}
