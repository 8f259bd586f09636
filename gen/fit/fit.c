/* Fitting a spec to a real table: marginals, Gaussian copula, optional
 * differential privacy, spec emission and a reference sampler.
 *
 * Non-DP rules (docs/privacy.md): every numeric figure released is an
 * aggregate of at least k rows -- quantile knots and bounds are means of k
 * consecutive order statistics, so neither the real minimum/maximum nor any
 * single real value is copied unless k rows hold it (point masses, discrete
 * values); categories (and missing counts, bool counts) seen in fewer than
 * k rows are left out or suppressed; identifier columns become fresh ids in
 * their pattern. The emitted spec keeps the input's shape (docs/fit.md):
 * labels, number and date formats, relations holding on every row.
 *
 * DP (epsilon > 0): add/remove-one-row neighbours, Gaussian mechanisms
 * accounted in zero-concentrated DP (rho-zCDP; Bun & Steinke 2016) and
 * converted to (epsilon, delta). delta is split: delta_thr for the
 * thresholds of the categorical (stability-based) histograms, delta_conv for
 * the zCDP -> (epsilon, delta) conversion; rho solves
 * epsilon = rho + 2 sqrt(rho ln(1/delta_conv)). Two thirds of rho go to the
 * marginals (split evenly over the fitted columns), one third to the copula
 * correlation (all to the marginals without a copula). A numeric column
 * without public bounds spends half of its share on a histogram over a
 * fixed, data-independent log-scale grid (2 bins per decade) whose noisy
 * mode bin, grown over contiguous bins above 2 sigma, gives the range, the rest on a histogram inside the range
 * (plus a missing bin; bins chosen from the noisy count) that is smoothed,
 * clamped at 0 and read as a monotone CDF. Categorical levels: Gaussian
 * stability-based histogram (noisy counts of observed levels released above
 * 1 + sigma z(delta_thr / c)); bools: 3-bin Gaussian histogram. The
 * correlation is the Gaussian-noised sum of outer products of per-row normal
 * scores through the DP marginals, each row's score vector clipped to
 * squared norm C^2 = d + 2 sqrt(2d) (L2 sensitivity C^2), normalised by its
 * noisy diagonal, shrunk towards the identity by the estimated signal share
 * and repaired to the nearest correlation matrix. In both modes, pairs with
 * a categorical or bool column are converted from score correlations to
 * latent (threshold-model) correlations before the repair, and the spec's
 * correlation group holds every copula column. All noise is keyed by
 * (seed, "fit/dp/<column>/<what>", bin). docs/privacy.md derives each
 * sensitivity.
 *
 * References: Dwork & Roth, "The Algorithmic Foundations of Differential
 * Privacy" (2014), Laplace/Gaussian mechanisms (Thm 3.6, A.1); Bun &
 * Steinke, "Concentrated Differential Privacy: Simplifications, Extensions,
 * and Lower Bounds" (TCC 2016) Prop. 1.3, 1.6, Lemma 2.3 (Gaussian
 * mechanism, composition, conversion) and s.8 (approximate zCDP); Vadhan, "The
 * Complexity of Differential Privacy" (2017) s.3.3 stability-based
 * histograms; Higham, "Computing the nearest correlation matrix" (2002) --
 * here one eigenvalue-clipping step and unit-diagonal rescaling. */
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
#include "fit/fit_internal.h"
#include "medsynth/fit.h"
#include "medsynth/rng.h"
#include "medsynth/table.h"
#include "medsynth/version.h"

/* What a free-text column is written as (docs/fit.md). */
#define MS_FIT_TEXT_PLACEHOLDER "redacted"

typedef enum { FAM_QUANTILES, FAM_NORMAL, FAM_LOGNORMAL, FAM_GAMMA, FAM_EXPONENTIAL, FAM_CONSTANT } family;
static const char *const fam_names[] = {"quantiles", "normal", "lognormal", "gamma", "exponential", "constant"};

typedef struct {
  char *name;  /* the spec's field name: an identifier made from the header */
  char *label; /* the header text when it is not that identifier, else NULL */
  ms_fkind kind;
  /* How the input writes the column (docs/fit.md, the round-trip contract). */
  char *btext[2];    /* bool: spellings of false and true; emitted as a categorical */
  int discrete;      /* numeric column fitted as its distinct values (cats) */
  int real_style;    /* ms_frame_col.real_style */
  char *date_format; /* date: pattern; NULL: ISO */
  int has_time;      /* date: emitted as a datetime */
  int text;          /* free text: not released, a placeholder is written */
  char *id_prefix;   /* id: fresh values prefix + digits */
  int id_width;      /* digits, 0: not zero-padded */
  int64_t id_start;
  /* Relations kept exactly (fit/relations.c; -1: none): a date drawn as
   * base field + a gap, a number derived as diff_b - diff_a, a categorical
   * determined by fd_from through fd_emit (fd_from's emitted index -> own
   * emitted index, -1: no rule). */
  int rel_base, diff_a, diff_b, fd_from;
  char *gap_name;   /* a number after rel_base: the hidden field of its gap */
  /* Impossible combinations with field zc_from (-1: none): this field's
   * probabilities given each emitted label of zc_from, zc_nx x zc_ny. */
  int zc_from;
  double *zc_probs;
  size_t zc_nx, zc_ny;
  /* A total (relations.c, SUM): the fields it is the sum of (NULL: none). */
  int32_t *sum_parts;
  size_t n_sum;
  int out_decimals; /* ... and the decimals the number is written with */
  int32_t *fd_emit;
  size_t n_fd_emit;
  ms_fkind orig_kind;
  double missing;
  int suppressed; /* too few present values: emitted as always missing */
  /* categorical / bool: probabilities in emission order; bool: [P(false), P(true)] */
  size_t n_cats;
  char **cats;
  double *probs;
  /* numeric */
  family fam;
  double par[2];
  size_t nq;
  double *qp, *qv;
  double lo, hi;
  int decimals;
  int cop; /* index in the copula, -1 when not in it */
  double rho;  /* zCDP budget spent on this column */
  /* Conditional missingness: rate mc_rate where the condition on field
   * mc_col holds (mc_type 0: bool true, 1: category mc_cat, 2: value <
   * mc_thr), f->missing elsewhere; mc_col -1 when none. */
  int mc_col, mc_type;
  int32_t mc_cat;
  double mc_thr, mc_rate, mc_chi2;
  char *mc_expr;
  double sigma; /* Gaussian noise of its histogram(s) */
  double aic_q, aic_p;
} fit_field;

struct ms_fit_model {
  char *name, *table, *source;
  size_t n_fields;
  fit_field *f;
  uint64_t n_out;
  size_t n_source;
  size_t k_min;
  uint64_t seed;
  double epsilon, delta, delta_conv, delta_thr, rho, rho_marg, rho_corr, rho_miss, miss_sigma,
      corr_sigma, corr_shrink, corr_clip;
  size_t corr_components;
  size_t n_cop;
  size_t *cop; /* field index of copula member i */
  double *corr;
  /* Mixture (non-DP): the copula members' marginals per latent cluster;
   * n_comp 0 when the copula's own marginals are used. */
  size_t n_comp;
  struct fit_comp *comp;
  char *comp_name; /* the hidden cluster field of the spec */
  size_t mix_rejected, mix_rows; /* clusters dropped by the copy check */
  long mix_copies[2];            /* ... copies with and without them */
  char **qi;
  size_t n_qi;
  const ms_cancel_flag *cancel; /* from the params; polled by the sampler */
  ms__mst *mst; /* DP method MST: the tree model (gen/fit/mst.c); NULL otherwise */
};

void ms_fit_params_init(ms_fit_params *p) {
  memset(p, 0, sizeof *p);
  p->k_min = 5;
  p->max_knots = 41;
  p->parametric = 1;
  p->copula = 1;
  p->mixture = 1;
  p->method = MS_FIT_METHOD_COPULA;
}

static void field_free(fit_field *f) {
  free(f->name);
  free(f->label);
  free(f->btext[0]);
  free(f->btext[1]);
  free(f->date_format);
  free(f->id_prefix);
  free(f->fd_emit);
  free(f->mc_expr);
  free(f->gap_name);
  free(f->zc_probs);
  free(f->sum_parts);
  for (size_t i = 0; i < f->n_cats; i++) free(f->cats[i]);
  free(f->cats);
  free(f->probs);
  free(f->qp);
  free(f->qv);
}

/* One cluster of the mixture: its share of the rows and, per copula member,
 * a field whose marginal (fam, par, qp/qv, probs) is that of the cluster's
 * rows; the other members of the struct are copies of the global field's
 * (borrowed, not freed). */
typedef struct fit_comp {
  double w;
  size_t n;
  fit_field *f;
} fit_comp;

static void comp_field_free(fit_field *f) {
  free(f->qp);
  free(f->qv);
  free(f->probs);
}

static void comps_free(fit_comp *comp, size_t n_comp, size_t n_cop) {
  for (size_t c = 0; comp && c < n_comp; c++) {
    for (size_t i = 0; comp[c].f && i < n_cop; i++) comp_field_free(&comp[c].f[i]);
    free(comp[c].f);
  }
  free(comp);
}

void ms_fit_model_free(ms_fit_model *m) {
  if (!m) return;
  comps_free(m->comp, m->n_comp, m->n_cop);
  free(m->comp_name);
  for (size_t i = 0; i < m->n_fields; i++) field_free(&m->f[i]);
  free(m->f);
  free(m->name);
  free(m->table);
  free(m->source);
  free(m->cop);
  free(m->corr);
  for (size_t i = 0; i < m->n_qi; i++) free(m->qi[i]);
  free(m->qi);
  ms__mst_free(m->mst);
  free(m);
}

size_t ms_fit_model_n_copula(const ms_fit_model *m) { return m->n_cop; }
size_t ms_fit_model_n_clusters(const ms_fit_model *m) { return m->n_comp >= 2 ? m->n_comp : 1; }
const char *ms_fit_model_copula_field(const ms_fit_model *m, size_t i) {
  return i < m->n_cop ? m->f[m->cop[i]].name : NULL;
}
const double *ms_fit_model_correlation(const ms_fit_model *m) { return m->corr; }

/* ---- helpers ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static ms_rng_key dp_key(uint64_t seed, const char *col, const char *what) {
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

static double fam_cdf(const fit_field *f, double x) {
  switch (f->fam) {
    case FAM_NORMAL: return gsl_cdf_gaussian_P(x - f->par[0], f->par[1]);
    case FAM_LOGNORMAL: return x <= 0 ? 0 : gsl_cdf_lognormal_P(x, f->par[0], f->par[1]);
    case FAM_GAMMA: return x <= 0 ? 0 : gsl_cdf_gamma_P(x, f->par[0], f->par[1]);
    case FAM_EXPONENTIAL: return x <= 0 ? 0 : gsl_cdf_exponential_P(x, f->par[0]);
    case FAM_CONSTANT: return x >= f->par[0] ? 1 : 0;
    default: return quantile_cdf(f->qp, f->qv, f->nq, x);
  }
}

static double fam_inv(const fit_field *f, double u) {
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
static double numeric_draw(const fit_field *f, double u) {
  double x;
  if (f->fam == FAM_QUANTILES || f->fam == FAM_CONSTANT) {
    x = fam_inv(f, u);
  } else {
    double a = fam_cdf(f, f->lo), b = fam_cdf(f, f->hi);
    x = fam_inv(f, a + u * (b - a));
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
static void bounds_to_precision(fit_field *f) {
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
static void dates_in_range(fit_field *f) {
  const double dmin = ms_date_from_ymd(1, 1, 1), dmax = ms_date_from_ymd(9999, 12, 31);
#define CLAMP_DAY(x) ((x) = fmin(fmax((x), dmin), dmax))
  CLAMP_DAY(f->lo);
  CLAMP_DAY(f->hi);
  if (f->fam == FAM_CONSTANT) CLAMP_DAY(f->par[0]);
  if (f->fam == FAM_QUANTILES && f->qv)
    for (size_t i = 0; i < f->nq; i++) CLAMP_DAY(f->qv[i]);
#undef CLAMP_DAY
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

static ms_status fit_numeric_plain(fit_field *f, const ms_frame_col *c, size_t n_rows,
                                   const ms_fit_params *p) {
  size_t k = p->k_min;
  size_t np = n_rows - c->n_missing;
  double *x = ms__malloc((np ? np : 1) * sizeof *x);
  if (!x) return MS_ERR_NOMEM;
  size_t j = 0;
  for (size_t r = 0; r < n_rows; r++)
    if (!isnan(c->num[r])) x[j++] = c->num[r];
  qsort(x, np, sizeof *x, cmp_double);
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
  } else if (p->parametric && p->method != MS_FIT_METHOD_MST && f->kind != MS_FKIND_DATE) {
    double ll = ll_quantiles(f, x, np);
    f->aic_q = isfinite(ll) ? 2.0 * (double)m - 2 * ll : -INFINITY;
    if (isfinite(f->aic_q)) fit_parametric(f, x, np);
  }
  free(x);
  return MS_OK;
}

/* ---- DP numeric marginal ---- */

static double gauss(ms_rng_key k, uint64_t idx, double sigma) { return sigma * ms_rng_normal(k, idx, 0); }

/* Fixed log-scale grid: |v| < 1e-3 is the middle bin, then 2 bins per decade
 * from 1e-3 to 1e9 on each side (the outermost bins are open-ended). */
#define COARSE_PER_DECADE 2
#define COARSE_HALF (12 * COARSE_PER_DECADE)
#define COARSE_BINS (2 * COARSE_HALF + 1)
static int coarse_bin(double v) {
  double a = fabs(v);
  if (a < 1e-3) return COARSE_HALF;
  int j = (int)floor(COARSE_PER_DECADE * (log10(a) + 3));
  if (j < 0) j = 0;
  if (j > COARSE_HALF - 1) j = COARSE_HALF - 1;
  return v > 0 ? COARSE_HALF + 1 + j : COARSE_HALF - 1 - j;
}
static void coarse_edges(int b, double *lo, double *hi) {
  if (b == COARSE_HALF) {
    *lo = -1e-3, *hi = 1e-3;
    return;
  }
  int j = b > COARSE_HALF ? b - COARSE_HALF - 1 : COARSE_HALF - 1 - b;
  double a = pow(10, (double)j / COARSE_PER_DECADE - 3), c = pow(10, (double)(j + 1) / COARSE_PER_DECADE - 3);
  if (b > COARSE_HALF) *lo = a, *hi = c;
  else *lo = -c, *hi = -a;
}

/* A real column is generated at `decimals` decimals, so the released range
 * must hold a value with that many decimals (records rejects a spec whose
 * min..max holds none) and a constant must be one. The k-threshold range
 * always does: it spans the mean of the k smallest values to the mean of
 * the k largest, around the k-th smallest value, itself on the grid. The DP
 * range and constant come from histogram bin edges and need not: they move
 * onto the grid (post-processing of released values). */
static void dp_real_on_grid(fit_field *f) {
  if (f->kind != MS_FKIND_REAL) return;
  double s = pow(10, f->decimals);
  if (f->fam == FAM_CONSTANT) {
    f->par[0] = round(f->par[0] * s) / s;
    f->lo = f->hi = f->par[0];
  } else if (ceil(f->lo * s) > floor(f->hi * s)) {
    f->lo = floor(f->lo * s) / s;
    f->hi = ceil(f->hi * s) / s;
  }
}

/* Noisy counts made non-negative with the given total (post-processing):
 * when the positive counts add up to more than total, the Euclidean
 * projection onto {x >= 0, sum x = total}: x_b = max(c_b - t, 0), t > 0
 * chosen so they add up to total (bins of noise alone empty first); when
 * they add up to less, the positive counts scaled up to total (a bin at 0
 * stays 0). total <= 0 empties them all. */
ms_status ms__dp_project(double *c, size_t n, double total) {
  double pos = 0;
  for (size_t i = 0; i < n; i++) pos += c[i] > 0 ? c[i] : 0;
  if (!(total > 0) || pos <= total) {
    for (size_t i = 0; i < n; i++) c[i] = total > 0 && c[i] > 0 ? c[i] * total / pos : 0;
    return MS_OK;
  }
  double *s = ms__malloc(n * sizeof *s), t = 0, acc = 0;
  if (!s) return MS_ERR_NOMEM;
  memcpy(s, c, n * sizeof *s);
  qsort(s, n, sizeof *s, cmp_double);
  /* the k + 1 largest counts minus t add up to total, t below the next */
  for (size_t k = 0; k < n; k++) {
    acc += s[n - 1 - k];
    t = (acc - total) / (double)(k + 1);
    if (k + 1 == n || s[n - 2 - k] <= t) break;
  }
  free(s);
  for (size_t i = 0; i < n; i++) c[i] = c[i] > t ? c[i] - t : 0;
  return MS_OK;
}

/* The bins a histogram's data can be told to occupy (post-processing of
 * noisy counts of noise sd sigma). The core: the run of neighbouring bins
 * with the largest sum of (count - sigma), a negative count ending a run
 * (where the rows of the column add up), and every bin above z sigma, z the
 * level a bin of noise alone passes with probability 0.1 % over all n bins
 * (a second cluster). Then the bins of at least 2 sigma joined to the core
 * through neighbours of at least 2 sigma. Every other bin is set to 0. */
ms_status ms__dp_support(double *c, size_t n, double sigma) {
  if (!n) return MS_OK;
  double z = gsl_cdf_ugaussian_Qinv(0.001 / (double)n);
  /* a negative count (a bin that is surely empty) ends a run */
  size_t rlo = 0, rhi = 0;
  double best = -INFINITY, run = 0;
  for (size_t i = 0, start = 0; i < n; i++) {
    if (run <= 0 || c[i] < 0) run = 0, start = i;
    run += c[i] - sigma;
    if (run > best) best = run, rlo = start, rhi = i;
  }
  unsigned char *keep = ms__calloc(n, 1);
  if (!keep) return MS_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) keep[i] = (i >= rlo && i <= rhi && c[i] >= 0) || c[i] >= z * sigma;
  for (int grew = 1; grew;) {
    grew = 0;
    for (size_t i = 0; i < n; i++) {
      if (keep[i] || c[i] < 2 * sigma) continue;
      if ((i > 0 && keep[i - 1]) || (i + 1 < n && keep[i + 1])) keep[i] = 1, grew = 1;
    }
  }
  for (size_t i = 0; i < n; i++)
    if (!keep[i]) c[i] = 0;
  free(keep);
  return MS_OK;
}

/* A released missing count: below 3 sigma it cannot be told from a
 * complete column and is 0 (post-processing). */
double ms__dp_missing(double noisy, double sigma) { return noisy > 3 * sigma ? noisy : 0; }

#define FINE_MAX 64
/* A bin of a DP numeric histogram: values in [lo, hi). */
typedef struct {
  double lo, hi;
} dp_bin;

/* Dates under DP: a fixed grid of calendar years, DATE_Y0 to DATE_Y0 +
 * DATE_YEARS - 1 (the end years also hold the dates before and after). */
#define DATE_Y0 1850
#define DATE_YEARS 300
#define GRID_MAX DATE_YEARS
static int date_grid_bin(double v) {
  int y, m, d;
  ms_date_to_ymd((int32_t)floor(v), &y, &m, &d);
  y -= DATE_Y0;
  return y < 0 ? 0 : y >= DATE_YEARS ? DATE_YEARS - 1 : y;
}

/* The grid bin of v and, for bin g, its whole numbers [*m0, *m1] (0 when
 * it holds none) or its edges: the log grid, or calendar years for dates. */
static int grid_bin(int dates, double v) { return dates ? date_grid_bin(v) : coarse_bin(v); }

/* The whole numbers of grid bin g: [*m0, *m1]; 0 when it holds none. */
static int grid_whole(int g, double *m0, double *m1) {
  double a, b;
  coarse_edges(g, &a, &b);
  *m0 = ceil(a);
  *m1 = floor(b);
  if (coarse_bin(*m0) != g) *m0 += 1;
  if (coarse_bin(*m1) != g) *m1 -= 1;
  return *m1 >= *m0;
}

/* Splits [a, b] into at most s bins of equal width; for whole-number kinds
 * (integers, dates; a, b the first and last whole number) with edges at
 * half-integers, so each bin holds whole numbers only. Returns the bins
 * written. */
