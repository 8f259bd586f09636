/* Plain marginals of the fit (fit.c describes the whole fit and its privacy
 * rules): the shared numeric helpers (quantile tables, 6-digit rounding,
 * the DP noise keys), the numeric families and the k-threshold quantile
 * marginal, and the categorical and bool marginals with and without DP
 * (stability-based histograms, public domains).
 *
 * Invariant: every figure released without DP is an aggregate of at least
 * k rows (docs/privacy.md). */
#include <cjson/cJSON.h>
#include "core/alloc.h"
#include "core/diag.h"
#include "core/json.h"
#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_sf_psi.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "fit/fit_model.h"
#include "medsynth/fit.h"
#include "medsynth/rng.h"
#include "medsynth/table.h"
#include "medsynth/version.h"

/* ---- helpers ---- */

size_t ms__fit_bound_of(const ms_fit_params *p, const char *col) {
  for (size_t b = p->n_bounds; b-- > 0;)
    if (!strcmp(p->bound_columns[b], col)) return b;
  return SIZE_MAX;
}

int ms__fit_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

ms_rng_key ms__fit_dp_key(uint64_t seed, const char *col, const char *what) {
  char name[512];
  snprintf(name, sizeof name, "fit/dp/%s/%s", col, what);
  return ms_rng_key_make(seed, ms_rng_stream(name));
}

/* Rounds to 6 significant digits so the spec stays readable. */
static double sig6(double x) {
  if (!isfinite(x) || x == 0) return x;
  char b[64];
  snprintf(b, sizeof b, "%.6g", x);
  return strtod(b, NULL);
}

/* Piecewise-linear inverse CDF through (qp, qv). */
static double quantile_inv(const double *qp, const double *qv, size_t nq, double u) {
  if (u <= qp[0]) return qv[0];
  if (u >= qp[nq - 1]) return qv[nq - 1];
  size_t lo = 0, hi = nq - 1;
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (qp[mid] <= u) lo = mid;
    else hi = mid;
  }
  double t = (u - qp[lo]) / (qp[hi] - qp[lo]);
  return qv[lo] + t * (qv[hi] - qv[lo]);
}

/* CDF of the piecewise-linear table (mid-point of a flat step). */
static double quantile_cdf(const double *qp, const double *qv, size_t nq, double x) {
  if (x < qv[0]) return 0;
  if (x >= qv[nq - 1]) return 1;
  size_t i = 0;
  while (i + 1 < nq && qv[i + 1] <= x) i++;
  if (i + 1 >= nq) return 1;
  double w = qv[i + 1] - qv[i];
  return w > 0 ? qp[i] + (x - qv[i]) / w * (qp[i + 1] - qp[i]) : qp[i];
}

/* The same for gen/fit/mst.c (fit_internal.h). */
double ms__fit_quantile_inv(const double *qp, const double *qv, size_t nq, double u) {
  return quantile_inv(qp, qv, nq, u);
}
double ms__fit_quantile_cdf(const double *qp, const double *qv, size_t nq, double x) {
  return quantile_cdf(qp, qv, nq, x);
}
double ms__fit_sig6(double x) { return sig6(x); }

double ms__fit_fam_cdf(const fit_field *f, double x) {
  switch (f->fam) {
    case FAM_NORMAL: return gsl_cdf_gaussian_P(x - f->par[0], f->par[1]);
    case FAM_LOGNORMAL: return x <= 0 ? 0 : gsl_cdf_lognormal_P(x, f->par[0], f->par[1]);
    case FAM_GAMMA: return x <= 0 ? 0 : gsl_cdf_gamma_P(x, f->par[0], f->par[1]);
    case FAM_EXPONENTIAL: return x <= 0 ? 0 : gsl_cdf_exponential_P(x, f->par[0]);
    case FAM_CONSTANT: return x >= f->par[0] ? 1 : 0;
    default: return quantile_cdf(f->qp, f->qv, f->nq, x);
  }
}

