/* Utility and privacy evaluation (docs/evaluate.md).
 *
 * Columns are aligned by name with the training table as reference:
 * numeric kinds (integer, real, date) are compared as numbers, categorical
 * and bool columns as labels (a label that only the synthetic table has gets
 * its own code). Identifier columns are ignored.
 *
 * Utility: per-column KS complement (numeric) / total-variation complement
 * (categorical); association matrices (Pearson, Cramer's V, correlation
 * ratio) and their mean absolute difference; pairwise contingency
 * similarity (quintile bins); pMSE of a ridge logistic real-vs-synthetic
 * classifier; train-on-synthetic / test-on-real against train-on-real.
 * Privacy: exact-copy rate (hash of the row's values), distance to closest
 * record in a standardised space (numerics z-scored by the training mean/sd,
 * categoricals one-hot scaled by 1/sqrt(2) so a mismatch adds 1), share of
 * synthetic rows closer to train than to an equal-sized holdout, nearest
 * neighbour distance ratio, quasi-identifier uniqueness / k-anonymity, and
 * the AUC of a distance-based membership-inference attack.
 *
 * Determinism: row subsamples are the m rows with the smallest keyed
 * 64-bit hashes (seed, "eval/sample/<what>", row); every parallel loop
 * writes its own slots or reduces over fixed blocks.
 *
 * Out of memory: every metric whose buffers cannot be allocated stops the
 * evaluation with MS_ERR_NOMEM (none is reported as NaN or skipped); the
 * message names the part of the evaluation that was running.
 *
 * Files: the report folder is staged (io/atomic.h): a new folder appears
 * complete or not at all; an existing one gets each file by one rename at
 * the end. p->cancel is polled between sections and between plots.
 *
 * References: Snoke et al., "General and specific utility measures for
 * synthetic data", JRSS-A 181 (2018) (pMSE); Platzer & Reutterer, "Holdout-
 * based fidelity and privacy assessment of mixed-type synthetic data", Front.
 * Big Data 4 (2021) (DCR share vs holdout); Shokri et al. (2017) and
 * Stadler et al., "Synthetic data -- anonymisation groundhog day", USENIX
 * Security 2022 (membership inference). */
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
#include "fit/relations.h"
#include "table/frame_internal.h"
#include "io/atomic.h"
#include "medsynth/eval.h"
#include "medsynth/rng.h"
#include "medsynth/version.h"

static const char *const verdict_names[] = {"pass", "warn", "fail"};
_Static_assert(sizeof verdict_names / sizeof *verdict_names == MS_VERDICT_COUNT,
               "one name per ms_eval_verdict");
const char *ms_eval_verdict_name(ms_eval_verdict v) {
  return ms__name_of(verdict_names, MS_VERDICT_COUNT, (int)v, "?");
}

void ms_eval_params_init(ms_eval_params *p) {
  memset(p, 0, sizeof *p);
  p->max_privacy_rows = 10000;
  p->max_pmse_rows = 20000;
  p->plots = 1;
  p->max_plot_columns = 40;
}

struct ms_eval_report {
  cJSON *root;
  char *json;
  char *md;
  ms_eval_verdict worst;
};

void ms_eval_report_free(ms_eval_report *r) {
  if (!r) return;
  cJSON_Delete(r->root);
  free(r->json);
  free(r->md);
  free(r);
}

const char *ms_eval_report_json(const ms_eval_report *r) { return r->json; }
const char *ms_eval_report_markdown(const ms_eval_report *r) { return r->md; }
ms_eval_verdict ms_eval_report_verdict(const ms_eval_report *r) { return r->worst; }

double ms_eval_report_number(const ms_eval_report *r, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  cJSON *node = r->root;
  for (char *tok = strtok(buf, "."); tok && node; tok = strtok(NULL, "."))
    node = cJSON_GetObjectItemCaseSensitive(node, tok);
  return node && cJSON_IsNumber(node) ? node->valuedouble : NAN;
}

/* ---- verdicts ---- */

typedef struct {
  const char *section, *metric, *rule;
  double value;
  ms_eval_verdict v;
} verdict_row;

static ms_eval_verdict judge_hi(double x, double pass, double warn) {
  return x >= pass ? MS_VERDICT_PASS : x >= warn ? MS_VERDICT_WARN : MS_VERDICT_FAIL;
}
static ms_eval_verdict judge_lo(double x, double pass, double warn) {
  return x <= pass ? MS_VERDICT_PASS : x <= warn ? MS_VERDICT_WARN : MS_VERDICT_FAIL;
}

static int fill_text(FILE *fp, void *ctx) { return fputs(ctx, fp) < 0 ? errno : 0; }

/* path = dir/name; text written through ms__atomic_write. */
static ms_status write_text(const char *dir, const char *name, const char *text, ms_diag *d) {
  char *path = NULL;
  if (ms__asprintf(&path, "%s/%s", dir, name) < 0) return MS_ERR_NOMEM;
  ms_status st = ms__atomic_write(path, 1, fill_text, (void *)(uintptr_t)text, d);
  free(path);
  return st;
}

static ms_status poll_cancel(const ms_eval_params *p, ms_diag *d) {
  if (!p->cancel || !*p->cancel) return MS_OK;
  return ms_diag_add(d, MS_ERR_CANCELLED, NULL, 0, 0, NULL, "evaluation cancelled");
}

static void safe_name(char *out, size_t cap, const char *in) {
  size_t i = 0;
  for (; *in && i + 1 < cap; in++) {
    char ch = *in;
    out[i++] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                       ch == '-' || ch == '_'
                   ? ch
                   : '_';
  }
  out[i] = '\0';
}

/* ---- main ---- */

/* The status of a failed evaluation; an allocation failure that no callee
 * reported gets one message naming the part of the evaluation that ran. */
static ms_status eval_failed(ms_diag *d, size_t first, ms_status st, const char *what) {
  if (st == MS_ERR_NOMEM && ms__diag_find(d, first, MS_ERR_NOMEM) == SIZE_MAX)
    ms__diag_nomem(d, NULL, NULL, what);
  return st;
}

/* Column pairs by first column a (core/pool.h): association matrices (real
 * and synthetic) and contingency similarity; each entry is written by the
 * task of its row only. */
typedef struct {
  const ev *e;
  size_t dd;
  double *A, *B, *cs;
  atomic_int oom; /* a contingency table could not be allocated */
} pair_job;

static void assoc_row(void *ctx, size_t a, size_t worker) {
  const pair_job *j = ctx;
  const size_t dd = j->dd;
  (void)worker;
  for (size_t b = 0; b < dd; b++) {
    if (a == b) {
      j->A[a * dd + b] = j->B[a * dd + b] = 1;
      continue;
    }
    if (b < a) continue;
    j->A[a * dd + b] = j->A[b * dd + a] = ms__eval_association(&j->e->col[a], &j->e->col[b], 0);
    j->B[a * dd + b] = j->B[b * dd + a] = ms__eval_association(&j->e->col[a], &j->e->col[b], 2);
  }
}

static void contingency_row(void *ctx, size_t a, size_t worker) {
  pair_job *j = ctx;
  int oom = 0;
  (void)worker;
  for (size_t b = a + 1; b < j->dd; b++)
    j->cs[a * j->dd + b] = ms__eval_contingency_similarity(&j->e->col[a], &j->e->col[b], &oom);
  if (oom) atomic_store(&j->oom, 1);
}

/* The columns named in names[0..n) (*out, caller frees), each a
 * non-identifier column, categorical or bool when need_cat; what names the
 * list in messages. */