static int split_span(dp_bin *out, double a, double b, int s, int whole) {
  if (whole) {
    double nw = b - a + 1;
    if (nw < 1) return 0;
    if (s > nw) s = (int)nw;
    for (int k = 0; k < s; k++) {
      out[k].lo = a - 0.5 + floor(nw * k / s);
      out[k].hi = a - 0.5 + floor(nw * (k + 1) / s);
    }
    return s;
  }
  for (int k = 0; k < s; k++) {
    out[k].lo = a + (b - a) * k / s;
    out[k].hi = k + 1 == s ? b : a + (b - a) * (k + 1) / s;
  }
  return s;
}

/* The bin of value v among nb sorted, disjoint bins; a value outside every
 * bin (outside the released range, or in a gap) counts in the nearest. */
static int bin_of(const dp_bin *bins, int nb, double v) {
  int lo = 0, hi = nb; /* the last bin with bins[k].lo <= v */
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (bins[mid].lo <= v) lo = mid;
    else hi = mid;
  }
  if (v >= bins[lo].hi && lo + 1 < nb && bins[lo + 1].lo - v < v - bins[lo].hi) return lo + 1;
  return lo;
}

/* rho: this column's zCDP share. Releases, through Gaussian histograms of
 * L2 sensitivity 1 each, the grid bins the column occupies (unless its
 * bounds are declared), then a histogram of finer bins inside them;
 * everything else is post-processing. */
static ms_status fit_numeric_dp(fit_field *f, const ms_frame_col *c, size_t n_rows,
                                const ms_fit_params *p, double rho, double *noisy_total, size_t *clamped) {
  double blo = NAN, bhi = NAN, rho_h = rho, n_hat = NAN, sb = NAN;
  const int whole = f->kind == MS_FKIND_INTEGER || f->kind == MS_FKIND_DATE;
  for (size_t b = 0; b < p->n_bounds; b++)
    if (!strcmp(p->bound_columns[b], c->name)) blo = p->bound_lo[b], bhi = p->bound_hi[b];
  /* Spans to cut into fine bins: the declared bounds, or the grid bins
   * kept by the support test with their released counts. */
  int n_span = 0;
  const int dates = f->kind == MS_FKIND_DATE;
  double span_lo[GRID_MAX], span_hi[GRID_MAX], span_w[GRID_MAX];
  if (isnan(blo)) {
    const int G = dates ? DATE_YEARS : COARSE_BINS;
    double rho_b = rho / 2;
    sb = 1 / sqrt(2 * rho_b);
    rho_h = rho - rho_b;
    double cnt[GRID_MAX] = {0};
    for (size_t r = 0; r < n_rows; r++)
      if (!isnan(c->num[r])) cnt[grid_bin(dates, c->num[r])] += 1;
    ms_rng_key k = dp_key(p->seed, f->name, "range");
    n_hat = 0;
    for (int b = 0; b < G; b++) {
      cnt[b] += gauss(k, (uint64_t)b, sb);
      n_hat += cnt[b];
    }
    if (ms__dp_support(cnt, (size_t)G, sb)) return MS_ERR_NOMEM;
    for (int g = 0; g < G; g++) {
      if (cnt[g] <= 0) continue;
      double a, b;
      if (dates) {
        a = ms_date_from_ymd(DATE_Y0 + g, 1, 1);
        b = ms_date_from_ymd(DATE_Y0 + g + 1, 1, 1) - 1;
      } else if (whole ? !grid_whole(g, &a, &b) : (coarse_edges(g, &a, &b), 0)) {
        continue;
      }
      span_lo[n_span] = a, span_hi[n_span] = b, span_w[n_span++] = cnt[g];
    }
    if (!n_span) { /* no bin passed: the noisy mode (post-processing) */
      span_lo[0] = whole ? 0 : -1e-3, span_hi[0] = whole ? 0 : 1e-3, span_w[0] = 1, n_span = 1;
    }
  } else {
    if (whole) blo = ceil(blo), bhi = floor(bhi);
    if (f->kind == MS_FKIND_DATE) {
      /* dates a spec can write: years 1 to 9999 */
      blo = fmax(blo, ms_date_from_ymd(1, 1, 1));
      bhi = fmin(bhi, ms_date_from_ymd(9999, 12, 31));
    }
    if (!(bhi >= blo)) bhi = blo;
    span_lo[0] = blo, span_hi[0] = bhi, span_w[0] = 1, n_span = 1;
  }
  double sigma = 1 / sqrt(2 * rho_h);
  f->sigma = sigma;
  /* Fine bins: about 4 sigma of expected count each when a noisy row count
   * is known (post-processing of the grid histogram), else 32, shared among
   * the spans by their released counts. */
  int B = 32, smooth = 0, span_of[4 * GRID_MAX + FINE_MAX];
  if (isfinite(n_hat)) {
    double want = n_hat / (4 * sigma);
    B = want < 4 ? 4 : want > FINE_MAX ? FINE_MAX : (int)want;
    if ((smooth = !dates && want < MS__DP_SMOOTH_BINS)) B = MS__DP_SMOOTH_BINS; /* a smooth shape is tried */
  }
  double wsum = 0;
  for (int i = 0; i < n_span; i++) wsum += span_w[i];
  dp_bin bins[4 * GRID_MAX + FINE_MAX];
  int nb = 0;
  for (int i = 0; i < n_span; i++) {
    /* at least 4 per span of the log grid: a few rows at the edge of a
     * grid bin half a decade wide are then not spread over all of it (bins
     * of noise alone are emptied); a calendar year may be one bin */
    int sk = (int)floor(B * span_w[i] / wsum + 0.5), least = dates && isnan(blo) ? 1 : 4;
    int nb0 = nb;
    nb += split_span(bins + nb, span_lo[i], span_hi[i], sk < least ? least : sk, whole);
    while (nb0 < nb) span_of[nb0++] = i;
  }
  if (!nb) { /* a real span of width 0 cannot occur; whole spans hold a number */
    bins[0].lo = span_lo[0] - 0.5, bins[0].hi = span_lo[0] + 0.5, nb = 1;
  }
  double cnt[4 * GRID_MAX + FINE_MAX + 1] = {0}; /* cnt[nb]: missing */
  for (size_t r = 0; r < n_rows; r++) {
    double v = c->num[r];
    if (isnan(v)) {
      cnt[nb] += 1;
      continue;
    }
    *clamped += !isnan(blo) && (v < blo || v > bhi);
    cnt[bin_of(bins, nb, v)] += 1;
  }
  ms_rng_key k = dp_key(p->seed, f->name, "histogram");
  for (int b = 0; b <= nb; b++) cnt[b] += gauss(k, (uint64_t)b, sigma);
  /* Post-processing: the support test, then the counts projected onto
   * non-negative counts with the same (unbiased) total, which empties the
   * bins that hold noise alone instead of keeping their positive draws
   * (clamping at 0 adds about 0.4 sigma of mass to every empty bin and
   * spreads the column over its whole range); a missing count below 3 sigma
   * is released as 0, so a complete column stays complete. */
  double sm[4 * GRID_MAX + FINE_MAX], present = 0;
  for (int b = 0; b < nb; b++) present += sm[b] = cnt[b];
  if (smooth) {
    double e0[4 * GRID_MAX + FINE_MAX], e1[4 * GRID_MAX + FINE_MAX];
    for (int b = 0; b < nb; b++) e0[b] = bins[b].lo, e1[b] = bins[b].hi;
    f->qp = ms__malloc(MS__DP_SMOOTH_KNOTS * sizeof *f->qp);
    f->qv = ms__malloc(MS__DP_SMOOTH_KNOTS * sizeof *f->qv);
    if (!f->qp || !f->qv) return MS_ERR_NOMEM;
    int shaped = ms__dp_smooth_shape(e0, e1, cnt, (size_t)nb, sigma, span_of, span_w, (size_t)n_span, sb, f->qp,
                                     f->qv, MS__DP_SMOOTH_KNOTS);
    if (shaped < 0) return MS_ERR_NOMEM;
    if (shaped) {
      double missing = ms__dp_missing(cnt[nb], sigma);
      *noisy_total = present + missing;
      f->missing = sig6(present + missing > 0 ? missing / (present + missing) : 0);
      f->fam = FAM_QUANTILES, f->nq = MS__DP_SMOOTH_KNOTS;
      for (size_t j = 0; j < f->nq; j++) f->qp[j] = sig6(f->qp[j]), f->qv[j] = sig6(f->qv[j]);
      f->lo = whole ? ceil(f->qv[0]) : f->qv[0], f->hi = whole ? floor(f->qv[f->nq - 1]) : f->qv[f->nq - 1];
      dp_real_on_grid(f);
      return MS_OK;
    }
    free(f->qp), free(f->qv), f->qp = f->qv = NULL;
  }
  if (ms__dp_support(sm, (size_t)nb, sigma) || ms__dp_project(sm, (size_t)nb, present)) return MS_ERR_NOMEM;
  double missing = ms__dp_missing(cnt[nb], sigma);
  present = 0;
  for (int b = 0; b < nb; b++) present += sm[b];
  *noisy_total = present + missing;
  f->missing = sig6(present + missing > 0 ? missing / (present + missing) : 0);
  int first = 0, last = nb - 1;
  while (first < nb && sm[first] <= 0) first++;
  while (last >= 0 && sm[last] <= 0) last--;
  if (present <= 0 || first > last) {
    f->fam = FAM_CONSTANT;
    int mid = nb / 2;
    f->par[0] = sig6((bins[mid].lo + bins[mid].hi) / 2);
    if (whole) f->par[0] = round(f->par[0]);
    f->lo = f->hi = f->par[0];
    dp_real_on_grid(f);
    return MS_OK;
  }
  double vlo = bins[first].lo, vhi = bins[last].hi;
  f->lo = sig6(whole ? ceil(vlo) : vlo);
  f->hi = sig6(whole ? floor(vhi) : vhi);
  /* The quantile table is the projected histogram's own CDF: a knot at each
   * edge of a non-empty bin (piecewise linear inside a bin, as the counts
   * say), a gap between two non-empty bins kept as a step of 1e-6 in
   * probability, so no share of the column is spread over an empty stretch
   * of the range as fewer knots interpolated over it would. */
  size_t m = 0;
  f->qp = ms__malloc((2 * (size_t)nb + 2) * sizeof *f->qp);
  f->qv = ms__malloc((2 * (size_t)nb + 2) * sizeof *f->qv);
  if (!f->qp || !f->qv) return MS_ERR_NOMEM;
  f->fam = FAM_QUANTILES;
  double acc = 0;
  for (int b = first; b <= last; b++) {
    if (sm[b] <= 0) continue;
    double e0 = bins[b].lo, e1 = bins[b].hi;
    if (!m || sig6(e0) > f->qv[m - 1]) {
      f->qp[m] = m ? f->qp[m - 1] + 1e-6 : 0;
      f->qv[m++] = sig6(e0);
    }
    acc += sm[b];
    f->qp[m] = b == last ? 1 : sig6(acc / present);
    if (f->qp[m] <= f->qp[m - 1]) f->qp[m] = f->qp[m - 1] + 1e-6;
    f->qv[m++] = sig6(e1);
  }
  /* the last knot is probability 1: earlier ones bumped up to it go */
  while (m > 2 && f->qp[m - 2] >= 1) {
    f->qv[m - 2] = f->qv[m - 1];
    m--;
  }
  f->nq = m;
  if (f->qv[m - 1] <= f->qv[0]) {
    f->fam = FAM_CONSTANT;
    f->par[0] = whole ? round(f->qv[0]) : f->qv[0];
    f->lo = f->hi = f->par[0];
  }
  dp_real_on_grid(f);
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

static void normalise(double *p, size_t n) {
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
  ms_rng_key kk = dp_key(p->seed, f->name, "domain");
  double tot = 0;
  for (size_t i = 0; i < n_dom; i++) tot += dc[i] += gauss(kk, i, sigma);
  ms_status st = ms__dp_project(dc, n_dom, tot);
  tot = 0;
  for (size_t i = 0; i < n_dom && !st; i++) {
    st = add_cat(f, dom[i], dc[i]);
    tot += dc[i];
  }
  missing = ms__dp_missing(missing + gauss(kk, UINT64_MAX, sigma), sigma);
  *noisy_total = tot + missing;
  f->missing = tot + missing > 0 ? missing / (tot + missing) : 0;
  /* all noisy counts at 0: every label equally likely (post-processing) */
  if (!st && !(tot > 0))
    for (size_t i = 0; i < n_dom; i++) f->probs[i] = 1;
  free(dc);
  return st;
}

static ms_status fit_categorical(fit_field *f, const ms_frame_col *c, size_t n_rows,
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
    ms_rng_key kk = dp_key(p->seed, f->name, "levels");
    double sigma = 1 / sqrt(2 * rho);
    f->sigma = sigma;
    if (tau < (double)k) tau = (double)k;
    double tot = 0;
    for (size_t l = 0; l < L; l++) {
      double v = cnt[l] + gauss(kk, l, sigma);
      map[l] = -1;
      if (v > tau) {
        map[l] = (int32_t)f->n_cats;
        if ((st = add_cat(f, c->levels[l], v))) break;
        tot += v;
      }
    }
    /* The missing bin is a fixed bin: released without a threshold. Its
     * index (SIZE_MAX) is outside the level indices. */
    missing = ms__dp_missing(missing + gauss(kk, UINT64_MAX, sigma), sigma);
    tot += missing;
    *noisy_total = tot;
    f->missing = tot > 0 ? missing / tot : 0;
    if (f->n_cats == 0) st = add_cat(f, "other", 1);
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
  if (!st) normalise(f->probs, f->n_cats);
  f->missing = sig6(f->missing);
  return st;
}

static ms_status fit_bool(fit_field *f, const ms_frame_col *c, size_t n_rows,
                          const ms_fit_params *p, double rho, double *noisy_total) {
  double cnt[3] = {0, 0, (double)c->n_missing};
  for (size_t r = 0; r < n_rows; r++)
    if (!isnan(c->num[r])) cnt[c->num[r] != 0] += 1;
  if (rho > 0) {
    ms_rng_key kk = dp_key(p->seed, f->name, "bool");
    f->sigma = 1 / sqrt(2 * rho);
    for (int b = 0; b < 3; b++) {
      cnt[b] += gauss(kk, (uint64_t)b, f->sigma);
      if (cnt[b] < 0) cnt[b] = 0;
    }
    cnt[2] = ms__dp_missing(cnt[2], f->sigma);
  } else {
    for (int b = 0; b < 3; b++)
      if (cnt[b] < (double)p->k_min) cnt[b] = 0;
  }
  double tot = cnt[0] + cnt[1] + cnt[2];
  *noisy_total = tot;
  ms_status st = add_cat(f, "false", cnt[0]);
  if (!st) st = add_cat(f, "true", cnt[1]);
  if (st) return st;
  normalise(f->probs, 2);
  f->missing = sig6(tot > 0 ? cnt[2] / tot : 0);
  if (cnt[0] + cnt[1] <= 0) f->suppressed = 1, f->missing = 1;
  return MS_OK;
}

/* ---- copula ---- */

/* Nearest correlation matrix by eigenvalue clipping + unit-diagonal rescale;
 * then rounds to 4 decimals and checks Cholesky, clipping harder if needed. */
static ms_status repair_correlation(double *R, size_t d) {
  gsl_matrix *A = gsl_matrix_alloc(d, d), *V = gsl_matrix_alloc(d, d), *T = gsl_matrix_alloc(d, d);
  gsl_vector *ev = gsl_vector_alloc(d);
  gsl_eigen_symmv_workspace *ws = gsl_eigen_symmv_alloc(d);
  ms_status st = MS_OK;
  if (!A || !V || !T || !ev || !ws) {
    st = MS_ERR_NOMEM;
    goto out;
  }
  double floor_eig = 1e-3;
  double *orig = ms__malloc(d * d * sizeof *orig);
  if (!orig) {
    st = MS_ERR_NOMEM;
    goto out;
  }
  memcpy(orig, R, d * d * sizeof *R);
  for (int attempt = 0; attempt < 20; attempt++, floor_eig *= 2) {
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++) {
        double v = 0.5 * (orig[i * d + j] + orig[j * d + i]);
        if (!isfinite(v)) v = 0;
        gsl_matrix_set(A, i, j, i == j ? 1 : v);
      }
    if (gsl_eigen_symmv(A, ev, V, ws)) {
      st = MS_ERR_MATH;
      break;
    }
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++) {
        double s = 0;
        for (size_t l = 0; l < d; l++) {
          double e = gsl_vector_get(ev, l);
          if (e < floor_eig) e = floor_eig;
          s += gsl_matrix_get(V, i, l) * e * gsl_matrix_get(V, j, l);
        }
        R[i * d + j] = s;
      }
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++)
        if (i != j) R[i * d + j] /= sqrt(R[i * d + i] * R[j * d + j]);
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++) {
        double v = i == j ? 1 : round(R[i * d + j] * 1e4) / 1e4;
        if (j < i) v = R[j * d + i];
        R[i * d + j] = v;
      }
    for (size_t i = 0; i < d; i++) R[i * d + i] = 1;
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++) gsl_matrix_set(T, i, j, R[i * d + j]);
    if (gsl_linalg_cholesky_decomp1(T) == 0) break;
    if (attempt == 19) st = MS_ERR_MATH;
  }
  free(orig);
out:
  gsl_matrix_free(A);
  gsl_matrix_free(V);
  gsl_matrix_free(T);
  gsl_vector_free(ev);
  if (ws) gsl_eigen_symmv_free(ws);
  return st;
}

/* Per-row normal score of field f (NaN when missing or unmapped).
 * `ranks` (non-DP numeric) holds mid-rank based uniforms. */
static double cat_score(const fit_field *f, int idx) {
  double a = 0;
  for (int i = 0; i < idx; i++) a += f->probs[i];
  double b = a + f->probs[idx];
  if (b > 1) b = 1;
  double za = a <= 0 ? -INFINITY : gsl_cdf_ugaussian_Pinv(a);
  double zb = b >= 1 ? INFINITY : gsl_cdf_ugaussian_Pinv(b);
  double pa = isfinite(za) ? gsl_ran_ugaussian_pdf(za) : 0;
  double pb = isfinite(zb) ? gsl_ran_ugaussian_pdf(zb) : 0;
  double mass = b - a;
  return mass > 1e-12 ? (pa - pb) / mass : (isfinite(za) ? za : zb);
}

static ms_status normal_scores(double *z, const fit_field *f, const ms_frame_col *c, size_t n,
                               const int32_t *map, int dp) {
  if (f->kind == MS_FKIND_CATEGORICAL || f->kind == MS_FKIND_BOOL) {
    double sc[2] = {0, 0};
    double *lev = NULL;
    if (f->kind == MS_FKIND_BOOL) {
      sc[0] = cat_score(f, 0);
      sc[1] = cat_score(f, 1);
    } else {
      lev = ms__malloc((f->n_cats ? f->n_cats : 1) * sizeof *lev);
      if (!lev) return MS_ERR_NOMEM;
      for (size_t i = 0; i < f->n_cats; i++) lev[i] = cat_score(f, (int)i);
    }
    for (size_t r = 0; r < n; r++) {
      if (f->kind == MS_FKIND_BOOL) z[r] = isnan(c->num[r]) ? NAN : sc[c->num[r] != 0];
      else z[r] = c->code[r] < 0 || map[c->code[r]] < 0 ? NAN : lev[map[c->code[r]]];
    }
    free(lev);
    return MS_OK;
  }
  if (dp) {
    for (size_t r = 0; r < n; r++) {
      double v = c->num[r];
      if (isnan(v)) {
        z[r] = NAN;
        continue;
      }
      double u = fam_cdf(f, v);
      if (u < 0.001) u = 0.001;
      if (u > 0.999) u = 0.999;
      z[r] = gsl_cdf_ugaussian_Pinv(u);
    }
    return MS_OK;
  }
  /* Mid-ranks among present values. */
  size_t np = 0;
  size_t *idx = ms__malloc((n ? n : 1) * sizeof *idx);
  double *val = ms__malloc((n ? n : 1) * sizeof *val);
  if (!idx || !val) {
    free(idx);
    free(val);
    return MS_ERR_NOMEM;
  }
  for (size_t r = 0; r < n; r++) {
    z[r] = NAN;
    if (!isnan(c->num[r])) idx[np++] = r;
  }
  /* Sort row indices by value (stable by index through the pair). */
  typedef struct {
    double v;
    size_t r;
  } pair;
  pair *pr = ms__malloc((np ? np : 1) * sizeof *pr);
  if (!pr) {
    free(idx);
    free(val);
    return MS_ERR_NOMEM;
  }
  for (size_t i = 0; i < np; i++) pr[i].v = c->num[idx[i]], pr[i].r = idx[i];
  qsort(pr, np, sizeof *pr, cmp_double); /* first member is the double key */
  for (size_t i = 0; i < np;) {
    size_t j = i;
    while (j + 1 < np && pr[j + 1].v == pr[i].v) j++;
    double u = ((double)(i + j) / 2 + 0.5) / (double)np;
    double zz = gsl_cdf_ugaussian_Pinv(u);
    for (size_t t = i; t <= j; t++) z[pr[t].r] = zz;
    i = j + 1;
  }
  free(pr);
  free(idx);
  free(val);
  return MS_OK;
}