double ms__fit_fam_inv(const fit_field *f, double u) {
  switch (f->fam) {
    case FAM_NORMAL: return f->par[0] + gsl_cdf_gaussian_Pinv(u, f->par[1]);
    case FAM_LOGNORMAL: return gsl_cdf_lognormal_Pinv(u, f->par[0], f->par[1]);
    case FAM_GAMMA: return gsl_cdf_gamma_Pinv(u, f->par[0], f->par[1]);
    case FAM_EXPONENTIAL: return gsl_cdf_exponential_Pinv(u, f->par[0]);
    case FAM_CONSTANT: return f->par[0];
    default: return quantile_inv(f->qp, f->qv, f->nq, u);
  }
}

/* A draw from the fitted marginal truncated to [lo, hi], driven by u. */
double ms__fit_numeric_draw(const fit_field *f, double u) {
  double x;
  if (f->fam == FAM_QUANTILES || f->fam == FAM_CONSTANT) {
    x = ms__fit_fam_inv(f, u);
  } else {
    double a = ms__fit_fam_cdf(f, f->lo), b = ms__fit_fam_cdf(f, f->hi);
    x = ms__fit_fam_inv(f, a + u * (b - a));
    if (!isfinite(x)) x = u < 0.5 ? f->lo : f->hi;
  }
  if (x < f->lo) x = f->lo;
  if (x > f->hi) x = f->hi;
  if (f->has_time) {
    x = round(x * 86400) / 86400;
  } else if (f->kind == MS_FKIND_INTEGER || f->kind == MS_FKIND_DATE) {
    x = round(x);
    if (x < f->lo) x = ceil(f->lo);
    if (x > f->hi) x = floor(f->hi);
  } else if (f->kind == MS_FKIND_REAL) {
    double s = pow(10, f->decimals);
    x = round(x * s) / s;
  }
  return x;
}

/* A real field is written with "precision" = the column's decimals and the
 * bounds [min, max], and the spec language requires a value with that many
 * decimals inside the bounds (docs/spec.md). Bounds that are means of order
 * statistics, or noisy estimates under DP, can fall between two such
 * values; they are then widened outward to the nearest ones, which is
 * post-processing (no privacy cost) and keeps the column's decimals. */
void ms__fit_bounds_to_precision(fit_field *f) {
  double s = pow(10, f->decimals);
  if (!isfinite(f->lo * s) || !isfinite(f->hi * s) || f->lo > f->hi) return;
  if (ceil(f->lo * s - 1e-9) <= floor(f->hi * s + 1e-9)) return;
  f->lo = floor(f->lo * s) / s;
  f->hi = ceil(f->hi * s) / s;
}

/* A date field's bounds, knots and constant are days the spec language can
 * write (years 1 to 9999). Under DP the noisy range can reach a billion
 * days, and rounding to six significant digits can step past 9999-12-31;
 * they are clamped (post-processing). */
void ms__fit_dates_in_range(fit_field *f) {
  const double dmin = ms_date_from_ymd(1, 1, 1), dmax = ms_date_from_ymd(9999, 12, 31);
#define CLAMP_DAY(x) ((x) = fmin(fmax((x), dmin), dmax))
  CLAMP_DAY(f->lo);
  CLAMP_DAY(f->hi);
  if (f->fam == FAM_CONSTANT) CLAMP_DAY(f->par[0]);
  if (f->fam == FAM_QUANTILES && f->qv)
    for (size_t i = 0; i < f->nq; i++) CLAMP_DAY(f->qv[i]);
#undef CLAMP_DAY
}

void ms__fit_gap_nonnegative(fit_field *f, double scale) {
  f->lo = fmax(f->lo, 0) * scale;
  f->hi = fmax(f->hi * scale, f->lo);
  if (f->fam == FAM_CONSTANT) f->par[0] = fmax(f->par[0], 0) * scale;
  if (f->fam == FAM_QUANTILES && f->qv)
    for (size_t i = 0; i < f->nq; i++) f->qv[i] = fmax(f->qv[i], 0) * scale;
}

/* ---- non-DP numeric marginal ---- */

static double window_mean(const double *x, size_t n, size_t k, double pos) {
  double start = round(pos - (double)(k - 1) / 2);
  if (start < 0) start = 0;
  if (start > (double)(n - k)) start = (double)(n - k);
  size_t s = (size_t)start;
  double sum = 0;
  for (size_t i = s; i < s + k; i++) sum += x[i];
  return sum / (double)k;
}

