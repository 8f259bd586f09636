/* Conditional missingness of the fit: for each column with enough missing
 * values, the condition on one other column that best explains it (2x2
 * chi-square; under DP noisy tables and a z-test including the noise): a
 * bool, a label, a value below the median, or the other column being
 * missing itself (columns missing together, e.g. the measurements of one
 * visit). Conditions may chain (y's missingness following z's) but never
 * form a cycle. */
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

/* 1 / 0 when the condition holds / does not, -1 when Y is missing (type
 * 3: whether Y is missing). */
static int cond_at(const ms_frame_col *cy, const int32_t *map, int type, int32_t cat,
                   double thr, size_t r) {
  if (type == 3) return ms__frame_cell_missing(cy, r);
  if (type == 1) {
    int32_t v = cy->code[r];
    if (v < 0 || map[v] < 0) return -1;
    return map[v] == cat;
  }
  double v = cy->num[r];
  if (isnan(v)) return -1;
  return type == 0 ? v != 0 : v < thr;
}

/* qsort order of candidate indices: larger score first, then lower index
 * (qsort has no context argument; the fit runs one table at a time). */
static _Thread_local const double *sort_score;
static int by_score(const void *a, const void *b) {
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  if (sort_score[i] != sort_score[j]) return sort_score[i] > sort_score[j] ? -1 : 1;
  return (i > j) - (i < j);
}

/* Whether field y's value or missingness depends on field x, through any
 * of the relations the spec writes as references (a gap on a base, a
 * difference, a total, a determinant, bands, impossible combinations,
 * another missingness rule): a rule making x's missingness follow y would
 * then close a cycle (ivstop = ivstart + a gap, ivstart missing where ivstop
 * is). seen: nf bytes of scratch. */
static int depends_on(const ms_fit_model *m, int y, int x, unsigned char *seen) {
  if (y < 0) return 0;
  if (y == x) return 1;
  if (seen[y]) return 0;
  seen[y] = 1;
  const fit_field *f = &m->f[y];
  int from[] = {f->rel_base, f->diff_a, f->diff_b, f->fd_from, f->band_from, f->zc_from, f->mc_col};
  for (size_t i = 0; i < sizeof from / sizeof *from; i++)
    if (depends_on(m, from[i], x, seen)) return 1;
  for (size_t q = 0; f->sum_parts && q < f->n_sum; q++)
    if (depends_on(m, f->sum_parts[q], x, seen)) return 1;
  return 0;
}

static double chi2_2x2(const double *c) {
  double a = c[0], b = c[1], cc = c[2], d = c[3], n = a + b + cc + d;
  double den = (a + b) * (cc + d) * (a + cc) * (b + d);
  return den > 0 ? n * (a * d - b * cc) * (a * d - b * cc) / den : 0;
}

/* Finds, for each column with enough missing values, the condition on one
 * other column that best explains its missingness (2x2 chi-square, 1 df,
 * above 10.83 = p < 0.001, rates at least 0.05 apart, every cell >= k rows
 * or empty -- a column missing exactly when another is, or exactly where a
 * label holds, describes groups, not a few rows; a cell under k rows and
 * at most 5 % of its group counts as empty;
 * under DP every cell of every candidate table is Gaussian-noised with the
 * tables' joint L2 sensitivity sqrt(T), a noisy cell below 3 sigma counts as
 * empty -- it cannot be told from one, and a column present exactly where
 * another holds a label has two empty cells -- every other cell must
 * exceed 3 sigma, and the test is a two-proportion z^2 whose variance
 * includes the noise).
 * Conditions may chain but never form a cycle. rho_avail: zCDP budget
 * available (DP); the amount spent goes to m->rho_miss. */