/* ---- latent correlations of coarse (categorical, bool) columns ----
 *
 * The scores above are E[Z | category]; their Pearson correlation is an
 * attenuated image of the latent correlation rho the copula needs (the
 * spec's and the sampler's category = interval of Phi(z)). With a
 * continuous column (normal score ~ Z itself), corr(s(C), Z) = rho * sd(s)
 * exactly, since E[s(C) Z] = E[s(C) E[Z | C]] = rho Var(s). Between two
 * coarse columns the expected score correlation is the sum over cells of the
 * bivariate-normal rectangle mass times the scores' product, increasing in
 * rho; it is inverted by bisection. Reference: Olsson (1979), "Maximum
 * likelihood estimation of the polychoric correlation coefficient",
 * Psychometrika 44, for the threshold model. */

/* P(X <= h, Y <= k) for standard normals with correlation r, |r| < 1:
 * Phi(h)Phi(k) + (1/2pi) int_0^asin(r) exp(-(h^2 - 2hk sin t + k^2) /
 * (2 cos^2 t)) dt (Plackett's identity, t = asin of the correlation), by
 * composite Simpson on 64 intervals (error < 1e-9 for |r| <= 0.999). */
static double bvn_cdf(double h, double k, double r) {
  if (h == -INFINITY || k == -INFINITY) return 0;
  if (h == INFINITY) return gsl_cdf_ugaussian_P(k);
  if (k == INFINITY) return gsl_cdf_ugaussian_P(h);
  double T = asin(r), acc = 0;
  const int n = 64;
  for (int i = 0; i <= n; i++) {
    double t = T * i / n, c = cos(t);
    double v = exp(-(h * h - 2 * h * k * sin(t) + k * k) / (2 * c * c));
    acc += v * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
  }
  return gsl_cdf_ugaussian_P(h) * gsl_cdf_ugaussian_P(k) + acc * (T / n) / 3 / (2 * M_PI);
}

/* Thresholds a[0..K] (a[0] = -inf, a[K] = +inf), scores s[0..K) and the
 * scores' standard deviation of a coarse field. */
static double coarse_levels(const fit_field *f, double *a, double *s) {
  size_t K = f->n_cats;
  double acc = 0, var = 0;
  a[0] = -INFINITY;
  for (size_t i = 0; i < K; i++) {
    acc += f->probs[i];
    a[i + 1] = i + 1 == K || acc >= 1 ? INFINITY : gsl_cdf_ugaussian_Pinv(acc);
    s[i] = cat_score(f, (int)i);
    var += f->probs[i] * s[i] * s[i];
  }
  return sqrt(var);
}

/* Expected correlation of the scores of two coarse fields at latent r. */
static double coarse_score_corr(const fit_field *fa, const double *a, const double *sa, double sda,
                                const fit_field *fb, const double *b, const double *sb, double sdb,
                                double r, double *grid) {
  size_t Ka = fa->n_cats, Kb = fb->n_cats;
  for (size_t i = 0; i <= Ka; i++)
    for (size_t j = 0; j <= Kb; j++) grid[i * (Kb + 1) + j] = bvn_cdf(a[i], b[j], r);
  double e = 0;
  for (size_t i = 0; i < Ka; i++)
    for (size_t j = 0; j < Kb; j++) {
      double P = grid[(i + 1) * (Kb + 1) + j + 1] - grid[i * (Kb + 1) + j + 1] -
                 grid[(i + 1) * (Kb + 1) + j] + grid[i * (Kb + 1) + j];
      e += P * sa[i] * sb[j];
    }
  return e / (sda * sdb);
}

static int is_coarse(const fit_field *f) {
  return f->kind == MS_FKIND_CATEGORICAL || f->kind == MS_FKIND_BOOL;
}

/* Replaces the score correlations in S (d x d over the copula members) of
 * pairs with a coarse member by latent correlations, clamped to +-0.999. */
static ms_status latent_correlations(ms_fit_model *m, double *S) {
  size_t d = m->n_cop, kmax = 2;
  for (size_t i = 0; i < d; i++)
    if (is_coarse(&m->f[m->cop[i]]) && m->f[m->cop[i]].n_cats > kmax) kmax = m->f[m->cop[i]].n_cats;
  double *a = ms__malloc((kmax + 1) * sizeof *a), *b = ms__malloc((kmax + 1) * sizeof *b);
  double *sa = ms__malloc(kmax * sizeof *sa), *sb = ms__malloc(kmax * sizeof *sb);
  double *grid = ms__malloc((kmax + 1) * (kmax + 1) * sizeof *grid);
  if (!a || !b || !sa || !sb || !grid) {
    free(a), free(b), free(sa), free(sb), free(grid);
    return MS_ERR_NOMEM;
  }
  const double lim = 0.999;
  for (size_t i = 0; i < d; i++)
    for (size_t j = i + 1; j < d; j++) {
      const fit_field *fa = &m->f[m->cop[i]], *fb = &m->f[m->cop[j]];
      int ca = is_coarse(fa), cb = is_coarse(fb);
      if (!ca && !cb) continue;
      double r = S[i * d + j], x;
      if (ca != cb) {
        double sd = coarse_levels(ca ? fa : fb, a, sa);
        x = sd > 0 ? r / sd : 0;
      } else {
        double sda = coarse_levels(fa, a, sa), sdb = coarse_levels(fb, b, sb);
        if (!(sda > 0 && sdb > 0)) {
          x = 0;
        } else {
          double lo = -lim, hi = lim;
          if (r <= coarse_score_corr(fa, a, sa, sda, fb, b, sb, sdb, lo, grid)) {
            x = lo;
          } else if (r >= coarse_score_corr(fa, a, sa, sda, fb, b, sb, sdb, hi, grid)) {
            x = hi;
          } else {
            for (int it = 0; it < 40; it++) {
              double mid = 0.5 * (lo + hi);
              if (coarse_score_corr(fa, a, sa, sda, fb, b, sb, sdb, mid, grid) < r)
                lo = mid;
              else
                hi = mid;
            }
            x = 0.5 * (lo + hi);
          }
        }
      }
      if (x > lim) x = lim;
      if (x < -lim) x = -lim;
      S[i * d + j] = S[j * d + i] = x;
    }
  free(a), free(b), free(sa), free(sb), free(grid);
  return MS_OK;
}

/* ---- mixture of copula marginals (non-DP) ----
 *
 * One Gaussian copula has one shape: it cannot draw a table whose rows fall
 * into groups that differ in many columns at once (three cultivars of a
 * wine, a town block with its own tax rate, pupil ratio and highway access).
 * The fit therefore looks for clusters: k-means on the rows' normal scores
 * (the copula members' scores through the global marginals; at most
 * MIX_ROWS rows, every step-th, read by the clustering), for K = 2 ..
 * MIX_MAX clusters of at least max(2k, MIX_MIN_ROWS) rows, each from
 * MIX_STARTS k-means++ starts keyed by (seed, "fit/mixture/<K>", start). K
 * is chosen by BIC of the Gaussian mixture the clusters define with one
 * covariance shared by all clusters (the spec's model: per-cluster
 * marginals, one correlation); K = 1 (no mixture) wins ties. With K >= 2 every member's
 * marginal is fitted again on each cluster's rows under the same k rules
 * (knots are means of k values of the cluster; categories and bool counts
 * below k in a cluster are 0 there), the cluster share is released, and the
 * correlation is that of the within-cluster normal scores. The spec holds a
 * hidden categorical field of the cluster and one `when` rule per cluster
 * beyond the first (docs/fit.md, "Clusters"). */
#define MIX_MAX 8
#define MIX_ROWS 4000
#define MIX_STARTS 4
#define MIX_ITERS 50
#define MIX_MIN_ROWS 30
#define MIX_RIDGE 0.01
#define MIX_KNOT_SHARE 10

static char *field_name(const char *h, char *const *taken, size_t n);

static double sqdist(const double *a, const double *b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

static size_t nearest(const double *x, const double *cen, size_t K, size_t d) {
  size_t best = 0;
  double bd = INFINITY;
  for (size_t c = 0; c < K; c++) {
    double v = sqdist(x, cen + c * d, d);
    if (v < bd) bd = v, best = c;
  }
  return best;
}

/* Lloyd's k-means from a k-means++ start; returns the within-cluster sum of
 * squares, labels in lab[0..n), centroids in cen[K*d]. */
static double kmeans(const double *X, size_t n, size_t d, size_t K, ms_rng_key key, uint64_t start,
                     int32_t *lab, double *cen, double *dist, size_t *cnt) {
  uint64_t draw = start * 1000003u;
  size_t first = (size_t)(ms_rng_uniform(key, draw++, 0) * (double)n);
  if (first >= n) first = n - 1;
  memcpy(cen, X + first * d, d * sizeof *cen);
  for (size_t r = 0; r < n; r++) dist[r] = sqdist(X + r * d, cen, d);
  for (size_t c = 1; c < K; c++) {
    double tot = 0;
    for (size_t r = 0; r < n; r++) tot += dist[r];
    double u = ms_rng_uniform(key, draw++, 0) * tot, acc = 0;
    size_t pick = n - 1;
    for (size_t r = 0; r < n; r++) {
      acc += dist[r];
      if (acc >= u && dist[r] > 0) {
        pick = r;
        break;
      }
    }
    memcpy(cen + c * d, X + pick * d, d * sizeof *cen);
    for (size_t r = 0; r < n; r++) {
      double v = sqdist(X + r * d, cen + c * d, d);
      if (v < dist[r]) dist[r] = v;
    }
  }
  for (size_t r = 0; r < n; r++) lab[r] = -1;
  for (int it = 0; it < MIX_ITERS; it++) {
    int moved = 0;
    for (size_t r = 0; r < n; r++) {
      int32_t c = (int32_t)nearest(X + r * d, cen, K, d);
      moved |= c != lab[r];
      lab[r] = c;
    }
    if (!moved) break;
    memset(cen, 0, K * d * sizeof *cen);
    memset(cnt, 0, K * sizeof *cnt);
    for (size_t r = 0; r < n; r++) {
      cnt[lab[r]]++;
      for (size_t i = 0; i < d; i++) cen[lab[r] * d + i] += X[r * d + i];
    }
    for (size_t c = 0; c < K; c++)
      for (size_t i = 0; i < d; i++) cen[c * d + i] = cnt[c] ? cen[c * d + i] / (double)cnt[c] : 0;
  }
  double ss = 0;
  for (size_t r = 0; r < n; r++) ss += sqdist(X + r * d, cen + lab[r] * d, d);
  return ss;
}

/* BIC of the Gaussian mixture with hard labels and one covariance shared by
 * the clusters (lower is better; NaN when it cannot be computed) -- the
 * model the spec draws from: cluster-specific marginals joined by one
 * correlation. A ridge of MIX_RIDGE keeps a column that is constant inside
 * the clusters from deciding alone. mu: K*d, S: d*d scratch. */
static double mix_bic(const double *X, size_t n, size_t d, size_t K, const int32_t *lab,
                      size_t *cnt, double *mu, gsl_matrix *S) {
  memset(cnt, 0, K * sizeof *cnt);
  memset(mu, 0, K * d * sizeof *mu);
  for (size_t r = 0; r < n; r++) {
    cnt[lab[r]]++;
    for (size_t i = 0; i < d; i++) mu[lab[r] * d + i] += X[r * d + i];
  }
  for (size_t c = 0; c < K; c++)
    for (size_t i = 0; i < d; i++) mu[c * d + i] /= cnt[c] ? (double)cnt[c] : 1;
  gsl_matrix_set_zero(S);
  for (size_t r = 0; r < n; r++) {
    const double *x = X + r * d, *m = mu + lab[r] * d;
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b <= a; b++) S->data[a * S->tda + b] += (x[a] - m[a]) * (x[b] - m[b]);
  }
  for (size_t a = 0; a < d; a++) {
    for (size_t b = 0; b <= a; b++) {
      double v = S->data[a * S->tda + b] / (double)n + (a == b ? MIX_RIDGE : 0);
      gsl_matrix_set(S, a, b, v);
      gsl_matrix_set(S, b, a, v);
    }
  }
  if (gsl_linalg_cholesky_decomp1(S)) return NAN;
  double logdet = 0;
  for (size_t a = 0; a < d; a++) logdet += 2 * log(gsl_matrix_get(S, a, a));
  double ll = -0.5 * (double)n * ((double)d * log(2 * M_PI) + logdet + (double)d);
  for (size_t c = 0; c < K; c++)
    if (cnt[c]) ll += (double)cnt[c] * log((double)cnt[c] / (double)n);
  double npar = (double)(K * d + K - 1);
  return -2 * ll + npar * log((double)n);
}

/* The cluster's marginal of copula member i (global field g, column c):
 * rows[0..nr) are the cluster's rows. */
static ms_status comp_marginal(fit_field *cf, const fit_field *g, const ms_frame_col *c,
                               const int32_t *map, const size_t *rows, size_t nr,
                               const ms_fit_params *p) {
  *cf = *g;
  cf->qp = cf->qv = cf->probs = NULL;
  cf->nq = 0;
  size_t k = p->k_min;
  if (g->kind == MS_FKIND_CATEGORICAL || g->kind == MS_FKIND_BOOL) {
    size_t nc = g->kind == MS_FKIND_BOOL ? 2 : g->n_cats;
    cf->probs = ms__calloc(nc ? nc : 1, sizeof *cf->probs);
    if (!cf->probs) return MS_ERR_NOMEM;
    if (g->zc_from >= 0) { /* drawn given another column instead */
      memcpy(cf->probs, g->probs, nc * sizeof *cf->probs);
      return MS_OK;
    }
    for (size_t t = 0; t < nr; t++) {
      size_t r = rows[t];
      if (g->kind == MS_FKIND_BOOL) {
        if (!isnan(c->num[r])) cf->probs[c->num[r] != 0] += 1;
      } else if (c->code[r] >= 0 && map[c->code[r]] >= 0) {
        cf->probs[map[c->code[r]]] += 1;
      }
    }
    double tot = 0;
    for (size_t l = 0; l < nc; l++) {
      if (cf->probs[l] < (double)k) cf->probs[l] = 0;
      tot += cf->probs[l];
    }
    for (size_t l = 0; l < nc; l++) cf->probs[l] = tot > 0 ? sig6(cf->probs[l] / tot) : g->probs[l];
    return MS_OK;
  }
  ms_frame_col sub = *c;
  sub.num = ms__malloc((nr ? nr : 1) * sizeof *sub.num);
  if (!sub.num) return MS_ERR_NOMEM;
  sub.n_missing = 0;
  for (size_t t = 0; t < nr; t++) {
    sub.num[t] = c->num[rows[t]];
    sub.n_missing += isnan(sub.num[t]);
  }
  ms_status st = MS_OK;
  if (nr - sub.n_missing < 2 * k) {
    /* too few values in the cluster: the global marginal */
    cf->qp = ms__malloc((g->nq ? g->nq : 1) * sizeof *cf->qp);
    cf->qv = ms__malloc((g->nq ? g->nq : 1) * sizeof *cf->qv);
    if (!cf->qp || !cf->qv) st = MS_ERR_NOMEM;
    else {
      if (g->nq) memcpy(cf->qp, g->qp, g->nq * sizeof *cf->qp);
      if (g->nq) memcpy(cf->qv, g->qv, g->nq * sizeof *cf->qv);
      cf->nq = g->nq;
    }
  } else {
    /* Knots from windows of at least a tenth of the cluster: a cluster's
     * table stays as coarse as the whole column's, never a trace of its
     * few rows. */
    ms_fit_params pc = *p;
    if (pc.k_min < nr / MIX_KNOT_SHARE) pc.k_min = nr / MIX_KNOT_SHARE;
    st = fit_numeric_plain(cf, &sub, nr, &pc);
  }
  free(sub.num);
  if (st) return st;
  /* The spec's bounds are the global ones (every cluster's first knot is a
   * mean of k values, never below the mean of the k smallest). */
  cf->lo = g->lo;
  cf->hi = g->hi;
  for (size_t i = 0; i < cf->nq; i++) cf->qv[i] = fmin(fmax(cf->qv[i], g->lo), g->hi);
  if (cf->fam == FAM_CONSTANT) cf->par[0] = fmin(fmax(cf->par[0], g->lo), g->hi);
  return MS_OK;
}

/* Clusters of the rows (see above); *lab_out: the cluster of each row
 * (caller frees), NULL when one cluster explains the rows best. */
static ms_status fit_mixture(ms_fit_model *m, const ms_frame *data, int32_t **maps,
                             const ms_fit_params *p, int32_t **lab_out) {
  *lab_out = NULL;
  const size_t d = m->n_cop, n = data->n_rows;
  const size_t min_rows = 2 * p->k_min > MIX_MIN_ROWS ? 2 * p->k_min : MIX_MIN_ROWS;
  size_t kmax = n / min_rows;
  if (kmax > MIX_MAX) kmax = MIX_MAX;
  if (d < 2 || kmax < 2) return MS_OK;
  const size_t step = (n + MIX_ROWS - 1) / MIX_ROWS, ns = (n + step - 1) / step;
  double *Z = ms__malloc(d * n * sizeof *Z), *X = ms__malloc(ns * d * sizeof *X);
  double *cen = ms__malloc(MIX_MAX * d * sizeof *cen), *best_cen = ms__malloc(MIX_MAX * d * sizeof *cen);
  double *dist = ms__malloc(ns * sizeof *dist), *mu = ms__malloc(MIX_MAX * d * sizeof *mu);
  gsl_matrix *S = gsl_matrix_alloc(d, d);
  int32_t *lab = ms__malloc(ns * sizeof *lab), *all = NULL;
  size_t *cnt = ms__malloc(MIX_MAX * sizeof *cnt), *rows = NULL;
  ms_status st = Z && X && cen && best_cen && dist && mu && S && lab && cnt ? MS_OK : MS_ERR_NOMEM;
  for (size_t i = 0; i < d && !st; i++) {
    size_t fi = m->cop[i];
    st = normal_scores(Z + i * n, &m->f[fi], &data->cols[fi], n, maps[fi], 0);
  }
  size_t best_k = 1;
  if (!st) {
    for (size_t t = 0; t < ns; t++)
      for (size_t i = 0; i < d; i++) {
        double v = Z[i * n + t * step];
        X[t * d + i] = isnan(v) ? 0 : v;
      }
    for (size_t t = 0; t < ns; t++) lab[t] = 0;
    double best_bic = mix_bic(X, ns, d, 1, lab, cnt, mu, S);
    for (size_t K = 2; K <= kmax; K++) {
      char nm[64];
      snprintf(nm, sizeof nm, "fit/mixture/%zu", K);
      ms_rng_key key = ms_rng_key_make(p->seed, ms_rng_stream(nm));
      double best_ss = INFINITY;
      for (uint64_t s = 0; s < MIX_STARTS; s++) {
        double ss = kmeans(X, ns, d, K, key, s, lab, cen, dist, cnt);
        if (ss < best_ss) best_ss = ss, memcpy(mu, cen, K * d * sizeof *cen);
      }
      memcpy(cen, mu, K * d * sizeof *cen);
      for (size_t t = 0; t < ns; t++) lab[t] = (int32_t)nearest(X + t * d, cen, K, d);
      double bic = mix_bic(X, ns, d, K, lab, cnt, mu, S);
      int small = 0;
      for (size_t c = 0; c < K; c++) small |= cnt[c] * step < min_rows;
      if (!small && bic < best_bic) { /* false for NaN */
        best_bic = bic, best_k = K;
        memcpy(best_cen, cen, K * d * sizeof *cen);
      }
    }
  }
  if (!st && best_k >= 2) {
    /* every row to its nearest centre; clusters ordered by size */
    all = ms__malloc((n ? n : 1) * sizeof *all);
    rows = ms__malloc((n ? n : 1) * sizeof *rows);
    double *zr = ms__malloc(d * sizeof *zr);
    if (!all || !rows || !zr) st = MS_ERR_NOMEM;
    size_t K = best_k, order[MIX_MAX], rank[MIX_MAX];
    if (!st) {
      memset(cnt, 0, K * sizeof *cnt);
      for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < d; i++) zr[i] = isnan(Z[i * n + r]) ? 0 : Z[i * n + r];
        all[r] = (int32_t)nearest(zr, best_cen, K, d);
        cnt[all[r]]++;
      }
      for (size_t c = 0; c < K; c++) order[c] = c;
      for (size_t a = 1; a < K; a++)
        for (size_t b = a; b > 0 && cnt[order[b]] > cnt[order[b - 1]]; b--) {
          size_t t = order[b];
          order[b] = order[b - 1];
          order[b - 1] = t;
        }
      for (size_t c = 0; c < K; c++) rank[order[c]] = c;
      for (size_t r = 0; r < n; r++) all[r] = (int32_t)rank[all[r]];
      int small = 0;
      for (size_t c = 0; c < K; c++) small |= cnt[order[c]] < min_rows;
      if (small) best_k = 1;
    }
    free(zr);
    if (!st && best_k >= 2) {
      m->comp = ms__calloc(K, sizeof *m->comp);
      if (!m->comp) st = MS_ERR_NOMEM;
      else m->n_comp = K;
      for (size_t c = 0; c < K && !st; c++) {
        fit_comp *cp = &m->comp[c];
        size_t nr = 0;
        for (size_t r = 0; r < n; r++)
          if ((size_t)all[r] == c) rows[nr++] = r;
        cp->n = nr;
        cp->w = sig6((double)nr / (double)n);
        cp->f = ms__calloc(d, sizeof *cp->f);
        if (!cp->f) {
          st = MS_ERR_NOMEM;
          break;
        }
        for (size_t i = 0; i < d && !st; i++) {
          size_t fi = m->cop[i];
          st = comp_marginal(&cp->f[i], &m->f[fi], &data->cols[fi], maps[fi], rows, nr, p);
        }
      }
    }
  }
  if (!st && best_k >= 2) {
    char **names = ms__malloc((m->n_fields ? m->n_fields : 1) * sizeof *names);
    if (!names) st = MS_ERR_NOMEM;
    else {
      for (size_t j = 0; j < m->n_fields; j++) names[j] = m->f[j].name;
      m->comp_name = field_name("cluster", names, m->n_fields);
      free(names);
      if (!m->comp_name) st = MS_ERR_NOMEM;
    }
  }
  if (!st && best_k >= 2) {
    *lab_out = all;
    all = NULL;
  } else if (st || best_k < 2) {
    comps_free(m->comp, m->n_comp, d);
    m->comp = NULL;
    m->n_comp = 0;
  }
  free(Z), free(X), free(cen), free(best_cen), free(dist), free(mu), free(lab);
  gsl_matrix_free(S);
  free(cnt), free(rows), free(all);
  return st;
}

