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
 * the zCDP -> (epsilon, delta) conversion; rho is the largest the
 * conversion of Canonne, Kamath & Steinke (2020) allows (ms__zcdp_rho).
 * Two thirds of rho go to the
 * marginals (split evenly over the fitted columns), one third to the copula
 * correlation (all to the marginals without a copula). A numeric column
 * without public bounds spends half of its share on a histogram over a
 * fixed, data-independent log-scale grid (2 bins per decade) whose noisy
 * mode bin, grown over contiguous bins above 2 sigma, gives the range, the rest on a histogram inside the range
 * (plus a missing bin; bins chosen from the noisy count) that is smoothed,
 * clamped at 0 and read as a monotone CDF. Categorical levels: Gaussian
 * stability-based histogram (noisy counts of observed levels released above
 * 1 + sigma z(delta_thr / c), c counting the categorical columns and the
 * numeric ones that may release frequent values the same way, fit_dp.c);
 * bools: 3-bin Gaussian histogram. The
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
#include "fit/fit_model.h"
#include "medsynth/fit.h"
#include "medsynth/rng.h"
#include "medsynth/table.h"
#include "medsynth/version.h"

/* What a free-text column is written as (docs/fit.md). */
void ms_fit_params_init(ms_fit_params *p) {
  memset(p, 0, sizeof *p);
  p->k_min = 5;
  p->max_knots = 41;
  p->parametric = 1;
  p->copula = 1;
  p->mixture = 1;
  p->method = MS_FIT_METHOD_AUTO;
}

static void field_free(fit_field *f) {
  free(f->name);
  free(f->label);
  free(f->btext[0]);
  free(f->btext[1]);
  free(f->date_format);
  free(f->id_prefix);
  free(f->fd_emit);
  free(f->band_cut);
  free(f->band_emit);
  free(f->mc_expr);
  free(f->gap_name);
  free(f->zc_probs);
  free(f->sum_parts);
  for (size_t i = 0; i < f->n_cats; i++) free(f->cats[i]);
  free(f->cats);
  free(f->probs);
  free(f->qp);
  free(f->qv);
  ms__dp_num_free(f->dp_num);
}
static void comp_field_free(fit_field *f) {
  free(f->qp);
  free(f->qv);
  free(f->probs);
}

void ms__fit_comps_free(fit_comp *comp, size_t n_comp, size_t n_cop) {
  for (size_t c = 0; comp && c < n_comp; c++) {
    for (size_t i = 0; comp[c].f && i < n_cop; i++) comp_field_free(&comp[c].f[i]);
    free(comp[c].f);
  }
  free(comp);
}