/* A present column's bounds as the fit writes them without DP: the means
 * of its k smallest and k largest values, moved inward to a whole number
 * or to the column's decimals (so that no bound describes fewer than k
 * rows, and every value drawn within them is one the input can write).
 * MS_ERR_DATA when fewer than k values are present. */
ms_status ms__fit_k_bounds(const ms_frame_col *c, size_t n_rows, size_t k, int integer, int decimals, double *lo,
                           double *hi) {
  size_t np = n_rows - c->n_missing, j = 0;
  if (np < k || !k) return MS_ERR_DATA;
  double *x = ms__malloc(np * sizeof *x);
  if (!x) return MS_ERR_NOMEM;
  for (size_t r = 0; r < n_rows; r++)
    if (!isnan(c->num[r])) x[j++] = c->num[r];
  qsort(x, np, sizeof *x, ms__fit_cmp_double);
  double a = window_mean(x, np, k, 0), b = window_mean(x, np, k, (double)(np - 1));
  free(x);
  double s = integer ? 1 : pow(10, decimals);
  a = ceil(a * s - 1e-9) / s;
  b = floor(b * s + 1e-9) / s;
  if (b < a) a = b = round((a + b) / 2 * s) / s;
  *lo = a, *hi = b;
  return MS_OK;
}

static double ll_quantiles(const fit_field *f, const double *x, size_t n) {
  double ll = 0;
  for (size_t i = 0; i < n; i++) {
    double v = x[i];
    if (v < f->qv[0] || v > f->qv[f->nq - 1]) return -INFINITY;
    size_t j = 0;
    while (j + 2 < f->nq && f->qv[j + 1] < v) j++;
    double w = f->qv[j + 1] - f->qv[j];
    if (w <= 0) return -INFINITY;
    ll += log((f->qp[j + 1] - f->qp[j]) / w);
  }
  return ll;
}

static void fit_parametric(fit_field *f, const double *x, size_t n) {
  double best = f->aic_q;
  double s = 0, s2 = 0, sl = 0, sl2 = 0;
  int positive = 1;
  for (size_t i = 0; i < n; i++) {
    s += x[i];
    s2 += x[i] * x[i];
    if (x[i] <= 0) positive = 0;
    else sl += log(x[i]), sl2 += log(x[i]) * log(x[i]);
  }
  double mean = s / n, var = s2 / n - mean * mean;
  if (!(var > 0)) return;
  double cand[4][3];
  int nc = 0;
  double sd = sqrt(var);
  double ll = 0;
  for (size_t i = 0; i < n; i++) ll += log(gsl_ran_gaussian_pdf(x[i] - mean, sd) + 1e-300);
  cand[nc][0] = FAM_NORMAL, cand[nc][1] = mean, cand[nc][2] = sd;
  double aic[4];
  aic[nc++] = 4 - 2 * ll;
  if (positive) {
    double ml = sl / n, vl = sl2 / n - ml * ml;
    if (vl > 0) {
      ll = 0;
      for (size_t i = 0; i < n; i++) ll += log(gsl_ran_lognormal_pdf(x[i], ml, sqrt(vl)) + 1e-300);
      cand[nc][0] = FAM_LOGNORMAL, cand[nc][1] = ml, cand[nc][2] = sqrt(vl);
      aic[nc++] = 4 - 2 * ll;
    }
    /* Gamma ML: solve log k - psi(k) = log(mean) - mean(log x) by Newton. */
    double sv = log(mean) - sl / n;
    if (sv > 0) {
      double k = (3 - sv + sqrt((sv - 3) * (sv - 3) + 24 * sv)) / (12 * sv);
      for (int it = 0; it < 50; it++) {
        double g = log(k) - gsl_sf_psi(k) - sv;
        double dg = 1 / k - gsl_sf_psi_1(k);
        double nk = k - g / dg;
        if (!(nk > 0)) nk = k / 2;
        if (fabs(nk - k) < 1e-10 * k) {
          k = nk;
          break;
        }
        k = nk;
      }
      double theta = mean / k;
      ll = 0;
      for (size_t i = 0; i < n; i++) ll += log(gsl_ran_gamma_pdf(x[i], k, theta) + 1e-300);
      cand[nc][0] = FAM_GAMMA, cand[nc][1] = k, cand[nc][2] = theta;
      aic[nc++] = 4 - 2 * ll;
    }
    ll = 0;
    for (size_t i = 0; i < n; i++) ll += log(gsl_ran_exponential_pdf(x[i], mean) + 1e-300);
    cand[nc][0] = FAM_EXPONENTIAL, cand[nc][1] = mean, cand[nc][2] = 0;
    aic[nc++] = 2 - 2 * ll;
  }
  for (int c = 0; c < nc; c++) {
    if (aic[c] < best) {
      best = aic[c];
      f->fam = (family)cand[c][0];
      f->par[0] = sig6(cand[c][1]);
      f->par[1] = sig6(cand[c][2]);
      f->aic_p = aic[c];
    }
  }
}