/* Normal scores of copula member i with the marginal of each row's
 * cluster. */
static ms_status comp_scores(double *z, const ms_fit_model *m, size_t i, const ms_frame *data,
                             const int32_t *map, const int32_t *lab) {
  const size_t n = data->n_rows, fi = m->cop[i];
  const ms_frame_col *c = &data->cols[fi];
  size_t *rows = ms__malloc((n ? n : 1) * sizeof *rows);
  double *zs = ms__malloc((n ? n : 1) * sizeof *zs);
  ms_frame_col sub = *c;
  sub.num = NULL;
  sub.code = NULL;
  if (c->num) sub.num = ms__malloc((n ? n : 1) * sizeof *sub.num);
  if (c->code) sub.code = ms__malloc((n ? n : 1) * sizeof *sub.code);
  ms_status st = rows && zs && (!c->num || sub.num) && (!c->code || sub.code) ? MS_OK : MS_ERR_NOMEM;
  for (size_t k = 0; k < m->n_comp && !st; k++) {
    size_t nr = 0;
    sub.n_missing = 0;
    for (size_t r = 0; r < n; r++) {
      if ((size_t)lab[r] != k) continue;
      if (c->num) sub.num[nr] = c->num[r], sub.n_missing += isnan(c->num[r]);
      if (c->code) sub.code[nr] = c->code[r];
      rows[nr++] = r;
    }
    st = normal_scores(zs, &m->comp[k].f[i], &sub, nr, map, 0);
    for (size_t t = 0; t < nr && !st; t++) z[rows[t]] = zs[t];
  }
  free(rows), free(zs), free(sub.num), free(sub.code);
  return st;
}

static ms_status fit_copula(ms_fit_model *m, const ms_frame *data, int32_t **maps,
                            const ms_fit_params *p, const int32_t *lab) {
  size_t d = m->n_cop, n = data->n_rows;
  if (d < 2) return MS_OK;
  double *Z = ms__malloc(d * n * sizeof *Z);
  double *S = ms__calloc(d * d, sizeof *S);
  if (!Z || !S) {
    free(Z);
    free(S);
    return MS_ERR_NOMEM;
  }
  ms_status st = MS_OK;
  int dp = m->epsilon > 0;
  for (size_t i = 0; i < d && !st; i++) {
    size_t fi = m->cop[i];
    st = lab ? comp_scores(Z + i * n, m, i, data, maps[fi], lab)
             : normal_scores(Z + i * n, &m->f[fi], &data->cols[fi], n, maps[fi], dp);
  }
  if (st) goto out;
  if (!dp) {
    /* Pairwise-complete Pearson correlation of normal scores. */
    for (size_t a = 0; a < d; a++)
      for (size_t b = a; b < d; b++) {
        double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, cnt = 0;
        const double *za = Z + a * n, *zb = Z + b * n;
        for (size_t r = 0; r < n; r++) {
          if (isnan(za[r]) || isnan(zb[r])) continue;
          sa += za[r], sb += zb[r], saa += za[r] * za[r], sbb += zb[r] * zb[r];
          sab += za[r] * zb[r];
          cnt++;
        }
        double v = 0;
        if (cnt >= (double)p->k_min) {
          double cov = sab - sa * sb / cnt, va = saa - sa * sa / cnt, vb = sbb - sb * sb / cnt;
          v = va > 0 && vb > 0 ? cov / sqrt(va * vb) : 0;
        }
        S[a * d + b] = S[b * d + a] = a == b ? 1 : v;
      }
  } else {
    /* Clip each row's score vector to squared norm C2 (about the 98th
     * percentile of chi^2_d for Gaussian scores); then one row changes the
     * released off-diagonal upper triangle by at most sqrt(sum_{a<b} z_a^2
     * z_b^2) = sqrt((||z||^4 - sum z_a^4) / 2) <= C2 / sqrt(2). The
     * diagonal is not released. */
    double C2 = (double)d + 2 * sqrt(2.0 * (double)d);
    m->corr_clip = C2;
    double *zr = ms__malloc(d * sizeof *zr);
    if (!zr) {
      st = MS_ERR_NOMEM;
      goto out;
    }
    for (size_t r = 0; r < n; r++) {
      double nn = 0;
      for (size_t i = 0; i < d; i++) {
        zr[i] = isnan(Z[i * n + r]) ? 0 : Z[i * n + r];
        nn += zr[i] * zr[i];
      }
      double s = nn > C2 ? sqrt(C2 / nn) : 1;
      for (size_t a = 0; a < d; a++)
        for (size_t b = a; b < d; b++) S[a * d + b] += zr[a] * zr[b] * s * s;
    }
    free(zr);
    ms_rng_key k = dp_key(p->seed, "(copula)", "correlation");
    m->corr_sigma = C2 / sqrt(2) / sqrt(2 * m->rho_corr);
    for (size_t a = 0; a < d; a++)
      for (size_t b = a + 1; b < d; b++) S[a * d + b] += gauss(k, a * d + b, m->corr_sigma);
    /* Post-processing (gen/fit/dp_corr.c): normalise by the released
     * present counts, denoise. */
    for (size_t a = 0; a < d; a++) S[a * d + a] = (double)m->n_out * (1 - m->f[m->cop[a]].missing);
    st = ms__dp_corr_estimate(S, d, m->corr_sigma, &m->corr_shrink, &m->corr_components);
    if (st) goto out;
  }
  st = latent_correlations(m, S);
  if (!st) st = repair_correlation(S, d);
  if (!st) {
    m->corr = S;
    S = NULL;
  }
out:
  free(Z);
  free(S);
  return st;
}

/* ---- conditional missingness ---- */

static int is_identifier(const char *s) {
  static const char *const kw[] = {"and", "or", "not", "in", "true", "false", "if", NULL};
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
  for (const char *c = s; *c; c++)
    if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) return 0;
  for (int i = 0; kw[i]; i++)
    if (!strcmp(s, kw[i])) return 0;
  return 1;
}

typedef struct {
  int x, y, type;
  int32_t cat;
  double thr;
  double cell[4]; /* missing & cond, present & cond, missing & not cond, present & not cond */
} mcand;

/* 1 / 0 when the condition holds / does not, -1 when Y is missing. */
static int cond_at(const ms_frame_col *cy, const int32_t *map, int type, int32_t cat,
                   double thr, size_t r) {
  if (type == 1) {
    int32_t v = cy->code[r];
    if (v < 0 || map[v] < 0) return -1;
    return map[v] == cat;
  }
  double v = cy->num[r];
  if (isnan(v)) return -1;
  return type == 0 ? v != 0 : v < thr;
}

static double chi2_2x2(const double *c) {
  double a = c[0], b = c[1], cc = c[2], d = c[3], n = a + b + cc + d;
  double den = (a + b) * (cc + d) * (a + cc) * (b + d);
  return den > 0 ? n * (a * d - b * cc) * (a * d - b * cc) / den : 0;
}

/* Finds, for each column with enough missing values, the condition on one
 * other column that best explains its missingness (2x2 chi-square, 1 df,
 * above 10.83 = p < 0.001, rates at least 0.05 apart, every cell >= k rows;
 * under DP every cell of every candidate table is Gaussian-noised with the
 * tables' joint L2 sensitivity sqrt(T), cells must also exceed 3 sigma and
 * the test is a two-proportion z^2 whose variance includes the noise).
 * A column used as a condition gets no condition itself, so the spec has no
 * cycles. rho_avail: zCDP budget available (DP); the amount spent goes to
 * m->rho_miss. */
static ms_status fit_missingness(ms_fit_model *m, const ms_frame *data, int32_t **maps,
                                 const ms_fit_params *p, double rho_avail) {
  int dp = m->epsilon > 0;
  size_t nf = m->n_fields, cap = 64, nc = 0;
  mcand *cs = ms__malloc(cap * sizeof *cs);
  if (!cs) return MS_ERR_NOMEM;
  for (size_t x = 0; x < nf; x++) {
    fit_field *fx = &m->f[x];
    const ms_frame_col *cx = &data->cols[x];
    if (fx->kind == MS_FKIND_ID || fx->suppressed || fx->diff_a >= 0 || fx->sum_parts || fx->fd_from >= 0 ||
        fx->rel_base >= 0)
      continue;
    if (dp ? !(fx->missing >= 0.02 && fx->missing <= 0.98)
           : (cx->n_missing < p->k_min || data->n_rows - cx->n_missing < p->k_min))
      continue;
    for (size_t y = 0; y < nf; y++) {
      const fit_field *fy = &m->f[y];
      if (y == x || fy->suppressed || !is_identifier(fy->name)) continue;
      int types[16], nt = 0;
      int32_t cats[16];
      double thr = 0;
      if (fy->kind == MS_FKIND_BOOL && (!fy->btext[1] || !fy->btext[0] || strchr(fy->btext[1], '\'') || strchr(fy->btext[1], '\\')))
        continue;
      if (fy->kind == MS_FKIND_BOOL) types[nt] = 0, cats[nt++] = 0;
      else if (fy->kind == MS_FKIND_CATEGORICAL && fy->n_cats >= 2) {
        for (size_t l = 0; l < fy->n_cats && nt < 8; l++)
          if (!strchr(fy->cats[l], '\'') && !strchr(fy->cats[l], '\\')) types[nt] = 1, cats[nt++] = (int32_t)l;
      } else if ((fy->kind == MS_FKIND_INTEGER || fy->kind == MS_FKIND_REAL) && fy->fam != FAM_CONSTANT) {
        thr = sig6(fam_inv(fy, 0.5));
        if (fy->kind == MS_FKIND_INTEGER) thr = round(thr);
        types[nt] = 2, cats[nt++] = 0;
      }
      for (int t = 0; t < nt; t++) {
        if (nc == cap) {
          mcand *ncs = ms__realloc(cs, 2 * cap * sizeof *ncs);
          if (!ncs) {
            free(cs);
            return MS_ERR_NOMEM;
          }
          cs = ncs, cap *= 2;
        }
        mcand *c = &cs[nc++];
        memset(c, 0, sizeof *c);
        c->x = (int)x, c->y = (int)y, c->type = types[t], c->cat = cats[t], c->thr = thr;
        const ms_frame_col *cy = &data->cols[y];
        for (size_t r = 0; r < data->n_rows; r++) {
          int miss = cx->code ? cx->code[r] < 0 : isnan(cx->num[r]);
          int cd = cond_at(cy, maps[y], c->type, c->cat, c->thr, r) == 1;
          c->cell[(cd ? 0 : 2) + (miss ? 0 : 1)] += 1;
        }
      }
    }
  }
  double floor_cell = (double)p->k_min;
  if (dp && nc) {
    if (!(rho_avail > 0)) nc = 0;
    else {
      m->rho_miss = rho_avail;
      m->miss_sigma = sqrt((double)nc) / sqrt(2 * rho_avail);
      ms_rng_key k = dp_key(p->seed, "(missingness)", "tables");
      for (size_t i = 0; i < nc; i++)
        for (int q = 0; q < 4; q++) cs[i].cell[q] += gauss(k, 4 * (uint64_t)i + (uint64_t)q, m->miss_sigma);
      if (3 * m->miss_sigma > floor_cell) floor_cell = 3 * m->miss_sigma;
    }
  }
  int *used_as_cond = ms__calloc(nf + 1, sizeof *used_as_cond);
  if (!used_as_cond) {
    free(cs);
    return MS_ERR_NOMEM;
  }
  for (size_t x = 0; x < nf; x++) {
    if (used_as_cond[x]) continue;
    const mcand *best = NULL;
    double bchi = 10.83;
    for (size_t i = 0; i < nc; i++) {
      const mcand *c = &cs[i];
      if ((size_t)c->x != x || m->f[c->y].mc_col >= 0) continue;
      int ok = 1;
      for (int q = 0; q < 4; q++) ok &= c->cell[q] >= floor_cell;
      if (!ok) continue;
      double ra = c->cell[0] / (c->cell[0] + c->cell[1]), rb = c->cell[2] / (c->cell[2] + c->cell[3]);
      double chi = chi2_2x2(c->cell);
      if (m->miss_sigma > 0) {
        /* Under DP the test must see the noise: a two-proportion z statistic
         * whose variance adds the noise of the four cells. */
        double na = c->cell[0] + c->cell[1], nb = c->cell[2] + c->cell[3], s2 = m->miss_sigma * m->miss_sigma;
        double v = ra * (1 - ra) / na + rb * (1 - rb) / nb + 2 * s2 / (na * na) + 2 * s2 / (nb * nb);
        chi = v > 0 ? (ra - rb) * (ra - rb) / v : 0;
      }
      if (fabs(ra - rb) >= 0.05 && chi > bchi) bchi = chi, best = c;
    }
    if (!best) continue;
    fit_field *fx = &m->f[x];
    const fit_field *fy = &m->f[best->y];
    fx->mc_col = best->y;
    fx->mc_type = best->type;
    fx->mc_cat = best->cat;
    fx->mc_thr = best->thr;
    fx->mc_chi2 = sig6(bchi);
    fx->mc_rate = sig6(best->cell[0] / (best->cell[0] + best->cell[1]));
    fx->missing = sig6(best->cell[2] / (best->cell[2] + best->cell[3]));
    used_as_cond[best->y] = 1;
    int rc = best->type == 0 && fy->btext[1] && strcmp(fy->btext[1], "true") ? ms__asprintf(&fx->mc_expr, "%s == '%s'", fy->name, fy->btext[1])
             : best->type == 0 ? ms__asprintf(&fx->mc_expr, "%s", fy->name)
             : best->type == 1 ? ms__asprintf(&fx->mc_expr, "%s == '%s'", fy->name, fy->cats[best->cat])
                               : ms__asprintf(&fx->mc_expr, "%s < %.10g", fy->name, best->thr);
    if (rc < 0) {
      fx->mc_expr = NULL;
      free(cs);
      free(used_as_cond);
      return MS_ERR_NOMEM;
    }
  }
  free(used_as_cond);
  free(cs);
  return MS_OK;
}

/* ---- names and the input's formats ---- */

static int is_keyword(const char *s) {
  static const char *const kw[] = {"and", "or", "not", "in", "true", "false", "if", "parent", NULL};
  for (int i = 0; kw[i]; i++)
    if (!strcmp(s, kw[i])) return 1;
  return 0;
}

/* An identifier for header h, unique among taken[0..n): other characters
 * become '_' (runs collapsed), a leading digit gets "c_", keywords a
 * trailing '_', and a clash a suffix _2, _3, ... Returns NULL when out of
 * memory. */
static char *field_name(const char *h, char *const *taken, size_t n) {
  char base[64];
  size_t o = 0;
  /* a leading digit, also after characters that are dropped (" 8") */
  const char *c0 = h;
  while (*c0 && !((*c0 >= 'A' && *c0 <= 'Z') || (*c0 >= 'a' && *c0 <= 'z') || (*c0 >= '0' && *c0 <= '9'))) c0++;
  if (*c0 >= '0' && *c0 <= '9') base[o++] = 'c', base[o++] = '_';
  for (const char *c = h; *c && o < 56; c++) {
    int ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9');
    if (ok) base[o++] = *c;
    else if (o && base[o - 1] != '_') base[o++] = '_';
  }
  while (o > 1 && base[o - 1] == '_') o--;
  if (o == 0 || (o == 1 && base[0] == '_')) o = 0, base[o++] = 'c';
  base[o] = '\0';
  if (is_keyword(base)) base[o++] = '_', base[o] = '\0';
  char cand[80];
  snprintf(cand, sizeof cand, "%s", base);
  for (int t = 2;; t++) {
    int clash = 0;
    for (size_t i = 0; i < n && !clash; i++) clash = taken[i] && !strcmp(taken[i], cand);
    if (!clash) break;
    snprintf(cand, sizeof cand, "%s_%d", base, t);
  }
  return ms__strdup(cand);
}

/* An identifier column keeps its pattern when every value is the same
 * prefix (no digits) followed by digits only: fresh values are then prefix +
 * a block of numbers holding no real one (docs/fit.md). Anything else
 * mostly unique is free text. */
