/* The fit's Gaussian copula: normal scores through the fitted marginals,
 * latent (threshold-model) correlations for coarse columns, the nearest
 * correlation matrix (Higham 2002, one eigenvalue-clipping step), the DP
 * correlation (clipped score outer products, Gaussian noise) and the
 * non-DP mixture of copulas (k-means clusters chosen by BIC). fit.c
 * describes the accounting. */
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

/* ---- copula ---- */

/* Pairwise-complete Pearson correlation of the d columns of Z (column i at
 * Z + i n, NaN: absent) into S (d x d, unit diagonal); 0 over fewer than
 * k_min rows or where a column does not vary. */
void ms__fit_pairwise_corr(const double *Z, size_t d, size_t n, double k_min, double *S) {
  for (size_t a = 0; a < d; a++) {
    S[a * d + a] = 1;
    for (size_t b = a + 1; b < d; b++) {
      double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, cnt = 0;
      const double *za = Z + a * n, *zb = Z + b * n;
      for (size_t r = 0; r < n; r++) {
        if (isnan(za[r]) || isnan(zb[r])) continue;
        sa += za[r], sb += zb[r], saa += za[r] * za[r], sbb += zb[r] * zb[r];
        sab += za[r] * zb[r];
        cnt++;
      }
      double v = 0;
      if (cnt >= k_min) {
        double cov = sab - sa * sb / cnt, va = saa - sa * sa / cnt, vb = sbb - sb * sb / cnt;
        v = va > 0 && vb > 0 ? cov / sqrt(va * vb) : 0;
      }
      S[a * d + b] = S[b * d + a] = v;
    }
  }
}

/* Nearest correlation matrix by eigenvalue clipping + unit-diagonal rescale;
 * then rounds to 4 decimals and checks Cholesky, clipping harder if needed. */
ms_status ms__fit_repair_correlation(double *R, size_t d) {
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
      double u = ms__fit_fam_cdf(f, v);
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
  qsort(pr, np, sizeof *pr, ms__fit_cmp_double); /* first member is the double key */
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
    for (size_t l = 0; l < nc; l++) cf->probs[l] = tot > 0 ? ms__fit_sig6(cf->probs[l] / tot) : g->probs[l];
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
    st = ms__fit_numeric_plain(cf, &sub, nr, &pc);
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
ms_status ms__fit_mixture(ms_fit_model *m, const ms_frame *data, int32_t **maps,
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
        cp->w = ms__fit_sig6((double)nr / (double)n);
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
      m->comp_name = ms__fit_field_name("cluster", names, m->n_fields);
      free(names);
      if (!m->comp_name) st = MS_ERR_NOMEM;
    }
  }
  if (!st && best_k >= 2) {
    *lab_out = all;
    all = NULL;
  } else if (st || best_k < 2) {
    ms__fit_comps_free(m->comp, m->n_comp, d);
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

ms_status ms__fit_copula(ms_fit_model *m, const ms_frame *data, int32_t **maps,
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
    ms__fit_pairwise_corr(Z, d, n, (double)p->k_min, S);
  } else {
    /* Clip each row's score vector to squared norm C2 = d / 2 (most rows
     * are clipped: the noise is a quarter of what the 98th percentile of
     * chi^2_d, d + 2 sqrt(2d), would leave, and clipping's bias is removed
     * below); then one row changes the released off-diagonal upper
     * triangle by at most sqrt(sum_{a<b} z_a^2 z_b^2) = sqrt((||z||^4 -
     * sum z_a^4) / 2) <= C2 / sqrt(2). The diagonal is not released. */
    double C2 = MS__CORR_CLIP_SHARE * (double)d;
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
    ms_rng_key k = ms__fit_dp_key(p->seed, "(copula)", "correlation");
    m->corr_sigma = C2 / sqrt(2) / sqrt(2 * m->rho_corr);
    for (size_t a = 0; a < d; a++)
      for (size_t b = a + 1; b < d; b++) S[a * d + b] += ms__fit_gauss(k, a * d + b, m->corr_sigma);
    /* Post-processing (gen/fit/dp_corr.c): normalise by the released
     * present counts and by clipping's first-order factor, denoise, remove
     * the rest of clipping's bias. */
    for (size_t a = 0; a < d; a++) S[a * d + a] = (double)m->n_out * (1 - m->f[m->cop[a]].missing);
    const double cfac = ms__dp_corr_clip_factor(d, C2);
    for (size_t a = 0; a < d; a++)
      for (size_t b = a + 1; b < d; b++) S[a * d + b] /= cfac;
    st = ms__dp_corr_estimate(S, d, m->corr_sigma / cfac, &m->corr_shrink, &m->corr_components);
    if (!st) st = ms__dp_corr_unclip(S, d, C2, p->seed);
    if (st) goto out;
  }
  st = latent_correlations(m, S);
  if (!st) st = ms__fit_repair_correlation(S, d);
  if (!st) {
    m->corr = S;
    S = NULL;
  }
out:
  free(Z);
  free(S);
  return st;
}