/* Point masses: a value held by at least max(k, 0.5 % of the present rows)
 * rows (the largest 40) becomes a flat step of the quantile table, a knot at
 * P(X < v) and one at P(X <= v) both at v, so that it is drawn with its
 * share exactly -- a repeated minimum (a detection limit, a zero count) or
 * a cap stays one value instead of being smeared. The other knots are kept
 * where they do not fall inside a step. Every such value describes at least
 * k rows (the k rule). x: the np present values, sorted. */
#define ATOMS_MAX 40
static ms_status add_atoms(fit_field *f, const double *x, size_t np, size_t k) {
  size_t thr = np / 200 > k ? np / 200 : k;
  size_t a_lo[ATOMS_MAX], a_hi[ATOMS_MAX], na = 0;
  for (size_t i = 0; i < np;) {
    size_t j = i;
    while (j < np && x[j] == x[i]) j++;
    if (j - i >= thr && j - i < np) {
      size_t at = na;
      if (na == ATOMS_MAX) {
        size_t small = 0;
        for (size_t q = 1; q < na; q++)
          if (a_hi[q] - a_lo[q] < a_hi[small] - a_lo[small]) small = q;
        if (a_hi[small] - a_lo[small] >= j - i) {
          i = j;
          continue;
        }
        at = small;
        for (size_t q = small; q + 1 < na; q++) a_lo[q] = a_lo[q + 1], a_hi[q] = a_hi[q + 1];
        at = --na;
      }
      a_lo[at] = i, a_hi[at] = j;
      na++;
    }
    i = j;
  }
  if (!na) return MS_OK;
  size_t cap = f->nq + 2 * na;
  double *qp = ms__malloc(cap * sizeof *qp), *qv = ms__malloc(cap * sizeof *qv);
  if (!qp || !qv) {
    free(qp), free(qv);
    return MS_ERR_NOMEM;
  }
  size_t n = 0, a = 0, n_fixed = 0; /* knots [0, n_fixed) end with a step */
  for (size_t i = 0; i <= f->nq; i++) {
    /* Atoms that start before regular knot i. */
    double pi = i < f->nq ? f->qp[i] : 2;
    while (a < na && sig6((double)a_lo[a] / (double)np) <= pi) {
      double p0 = sig6((double)a_lo[a] / (double)np), p1 = sig6((double)a_hi[a] / (double)np);
      while (n > n_fixed && qp[n - 1] >= p0) n--; /* a regular knot at or after the step's start */
      if (n && qp[n - 1] >= p0) p0 = qp[n - 1] + 1e-6; /* right after the previous step */
      if (n && qv[n - 1] > x[a_lo[a]]) qv[n - 1] = x[a_lo[a]];
      if (p0 < p1) {
        qp[n] = p0, qv[n++] = x[a_lo[a]];
        qp[n] = p1, qv[n++] = x[a_lo[a]];
        n_fixed = n;
      }
      a++;
    }
    if (i == f->nq) break;
    if (n && pi <= qp[n - 1]) continue; /* inside or at the end of a step */
    qp[n] = pi;
    qv[n] = n && f->qv[i] < qv[n - 1] ? qv[n - 1] : f->qv[i];
    n++;
  }
  /* The table must run from 0 to 1. */
  if (qp[0] > 0) qp[0] = 0;
  if (qp[n - 1] < 1) {
    if (qv[n - 1] < f->qv[f->nq - 1]) qp[n] = 1, qv[n] = f->qv[f->nq - 1], n++;
    else qp[n - 1] = 1;
  }
  free(f->qp);
  free(f->qv);
  f->qp = qp;
  f->qv = qv;
  f->nq = n;
  return MS_OK;
}