static ms_status classify_id(fit_field *f, const ms_frame_col *c, uint64_t n_out) {
  size_t plen = 0;
  int width = -1, ok = c->n_levels > 0;
  for (size_t l = 0; l < c->n_levels && ok; l++) {
    const char *s = c->levels[l];
    size_t pl = 0;
    while (s[pl] && !(s[pl] >= '0' && s[pl] <= '9')) pl++;
    size_t dl = strspn(s + pl, "0123456789");
    if (!dl || s[pl + dl] || dl > 15) ok = 0;
    else if (l == 0) plen = pl, width = (int)dl;
    else if (pl != plen || strncmp(s, c->levels[0], pl)) ok = 0;
    else if ((int)dl != width) width = 0;
  }
  if (!ok) {
    /* Codes (letters, digits, - _ . / : with no spaces) are identifiers
     * without a digit pattern: 1, 2, ...; anything else is free text. */
    int code = 1;
    for (size_t l = 0; l < c->n_levels && code; l++)
      for (const char *q = c->levels[l]; *q && code; q++)
        code = (*q >= '0' && *q <= '9') || (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
               strchr("-_./:", *q);
    if (!code) f->text = 1;
    f->id_start = 1;
    return MS_OK;
  }
  if (!(f->id_prefix = ms__malloc(plen + 1))) return MS_ERR_NOMEM;
  memcpy(f->id_prefix, c->levels[0], plen);
  f->id_prefix[plen] = '\0';
  f->id_width = width > 0 ? width : 0;
  /* Blocks of `step` numbers (a power of ten at least ten times the row
   * count): the first block without a real number starts the sequence. The
   * start is a round number, not a real one. */
  uint64_t want = n_out * 10 + 10, step = 1;
  while (step < want) step *= 10;
  double *v = ms__malloc((c->n_levels ? c->n_levels : 1) * sizeof *v);
  if (!v) return MS_ERR_NOMEM;
  for (size_t l = 0; l < c->n_levels; l++) v[l] = strtod(c->levels[l] + plen, NULL);
  qsort(v, c->n_levels, sizeof *v, cmp_double);
  uint64_t start = 0;
  size_t i = 0;
  for (;; start += step) {
    while (i < c->n_levels && v[i] < (double)start) i++;
    if (i == c->n_levels || v[i] >= (double)(start + step)) break;
  }
  free(v);
  f->id_start = start ? (int64_t)start : 1;
  if (f->id_width && (double)start + (double)step > pow(10, f->id_width)) f->id_width = 0;
  return MS_OK;
}

/* ---- main entry ---- */

/* The spec language's rule for table and field names (docs/spec.md):
 * letters, digits and _, not starting with a digit, at most 63 characters. */
static int spec_name_ok(const char *s) {
  if (!s || !*s || strlen(s) > 63 || (*s >= '0' && *s <= '9')) return 0;
  for (const char *c = s; *c; c++)
    if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
      return 0;
  return 1;
}

/* The table name is the user's (--table) and is used as given; column
 * headers need no check: each becomes a field name made from it (field_name)
 * and, when that differs, the header is the field's label. */
static ms_status check_names(const ms_frame *data, const ms_fit_params *p, ms_diag *d) {
  (void)data;
  if (p->table && !spec_name_ok(p->table))
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL,
                       "table name \"%s\" is not a valid spec name (letters, digits and _, not "
                       "starting with a digit, at most 63 characters)", p->table);
  return MS_OK;
}

static ms_status fit_table(ms_fit_model **out, const ms_frame *data, const ms_fit_params *p,
                           ms_diag *d);

/* MST under DP (gen/fit/mst.c): every fitted column with a released
 * marginal of at least two values joins the tree. */
static ms_status fit_mst(ms_fit_model *m, const ms_frame *data, int32_t **maps, double rho_select,
                         double rho_edges, const ms_fit_params *p, ms_diag *d) {
  ms__mst_col *cols = ms__calloc(m->n_fields ? m->n_fields : 1, sizeof *cols);
  const char **names = ms__malloc((m->n_fields ? m->n_fields : 1) * sizeof *names);
  size_t n = 0;
  if (!cols || !names) {
    free(cols);
    free(names);
    return MS_ERR_NOMEM;
  }
  for (size_t j = 0; j < m->n_fields; j++) {
    const fit_field *f = &m->f[j];
    const ms_frame_col *c = &data->cols[j];
    names[j] = f->name;
    if (f->kind == MS_FKIND_ID || f->suppressed || f->diff_a >= 0 || f->fd_from >= 0 || f->rel_base >= 0)
      continue;
    ms__mst_col *mc = &cols[n];
    mc->name = f->name;
    mc->field = j;
    mc->missing = f->missing;
    mc->sigma = f->sigma;
    if (f->kind == MS_FKIND_CATEGORICAL) {
      if (f->n_cats < 2 || !maps[j]) continue;
      mc->kind = MS__MST_CAT;
      mc->code = c->code;
      mc->map = maps[j];
      mc->n_cats = f->n_cats;
      mc->probs = f->probs;
      mc->labels = (const char *const *)f->cats;
    } else if (f->kind == MS_FKIND_BOOL) {
      mc->kind = MS__MST_BOOL;
      mc->num = c->num;
      mc->probs = f->probs;
      int labels = (f->btext[0] || f->btext[1]) &&
                   !(f->btext[0] && f->btext[1] && !strcmp(f->btext[0], "false") && !strcmp(f->btext[1], "true"));
      mc->labels = labels ? (const char *const *)f->btext : NULL;
    } else {
      if (f->fam != FAM_QUANTILES || f->nq < 2 || !(f->qv[0] < f->qv[f->nq - 1])) continue;
      mc->kind = MS__MST_NUM;
      mc->num = c->num;
      mc->qp = f->qp;
      mc->qv = f->qv;
      mc->nq = f->nq;
      mc->date = f->kind == MS_FKIND_DATE;
      mc->step = f->kind == MS_FKIND_REAL ? pow(10, -f->decimals) : f->has_time ? 0 : 1;
    }
    n++;
  }
  /* Rebalancing: the column is the tree's root, its label weights in the
   * order of its released labels. */
  size_t root = 0;
  double *w = NULL;
  ms_status st = MS_OK;
  if (p->rebalance_column) {
    root = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
      if (!strcmp(data->cols[cols[i].field].name, p->rebalance_column)) root = i;
    if (root == SIZE_MAX) {
      st = ms_diag_add(d, MS_ERR_INVALID, data->source, 0, 0, p->rebalance_column,
                       "--rebalance: the column has fewer than two released labels; nothing to rebalance");
    } else {
      const ms__mst_col *rc = &cols[root];
      size_t nl = rc->kind == MS__MST_CAT ? rc->n_cats : 2;
      if (!(w = ms__calloc(nl, sizeof *w))) st = MS_ERR_NOMEM;
      for (size_t l = 0; !st && l < nl; l++) w[l] = p->n_rebalance_weights ? 0 : 1;
      if (!st && p->n_rebalance_weights && !p->rebalance_labels && p->n_rebalance_weights != nl)
        st = ms_diag_add(d, MS_ERR_INVALID, data->source, 0, 0, p->rebalance_column,
                         "--rebalance: %zu weights for %zu released labels (in this order: see the spec's "
                         "values of the column)", p->n_rebalance_weights, nl);
      for (size_t q = 0; !st && q < p->n_rebalance_weights; q++) {
        size_t l = q;
        if (p->rebalance_labels) {
          l = SIZE_MAX;
          for (size_t k = 0; k < nl; k++) {
            const char *lab = rc->labels ? rc->labels[k] : k ? "true" : "false";
            if (lab && !strcmp(lab, p->rebalance_labels[q])) l = k;
          }
          if (l == SIZE_MAX) {
            st = ms_diag_add(d, MS_ERR_INVALID, data->source, 0, 0, p->rebalance_column,
                             "--rebalance: \"%s\" is not a released label of the column",
                             p->rebalance_labels[q]);
            break;
          }
        }
        w[l] = p->rebalance_weights[q];
      }
      double ws = 0;
      for (size_t l = 0; !st && l < nl; l++) ws += w[l];
      if (!st && !(ws > 0))
        st = ms_diag_add(d, MS_ERR_INVALID, data->source, 0, 0, p->rebalance_column,
                         "--rebalance: the weights of the released labels do not add up to a positive number");
    }
  }
  if (!st)
    st = ms__mst_fit(&m->mst, cols, n, data->n_rows, (double)m->n_out, rho_select, rho_edges, m->seed,
                     m->k_min, root, w, names, m->n_fields);
  free(w);
  free(cols);
  free(names);
  return st;
}

/* The fit; an allocation failure that no step reported gets one message
 * naming the input. */
ms_status ms_fit(ms_fit_model **out, const ms_frame *data, const ms_fit_params *p, ms_diag *d) {
  size_t first = d ? d->count : 0;
  ms_status st = fit_table(out, data, p, d);
  if (st == MS_ERR_NOMEM && ms__diag_find(d, first, MS_ERR_NOMEM) == SIZE_MAX)
    ms__diag_nomem(d, data->source, NULL, "the fit");
  return st;
}


/* ---- the clusters' copy check ----
 *
 * Clusters make the synthetic rows more like the real ones; on a small table
 * of coarse values (one decimal, few distinct values per group) they can
 * make them equal to real rows. The clusters are therefore kept only when
 * rows drawn from the model with them do not repeat a real training row
 * (every column as written, identifiers left out) clearly more often than
 * rows drawn from one copula: more than 1.5 times as often plus three
 * Poisson standard deviations, in MIX_CHECK_ROWS (or ten times the table's)
 * rows each. */
#define MIX_CHECK_ROWS 20000

static char *row_text(const ms_frame *f, size_t r, char *buf, size_t cap) {
  size_t o = 0;
  for (size_t j = 0; j < f->n_cols && o + 2 < cap; j++) {
    if (f->cols[j].kind == MS_FKIND_ID) continue;
    ms_frame_cell_text(f, r, j, buf + o, cap - o - 1);
    o += strlen(buf + o);
    buf[o++] = '\x1f';
    buf[o] = '\0';
  }
  return buf;
}

/* Rows of an ns-row sample of m equal to a row of the set; -1 when out of
 * memory (or a failed sample, whose message is in d). */
static long copies_of(const ms_fit_model *m, const ms__strtab *real, size_t ns, uint64_t seed,
                      ms_diag *d) {
  ms_frame *syn = NULL;
  if (ms_fit_model_sample(&syn, m, ns, seed, 0, d) != MS_OK) return -1;
  long hits = 0;
  char *buf = ms__malloc(65536);
  if (!buf) hits = -1;
  for (size_t r = 0; r < syn->n_rows && hits >= 0; r++)
    hits += ms__strtab_find(real, row_text(syn, r, buf, 65536)) >= 0;
  free(buf);
  ms_frame_free(syn);
  return hits;
}

static ms_status mixture_copy_check(ms_fit_model *m, const ms_frame *orig, const ms_frame *data,
                                    int32_t **maps, const ms_fit_params *p, ms_diag *d) {
  ms__strtab real;
  if (ms__strtab_init(&real)) return MS_ERR_NOMEM;
  char *buf = ms__malloc(65536);
  ms_status st = buf ? MS_OK : MS_ERR_NOMEM;
  for (size_t r = 0; r < orig->n_rows && !st; r++)
    if (ms__strtab_intern(&real, row_text(orig, r, buf, 65536)) == -2) st = MS_ERR_NOMEM;
  free(buf);
  size_t ns = orig->n_rows * 10 < MIX_CHECK_ROWS ? orig->n_rows * 10 : MIX_CHECK_ROWS;
  uint64_t seed = p->seed ^ 0x6d69786368656bULL;
  long with = st ? -1 : copies_of(m, &real, ns, seed, d);
  /* the same model without clusters */
  fit_comp *comp = m->comp;
  size_t n_comp = m->n_comp;
  double *corr = m->corr;
  m->comp = NULL, m->n_comp = 0, m->corr = NULL;
  if (!st && with >= 0) st = fit_copula(m, data, maps, p, NULL);
  long without = !st && with >= 0 ? copies_of(m, &real, ns, seed, d) : -1;
  ms__strtab_deinit(&real, 1);
  if (!st && (with < 0 || without < 0)) st = MS_ERR_NOMEM;
  if (!st && (double)with > 1.5 * (double)without + 3 * sqrt((double)without + 1)) {
    m->mix_rejected = n_comp, m->mix_copies[0] = with, m->mix_copies[1] = without, m->mix_rows = ns;
    comps_free(comp, n_comp, m->n_cop);
    free(corr);
    free(m->comp_name);
    m->comp_name = NULL;
    return MS_OK;
  }
  free(m->corr);
  m->comp = comp, m->n_comp = n_comp, m->corr = corr;
  return st;
}


/* A coarse field the spec writes as labels: categorical, or bool with its
 * own spellings; its emitted labels and their number. */
static int labelled(const fit_field *f) {
  if (f->kind == MS_FKIND_CATEGORICAL) return 1;
  return f->kind == MS_FKIND_BOOL && (f->btext[0] || f->btext[1]) &&
         !(f->btext[0] && f->btext[1] && !strcmp(f->btext[0], "false") && !strcmp(f->btext[1], "true"));
}
static size_t n_labels(const fit_field *f) { return f->kind == MS_FKIND_BOOL ? 2 : f->n_cats; }
static const char *label_of(const fit_field *f, size_t l) {
  return f->kind == MS_FKIND_BOOL ? f->btext[l] : f->cats[l];
}
/* The emitted label index of row r (-1: missing or not released). */
static int32_t emitted(const fit_field *f, const ms_frame_col *c, const int32_t *map, size_t r) {
  if (f->kind == MS_FKIND_BOOL) return isnan(c->num[r]) ? -1 : c->num[r] != 0;
  return c->code[r] < 0 || !map ? -1 : map[c->code[r]];
}

/* The public inputs of the fit (--bounds, --domain, --rebalance, delta)
 * against the table: every error at once, each naming its option. */
static ms_status check_public_inputs(const ms_frame *data, const ms_fit_params *p, ms_diag *d) {
  ms_status st = MS_OK;
#define BAD(...) (st = ms_diag_add(d, MS_ERR_INVALID, data->source, 0, 0, NULL, __VA_ARGS__))
  if (p->epsilon > 0 && p->delta > 0 && p->delta >= 1.0 / (double)data->n_rows)
    BAD("--delta %g is not below 1/n = 1/%zu: a delta that large allows releasing a row outright", p->delta,
        data->n_rows);
  for (size_t b = 0; b < p->n_bounds; b++) {
    size_t j = ms_frame_find(data, p->bound_columns[b]);
    if (j == SIZE_MAX)
      BAD("--bounds: no column \"%s\"", p->bound_columns[b]);
    else if (!(p->bound_hi[b] > p->bound_lo[b]))
      BAD("--bounds for \"%s\": low must be < high", p->bound_columns[b]);
    else if (data->cols[j].kind != MS_FKIND_INTEGER && data->cols[j].kind != MS_FKIND_REAL &&
             data->cols[j].kind != MS_FKIND_DATE)
      BAD("--bounds: column \"%s\" is %s; bounds are for integer, real and date columns", p->bound_columns[b],
          ms_fkind_name(data->cols[j].kind));
  }
  for (size_t i = 0; i < p->n_domains; i++) {
    size_t j = ms_frame_find(data, p->domain_columns[i]);
    if (j == SIZE_MAX)
      BAD("--domain: no column \"%s\"", p->domain_columns[i]);
    else if (data->cols[j].kind != MS_FKIND_CATEGORICAL)
      BAD("--domain: column \"%s\" is %s; a domain is for categorical columns (--types %s=categorical)",
          p->domain_columns[i], ms_fkind_name(data->cols[j].kind), p->domain_columns[i]);
    else if (p->domain_first[i + 1] <= p->domain_first[i])
      BAD("--domain for \"%s\": no labels", p->domain_columns[i]);
  }
  if (p->rebalance_column) {
    size_t j = ms_frame_find(data, p->rebalance_column);
    double sum = 0;
    for (size_t w = 0; w < p->n_rebalance_weights; w++) {
      if (!(p->rebalance_weights[w] >= 0) || !isfinite(p->rebalance_weights[w]))
        BAD("--rebalance %s: weight %g is not a finite number >= 0", p->rebalance_column, p->rebalance_weights[w]);
      sum += p->rebalance_weights[w];
    }
    if (j == SIZE_MAX)
      BAD("--rebalance: no column \"%s\"", p->rebalance_column);
    else if (data->cols[j].kind != MS_FKIND_CATEGORICAL && data->cols[j].kind != MS_FKIND_BOOL)
      BAD("--rebalance: column \"%s\" is %s; rebalancing is for categorical and bool columns",
          p->rebalance_column, ms_fkind_name(data->cols[j].kind));
    if (p->n_rebalance_weights && !(sum > 0))
      BAD("--rebalance %s: the weights do not add up to a positive number", p->rebalance_column);
    if (p->method != MS_FIT_METHOD_MST)
      BAD("--rebalance needs --method mst (the tree keeps every relation to the column)");
  }
#undef BAD
  return st;
}

