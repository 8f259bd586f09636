/* Writing a fitted model: the spec (JSON, docs/fit.md: the input's labels,
 * formats, relations, copula, clusters, privacy block) and the privacy
 * accounting text. Items are added without a check each; an allocation
 * failure shows once, in ms__json_print (core/json.h). */
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "fit/fit_model.h"
#include "medsynth/fit.h"
#include "medsynth/rng.h"
#include "medsynth/table.h"
#include "medsynth/version.h"

/* ---- spec emission ---- */

static const char *const fam_names[] = {"quantiles", "normal", "lognormal", "gamma", "exponential", "constant"};

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

/* A field set by bands of a number (relations.c, BAND): one rule per
 * band, lowest first, the first that holds deciding ("age < 40", then "age
 * < 65", the last "age >= 65"); a bool's label, or its p. */
static void band_rules(cJSON *o, const ms_fit_model *m, const fit_field *f, int bool_labels) {
  const char *x = m->f[f->band_from].name;
  cJSON *w = cJSON_AddArrayToObject(o, "when");
  for (size_t i = 0; i < f->n_band; i++) {
    char e[300];
    if (i + 1 < f->n_band) snprintf(e, sizeof e, "%s < %.15g", x, f->band_cut[i]);
    else snprintf(e, sizeof e, "%s >= %.15g", x, f->band_cut[i - 1]);
    cJSON *r = ms__json_push(w, cJSON_CreateObject());
    cJSON_AddStringToObject(r, "if", e);
    int32_t l = f->band_emit[i];
    if (f->kind == MS_FKIND_BOOL && !bool_labels) {
      cJSON_AddNumberToObject(r, "p", l);
    } else {
      cJSON *rv = cJSON_AddObjectToObject(r, "values");
      cJSON_AddNumberToObject(rv, f->kind == MS_FKIND_BOOL ? f->btext[l] : f->cats[l], 1);
    }
  }
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

/* A mechanism measured for some columns only: its description under
 * `what` and, under `what`_sigma, the noise sd of every column that has
 * one (the fit_field double at offset off; 0: not measured). */
static void column_sigmas(cJSON *me, const ms_fit_model *m, size_t off, const char *what, const char *desc) {
  cJSON *o = NULL;
  char key[64];
  for (size_t i = 0; i < m->n_fields; i++) {
    double s = *(const double *)((const char *)&m->f[i] + off);
    if (!(s > 0)) continue;
    if (!o) {
      cJSON_AddStringToObject(me, what, desc);
      snprintf(key, sizeof key, "%s_sigma", what);
      o = cJSON_AddObjectToObject(me, key);
    }
    cJSON_AddNumberToObject(o, m->f[i].name, ms__fit_sig6(s));
  }
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
    cJSON_AddStringToObject(pv, "accountant", "zCDP (Bun & Steinke 2016), converted to (epsilon, delta) as by Canonne, Kamath & Steinke 2020");
    cJSON_AddNumberToObject(pv, "rho", ms__fit_sig6(m->rho));
    cJSON_AddNumberToObject(pv, "delta_conversion", ms__fit_sig6(m->delta_conv));
    cJSON_AddNumberToObject(pv, "delta_thresholds", ms__fit_sig6(m->delta_thr));
    cJSON *sp = cJSON_AddObjectToObject(pv, "split");
    cJSON_AddStringToObject(sp, "unit", "rho");
    cJSON_AddNumberToObject(sp, "marginals", ms__fit_sig6(m->rho_marg));
    cJSON_AddNumberToObject(sp, "correlations", ms__fit_sig6(m->n_cop >= 2 ? m->rho_corr : 0));
    cJSON_AddNumberToObject(sp, "missingness", ms__fit_sig6(m->rho_miss));
    if (m->rel.max_tests || m->rel.fd_max_tests)
      cJSON_AddNumberToObject(sp, "relations", ms__fit_sig6(m->rel.rho + m->rel.fd_rho));
    cJSON *cols = cJSON_AddObjectToObject(sp, "columns");
    for (size_t i = 0; i < m->n_fields; i++)
      if (m->f[i].kind != MS_FKIND_ID) cJSON_AddNumberToObject(cols, m->f[i].name, ms__fit_sig6(m->f[i].rho));
    cJSON *me = cJSON_AddObjectToObject(pv, "mechanisms");
    cJSON_AddStringToObject(me, "numeric",
                            "gaussian histograms: log-grid range (half the column's rho; the bins the data can be "
                            "told to occupy) unless declared, then histogram + missing bin, support test, projection "
                            "onto non-negative counts, piecewise-linear CDF");
    cJSON_AddStringToObject(me, "categorical", "gaussian stability-based histogram");
    cJSON_AddStringToObject(me, "bool", "gaussian histogram (false, true, missing)");
    if (m->rho_miss > 0) {
      cJSON_AddStringToObject(me, "missingness", "gaussian 2x2 tables (missing x condition), sensitivity sqrt(tables)");
      cJSON_AddNumberToObject(me, "missingness_sigma", ms__fit_sig6(m->miss_sigma));
    }
    if (m->rel.max_tests) {
      cJSON *rl = cJSON_AddObjectToObject(me, "relations");
      cJSON_AddStringToObject(rl, "mechanism",
                              "exponential mechanism per pair of dates (a <= b, b <= a, neither) and per date "
                              "after another (which number is their difference in days, or none), scores minus "
                              "the rows breaking each; per round of the numbers' order search, over every order "
                              "a <= b of two numbers of a kind still open and none, score minus the larger of the "
                              "rows breaking it and threshold_share + equal_share of the noisy row count less "
                              "the rows where a = b off their most common shared value; 'neither'/'none' scores "
                              "minus threshold_share of the noisy row count; no test unless it has the power "
                              "(docs/privacy.md)");
      cJSON_AddNumberToObject(rl, "row_count_sigma", ms__fit_sig6(m->rel.sigma_n));
      cJSON_AddNumberToObject(rl, "threshold_share", MS__DPREL_SHARE);
      cJSON_AddNumberToObject(rl, "epsilon_per_test", ms__fit_sig6(m->rel.eps_round));
      cJSON_AddNumberToObject(rl, "tests", (double)m->rel.tests);
      cJSON_AddNumberToObject(rl, "tests_allowed", (double)m->rel.max_tests);
      if (m->rel.num_rounds_max) {
        cJSON_AddNumberToObject(rl, "equal_share", MS__DPREL_EQ_SHARE);
        cJSON_AddNumberToObject(rl, "number_rounds", (double)m->rel.num_rounds);
        cJSON_AddNumberToObject(rl, "epsilon_per_round", ms__fit_sig6(m->rel.eps_num));
        cJSON_AddNumberToObject(rl, "number_rounds_allowed", (double)m->rel.num_rounds_max);
        cJSON_AddNumberToObject(rl, "number_candidates", (double)m->rel.num_candidates);
      }
    }
    if (m->rel.fd_max_tests) {
      cJSON *rl = cJSON_AddObjectToObject(me, "determined_labels");
      cJSON_AddStringToObject(rl, "mechanism",
                              "after the labels are released: exponential mechanism per categorical column over "
                              "which column determines it, or none (scores minus the rows off the most common label "
                              "within each label of the determinant; none: minus threshold_share of its released "
                              "minority; a number's bands: its 32 cells of equal released mass as its labels), "
                              "then one per label or cell of the determinant for its label (parallel), and for "
                              "bands one per cut over round numbers between the middles of the cells around it "
                              "(parallel)");
      cJSON_AddNumberToObject(rl, "rho", ms__fit_sig6(m->rel.fd_rho));
      cJSON_AddNumberToObject(rl, "threshold_share", MS__DPREL_SHARE);
      cJSON_AddNumberToObject(rl, "epsilon_per_mechanism", ms__fit_sig6(m->rel.fd_eps));
      cJSON_AddNumberToObject(rl, "tests", (double)m->rel.fd_tests);
      cJSON_AddNumberToObject(rl, "maps", (double)m->rel.fd_maps);
      cJSON_AddNumberToObject(rl, "bands", (double)m->rel.fd_bands);
      cJSON_AddNumberToObject(rl, "cut_sets", (double)m->rel.fd_cuts);
      cJSON_AddNumberToObject(rl, "tests_allowed", (double)m->rel.fd_max_tests);
    }
    cJSON *sg = cJSON_AddObjectToObject(me, "sigma");
    for (size_t i = 0; i < m->n_fields; i++)
      if (m->f[i].kind != MS_FKIND_ID) cJSON_AddNumberToObject(sg, m->f[i].name, ms__fit_sig6(m->f[i].sigma));
    column_sigmas(me, m, offsetof(fit_field, spike_sigma), "frequent_values",
                  "gaussian stability-based histogram of a numeric column's values (half the histogram's rho, "
                  "when the noisy count lets a value held by 5% of rows pass): point masses of the quantile table");
    column_sigmas(me, m, offsetof(fit_field, dec_sigma), "decimals",
                  "gaussian histogram of each value's fewest decimals (0-9; an eighth of a real column's rho): the "
                  "fewest whose noisy cumulative count less 2 sd reaches 80% of the noisy total, else the decimals "
                  "read with the schema");
    if (m->n_cop >= 2) {
      cJSON_AddStringToObject(me, "correlations", "gaussian sum of clipped normal-score outer products");
      cJSON_AddNumberToObject(me, "correlation_clip", ms__fit_sig6(m->corr_clip));
      cJSON_AddNumberToObject(me, "correlation_sigma", ms__fit_sig6(m->corr_sigma));
      cJSON_AddNumberToObject(me, "correlation_shrinkage", ms__fit_sig6(m->corr_shrink));
    } else {
      cJSON_AddStringToObject(me, "correlations", "none");
    }
    cJSON_AddNumberToObject(pv, "seed", (double)m->seed);
  } else {
    cJSON_AddNumberToObject(pv, "source_rows", (double)m->n_source);
  }
  cJSON_AddStringToObject(pv, "model", ms_fit_method_name(m->method));
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
    /* a date after another kept within its own bounds: the draw here,
     * hidden, the date below */
    const int date_bounded = f->rel_base >= 0 && f->kind == MS_FKIND_DATE && f->gap_name && f->own_bounds;
    cJSON *o = ms__json_push(fields, cJSON_CreateObject());
    cJSON_AddStringToObject(o, "name", num_order || date_bounded ? f->gap_name : f->name);
    if (num_order || date_bounded) cJSON_AddBoolToObject(o, "hidden", 1);
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
    int bool_labels = f->kind == MS_FKIND_BOOL && ms__fit_labelled(f);
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
        if (f->band_from >= 0) band_rules(o, m, f, 0);
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
        if (f->band_from >= 0) band_rules(o, m, f, bool_labels);
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
        const char *lx = ms__fit_label_of(fx, x);
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
          cJSON_AddNumberToObject(v, ms__fit_label_of(f, y), f->zc_probs[x * f->zc_ny + y]);
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
    const int from = f->fd_from >= 0 ? f->fd_from : f->band_from; /* b present exactly where it is */
    if (from >= 0 && (m->f[from].missing > 0 || m->f[from].mc_col >= 0)) {
      cJSON *mo = cJSON_AddObjectToObject(o, "missing");
      cJSON_AddNumberToObject(mo, "rate", 0);
      cJSON *w = cJSON_AddArrayToObject(mo, "when");
      cJSON *r = ms__json_push(w, cJSON_CreateObject());
      char e[300];
      snprintf(e, sizeof e, "is_missing(%s)", m->f[from].name);
      cJSON_AddStringToObject(r, "if", e);
      cJSON_AddNumberToObject(r, "rate", 1);
    } else if (f->mc_expr && from < 0) {
      cJSON *mo = cJSON_AddObjectToObject(o, "missing");
      cJSON_AddNumberToObject(mo, "rate", f->missing);
      cJSON *w = cJSON_AddArrayToObject(mo, "when");
      cJSON *r = ms__json_push(w, cJSON_CreateObject());
      cJSON_AddStringToObject(r, "if", f->mc_expr);
      cJSON_AddNumberToObject(r, "rate", f->mc_rate);
    } else if (f->missing > 0 && from < 0) {
      cJSON_AddNumberToObject(o, "missing", f->missing);
    }
    ms__mst_emit_field(m->mst, i, o);
    if (date_bounded) {
      cJSON *ob = ms__json_push(fields, cJSON_CreateObject());
      cJSON_AddStringToObject(ob, "name", f->name);
      if (f->label) cJSON_AddStringToObject(ob, "label", f->label);
      cJSON_AddStringToObject(ob, "kind", "date");
      char lo[MS_DATE_BUFSZ], hi[MS_DATE_BUFSZ], e[400];
      ms_date_format((int32_t)f->own_lo, lo);
      ms_date_format((int32_t)f->own_hi, hi);
      snprintf(e, sizeof e, "max(min(%s, date('%s')), date('%s'))", f->gap_name, hi, lo);
      cJSON_AddStringToObject(ob, "expr", e);
      if (f->date_format && strcmp(f->date_format, "%Y-%m-%d")) cJSON_AddStringToObject(ob, "format", f->date_format);
    }
    if (num_order) {
      cJSON *ob = ms__json_push(fields, cJSON_CreateObject());
      cJSON_AddStringToObject(ob, "name", f->name);
      if (f->label) cJSON_AddStringToObject(ob, "label", f->label);
      cJSON_AddStringToObject(ob, "kind", ms_fkind_name(f->kind));
      if (f->kind == MS_FKIND_REAL) {
        cJSON_AddNumberToObject(ob, "precision", f->out_decimals);
        if (f->real_style > 0) cJSON_AddStringToObject(ob, "format", f->real_style == 2 ? "trim.0" : "trim");
      }
      char e[400];
      if (f->own_bounds)
        snprintf(e, sizeof e, "clamp(%s + %s, %.*f, %.*f)", m->f[f->rel_base].name, f->gap_name,
                 f->kind == MS_FKIND_REAL ? f->out_decimals : 0, f->own_lo,
                 f->kind == MS_FKIND_REAL ? f->out_decimals : 0, f->own_hi);
      else
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
  ms__mst_emit_correlations(m->mst, t);
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
  fprintf(fp, "model:        %s", ms_fit_method_name(m->method));
  if (m->method_auto)
    fprintf(fp, " (--method auto: %zu of %zu columns coarse, i.e. categorical, bool%s; aim from %s%s)", m->n_coarse,
            m->n_columns_fitted, m->epsilon > 0 ? "" : " or a number of at most " MS__STR(MS_FRAME_DISCRETE_MAX) " values",
            m->epsilon > 0 ? "half" : "40 %",
            m->method_rows ? ", or from a quarter on " MS__STR(MS__AUTO_AIM_ROWS) " rows or more by the released row count"
                           : "");
  fprintf(fp, "\n");
  if (m->epsilon > 0) {
    fprintf(fp, "privacy: (%g, %g)-differential privacy, add/remove-one-row neighbours, seed %llu\n",
            m->epsilon, m->delta, (unsigned long long)m->seed);
    fprintf(fp, "  accountant:   zCDP rho %g (delta %g for the conversion, %g for category thresholds)\n",
            ms__fit_sig6(m->rho), ms__fit_sig6(m->delta_conv), ms__fit_sig6(m->delta_thr));
    fprintf(fp, "  marginals:    rho %g over %zu column(s)\n", ms__fit_sig6(m->rho_marg), m->n_fields);
    size_t n_ranges = 0;
    for (size_t i = 0; i < m->n_fields; i++)
      if (m->f[i].kind != MS_FKIND_ID)
      {
        const fit_field *f = &m->f[i];
        fprintf(fp, "    %-24s rho %-10g sigma %g", f->name, ms__fit_sig6(f->rho), ms__fit_sig6(f->sigma));
        if (f->spike_sigma > 0)
          fprintf(fp, " (frequent values: sigma %g, %zu released)", ms__fit_sig6(f->spike_sigma), f->n_spikes);
        if (f->cat_tau > 0) fprintf(fp, " (labels over %.0f rows: %zu released)", f->cat_tau, f->suppressed ? 0 : f->n_cats);
        if ((f->kind == MS_FKIND_INTEGER || f->kind == MS_FKIND_REAL || f->kind == MS_FKIND_DATE) &&
            f->rel_base < 0 && f->diff_a < 0 && !f->n_sum && !f->suppressed) {
          if (f->kind == MS_FKIND_DATE) {
            char a[MS_DATE_BUFSZ], b[MS_DATE_BUFSZ];
            ms_date_format((int32_t)floor(f->lo), a);
            ms_date_format((int32_t)floor(f->hi), b);
            fprintf(fp, " range %s..%s", a, b);
          } else {
            fprintf(fp, " range %g..%g", f->lo, f->hi);
          }
          n_ranges++;
        }
        fprintf(fp, "\n");
      }
    if (n_ranges)
      fprintf(fp, "  ranges:       released from the data; where a column's true range is public (a 1-10 score, "
                  "an age), declaring it with --bounds col=lo:hi keeps every value in it and frees that share "
                  "(docs/privacy.md)\n");
    if (m->n_cop >= 2)
      fprintf(fp, "  correlations: rho %g (Gaussian, clip %g, sigma %g on sums of %zu-d scores, %zu component(s) "
                  "above the noise, shrinkage %g)\n",
              ms__fit_sig6(m->rho_corr), ms__fit_sig6(m->corr_clip), ms__fit_sig6(m->corr_sigma), m->n_cop,
              m->corr_components, ms__fit_sig6(m->corr_shrink));
    if (m->rho_miss > 0)
      fprintf(fp, "  missingness:  rho %g (Gaussian 2x2 tables, sigma %g)\n", ms__fit_sig6(m->rho_miss), ms__fit_sig6(m->miss_sigma));
    ms__mst_accounting(m->mst, fp);
    if (m->rel.max_tests)
      fprintf(fp, "  relations:    rho %g (row count sigma %g; %zu exponential-mechanism test(s) between dates, "
                  "epsilon %g each; %zu round(s) of the numbers' order search, epsilon %g each; kept when at most "
                  "%g of the noisy row count break them%s)\n",
              ms__fit_sig6(m->rel.rho), ms__fit_sig6(m->rel.sigma_n), m->rel.tests, ms__fit_sig6(m->rel.eps_round),
              m->rel.num_rounds, ms__fit_sig6(m->rel.eps_num), MS__DPREL_SHARE,
              m->rel.num_rounds ? ", numbers also equal on a quarter of them" : "");
    if (m->rel.fd_tests)
      fprintf(fp, "  determined:   rho %g (labels: %zu test(s), %zu map(s) and %zu set(s) of cuts, epsilon %g each)\n",
              ms__fit_sig6(m->rel.fd_rho), m->rel.fd_tests, m->rel.fd_maps, m->rel.fd_cuts,
              ms__fit_sig6(m->rel.fd_eps));
    else if (m->rel.fd_max_tests)
      fprintf(fp, "  determined:   rho 0 (no label tested: too few rows off the most common label for the tests' "
                  "power, docs/privacy.md)\n");
    fprintf(fp, "  total:        rho %g -> epsilon %g, delta %g\n",
            ms__fit_sig6(m->rho_marg + (m->n_cop >= 2 ? m->rho_corr : 0) + m->rho_miss + ms__mst_rho(m->mst) +
                         m->rel.rho + m->rel.fd_rho),
            m->epsilon, m->delta);
  }
  for (size_t i = 0; i < m->n_fields; i++) {
    const fit_field *f = &m->f[i];
    if (f->rel_base >= 0)
      fprintf(fp, "  %s %s is %s %s (drawn as %s + a fitted gap)\n",
              f->rel_declared ? "declared:    " : "kept exactly:", f->name,
              f->kind == MS_FKIND_DATE ? "on or after" : ">=", m->f[f->rel_base].name,
              m->f[f->rel_base].name);
    if (f->diff_a >= 0)
      fprintf(fp, "  kept exactly: %s = %s - %s (a derived field)\n", f->name, m->f[f->diff_b].name,
              m->f[f->diff_a].name);
    if (f->fd_from >= 0)
      fprintf(fp, "  kept exactly: %s is determined by %s (one rule per label)\n", f->name,
              m->f[f->fd_from].name);
    if (f->band_from >= 0) {
      fprintf(fp, "  kept exactly: %s is set by bands of %s (cuts", f->name, m->f[f->band_from].name);
      for (size_t q = 0; q + 1 < f->n_band; q++) fprintf(fp, " %.15g", f->band_cut[q]);
      fprintf(fp, ")\n");
    }
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