ms_status ms__fit_numeric_plain(fit_field *f, const ms_frame_col *c, size_t n_rows,
                                const ms_fit_params *p) {
  size_t k = p->k_min;
  size_t np = n_rows - c->n_missing;
  double *x = ms__malloc((np ? np : 1) * sizeof *x);
  if (!x) return MS_ERR_NOMEM;
  size_t j = 0;
  for (size_t r = 0; r < n_rows; r++)
    if (!isnan(c->num[r])) x[j++] = c->num[r];
  qsort(x, np, sizeof *x, ms__fit_cmp_double);
  size_t m = np / k + 1;
  if (m > p->max_knots) m = p->max_knots;
  if (m < 2) m = 2;
  f->nq = m;
  f->qp = ms__malloc(m * sizeof *f->qp);
  f->qv = ms__malloc(m * sizeof *f->qv);
  if (!f->qp || !f->qv) {
    free(x);
    return MS_ERR_NOMEM;
  }
  for (size_t i = 0; i < m; i++) {
    f->qp[i] = (double)i / (double)(m - 1);
    f->qv[i] = window_mean(x, np, k, f->qp[i] * (double)(np - 1));
    if (f->has_time) f->qv[i] = round(f->qv[i] * 86400) / 86400;
    else if (f->kind != MS_FKIND_REAL) f->qv[i] = sig6(f->qv[i]);
    else {
      double s = pow(10, f->decimals + 2);
      f->qv[i] = round(f->qv[i] * s) / s;
    }
    if (i && f->qv[i] < f->qv[i - 1]) f->qv[i] = f->qv[i - 1];
    f->qp[i] = sig6(f->qp[i]);
  }
  ms_status st = add_atoms(f, x, np, k);
  if (st) {
    free(x);
    return st;
  }
  m = f->nq;
  f->lo = f->qv[0];
  f->hi = f->qv[m - 1];
  int constant = f->qv[m - 1] == f->qv[0];
  if ((f->kind == MS_FKIND_INTEGER || f->kind == MS_FKIND_DATE) && !f->has_time) {
    f->lo = ceil(f->lo);
    f->hi = floor(f->hi);
    /* With fewer than 2k values present the windows overlap, and the knots
     * can all lie between two whole numbers (five values 136, 137, 138,
     * 136, 137 with k = 5: one knot, 136.8); the field is then the nearest
     * whole number, so that its bounds hold a value. */
    if (f->hi < f->lo) {
      f->lo = f->hi = round((f->qv[0] + f->qv[m - 1]) / 2);
      constant = 1;
    } else if (constant) {
      f->hi = f->lo;
    }
  }
  f->fam = FAM_QUANTILES;
  if (constant) {
    f->fam = FAM_CONSTANT;
    f->par[0] = f->kind == MS_FKIND_INTEGER || f->kind == MS_FKIND_DATE ? f->lo : f->qv[0];
  } else if (p->parametric && p->method != MS_FIT_METHOD_MST && p->method != MS_FIT_METHOD_AIM && f->kind != MS_FKIND_DATE) {
    double ll = ll_quantiles(f, x, np);
    f->aic_q = isfinite(ll) ? 2.0 * (double)m - 2 * ll : -INFINITY;
    if (isfinite(f->aic_q)) fit_parametric(f, x, np);
  }
  free(x);
  return MS_OK;
}

/* ---- categorical / bool ---- */

static ms_status add_cat(fit_field *f, const char *label, double prob) {
  char **nc = ms__realloc(f->cats, (f->n_cats + 1) * sizeof *nc);
  if (!nc) return MS_ERR_NOMEM;
  f->cats = nc;
  double *np = ms__realloc(f->probs, (f->n_cats + 1) * sizeof *np);
  if (!np) return MS_ERR_NOMEM;
  f->probs = np;
  if (!(f->cats[f->n_cats] = ms__strdup(label))) return MS_ERR_NOMEM;
  f->probs[f->n_cats++] = prob;
  return MS_OK;
}