static ms_status fit_table(ms_fit_model **out, const ms_frame *data, const ms_fit_params *p,
                           ms_diag *d) {
  *out = NULL;
  ms_fit_params defaults;
  if (!p) ms_fit_params_init(&defaults), p = &defaults;
  if (p->epsilon < 0 || !isfinite(p->epsilon))
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL,
                       "epsilon must be a positive number (got %g)", p->epsilon);
  if (p->delta < 0 || p->delta >= 1)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "delta must be in [0, 1) (got %g)",
                       p->delta);
  if (p->k_min < 1) return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "k-min must be >= 1");
  if (data->n_rows < 2 * p->k_min)
    return ms_diag_add(d, MS_ERR_DATA, data->source, 0, 0, NULL,
                       "%zu data row%s: fitting needs at least 2*k = %zu rows", data->n_rows,
                       data->n_rows == 1 ? "" : "s", 2 * p->k_min);
  ms_status nst = check_names(data, p, d);
  if (nst != MS_OK) return nst;
  for (size_t q = 0; q < p->n_quasi_identifiers; q++)
    if (ms_frame_find(data, p->quasi_identifiers[q]) == SIZE_MAX)
      return ms_diag_add(d, MS_ERR_INVALID, data->source, 0, 0, NULL,
                         "quasi-identifier \"%s\" is not a column", p->quasi_identifiers[q]);
  if ((nst = check_public_inputs(data, p, d)) != MS_OK) return nst;
  ms_fit_model *m = ms__calloc(1, sizeof *m);
  if (!m) return ms__diag_nomem(d, data->source, NULL, "the fitted model");
  ms_status st = MS_OK;
  /* The fit reads a view of the data in which a discrete numeric column (at
   * most MS_FRAME_DISCRETE_MAX distinct values) is a categorical of its
   * values' spellings, in increasing order. */
  const ms_frame *orig = data;
  /* Deterministic relations (not under DP: finding them reads every row). */
  ms__rel *rels = NULL;
  size_t n_rels = 0;
  if (p->epsilon == 0 && (st = ms__relations_find(orig, p->k_min, &rels, &n_rels))) {
    free(m);
    return st;
  }
  ms_frame view = *data;
  view.cols = ms__malloc((data->n_cols ? data->n_cols : 1) * sizeof *view.cols);
  if (!view.cols) {
    ms__relations_free(rels, n_rels);
    free(m);
    return MS_ERR_NOMEM;
  }
  for (size_t j = 0; j < data->n_cols; j++) view.cols[j] = data->cols[j];
  for (size_t j = 0; j < data->n_cols; j++) {
    ms_frame_col *vc = &view.cols[j];
    int derived = 0;
    for (size_t q = 0; q < n_rels; q++) {
      derived |= (rels[q].kind == MS__REL_DIFF || rels[q].kind == MS__REL_SUM) && rels[q].c == j;
      /* the parts of a total are added: integers, not labels */
      for (size_t i = 0; rels[q].kind == MS__REL_SUM && i < rels[q].n_map; i++)
        derived |= rels[q].fd_map[i] == (int32_t)j;
    }
    /* Under DP the distinct-value count is not released: every numeric
     * column stays numeric (a whole-number column gets a bin per value of
     * its released range; docs/privacy.md). */
    if (derived || !vc->n_lit || (vc->kind != MS_FKIND_INTEGER && vc->kind != MS_FKIND_REAL) ||
        p->epsilon > 0)
      continue;
    vc->kind = MS_FKIND_CATEGORICAL;
    vc->num = NULL;
    vc->levels = vc->lit_text;
    vc->n_levels = vc->n_lit;
    vc->code = ms__malloc((data->n_rows ? data->n_rows : 1) * sizeof *vc->code);
    if (!vc->code) {
      st = MS_ERR_NOMEM;
      break;
    }
    const ms_frame_col *oc = &data->cols[j];
    for (size_t r = 0; r < data->n_rows; r++) {
      vc->code[r] = -1;
      if (isnan(oc->num[r])) continue;
      size_t lo = 0, hi = vc->n_lit;
      while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (vc->lit_val[mid] <= oc->num[r]) lo = mid;
        else hi = mid;
      }
      vc->code[r] = (int32_t)lo;
    }
    /* Without DP a discrete value is released only when k rows hold it; a
     * column none of whose values is that common is fitted as a number
     * (knots are means of k values). */
    if (p->epsilon == 0) {
      size_t *cnt = ms__calloc(vc->n_levels ? vc->n_levels : 1, sizeof *cnt), most = 0;
      if (!cnt) {
        free(vc->code);
        vc->code = NULL;
        st = MS_ERR_NOMEM;
        break;
      }
      for (size_t r = 0; r < data->n_rows; r++)
        if (vc->code[r] >= 0 && ++cnt[vc->code[r]] > most) most = cnt[vc->code[r]];
      free(cnt);
      if (most < p->k_min) {
        free(vc->code);
        *vc = data->cols[j];
      }
    }
  }
  /* A number ordered after another (a <= b) is fitted as its gap b - a,
   * >= 0, present where both are; the spec draws b as a + gap. */
  for (size_t q = 0; q < n_rels && !st; q++) {
    if (rels[q].kind != MS__REL_ORDER || orig->cols[rels[q].b].kind == MS_FKIND_DATE) continue;
    const ms_frame_col *ca = &orig->cols[rels[q].a], *cb = &orig->cols[rels[q].b];
    ms_frame_col *vc = &view.cols[rels[q].b];
    vc->num = ms__malloc((data->n_rows ? data->n_rows : 1) * sizeof *vc->num);
    if (!vc->num) {
      st = MS_ERR_NOMEM;
      break;
    }
    vc->n_missing = 0;
    if (ca->decimals > vc->decimals) vc->decimals = ca->decimals;
    double sc = pow(10, vc->decimals);
    for (size_t r = 0; r < data->n_rows; r++) {
      vc->num[r] = round((cb->num[r] - ca->num[r]) * sc) / sc;
      vc->n_missing += isnan(vc->num[r]);
    }
  }
  data = &view;
  int32_t **maps = ms__calloc(data->n_cols, sizeof *maps);
  size_t *dom_of = ms__malloc((data->n_cols ? data->n_cols : 1) * sizeof *dom_of);
  for (size_t j = 0; dom_of && j < data->n_cols; j++) {
    dom_of[j] = SIZE_MAX;
    for (size_t i = 0; i < p->n_domains; i++)
      if (!strcmp(p->domain_columns[i], data->cols[j].name)) dom_of[j] = i;
  }
  m->f = ms__calloc(data->n_cols, sizeof *m->f);
  m->cop = ms__calloc(data->n_cols, sizeof *m->cop);
  m->qi = ms__calloc(p->n_quasi_identifiers + 1, sizeof *m->qi);
  if (st || !maps || !dom_of || !m->f || !m->cop || !m->qi ||
      !(m->name = ms__strdup(p->name ? p->name : "fitted")) ||
      !(m->table = ms__strdup(p->table ? p->table : "data")) || !(m->source = ms__strdup(data->source))) {
    st = ms__diag_nomem(d, data->source, NULL, "the fitted model");
    goto fail;
  }
  for (size_t q = 0; q < p->n_quasi_identifiers; q++)
    if (!(m->qi[m->n_qi++] = ms__strdup(p->quasi_identifiers[q]))) {
      st = ms__diag_nomem(d, data->source, NULL, "the fitted model");
      goto fail;
    }
  m->n_fields = data->n_cols;
  m->k_min = p->k_min;
  m->seed = p->seed;
  m->cancel = p->cancel;
  m->n_source = data->n_rows;
  m->epsilon = p->epsilon;
  m->delta = p->epsilon > 0 ? (p->delta > 0 ? p->delta : 1e-6) : 0;
  /* Budget split. */
  size_t n_fit = 0, n_cop_candidates = 0;
  for (size_t j = 0; j < data->n_cols; j++) {
    const ms_frame_col *c = &data->cols[j];
    if (c->kind == MS_FKIND_ID) continue;
    n_fit++;
    if (c->kind != MS_FKIND_DATE && c->n_missing < data->n_rows) n_cop_candidates++;
  }
  int use_mst = p->method == MS_FIT_METHOD_MST && n_fit >= 2;
  int use_copula = p->copula && n_cop_candidates >= 2 && !use_mst;
  double tau_cat = 0;
  if (m->epsilon > 0) {
    /* delta: half to the categorical thresholds when there are categorical
     * columns, the rest to the zCDP conversion (Bun & Steinke Prop. 1.3):
     * epsilon = rho + 2 sqrt(rho L), L = ln(1/delta_conv). */
    size_t n_cat = 0;
    for (size_t j = 0; j < data->n_cols; j++) n_cat += data->cols[j].kind == MS_FKIND_CATEGORICAL && dom_of[j] == SIZE_MAX;
    m->delta_thr = n_cat ? m->delta / 2 : 0;
    m->delta_conv = m->delta - m->delta_thr;
    double L = log(1 / m->delta_conv);
    double sr = sqrt(L + m->epsilon) - sqrt(L);
    m->rho = sr * sr;
    m->rho_corr = use_copula ? m->rho / 3 : 0;
    m->rho_marg = m->rho - m->rho_corr;
    if (p->method == MS_FIT_METHOD_MST && n_fit >= 2) {
      /* MST: a third each to the marginals, the tree selection and its edges. */
      m->rho_corr = 0;
      m->rho_marg = m->rho / 3;
    }
    if (n_cat && n_fit) {
      /* Union bound over the categorical columns: a new level passes in one
       * of them with probability at most delta_thr. */
      double sigma = 1 / sqrt(2 * m->rho_marg / (double)n_fit);
      tau_cat = 1 + sigma * gsl_cdf_ugaussian_Qinv(m->delta_thr / (double)n_cat);
    }
  }
  double max_total = 0, sum_total = 0;
  size_t n_total = 0;
  for (size_t j = 0; j < data->n_cols && !st; j++) {
    const ms_frame_col *c = &data->cols[j];
    fit_field *f = &m->f[j];
    const ms_frame_col *oc = &orig->cols[j];
    f->cop = -1;
    f->mc_col = -1;
    f->rel_base = f->diff_a = f->diff_b = f->fd_from = f->zc_from = -1;
    f->orig_kind = oc->kind;
    for (size_t q = 0; q < n_rels; q++) {
      if (rels[q].kind == MS__REL_ORDER && rels[q].b == j) f->rel_base = (int)rels[q].a;
      if (rels[q].kind == MS__REL_DIFF && rels[q].c == j) f->diff_a = (int)rels[q].a, f->diff_b = (int)rels[q].b;
      if (rels[q].kind == MS__REL_SUM && rels[q].c == j) {
        if (!(f->sum_parts = ms__malloc(rels[q].n_map * sizeof *f->sum_parts))) {
          st = MS_ERR_NOMEM;
          break;
        }
        memcpy(f->sum_parts, rels[q].fd_map, rels[q].n_map * sizeof *f->sum_parts);
        f->n_sum = rels[q].n_map;
      }
      if (rels[q].kind == MS__REL_FD && rels[q].b == j) f->fd_from = (int)rels[q].a;
    }
    f->kind = c->kind;
    f->decimals = c->decimals;
    f->discrete = c->kind != oc->kind;
    f->real_style = c->real_style;
    f->has_time = c->kind == MS_FKIND_DATE && c->has_time;
    char **taken = ms__malloc((j ? j : 1) * sizeof *taken);
    if (!taken) {
      st = ms__diag_nomem(d, data->source, c->name, "a column's fit");
      break;
    }
    for (size_t q = 0; q < j; q++) taken[q] = m->f[q].name;
    f->name = field_name(c->name, taken, j);
    free(taken);
    if (!f->name || (strcmp(f->name, c->name) && !(f->label = ms__strdup(c->name))) ||
        (c->kind == MS_FKIND_DATE && c->date_format && !(f->date_format = ms__strdup(c->date_format)))) {
      st = MS_ERR_NOMEM;
      break;
    }
    if (c->kind == MS_FKIND_BOOL)
      for (int b = 0; b < 2; b++)
        if (c->bool_text[b] && !(f->btext[b] = ms__strdup(c->bool_text[b]))) st = MS_ERR_NOMEM;
    if (st) break;
    if (c->kind == MS_FKIND_ID) {
      if ((st = classify_id(f, c, (uint64_t)data->n_rows))) break;
      if (m->epsilon > 0) {
        /* The block search reads every real id: under DP ids are 1, 2, ... */
        free(f->id_prefix);
        f->id_prefix = NULL;
        f->id_width = 0;
        f->id_start = 1;
      }
      if (f->text)
        ms_diag_warn(d, data->source, 0, 0, c->name,
                     "free text: values not released (written as \"%s\")", MS_FIT_TEXT_PLACEHOLDER);
      size_t miss = c->n_missing < p->k_min ? 0 : c->n_missing;
      f->missing = m->epsilon > 0 ? 0 : sig6((double)miss / (double)data->n_rows);
      continue;
    }
    double rho = m->epsilon > 0 ? m->rho_marg / (double)n_fit : 0;
    f->rho = rho;
    double tot = 0;
    size_t present = data->n_rows - c->n_missing;
    if (present == 0)
      ms_diag_warn(d, data->source, 0, 0, c->name, "column is missing in every row");
    if (c->kind == MS_FKIND_CATEGORICAL) {
      if (!(maps[j] = ms__malloc((c->n_levels + 1) * sizeof *maps[j]))) {
        st = ms__diag_nomem(d, data->source, c->name, "a column's fit");
        break;
      }
      size_t di = dom_of ? dom_of[j] : SIZE_MAX;
      st = fit_categorical(f, c, data->n_rows, p, rho, tau_cat, maps[j], &tot,
                           f->discrete ? c->lit_val : NULL,
                           di == SIZE_MAX ? NULL : p->domain_values + p->domain_first[di],
                           di == SIZE_MAX ? 0 : p->domain_first[di + 1] - p->domain_first[di]);
      if (!st && c->n_levels == 1 && !f->suppressed)
        ms_diag_warn(d, data->source, 0, 0, c->name, "column holds one value");
      if (!st && rho == 0 && f->n_cats && !f->suppressed && c->n_levels > f->n_cats)
        ms_diag_warn(d, data->source, 0, 0, c->name,
                     "%zu %s seen in fewer than %zu rows %s", c->n_levels - f->n_cats,
                     f->discrete ? (c->n_levels - f->n_cats == 1 ? "value" : "values")
                                 : (c->n_levels - f->n_cats == 1 ? "category" : "categories"),
                     p->k_min, f->discrete ? "joined the nearest kept value" : "left out");
    } else if (c->kind == MS_FKIND_BOOL) {
      st = fit_bool(f, c, data->n_rows, p, rho, &tot);
    } else if (rho > 0) {
      size_t clamped = 0;
      st = fit_numeric_dp(f, c, data->n_rows, p, rho, &tot, &clamped);
      /* For the operator only (not in the spec): how many rows the public
       * bounds clamp. */
      for (size_t b = 0; !st && clamped && b < p->n_bounds; b++)
        if (!strcmp(p->bound_columns[b], c->name))
          ms_diag_warn(d, data->source, 0, 0, c->name,
                       "%zu row%s outside --bounds %g:%g, counted at the nearest bound (this count is not "
                       "released)", clamped, clamped == 1 ? "" : "s", p->bound_lo[b], p->bound_hi[b]);
    } else {
      size_t miss = c->n_missing < p->k_min ? 0 : c->n_missing;
      f->missing = sig6((double)miss / (double)(data->n_rows - c->n_missing + miss));
      tot = (double)data->n_rows;
      if (present < p->k_min) {
        f->suppressed = 1;
        f->missing = 1;
        f->fam = FAM_CONSTANT;
        if (present)
          ms_diag_warn(d, data->source, 0, 0, c->name,
                       "only %zu value%s present (fewer than k = %zu): emitted as always missing",
                       present, present == 1 ? "" : "s", p->k_min);
      } else if (f->rel_base >= 0 && c->kind == MS_FKIND_DATE) {
        /* A date after another: its gap to that date is what is fitted,
         * and it is missing on its own only where the base date is present. */
        const ms_frame_col *bc = &data->cols[f->rel_base];
        ms_frame_col gap = *c;
        gap.num = ms__malloc((data->n_rows ? data->n_rows : 1) * sizeof *gap.num);
        if (!gap.num) {
          st = MS_ERR_NOMEM;
          break;
        }
        gap.n_missing = 0;
        size_t base_present = 0, own_missing = 0;
        for (size_t r = 0; r < data->n_rows; r++) {
          gap.num[r] = c->num[r] - bc->num[r];
          gap.n_missing += isnan(gap.num[r]);
          base_present += !isnan(bc->num[r]);
          own_missing += !isnan(bc->num[r]) && isnan(c->num[r]);
        }
        st = fit_numeric_plain(f, &gap, data->n_rows, p);
        free(gap.num);
        if (own_missing < p->k_min) own_missing = 0;
        f->missing = base_present ? sig6((double)own_missing / (double)base_present) : 0;
      } else {
        st = fit_numeric_plain(f, c, data->n_rows, p);
        if (!st && f->fam == FAM_CONSTANT && f->rel_base < 0)
          ms_diag_warn(d, data->source, 0, 0, c->name, "column is constant");
        if (!st && f->rel_base >= 0) {
          /* the gap of a number after another: missing on its own only
           * where the base is present */
          const ms_frame_col *bc = &data->cols[f->rel_base];
          size_t base_present = 0, own_missing = 0;
          for (size_t r = 0; r < data->n_rows; r++) {
            base_present += !isnan(bc->num[r]);
            own_missing += !isnan(bc->num[r]) && isnan(c->num[r]);
          }
          if (own_missing < p->k_min) own_missing = 0;
          f->missing = base_present ? sig6((double)own_missing / (double)base_present) : 0;
          f->out_decimals = oc->decimals;
          char **taken = ms__malloc((data->n_cols + 1) * sizeof *taken);
          char want[128];
          snprintf(want, sizeof want, "%s_gap", f->name);
          if (taken) {
            for (size_t q = 0; q < j; q++) taken[q] = m->f[q].name;
            for (size_t q = j; q < data->n_cols; q++) taken[q] = data->cols[q].name;
            taken[j] = f->name;
            f->gap_name = field_name(want, taken, data->n_cols);
            free(taken);
          }
          if (!f->gap_name) st = MS_ERR_NOMEM;
        }
      }
    }
    if (st == MS_ERR_NOMEM) { /* the column fits name no allocation themselves */
      ms__diag_nomem(d, data->source, c->name, "a column's fit");
      break;
    }
    if (!st && c->kind == MS_FKIND_REAL) bounds_to_precision(f);
    if (!st && c->kind == MS_FKIND_DATE) dates_in_range(f);
    if (tot > max_total) max_total = tot;
    if (c->kind != MS_FKIND_ID) sum_total += tot, n_total++;
    if (!st && use_copula && !f->suppressed && c->kind != MS_FKIND_DATE && f->fam != FAM_CONSTANT &&
        f->diff_a < 0 && !f->sum_parts && f->fd_from < 0 &&
        !(c->kind == MS_FKIND_CATEGORICAL && f->n_cats < 2) &&
        !(c->kind == MS_FKIND_BOOL && !(f->probs[0] > 0 && f->probs[1] > 0)) &&
        !(m->epsilon == 0 && present < 2 * p->k_min)) {
      f->cop = (int)m->n_cop;
      m->cop[m->n_cop++] = j;
    }
  }
  /* Under DP every column's noisy total estimates the row count; their mean
   * is the least noisy (post-processing). */
  if (m->epsilon > 0 && n_total) max_total = sum_total / (double)n_total;
  /* A spec table has at least one row. Under DP a noisy mean total at or
   * below 0.5 (a tiny table) is clamped to 1 -- post-processing; falling
   * back to the real row count there would release it exactly. */
  int dp_total = m->epsilon > 0 && n_total;
  double rows = max_total > 0 ? max_total : dp_total ? 1 : (double)data->n_rows;
  m->n_out = rows < 1.5 ? 1 : (uint64_t)llround(rows);
  if (!st && m->n_cop < 2) {
    for (size_t i = 0; i < m->n_cop; i++) m->f[m->cop[i]].cop = -1;
    m->n_cop = 0;
  }
  if (!st && use_mst) {
    st = fit_mst(m, data, maps, m->rho / 3, m->rho / 3, p, d);
    if (st == MS_ERR_NOMEM) ms__diag_nomem(d, data->source, NULL, "the MST fit");
  }
  /* A determined categorical: one rule per released label of its
   * determinant whose partner label is released too. */
  for (size_t q = 0; q < n_rels && !st; q++) {
    if (rels[q].kind != MS__REL_FD) continue;
    fit_field *fy = &m->f[rels[q].b];
    const fit_field *fx = &m->f[rels[q].a];
    const int32_t *mx = maps[rels[q].a], *my = maps[rels[q].b];
    if (!mx || !my || fx->suppressed || fy->suppressed) {
      fy->fd_from = -1;
      continue;
    }
    if (!(fy->fd_emit = ms__malloc((fx->n_cats ? fx->n_cats : 1) * sizeof *fy->fd_emit))) {
      st = MS_ERR_NOMEM;
      break;
    }
    fy->n_fd_emit = fx->n_cats;
    for (size_t l = 0; l < fx->n_cats; l++) fy->fd_emit[l] = -1;
    for (size_t l = 0; l < rels[q].n_map; l++)
      if (mx[l] >= 0 && rels[q].fd_map[l] >= 0 && my[rels[q].fd_map[l]] >= 0)
        fy->fd_emit[mx[l]] = my[rels[q].fd_map[l]];
  }
  /* Impossible combinations (relations.c, ZERO): the field's labels drawn
   * from their distribution given the other field's label, each cell an
   * aggregate of at least k rows (smaller cells are 0). */
  for (size_t q = 0; q < n_rels && !st; q++) {
    if (rels[q].kind != MS__REL_ZERO) continue;
    fit_field *fy = &m->f[rels[q].b];
    const fit_field *fx = &m->f[rels[q].a];
    if (fx->suppressed || fy->suppressed || !labelled(fx) || !labelled(fy)) continue;
    size_t nx = n_labels(fx), ny = n_labels(fy);
    double *pr = ms__calloc(nx * ny > 0 ? nx * ny : 1, sizeof *pr);
    if (!pr) {
      st = MS_ERR_NOMEM;
      break;
    }
    const ms_frame_col *cx = &data->cols[rels[q].a], *cy = &data->cols[rels[q].b];
    for (size_t r = 0; r < data->n_rows; r++) {
      int32_t x = emitted(fx, cx, maps[rels[q].a], r), y = emitted(fy, cy, maps[rels[q].b], r);
      if (x >= 0 && y >= 0 && (size_t)x < nx && (size_t)y < ny) pr[x * ny + y]++;
    }
    for (size_t x = 0; x < nx; x++) {
      double t = 0;
      for (size_t y = 0; y < ny; y++) {
        if (pr[x * ny + y] < (double)p->k_min) pr[x * ny + y] = 0;
        t += pr[x * ny + y];
      }
      for (size_t y = 0; y < ny; y++) pr[x * ny + y] = t > 0 ? sig6(pr[x * ny + y] / t) : fy->probs[y];
    }
    fy->zc_from = (int)rels[q].a;
    fy->zc_probs = pr;
    fy->zc_nx = nx, fy->zc_ny = ny;
  }
  /* Conditional missingness runs on the released marginals; under DP it
   * takes half of the correlation share when some column has a released
   * missing rate in [0.02, 0.98] (adaptive composition: the decision is
   * post-processing of released values, Bun & Steinke Lemma 2.3). */
  if (!st) {
    double avail = 0;
    if (m->epsilon > 0) {
      int any = 0;
      for (size_t j = 0; j < m->n_fields; j++)
        any |= m->f[j].kind != MS_FKIND_ID && !m->f[j].suppressed && m->f[j].missing >= 0.02 &&
               m->f[j].missing <= 0.98;
      if (any) {
        avail = m->n_cop >= 2 ? m->rho_corr / 2 : 0;
        m->rho_corr -= avail;
      }
    }
    st = use_mst ? MS_OK : fit_missingness(m, data, maps, p, avail);
    if (st == MS_ERR_NOMEM) ms__diag_nomem(d, data->source, NULL, "the missingness fit");
  }
  int32_t *lab = NULL;
  if (!st && m->n_cop >= 2 && m->epsilon == 0 && p->mixture) {
    st = fit_mixture(m, data, maps, p, &lab);
    if (st == MS_ERR_NOMEM) ms__diag_nomem(d, data->source, NULL, "the cluster fit");
  }
  if (!st && m->n_cop >= 2) {
    st = fit_copula(m, data, maps, p, lab);
    if (st == MS_ERR_NOMEM) ms__diag_nomem(d, data->source, NULL, "the correlation fit");
  }
  free(lab);
  if (!st && m->n_comp >= 2) {
    st = mixture_copy_check(m, orig, data, maps, p, d);
    if (st == MS_ERR_NOMEM) ms__diag_nomem(d, data->source, NULL, "the clusters' copy check");
  }
  if (st == MS_ERR_MATH)
    ms_diag_add(d, st, data->source, 0, 0, NULL, "correlation matrix could not be repaired");