void ms_fit_model_free(ms_fit_model *m) {
  if (!m) return;
  ms__fit_comps_free(m->comp, m->n_comp, m->n_cop);
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
char *ms__fit_field_name(const char *h, char *const *taken, size_t n) {
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
  qsort(v, c->n_levels, sizeof *v, ms__fit_cmp_double);
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
 * headers need no check: each becomes a field name made from it (ms__fit_field_name)
 * and, when that differs, the header is the field's label. */
static ms_status check_names(const ms_frame *data, const ms_fit_params *p, ms_diag *d) {
  (void)data;
  if (p->table && !spec_name_ok(p->table))
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL,
                       "table name \"%s\" is not a valid spec name (letters, digits and _, not "
                       "starting with a digit, at most 63 characters)", p->table);
  return MS_OK;
}

/* How many of c's values have each fewest number of decimals that writes
 * them exactly (cnt[0..9]; a value needing more counts at 9, the most a
 * column is written with). Returns the values present. */
size_t ms__fit_decimal_counts(const ms_frame_col *c, size_t n_rows, size_t cnt[MS_FRAME_DECIMALS_MAX + 1]) {
  size_t present = 0;
  for (int d = 0; d <= MS_FRAME_DECIMALS_MAX; d++) cnt[d] = 0;
  for (size_t r = 0; r < n_rows; r++) {
    double v = c->num[r];
    if (isnan(v)) continue;
    present++;
    int d = 0;
    for (double p = 1; d < MS_FRAME_DECIMALS_MAX; d++, p *= 10) {
      double x = v * p;
      if (fabs(x - round(x)) <= 1e-9 * fmax(1, fabs(x))) break;
    }
    cnt[d]++;
  }
  return present;
}

/* The decimals a real column is written with: the fewest that write at
 * least 80 % of its values exactly (at most the column's largest). The
 * largest alone lets one value with a floating-point tail ("1.1300000000000001")
 * or a minority measured more finely put every synthetic value on a grid
 * the real column does not use, which a classifier sees at once (real
 * values pile up on the usual grid). Under DP the same rule reads noisy
 * counts (fit_dp.c, docs/privacy.md). */
static int usual_decimals(const ms_frame_col *c, size_t n_rows) {
  if (c->kind != MS_FKIND_REAL || c->decimals <= 0 || !c->num) return c->decimals;
  size_t cnt[MS_FRAME_DECIMALS_MAX + 1];
  size_t present = ms__fit_decimal_counts(c, n_rows, cnt), acc = 0;
  for (int d = 0; d < c->decimals; d++)
    if ((acc += cnt[d]) >= 0.8 * (double)present) return d;
  return c->decimals;
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
    /* a number after another joins as its gap (the column of the view;
     * the spec draws the number as base + gap): the gap depends on the
     * rest like any column (breast_cancer's worst radius less the mean
     * radius grows with the tumour) */
    const int num_gap = f->rel_base >= 0 && f->kind != MS_FKIND_DATE && f->gap_name;
    if (f->kind == MS_FKIND_ID || f->suppressed || f->diff_a >= 0 || f->fd_from >= 0 || f->band_from >= 0 ||
        (f->rel_base >= 0 && !num_gap))
      continue;
    ms__mst_col *mc = &cols[n];
    mc->name = num_gap ? f->gap_name : f->name;
    mc->field = j;
    mc->missing = f->missing;
    mc->sigma = f->sigma;
    if (f->kind == MS_FKIND_CATEGORICAL) {
      /* a column of more labels than a bin field's rules may hold (its own
       * rules, its children's) stays outside the model: its marginal */
      if (f->n_cats < 2 || !maps[j] || f->n_cats > MS__MST_MAX_LABELS) continue;
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
                     m->k_min, root, w, names, m->n_fields, p->method == MS_FIT_METHOD_AIM);
  free(w);
  free(cols);
  free(names);
  return st;
}

/* (epsilon, delta) -> rho: the largest rho whose zCDP guarantee implies
 * (epsilon, delta)-DP by the conversion of Canonne, Kamath & Steinke, "The
 * Discrete Gaussian for Differential Privacy" (NeurIPS 2020), Prop. 12 /
 * Cor. 13: delta(rho) = inf over a > 1 of exp((a - 1)(a rho - epsilon) +
 * a ln(1 - 1/a)) / (a - 1). The exponent is convex in a, its minimum where
 * (2a - 1) rho - epsilon + ln(1 - 1/a) = 0 (bisection), and delta(rho)
 * grows with rho (bisection on rho). Tighter than Bun & Steinke's
 * epsilon = rho + 2 sqrt(rho ln(1/delta)), which it always allows:
 * about 1.47 times the rho at epsilon 1, delta 1e-5. */
double ms__zcdp_delta(double rho, double eps) {
  if (!(rho > 0)) return 0;
  double lo = 1 + 1e-9, hi = (eps + 1) / (2 * rho) + 2, a = lo;
  for (int i = 0; i < 200; i++) {
    a = (lo + hi) / 2;
    if ((2 * a - 1) * rho - eps + log1p(-1 / a) < 0) lo = a;
    else hi = a;
  }
  double dl = exp((a - 1) * (a * rho - eps) + a * log1p(-1 / a)) / (a - 1);
  return dl < 1 ? dl : 1;
}

double ms__zcdp_rho(double eps, double delta) {
  if (!(delta > 0) || !(delta < 1) || !(eps > 0)) return 0;
  double lo = 0, hi = eps + 1;
  for (int i = 0; i < 200; i++) {
    double r = (lo + hi) / 2;
    if (ms__zcdp_delta(r, eps) <= delta) lo = r;
    else hi = r;
  }
  return lo;
}

/* A number ordered after another (a <= b) is fitted as its gap b - a,
 * >= 0, present where both are; the spec draws b as a + gap. The view's
 * column b becomes that gap (a date's gap is taken where it is fitted). */
static ms_status view_gap(const ms_frame *orig, ms_frame *view, const ms__rel *rel) {
  if (rel->kind != MS__REL_ORDER || orig->cols[rel->b].kind == MS_FKIND_DATE) return MS_OK;
  const ms_frame_col *ca = &orig->cols[rel->a], *cb = &orig->cols[rel->b];
  ms_frame_col *vc = &view->cols[rel->b];
  vc->num = ms__malloc((orig->n_rows ? orig->n_rows : 1) * sizeof *vc->num);
  if (!vc->num) return MS_ERR_NOMEM;
  vc->n_missing = 0;
  if (ca->decimals > vc->decimals) vc->decimals = ca->decimals;
  double sc = pow(10, vc->decimals);
  for (size_t r = 0; r < orig->n_rows; r++) {
    vc->num[r] = round((cb->num[r] - ca->num[r]) * sc) / sc;
    vc->n_missing += isnan(vc->num[r]);
  }
  return MS_OK;
}

/* The fit; an allocation failure that no step reported gets one message
 * naming the input. */
ms_status ms_fit_model_new(ms_fit_model **out, const ms_frame *data, const ms_fit_params *p, ms_diag *d) {
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
  if (!st && with >= 0) st = ms__fit_copula(m, data, maps, p, NULL);
  long without = !st && with >= 0 ? copies_of(m, &real, ns, seed, d) : -1;
  ms__strtab_deinit(&real, 1);
  if (!st && (with < 0 || without < 0)) st = MS_ERR_NOMEM;
  if (!st && (double)with > 1.5 * (double)without + 3 * sqrt((double)without + 1)) {
    m->mix_rejected = n_comp, m->mix_copies[0] = with, m->mix_copies[1] = without, m->mix_rows = ns;
    ms__fit_comps_free(comp, n_comp, m->n_cop);
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
int ms__fit_labelled(const fit_field *f) {
  if (f->kind == MS_FKIND_CATEGORICAL) return 1;
  return f->kind == MS_FKIND_BOOL && (f->btext[0] || f->btext[1]) &&
         !(f->btext[0] && f->btext[1] && !strcmp(f->btext[0], "false") && !strcmp(f->btext[1], "true"));
}
static size_t n_labels(const fit_field *f) { return f->kind == MS_FKIND_BOOL ? 2 : f->n_cats; }
const char *ms__fit_label_of(const fit_field *f, size_t l) {
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
  for (size_t q = 0; q < p->n_orders; q++) {
    const char *nb = p->order_after[q], *na = p->order_before[q];
    size_t jb = ms_frame_find(data, nb), ja = ms_frame_find(data, na);
    if (jb == SIZE_MAX || ja == SIZE_MAX) {
      BAD("--order %s>=%s: no column \"%s\"", nb, na, jb == SIZE_MAX ? nb : na);
      continue;
    }
    const ms_frame_col *cb = &data->cols[jb], *ca = &data->cols[ja];
    int nums = (ca->kind == MS_FKIND_INTEGER || ca->kind == MS_FKIND_REAL) &&
               (cb->kind == MS_FKIND_INTEGER || cb->kind == MS_FKIND_REAL);
    int dates = ca->kind == MS_FKIND_DATE && cb->kind == MS_FKIND_DATE;
    if (ja == jb) {
      BAD("--order %s>=%s: a column is not ordered after itself", nb, na);
      continue;
    }
    if (!nums && !dates)
      BAD("--order %s>=%s: the columns are %s and %s; an order is between two numbers or two dates", nb, na,
          ms_fkind_name(cb->kind), ms_fkind_name(ca->kind));
    else if (dates && ca->has_time && !cb->has_time)
      BAD("--order %s>=%s: a date (%s) cannot be drawn after a datetime (%s)", nb, na, nb, na);
    else if (ms__fit_bound_of(p, nb) != SIZE_MAX)
      BAD("--order %s>=%s: %s has --bounds; a column drawn after another is drawn from it, not within bounds", nb,
          na, nb);
    for (size_t r = 0; r < q; r++)
      if (!strcmp(p->order_after[r], nb)) BAD("--order: %s is declared after both %s and %s", nb, p->order_before[r], na);
    /* no cycle: following the declared orders back from a must not reach b */
    const char *x = na;
    for (size_t steps = 0; x && steps <= p->n_orders; steps++) {
      if (!strcmp(x, nb)) {
        BAD("--order %s>=%s: the declared orders form a cycle", nb, na);
        break;
      }
      const char *next = NULL;
      for (size_t r = 0; r < p->n_orders && !next; r++)
        if (r != q && !strcmp(p->order_after[r], x)) next = p->order_before[r];
      x = next;
    }
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
    if (p->method == MS_FIT_METHOD_COPULA)
      BAD("--rebalance needs --method mst or aim (the graphical model keeps every relation to the column)");
  }
#undef BAD
  return st;
}

/* Field j, a number drawn after another: written with the input's decimals
 * through the hidden field of its gap, "<name>_gap" unless taken. */
static ms_status name_hidden(ms_fit_model *m, size_t j, const ms_frame *data, const ms_frame_col *oc,
                             const char *suffix) {
  fit_field *f = &m->f[j];
  f->out_decimals = oc->decimals;
  char **taken = ms__malloc((data->n_cols + 1) * sizeof *taken);
  char want[128];
  snprintf(want, sizeof want, "%s_%s", f->name, suffix);
  if (taken) {
    for (size_t q = 0; q < j; q++) taken[q] = m->f[q].name;
    for (size_t q = j; q < data->n_cols; q++) taken[q] = data->cols[q].name;
    taken[j] = f->name;
    f->gap_name = ms__fit_field_name(want, taken, data->n_cols);
    free(taken);
  }
  return f->gap_name ? MS_OK : MS_ERR_NOMEM;
}

static ms_status name_gap(ms_fit_model *m, size_t j, const ms_frame *data, const ms_frame_col *oc) {
  return name_hidden(m, j, data, oc, "gap");
}

/* A column drawn after another, without DP: its own k-bounds (input
 * column c, written as a whole number unless real), which base + gap is
 * held within; none when fewer than k values are present. */
static ms_status own_bounds(fit_field *f, const ms_frame_col *c, size_t n_rows, size_t k) {
  ms_status st = ms__fit_k_bounds(c, n_rows, k, c->kind != MS_FKIND_REAL, c->decimals, &f->own_lo, &f->own_hi);
  f->own_bounds = st == MS_OK;
  return st == MS_ERR_NOMEM ? st : MS_OK;
}

/* A date after another, without DP: drawn as base + gap into a hidden
 * "<name>_drawn", the column itself that date kept within its own k-bounds
 * (docs/fit.md, "Relations"). Under DP its range is not released (a
 * column with --bounds is never drawn after another); datetimes keep the
 * draw as it is. */
static ms_status bound_date(ms_fit_model *m, size_t j, const ms_frame *data, const ms_frame_col *c,
                            const ms_fit_params *p) {
  fit_field *f = &m->f[j];
  if (c->has_time || m->epsilon > 0) return MS_OK;
  ms_status st = own_bounds(f, c, data->n_rows, p->k_min);
  return st || !f->own_bounds ? st : name_hidden(m, j, data, c, "drawn");
}

/* The declared orders (--order b>=a) joined to the relations found (none
 * under DP): one is added unless b is already the dependent column of a
 * relation found on every row (that one is kept), and a found order that
 * would close a cycle with it is dropped. */
static ms_status add_declared_orders(const ms_frame *f, const ms_fit_params *p, ms__rel **rels, size_t *n_rels) {
  size_t d = f->n_cols;
  for (size_t q = 0; q < p->n_orders; q++) {
    size_t b = ms_frame_find(f, p->order_after[q]), a = ms_frame_find(f, p->order_before[q]);
    int dependent = 0;
    for (size_t i = 0; i < *n_rels; i++) {
      const ms__rel *r = &(*rels)[i];
      dependent |= ((r->kind == MS__REL_DIFF || r->kind == MS__REL_SUM) && r->c == b) ||
                   ((r->kind == MS__REL_ORDER || r->kind == MS__REL_FD || r->kind == MS__REL_BAND) && r->b == b);
    }
    if (dependent) continue;
    /* a found order on a's chain back to b would close a cycle: drop it */
    for (size_t x = a, steps = 0; x != SIZE_MAX && steps <= d; steps++) {
      size_t next = SIZE_MAX, at = SIZE_MAX;
      for (size_t i = 0; i < *n_rels; i++)
        if ((*rels)[i].kind == MS__REL_ORDER && (*rels)[i].b == x) next = (*rels)[i].a, at = i;
      if (next == b) {
        free((*rels)[at].fd_map);
        free((*rels)[at].cuts);
        (*rels)[at] = (*rels)[--*n_rels];
        break;
      }
      x = next;
    }
    ms__rel *grown = ms__realloc(*rels, (*n_rels + 1) * sizeof *grown);
    if (!grown) return MS_ERR_NOMEM;
    *rels = grown;
    grown[(*n_rels)++] = (ms__rel){MS__REL_ORDER, a, b, SIZE_MAX, NULL, 0, NULL};
  }
  return MS_OK;
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
  /* Deterministic relations (without DP; under DP only those between dates,
   * by noisy tests in the budget block below: dp_relations.c). */
  ms__rel *rels = NULL;
  size_t n_rels = 0;
  if ((p->epsilon == 0 && (st = ms__relations_find(orig, p->k_min, &rels, &n_rels))) ||
      (st = add_declared_orders(orig, p, &rels, &n_rels))) {
    ms__relations_free(rels, n_rels);
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
      /* both sides of an order of numbers stay numbers (b = a + gap) */
      derived |= rels[q].kind == MS__REL_ORDER && (rels[q].a == j || rels[q].b == j);
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
  for (size_t q = 0; q < n_rels && !st; q++) st = view_gap(orig, &view, &rels[q]);
  data = &view;
  /* --method auto: AIM when enough columns are coarse (in the view: a
   * discrete number is a categorical of its values), the copula otherwise;
   * measured on real tables in docs/fit.md ("Which model"). */
  ms_fit_params pe = *p;
  for (size_t j = 0; j < data->n_cols; j++) {
    const ms_frame_col *c = &data->cols[j];
    if (c->kind == MS_FKIND_ID) continue;
    m->n_columns_fitted++;
    /* a categorical of more labels than the graphical model takes is not
     * coarse: AIM would leave it out (docs/fit.md) */
    m->n_coarse += (c->kind == MS_FKIND_CATEGORICAL && c->n_levels <= MS__MST_MAX_LABELS) || c->kind == MS_FKIND_BOOL;
  }
  int affordable = 0;
  if (pe.method == MS_FIT_METHOD_AUTO) {
    double need = p->epsilon > 0 ? 0.5 : 0.4, d = (double)m->n_columns_fitted;
    /* AIM scores every pair of columns over every row: beyond about 5e9
     * cell counts (a few seconds) the copula is fitted instead */
    affordable = d * (d - 1) / 2 * (double)data->n_rows <= 5e9;
    pe.method = p->rebalance_column || (m->n_columns_fitted >= 2 && affordable &&
                                        (double)m->n_coarse >= need * (double)m->n_columns_fitted)
                    ? MS_FIT_METHOD_AIM
                    : MS_FIT_METHOD_COPULA;
    m->method_auto = 1;
  }
  m->method = pe.method;
  p = &pe;
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
  size_t n_fit = m->n_columns_fitted, n_cop_candidates = 0;
  for (size_t j = 0; j < data->n_cols; j++) {
    const ms_frame_col *c = &data->cols[j];
    if (c->kind == MS_FKIND_ID) continue;
    if (c->kind != MS_FKIND_DATE && c->n_missing < data->n_rows) n_cop_candidates++;
  }
  int graph = p->method == MS_FIT_METHOD_MST || p->method == MS_FIT_METHOD_AIM;
  int use_mst = graph && n_fit >= 2;
  int use_copula = p->copula && n_cop_candidates >= 2 && !use_mst;
  double tau_cat = 0, z_thr = 0;
  size_t n_thr_num = 0;
  if (m->epsilon > 0) {
    /* delta: part to the release thresholds (below), the rest to the zCDP
     * conversion (ms__zcdp_rho). */
    size_t n_cat = 0;
    for (size_t j = 0; j < data->n_cols; j++) {
      const ms_frame_col *c = &data->cols[j];
      n_cat += c->kind == MS_FKIND_CATEGORICAL && dom_of[j] == SIZE_MAX;
      /* numeric columns without public bounds may release frequent values */
      n_thr_num +=
          (c->kind == MS_FKIND_INTEGER || c->kind == MS_FKIND_REAL) && ms__fit_bound_of(p, c->name) == SIZE_MAX;
    }
    /* a tenth when only numeric columns' frequent values use it (tables too
     * small for them lose 1 % of rho, not 5 %) */
    m->delta_thr = n_cat ? m->delta / 2 : n_thr_num ? m->delta / 10 : 0;
    m->delta_conv = m->delta - m->delta_thr;
    m->rho = ms__zcdp_rho(m->epsilon, m->delta_conv);
    /* Relations between dates and orders between numbers (dp_relations.c):
     * at most a tenth of rho, off the top, only when the table has two
     * dates or two numbers of a kind; what its tests did not spend stays
     * with the rest. A derived difference is not measured. */
    if (ms__dp_relations_tests(orig)) {
      unsigned char *bounded = ms__calloc(orig->n_cols ? orig->n_cols : 1, 1);
      size_t *fixed = ms__malloc((orig->n_cols ? orig->n_cols : 1) * sizeof *fixed), n_found = 0;
      ms__rel *found = NULL;
      for (size_t j = 0; bounded && fixed && j < orig->n_cols; j++) {
        bounded[j] = ms__fit_bound_of(p, orig->cols[j].name) != SIZE_MAX;
        fixed[j] = SIZE_MAX;
      }
      /* the declared orders (the only relations so far) */
      for (size_t q = 0; fixed && q < n_rels; q++) fixed[rels[q].b] = rels[q].a;
      st = bounded && fixed ? ms__dp_relations(orig, bounded, fixed, m->rho / 10, p->seed, &found, &n_found, &m->rel)
                            : MS_ERR_NOMEM;
      free(bounded);
      free(fixed);
      if (!st && n_found) {
        ms__rel *all = ms__realloc(rels, (n_rels + n_found) * sizeof *all);
        if (!all) st = MS_ERR_NOMEM;
        else memcpy(all + n_rels, found, n_found * sizeof *found), rels = all, n_rels += n_found;
      }
      free(found);
      if (st) {
        ms__diag_nomem(d, data->source, NULL, "the relations' tests");
        goto fail;
      }
      for (size_t q = n_rels - n_found; q < n_rels && !st; q++) st = view_gap(orig, &view, &rels[q]);
      if (st) {
        ms__diag_nomem(d, data->source, NULL, "the relations' tests");
        goto fail;
      }
      for (size_t q = n_rels - n_found; q < n_rels; q++)
        if (rels[q].kind == MS__REL_DIFF) {
          n_fit -= n_fit > 1;
          n_cop_candidates -= orig->cols[rels[q].c].n_missing < orig->n_rows;
        }
      use_copula = p->copula && n_cop_candidates >= 2 && !use_mst;
    }
    /* --method auto: AIM on a table of many rows from a quarter of coarse
     * columns, decided on the relations' released row count
     * (post-processing; a table without their tests has none and keeps
     * the rule above) */
    if (m->method_auto && pe.method == MS_FIT_METHOD_COPULA && affordable && n_fit >= 2 &&
        (double)m->n_coarse >= MS__AUTO_AIM_ROWS_SHARE * (double)m->n_columns_fitted &&
        m->rel.n_noisy >= MS__AUTO_AIM_ROWS) {
      pe.method = m->method = MS_FIT_METHOD_AIM;
      m->method_rows = 1;
      use_mst = 1;
      use_copula = 0;
    }
    double rho_free = m->rho - m->rel.rho;
    m->rho_corr = use_copula ? rho_free / 3 : 0;
    m->rho_marg = rho_free - m->rho_corr;
    if (use_mst) {
      /* MST, AIM: a third to the marginals, the rest to the selection and
       * the measured tables (split where fit_mst is called) */
      m->rho_corr = 0;
      m->rho_marg = rho_free / 3;
    }
    if ((n_cat || n_thr_num) && n_fit) {
      /* Union bound over the categorical columns and the numeric columns'
       * frequent values: a new level or value passes in one of them with
       * probability at most delta_thr. */
      double sigma = 1 / sqrt(2 * m->rho_marg / (double)n_fit);
      z_thr = gsl_cdf_ugaussian_Qinv(m->delta_thr / (double)(n_cat + n_thr_num));
      tau_cat = 1 + sigma * z_thr;
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
    f->rel_base = f->diff_a = f->diff_b = f->fd_from = f->zc_from = f->band_from = -1;
    f->orig_kind = oc->kind;
    for (size_t q = 0; q < n_rels; q++) {
      if (rels[q].kind == MS__REL_ORDER && rels[q].b == j) {
        f->rel_base = (int)rels[q].a;
        for (size_t o = 0; o < p->n_orders; o++)
          f->rel_declared |= !strcmp(p->order_after[o], oc->name) && !strcmp(p->order_before[o], orig->cols[rels[q].a].name);
      }
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
      if (rels[q].kind == MS__REL_BAND && rels[q].b == j) f->band_from = (int)rels[q].a;
    }
    f->kind = c->kind;
    /* a column in a relation keeps all its decimals: rounding one side of
     * an order or a difference more coarsely than the data would break it */
    int related = 0;
    for (size_t q = 0; q < n_rels; q++) {
      /* (a band's number is compared as written: it keeps its own) */
      related |= (rels[q].a == j && rels[q].kind != MS__REL_BAND) || rels[q].b == j ||
                 (rels[q].kind != MS__REL_ZERO && rels[q].c == j);
      for (size_t i = 0; rels[q].kind == MS__REL_SUM && i < rels[q].n_map; i++) related |= (size_t)rels[q].fd_map[i] == j;
    }
    f->decimals = m->epsilon > 0 || related ? c->decimals : usual_decimals(c, data->n_rows);
    f->discrete = c->kind != oc->kind;
    f->real_style = c->real_style;
    f->has_time = c->kind == MS_FKIND_DATE && c->has_time;
    char **taken = ms__malloc((j ? j : 1) * sizeof *taken);
    if (!taken) {
      st = ms__diag_nomem(d, data->source, c->name, "a column's fit");
      break;
    }
    for (size_t q = 0; q < j; q++) taken[q] = m->f[q].name;
    f->name = ms__fit_field_name(c->name, taken, j);
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
      f->missing = m->epsilon > 0 ? 0 : ms__fit_sig6((double)miss / (double)data->n_rows);
      continue;
    }
    /* Under DP a difference kept by the tests is not measured: the spec
     * computes it from its dates. */
    if (m->epsilon > 0 && f->diff_a >= 0) {
      f->fam = FAM_CONSTANT; /* what the reference sampler draws before computing it */
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
      st = ms__fit_categorical(f, c, data->n_rows, p, rho, tau_cat, maps[j], &tot,
                           f->discrete ? c->lit_val : NULL,
                           di == SIZE_MAX ? NULL : p->domain_values + p->domain_first[di],
                           di == SIZE_MAX ? 0 : p->domain_first[di + 1] - p->domain_first[di]);
      if (!st && c->n_levels == 1 && !f->suppressed)
        ms_diag_warn(d, data->source, 0, 0, c->name, "column holds one value");
      const double tau_shown = tau_cat < (double)p->k_min ? (double)p->k_min : tau_cat;
      if (!st && rho > 0 && di == SIZE_MAX) f->cat_tau = tau_shown;
      /* one label released: the column comes out constant, though the
       * data may hold others under the threshold (a table's outcome) */
      if (!st && rho > 0 && di == SIZE_MAX && !f->suppressed && f->n_cats == 1 && c->n_levels > 1)
        ms_diag_warn(d, data->source, 0, 0, c->name,
                     "only one label's noisy count passed the release threshold (%.0f rows): the column is "
                     "written as that label alone; declare its labels with --domain %s=a,b,... if they are "
                     "public (docs/privacy.md)",
                     tau_shown, c->name);
      if (!st && rho > 0 && f->suppressed)
        ms_diag_warn(d, data->source, 0, 0, c->name,
                     "no label's noisy count passed the release threshold (%.0f): written as always missing; "
                     "declare its labels with --domain %s=a,b,... (docs/privacy.md)",
                     tau_shown, c->name);
      if (!st && rho == 0 && f->n_cats && !f->suppressed && c->n_levels > f->n_cats)
        ms_diag_warn(d, data->source, 0, 0, c->name,
                     "%zu %s seen in fewer than %zu rows %s", c->n_levels - f->n_cats,
                     f->discrete ? (c->n_levels - f->n_cats == 1 ? "value" : "values")
                                 : (c->n_levels - f->n_cats == 1 ? "category" : "categories"),
                     p->k_min, f->discrete ? "joined the nearest kept value" : "left out");
    } else if (c->kind == MS_FKIND_BOOL) {
      st = ms__fit_bool(f, c, data->n_rows, p, rho, &tot);
    } else if (rho > 0) {
      size_t clamped = 0;
      if (f->rel_base >= 0) {
        /* A column after another (declared, or a date kept by the DP
         * tests): its gap is what is measured, without bounds -- a date's
         * in whole days, as an integer column; a number's is the view's
         * column already. */
        ms_frame_col gap = *c;
        gap.name = "";
        if (c->kind == MS_FKIND_DATE) {
          gap.kind = MS_FKIND_INTEGER;
          gap.num = ms__malloc((data->n_rows ? data->n_rows : 1) * sizeof *gap.num);
          if (!gap.num) {
            st = ms__diag_nomem(d, data->source, c->name, "a column's fit");
            break;
          }
          /* a datetime's gap in whole seconds (its values are), scaled
           * back to days once its shape is fitted */
          f->gap_seconds = c->has_time;
          double unit = f->gap_seconds ? 86400 : 1;
          gap.n_missing = 0;
          for (size_t r = 0; r < data->n_rows; r++)
            gap.n_missing += isnan(gap.num[r] = round((c->num[r] - data->cols[f->rel_base].num[r]) * unit));
          f->kind = MS_FKIND_INTEGER;
        }
        st = ms__fit_numeric_dp(f, &gap, data->n_rows, p, rho, z_thr, &f->dp_num, &clamped);
        if (!st) st = ms__fit_numeric_dp_shape(f, f->dp_num, NAN, &tot);
        if (!st) ms__fit_gap_nonnegative(f, f->gap_seconds ? 1 / 86400.0 : 1);
        if (c->kind == MS_FKIND_DATE) {
          f->kind = MS_FKIND_DATE;
          free(gap.num);
        } else if (!st) {
          st = name_gap(m, j, data, oc);
        }
      } else {
        st = ms__fit_numeric_dp(f, c, data->n_rows, p, rho, z_thr, &f->dp_num, &clamped);
        if (!st) st = ms__fit_numeric_dp_shape(f, f->dp_num, NAN, &tot);
      }
      /* For the operator only (not in the spec): how many rows the public
       * bounds clamp. */
      size_t b = ms__fit_bound_of(p, c->name);
      if (!st && clamped && b != SIZE_MAX)
        ms_diag_warn(d, data->source, 0, 0, c->name,
                     "%zu row%s outside --bounds %g:%g, counted at the nearest bound (this count is not "
                     "released)", clamped, clamped == 1 ? "" : "s", p->bound_lo[b], p->bound_hi[b]);
    } else {
      size_t miss = c->n_missing < p->k_min ? 0 : c->n_missing;
      f->missing = ms__fit_sig6((double)miss / (double)(data->n_rows - c->n_missing + miss));
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
        st = ms__fit_numeric_plain(f, &gap, data->n_rows, p);
        if (!st) ms__fit_gap_nonnegative(f, 1);
        free(gap.num);
        if (!st) st = bound_date(m, j, data, c, p);
        if (own_missing < p->k_min) own_missing = 0;
        f->missing = base_present ? ms__fit_sig6((double)own_missing / (double)base_present) : 0;
      } else {
        st = ms__fit_numeric_plain(f, c, data->n_rows, p);
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
          f->missing = base_present ? ms__fit_sig6((double)own_missing / (double)base_present) : 0;
          ms__fit_gap_nonnegative(f, 1);
          st = name_gap(m, j, data, oc);
          if (!st) st = own_bounds(f, oc, data->n_rows, p->k_min);
        }
      }
    }
    if (st == MS_ERR_NOMEM) { /* the column fits name no allocation themselves */
      ms__diag_nomem(d, data->source, c->name, "a column's fit");
      break;
    }
    if (!st && c->kind == MS_FKIND_REAL) ms__fit_bounds_to_precision(f);
    if (!st && c->kind == MS_FKIND_DATE) ms__fit_dates_in_range(f);
    if (tot > max_total) max_total = tot;
    if (c->kind != MS_FKIND_ID) sum_total += tot, n_total++;
  }
  /* Under DP every column's noisy total estimates the row count: the
   * inverse-variance mean of the unbiased ones (not a categorical column's
   * sum over the labels that passed the threshold) is the least noisy
   * (post-processing). A column's own total sums the noise of all its
   * bins (sd sigma sqrt(bins)), its missing count that of one bin: its
   * missing share is that count over the pooled row count, and a numeric
   * column's bins are scaled to the pooled count less its missing count
   * (its post-processing run again on the release its measurement kept in
   * f->dp_num: nothing new is measured). On 313 rows and 20 columns a
   * column's fine bins had summed to a negative count and its missing
   * share came out 1. */
  if (!st && m->epsilon > 0 && n_total) {
    double w = 0, wt = 0;
    for (size_t j = 0; j < m->n_fields; j++) {
      const fit_field *f = &m->f[j];
      if (f->kind == MS_FKIND_ID || f->suppressed || !(f->total_var > 0)) continue;
      w += 1 / f->total_var, wt += f->n_total / f->total_var;
    }
    max_total = w > 0 ? wt / w : sum_total / (double)n_total;
    for (size_t j = 0; !st && max_total > 0 && j < m->n_fields; j++) {
      fit_field *f = &m->f[j];
      const ms_frame_col *c = &data->cols[j];
      if (f->kind == MS_FKIND_ID || f->suppressed || f->diff_a >= 0) continue;
      if (c->kind == MS_FKIND_INTEGER || c->kind == MS_FKIND_REAL || c->kind == MS_FKIND_DATE) {
        double tot = 0, miss = f->miss_count;
        st = ms__fit_numeric_dp_shape(f, f->dp_num, fmax(max_total - miss, 0), &tot);
        ms__dp_num_free(f->dp_num);
        f->dp_num = NULL;
        if (st) {
          ms__diag_nomem(d, data->source, c->name, "a column's fit");
          break;
        }
        if (c->kind == MS_FKIND_REAL) ms__fit_bounds_to_precision(f);
        if (c->kind == MS_FKIND_DATE) ms__fit_dates_in_range(f);
        if (f->rel_base >= 0) ms__fit_gap_nonnegative(f, f->gap_seconds ? 1 / 86400.0 : 1);
      }
      f->missing = ms__fit_sig6(fmin(1, f->miss_count / max_total));
      if (f->rel_base >= 0) {
        /* the gap is missing where either date is: the date's own share is
         * over the rows where its base is present */
        double mb = m->f[f->rel_base].miss_count;
        f->missing = max_total - mb > 0
                         ? ms__fit_sig6(fmin(1, fmax(0, (f->miss_count - mb) / (max_total - mb))))
                         : 0;
      }
    }
  }
  /* A label determined by another (dp_fd.c), under DP: at most a tenth
   * of rho, out of what the correlations or the graphical model would have
   * had (decided on the released labels: post-processing). */
  if (!st && m->epsilon > 0 && (use_copula || use_mst)) {
    st = ms__dp_fd(m, data, maps, m->rho / 10, max_total, p->seed);
    if (st) ms__diag_nomem(d, data->source, NULL, "the tests of determined labels");
    if (use_copula) m->rho_corr -= m->rel.fd_rho;
  }
  for (size_t j = 0; !st && use_copula && j < m->n_fields; j++) {
    const fit_field *f = &m->f[j];
    const ms_frame_col *c = &data->cols[j];
    if (f->kind != MS_FKIND_ID && !f->suppressed && c->kind != MS_FKIND_DATE && f->fam != FAM_CONSTANT &&
        f->diff_a < 0 && !f->sum_parts && f->fd_from < 0 && f->band_from < 0 &&
        !(c->kind == MS_FKIND_CATEGORICAL && f->n_cats < 2) &&
        !(c->kind == MS_FKIND_BOOL && !(f->probs[0] > 0 && f->probs[1] > 0)) &&
        !(m->epsilon == 0 && data->n_rows - c->n_missing < 2 * p->k_min)) {
      m->f[j].cop = (int)m->n_cop;
      m->cop[m->n_cop++] = j;
    }
  }
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
    /* the two thirds after the marginals: MST a half each to the selection
     * and the edges; AIM a tenth to the selection, as its authors do (at
     * epsilon 1 on diabetes/breast_cancer: utility -0.35/0.37 with halves,
     * -0.07/0.87 with a tenth; docs/privacy.md) */
    int aim = p->method == MS_FIT_METHOD_AIM;
    double rho_free = m->rho - m->rel.rho, rho_sel = aim ? rho_free * 2 / 3 * 0.1 : rho_free / 3;
    /* the determined labels' tests come out of the edges */
    st = fit_mst(m, data, maps, rho_sel, rho_free * 2 / 3 - rho_sel - m->rel.fd_rho, p, d);
    if (st == MS_ERR_NOMEM) ms__diag_nomem(d, data->source, NULL, aim ? "the AIM fit" : "the MST fit");
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
  /* Bands (relations.c, BAND): each band's label as emitted; a band whose
   * label was not released leaves the field to its marginal. */
  for (size_t q = 0; q < n_rels && !st; q++) {
    if (rels[q].kind != MS__REL_BAND) continue;
    fit_field *fy = &m->f[rels[q].b];
    const int32_t *my = maps[rels[q].b];
    fy->band_emit = ms__malloc(rels[q].n_map * sizeof *fy->band_emit);
    fy->band_cut = ms__malloc(rels[q].n_map * sizeof *fy->band_cut);
    if (!fy->band_emit || !fy->band_cut) {
      st = MS_ERR_NOMEM;
      break;
    }
    int ok = !fy->suppressed && !m->f[rels[q].a].suppressed;
    for (size_t i = 0; i < rels[q].n_map; i++) {
      int32_t l = rels[q].fd_map[i];
      fy->band_emit[i] = fy->kind == MS_FKIND_BOOL ? l : my ? my[l] : -1;
      ok &= fy->band_emit[i] >= 0;
      if (i + 1 < rels[q].n_map) fy->band_cut[i] = rels[q].cuts[i];
    }
    fy->n_band = rels[q].n_map;
    if (!ok) fy->band_from = -1;
  }
  /* Impossible combinations (relations.c, ZERO): the field's labels drawn
   * from their distribution given the other field's label, each cell an
   * aggregate of at least k rows (smaller cells are 0). */
  for (size_t q = 0; q < n_rels && !st; q++) {
    if (rels[q].kind != MS__REL_ZERO) continue;
    fit_field *fy = &m->f[rels[q].b];
    const fit_field *fx = &m->f[rels[q].a];
    if (fx->suppressed || fy->suppressed || !ms__fit_labelled(fx) || !ms__fit_labelled(fy)) continue;
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
      for (size_t y = 0; y < ny; y++) pr[x * ny + y] = t > 0 ? ms__fit_sig6(pr[x * ny + y] / t) : fy->probs[y];
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
    st = use_mst ? MS_OK : ms__fit_missingness(m, data, maps, p, avail);
    /* what no missingness table needed goes back to the correlations,
     * measured next (a column whose missingness is its base date's, or a
     * derived one, is no candidate) */
    if (!st && avail > m->rho_miss) m->rho_corr += avail - m->rho_miss;
    if (st == MS_ERR_NOMEM) ms__diag_nomem(d, data->source, NULL, "the missingness fit");
  }
  int32_t *lab = NULL;
  if (!st && m->n_cop >= 2 && m->epsilon == 0 && p->mixture) {
    st = ms__fit_mixture(m, data, maps, p, &lab);
    if (st == MS_ERR_NOMEM) ms__diag_nomem(d, data->source, NULL, "the cluster fit");
  }
  if (!st && m->n_cop >= 2) {
    st = ms__fit_copula(m, data, maps, p, lab);
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