ms_status ms__fit_missingness(ms_fit_model *m, const ms_frame *data, int32_t **maps,
                              const ms_fit_params *p, double rho_avail) {
  int dp = m->epsilon > 0;
  size_t nf = m->n_fields, cap = 64, nc = 0;
  mcand *cs = ms__malloc(cap * sizeof *cs);
  if (!cs) return MS_ERR_NOMEM;
  for (size_t x = 0; x < nf; x++) {
    fit_field *fx = &m->f[x];
    const ms_frame_col *cx = &data->cols[x];
    if (fx->kind == MS_FKIND_ID || fx->suppressed || fx->diff_a >= 0 || fx->sum_parts || fx->fd_from >= 0 ||
        fx->band_from >= 0 ||
        fx->rel_base >= 0)
      continue;
    if (dp ? !(fx->missing >= 0.02 && fx->missing <= 0.98)
           : (cx->n_missing < p->k_min || data->n_rows - cx->n_missing < p->k_min))
      continue;
    for (size_t y = 0; y < nf; y++) {
      const fit_field *fy = &m->f[y];
      /* a determined column is no condition: its determinant says the
       * same, and a rule on it could close a cycle (hba1c missing where
       * diabetic is, diabetic set by hba1c's bands) */
      if (y == x || fy->suppressed || !is_identifier(fy->name) || fy->fd_from >= 0 || fy->band_from >= 0) continue;
      int types[16], nt = 0;
      int32_t cats[16];
      double thrs[16] = {0};
      const ms_frame_col *cy0 = &data->cols[y];
      if (fy->kind != MS_FKIND_ID &&
          (dp ? fy->missing >= 0.02 && fy->missing <= 0.98
              : cy0->n_missing >= p->k_min && data->n_rows - cy0->n_missing >= p->k_min))
        types[nt] = 3, cats[nt++] = 0;
      if (fy->kind == MS_FKIND_BOOL && (!fy->btext[1] || !fy->btext[0] || strchr(fy->btext[1], '\'') || strchr(fy->btext[1], '\\')))
        continue;
      if (fy->kind == MS_FKIND_BOOL) types[nt] = 0, cats[nt++] = 0;
      else if (fy->kind == MS_FKIND_CATEGORICAL && fy->n_cats >= 2) {
        for (size_t l = 0; l < fy->n_cats && nt < 8; l++)
          if (!strchr(fy->cats[l], '\'') && !strchr(fy->cats[l], '\\')) types[nt] = 1, cats[nt++] = (int32_t)l;
      } else if ((fy->kind == MS_FKIND_INTEGER || fy->kind == MS_FKIND_REAL) && fy->fam != FAM_CONSTANT) {
        /* y < a value of its fitted marginal: the median under DP (one
         * noisy table), else the deciles and quartiles (where a block of
         * rows begins: enrolment ids, a date of a protocol change) */
        static const double at[] = {0.5, 0.1, 0.2, 0.25, 0.3, 0.4, 0.6, 0.7, 0.75, 0.8, 0.9};
        for (size_t q = 0; q < (dp ? 1 : sizeof at / sizeof *at); q++) {
          double thr = ms__fit_sig6(ms__fit_fam_inv(fy, at[q]));
          if (fy->kind == MS_FKIND_INTEGER) thr = round(thr);
          int dup = 0;
          for (int t = 0; t < nt; t++) dup |= types[t] == 2 && thrs[t] == thr;
          if (!dup) types[nt] = 2, thrs[nt] = thr, cats[nt++] = 0;
        }
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
        c->x = (int)x, c->y = (int)y, c->type = types[t], c->cat = cats[t], c->thr = thrs[t];
        const ms_frame_col *cy = &data->cols[y];
        for (size_t r = 0; r < data->n_rows; r++) {
          int miss = ms__frame_cell_missing(cx, r);
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
      ms_rng_key k = ms__fit_dp_key(p->seed, "(missingness)", "tables");
      for (size_t i = 0; i < nc; i++)
        for (int q = 0; q < 4; q++) cs[i].cell[q] += ms__fit_gauss(k, 4 * (uint64_t)i + (uint64_t)q, m->miss_sigma);
      if (3 * m->miss_sigma > floor_cell) floor_cell = 3 * m->miss_sigma;
    }
  }
  /* The candidates' statistics (the condition's groups must hold k rows
   * each), then the best first over all columns, so that a column that
   * explains several others (their common missingness) is the one they
   * lean on. */
  double *score = ms__malloc((nc ? nc : 1) * sizeof *score);
  size_t *order = ms__malloc((nc ? nc : 1) * sizeof *order);
  unsigned char *seen = ms__malloc(nf ? nf : 1);
  if (!score || !order || !seen) {
    free(seen);
    free(score);
    free(order);
    free(cs);
    return MS_ERR_NOMEM;
  }
  size_t ns = 0;
  for (size_t i = 0; i < nc; i++) {
    mcand *c = &cs[i];
    int ok = 1;
    for (int q = 0; q < 4; q++) {
      /* without DP a cell under k rows that is at most 5 % of its group is
       * released as empty (releasing less); a larger one rejects the
       * condition (its rate would be off). Under DP a noisy cell below 3
       * sigma is released as empty, as a column's missing count is. */
      double group = c->cell[q & 2] + c->cell[(q & 2) + 1];
      if (c->cell[q] < floor_cell && (dp || c->cell[q] <= 0.05 * group)) c->cell[q] = 0;
      ok &= c->cell[q] >= floor_cell || c->cell[q] == 0;
    }
    ok &= c->cell[0] + c->cell[1] >= floor_cell && c->cell[2] + c->cell[3] >= floor_cell;
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
    if (!(fabs(ra - rb) >= 0.05 && chi > 10.83)) continue;
    score[i] = chi;
    order[ns++] = i;
  }
  /* best first; ties by candidate order */
  sort_score = score;
  qsort(order, ns, sizeof *order, by_score);
  for (size_t q = 0; q < ns; q++) {
    const mcand *best = &cs[order[q]];
    size_t x = (size_t)best->x;
    double bchi = score[order[q]];
    if (m->f[x].mc_col >= 0) continue;
    /* conditions form chains (y's missingness may follow z's), never a
     * cycle: nothing y is made from may lead back to x */
    memset(seen, 0, nf);
    if (depends_on(m, best->y, (int)x, seen)) continue;
    fit_field *fx = &m->f[x];
    const fit_field *fy = &m->f[best->y];
    fx->mc_col = best->y;
    fx->mc_type = best->type;
    fx->mc_cat = best->cat;
    fx->mc_thr = best->thr;
    fx->mc_chi2 = ms__fit_sig6(bchi);
    fx->mc_rate = ms__fit_sig6(best->cell[0] / (best->cell[0] + best->cell[1]));
    fx->missing = ms__fit_sig6(best->cell[2] / (best->cell[2] + best->cell[3]));
    int rc = best->type == 3 ? ms__asprintf(&fx->mc_expr, "is_missing(%s)", fy->name)
             : best->type == 0 && fy->btext[1] && strcmp(fy->btext[1], "true") ? ms__asprintf(&fx->mc_expr, "%s == '%s'", fy->name, fy->btext[1])
             : best->type == 0 ? ms__asprintf(&fx->mc_expr, "%s", fy->name)
             : best->type == 1 ? ms__asprintf(&fx->mc_expr, "%s == '%s'", fy->name, fy->cats[best->cat])
                               : ms__asprintf(&fx->mc_expr, "%s < %.10g", fy->name, best->thr);
    if (rc < 0) {
      fx->mc_expr = NULL;
      free(seen);
      free(cs);
      free(score);
      free(order);
      return MS_ERR_NOMEM;
    }
  }
  free(seen);
  free(score);
  free(order);
  free(cs);
  return MS_OK;
}