fail:
  ms__relations_free(rels, n_rels);
  free(dom_of);
  if (maps)
    for (size_t j = 0; j < data->n_cols; j++) free(maps[j]);
  free(maps);
  for (size_t j = 0; j < orig->n_cols; j++)
    if (view.cols[j].code != orig->cols[j].code) free(view.cols[j].code);
  for (size_t j = 0; j < orig->n_cols; j++)
    if (view.cols[j].num != orig->cols[j].num) free(view.cols[j].num);
  free(view.cols);
  if (st) {
    ms_fit_model_free(m);
    return st;
  }
  *out = m;
  return MS_OK;
}

/* ---- spec emission ---- */

/* A bool's "values" under its own spellings (false first). A spelling the
 * input never showed cannot be written; when the known ones would all have
 * weight 0 (under DP noise, a column that is always "1"), the first known
 * one gets weight 1, so the spec stays valid. */
static void bool_values(cJSON *v, const fit_field *f, const double *probs) {
  double sum = 0;
  for (int b = 0; b < 2; b++)
    if (f->btext[b]) sum += probs[b];
  for (int b = 0; b < 2; b++)
    if (f->btext[b]) cJSON_AddNumberToObject(v, f->btext[b], sum > 0 ? probs[b] : 1), sum = sum > 0 ? sum : 1;
}

static cJSON *dist_json(const fit_field *f, double scale_off) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "type", fam_names[f->fam]);
  switch (f->fam) {
    case FAM_NORMAL:
      cJSON_AddNumberToObject(o, "mean", f->par[0]);
      cJSON_AddNumberToObject(o, "sd", f->par[1]);
      break;
    case FAM_LOGNORMAL:
      cJSON_AddNumberToObject(o, "meanlog", f->par[0]);
      cJSON_AddNumberToObject(o, "sdlog", f->par[1]);
      break;
    case FAM_GAMMA:
      cJSON_AddNumberToObject(o, "shape", f->par[0]);
      cJSON_AddNumberToObject(o, "scale", f->par[1]);
      break;
    case FAM_EXPONENTIAL:
      cJSON_AddNumberToObject(o, "mean", f->par[0]);
      break;
    case FAM_CONSTANT:
      cJSON_AddNumberToObject(o, "value", f->par[0] - scale_off);
      break;
    default: {
      cJSON *pr = cJSON_AddArrayToObject(o, "probs"), *va = cJSON_AddArrayToObject(o, "values");
      for (size_t i = 0; i < f->nq; i++) {
        ms__json_push(pr, cJSON_CreateNumber(f->qp[i]));
        ms__json_push(va, cJSON_CreateNumber(f->qv[i] - scale_off));
      }
    }
  }
  return o;
}

static cJSON *date_expr(double days, int has_time) {
  char b[MS_DATE_BUFSZ], e[80];
  if (has_time) {
    ms_datetime_format_pattern(llround(days * 86400), "%Y-%m-%dT%H:%M:%S", b, sizeof b);
    snprintf(e, sizeof e, "datetime('%s')", b);
  } else {
    ms_date_format((int32_t)days, b);
    snprintf(e, sizeof e, "date('%s')", b);
  }
  return cJSON_CreateString(e);
}

/* Items are added without a check each; an allocation that failed
 * anywhere shows once, in ms__json_print (core/json.h). */