void ms__fit_normalise(double *p, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += p[i];
  for (size_t i = 0; i < n; i++) p[i] = s > 0 ? sig6(p[i] / s) : 1.0 / (double)n;
}

/* Fills f->cats/probs. map[level] = emitted index or -1 (dropped). */
/* rho > 0: Gaussian stability-based histogram; tau is the release threshold
 * (1 + sigma z, from the model's delta_thr). */
/* Index of label s among the n labels of a public domain; SIZE_MAX: none. */
static size_t domain_index(const char *const *dom, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(dom[i], s)) return i;
  return SIZE_MAX;
}

/* A categorical column with a public domain under DP: every label of the
 * domain is released with its noisy count (no threshold: the labels are not
 * read from the data), the counts projected onto non-negative ones with the
 * same total; a level outside the domain is dropped (its rows are left out
 * of every count, as an unreleased level). */
static ms_status fit_domain_dp(fit_field *f, const ms_frame_col *c, const double *cnt, double missing,
                               const ms_fit_params *p, double sigma, const char *const *dom, size_t n_dom,
                               int32_t *map, double *noisy_total) {
  double *dc = ms__calloc(n_dom ? n_dom : 1, sizeof *dc);
  if (!dc) return MS_ERR_NOMEM;
  for (size_t l = 0; l < c->n_levels; l++) {
    size_t i = domain_index(dom, n_dom, c->levels[l]);
    map[l] = i == SIZE_MAX ? -1 : (int32_t)i;
    if (i != SIZE_MAX) dc[i] += cnt[l];
  }
  ms_rng_key kk = ms__fit_dp_key(p->seed, f->name, "domain");
  double tot = 0;
  for (size_t i = 0; i < n_dom; i++) tot += dc[i] += ms__fit_gauss(kk, i, sigma);
  ms_status st = ms__dp_project(dc, n_dom, tot);
  tot = 0;
  for (size_t i = 0; i < n_dom && !st; i++) {
    st = add_cat(f, dom[i], dc[i]);
    tot += dc[i];
  }
  double raw = missing + ms__fit_gauss(kk, UINT64_MAX, sigma);
  missing = ms__dp_missing(raw, sigma);
  *noisy_total = tot + missing;
  f->n_total = tot + raw, f->total_var = sigma * sigma * (double)(n_dom + 1), f->miss_count = missing;
  f->missing = tot + missing > 0 ? missing / (tot + missing) : 0;
  /* all noisy counts at 0: every label equally likely (post-processing) */
  if (!st && !(tot > 0))
    for (size_t i = 0; i < n_dom; i++) f->probs[i] = 1;
  free(dc);
  return st;
}

