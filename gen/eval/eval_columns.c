/* The evaluator's aligned columns and the metrics over one or two of them
 * (eval.c describes the whole evaluation): the training, holdout and
 * synthetic tables aligned by name with unified labels, training mean, sd
 * and quintile edges, the KS and total-variation complements, missing
 * rates, pairwise association (Pearson, Cramer's V, correlation ratio) and
 * contingency similarity over quintile bins. */
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include "core/alloc.h"
#include "core/names.h"
#include "core/diag.h"
#include "core/json.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/pool.h"
#include "eval/eval_internal.h"
#include "eval/eval_columns.h"
#include "table/frame_internal.h"
#include "io/atomic.h"
#include "medsynth/eval.h"
#include "medsynth/rng.h"
#include "medsynth/version.h"

/* ---- aligned columns ---- */

void ms__eval_ev_free(ev *e) {
  for (size_t j = 0; j < e->d; j++) {
    for (size_t l = 0; l < e->col[j].L; l++) free(e->col[j].labels[l]);
    free(e->col[j].labels);
    for (int k = 0; k < 3; k++) free(e->col[j].c[k]);
  }
  free(e->col);
}

static int is_cat_kind(ms_fkind k) { return k == MS_FKIND_CATEGORICAL || k == MS_FKIND_BOOL; }

static void evcol_clear(evcol *ec) {
  for (size_t l = 0; l < ec->L; l++) free(ec->labels[l]);
  free(ec->labels);
  for (int k = 0; k < 3; k++) free(ec->c[k]);
  memset(ec, 0, sizeof *ec);
}

/* Out of memory while aligning column ec (not yet counted in e->d). */
static ms_status align_nomem(evcol *ec, ms__strtab *lab) {
  if (lab) ms__strtab_deinit(lab, 1);
  evcol_clear(ec);
  return MS_ERR_NOMEM;
}

ms_status ms__eval_align(ev *e, ms_diag *d) {
  const ms_frame *tr = e->f[0];
  ms_status st = MS_OK;
  e->col = ms__calloc(tr->n_cols ? tr->n_cols : 1, sizeof *e->col);
  if (!e->col) return MS_ERR_NOMEM;
  for (int k = 1; k < 3; k++) {
    if (!e->f[k]) continue;
    for (size_t j = 0; j < e->f[k]->n_cols; j++) {
      const ms_frame_col *c = &e->f[k]->cols[j];
      size_t t = ms_frame_find(tr, c->name);
      if (t == SIZE_MAX && c->kind != MS_FKIND_ID)
        st = ms_diag_add(d, MS_ERR_DATA, e->f[k]->source, 1, 0, c->name,
                         "column is not in the real table %s", tr->source);
    }
  }
  for (size_t j = 0; j < tr->n_cols; j++) {
    const ms_frame_col *tc = &tr->cols[j];
    if (tc->kind == MS_FKIND_ID) continue;
    evcol *ec = &e->col[e->d];
    ec->name = tc->name;
    ec->cat = is_cat_kind(tc->kind);
    ms__strtab lab;
    if (ms__strtab_init(&lab)) return align_nomem(ec, NULL);
    if (tc->kind == MS_FKIND_BOOL &&
        (ms__strtab_intern(&lab, "false") < 0 || ms__strtab_intern(&lab, "true") < 0))
      return align_nomem(ec, &lab);
    int ok = 1;
    for (int k = 0; k < 3; k++) {
      const ms_frame *f = e->f[k];
      if (!f) continue;
      size_t cj = ms_frame_find(f, tc->name);
      if (cj == SIZE_MAX) {
        st = ms_diag_add(d, MS_ERR_DATA, f->source, 1, 0, tc->name,
                         "column of the real table is missing");
        ok = 0;
        continue;
      }
      const ms_frame_col *c = &f->cols[cj];
      if (is_cat_kind(c->kind) != ec->cat || c->kind == MS_FKIND_ID) {
        st = ms_diag_add(d, MS_ERR_DATA, f->source, 1, 0, tc->name,
                         "column is %s here but %s in the real table", ms_fkind_name(c->kind),
                         ms_fkind_name(tc->kind));
        ok = 0;
        continue;
      }
      ec->n[k] = f->n_rows;
      if (!ec->cat) {
        ec->x[k] = c->num;
        continue;
      }
      ec->c[k] = ms__malloc((f->n_rows ? f->n_rows : 1) * sizeof *ec->c[k]);
      if (!ec->c[k]) return align_nomem(ec, &lab);
      int32_t *map = NULL;
      if (c->code) {
        map = ms__malloc((c->n_levels ? c->n_levels : 1) * sizeof *map);
        if (!map) return align_nomem(ec, &lab);
        for (size_t l = 0; l < c->n_levels; l++)
          if ((map[l] = ms__strtab_intern(&lab, c->levels[l])) < 0) {
            free(map);
            return align_nomem(ec, &lab);
          }
      }
      for (size_t r = 0; r < f->n_rows; r++) {
        if (c->code) ec->c[k][r] = c->code[r] < 0 ? -1 : map[c->code[r]];
        else ec->c[k][r] = isnan(c->num[r]) ? -1 : (c->num[r] != 0);
      }
      free(map);
    }
    ec->L = lab.n;
    ec->labels = lab.strs;
    lab.strs = NULL;
    lab.n = 0;
    ms__strtab_deinit(&lab, 0);
    if (ok) e->d++;
    else evcol_clear(ec);
  }
  if (!st && e->d == 0)
    st = ms_diag_add(d, MS_ERR_DATA, tr->source, 0, 0, NULL, "no comparable (non-identifier) columns");
  return st;
}