char *ms_fit_model_to_json(const ms_fit_model *m) {
  ms__json_begin();
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  cJSON_AddNumberToObject(root, "medsynth", 1);
  cJSON_AddStringToObject(root, "name", m->name);
  char desc[1024];
  /* The data file by name only, so the spec does not depend on the directory
   * fit ran in or on how the path was typed. */
  const char *src_name = !m->source ? "" : strrchr(m->source, '/') ? strrchr(m->source, '/') + 1 : m->source;
  snprintf(desc, sizeof desc,
           "Fitted by medsynth %s fit from %s (%zu columns); %s. Review before sharing: "
           "docs/privacy.md.",
           MS_VERSION_STRING, src_name, m->n_fields,
           m->epsilon > 0 ? "differentially private" : "k-threshold rules, not differentially private");
  cJSON_AddStringToObject(root, "description", desc);
  cJSON_AddNumberToObject(root, "seed", (double)m->seed);
  cJSON *pv = cJSON_AddObjectToObject(root, "privacy");
  cJSON_AddStringToObject(pv, "method", m->epsilon > 0 ? "differential-privacy" : "k-threshold");
  cJSON_AddNumberToObject(pv, "k_min", (double)m->k_min);
  if (m->epsilon > 0) {
    cJSON_AddNumberToObject(pv, "epsilon", m->epsilon);
    cJSON_AddNumberToObject(pv, "delta", m->delta);
    cJSON_AddStringToObject(pv, "neighbouring", "add or remove one row");
    cJSON_AddStringToObject(pv, "accountant", "zCDP (Bun & Steinke 2016), converted to (epsilon, delta)");
    cJSON_AddNumberToObject(pv, "rho", sig6(m->rho));
    cJSON_AddNumberToObject(pv, "delta_conversion", sig6(m->delta_conv));
    cJSON_AddNumberToObject(pv, "delta_thresholds", sig6(m->delta_thr));
    cJSON *sp = cJSON_AddObjectToObject(pv, "split");
    cJSON_AddStringToObject(sp, "unit", "rho");
    cJSON_AddNumberToObject(sp, "marginals", sig6(m->rho_marg));
    cJSON_AddNumberToObject(sp, "correlations", sig6(m->n_cop >= 2 ? m->rho_corr : 0));
    cJSON_AddNumberToObject(sp, "missingness", sig6(m->rho_miss));
    cJSON *cols = cJSON_AddObjectToObject(sp, "columns");
    for (size_t i = 0; i < m->n_fields; i++)
      if (m->f[i].kind != MS_FKIND_ID) cJSON_AddNumberToObject(cols, m->f[i].name, sig6(m->f[i].rho));
    cJSON *me = cJSON_AddObjectToObject(pv, "mechanisms");
    cJSON_AddStringToObject(me, "numeric",
                            "gaussian histograms: log-grid range (half the column's rho; the bins the data can be "
                            "told to occupy) unless declared, then histogram + missing bin, support test, projection "
                            "onto non-negative counts, piecewise-linear CDF");
    cJSON_AddStringToObject(me, "categorical", "gaussian stability-based histogram");
    cJSON_AddStringToObject(me, "bool", "gaussian histogram (false, true, missing)");
    if (m->rho_miss > 0) {
      cJSON_AddStringToObject(me, "missingness", "gaussian 2x2 tables (missing x condition), sensitivity sqrt(tables)");
      cJSON_AddNumberToObject(me, "missingness_sigma", sig6(m->miss_sigma));
    }
    cJSON *sg = cJSON_AddObjectToObject(me, "sigma");
    for (size_t i = 0; i < m->n_fields; i++)
      if (m->f[i].kind != MS_FKIND_ID) cJSON_AddNumberToObject(sg, m->f[i].name, sig6(m->f[i].sigma));
    if (m->n_cop >= 2) {
      cJSON_AddStringToObject(me, "correlations", "gaussian sum of clipped normal-score outer products");
      cJSON_AddNumberToObject(me, "correlation_clip", sig6(m->corr_clip));
      cJSON_AddNumberToObject(me, "correlation_sigma", sig6(m->corr_sigma));
      cJSON_AddNumberToObject(me, "correlation_shrinkage", sig6(m->corr_shrink));
    } else {
      cJSON_AddStringToObject(me, "correlations", "none");
    }
    cJSON_AddNumberToObject(pv, "seed", (double)m->seed);
  } else {
    cJSON_AddNumberToObject(pv, "source_rows", (double)m->n_source);
  }
  ms__mst_emit_privacy(m->mst, pv);
  if (m->n_qi) {
    cJSON *q = cJSON_AddArrayToObject(pv, "quasi_identifiers");
    for (size_t i = 0; i < m->n_qi; i++) ms__json_push(q, cJSON_CreateString(m->qi[i]));
  }
  cJSON *tables = cJSON_AddArrayToObject(root, "tables");
  cJSON *t = ms__json_push(tables, cJSON_CreateObject());
  cJSON_AddStringToObject(t, "name", m->table);
  cJSON_AddNumberToObject(t, "rows", (double)m->n_out);
  cJSON *fields = cJSON_AddArrayToObject(t, "fields");
  for (size_t i = 0; i < m->n_fields; i++) {
    const fit_field *f = &m->f[i];
    /* a number after another: its hidden gap here, the number below */
    const int num_order = f->rel_base >= 0 && f->kind != MS_FKIND_DATE && f->gap_name;
    cJSON *o = ms__json_push(fields, cJSON_CreateObject());
    cJSON_AddStringToObject(o, "name", num_order ? f->gap_name : f->name);
    if (num_order) cJSON_AddBoolToObject(o, "hidden", 1);
    else if (f->label) cJSON_AddStringToObject(o, "label", f->label);
    if (f->sum_parts) {
      /* A total: the input's kind, its value the sum of its parts. */
      int real = f->orig_kind == MS_FKIND_REAL, any_real = 0;
      char e[2048];
      size_t o2 = 0;
      for (size_t q = 0; q < f->n_sum && o2 < sizeof e; q++) {
        const fit_field *fp = &m->f[f->sum_parts[q]];
        any_real |= fp->orig_kind == MS_FKIND_REAL;
        o2 += (size_t)snprintf(e + o2, sizeof e - o2, "%s%s", q ? " + " : "", fp->name);
      }
      char w[2100];
      snprintf(w, sizeof w, !real && any_real ? "round(%s)" : "%s", e);
      cJSON_AddStringToObject(o, "kind", real ? "real" : "integer");
      if (real) {
        cJSON_AddNumberToObject(o, "precision", f->decimals);
        if (f->real_style > 0) cJSON_AddStringToObject(o, "format", f->real_style == 2 ? "trim.0" : "trim");
      }
      cJSON_AddStringToObject(o, "expr", w);
      continue;
    }
    /* Spelled false/true as medsynth writes bools: a bool field says it. */
    if (f->diff_a >= 0) {
      /* A derived difference: its kind is the input's (a discrete column
       * too), its value the formula. */
      const fit_field *fa = &m->f[f->diff_a], *fb = &m->f[f->diff_b];
      int real = f->orig_kind == MS_FKIND_REAL;
      char e[300];
      if (!real && fa->kind != MS_FKIND_DATE && (fa->orig_kind == MS_FKIND_REAL || fb->orig_kind == MS_FKIND_REAL))
        snprintf(e, sizeof e, "round(%s - %s)", fb->name, fa->name);
      else
        snprintf(e, sizeof e, "%s - %s", fb->name, fa->name);
      cJSON_AddStringToObject(o, "kind", real ? "real" : "integer");
      if (real) {
        cJSON_AddNumberToObject(o, "precision", f->decimals);
        if (f->real_style > 0) cJSON_AddStringToObject(o, "format", f->real_style == 2 ? "trim.0" : "trim");
      }
      cJSON_AddStringToObject(o, "expr", e);
      continue;
    }
    int bool_labels = f->kind == MS_FKIND_BOOL && labelled(f);
    cJSON_AddStringToObject(o, "kind", f->text               ? "string"
                                       : bool_labels         ? "categorical"
                                       : f->has_time         ? "datetime"
                                                             : ms_fkind_name(f->kind));
    /* A copula member of a mixture: the first cluster's marginal as the
     * field's own, one rule per further cluster. */
    const int mixed = m->n_comp >= 2 && f->cop >= 0 && f->zc_from < 0;
    const fit_field *mp = mixed ? &m->comp[0].f[f->cop] : f;
    switch (f->kind) {
      case MS_FKIND_ID:
        if (f->text) {
          cJSON_AddStringToObject(o, "template", MS_FIT_TEXT_PLACEHOLDER);
          break;
        }
        cJSON_AddStringToObject(o, "format", "seq");
        if (f->id_prefix && *f->id_prefix) cJSON_AddStringToObject(o, "prefix", f->id_prefix);
        if (f->id_width) cJSON_AddNumberToObject(o, "width", f->id_width);
        cJSON_AddNumberToObject(o, "start", (double)(f->id_start ? f->id_start : 1));
        break;
      case MS_FKIND_CATEGORICAL: {
        cJSON *v = cJSON_AddObjectToObject(o, "values");
        for (size_t c = 0; c < f->n_cats; c++) cJSON_AddNumberToObject(v, f->cats[c], mp->probs[c]);
        if (f->fd_from >= 0 && f->fd_emit) {
          /* Determined by another column: its label decides this one. */
          const fit_field *fx = &m->f[f->fd_from];
          cJSON *w = cJSON_AddArrayToObject(o, "when");
          for (size_t l = 0; l < f->n_fd_emit; l++) {
            if (f->fd_emit[l] < 0 || strchr(fx->cats[l], '\'') || strchr(fx->cats[l], '\\')) continue;
            char e[600];
            snprintf(e, sizeof e, "%s == '%s'", fx->name, fx->cats[l]);
            cJSON *r = ms__json_push(w, cJSON_CreateObject());
            cJSON_AddStringToObject(r, "if", e);
            cJSON *rv = cJSON_AddObjectToObject(r, "values");
            cJSON_AddNumberToObject(rv, f->cats[f->fd_emit[l]], 1);
          }
        }
        break;
      }
      case MS_FKIND_BOOL:
        if (bool_labels) {
          /* The input's spellings, false first: the copula's order for a
           * bool (true when Phi(z) > 1 - p) is the categorical's. */
          cJSON *v = cJSON_AddObjectToObject(o, "values");
          bool_values(v, f, mp->probs);
        } else {
          cJSON_AddNumberToObject(o, "p", mp->probs[1]);
        }
        break;
      case MS_FKIND_DATE:
        if (f->rel_base >= 0) {
          cJSON_AddStringToObject(o, "base", m->f[f->rel_base].name);
          ms__json_put(o, "offset_days", dist_json(f, 0));
        } else {
          cJSON_AddStringToObject(o, "base", "date('1970-01-01')");
          ms__json_put(o, "offset_days", dist_json(f, 0));
          ms__json_put(o, "min", date_expr(f->lo, f->has_time));
          ms__json_put(o, "max", date_expr(f->hi, f->has_time));
        }
        if (f->date_format &&
            strcmp(f->date_format, f->has_time ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d"))
          cJSON_AddStringToObject(o, "format", f->date_format);
        break;
      default:
        if (f->kind == MS_FKIND_REAL) {
          cJSON_AddNumberToObject(o, "precision", f->decimals);
          if (f->real_style > 0) cJSON_AddStringToObject(o, "format", f->real_style == 2 ? "trim.0" : "trim");
        }
        ms__json_put(o, "dist", dist_json(mp, 0));
        cJSON_AddNumberToObject(o, "min", f->lo);
        cJSON_AddNumberToObject(o, "max", f->hi);
    }
    if (f->zc_from >= 0) {
      /* drawn given the label of another field: no impossible combination */
      const fit_field *fx = &m->f[f->zc_from];
      cJSON *w = cJSON_AddArrayToObject(o, "when");
      for (size_t x = 0; x < f->zc_nx; x++) {
        const char *lx = label_of(fx, x);
        if (!lx || strchr(lx, '\'') || strchr(lx, '\\')) continue;
        char e[600];
        snprintf(e, sizeof e, "%s == '%s'", fx->name, lx);
        cJSON *r = ms__json_push(w, cJSON_CreateObject());
        cJSON_AddStringToObject(r, "if", e);
        cJSON *v = cJSON_AddObjectToObject(r, "values");
        if (f->kind == MS_FKIND_BOOL) {
          bool_values(v, f, f->zc_probs + x * f->zc_ny);
          continue;
        }
        for (size_t y = 0; y < f->zc_ny; y++)
          cJSON_AddNumberToObject(v, label_of(f, y), f->zc_probs[x * f->zc_ny + y]);
      }
    }
    if (mixed) {
      cJSON *w = cJSON_AddArrayToObject(o, "when");
      for (size_t c = 1; c < m->n_comp; c++) {
        const fit_field *cf = &m->comp[c].f[f->cop];
        char e[200];
        snprintf(e, sizeof e, "%s == '%zu'", m->comp_name, c + 1);
        cJSON *r = ms__json_push(w, cJSON_CreateObject());
        cJSON_AddStringToObject(r, "if", e);
        if (f->kind == MS_FKIND_CATEGORICAL || bool_labels) {
          cJSON *v = cJSON_AddObjectToObject(r, "values");
          if (f->kind == MS_FKIND_CATEGORICAL)
            for (size_t l = 0; l < f->n_cats; l++) cJSON_AddNumberToObject(v, f->cats[l], cf->probs[l]);
          else
            bool_values(v, f, cf->probs);
        } else if (f->kind == MS_FKIND_BOOL) {
          cJSON_AddNumberToObject(r, "p", cf->probs[1]);
        } else {
          ms__json_put(r, "dist", dist_json(cf, 0));
        }
      }
    }
    if (f->fd_from >= 0 && m->f[f->fd_from].missing > 0) {
      cJSON *mo = cJSON_AddObjectToObject(o, "missing");
      cJSON_AddNumberToObject(mo, "rate", 0);
      cJSON *w = cJSON_AddArrayToObject(mo, "when");
      cJSON *r = ms__json_push(w, cJSON_CreateObject());
      char e[300];
      snprintf(e, sizeof e, "is_missing(%s)", m->f[f->fd_from].name);
      cJSON_AddStringToObject(r, "if", e);
      cJSON_AddNumberToObject(r, "rate", 1);
    } else if (f->mc_expr && f->fd_from < 0) {
      cJSON *mo = cJSON_AddObjectToObject(o, "missing");
      cJSON_AddNumberToObject(mo, "rate", f->missing);
      cJSON *w = cJSON_AddArrayToObject(mo, "when");
      cJSON *r = ms__json_push(w, cJSON_CreateObject());
      cJSON_AddStringToObject(r, "if", f->mc_expr);
      cJSON_AddNumberToObject(r, "rate", f->mc_rate);
    } else if (f->missing > 0 && f->fd_from < 0) {
      cJSON_AddNumberToObject(o, "missing", f->missing);
    }
    ms__mst_emit_field(m->mst, i, o);
    if (num_order) {
      cJSON *ob = ms__json_push(fields, cJSON_CreateObject());
      cJSON_AddStringToObject(ob, "name", f->name);
      if (f->label) cJSON_AddStringToObject(ob, "label", f->label);
      cJSON_AddStringToObject(ob, "kind", ms_fkind_name(f->kind));
      if (f->kind == MS_FKIND_REAL) {
        cJSON_AddNumberToObject(ob, "precision", f->out_decimals);
        if (f->real_style > 0) cJSON_AddStringToObject(ob, "format", f->real_style == 2 ? "trim.0" : "trim");
      }
      char e[300];
      snprintf(e, sizeof e, "%s + %s", m->f[f->rel_base].name, f->gap_name);
      cJSON_AddStringToObject(ob, "expr", e);
    }
  }
  ms__mst_emit_bins(m->mst, fields);
  if (m->n_comp >= 2) {
    cJSON *o = ms__json_push(fields, cJSON_CreateObject());
    cJSON_AddStringToObject(o, "name", m->comp_name);
    cJSON_AddStringToObject(o, "kind", "categorical");
    cJSON_AddBoolToObject(o, "hidden", 1);
    cJSON_AddStringToObject(o, "description", "cluster of the rows (docs/fit.md, Clusters)");
    cJSON *v = cJSON_AddObjectToObject(o, "values");
    for (size_t c = 0; c < m->n_comp; c++) {
      char lab[24];
      snprintf(lab, sizeof lab, "%zu", c + 1);
      cJSON_AddNumberToObject(v, lab, m->comp[c].w);
    }
  }
  /* The spec's group is the whole copula: integer/real fields (quantile of
   * Phi(z)), categorical fields (category whose cumulative interval, in the
   * order of "values", holds Phi(z)) and bool fields (true when Phi(z) >
   * 1 - p, i.e. the order false, true). These are the rules of
   * ms_fit_sample and of the normal scores the matrix was estimated from
   * (docs/spec.md, Correlations; docs/privacy.md). */
  if (m->n_cop >= 2) {
    size_t nn = m->n_cop;
    cJSON *cg = cJSON_AddArrayToObject(t, "correlations");
    cJSON *g = ms__json_push(cg, cJSON_CreateObject());
    cJSON *fl = cJSON_AddArrayToObject(g, "fields");
    for (size_t i = 0; i < nn; i++) {
      const fit_field *f = &m->f[m->cop[i]];
      ms__json_push(fl, cJSON_CreateString(f->gap_name ? f->gap_name : f->name));
    }
    cJSON *mx = cJSON_AddArrayToObject(g, "matrix");
    for (size_t i = 0; i < nn; i++) {
      cJSON *row = cJSON_CreateArray();
      for (size_t j = 0; j < nn; j++) ms__json_push(row, cJSON_CreateNumber(m->corr[i * nn + j]));
      ms__json_push(mx, row);
    }
  }
  char *raw = ms__json_print(root, 1);
  cJSON_Delete(root);
  if (!raw) return NULL;
  /* cJSON indents with tabs and writes ":\t"; strings never hold a raw tab
   * (cJSON escapes it), so every tab is layout: two spaces, one after ':'. */
  size_t n = 0;
  for (const char *c = raw; *c; c++) n += *c == '\t' ? 2 : 1;
  char *s = ms__malloc(n + 1), *o = s;
  if (s) {
    for (const char *c = raw; *c; c++) {
      if (*c != '\t') *o++ = *c;
      else if (c > raw && c[-1] == ':') *o++ = ' ';
      else *o++ = ' ', *o++ = ' ';
    }
    *o = '\0';
  }
  free(raw);
  return s;
}

char *ms_fit_model_accounting(const ms_fit_model *m) {
  char *s = NULL;
  size_t len = 0;
  FILE *fp = ms__open_memstream(&s, &len);
  if (!fp) return NULL;
  if (m->epsilon > 0) {
    fprintf(fp, "privacy: (%g, %g)-differential privacy, add/remove-one-row neighbours, seed %llu\n",
            m->epsilon, m->delta, (unsigned long long)m->seed);
    fprintf(fp, "  accountant:   zCDP rho %g (delta %g for the conversion, %g for category thresholds)\n",
            sig6(m->rho), sig6(m->delta_conv), sig6(m->delta_thr));
    fprintf(fp, "  marginals:    rho %g over %zu column(s)\n", sig6(m->rho_marg), m->n_fields);
    for (size_t i = 0; i < m->n_fields; i++)
      if (m->f[i].kind != MS_FKIND_ID)
        fprintf(fp, "    %-24s rho %-10g sigma %g\n", m->f[i].name, sig6(m->f[i].rho), sig6(m->f[i].sigma));
    if (m->n_cop >= 2)
      fprintf(fp, "  correlations: rho %g (Gaussian, clip %g, sigma %g on sums of %zu-d scores, %zu component(s) "
                  "above the noise, shrinkage %g)\n",
              sig6(m->rho_corr), sig6(m->corr_clip), sig6(m->corr_sigma), m->n_cop, m->corr_components,
              sig6(m->corr_shrink));
    if (m->rho_miss > 0)
      fprintf(fp, "  missingness:  rho %g (Gaussian 2x2 tables, sigma %g)\n", sig6(m->rho_miss), sig6(m->miss_sigma));
    ms__mst_accounting(m->mst, fp);
    fprintf(fp, "  total:        rho %g -> epsilon %g, delta %g\n",
            sig6(m->rho_marg + (m->n_cop >= 2 ? m->rho_corr : 0) + m->rho_miss + ms__mst_rho(m->mst)),
            m->epsilon, m->delta);
  }
  for (size_t i = 0; i < m->n_fields; i++) {
    const fit_field *f = &m->f[i];
    if (f->rel_base >= 0)
      fprintf(fp, "  kept exactly: %s is %s %s (drawn as %s + a fitted gap)\n", f->name,
              f->kind == MS_FKIND_DATE ? "on or after" : ">=", m->f[f->rel_base].name,
              m->f[f->rel_base].name);
    if (f->diff_a >= 0)
      fprintf(fp, "  kept exactly: %s = %s - %s (a derived field)\n", f->name, m->f[f->diff_b].name,
              m->f[f->diff_a].name);
    if (f->fd_from >= 0)
      fprintf(fp, "  kept exactly: %s is determined by %s (one rule per label)\n", f->name,
              m->f[f->fd_from].name);
    if (f->sum_parts) {
      fprintf(fp, "  kept exactly: %s =", f->name);
      for (size_t q = 0; q < f->n_sum; q++) fprintf(fp, "%s %s", q ? " +" : "", m->f[f->sum_parts[q]].name);
      fprintf(fp, " (a derived field)\n");
    }
    if (f->zc_from >= 0)
      fprintf(fp, "  kept exactly: %s is drawn given %s (combinations no real row has stay impossible)\n",
              f->name, m->f[f->zc_from].name);
  }
  if (m->mix_rejected)
    fprintf(fp, "  clusters:     %zu found but not used: %zu rows drawn with them repeat %ld real rows, "
                "without them %ld\n", m->mix_rejected, m->mix_rows, m->mix_copies[0], m->mix_copies[1]);
  if (m->n_comp >= 2) {
    fprintf(fp, "  clusters:     %zu (hidden field %s; shares", m->n_comp, m->comp_name);
    for (size_t c = 0; c < m->n_comp; c++) fprintf(fp, " %g", m->comp[c].w);
    fprintf(fp, "): the %zu correlated columns are drawn from per-cluster marginals\n", m->n_cop);
  }
  for (size_t i = 0; i < m->n_fields; i++)
    if (m->f[i].mc_expr)
      fprintf(fp, "  missingness of %s depends on %s: rate %g where it holds, %g elsewhere (chi-square %g)\n",
              m->f[i].name, m->f[i].mc_expr, m->f[i].mc_rate, m->f[i].missing, m->f[i].mc_chi2);
  if (m->epsilon <= 0) ms__mst_accounting(m->mst, fp);
  if (m->epsilon <= 0) {
    fprintf(fp,
            "privacy: not differentially private; k-threshold rules with k = %zu (no knot, bound or "
            "category describes fewer than k rows)\n",
            m->k_min);
  }
  int bad = ferror(fp);
  if (fclose(fp) || bad) { /* the stream could not grow */
    free(s);
    return NULL;
  }
  return s;
}

/* ---- reference sampler ---- */

/* Rows of ms_fit_model_sample in pieces (core/pool.h): every row is a
 * pure function of (seed, row), so the cut and the thread do not matter. */
typedef struct {
  const ms_fit_model *m;
  ms_frame *fr;
  const gsl_matrix *L;
  size_t dc;
  ms_rng_key kc, kmix;
  const ms_rng_key *kf;
  const size_t *after; /* dates drawn as base + gap, bases first */
  size_t n_after;
  size_t n, pieces;
  const ms_cancel_flag *cancel;
  atomic_int oom, stop;
} sample_job;

/* A computed number as its column writes it: a real rounded to its
 * decimals, an integer to a whole number; other kinds (dates) as they are. */
static double as_written(double v, ms_fkind kind, int decimals) {
  if (kind == MS_FKIND_INTEGER) return round(v);
  if (kind != MS_FKIND_REAL) return v;
  double sc = pow(10, decimals);
  return round(v * sc) / sc;
}

static void sample_row(const sample_job *sj, size_t r, double *e, double *z, double *uu) {
  const ms_fit_model *m = sj->m;
  ms_frame *fr = sj->fr;
  const gsl_matrix *L = sj->L;
  const size_t dc = sj->dc;
  const ms_rng_key kc = sj->kc, *kf = sj->kf;
  for (size_t i = 0; i < dc; i++) e[i] = ms_rng_normal(kc, r, i);
  for (size_t i = 0; i < dc; i++) {
    double s = 0;
    for (size_t l = 0; l <= i; l++) s += gsl_matrix_get(L, i, l) * e[l];
    z[i] = s;
  }
  /* the row's cluster (mixture models) */
  size_t cl = 0;
  if (m->n_comp >= 2) {
    double uc = ms_rng_uniform(sj->kmix, r, 0), acc = 0;
    cl = m->n_comp - 1;
    for (size_t k = 0; k < m->n_comp; k++) {
      acc += m->comp[k].w;
      if (uc < acc) {
        cl = k;
        break;
      }
    }
  }
  for (size_t j = 0; j < m->n_fields; j++) {
    const fit_field *f = &m->f[j];
    ms_frame_col *c = &fr->cols[j];
    if (f->kind == MS_FKIND_ID) {
      c->code[r] = (int32_t)r;
      continue;
    }
    double u = dc && f->cop >= 0 ? gsl_cdf_ugaussian_P(z[f->cop]) : ms_rng_uniform(kf[j], r, 0);
    if (u <= 0) u = 1e-300;
    if (u >= 1) u = 1 - 1e-16;
    uu[j] = u;
    int miss = f->suppressed || (f->mc_col < 0 && ms_rng_uniform(kf[j], r, 1) < f->missing);
    /* the marginal in force: the row's cluster's for a copula member */
    const fit_field *mf = m->n_comp >= 2 && f->cop >= 0 ? &m->comp[cl].f[f->cop] : f;
    if (f->kind == MS_FKIND_CATEGORICAL) {
      int32_t pick = (int32_t)f->n_cats - 1;
      double acc = 0;
      for (size_t l = 0; l < f->n_cats; l++) {
        acc += mf->probs[l];
        if (u < acc) {
          pick = (int32_t)l;
          break;
        }
      }
      c->code[r] = miss ? -1 : pick;
    } else if (f->kind == MS_FKIND_BOOL) {
      c->num[r] = miss ? NAN : (u >= mf->probs[0] ? 1 : 0);
    } else {
      c->num[r] = miss ? NAN : numeric_draw(mf, u);
    }
  }
  /* Labels drawn given another field's label (impossible combinations),
   * with the same u, once that label is drawn. */
  for (size_t j = 0; j < m->n_fields; j++) {
    const fit_field *f = &m->f[j];
    if (f->zc_from < 0) continue;
    const fit_field *fx = &m->f[f->zc_from];
    const ms_frame_col *cx = &fr->cols[f->zc_from];
    ms_frame_col *c = &fr->cols[j];
    int32_t x = fx->kind == MS_FKIND_BOOL ? (isnan(cx->num[r]) ? -1 : cx->num[r] != 0) : cx->code[r];
    int miss = f->kind == MS_FKIND_BOOL ? isnan(c->num[r]) : c->code[r] < 0;
    if (x < 0 || (size_t)x >= f->zc_nx || miss) continue;
    const double *pr = f->zc_probs + (size_t)x * f->zc_ny;
    int32_t pick = (int32_t)f->zc_ny - 1;
    double acc = 0;
    for (size_t l = 0; l < f->zc_ny; l++) {
      acc += pr[l];
      if (uu[j] < acc) {
        pick = (int32_t)l;
        break;
      }
    }
    if (f->kind == MS_FKIND_BOOL) c->num[r] = pick;
    else c->code[r] = pick;
  }
  /* Conditional missingness, once the condition's column (which has
   * none itself) is drawn. */
  for (size_t j = 0; j < m->n_fields; j++) {
    const fit_field *f = &m->f[j];
    if (f->mc_col < 0 || f->suppressed) continue;
    const ms_frame_col *cy = &fr->cols[f->mc_col];
    int cd;
    if (f->mc_type == 1) cd = cy->code[r] < 0 ? -1 : cy->code[r] == f->mc_cat;
    else cd = isnan(cy->num[r]) ? -1 : f->mc_type == 0 ? cy->num[r] != 0 : cy->num[r] < f->mc_thr;
    double rate = cd == 1 ? f->mc_rate : f->missing;
    if (ms_rng_uniform(kf[j], r, 1) < rate) {
      ms_frame_col *c = &fr->cols[j];
      if (c->code) c->code[r] = -1;
      else c->num[r] = NAN;
    }
  }
  /* Relations kept exactly: a date is its base plus the drawn gap, a
   * difference is computed, a determined label follows its determinant. */
  for (size_t q = 0; q < sj->n_after; q++) {
    const fit_field *f = &m->f[sj->after[q]];
    double *x = &fr->cols[sj->after[q]].num[r];
    *x = as_written(*x + fr->cols[f->rel_base].num[r], f->kind, f->out_decimals);
  }
  for (size_t j = 0; j < m->n_fields; j++) {
    const fit_field *f = &m->f[j];
    if (f->diff_a >= 0) {
      double v = fr->cols[f->diff_b].num[r] - fr->cols[f->diff_a].num[r];
      fr->cols[j].num[r] = as_written(v, f->kind, f->decimals);
    }
    if (f->sum_parts) {
      double v = 0;
      for (size_t q = 0; q < f->n_sum; q++) v += fr->cols[f->sum_parts[q]].num[r];
      fr->cols[j].num[r] = as_written(v, f->kind, f->decimals);
    }
    if (f->fd_from >= 0 && f->fd_emit) {
      int32_t x = fr->cols[f->fd_from].code[r];
      if (x < 0) fr->cols[j].code[r] = -1;
      else if (f->fd_emit[x] >= 0) fr->cols[j].code[r] = f->fd_emit[x];
    }
  }
}

static void sample_piece(void *ctx, size_t t, size_t worker) {
  sample_job *sj = ctx;
  (void)worker;
  const size_t dc = sj->dc;
  double *e = ms__malloc((dc ? dc : 1) * sizeof *e), *z = ms__malloc((dc ? dc : 1) * sizeof *z);
  double *uu = ms__malloc((sj->m->n_fields ? sj->m->n_fields : 1) * sizeof *uu);
  if (!e || !z || !uu)
    atomic_store(&sj->oom, 1);
  else
    for (size_t r = sj->n * t / sj->pieces; r < sj->n * (t + 1) / sj->pieces; r++) {
      /* one load per row: the rest of a cancelled run costs nothing */
      if (sj->cancel && *sj->cancel) {
        atomic_store(&sj->stop, 1);
        break;
      }
      sample_row(sj, r, e, z, uu);
    }
  free(e);
  free(z);
  free(uu);
}

ms_status ms_fit_model_sample(ms_frame **out, const ms_fit_model *m, size_t n, uint64_t seed,
                              int independent, ms_diag *d) {
  *out = NULL;
  ms_frame *fr = ms__calloc(1, sizeof *fr);
  if (!fr) return ms__diag_nomem(d, NULL, NULL, "the sampled frame");
  fr->n_rows = n;
  fr->cols = ms__calloc(m->n_fields, sizeof *fr->cols);
  if (fr->cols) fr->n_cols = m->n_fields;
  fr->source = ms__strdup("(sampled)");
  ms_status st = fr->cols && fr->source ? MS_OK : MS_ERR_NOMEM;
  gsl_matrix *L = NULL;
  size_t dc = independent ? 0 : m->n_cop;
  if (!st && dc >= 2) {
    L = gsl_matrix_alloc(dc, dc);
    if (!L) st = MS_ERR_NOMEM;
    else {
      for (size_t i = 0; i < dc; i++)
        for (size_t j = 0; j < dc; j++) gsl_matrix_set(L, i, j, m->corr[i * dc + j]);
      if (gsl_linalg_cholesky_decomp1(L))
        st = ms_diag_add(d, MS_ERR_MATH, NULL, 0, 0, NULL, "correlation matrix is not positive definite");
    }
  }
  for (size_t j = 0; j < m->n_fields && !st; j++) {
    const fit_field *f = &m->f[j];
    ms_frame_col *c = &fr->cols[j];
    c->kind = f->kind;
    c->decimals = f->rel_base >= 0 && f->kind != MS_FKIND_DATE ? f->out_decimals : f->decimals;
    c->real_style = f->real_style;
    c->has_time = f->has_time;
    if (!(c->name = ms__strdup(f->label ? f->label : f->name))) st = MS_ERR_NOMEM;
    for (int b = 0; b < 2 && !st; b++)
      if (f->btext[b] && !(c->bool_text[b] = ms__strdup(f->btext[b]))) st = MS_ERR_NOMEM;
    if (!st && f->date_format && !(c->date_format = ms__strdup(f->date_format))) st = MS_ERR_NOMEM;
    if (st) break;
    if (f->kind == MS_FKIND_ID || f->kind == MS_FKIND_CATEGORICAL) {
      c->code = ms__malloc((n ? n : 1) * sizeof *c->code);
      size_t nl = f->kind == MS_FKIND_ID ? n : f->n_cats;
      c->levels = ms__calloc(nl ? nl : 1, sizeof *c->levels);
      if (!c->code || !c->levels) st = MS_ERR_NOMEM;
      for (size_t l = 0; l < nl && !st; l++) {
        if (f->text) {
          c->levels[l] = ms__strdup(MS_FIT_TEXT_PLACEHOLDER);
        } else if (f->kind == MS_FKIND_ID) {
          if (ms__asprintf(&c->levels[l], "%s%0*lld", f->id_prefix ? f->id_prefix : "", f->id_width,
                       (long long)(f->id_start ? f->id_start : 1) + (long long)l) < 0)
            c->levels[l] = NULL;
        } else {
          c->levels[l] = ms__strdup(f->cats[l]);
        }
        if (!c->levels[l]) st = MS_ERR_NOMEM;
        c->n_levels = l + 1;
      }
    } else {
      c->num = ms__malloc((n ? n : 1) * sizeof *c->num);
      if (!c->num) st = MS_ERR_NOMEM;
    }
  }
  if (st == MS_ERR_NOMEM) ms__diag_nomem(d, NULL, NULL, "the sampled frame");
  if (st) {
    gsl_matrix_free(L);
    ms_frame_free(fr);
    return st;
  }
  ms_rng_key kc = ms_rng_key_make(seed, ms_rng_stream("fit/sample/(copula)"));
  ms_rng_key *kf = ms__malloc((m->n_fields ? m->n_fields : 1) * sizeof *kf);
  if (!kf) {
    gsl_matrix_free(L);
    ms_frame_free(fr);
    return ms__diag_nomem(d, NULL, NULL, "the sampler's keys");
  }
  for (size_t j = 0; j < m->n_fields; j++) {
    char nm[512];
    snprintf(nm, sizeof nm, "fit/sample/%s", m->f[j].name);
    kf[j] = ms_rng_key_make(seed, ms_rng_stream(nm));
  }
  /* Dates drawn after another date, base before dependant (the base
   * relation is a forest: a base is never its dependant's dependant). */
  size_t *after = ms__malloc((m->n_fields ? m->n_fields : 1) * sizeof *after), n_after = 0;
  if (!after) {
    free(kf);
    gsl_matrix_free(L);
    ms_frame_free(fr);
    return ms__diag_nomem(d, NULL, NULL, "the sampler's keys");
  }
  for (int depth = 1; depth <= (int)m->n_fields; depth++)
    for (size_t j = 0; j < m->n_fields; j++) {
      int dd = 0;
      for (int b = m->f[j].rel_base; b >= 0 && dd <= depth; b = m->f[b].rel_base) dd++;
      if (dd == depth) after[n_after++] = j;
    }
  ms_rng_key kmix = ms_rng_key_make(seed, ms_rng_stream("fit/sample/(cluster)"));
  sample_job sj = {m, fr, L, dc, kc, kmix, kf, after, n_after, n, 0, m->cancel, 0, 0};
  const size_t nt = ms__parallel_threads();
  sj.pieces = n / 256 < nt * MS__TASKS_PER_THREAD ? n / 256 : nt * MS__TASKS_PER_THREAD;
  if (sj.pieces < 1) sj.pieces = 1;
  ms__parallel(sj.pieces, nt, sample_piece, &sj);
  const int oom = atomic_load(&sj.oom), stop = atomic_load(&sj.stop);
  free(kf);
  free(after);
  gsl_matrix_free(L);
  if (oom) {
    ms_frame_free(fr);
    return ms__diag_nomem(d, NULL, NULL, "the sampler's per-thread buffers");
  }
  if (stop) {
    ms_frame_free(fr);
    return ms_diag_add(d, MS_ERR_CANCELLED, NULL, 0, 0, NULL, "sampling cancelled");
  }
  for (size_t j = 0; j < fr->n_cols; j++) {
    ms_frame_col *c = &fr->cols[j];
    for (size_t r = 0; r < n; r++)
      if (c->code ? c->code[r] < 0 : isnan(c->num[r])) c->n_missing++;
  }
  *out = fr;
  return MS_OK;
}