static ms_status find_columns(const ev *e, const char *const *names, size_t n, const char *what,
                              int need_cat, const char *src, size_t **out, ms_diag *d) {
  size_t *ix = ms__malloc(n * sizeof *ix);
  if (!ix) return MS_ERR_NOMEM;
  ms_status st = MS_OK;
  for (size_t q = 0; q < n && !st; q++) {
    ix[q] = SIZE_MAX;
    for (size_t j = 0; j < e->d; j++)
      if (!strcmp(e->col[j].name, names[q])) ix[q] = j;
    if (ix[q] == SIZE_MAX)
      st = ms_diag_add(d, MS_ERR_INVALID, src, 0, 0, NULL, "%s \"%s\" is not a (non-identifier) column",
                       what, names[q]);
    else if (need_cat && !e->col[ix[q]].cat)
      st = ms_diag_add(d, MS_ERR_INVALID, src, 0, 0, NULL,
                       "%s \"%s\" is numeric: subgroups are the labels of a categorical or bool column",
                       what, names[q]);
  }
  *out = ix;
  return st;
}

ms_status ms_eval_report_new(ms_eval_report **out, const ms_frame *train, const ms_frame *holdout,
                      const ms_frame *syn, const ms_eval_params *p, const char *outdir,
                      ms_diag *d) {
  *out = NULL;
  size_t first = d ? d->count : 0;
  const char *what = "aligning the columns"; /* the part running, for messages */
  ms_eval_params defaults;
  if (!p) ms_eval_params_init(&defaults), p = &defaults;
  ev e;
  memset(&e, 0, sizeof e);
  e.f[0] = train;
  e.f[1] = holdout;
  e.f[2] = syn;
  ms_status st = ms__eval_align(&e, d);
  size_t target = SIZE_MAX;
  if (!st && p->target) {
    for (size_t j = 0; j < e.d; j++)
      if (!strcmp(e.col[j].name, p->target)) target = j;
    if (target == SIZE_MAX)
      st = ms_diag_add(d, MS_ERR_INVALID, train->source, 0, 0, NULL,
                       "--target \"%s\" is not a (non-identifier) column", p->target);
  }
  size_t *qi = NULL, *sg = NULL;
  if (!st && p->n_quasi_identifiers)
    st = find_columns(&e, p->quasi_identifiers, p->n_quasi_identifiers, "quasi-identifier", 0,
                      train->source, &qi, d);
  if (!st && p->n_subgroups)
    st = find_columns(&e, p->subgroups, p->n_subgroups, "subgroup column", 1, train->source, &sg, d);
  /* The report folder is staged now, so that an unwritable place is
   * reported before the work. */
  ms__atomic stage = {.fd = -1};
  if (!st && outdir) st = ms__atomic_mkdir(&stage, outdir, d);
  for (size_t j = 0; j < e.d && !st; j++)
    if (ms__eval_col_stats(&e.col[j])) st = MS_ERR_NOMEM;
  ms_eval_report *rep = NULL;
  cJSON *root = NULL;
  if (!st) {
    rep = ms__calloc(1, sizeof *rep);
    root = cJSON_CreateObject();
    if (!rep || !root) st = MS_ERR_NOMEM;
  }
  if (st) {
    free(rep);
    cJSON_Delete(root);
    free(qi);
    free(sg);
    ms__eval_ev_free(&e);
    ms__atomic_discard(&stage);
    return eval_failed(d, first, st, what);
  }
  rep->root = root;
  /* Items are added without a check each: an allocation that failed shows
   * as errno ENOMEM before the report is written (core/json.h). */
  ms__json_begin();
  verdict_row vr[32];
  int nv = 0;
  cJSON_AddStringToObject(root, "medsynth_version", MS_VERSION_STRING);
  cJSON *in = cJSON_AddObjectToObject(root, "inputs");
  /* Inputs by file name only: the report must not depend on the directory
   * the command ran in or on how the paths were typed. */
  const char *train_name = ms__eval_base_name(train->source), *syn_name = ms__eval_base_name(syn->source);
  const char *hold_name = holdout ? ms__eval_base_name(holdout->source) : NULL;
  cJSON_AddStringToObject(in, "train", train_name);
  cJSON_AddNumberToObject(in, "train_rows", (double)train->n_rows);
  if (holdout) {
    cJSON_AddStringToObject(in, "holdout", hold_name);
    cJSON_AddNumberToObject(in, "holdout_rows", (double)holdout->n_rows);
  }
  cJSON_AddStringToObject(in, "synthetic", syn_name);
  cJSON_AddNumberToObject(in, "synthetic_rows", (double)syn->n_rows);
  cJSON_AddNumberToObject(in, "columns", (double)e.d);
  cJSON_AddNumberToObject(in, "seed", (double)p->seed);

  /* Utility: marginals. */
  what = "the marginal comparisons";
  cJSON *ut = cJSON_AddObjectToObject(root, "utility");
  cJSON *cols = cJSON_AddArrayToObject(ut, "columns");
  double msum = 0;
  size_t n_col_fail = 0, n_col_warn = 0, n_unseen = 0, n_format = 0;
  double *colsim = ms__malloc(e.d * sizeof *colsim);
  if (!colsim) st = MS_ERR_NOMEM;
  for (size_t j = 0; j < e.d && !st; j++) {
    evcol *c = &e.col[j];
    int oom = 0;
    double v = c->cat ? ms__eval_tv_complement(c, 0, 2) : ms__eval_ks_complement(c, 0, 2, &oom);
    if (oom) {
      st = MS_ERR_NOMEM;
      break;
    }
    colsim[j] = v;
    msum += v;
    cJSON *o = ms__json_push(cols, cJSON_CreateObject());
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddStringToObject(o, "metric", c->cat ? "tv_complement" : "ks_complement");
    cJSON_AddNumberToObject(o, "value", v);
    cJSON_AddNumberToObject(o, "missing_real", ms__eval_missing_rate(c, 0));
    cJSON_AddNumberToObject(o, "missing_synthetic", ms__eval_missing_rate(c, 2));
    /* Column verdict against what a real sample shows: the holdout's
     * distance to train (or, without a holdout, the 5 % critical value of
     * the two-sample KS test), whichever is larger. */
    double dsyn = 1 - v, crit = 1.36 * sqrt(1.0 / (double)c->n[0] + 1.0 / (double)c->n[2]);
    double dref = holdout ? 1 - (c->cat ? ms__eval_tv_complement(c, 0, 1) : ms__eval_ks_complement(c, 0, 1, &oom)) : crit;
    if (oom) {
      st = MS_ERR_NOMEM;
      break;
    }
    double allow = dref > crit ? dref : crit;
    ms_eval_verdict cv = dsyn > 2 * allow + 0.05 ? MS_VERDICT_FAIL
                         : dsyn > allow + 0.02   ? MS_VERDICT_WARN
                                                 : MS_VERDICT_PASS;
    char notes[256];
    size_t unseen = ms__eval_unseen_cells(train, holdout, syn, c->name, notes, sizeof notes);
    cJSON_AddNumberToObject(o, "distance", dsyn);
    cJSON_AddNumberToObject(o, "reference_distance", dref);
    cJSON_AddNumberToObject(o, "unseen_cells", (double)unseen);
    if (notes[0]) cJSON_AddStringToObject(o, "format", notes);
    n_col_fail += cv == MS_VERDICT_FAIL;
    n_col_warn += cv == MS_VERDICT_WARN;
    if (unseen || notes[0]) cv = MS_VERDICT_FAIL;
    cJSON_AddStringToObject(o, "verdict", ms_eval_verdict_name(cv));
    n_unseen += unseen;
    n_format += notes[0] != '\0';
  }
  double marg = msum / (double)e.d;
  cJSON_AddNumberToObject(ut, "marginal_similarity", marg);
  vr[nv++] = (verdict_row){"utility", "marginal similarity (mean KS/TV complement)", ">= 0.90 pass, >= 0.80 warn",
                           marg, judge_hi(marg, 0.9, 0.8)};
  vr[nv++] = (verdict_row){"utility", "columns beyond the real reference (KS/TV > 2 x ref + 0.05)", "0 pass",
                           (double)n_col_fail,
                           n_col_fail ? MS_VERDICT_FAIL : n_col_warn ? MS_VERDICT_WARN : MS_VERDICT_PASS};
  {
    /* Literal comparison: the header in the real order, no value the real
     * table never has, the real table's formats. */
    size_t misplaced = 0, k = 0;
    for (size_t j = 0; j < train->n_cols; j++) {
      size_t at = ms_frame_find(syn, train->cols[j].name);
      if (at == SIZE_MAX) continue;
      misplaced += at != k;
      k++;
    }
    double share = syn->n_rows ? (double)n_unseen / (double)syn->n_rows : 0;
    cJSON *lit = cJSON_AddObjectToObject(ut, "literal");
    cJSON_AddNumberToObject(lit, "columns_out_of_order", (double)misplaced);
    cJSON_AddNumberToObject(lit, "unseen_cells", (double)n_unseen);
    cJSON_AddNumberToObject(lit, "columns_in_another_format", (double)n_format);
    vr[nv++] = (verdict_row){"utility", "columns out of the real order", "0 pass", (double)misplaced,
                             misplaced ? MS_VERDICT_FAIL : MS_VERDICT_PASS};
    vr[nv++] = (verdict_row){"utility", "values the real table never has (per synthetic row)", "0 pass", share,
                             n_unseen ? MS_VERDICT_FAIL : MS_VERDICT_PASS};
    vr[nv++] = (verdict_row){"utility", "columns written in another format", "0 pass", (double)n_format,
                             n_format ? MS_VERDICT_FAIL : MS_VERDICT_PASS};
  }

  /* Relations that hold on every real training row (fit/relations.c),
   * re-checked on the synthetic rows: broken more often than in the real
   * holdout (or than never, without one) fails. */
  if (!st) {
    ms__rel *rels = NULL;
    size_t n_rels = 0, broken = 0;
    st = ms__relations_find(train, 5, &rels, &n_rels);
    cJSON *rj = cJSON_AddArrayToObject(ut, "relations");
    for (size_t q = 0; q < n_rels && !st; q++) {
      char desc[512];
      ms__relation_describe(&rels[q], train, desc, sizeof desc);
      size_t ns = 0, nh = 0;
      double vs = ms__relation_violations(&rels[q], train, syn, &ns);
      double vh = holdout ? ms__relation_violations(&rels[q], train, holdout, &nh) : 0;
      if (isnan(vh)) vh = 0;
      int bad = !isnan(vs) && vs > vh;
      broken += bad;
      cJSON *o = cJSON_CreateObject();
      cJSON_AddItemToArray(rj, o);
      cJSON_AddStringToObject(o, "relation", desc);
      cJSON_AddNumberToObject(o, "violations_synthetic", isnan(vs) ? 0 : vs);
      cJSON_AddNumberToObject(o, "violations_holdout", vh);
      cJSON_AddNumberToObject(o, "rows_checked", (double)ns);
      cJSON_AddStringToObject(o, "verdict", bad ? "fail" : "pass");
    }
    ms__relations_free(rels, n_rels);
    if (n_rels)
      vr[nv++] = (verdict_row){"utility", "relations of the real table broken more often than in real data",
                               "0 pass", (double)broken, broken ? MS_VERDICT_FAIL : MS_VERDICT_PASS};
  }

  if (!st) st = poll_cancel(p, d);
  /* Associations. */
  what = "the association matrices";
  size_t dd = e.d;
  double *A = ms__malloc(dd * dd * sizeof *A), *B = ms__malloc(dd * dd * sizeof *B);
  if (!A || !B) st = MS_ERR_NOMEM;
  double diff_sum = 0, diff_max = 0, cs_sum = 0;
  size_t n_pairs = dd * (dd - 1) / 2;
  if (!st) {
    pair_job pj = {&e, dd, A, B, NULL, 0};
    ms__parallel(dd, ms__parallel_threads(), assoc_row, &pj);
    double *cs = ms__calloc(dd * dd, sizeof *cs);
    int oom = 0;
    if (!cs) st = MS_ERR_NOMEM;
    else {
      pj.cs = cs;
      ms__parallel(dd, ms__parallel_threads(), contingency_row, &pj);
      oom = atomic_load(&pj.oom);
      if (oom) st = MS_ERR_NOMEM;
      for (size_t a = 0; a < dd && !st; a++)
        for (size_t b = a + 1; b < dd; b++) {
          double x = A[a * dd + b], y = B[a * dd + b];
          double df = isnan(x) || isnan(y) ? 0 : fabs(x - y);
          diff_sum += df;
          if (df > diff_max) diff_max = df;
          cs_sum += cs[a * dd + b];
        }
      free(cs);
    }
  }
  cJSON *as = cJSON_AddObjectToObject(ut, "association");
  double mad = n_pairs ? diff_sum / n_pairs : 0;
  cJSON_AddNumberToObject(as, "mean_abs_diff", mad);
  cJSON_AddNumberToObject(as, "max_abs_diff", diff_max);
  cJSON_AddNumberToObject(ut, "contingency_similarity", n_pairs ? cs_sum / n_pairs : 1);
  if (!st) {
    cJSON *names = cJSON_AddArrayToObject(as, "columns");
    cJSON *ra = cJSON_AddArrayToObject(as, "real"), *sa = cJSON_AddArrayToObject(as, "synthetic");
    for (size_t a = 0; a < dd; a++) {
      ms__json_push(names, cJSON_CreateString(e.col[a].name));
      cJSON *r1 = cJSON_CreateArray(), *r2 = cJSON_CreateArray();
      for (size_t b = 0; b < dd; b++) {
        double x = A[a * dd + b], y = B[a * dd + b];
        ms__json_push(r1, isnan(x) ? cJSON_CreateNull() : cJSON_CreateNumber(round(x * 1e4) / 1e4));
        ms__json_push(r2, isnan(y) ? cJSON_CreateNull() : cJSON_CreateNumber(round(y * 1e4) / 1e4));
      }
      ms__json_push(ra, r1);
      ms__json_push(sa, r2);
    }
  }
  if (n_pairs)
    vr[nv++] = (verdict_row){"utility", "association difference (mean |real - synthetic|)",
                             "<= 0.10 pass, <= 0.20 warn", mad, judge_lo(mad, 0.1, 0.2)};

  if (!st) st = poll_cancel(p, d);
  /* pMSE. */
  if (!st) what = "the pMSE classifier";
  size_t mt = 0, ms = 0;
  size_t *rt = NULL, *rs = NULL;
  if (!st) {
    rt = ms__eval_subsample(train->n_rows, p->max_pmse_rows, p->seed, "pmse/real", &mt);
    rs = ms__eval_subsample(syn->n_rows, p->max_pmse_rows, p->seed, "pmse/synthetic", &ms);
    if (!rt || !rs) st = MS_ERR_NOMEM;
  }
  if (!st) {
    size_t pw = ms__eval_enc_width(&e, SIZE_MAX), n = mt + ms;
    double *X = ms__malloc(n * (pw ? pw : 1) * sizeof *X), *y = ms__malloc(n * sizeof *y),
           *beta = ms__malloc((pw + 1) * sizeof *beta);
    if (!X || !y || !beta) st = MS_ERR_NOMEM;
    else {
      for (size_t i = 0; i < mt; i++) ms__eval_encode_row(&e, 0, rt[i], SIZE_MAX, 1, X + i * pw), y[i] = 0;
      for (size_t i = 0; i < ms; i++) ms__eval_encode_row(&e, 2, rs[i], SIZE_MAX, 1, X + (mt + i) * pw), y[mt + i] = 1;
      ms_status s2 = ms__logreg_fit(beta, X, y, n, pw, 1.0);
      if (!s2) {
        double cshare = (double)ms / n, pm = 0;
        for (size_t i = 0; i < n; i++) {
          double pr = ms__logreg_prob(beta, X + i * pw, pw) - cshare;
          pm += pr * pr;
        }
        pm /= n;
        double score = 1 - pm / (cshare * (1 - cshare));
        cJSON *po = cJSON_AddObjectToObject(ut, "pmse");
        cJSON_AddNumberToObject(po, "pmse", pm);
        cJSON_AddNumberToObject(po, "score", score);
        cJSON_AddNumberToObject(po, "rows_real", (double)mt);
        cJSON_AddNumberToObject(po, "rows_synthetic", (double)ms);
        cJSON_AddNumberToObject(ut, "pmse_score", score);
        vr[nv++] = (verdict_row){"utility", "pMSE score (1 - pMSE / c(1-c))", ">= 0.80 pass, >= 0.60 warn",
                                 score, judge_hi(score, 0.8, 0.6)};
      } else if (s2 != MS_ERR_MATH) {
        st = s2;
      }
    }
    free(X);
    free(y);
    free(beta);
  }
  free(rt);
  free(rs);

  if (!st) st = poll_cancel(p, d);
  /* TSTR. Per test row the predictions of both models are kept for the
   * subgroups below: pred (numeric target) or pcls (class). */
  double *pred[2] = {NULL, NULL};
  int32_t *pcls[2] = {NULL, NULL};
  size_t *sg_rows = NULL, sg_m = 0;
  int sg_k = holdout ? 1 : 0;
  if (!st && target != SIZE_MAX) {
    what = "the train-on-synthetic models";
    const evcol *tc = &e.col[target];
    int test_k = holdout ? 1 : 0;
    size_t pw = ms__eval_enc_width(&e, target);
    cJSON *to = cJSON_AddObjectToObject(ut, "tstr");
    cJSON_AddStringToObject(to, "target", tc->name);
    cJSON_AddStringToObject(to, "test_set", holdout ? "holdout" : "train (no holdout given)");
    double score[2] = {NAN, NAN}; /* [train on synthetic, train on real] */
    size_t mtest;
    size_t *rtest = ms__eval_subsample(e.f[test_k]->n_rows, 50000, p->seed, "tstr/test", &mtest);
    double *Xtest = rtest ? ms__eval_encode(&e, test_k, rtest, mtest, target, 1) : NULL;
    if (!Xtest) st = MS_ERR_NOMEM;
    for (int which = 0; which < 2 && !st; which++) {
      int k = which == 0 ? 2 : 0;
      size_t mtr;
      size_t *rtr = ms__eval_subsample(e.f[k]->n_rows, 50000, p->seed, "tstr/train", &mtr);
      double *Xtr = rtr ? ms__eval_encode(&e, k, rtr, mtr, target, 1) : NULL;
      double *ytr = ms__malloc((mtr ? mtr : 1) * sizeof *ytr), *beta = ms__malloc((pw + 1) * sizeof *beta);
      if (!Xtr || !ytr || !beta) st = MS_ERR_NOMEM;
      else if (!tc->cat) {
        size_t m = 0;
        for (size_t i = 0; i < mtr; i++) {
          double v = tc->x[k][rtr[i]];
          if (isnan(v)) continue;
          memmove(Xtr + m * pw, Xtr + i * pw, pw * sizeof *Xtr);
          ytr[m++] = v;
        }
        ms_status fs = m > pw ? ms__linreg_fit(beta, Xtr, ytr, m, pw, 1e-3 * (double)m) : MS_ERR_MATH;
        if (fs == MS_ERR_NOMEM) st = fs;
        if (fs == MS_OK) {
          double ss = 0, st2 = 0, mean = 0, cnt = 0;
          for (size_t i = 0; i < mtest; i++)
            if (!isnan(tc->x[test_k][rtest[i]])) mean += tc->x[test_k][rtest[i]], cnt++;
          mean /= cnt > 0 ? cnt : 1;
          pred[which] = ms__malloc((mtest ? mtest : 1) * sizeof *pred[which]);
          if (!pred[which]) st = MS_ERR_NOMEM;
          for (size_t i = 0; i < mtest && !st; i++) {
            double v = tc->x[test_k][rtest[i]];
            double pr = ms__linreg_predict(beta, Xtest + i * pw, pw);
            pred[which][i] = pr;
            if (isnan(v)) continue;
            ss += (v - pr) * (v - pr);
            st2 += (v - mean) * (v - mean);
          }
          score[which] = st2 > 0 ? 1 - ss / st2 : NAN;
        }
      } else {
        /* One-vs-rest over the (up to 10) most frequent training classes. */
        size_t L = tc->L < MAX_LEVELS ? tc->L : MAX_LEVELS, nc = 0;
        double freq[MAX_LEVELS] = {0};
        int cls[10];
        for (size_t r = 0; r < tc->n[0]; r++)
          if (tc->c[0][r] >= 0 && (size_t)tc->c[0][r] < L) freq[tc->c[0][r]]++;
        for (; nc < 10; nc++) {
          int best = -1;
          for (size_t l = 0; l < L; l++) {
            int used = 0;
            for (size_t t = 0; t < nc; t++) used |= cls[t] == (int)l;
            if (!used && freq[l] > 0 && (best < 0 || freq[l] > freq[best])) best = (int)l;
          }
          if (best < 0) break;
          cls[nc] = best;
        }
        double *scores = ms__calloc(mtest * (nc ? nc : 1), sizeof *scores);
        int fitted = 0;
        if (!scores) st = MS_ERR_NOMEM;
        for (size_t t = 0; t < nc && !st && nc >= 2; t++) {
          for (size_t i = 0; i < mtr; i++) ytr[i] = tc->c[k][rtr[i]] == cls[t];
          ms_status fs = ms__logreg_fit(beta, Xtr, ytr, mtr, pw, 1.0);
          if (fs == MS_ERR_NOMEM) st = fs;
          if (fs) continue;
          fitted++;
          for (size_t i = 0; i < mtest; i++) scores[i * nc + t] = ms__logreg_prob(beta, Xtest + i * pw, pw);
        }
        if (fitted && !st) {
          double ok = 0, cnt = 0;
          pcls[which] = ms__malloc((mtest ? mtest : 1) * sizeof *pcls[which]);
          if (!pcls[which]) st = MS_ERR_NOMEM;
          for (size_t i = 0; i < mtest && !st; i++) {
            int32_t truth = tc->c[test_k][rtest[i]];
            size_t bi = 0;
            for (size_t t = 1; t < nc; t++)
              if (scores[i * nc + t] > scores[i * nc + bi]) bi = t;
            pcls[which][i] = cls[bi];
            if (truth < 0) continue;
            ok += cls[bi] == truth;
            cnt++;
          }
          score[which] = cnt > 0 ? ok / cnt : NAN;
        }
        free(scores);
      }
      free(rtr);
      free(Xtr);
      free(ytr);
      free(beta);
    }
    sg_rows = rtest, sg_m = mtest;
    free(Xtest);
    /* The baseline a model must beat: the majority class of the real
     * training rows (accuracy), or their mean (R^2), on the same test rows. */
    double base = NAN;
    {
      size_t ntest;
      size_t *rt = ms__eval_subsample(e.f[test_k]->n_rows, 50000, p->seed, "tstr/test", &ntest);
      if (rt && tc->cat) {
        size_t L = tc->L;
        double *fr = ms__calloc(L ? L : 1, sizeof *fr);
        if (fr) {
          for (size_t r = 0; r < tc->n[0]; r++)
            if (tc->c[0][r] >= 0) fr[tc->c[0][r]]++;
          size_t mj = 0;
          for (size_t l = 1; l < L; l++)
            if (fr[l] > fr[mj]) mj = l;
          double ok = 0, cnt = 0;
          for (size_t i = 0; i < ntest; i++) {
            int32_t truth = tc->c[test_k][rt[i]];
            if (truth < 0) continue;
            ok += (size_t)truth == mj;
            cnt++;
          }
          base = cnt > 0 ? ok / cnt : NAN;
          free(fr);
        }
      } else if (rt) {
        double mtr = 0, ctr = 0, mte = 0, cte = 0, ss = 0, s2 = 0;
        for (size_t r = 0; r < tc->n[0]; r++)
          if (!isnan(tc->x[0][r])) mtr += tc->x[0][r], ctr++;
        for (size_t i = 0; i < ntest; i++)
          if (!isnan(tc->x[test_k][rt[i]])) mte += tc->x[test_k][rt[i]], cte++;
        mtr /= ctr > 0 ? ctr : 1;
        mte /= cte > 0 ? cte : 1;
        for (size_t i = 0; i < ntest; i++) {
          double v = tc->x[test_k][rt[i]];
          if (isnan(v)) continue;
          ss += (v - mtr) * (v - mtr);
          s2 += (v - mte) * (v - mte);
        }
        base = s2 > 0 ? 1 - ss / s2 : NAN;
      }
      free(rt);
    }
    const char *mname = tc->cat ? "accuracy" : "r2";
    cJSON_AddStringToObject(to, "metric", mname);
    if (!isnan(base)) {
      cJSON_AddNumberToObject(to, "baseline", base);
      double tstr = isnan(score[0]) ? -INFINITY : score[0];
      vr[nv++] = (verdict_row){"utility",
                               tc->cat ? "TSTR above the majority-class baseline (TSTR - baseline)"
                                       : "TSTR above the mean-predictor baseline (TSTR - baseline)",
                               "> 0 pass", isfinite(tstr) ? tstr - base : -1,
                               tstr > base + 1e-9 ? MS_VERDICT_PASS : MS_VERDICT_FAIL};
    }
    cJSON_AddNumberToObject(to, "tstr", isnan(score[0]) ? 0 : score[0]);
    cJSON_AddNumberToObject(to, "trtr", isnan(score[1]) ? 0 : score[1]);
    double ratio = score[1] > 0 && !isnan(score[0]) ? score[0] / score[1] : NAN;
    if (!isnan(ratio)) {
      cJSON_AddNumberToObject(to, "ratio", ratio);
      vr[nv++] = (verdict_row){"utility", "TSTR / TRTR", ">= 0.90 pass, >= 0.75 warn", ratio,
                               judge_hi(ratio, 0.9, 0.75)};
    }
  }

  /* Subgroups: each label's share of the real training rows against its
   * share of the synthetic rows, and -- with a target -- both models scored
   * on the test rows of that label (docs/evaluate.md, Subgroups). */
  if (!st && p->n_subgroups) {
    what = "the subgroups";
    cJSON *sgj = cJSON_AddArrayToObject(root, "subgroups");
    double worst_gap = 0, worst_ratio = INFINITY;
    ms_eval_verdict rep_v = MS_VERDICT_PASS, ut_v = MS_VERDICT_PASS;
    const evcol *tc = target != SIZE_MAX ? &e.col[target] : NULL;
    for (size_t q = 0; q < p->n_subgroups && !st; q++) {
      const evcol *g = &e.col[sg[q]];
      cJSON *gj = ms__json_push(sgj, cJSON_CreateObject());
      cJSON_AddStringToObject(gj, "column", g->name);
      cJSON *lv = cJSON_AddArrayToObject(gj, "groups");
      double n0 = 0, n2 = 0;
      for (size_t r = 0; r < g->n[0]; r++) n0 += g->c[0][r] >= 0;
      for (size_t r = 0; r < g->n[2]; r++) n2 += g->c[2][r] >= 0;
      for (size_t l = 0; l < g->L; l++) {
        double c0 = 0, c2 = 0;
        for (size_t r = 0; r < g->n[0]; r++) c0 += g->c[0][r] == (int32_t)l;
        for (size_t r = 0; r < g->n[2]; r++) c2 += g->c[2][r] == (int32_t)l;
        if (c0 == 0 && c2 == 0) continue;
        double s0 = n0 > 0 ? c0 / n0 : 0, s2 = n2 > 0 ? c2 / n2 : 0;
        /* sampling error of both shares, 4 standard errors plus 1 point */
        double se = sqrt(s0 * (1 - s0) / (n0 > 0 ? n0 : 1) + s0 * (1 - s0) / (n2 > 0 ? n2 : 1));
        ms_eval_verdict v = c0 >= 10 && c2 == 0               ? MS_VERDICT_FAIL
                            : fabs(s2 - s0) > 4 * se + 0.01 ? MS_VERDICT_WARN
                                                            : MS_VERDICT_PASS;
        if (v > rep_v) rep_v = v;
        if (fabs(s2 - s0) > worst_gap) worst_gap = fabs(s2 - s0);
        cJSON *o = ms__json_push(lv, cJSON_CreateObject());
        cJSON_AddStringToObject(o, "label", g->labels[l]);
        cJSON_AddNumberToObject(o, "real_share", s0);
        cJSON_AddNumberToObject(o, "synthetic_share", s2);
        cJSON_AddStringToObject(o, "verdict", ms_eval_verdict_name(v));
        if (!tc || !sg_rows || !(tc->cat ? pcls[0] && pcls[1] : pred[0] && pred[1])) continue;
        /* the test rows of this label */
        double sc[2] = {0, 0}, cnt = 0;
        for (size_t i = 0; i < sg_m; i++) {
          size_t r = sg_rows[i];
          if (g->c[sg_k][r] != (int32_t)l) continue;
          if (tc->cat) {
            int32_t truth = tc->c[sg_k][r];
            if (truth < 0) continue;
            for (int w = 0; w < 2; w++) sc[w] += pcls[w][i] == truth;
          } else {
            double y = tc->x[sg_k][r];
            if (isnan(y)) continue;
            for (int w = 0; w < 2; w++) sc[w] += (y - pred[w][i]) * (y - pred[w][i]);
          }
          cnt++;
        }
        cJSON_AddNumberToObject(o, "test_rows", cnt);
        if (cnt < 1) continue;
        for (int w = 0; w < 2; w++) sc[w] = tc->cat ? sc[w] / cnt : sqrt(sc[w] / cnt);
        cJSON_AddStringToObject(o, "metric", tc->cat ? "accuracy" : "rmse");
        cJSON_AddNumberToObject(o, "tstr", sc[0]);
        cJSON_AddNumberToObject(o, "trtr", sc[1]);
        /* TSTR relative to TRTR, higher is better for both metrics */
        double ratio = tc->cat ? (sc[1] > 0 ? sc[0] / sc[1] : 1) : (sc[0] > 0 ? sc[1] / sc[0] : 1);
        cJSON_AddNumberToObject(o, "ratio", ratio);
        if (cnt >= 20 && ratio < worst_ratio) worst_ratio = ratio;
      }
    }
    vr[nv++] = (verdict_row){"utility", "subgroup shares (largest gap between synthetic and real)",
                             "no group held by >= 10 real rows missing (fail); within 4 s.e. + 0.01 (pass)",
                             worst_gap, rep_v};
    if (isfinite(worst_ratio)) {
      ut_v = judge_hi(worst_ratio, 0.9, 0.75);
      vr[nv++] = (verdict_row){"utility", "subgroup TSTR / TRTR (lowest, groups of >= 20 test rows)",
                               ">= 0.90 pass, >= 0.75 warn", worst_ratio, ut_v};
    }
  }
  free(sg_rows);
  for (int w = 0; w < 2; w++) free(pred[w]), free(pcls[w]);
  free(sg);

  if (!st) st = poll_cancel(p, d);
  /* Privacy. */
  if (!st) what = "the privacy metrics";
  cJSON *pv = cJSON_AddObjectToObject(root, "privacy");
  double *dt = NULL, *dh = NULL;
  size_t nS = 0;
  if (!st) {
    /* Exact copies. */
    ms__strtab tab;
    if (ms__strtab_init(&tab)) st = MS_ERR_NOMEM;
    for (size_t r = 0; r < train->n_rows && !st; r++) {
      char *k = ms__eval_row_key(&e, 0, r, NULL, 0);
      if (!k || ms__strtab_intern(&tab, k) == -2) st = MS_ERR_NOMEM;
      free(k);
    }
    size_t copies = 0;
    for (size_t r = 0; r < syn->n_rows && !st; r++) {
      char *k = ms__eval_row_key(&e, 2, r, NULL, 0);
      if (!k) st = MS_ERR_NOMEM;
      else copies += ms__strtab_find(&tab, k) >= 0;
      free(k);
    }
    ms__strtab_deinit(&tab, 1);
    double rate = syn->n_rows ? (double)copies / syn->n_rows : 0;
    cJSON_AddNumberToObject(pv, "exact_copy_rate", rate);
    cJSON_AddNumberToObject(pv, "exact_copies", (double)copies);
    vr[nv++] = (verdict_row){"privacy", "exact copies of training rows", "0 pass, <= 1% warn", rate,
                             rate == 0 ? MS_VERDICT_PASS : rate <= 0.01 ? MS_VERDICT_WARN : MS_VERDICT_FAIL};
  }
  if (!st) {
    const double oh = sqrt(0.5);
    size_t pw = ms__eval_enc_width(&e, SIZE_MAX);
    size_t *rS = ms__eval_subsample(syn->n_rows, p->max_privacy_rows, p->seed, "privacy/synthetic", &nS);
    double *XT = ms__eval_encode(&e, 0, NULL, train->n_rows, SIZE_MAX, oh);
    double *XS = rS ? ms__eval_encode(&e, 2, rS, nS, SIZE_MAX, oh) : NULL;
    ms__nn *tT = NULL;
    double *d2 = ms__malloc(2 * (nS ? nS : 1) * sizeof *d2);
    dt = ms__malloc((nS ? nS : 1) * sizeof *dt);
    if (!XT || !XS || !d2 || !dt || ms__nn_new(&tT, XT, train->n_rows, pw, MS__NN_AUTO)) st = MS_ERR_NOMEM;
    if (!st) {
      st = ms__nn_query(tT, XS, nS, 2, d2, NULL);
    }
    if (!st) {
      double *ratio = ms__malloc((nS ? nS : 1) * sizeof *ratio), *dcr = ms__malloc((nS ? nS : 1) * sizeof *dcr);
      if (!ratio || !dcr) st = MS_ERR_NOMEM;
      else {
        for (size_t i = 0; i < nS; i++) {
          dcr[i] = d2[2 * i];
          ratio[i] = d2[2 * i + 1] > 0 && isfinite(d2[2 * i + 1]) ? d2[2 * i] / d2[2 * i + 1] : 1;
        }
        cJSON *dc = cJSON_AddObjectToObject(pv, "dcr");
        cJSON_AddNumberToObject(dc, "query_rows", (double)nS);
        cJSON_AddStringToObject(dc, "search", ms__nn_method_used(tT) == MS__NN_KDTREE ? "k-d tree"
                                              : ms__nn_method_used(tT) == MS__NN_GEMM ? "blocked sgemm, exact re-rank"
                                                                                      : "brute force");
        cJSON_AddNumberToObject(dc, "synthetic_to_train_p05", ms__eval_quantile_of(dcr, nS, 0.05));
        cJSON_AddNumberToObject(dc, "synthetic_to_train_median", ms__eval_median_of(dcr, nS));
        cJSON_AddNumberToObject(pv, "nndr_median", ms__eval_median_of(ratio, nS));
        if (holdout) {
          size_t nH = holdout->n_rows, nTs;
          size_t *rTs = ms__eval_subsample(train->n_rows, nH, p->seed, "privacy/train-subset", &nTs);
          double *XH = ms__eval_encode(&e, 1, NULL, nH, SIZE_MAX, oh);
          double *XTs = rTs ? ms__eval_encode(&e, 0, rTs, nTs, SIZE_MAX, oh) : NULL;
          double *XSall = ms__eval_encode(&e, 2, NULL, syn->n_rows, SIZE_MAX, oh);
          ms__nn *tH = NULL, *tTs = NULL, *tS = NULL;
          dh = ms__malloc((nS ? nS : 1) * sizeof *dh);
          double *hd = ms__malloc((nH ? nH : 1) * sizeof *hd), *md = ms__malloc((nTs ? nTs : 1) * sizeof *md);
          double *hT = ms__malloc((nH ? nH : 1) * sizeof *hT);
          if (!XH || !XTs || !XSall || !dh || !hd || !md || !hT || ms__nn_new(&tH, XH, nH, pw, MS__NN_AUTO) ||
              ms__nn_new(&tTs, XTs, nTs, pw, MS__NN_AUTO) ||
              ms__nn_new(&tS, XSall, syn->n_rows, pw, MS__NN_AUTO))
            st = MS_ERR_NOMEM;
          if (!st) {
            st = ms__nn_query(tTs, XS, nS, 1, dt, NULL);
            if (!st) st = ms__nn_query(tH, XS, nS, 1, dh, NULL);
          }
          if (!st) {
            double closer = 0;
            for (size_t i = 0; i < nS; i++) closer += dt[i] < dh[i] ? 1 : dt[i] == dh[i] ? 0.5 : 0;
            closer /= nS ? (double)nS : 1;
            cJSON_AddNumberToObject(pv, "closer_to_train_share", closer);
            vr[nv++] = (verdict_row){"privacy", "share of synthetic rows closer to train than holdout",
                                     "<= 0.60 pass, <= 0.70 warn", closer, judge_lo(closer, 0.6, 0.7)};
            /* Membership inference: members closer to the synthetic data. */
            st = ms__nn_query(tS, XTs, nTs, 1, md, NULL);
            if (!st) st = ms__nn_query(tS, XH, nH, 1, hd, NULL);
          }
          if (!st) {
            for (size_t i = 0; i < nTs; i++) md[i] = -md[i];
            for (size_t i = 0; i < nH; i++) hd[i] = -hd[i];
            int oom = 0;
            double a = ms__eval_auc(md, nTs, hd, nH, &oom);
            if (oom) st = MS_ERR_NOMEM;
            cJSON_AddNumberToObject(pv, "mia_auc", a);
            vr[nv++] = (verdict_row){"privacy", "membership-inference AUC (distance attack)",
                                     "<= 0.60 pass, <= 0.70 warn", a, judge_lo(a, 0.6, 0.7)};
            /* Real-to-real reference: holdout rows to their closest train row. */
            if (!st) st = ms__nn_query(tT, XH, nH, 1, hT, NULL);
          }
          if (!st) {
            cJSON_AddNumberToObject(dc, "holdout_to_train_p05", ms__eval_quantile_of(hT, nH, 0.05));
            cJSON_AddNumberToObject(dc, "holdout_to_train_median", ms__eval_median_of(hT, nH));
          }
          ms__nn_free(tH);
          ms__nn_free(tTs);
          ms__nn_free(tS);
          free(rTs);
          free(XH);
          free(XTs);
          free(XSall);
          free(hd);
          free(md);
          free(hT);
        } else {
          for (size_t i = 0; i < nS; i++) dt[i] = d2[2 * i];
          cJSON_AddStringToObject(pv, "note", "no holdout: closer-to-train share and membership inference not computed");
        }
      }
      free(ratio);
      free(dcr);
    }
    ms__nn_free(tT);
    free(rS);
    free(XT);
    free(XS);
    free(d2);
  }
  if (!st) st = poll_cancel(p, d);
  if (!st && qi) {
    what = "the quasi-identifier tables";
    cJSON *qo = cJSON_AddObjectToObject(pv, "quasi_identifiers");
    cJSON *qn = cJSON_AddArrayToObject(qo, "columns");
    for (size_t q = 0; q < p->n_quasi_identifiers; q++) ms__json_push(qn, cJSON_CreateString(e.col[qi[q]].name));
    int ks[3] = {0, 2};
    size_t *counts[2] = {NULL, NULL};
    ms__strtab tabs[2];
    memset(tabs, 0, sizeof tabs); /* a table not reached stays empty for the cleanup */
    for (int s = 0; s < 2 && !st; s++) {
      if (ms__strtab_init(&tabs[s])) {
        st = MS_ERR_NOMEM;
        break;
      }
      size_t n = e.f[ks[s]]->n_rows;
      int32_t *code = ms__malloc((n ? n : 1) * sizeof *code);
      counts[s] = ms__calloc(n + 1, sizeof *counts[s]);
      if (!code || !counts[s]) st = MS_ERR_NOMEM;
      for (size_t r = 0; r < n && !st; r++) {
        char *k = ms__eval_row_key(&e, ks[s], r, qi, p->n_quasi_identifiers);
        if (!k || (code[r] = ms__strtab_intern(&tabs[s], k)) < 0) st = MS_ERR_NOMEM;
        else counts[s][code[r]]++;
        free(k);
      }
      if (!st) {
        size_t kmin = SIZE_MAX, uniq = 0;
        for (size_t r = 0; r < n; r++) {
          size_t c = counts[s][code[r]];
          if (c < kmin) kmin = c;
          uniq += c == 1;
        }
        cJSON *o = cJSON_AddObjectToObject(qo, s == 0 ? "real" : "synthetic");
        cJSON_AddNumberToObject(o, "k_anonymity", (double)(n ? kmin : 0));
        cJSON_AddNumberToObject(o, "unique_share", n ? (double)uniq / n : 0);
        cJSON_AddNumberToObject(o, "classes", (double)tabs[s].n);
      }
      free(code);
    }
    if (!st) {
      /* Synthetic rows whose QI combination is unique in the real data. */
      size_t hits = 0;
      for (size_t i = 0; i < tabs[1].n; i++) {
        int32_t rc = ms__strtab_find(&tabs[0], tabs[1].strs[i]);
        if (rc >= 0 && counts[0][rc] == 1) hits += counts[1][i];
      }
      double share = syn->n_rows ? (double)hits / syn->n_rows : 0;
      cJSON_AddNumberToObject(qo, "synthetic_rows_matching_real_unique", share);
      vr[nv++] = (verdict_row){"privacy", "synthetic rows matching a real-unique QI combination",
                               "<= 0.01 pass, <= 0.05 warn", share, judge_lo(share, 0.01, 0.05)};
    }
    for (int s = 0; s < 2; s++) {
      if (tabs[s].slots) ms__strtab_deinit(&tabs[s], 1);
      free(counts[s]);
    }
  }

  /* Verdicts. */
  ms_eval_verdict sec[2] = {MS_VERDICT_PASS, MS_VERDICT_PASS};
  cJSON *vj = cJSON_AddArrayToObject(root, "verdicts");
  for (int i = 0; i < nv; i++) {
    int s = strcmp(vr[i].section, "utility") != 0;
    if (vr[i].v > sec[s]) sec[s] = vr[i].v;
    cJSON *o = ms__json_push(vj, cJSON_CreateObject());
    cJSON_AddStringToObject(o, "section", vr[i].section);
    cJSON_AddStringToObject(o, "metric", vr[i].metric);
    cJSON_AddNumberToObject(o, "value", vr[i].value);
    cJSON_AddStringToObject(o, "thresholds", vr[i].rule);
    cJSON_AddStringToObject(o, "verdict", ms_eval_verdict_name(vr[i].v));
  }
  cJSON_AddStringToObject(ut, "verdict", ms_eval_verdict_name(sec[0]));
  cJSON_AddStringToObject(pv, "verdict", ms_eval_verdict_name(sec[1]));
  rep->worst = sec[0] > sec[1] ? sec[0] : sec[1];
  cJSON_AddStringToObject(root, "verdict", ms_eval_verdict_name(rep->worst));

  /* Every item the report reads below is present only if no allocation
   * failed while building it. */
  if (!st) what = "the report";
  if (!st && errno == ENOMEM) st = MS_ERR_NOMEM;
  /* Markdown. */
  if (!st) {
    size_t len = 0;
    FILE *fp = ms__open_memstream(&rep->md, &len);
    if (!fp) st = MS_ERR_NOMEM;
    else {
      fprintf(fp, "# Synthetic data evaluation\n\n");
      fprintf(fp, "Real (train): `%s` (%zu rows); ", train_name, train->n_rows);
      if (holdout) fprintf(fp, "holdout: `%s` (%zu rows); ", hold_name, holdout->n_rows);
      fprintf(fp, "synthetic: `%s` (%zu rows); %zu columns compared. medsynth %s.\n\n", syn_name,
              syn->n_rows, e.d, MS_VERSION_STRING);
      fprintf(fp, "This report is computed from the real data and is as confidential as it.\n\n");
      fprintf(fp, "**Utility: %s.** **Privacy: %s.** Overall: **%s**.\n\n",
              ms_eval_verdict_name(sec[0]), ms_eval_verdict_name(sec[1]),
              ms_eval_verdict_name(rep->worst));
      const char *secn[2] = {"utility", "privacy"};
      for (int s = 0; s < 2; s++) {
        fprintf(fp, "## %s — %s\n\n| metric | value | thresholds | verdict |\n|---|---|---|---|\n",
                s ? "Privacy" : "Utility", ms_eval_verdict_name(sec[s]));
        for (int i = 0; i < nv; i++)
          if (!strcmp(vr[i].section, secn[s]))
            fprintf(fp, "| %s | %.4f | %s | %s |\n", vr[i].metric, vr[i].value, vr[i].rule,
                    ms_eval_verdict_name(vr[i].v));
        fputc('\n', fp);
      }
      if (target != SIZE_MAX) {
        cJSON *to = cJSON_GetObjectItem(ut, "tstr");
        fprintf(fp, "Target `%s`: train-on-synthetic %s %.4f, train-on-real %.4f (tested on %s).\n\n",
                e.col[target].name, cJSON_GetObjectItem(to, "metric")->valuestring,
                cJSON_GetObjectItem(to, "tstr")->valuedouble, cJSON_GetObjectItem(to, "trtr")->valuedouble,
                cJSON_GetObjectItem(to, "test_set")->valuestring);
      }
      cJSON *rj = cJSON_GetObjectItem(ut, "relations");
      if (cJSON_GetArraySize(rj) > 0) {
        fprintf(fp, "Relations holding on every real training row, re-checked:\n\n| relation | broken (synthetic) | broken (holdout) | verdict |\n|---|---|---|---|\n");
        cJSON *o;
        cJSON_ArrayForEach(o, rj)
          fprintf(fp, "| %s | %.4f | %.4f | %s |\n", cJSON_GetObjectItem(o, "relation")->valuestring,
                  cJSON_GetObjectItem(o, "violations_synthetic")->valuedouble,
                  cJSON_GetObjectItem(o, "violations_holdout")->valuedouble,
                  cJSON_GetObjectItem(o, "verdict")->valuestring);
        fputc('\n', fp);
      }
      fprintf(fp, "Contingency similarity (pairs, quintile bins): %.4f. Median NNDR: %.4f.\n\n",
              ms_eval_report_number(rep, "utility.contingency_similarity"),
              ms_eval_report_number(rep, "privacy.nndr_median"));
      cJSON *sgj = cJSON_GetObjectItem(root, "subgroups");
      if (cJSON_GetArraySize(sgj) > 0) {
        fprintf(fp, "## Subgroups\n\n| column | group | real share | synthetic share | verdict | test rows | TSTR | TRTR |\n|---|---|---|---|---|---|---|---|\n");
        cJSON *gj;
        cJSON_ArrayForEach(gj, sgj) {
          cJSON *o;
          cJSON_ArrayForEach(o, cJSON_GetObjectItem(gj, "groups")) {
            fprintf(fp, "| %s | %s | %.4f | %.4f | %s |", cJSON_GetObjectItem(gj, "column")->valuestring,
                    cJSON_GetObjectItem(o, "label")->valuestring,
                    cJSON_GetObjectItem(o, "real_share")->valuedouble,
                    cJSON_GetObjectItem(o, "synthetic_share")->valuedouble,
                    cJSON_GetObjectItem(o, "verdict")->valuestring);
            cJSON *ts = cJSON_GetObjectItem(o, "tstr");
            if (ts)
              fprintf(fp, " %.0f | %.4f | %.4f |\n", cJSON_GetObjectItem(o, "test_rows")->valuedouble,
                      ts->valuedouble, cJSON_GetObjectItem(o, "trtr")->valuedouble);
            else
              fprintf(fp, " | | |\n");
          }
        }
        fputc('\n', fp);
      }
      fprintf(fp, "## Columns\n\n| column | metric | similarity | distance (real reference) | missing real | missing synthetic | verdict |\n|---|---|---|---|---|---|---|\n");
      for (size_t j = 0; j < e.d; j++) {
        cJSON *o = cJSON_GetArrayItem(cols, (int)j);
        cJSON *fm = cJSON_GetObjectItem(o, "format");
        double un = cJSON_GetObjectItem(o, "unseen_cells")->valuedouble;
        fprintf(fp, "| %s | %s | %.4f | %.4f (%.4f) | %.3f | %.3f | %s", e.col[j].name,
                e.col[j].cat ? "TV complement" : "KS complement", colsim[j],
                cJSON_GetObjectItem(o, "distance")->valuedouble,
                cJSON_GetObjectItem(o, "reference_distance")->valuedouble, ms__eval_missing_rate(&e.col[j], 0),
                ms__eval_missing_rate(&e.col[j], 2), cJSON_GetObjectItem(o, "verdict")->valuestring);
        if (un > 0) fprintf(fp, "; %.0f cells with values the real table lacks", un);
        if (fm) fprintf(fp, "; %s", fm->valuestring);
        fprintf(fp, " |\n");
      }
      if (outdir && p->plots)
        fprintf(fp, "\n## Plots\n\n![associations](associations.png)\n\n![DCR](dcr.png)\n\n"
                    "Per-column plots: `columns/<name>.png`.\n");
      int bad = ferror(fp);
      if (fclose(fp) || bad) { /* the stream could not grow */
        free(rep->md);
        rep->md = NULL;
        st = MS_ERR_NOMEM;
      }
    }
  }
  if (!st) {
    rep->json = ms__json_print(root, 1);
    if (!rep->json) st = MS_ERR_NOMEM;
  }

  /* Files, into the staged folder. */
  if (!st) st = poll_cancel(p, d);
  if (!st && outdir) {
    what = "the report's files";
    const char *dir = stage.tmp;
    st = write_text(dir, "report.json", rep->json, d);
    if (!st) st = write_text(dir, "report.md", rep->md, d);
    if (!st && p->plots) {
      char *cdir = NULL;
      if (ms__asprintf(&cdir, "%s/columns", dir) < 0) st = MS_ERR_NOMEM;
      else if (mkdir(cdir, 0777) && errno != EEXIST)
        st = ms_diag_add(d, MS_ERR_IO, cdir, 0, 0, NULL, "cannot create directory: %s", strerror(errno));
      for (size_t j = 0; j < e.d && j < p->max_plot_columns && !st && !(st = poll_cancel(p, d)); j++) {
        evcol *c = &e.col[j];
        char sn[128], title[256], *pp = NULL;
        safe_name(sn, sizeof sn, c->name);
        snprintf(title, sizeof title, "%s: real (train) vs synthetic", c->name);
        if (ms__asprintf(&pp, "%s/%s.png", cdir, sn) < 0) {
          st = MS_ERR_NOMEM;
          break;
        }
        if (!c->cat) {
          st = ms__plot_hist(pp, title, c->name, c->x[0], c->n[0], c->x[2], c->n[2], "real (train)", "synthetic", d);
        } else {
          size_t nl = c->L < 20 ? c->L : 20;
          double *fa = ms__calloc(nl + 1, sizeof *fa), *fb = ms__calloc(nl + 1, sizeof *fb);
          const char **lab = ms__calloc(nl + 1, sizeof *lab);
          if (!fa || !fb || !lab) st = MS_ERR_NOMEM;
          else {
            for (size_t r = 0; r < c->n[0]; r++)
              if (c->c[0][r] >= 0 && (size_t)c->c[0][r] < nl) fa[c->c[0][r]] += 1.0 / c->n[0];
            for (size_t r = 0; r < c->n[2]; r++)
              if (c->c[2][r] >= 0 && (size_t)c->c[2][r] < nl) fb[c->c[2][r]] += 1.0 / c->n[2];
            for (size_t l = 0; l < nl; l++) lab[l] = c->labels[l];
            st = ms__plot_bars(pp, title, lab, nl, fa, fb, "real (train)", "synthetic", d);
          }
          free(fa);
          free(fb);
          free(lab);
        }
        free(pp);
      }
      free(cdir);
      if (!st) {
        char *pp = NULL;
        const char **names = ms__malloc(dd * sizeof *names);
        if (!names || ms__asprintf(&pp, "%s/associations.png", dir) < 0) st = MS_ERR_NOMEM;
        else {
          for (size_t a = 0; a < dd; a++) names[a] = e.col[a].name;
          st = ms__plot_heatmaps(pp, names, dd, A, B, "real (train)", "synthetic", d);
        }
        free(pp);
        free(names);
      }
      if (!st && dt) {
        char *pp = NULL;
        if (ms__asprintf(&pp, "%s/dcr.png", dir) < 0) st = MS_ERR_NOMEM;
        else
          st = ms__plot_hist(pp, "Distance to closest record (synthetic rows)", "distance (standardised units)",
                             dt, nS, dh, dh ? nS : 0, holdout ? "to train (subset)" : "to train",
                             "to holdout", d);
        free(pp);
      }
      ms__plot_release_fonts();
    }
  }
  if (!st && outdir) st = ms__atomic_commit(&stage, d);
  if (outdir) {
    /* Messages name the files as the user will know them. */
    ms__atomic_diag_names(&stage, d);
    if (st) ms__atomic_discard(&stage);
    else ms__atomic_deinit(&stage);
  }
  free(dt);
  free(dh);
  free(A);
  free(B);
  free(colsim);
  free(qi);
  ms__eval_ev_free(&e);
  if (st) {
    ms_eval_report_free(rep);
    return eval_failed(d, first, st, what);
  }
  *out = rep;
  return MS_OK;
}