int ms__eval_cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Present values of a numeric column, sorted. */
static double *sorted_present(const double *x, size_t n, size_t *m) {
  double *v = ms__malloc((n ? n : 1) * sizeof *v);
  *m = 0;
  if (!v) return NULL;
  for (size_t i = 0; i < n; i++)
    if (!isnan(x[i])) v[(*m)++] = x[i];
  qsort(v, *m, sizeof *v, ms__eval_cmpd);
  return v;
}

/* Training mean, sd and quintile edges of a numeric column; -1 when out of
 * memory. */
int ms__eval_col_stats(evcol *c) {
  if (c->cat) return 0;
  size_t m;
  double *v = sorted_present(c->x[0], c->n[0], &m);
  if (!v) return -1;
  double s = 0, s2 = 0;
  for (size_t i = 0; i < m; i++) s += v[i], s2 += v[i] * v[i];
  c->mean = m ? s / m : 0;
  double var = m > 1 ? (s2 - s * s / m) / (m - 1) : 0;
  c->sd = var > 0 ? sqrt(var) : 1;
  for (int k = 0; k < 4; k++) c->q[k] = m ? v[(size_t)((k + 1) * 0.2 * (m - 1))] : 0;
  free(v);
  return 0;
}

/* The file name part of a path ("a/b.csv" -> "b.csv"). */
const char *ms__eval_base_name(const char *path) {
  const char *s = path ? strrchr(path, '/') : NULL;
  return s ? s + 1 : path ? path : "";
}

double ms__eval_ks_complement(const evcol *c, int a, int b, int *oom) {
  size_t na, nb;
  double *x = sorted_present(c->x[a], c->n[a], &na), *y = sorted_present(c->x[b], c->n[b], &nb);
  double D = 0;
  if (!x || !y) {
    *oom = 1;
  } else if (na && nb) {
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
      double v = x[i] <= y[j] ? x[i] : y[j];
      while (i < na && x[i] <= v) i++;
      while (j < nb && y[j] <= v) j++;
      double dd = fabs((double)i / na - (double)j / nb);
      if (dd > D) D = dd;
    }
  } else if (na != nb) {
    D = 1;
  }
  free(x);
  free(y);
  return 1 - D;
}

int ms__eval_bucket(const evcol *c, int k, size_t r) {
  if (c->cat) {
    int32_t v = c->c[k][r];
    return v < 0 ? MAX_LEVELS : (v >= MAX_LEVELS - 1 ? MAX_LEVELS - 1 : v);
  }
  double v = c->x[k][r];
  if (isnan(v)) return MAX_LEVELS;
  int b = 0;
  while (b < 4 && v > c->q[b]) b++;
  return b;
}
#define NBUCKET (MAX_LEVELS + 1)

double ms__eval_tv_complement(const evcol *c, int a, int b) {
  double fa[NBUCKET] = {0}, fb[NBUCKET] = {0};
  /* Categorical: label-exact (codes below MAX_LEVELS), missing its own bin. */
  for (size_t r = 0; r < c->n[a]; r++) fa[ms__eval_bucket(c, a, r)] += 1.0 / c->n[a];
  for (size_t r = 0; r < c->n[b]; r++) fb[ms__eval_bucket(c, b, r)] += 1.0 / c->n[b];
  double tv = 0;
  for (int i = 0; i < NBUCKET; i++) tv += fabs(fa[i] - fb[i]);
  return 1 - tv / 2;
}

