/* The fit's reference sampler: rows drawn from the model without a spec
 * (the clusters' copy check, --sample). Every row is a pure function of
 * (seed, row), drawn in pieces on the pool (core/pool.h), so the cut and
 * the thread count do not change a byte. */
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

/* ---- reference sampler ---- */

/* Rows of ms_fit_model_sample in pieces (core/pool.h): every row is a
 * pure function of (seed, row), so the cut and the thread do not matter. */
typedef struct {
  const ms_fit_model *m;
  ms_frame *fr;
  const gsl_matrix *L;
  size_t dc;
  ms_rng_key kc, kmix, kgraph;
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

/* How many conditions lead from field j's missingness to an unconditioned
 * column (0: j has none; the chain has no cycle). */
static size_t condition_depth(const ms_fit_model *m, size_t j) {
  size_t depth = 0;
  for (int z = m->f[j].suppressed ? -1 : m->f[j].mc_col; z >= 0 && depth <= m->n_fields; z = m->f[z].mc_col) depth++;
  return depth;
}

/* Field j's conditional missingness in row r: mc_rate where the condition
 * on its column holds, its own rate elsewhere. */
static void missing_by_condition(const ms_fit_model *m, ms_frame *fr, size_t j, size_t r, ms_rng_key k) {
  const fit_field *f = &m->f[j];
  const ms_frame_col *cy = &fr->cols[f->mc_col];
  int cd;
  if (f->mc_type == 3) cd = ms__frame_cell_missing(cy, r);
  else if (f->mc_type == 1) cd = cy->code[r] < 0 ? -1 : cy->code[r] == f->mc_cat;
  else cd = isnan(cy->num[r]) ? -1 : f->mc_type == 0 ? cy->num[r] != 0 : cy->num[r] < f->mc_thr;
  double rate = cd == 1 ? f->mc_rate : f->missing;
  if (ms_rng_uniform(k, r, 1) < rate) {
    ms_frame_col *c = &fr->cols[j];
    if (c->code) c->code[r] = -1;
    else c->num[r] = NAN;
  }
}

static void sample_row(const sample_job *sj, size_t r, double *e, double *z, double *uu, int *bins, double *ws) {
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
      c->num[r] = miss ? NAN : ms__fit_numeric_draw(mf, u);
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
  /* MST, AIM: their columns from the graphical model (missingness is a bin) */
  ms__mst_sample_row(m->mst, sj->kgraph, r, fr, bins, ws);
  /* Conditional missingness, once the condition's column is drawn and its
   * own missingness settled: conditions chain (no cycles), so a column is
   * settled at the pass of its depth in the chain. */
  for (size_t pass = 1, left = 1; left && pass <= m->n_fields; pass++) {
    left = 0;
    for (size_t j = 0; j < m->n_fields; j++) {
      size_t depth = condition_depth(m, j);
      left |= depth > pass;
      if (depth == pass) missing_by_condition(m, fr, j, r, kf[j]);
    }
  }
  /* Relations kept exactly: a date is its base plus the drawn gap, a
   * difference is computed, a determined label follows its determinant. */
  for (size_t q = 0; q < sj->n_after; q++) {
    const fit_field *f = &m->f[sj->after[q]];
    double *x = &fr->cols[sj->after[q]].num[r];
    *x = as_written(*x + fr->cols[f->rel_base].num[r], f->kind, f->out_decimals);
    if (f->own_bounds && !isnan(*x)) *x = fmin(fmax(*x, f->own_lo), f->own_hi);
  }
  /* labels set by bands of a number first: such a label may determine
   * another (age -> age group -> its description) */
  for (size_t j = 0; j < m->n_fields; j++) {
    const fit_field *f = &m->f[j];
    if (f->band_from < 0) continue;
    /* the band of the number as it is written */
    const fit_field *fx = &m->f[f->band_from];
    double x = as_written(fr->cols[f->band_from].num[r], fx->kind, fx->decimals);
    int32_t l = f->band_emit[ms__band_of(f->band_cut, f->n_band, x)];
    if (f->kind == MS_FKIND_BOOL) fr->cols[j].num[r] = isnan(x) ? NAN : l;
    else fr->cols[j].code[r] = isnan(x) ? -1 : l;
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
  int *bins = ms__malloc((sj->m->n_fields ? sj->m->n_fields : 1) * sizeof *bins);
  double *ws = ms__malloc(ms__mst_scratch(sj->m->mst) * sizeof *ws);
  if (!e || !z || !uu || !bins || !ws)
    atomic_store(&sj->oom, 1);
  else
    for (size_t r = sj->n * t / sj->pieces; r < sj->n * (t + 1) / sj->pieces; r++) {
      /* one load per row: the rest of a cancelled run costs nothing */
      if (sj->cancel && *sj->cancel) {
        atomic_store(&sj->stop, 1);
        break;
      }
      sample_row(sj, r, e, z, uu, bins, ws);
    }
  free(ws);
  free(bins);
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
  ms_rng_key kgraph = ms_rng_key_make(seed, ms_rng_stream("fit/sample/(graph)"));
  sample_job sj = {m, fr, L, dc, kc, kmix, kgraph, kf, after, n_after, n, 0, m->cancel, 0, 0};
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
      if (ms__frame_cell_missing(c, r)) c->n_missing++;
  }
  *out = fr;
  return MS_OK;
}