ms_status ms__fit_categorical(fit_field *f, const ms_frame_col *c, size_t n_rows,
                              const ms_fit_params *p, double rho, double tau, int32_t *map,
                              double *noisy_total, const double *lit_val, const char *const *dom,
                              size_t n_dom) {
  size_t L = c->n_levels, k = p->k_min;
  double *cnt = ms__calloc(L + 1, sizeof *cnt);
  if (!cnt) return MS_ERR_NOMEM;
  for (size_t r = 0; r < n_rows; r++)
    if (c->code[r] >= 0) cnt[c->code[r]] += 1;
  double missing = (double)c->n_missing;
  ms_status st = MS_OK;
  /* Without DP a public domain only removes the levels outside it. */
  for (size_t l = 0; dom && rho == 0 && l < L; l++)
    if (domain_index(dom, n_dom, c->levels[l]) == SIZE_MAX) cnt[l] = 0;
  if (rho > 0 && dom) {
    f->sigma = 1 / sqrt(2 * rho);
    st = fit_domain_dp(f, c, cnt, missing, p, f->sigma, dom, n_dom, map, noisy_total);
  } else if (rho > 0) {
    ms_rng_key kk = ms__fit_dp_key(p->seed, f->name, "levels");
    double sigma = 1 / sqrt(2 * rho);
    f->sigma = sigma;
    if (tau < (double)k) tau = (double)k;
    double tot = 0;
    for (size_t l = 0; l < L; l++) {
      double v = cnt[l] + ms__fit_gauss(kk, l, sigma);
      map[l] = -1;
      if (v > tau) {
        map[l] = (int32_t)f->n_cats;
        if ((st = add_cat(f, c->levels[l], v))) break;
        tot += v;
      }
    }
    /* The missing bin is a fixed bin: released without a threshold. Its
     * index (SIZE_MAX) is outside the level indices. */
    missing = ms__dp_missing(missing + ms__fit_gauss(kk, UINT64_MAX, sigma), sigma);
    tot += missing;
    *noisy_total = tot;
    /* the levels below the threshold are left out of this total: it is
     * not pooled into the row count (total_var 0, fit.c) */
    f->miss_count = missing;
    f->missing = tot > 0 ? missing / tot : 0;
    /* no label released: the column is written as always missing (a label
     * the input lacks would be out of its domain); fit.c says so */
    if (f->n_cats == 0 && !(st = add_cat(f, "other", 1))) f->suppressed = 1, f->missing = 1;
  } else {
    double other = 0, present = 0;
    for (size_t l = 0; l < L; l++) {
      map[l] = -1;
      if (cnt[l] >= (double)k) {
        map[l] = (int32_t)f->n_cats;
        if ((st = add_cat(f, c->levels[l], cnt[l]))) break;
        present += cnt[l];
      } else {
        other += cnt[l];
      }
    }
    /* Levels seen in fewer than k rows are never written (no label the
     * input lacks, none that a few rows hold): a value of a discrete numeric
     * column joins the nearest kept value, a category's rows are left out
     * of the proportions. */
    if (!st && other > 0 && lit_val && f->n_cats) {
      for (size_t l = 0; l < L; l++) {
        if (cnt[l] >= (double)k) continue;
        size_t best = SIZE_MAX;
        double bd = INFINITY;
        for (size_t q = 0; q < L; q++)
          if (map[q] >= 0 && cnt[q] >= (double)k && fabs(lit_val[q] - lit_val[l]) < bd)
            bd = fabs(lit_val[q] - lit_val[l]), best = q;
        if (best == SIZE_MAX) continue;
        map[l] = map[best];
        f->probs[map[best]] += cnt[l];
        present += cnt[l];
      }
    }
    if (missing < (double)k) missing = 0;
    *noisy_total = (double)n_rows;
    f->missing = present + missing > 0 ? missing / (present + missing) : 0;
    if (!st && f->n_cats == 0) {
      f->suppressed = 1;
      f->missing = 1;
      st = add_cat(f, "other", 1);
    }
  }
  free(cnt);
  if (!st) ms__fit_normalise(f->probs, f->n_cats);
  f->missing = sig6(f->missing);
  return st;
}

ms_status ms__fit_bool(fit_field *f, const ms_frame_col *c, size_t n_rows,
                       const ms_fit_params *p, double rho, double *noisy_total) {
  double cnt[3] = {0, 0, (double)c->n_missing};
  for (size_t r = 0; r < n_rows; r++)
    if (!isnan(c->num[r])) cnt[c->num[r] != 0] += 1;
  if (rho > 0) {
    ms_rng_key kk = ms__fit_dp_key(p->seed, f->name, "bool");
    f->sigma = 1 / sqrt(2 * rho);
    for (int b = 0; b < 3; b++) {
      cnt[b] += ms__fit_gauss(kk, (uint64_t)b, f->sigma);
      f->n_total += cnt[b];
      if (cnt[b] < 0) cnt[b] = 0;
    }
    cnt[2] = ms__dp_missing(cnt[2], f->sigma);
    f->total_var = 3 * f->sigma * f->sigma, f->miss_count = cnt[2];
  } else {
    for (int b = 0; b < 3; b++)
      if (cnt[b] < (double)p->k_min) cnt[b] = 0;
  }
  double tot = cnt[0] + cnt[1] + cnt[2];
  *noisy_total = tot;
  ms_status st = add_cat(f, "false", cnt[0]);
  if (!st) st = add_cat(f, "true", cnt[1]);
  if (st) return st;
  ms__fit_normalise(f->probs, 2);
  f->missing = sig6(tot > 0 ? cnt[2] / tot : 0);
  if (cnt[0] + cnt[1] <= 0) f->suppressed = 1, f->missing = 1;
  return MS_OK;
}