double ms__eval_missing_rate(const evcol *c, int k) {
  size_t m = 0;
  for (size_t r = 0; r < c->n[k]; r++) m += c->cat ? c->c[k][r] < 0 : isnan(c->x[k][r]);
  return c->n[k] ? (double)m / c->n[k] : 0;
}

/* Association between two columns in frame k (pairwise complete). */
double ms__eval_association(const evcol *a, const evcol *b, int k) {
  size_t n = a->n[k];
  if (!a->cat && !b->cat) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, m = 0;
    for (size_t r = 0; r < n; r++) {
      double x = a->x[k][r], y = b->x[k][r];
      if (isnan(x) || isnan(y)) continue;
      sa += x, sb += y, saa += x * x, sbb += y * y, sab += x * y, m++;
    }
    if (m < 3) return NAN;
    double va = saa - sa * sa / m, vb = sbb - sb * sb / m;
    return va > 0 && vb > 0 ? (sab - sa * sb / m) / sqrt(va * vb) : 0;
  }
  if (a->cat && b->cat) {
    static __thread double tab[MAX_LEVELS][MAX_LEVELS];
    double ra[MAX_LEVELS] = {0}, rb[MAX_LEVELS] = {0}, m = 0;
    memset(tab, 0, sizeof tab);
    for (size_t r = 0; r < n; r++) {
      int x = ms__eval_bucket(a, k, r), y = ms__eval_bucket(b, k, r);
      if (x == MAX_LEVELS || y == MAX_LEVELS) continue;
      tab[x][y]++, ra[x]++, rb[y]++, m++;
    }
    int la = 0, lb = 0;
    for (int i = 0; i < MAX_LEVELS; i++) la += ra[i] > 0, lb += rb[i] > 0;
    if (m < 3 || la < 2 || lb < 2) return 0;
    double chi = 0;
    for (int i = 0; i < MAX_LEVELS; i++)
      for (int j = 0; j < MAX_LEVELS; j++)
        if (ra[i] > 0 && rb[j] > 0) {
          double e = ra[i] * rb[j] / m, o = tab[i][j];
          chi += (o - e) * (o - e) / e;
        }
    return sqrt(chi / (m * ((la < lb ? la : lb) - 1)));
  }
  const evcol *cc = a->cat ? a : b, *nc = a->cat ? b : a;
  double s[MAX_LEVELS] = {0}, cnt[MAX_LEVELS] = {0}, tot = 0, tot2 = 0, m = 0;
  for (size_t r = 0; r < n; r++) {
    int g = ms__eval_bucket(cc, k, r);
    double y = nc->x[k][r];
    if (g == MAX_LEVELS || isnan(y)) continue;
    s[g] += y, cnt[g]++, tot += y, tot2 += y * y, m++;
  }
  if (m < 3) return NAN;
  double sst = tot2 - tot * tot / m, ssb = 0;
  for (int g = 0; g < MAX_LEVELS; g++)
    if (cnt[g] > 0) ssb += s[g] * s[g] / cnt[g];
  ssb -= tot * tot / m;
  return sst > 0 ? sqrt(fmax(0, ssb / sst)) : 0;
}

/* *oom is set when the tables cannot be allocated. */
double ms__eval_contingency_similarity(const evcol *a, const evcol *b, int *oom) {
  size_t nb = NBUCKET;
  double *ta = ms__calloc(nb * nb, sizeof *ta), *tb = ms__calloc(nb * nb, sizeof *tb);
  if (!ta || !tb) {
    free(ta);
    free(tb);
    *oom = 1;
    return NAN;
  }
  for (size_t r = 0; r < a->n[0]; r++) ta[ms__eval_bucket(a, 0, r) * nb + ms__eval_bucket(b, 0, r)] += 1.0 / a->n[0];
  for (size_t r = 0; r < a->n[2]; r++) tb[ms__eval_bucket(a, 2, r) * nb + ms__eval_bucket(b, 2, r)] += 1.0 / a->n[2];
  double tv = 0;
  for (size_t i = 0; i < nb * nb; i++) tv += fabs(ta[i] - tb[i]);
  free(ta);
  free(tb);
  return 1 - tv / 2;
}

