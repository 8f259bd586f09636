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

/* ---- the report, one section at a time ---- */

/* What the sections of one evaluation share: the inputs, the report being
 * built and the values a later section reads. */
typedef struct {
  ev e;
  const ms_frame *train, *holdout, *syn;
  const ms_eval_params *p;
  const char *outdir;
  ms_diag *d;
  const char *what; /* the part running, for messages */
  ms_eval_report *rep;
  cJSON *root, *ut, *pv, *cols; /* the report, its utility and privacy objects, utility.columns */
  const char *train_name, *hold_name, *syn_name;
  verdict_row vr[32];
  int nv;
  size_t target;      /* column index of p->target, SIZE_MAX without one */
  size_t *qi, *sg;    /* column indices of the quasi-identifiers and subgroup columns */
  double *colsim;     /* per column: KS/TV complement */
  double *A, *B;      /* association matrices, real and synthetic (d x d) */
  /* TSTR predictions per test row for the subgroups: pred (numeric target)
   * or pcls (class), [train on synthetic, train on real]. */
  double *pred[2];
  int32_t *pcls[2];
  size_t *sg_rows, sg_m; /* the TSTR test rows */
  int sg_k;              /* the table they come from */
  double *dt, *dh;       /* synthetic rows' distances to train and to holdout */
  size_t nS;             /* how many */
  ms_eval_verdict sec[2]; /* utility, privacy */
  ms__atomic stage;
} report_ctx;

/* Appends one row to the verdict table. */
static void report_verdict(report_ctx *c, const char *section, const char *metric, const char *rule,
                           double value, ms_eval_verdict v) {
  c->vr[c->nv++] = (verdict_row){section, metric, rule, value, v};
}

/* Aligns the columns, finds the target, quasi-identifier and subgroup
 * columns, stages the report folder (so that an unwritable place is
 * reported before the work) and allocates the report. */
static ms_status report_begin(report_ctx *c) {
  const ms_eval_params *p = c->p;
  ms_status st = ms__eval_align(&c->e, c->d);
  if (!st && p->target) {
    for (size_t j = 0; j < c->e.d; j++)
      if (!strcmp(c->e.col[j].name, p->target)) c->target = j;
    if (c->target == SIZE_MAX)
      st = ms_diag_add(c->d, MS_ERR_INVALID, c->train->source, 0, 0, NULL,
                       "--target \"%s\" is not a (non-identifier) column", p->target);
  }
  if (!st && p->n_quasi_identifiers)
    st = find_columns(&c->e, p->quasi_identifiers, p->n_quasi_identifiers, "quasi-identifier", 0,
                      c->train->source, &c->qi, c->d);
  if (!st && p->n_subgroups)
    st = find_columns(&c->e, p->subgroups, p->n_subgroups, "subgroup column", 1, c->train->source,
                      &c->sg, c->d);
  if (!st && c->outdir) st = ms__atomic_mkdir(&c->stage, c->outdir, c->d);
  for (size_t j = 0; j < c->e.d && !st; j++)
    if (ms__eval_col_stats(&c->e.col[j])) st = MS_ERR_NOMEM;
  if (!st) {
    c->rep = ms__calloc(1, sizeof *c->rep);
    c->root = cJSON_CreateObject();
    if (!c->rep || !c->root) st = MS_ERR_NOMEM;
  }
  return st;
}

/* The version and the inputs. Inputs by file name only: the report must
 * not depend on the directory the command ran in or on how the paths were
 * typed. */
static void report_inputs(report_ctx *c) {
  const ms_frame *train = c->train, *holdout = c->holdout, *syn = c->syn;
  cJSON_AddStringToObject(c->root, "medsynth_version", MS_VERSION_STRING);
  cJSON *in = cJSON_AddObjectToObject(c->root, "inputs");
  c->train_name = ms__eval_base_name(train->source);
  c->syn_name = ms__eval_base_name(syn->source);
  c->hold_name = holdout ? ms__eval_base_name(holdout->source) : NULL;
  cJSON_AddStringToObject(in, "train", c->train_name);
  cJSON_AddNumberToObject(in, "train_rows", (double)train->n_rows);
  if (holdout) {
    cJSON_AddStringToObject(in, "holdout", c->hold_name);
    cJSON_AddNumberToObject(in, "holdout_rows", (double)holdout->n_rows);
  }
  cJSON_AddStringToObject(in, "synthetic", c->syn_name);
  cJSON_AddNumberToObject(in, "synthetic_rows", (double)syn->n_rows);
  cJSON_AddNumberToObject(in, "columns", (double)c->e.d);
  cJSON_AddNumberToObject(in, "seed", (double)c->p->seed);
}

/* Counts over the columns of the marginal comparison. */
typedef struct {
  double msum;
  size_t n_col_fail, n_col_warn, n_unseen, n_format;
} marginal_tally;

/* Column j against the training table: its KS/TV complement, missing
 * rates, literal differences and verdict, as one entry of
 * utility.columns. */
static ms_status marginal_column(report_ctx *c, size_t j, marginal_tally *t) {
  const evcol *col = &c->e.col[j];
  int oom = 0;
  double v = col->cat ? ms__eval_tv_complement(col, 0, 2) : ms__eval_ks_complement(col, 0, 2, &oom);
  if (oom) return MS_ERR_NOMEM;
  c->colsim[j] = v;
  t->msum += v;
  cJSON *o = ms__json_push(c->cols, cJSON_CreateObject());
  cJSON_AddStringToObject(o, "name", col->name);
  cJSON_AddStringToObject(o, "metric", col->cat ? "tv_complement" : "ks_complement");
  cJSON_AddNumberToObject(o, "value", v);
  cJSON_AddNumberToObject(o, "missing_real", ms__eval_missing_rate(col, 0));
  cJSON_AddNumberToObject(o, "missing_synthetic", ms__eval_missing_rate(col, 2));
  /* Column verdict against what a real sample shows: the holdout's
   * distance to train (or, without a holdout, the 5 % critical value of
   * the two-sample KS test), whichever is larger. */
  double dsyn = 1 - v, crit = 1.36 * sqrt(1.0 / (double)col->n[0] + 1.0 / (double)col->n[2]);
  double dref = c->holdout ? 1 - (col->cat ? ms__eval_tv_complement(col, 0, 1)
                                           : ms__eval_ks_complement(col, 0, 1, &oom))
                           : crit;
  if (oom) return MS_ERR_NOMEM;
  double allow = dref > crit ? dref : crit;
  ms_eval_verdict cv = dsyn > 2 * allow + 0.05 ? MS_VERDICT_FAIL
                       : dsyn > allow + 0.02   ? MS_VERDICT_WARN
                                               : MS_VERDICT_PASS;
  char notes[256];
  size_t unseen = ms__eval_unseen_cells(c->train, c->holdout, c->syn, col->name, notes, sizeof notes);
  cJSON_AddNumberToObject(o, "distance", dsyn);
  cJSON_AddNumberToObject(o, "reference_distance", dref);
  cJSON_AddNumberToObject(o, "unseen_cells", (double)unseen);
  if (notes[0]) cJSON_AddStringToObject(o, "format", notes);
  t->n_col_fail += cv == MS_VERDICT_FAIL;
  t->n_col_warn += cv == MS_VERDICT_WARN;
  if (unseen || notes[0]) cv = MS_VERDICT_FAIL;
  cJSON_AddStringToObject(o, "verdict", ms_eval_verdict_name(cv));
  t->n_unseen += unseen;
  t->n_format += notes[0] != '\0';
  return MS_OK;
}

/* Literal comparison: the header in the real order, no value the real
 * table never has, the real table's formats. */
static void literal_comparison(report_ctx *c, size_t n_unseen, size_t n_format) {
  const ms_frame *train = c->train, *syn = c->syn;
  size_t misplaced = 0, k = 0;
  for (size_t j = 0; j < train->n_cols; j++) {
    size_t at = ms_frame_find(syn, train->cols[j].name);
    if (at == SIZE_MAX) continue;
    misplaced += at != k;
    k++;
  }
  double share = syn->n_rows ? (double)n_unseen / (double)syn->n_rows : 0;
  cJSON *lit = cJSON_AddObjectToObject(c->ut, "literal");
  cJSON_AddNumberToObject(lit, "columns_out_of_order", (double)misplaced);
  cJSON_AddNumberToObject(lit, "unseen_cells", (double)n_unseen);
  cJSON_AddNumberToObject(lit, "columns_in_another_format", (double)n_format);
  report_verdict(c, "utility", "columns out of the real order", "0 pass", (double)misplaced,
                 misplaced ? MS_VERDICT_FAIL : MS_VERDICT_PASS);
  report_verdict(c, "utility", "values the real table never has (per synthetic row)", "0 pass", share,
                 n_unseen ? MS_VERDICT_FAIL : MS_VERDICT_PASS);
  report_verdict(c, "utility", "columns written in another format", "0 pass", (double)n_format,
                 n_format ? MS_VERDICT_FAIL : MS_VERDICT_PASS);
}

/* Utility: the marginals of every column, their mean, and the literal
 * comparison. */
static ms_status report_marginals(report_ctx *c) {
  c->ut = cJSON_AddObjectToObject(c->root, "utility");
  c->cols = cJSON_AddArrayToObject(c->ut, "columns");
  marginal_tally t = {0, 0, 0, 0, 0};
  c->colsim = ms__malloc(c->e.d * sizeof *c->colsim);
  if (!c->colsim) return MS_ERR_NOMEM;
  for (size_t j = 0; j < c->e.d; j++) {
    ms_status st = marginal_column(c, j, &t);
    if (st) return st;
  }
  double marg = t.msum / (double)c->e.d;
  cJSON_AddNumberToObject(c->ut, "marginal_similarity", marg);
  report_verdict(c, "utility", "marginal similarity (mean KS/TV complement)", ">= 0.90 pass, >= 0.80 warn",
                 marg, judge_hi(marg, 0.9, 0.8));
  report_verdict(c, "utility", "columns beyond the real reference (KS/TV > 2 x ref + 0.05)", "0 pass",
                 (double)t.n_col_fail,
                 t.n_col_fail ? MS_VERDICT_FAIL : t.n_col_warn ? MS_VERDICT_WARN : MS_VERDICT_PASS);
  literal_comparison(c, t.n_unseen, t.n_format);
  return MS_OK;
}

/* Relations that hold on every real training row (fit/relations.c),
 * re-checked on the synthetic rows: broken more often than in the real
 * holdout (or than never, without one) fails. */
static ms_status report_relations(report_ctx *c) {
  const ms_frame *train = c->train, *holdout = c->holdout;
  ms__rel *rels = NULL;
  size_t n_rels = 0, broken = 0;
  ms_status st = ms__relations_find(train, 5, &rels, &n_rels);
  cJSON *rj = cJSON_AddArrayToObject(c->ut, "relations");
  for (size_t q = 0; q < n_rels && !st; q++) {
    char desc[512];
    ms__relation_describe(&rels[q], train, desc, sizeof desc);
    size_t ns = 0, nh = 0;
    double vs = ms__relation_violations(&rels[q], train, c->syn, &ns);
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
    report_verdict(c, "utility", "relations of the real table broken more often than in real data", "0 pass",
                   (double)broken, broken ? MS_VERDICT_FAIL : MS_VERDICT_PASS);
  return st;
}

/* Fills the association matrices c->A, c->B and sums, over the column
 * pairs, the absolute differences (*diff_sum, largest *diff_max) and the
 * contingency similarities (*cs_sum). */
static ms_status association_sums(report_ctx *c, double *diff_sum, double *diff_max, double *cs_sum) {
  size_t dd = c->e.d;
  const double *A = c->A, *B = c->B;
  pair_job pj = {&c->e, dd, c->A, c->B, NULL, 0};
  ms__parallel(dd, ms__parallel_threads(), assoc_row, &pj);
  double *cs = ms__calloc(dd * dd, sizeof *cs);
  if (!cs) return MS_ERR_NOMEM;
  ms_status st = MS_OK;
  pj.cs = cs;
  ms__parallel(dd, ms__parallel_threads(), contingency_row, &pj);
  if (atomic_load(&pj.oom)) st = MS_ERR_NOMEM;
  for (size_t a = 0; a < dd && !st; a++)
    for (size_t b = a + 1; b < dd; b++) {
      double x = A[a * dd + b], y = B[a * dd + b];
      double df = isnan(x) || isnan(y) ? 0 : fabs(x - y);
      *diff_sum += df;
      if (df > *diff_max) *diff_max = df;
      *cs_sum += cs[a * dd + b];
    }
  free(cs);
  return st;
}

/* Utility: association matrices of both tables, their difference, and the
 * contingency similarity. */
static ms_status report_associations(report_ctx *c) {
  size_t dd = c->e.d;
  c->A = ms__malloc(dd * dd * sizeof *c->A);
  c->B = ms__malloc(dd * dd * sizeof *c->B);
  if (!c->A || !c->B) return MS_ERR_NOMEM;
  double diff_sum = 0, diff_max = 0, cs_sum = 0;
  size_t n_pairs = dd * (dd - 1) / 2;
  ms_status st = association_sums(c, &diff_sum, &diff_max, &cs_sum);
  if (st) return st;
  cJSON *as = cJSON_AddObjectToObject(c->ut, "association");
  double mad = n_pairs ? diff_sum / n_pairs : 0;
  cJSON_AddNumberToObject(as, "mean_abs_diff", mad);
  cJSON_AddNumberToObject(as, "max_abs_diff", diff_max);
  cJSON_AddNumberToObject(c->ut, "contingency_similarity", n_pairs ? cs_sum / n_pairs : 1);
  cJSON *names = cJSON_AddArrayToObject(as, "columns");
  cJSON *ra = cJSON_AddArrayToObject(as, "real"), *sa = cJSON_AddArrayToObject(as, "synthetic");
  for (size_t a = 0; a < dd; a++) {
    ms__json_push(names, cJSON_CreateString(c->e.col[a].name));
    cJSON *r1 = cJSON_CreateArray(), *r2 = cJSON_CreateArray();
    for (size_t b = 0; b < dd; b++) {
      double x = c->A[a * dd + b], y = c->B[a * dd + b];
      ms__json_push(r1, isnan(x) ? cJSON_CreateNull() : cJSON_CreateNumber(round(x * 1e4) / 1e4));
      ms__json_push(r2, isnan(y) ? cJSON_CreateNull() : cJSON_CreateNumber(round(y * 1e4) / 1e4));
    }
    ms__json_push(ra, r1);
    ms__json_push(sa, r2);
  }
  if (n_pairs)
    report_verdict(c, "utility", "association difference (mean |real - synthetic|)", "<= 0.10 pass, <= 0.20 warn",
                   mad, judge_lo(mad, 0.1, 0.2));
  return MS_OK;
}

/* The pMSE classifier on the real rows rt[0..mt) and the synthetic rows
 * rs[0..ms); a fit that does not converge leaves the score out. */
static ms_status pmse_fit(report_ctx *c, const size_t *rt, size_t mt, const size_t *rs, size_t ms) {
  const ev *e = &c->e;
  ms_status st = MS_OK;
  size_t pw = ms__eval_enc_width(e, SIZE_MAX), n = mt + ms;
  double *X = ms__malloc(n * (pw ? pw : 1) * sizeof *X), *y = ms__malloc(n * sizeof *y),
         *beta = ms__malloc((pw + 1) * sizeof *beta);
  if (!X || !y || !beta) st = MS_ERR_NOMEM;
  else {
    for (size_t i = 0; i < mt; i++) ms__eval_encode_row(e, 0, rt[i], SIZE_MAX, 1, X + i * pw), y[i] = 0;
    for (size_t i = 0; i < ms; i++) ms__eval_encode_row(e, 2, rs[i], SIZE_MAX, 1, X + (mt + i) * pw), y[mt + i] = 1;
    ms_status s2 = ms__logreg_fit(beta, X, y, n, pw, 1.0);
    if (!s2) {
      double cshare = (double)ms / n, pm = 0;
      for (size_t i = 0; i < n; i++) {
        double pr = ms__logreg_prob(beta, X + i * pw, pw) - cshare;
        pm += pr * pr;
      }
      pm /= n;
      double score = 1 - pm / (cshare * (1 - cshare));
      cJSON *po = cJSON_AddObjectToObject(c->ut, "pmse");
      cJSON_AddNumberToObject(po, "pmse", pm);
      cJSON_AddNumberToObject(po, "score", score);
      cJSON_AddNumberToObject(po, "rows_real", (double)mt);
      cJSON_AddNumberToObject(po, "rows_synthetic", (double)ms);
      cJSON_AddNumberToObject(c->ut, "pmse_score", score);
      report_verdict(c, "utility", "pMSE score (1 - pMSE / c(1-c))", ">= 0.80 pass, >= 0.60 warn", score,
                     judge_hi(score, 0.8, 0.6));
    } else if (s2 != MS_ERR_MATH) {
      st = s2;
    }
  }
  free(X);
  free(y);
  free(beta);
  return st;
}

/* Utility: pMSE of a real-vs-synthetic classifier on subsamples of both
 * tables. */
static ms_status report_pmse(report_ctx *c) {
  c->what = "the pMSE classifier";
  size_t mt = 0, ms = 0;
  size_t *rt = ms__eval_subsample(c->train->n_rows, c->p->max_pmse_rows, c->p->seed, "pmse/real", &mt);
  size_t *rs = ms__eval_subsample(c->syn->n_rows, c->p->max_pmse_rows, c->p->seed, "pmse/synthetic", &ms);
  ms_status st = !rt || !rs ? MS_ERR_NOMEM : pmse_fit(c, rt, mt, rs, ms);
  free(rt);
  free(rs);
  return st;
}

/* The train-on-synthetic / train-on-real models: the test rows and, while
 * one model is fitted, its training rows. */
typedef struct {
  const evcol *tc; /* the target */
  int test_k;      /* the table the models are tested on */
  size_t pw;       /* encoded width without the target */
  size_t *rtest, mtest;
  double *Xtest;
  int k; /* the table the model is trained on */
  size_t *rtr, mtr;
  double *Xtr, *ytr, *beta;
  double score[2]; /* [train on synthetic, train on real] */
} tstr_job;

/* Model which on a numeric target: ridge linear regression, R^2 on the
 * test rows; the predictions go to c->pred[which]. */
static ms_status tstr_linear(report_ctx *c, tstr_job *j, int which) {
  const evcol *tc = j->tc;
  const int k = j->k, test_k = j->test_k;
  const size_t pw = j->pw, mtest = j->mtest, *rtest = j->rtest;
  double *Xtr = j->Xtr, *ytr = j->ytr;
  ms_status st = MS_OK;
  size_t m = 0;
  for (size_t i = 0; i < j->mtr; i++) {
    double v = tc->x[k][j->rtr[i]];
    if (isnan(v)) continue;
    memmove(Xtr + m * pw, Xtr + i * pw, pw * sizeof *Xtr);
    ytr[m++] = v;
  }
  ms_status fs = m > pw ? ms__linreg_fit(j->beta, Xtr, ytr, m, pw, 1e-3 * (double)m) : MS_ERR_MATH;
  if (fs == MS_ERR_NOMEM) st = fs;
  if (fs == MS_OK) {
    double ss = 0, st2 = 0, mean = 0, cnt = 0;
    for (size_t i = 0; i < mtest; i++)
      if (!isnan(tc->x[test_k][rtest[i]])) mean += tc->x[test_k][rtest[i]], cnt++;
    mean /= cnt > 0 ? cnt : 1;
    c->pred[which] = ms__malloc((mtest ? mtest : 1) * sizeof *c->pred[which]);
    if (!c->pred[which]) st = MS_ERR_NOMEM;
    for (size_t i = 0; i < mtest && !st; i++) {
      double v = tc->x[test_k][rtest[i]];
      double pr = ms__linreg_predict(j->beta, j->Xtest + i * pw, pw);
      c->pred[which][i] = pr;
      if (isnan(v)) continue;
      ss += (v - pr) * (v - pr);
      st2 += (v - mean) * (v - mean);
    }
    j->score[which] = st2 > 0 ? 1 - ss / st2 : NAN;
  }
  return st;
}

/* The (up to 10) most frequent classes of the training rows of tc into
 * cls, most frequent first; returns how many. */
static size_t tstr_top_classes(const evcol *tc, int cls[10]) {
  size_t L = tc->L < MAX_LEVELS ? tc->L : MAX_LEVELS, nc = 0;
  double freq[MAX_LEVELS] = {0};
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
  return nc;
}

/* Model which on a categorical target: one-vs-rest logistic regression
 * over the (up to 10) most frequent training classes, accuracy on the test
 * rows; the predicted classes go to c->pcls[which]. */
static ms_status tstr_classes(report_ctx *c, tstr_job *j, int which) {
  const evcol *tc = j->tc;
  const size_t pw = j->pw, mtest = j->mtest;
  ms_status st = MS_OK;
  int cls[10];
  size_t nc = tstr_top_classes(tc, cls);
  double *scores = ms__calloc(mtest * (nc ? nc : 1), sizeof *scores);
  int fitted = 0;
  if (!scores) st = MS_ERR_NOMEM;
  for (size_t t = 0; t < nc && !st && nc >= 2; t++) {
    for (size_t i = 0; i < j->mtr; i++) j->ytr[i] = tc->c[j->k][j->rtr[i]] == cls[t];
    ms_status fs = ms__logreg_fit(j->beta, j->Xtr, j->ytr, j->mtr, pw, 1.0);
    if (fs == MS_ERR_NOMEM) st = fs;
    if (fs) continue;
    fitted++;
    for (size_t i = 0; i < mtest; i++) scores[i * nc + t] = ms__logreg_prob(j->beta, j->Xtest + i * pw, pw);
  }
  if (fitted && !st) {
    double ok = 0, cnt = 0;
    c->pcls[which] = ms__malloc((mtest ? mtest : 1) * sizeof *c->pcls[which]);
    if (!c->pcls[which]) st = MS_ERR_NOMEM;
    for (size_t i = 0; i < mtest && !st; i++) {
      int32_t truth = tc->c[j->test_k][j->rtest[i]];
      size_t bi = 0;
      for (size_t t = 1; t < nc; t++)
        if (scores[i * nc + t] > scores[i * nc + bi]) bi = t;
      c->pcls[which][i] = cls[bi];
      if (truth < 0) continue;
      ok += cls[bi] == truth;
      cnt++;
    }
    j->score[which] = cnt > 0 ? ok / cnt : NAN;
  }
  free(scores);
  return st;
}

/* Fits and scores model which: 0 trains on the synthetic rows, 1 on the
 * real training rows. */
static ms_status tstr_model(report_ctx *c, tstr_job *j, int which) {
  ms_status st = MS_OK;
  j->k = which == 0 ? 2 : 0;
  j->rtr = ms__eval_subsample(c->e.f[j->k]->n_rows, 50000, c->p->seed, "tstr/train", &j->mtr);
  j->Xtr = j->rtr ? ms__eval_encode(&c->e, j->k, j->rtr, j->mtr, c->target, 1) : NULL;
  j->ytr = ms__malloc((j->mtr ? j->mtr : 1) * sizeof *j->ytr);
  j->beta = ms__malloc((j->pw + 1) * sizeof *j->beta);
  if (!j->Xtr || !j->ytr || !j->beta) st = MS_ERR_NOMEM;
  else if (!j->tc->cat) st = tstr_linear(c, j, which);
  else st = tstr_classes(c, j, which);
  free(j->rtr);
  free(j->Xtr);
  free(j->ytr);
  free(j->beta);
  return st;
}

/* The baseline a model must beat: the majority class of the real training
 * rows (accuracy), or their mean (R^2), on the same test rows; NaN when it
 * cannot be computed. */
static double tstr_baseline(const report_ctx *c, const evcol *tc, int test_k) {
  double base = NAN;
  size_t ntest;
  size_t *rt = ms__eval_subsample(c->e.f[test_k]->n_rows, 50000, c->p->seed, "tstr/test", &ntest);
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
  return base;
}

/* Utility: train on synthetic / test on real against train on real, on
 * the holdout (or the training rows without one). The test rows and both
 * models' predictions stay in c for the subgroups. */
static ms_status report_tstr(report_ctx *c) {
  c->what = "the train-on-synthetic models";
  ms_status st = MS_OK;
  tstr_job j = {.tc = &c->e.col[c->target], .test_k = c->holdout ? 1 : 0, .score = {NAN, NAN}};
  const evcol *tc = j.tc;
  j.pw = ms__eval_enc_width(&c->e, c->target);
  cJSON *to = cJSON_AddObjectToObject(c->ut, "tstr");
  cJSON_AddStringToObject(to, "target", tc->name);
  cJSON_AddStringToObject(to, "test_set", c->holdout ? "holdout" : "train (no holdout given)");
  j.rtest = ms__eval_subsample(c->e.f[j.test_k]->n_rows, 50000, c->p->seed, "tstr/test", &j.mtest);
  j.Xtest = j.rtest ? ms__eval_encode(&c->e, j.test_k, j.rtest, j.mtest, c->target, 1) : NULL;
  c->sg_rows = j.rtest, c->sg_m = j.mtest;
  if (!j.Xtest) st = MS_ERR_NOMEM;
  for (int which = 0; which < 2 && !st; which++) st = tstr_model(c, &j, which);
  free(j.Xtest);
  if (st) return st;
  double base = tstr_baseline(c, tc, j.test_k);
  const double *score = j.score;
  const char *mname = tc->cat ? "accuracy" : "r2";
  cJSON_AddStringToObject(to, "metric", mname);
  if (!isnan(base)) {
    cJSON_AddNumberToObject(to, "baseline", base);
    double tstr = isnan(score[0]) ? -INFINITY : score[0];
    report_verdict(c, "utility",
                   tc->cat ? "TSTR above the majority-class baseline (TSTR - baseline)"
                           : "TSTR above the mean-predictor baseline (TSTR - baseline)",
                   "> 0 pass", isfinite(tstr) ? tstr - base : -1,
                   tstr > base + 1e-9 ? MS_VERDICT_PASS : MS_VERDICT_FAIL);
  }
  cJSON_AddNumberToObject(to, "tstr", isnan(score[0]) ? 0 : score[0]);
  cJSON_AddNumberToObject(to, "trtr", isnan(score[1]) ? 0 : score[1]);
  double ratio = score[1] > 0 && !isnan(score[0]) ? score[0] / score[1] : NAN;
  if (!isnan(ratio)) {
    cJSON_AddNumberToObject(to, "ratio", ratio);
    report_verdict(c, "utility", "TSTR / TRTR", ">= 0.90 pass, >= 0.75 warn", ratio, judge_hi(ratio, 0.9, 0.75));
  }
  return MS_OK;
}

/* What the subgroups add to the verdicts: the largest share gap, the
 * lowest TSTR/TRTR ratio of a group of >= 20 test rows, the worst share
 * verdict. */
typedef struct {
  double worst_gap, worst_ratio;
  ms_eval_verdict rep_v;
} subgroup_tally;

/* Both models scored on the test rows of label l of column g, added to
 * the group's entry o. */
static void subgroup_models(const report_ctx *c, const evcol *g, size_t l, cJSON *o, subgroup_tally *t) {
  const evcol *tc = c->target != SIZE_MAX ? &c->e.col[c->target] : NULL;
  if (!tc || !c->sg_rows || !(tc->cat ? c->pcls[0] && c->pcls[1] : c->pred[0] && c->pred[1])) return;
  const int sg_k = c->sg_k;
  double sc[2] = {0, 0}, cnt = 0;
  for (size_t i = 0; i < c->sg_m; i++) {
    size_t r = c->sg_rows[i];
    if (g->c[sg_k][r] != (int32_t)l) continue;
    if (tc->cat) {
      int32_t truth = tc->c[sg_k][r];
      if (truth < 0) continue;
      for (int w = 0; w < 2; w++) sc[w] += c->pcls[w][i] == truth;
    } else {
      double y = tc->x[sg_k][r];
      if (isnan(y)) continue;
      for (int w = 0; w < 2; w++) sc[w] += (y - c->pred[w][i]) * (y - c->pred[w][i]);
    }
    cnt++;
  }
  cJSON_AddNumberToObject(o, "test_rows", cnt);
  if (cnt < 1) return;
  for (int w = 0; w < 2; w++) sc[w] = tc->cat ? sc[w] / cnt : sqrt(sc[w] / cnt);
  cJSON_AddStringToObject(o, "metric", tc->cat ? "accuracy" : "rmse");
  cJSON_AddNumberToObject(o, "tstr", sc[0]);
  cJSON_AddNumberToObject(o, "trtr", sc[1]);
  /* TSTR relative to TRTR, higher is better for both metrics */
  double ratio = tc->cat ? (sc[1] > 0 ? sc[0] / sc[1] : 1) : (sc[0] > 0 ? sc[1] / sc[0] : 1);
  cJSON_AddNumberToObject(o, "ratio", ratio);
  if (cnt >= 20 && ratio < t->worst_ratio) t->worst_ratio = ratio;
}

/* Label l of column g: its share of the n0 labelled real training rows
 * against its share of the n2 labelled synthetic rows, as one entry of lv;
 * a label neither table has is left out. */
static void subgroup_label(const report_ctx *c, const evcol *g, size_t l, double n0, double n2, cJSON *lv,
                           subgroup_tally *t) {
  double c0 = 0, c2 = 0;
  for (size_t r = 0; r < g->n[0]; r++) c0 += g->c[0][r] == (int32_t)l;
  for (size_t r = 0; r < g->n[2]; r++) c2 += g->c[2][r] == (int32_t)l;
  if (c0 == 0 && c2 == 0) return;
  double s0 = n0 > 0 ? c0 / n0 : 0, s2 = n2 > 0 ? c2 / n2 : 0;
  /* sampling error of both shares, 4 standard errors plus 1 point */
  double se = sqrt(s0 * (1 - s0) / (n0 > 0 ? n0 : 1) + s0 * (1 - s0) / (n2 > 0 ? n2 : 1));
  ms_eval_verdict v = c0 >= 10 && c2 == 0               ? MS_VERDICT_FAIL
                      : fabs(s2 - s0) > 4 * se + 0.01 ? MS_VERDICT_WARN
                                                      : MS_VERDICT_PASS;
  if (v > t->rep_v) t->rep_v = v;
  if (fabs(s2 - s0) > t->worst_gap) t->worst_gap = fabs(s2 - s0);
  cJSON *o = ms__json_push(lv, cJSON_CreateObject());
  cJSON_AddStringToObject(o, "label", g->labels[l]);
  cJSON_AddNumberToObject(o, "real_share", s0);
  cJSON_AddNumberToObject(o, "synthetic_share", s2);
  cJSON_AddStringToObject(o, "verdict", ms_eval_verdict_name(v));
  subgroup_models(c, g, l, o, t);
}

/* Subgroups: each label's share of the real training rows against its
 * share of the synthetic rows, and -- with a target -- both models scored
 * on the test rows of that label (docs/evaluate.md, Subgroups). */
static void report_subgroups(report_ctx *c) {
  c->what = "the subgroups";
  cJSON *sgj = cJSON_AddArrayToObject(c->root, "subgroups");
  subgroup_tally t = {0, INFINITY, MS_VERDICT_PASS};
  for (size_t q = 0; q < c->p->n_subgroups; q++) {
    const evcol *g = &c->e.col[c->sg[q]];
    cJSON *gj = ms__json_push(sgj, cJSON_CreateObject());
    cJSON_AddStringToObject(gj, "column", g->name);
    cJSON *lv = cJSON_AddArrayToObject(gj, "groups");
    double n0 = 0, n2 = 0;
    for (size_t r = 0; r < g->n[0]; r++) n0 += g->c[0][r] >= 0;
    for (size_t r = 0; r < g->n[2]; r++) n2 += g->c[2][r] >= 0;
    for (size_t l = 0; l < g->L; l++) subgroup_label(c, g, l, n0, n2, lv, &t);
  }
  report_verdict(c, "utility", "subgroup shares (largest gap between synthetic and real)",
                 "no group held by >= 10 real rows missing (fail); within 4 s.e. + 0.01 (pass)", t.worst_gap,
                 t.rep_v);
  if (isfinite(t.worst_ratio))
    report_verdict(c, "utility", "subgroup TSTR / TRTR (lowest, groups of >= 20 test rows)",
                   ">= 0.90 pass, >= 0.75 warn", t.worst_ratio, judge_hi(t.worst_ratio, 0.9, 0.75));
}

/* Privacy: synthetic rows that copy a training row exactly (hash of the
 * row's values). */
static ms_status privacy_copies(report_ctx *c) {
  ms_status st = MS_OK;
  ms__strtab tab;
  if (ms__strtab_init(&tab)) st = MS_ERR_NOMEM;
  for (size_t r = 0; r < c->train->n_rows && !st; r++) {
    char *k = ms__eval_row_key(&c->e, 0, r, NULL, 0);
    if (!k || ms__strtab_intern(&tab, k) == -2) st = MS_ERR_NOMEM;
    free(k);
  }
  size_t copies = 0;
  for (size_t r = 0; r < c->syn->n_rows && !st; r++) {
    char *k = ms__eval_row_key(&c->e, 2, r, NULL, 0);
    if (!k) st = MS_ERR_NOMEM;
    else copies += ms__strtab_find(&tab, k) >= 0;
    free(k);
  }
  ms__strtab_deinit(&tab, 1);
  if (st) return st;
  double rate = c->syn->n_rows ? (double)copies / c->syn->n_rows : 0;
  cJSON_AddNumberToObject(c->pv, "exact_copy_rate", rate);
  cJSON_AddNumberToObject(c->pv, "exact_copies", (double)copies);
  report_verdict(c, "privacy", "exact copies of training rows", "0 pass, <= 1% warn", rate,
                 rate == 0 ? MS_VERDICT_PASS : rate <= 0.01 ? MS_VERDICT_WARN : MS_VERDICT_FAIL);
  return MS_OK;
}

/* The rows and nearest-neighbour indexes of the privacy metrics, in the
 * standardised space (categoricals one-hot scaled by oh). */
typedef struct {
  double oh;
  size_t pw;
  double *XS; /* the queried synthetic rows (c->nS) */
  ms__nn *tT; /* all training rows */
  cJSON *dc;  /* privacy.dcr */
} privacy_job;

/* With a holdout: the share of synthetic rows closer to (an equal-sized
 * subset of) train than to the holdout, the membership-inference AUC and
 * the holdout's own distances to train. */
static ms_status privacy_holdout(report_ctx *c, const privacy_job *pj) {
  const ms_frame *holdout = c->holdout, *train = c->train, *syn = c->syn;
  const double oh = pj->oh;
  const size_t pw = pj->pw, nS = c->nS;
  double *dt = c->dt, *dh;
  ms_status st = MS_OK;
  size_t nH = holdout->n_rows, nTs;
  size_t *rTs = ms__eval_subsample(train->n_rows, nH, c->p->seed, "privacy/train-subset", &nTs);
  double *XH = ms__eval_encode(&c->e, 1, NULL, nH, SIZE_MAX, oh);
  double *XTs = rTs ? ms__eval_encode(&c->e, 0, rTs, nTs, SIZE_MAX, oh) : NULL;
  double *XSall = ms__eval_encode(&c->e, 2, NULL, syn->n_rows, SIZE_MAX, oh);
  ms__nn *tH = NULL, *tTs = NULL, *tS = NULL;
  dh = c->dh = ms__malloc((nS ? nS : 1) * sizeof *dh);
  double *hd = ms__malloc((nH ? nH : 1) * sizeof *hd), *md = ms__malloc((nTs ? nTs : 1) * sizeof *md);
  double *hT = ms__malloc((nH ? nH : 1) * sizeof *hT);
  if (!XH || !XTs || !XSall || !dh || !hd || !md || !hT || ms__nn_new(&tH, XH, nH, pw, MS__NN_AUTO) ||
      ms__nn_new(&tTs, XTs, nTs, pw, MS__NN_AUTO) || ms__nn_new(&tS, XSall, syn->n_rows, pw, MS__NN_AUTO))
    st = MS_ERR_NOMEM;
  if (!st) {
    st = ms__nn_query(tTs, pj->XS, nS, 1, dt, NULL);
    if (!st) st = ms__nn_query(tH, pj->XS, nS, 1, dh, NULL);
  }
  if (!st) {
    double closer = 0;
    for (size_t i = 0; i < nS; i++) closer += dt[i] < dh[i] ? 1 : dt[i] == dh[i] ? 0.5 : 0;
    closer /= nS ? (double)nS : 1;
    cJSON_AddNumberToObject(c->pv, "closer_to_train_share", closer);
    report_verdict(c, "privacy", "share of synthetic rows closer to train than holdout",
                   "<= 0.60 pass, <= 0.70 warn", closer, judge_lo(closer, 0.6, 0.7));
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
    cJSON_AddNumberToObject(c->pv, "mia_auc", a);
    report_verdict(c, "privacy", "membership-inference AUC (distance attack)", "<= 0.60 pass, <= 0.70 warn", a,
                   judge_lo(a, 0.6, 0.7));
    /* Real-to-real reference: holdout rows to their closest train row. */
    if (!st) st = ms__nn_query(pj->tT, XH, nH, 1, hT, NULL);
  }
  if (!st) {
    cJSON_AddNumberToObject(pj->dc, "holdout_to_train_p05", ms__eval_quantile_of(hT, nH, 0.05));
    cJSON_AddNumberToObject(pj->dc, "holdout_to_train_median", ms__eval_median_of(hT, nH));
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
  return st;
}

/* From the two nearest training rows of each queried synthetic row (d2):
 * the distance to closest record, the nearest-neighbour distance ratio,
 * then the holdout comparisons (or, without a holdout, c->dt as the
 * distances to train). */
static ms_status privacy_dcr(report_ctx *c, privacy_job *pj, const double *d2) {
  const size_t nS = c->nS;
  ms_status st = MS_OK;
  double *ratio = ms__malloc((nS ? nS : 1) * sizeof *ratio), *dcr = ms__malloc((nS ? nS : 1) * sizeof *dcr);
  if (!ratio || !dcr) st = MS_ERR_NOMEM;
  else {
    for (size_t i = 0; i < nS; i++) {
      dcr[i] = d2[2 * i];
      ratio[i] = d2[2 * i + 1] > 0 && isfinite(d2[2 * i + 1]) ? d2[2 * i] / d2[2 * i + 1] : 1;
    }
    cJSON *dc = pj->dc = cJSON_AddObjectToObject(c->pv, "dcr");
    ms__nn_method nm = ms__nn_method_used(pj->tT);
    cJSON_AddNumberToObject(dc, "query_rows", (double)nS);
    cJSON_AddStringToObject(dc, "search", nm == MS__NN_KDTREE ? "k-d tree"
                                          : nm == MS__NN_GEMM ? "blocked sgemm, exact re-rank"
                                                              : "brute force");
    cJSON_AddNumberToObject(dc, "synthetic_to_train_p05", ms__eval_quantile_of(dcr, nS, 0.05));
    cJSON_AddNumberToObject(dc, "synthetic_to_train_median", ms__eval_median_of(dcr, nS));
    cJSON_AddNumberToObject(c->pv, "nndr_median", ms__eval_median_of(ratio, nS));
    if (c->holdout) {
      st = privacy_holdout(c, pj);
    } else {
      for (size_t i = 0; i < nS; i++) c->dt[i] = d2[2 * i];
      cJSON_AddStringToObject(c->pv, "note", "no holdout: closer-to-train share and membership inference not computed");
    }
  }
  free(ratio);
  free(dcr);
  return st;
}

/* Privacy: distances of (a subsample of) the synthetic rows to the
 * training rows and, with a holdout, to the holdout rows. */
static ms_status privacy_distances(report_ctx *c) {
  const ms_frame *train = c->train;
  privacy_job pj = {.oh = sqrt(0.5), .pw = ms__eval_enc_width(&c->e, SIZE_MAX)};
  ms_status st = MS_OK;
  size_t *rS = ms__eval_subsample(c->syn->n_rows, c->p->max_privacy_rows, c->p->seed, "privacy/synthetic", &c->nS);
  const size_t nS = c->nS;
  double *XT = ms__eval_encode(&c->e, 0, NULL, train->n_rows, SIZE_MAX, pj.oh);
  pj.XS = rS ? ms__eval_encode(&c->e, 2, rS, nS, SIZE_MAX, pj.oh) : NULL;
  double *d2 = ms__malloc(2 * (nS ? nS : 1) * sizeof *d2);
  c->dt = ms__malloc((nS ? nS : 1) * sizeof *c->dt);
  if (!XT || !pj.XS || !d2 || !c->dt || ms__nn_new(&pj.tT, XT, train->n_rows, pj.pw, MS__NN_AUTO))
    st = MS_ERR_NOMEM;
  if (!st) st = ms__nn_query(pj.tT, pj.XS, nS, 2, d2, NULL);
  if (!st) st = privacy_dcr(c, &pj, d2);
  ms__nn_free(pj.tT);
  free(rS);
  free(XT);
  free(pj.XS);
  free(d2);
  return st;
}

/* Privacy: exact copies and the distance-based metrics. */
static ms_status report_privacy(report_ctx *c) {
  c->what = "the privacy metrics";
  c->pv = cJSON_AddObjectToObject(c->root, "privacy");
  ms_status st = privacy_copies(c);
  if (!st) st = privacy_distances(c);
  return st;
}

/* Privacy: uniqueness and k-anonymity of the quasi-identifier
 * combinations in each table, and the synthetic rows whose combination is
 * unique in the real data. */
static ms_status report_quasi_identifiers(report_ctx *c) {
  c->what = "the quasi-identifier tables";
  const size_t nq = c->p->n_quasi_identifiers;
  ms_status st = MS_OK;
  cJSON *qo = cJSON_AddObjectToObject(c->pv, "quasi_identifiers");
  cJSON *qn = cJSON_AddArrayToObject(qo, "columns");
  for (size_t q = 0; q < nq; q++) ms__json_push(qn, cJSON_CreateString(c->e.col[c->qi[q]].name));
  int ks[3] = {0, 2};
  size_t *counts[2] = {NULL, NULL};
  ms__strtab tabs[2];
  memset(tabs, 0, sizeof tabs); /* a table not reached stays empty for the cleanup */
  for (int s = 0; s < 2 && !st; s++) {
    if (ms__strtab_init(&tabs[s])) {
      st = MS_ERR_NOMEM;
      break;
    }
    size_t n = c->e.f[ks[s]]->n_rows;
    int32_t *code = ms__malloc((n ? n : 1) * sizeof *code);
    counts[s] = ms__calloc(n + 1, sizeof *counts[s]);
    if (!code || !counts[s]) st = MS_ERR_NOMEM;
    for (size_t r = 0; r < n && !st; r++) {
      char *k = ms__eval_row_key(&c->e, ks[s], r, c->qi, nq);
      if (!k || (code[r] = ms__strtab_intern(&tabs[s], k)) < 0) st = MS_ERR_NOMEM;
      else counts[s][code[r]]++;
      free(k);
    }
    if (!st) {
      size_t kmin = SIZE_MAX, uniq = 0;
      for (size_t r = 0; r < n; r++) {
        size_t cnt = counts[s][code[r]];
        if (cnt < kmin) kmin = cnt;
        uniq += cnt == 1;
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
    double share = c->syn->n_rows ? (double)hits / c->syn->n_rows : 0;
    cJSON_AddNumberToObject(qo, "synthetic_rows_matching_real_unique", share);
    report_verdict(c, "privacy", "synthetic rows matching a real-unique QI combination",
                   "<= 0.01 pass, <= 0.05 warn", share, judge_lo(share, 0.01, 0.05));
  }
  for (int s = 0; s < 2; s++) {
    if (tabs[s].slots) ms__strtab_deinit(&tabs[s], 1);
    free(counts[s]);
  }
  return st;
}

/* The verdict rows, the verdict of each section (the worst of its rows)
 * and the overall verdict. */
static void report_verdicts(report_ctx *c) {
  ms_eval_verdict *sec = c->sec;
  sec[0] = sec[1] = MS_VERDICT_PASS;
  cJSON *vj = cJSON_AddArrayToObject(c->root, "verdicts");
  for (int i = 0; i < c->nv; i++) {
    const verdict_row *v = &c->vr[i];
    int s = strcmp(v->section, "utility") != 0;
    if (v->v > sec[s]) sec[s] = v->v;
    cJSON *o = ms__json_push(vj, cJSON_CreateObject());
    cJSON_AddStringToObject(o, "section", v->section);
    cJSON_AddStringToObject(o, "metric", v->metric);
    cJSON_AddNumberToObject(o, "value", v->value);
    cJSON_AddStringToObject(o, "thresholds", v->rule);
    cJSON_AddStringToObject(o, "verdict", ms_eval_verdict_name(v->v));
  }
  cJSON_AddStringToObject(c->ut, "verdict", ms_eval_verdict_name(sec[0]));
  cJSON_AddStringToObject(c->pv, "verdict", ms_eval_verdict_name(sec[1]));
  c->rep->worst = sec[0] > sec[1] ? sec[0] : sec[1];
  cJSON_AddStringToObject(c->root, "verdict", ms_eval_verdict_name(c->rep->worst));
}

/* Markdown: the title, the inputs and the verdict table of each section. */
static void md_verdicts(const report_ctx *c, FILE *fp) {
  const ms_eval_verdict *sec = c->sec;
  fprintf(fp, "# Synthetic data evaluation\n\n");
  fprintf(fp, "Real (train): `%s` (%zu rows); ", c->train_name, c->train->n_rows);
  if (c->holdout) fprintf(fp, "holdout: `%s` (%zu rows); ", c->hold_name, c->holdout->n_rows);
  fprintf(fp, "synthetic: `%s` (%zu rows); %zu columns compared. medsynth %s.\n\n", c->syn_name,
          c->syn->n_rows, c->e.d, MS_VERSION_STRING);
  fprintf(fp, "This report is computed from the real data and is as confidential as it.\n\n");
  fprintf(fp, "**Utility: %s.** **Privacy: %s.** Overall: **%s**.\n\n", ms_eval_verdict_name(sec[0]),
          ms_eval_verdict_name(sec[1]), ms_eval_verdict_name(c->rep->worst));
  const char *secn[2] = {"utility", "privacy"};
  for (int s = 0; s < 2; s++) {
    fprintf(fp, "## %s — %s\n\n| metric | value | thresholds | verdict |\n|---|---|---|---|\n",
            s ? "Privacy" : "Utility", ms_eval_verdict_name(sec[s]));
    for (int i = 0; i < c->nv; i++)
      if (!strcmp(c->vr[i].section, secn[s]))
        fprintf(fp, "| %s | %.4f | %s | %s |\n", c->vr[i].metric, c->vr[i].value, c->vr[i].rule,
                ms_eval_verdict_name(c->vr[i].v));
    fputc('\n', fp);
  }
}

/* Markdown: the TSTR line, the relations, contingency similarity and
 * NNDR. */
static void md_models(const report_ctx *c, FILE *fp) {
  if (c->target != SIZE_MAX) {
    cJSON *to = cJSON_GetObjectItem(c->ut, "tstr");
    fprintf(fp, "Target `%s`: train-on-synthetic %s %.4f, train-on-real %.4f (tested on %s).\n\n",
            c->e.col[c->target].name, cJSON_GetObjectItem(to, "metric")->valuestring,
            cJSON_GetObjectItem(to, "tstr")->valuedouble, cJSON_GetObjectItem(to, "trtr")->valuedouble,
            cJSON_GetObjectItem(to, "test_set")->valuestring);
  }
  cJSON *rj = cJSON_GetObjectItem(c->ut, "relations");
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
          ms_eval_report_number(c->rep, "utility.contingency_similarity"),
          ms_eval_report_number(c->rep, "privacy.nndr_median"));
}

/* Markdown: the subgroup table, when there are subgroups. */
static void md_subgroups(const report_ctx *c, FILE *fp) {
  cJSON *sgj = cJSON_GetObjectItem(c->root, "subgroups");
  if (cJSON_GetArraySize(sgj) <= 0) return;
  fprintf(fp, "## Subgroups\n\n| column | group | real share | synthetic share | verdict | test rows | TSTR | TRTR |\n|---|---|---|---|---|---|---|---|\n");
  cJSON *gj;
  cJSON_ArrayForEach(gj, sgj) {
    cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(gj, "groups")) {
      fprintf(fp, "| %s | %s | %.4f | %.4f | %s |", cJSON_GetObjectItem(gj, "column")->valuestring,
              cJSON_GetObjectItem(o, "label")->valuestring, cJSON_GetObjectItem(o, "real_share")->valuedouble,
              cJSON_GetObjectItem(o, "synthetic_share")->valuedouble,
              cJSON_GetObjectItem(o, "verdict")->valuestring);
      cJSON *ts = cJSON_GetObjectItem(o, "tstr");
      if (ts)
        fprintf(fp, " %.0f | %.4f | %.4f |\n", cJSON_GetObjectItem(o, "test_rows")->valuedouble, ts->valuedouble,
                cJSON_GetObjectItem(o, "trtr")->valuedouble);
      else
        fprintf(fp, " | | |\n");
    }
  }
  fputc('\n', fp);
}

/* Markdown: the column table and the plots. */
static void md_columns(const report_ctx *c, FILE *fp) {
  const ev *e = &c->e;
  fprintf(fp, "## Columns\n\n| column | metric | similarity | distance (real reference) | missing real | missing synthetic | verdict |\n|---|---|---|---|---|---|---|\n");
  for (size_t j = 0; j < e->d; j++) {
    cJSON *o = cJSON_GetArrayItem(c->cols, (int)j);
    cJSON *fm = cJSON_GetObjectItem(o, "format");
    double un = cJSON_GetObjectItem(o, "unseen_cells")->valuedouble;
    fprintf(fp, "| %s | %s | %.4f | %.4f (%.4f) | %.3f | %.3f | %s", e->col[j].name,
            e->col[j].cat ? "TV complement" : "KS complement", c->colsim[j],
            cJSON_GetObjectItem(o, "distance")->valuedouble,
            cJSON_GetObjectItem(o, "reference_distance")->valuedouble, ms__eval_missing_rate(&e->col[j], 0),
            ms__eval_missing_rate(&e->col[j], 2), cJSON_GetObjectItem(o, "verdict")->valuestring);
    if (un > 0) fprintf(fp, "; %.0f cells with values the real table lacks", un);
    if (fm) fprintf(fp, "; %s", fm->valuestring);
    fprintf(fp, " |\n");
  }
  if (c->outdir && c->p->plots)
    fprintf(fp, "\n## Plots\n\n![associations](associations.png)\n\n![DCR](dcr.png)\n\n"
                "Per-column plots: `columns/<name>.png`.\n");
}

/* The markdown and JSON texts of the report. Every item they read is
 * present only if no allocation failed while building it. */
static ms_status report_text(report_ctx *c) {
  c->what = "the report";
  if (errno == ENOMEM) return MS_ERR_NOMEM;
  ms_eval_report *rep = c->rep;
  size_t len = 0;
  FILE *fp = ms__open_memstream(&rep->md, &len);
  if (!fp) return MS_ERR_NOMEM;
  md_verdicts(c, fp);
  md_models(c, fp);
  md_subgroups(c, fp);
  md_columns(c, fp);
  int bad = ferror(fp);
  if (fclose(fp) || bad) { /* the stream could not grow */
    free(rep->md);
    rep->md = NULL;
    return MS_ERR_NOMEM;
  }
  rep->json = ms__json_print(c->root, 1);
  return rep->json ? MS_OK : MS_ERR_NOMEM;
}

/* Plot of column j (real against synthetic) as cdir/<name>.png: a
 * histogram of a numeric column, bars of the (first 20) labels of a
 * categorical one. */
static ms_status plot_column(const report_ctx *c, size_t j, const char *cdir) {
  const evcol *col = &c->e.col[j];
  ms_diag *d = c->d;
  ms_status st;
  char sn[128], title[256], *pp = NULL;
  safe_name(sn, sizeof sn, col->name);
  snprintf(title, sizeof title, "%s: real (train) vs synthetic", col->name);
  if (ms__asprintf(&pp, "%s/%s.png", cdir, sn) < 0) return MS_ERR_NOMEM;
  if (!col->cat) {
    st = ms__plot_hist(pp, title, col->name, col->x[0], col->n[0], col->x[2], col->n[2], "real (train)",
                       "synthetic", d);
  } else {
    size_t nl = col->L < 20 ? col->L : 20;
    double *fa = ms__calloc(nl + 1, sizeof *fa), *fb = ms__calloc(nl + 1, sizeof *fb);
    const char **lab = ms__calloc(nl + 1, sizeof *lab);
    if (!fa || !fb || !lab) st = MS_ERR_NOMEM;
    else {
      for (size_t r = 0; r < col->n[0]; r++)
        if (col->c[0][r] >= 0 && (size_t)col->c[0][r] < nl) fa[col->c[0][r]] += 1.0 / col->n[0];
      for (size_t r = 0; r < col->n[2]; r++)
        if (col->c[2][r] >= 0 && (size_t)col->c[2][r] < nl) fb[col->c[2][r]] += 1.0 / col->n[2];
      for (size_t l = 0; l < nl; l++) lab[l] = col->labels[l];
      st = ms__plot_bars(pp, title, lab, nl, fa, fb, "real (train)", "synthetic", d);
    }
    free(fa);
    free(fb);
    free(lab);
  }
  free(pp);
  return st;
}

/* The plots into dir: one per column (up to p->max_plot_columns, under
 * columns/), the association matrices side by side, and the distances to
 * closest record. */
static ms_status report_plots(const report_ctx *c, const char *dir) {
  const ms_eval_params *p = c->p;
  ms_diag *d = c->d;
  ms_status st = MS_OK;
  char *cdir = NULL;
  if (ms__asprintf(&cdir, "%s/columns", dir) < 0) st = MS_ERR_NOMEM;
  else if (mkdir(cdir, 0777) && errno != EEXIST)
    st = ms_diag_add(d, MS_ERR_IO, cdir, 0, 0, NULL, "cannot create directory: %s", strerror(errno));
  for (size_t j = 0; j < c->e.d && j < p->max_plot_columns && !st && !(st = poll_cancel(p, d)); j++)
    st = plot_column(c, j, cdir);
  free(cdir);
  if (!st) {
    char *pp = NULL;
    const char **names = ms__malloc(c->e.d * sizeof *names);
    if (!names || ms__asprintf(&pp, "%s/associations.png", dir) < 0) st = MS_ERR_NOMEM;
    else {
      for (size_t a = 0; a < c->e.d; a++) names[a] = c->e.col[a].name;
      st = ms__plot_heatmaps(pp, names, c->e.d, c->A, c->B, "real (train)", "synthetic", d);
    }
    free(pp);
    free(names);
  }
  if (!st && c->dt) {
    char *pp = NULL;
    if (ms__asprintf(&pp, "%s/dcr.png", dir) < 0) st = MS_ERR_NOMEM;
    else
      st = ms__plot_hist(pp, "Distance to closest record (synthetic rows)", "distance (standardised units)",
                         c->dt, c->nS, c->dh, c->dh ? c->nS : 0, c->holdout ? "to train (subset)" : "to train",
                         "to holdout", d);
    free(pp);
  }
  ms__plot_release_fonts();
  return st;
}

/* The report's files, into the staged folder. */
static ms_status report_files(report_ctx *c) {
  c->what = "the report's files";
  const char *dir = c->stage.tmp;
  ms_status st = write_text(dir, "report.json", c->rep->json, c->d);
  if (!st) st = write_text(dir, "report.md", c->rep->md, c->d);
  if (!st && c->p->plots) st = report_plots(c, dir);
  return st;
}

/* The sections of the report in order, up to the first that fails;
 * p->cancel is polled between them. */
static ms_status report_sections(report_ctx *c) {
  const ms_eval_params *p = c->p;
  report_inputs(c);
  /* An allocation failure of the marginals and relations is reported, as
   * one of the association matrices', under the name of the latter. */
  c->what = "the association matrices";
  ms_status st = report_marginals(c);
  if (!st) st = report_relations(c);
  if (!st) st = poll_cancel(p, c->d);
  if (!st) st = report_associations(c);
  if (!st) st = poll_cancel(p, c->d);
  if (!st) st = report_pmse(c);
  if (!st) st = poll_cancel(p, c->d);
  if (!st && c->target != SIZE_MAX) st = report_tstr(c);
  if (!st && p->n_subgroups) report_subgroups(c);
  if (!st) st = poll_cancel(p, c->d);
  if (!st) st = report_privacy(c);
  if (!st) st = poll_cancel(p, c->d);
  if (!st && c->qi) st = report_quasi_identifiers(c);
  if (st) return st;
  report_verdicts(c);
  st = report_text(c);
  if (!st) st = poll_cancel(p, c->d);
  if (!st && c->outdir) st = report_files(c);
  if (!st && c->outdir) st = ms__atomic_commit(&c->stage, c->d);
  return st;
}

/* Frees what the context holds (not the report). */
static void report_ctx_free(report_ctx *c) {
  free(c->qi);
  free(c->sg);
  free(c->colsim);
  free(c->A);
  free(c->B);
  for (int w = 0; w < 2; w++) free(c->pred[w]), free(c->pcls[w]);
  free(c->sg_rows);
  free(c->dt);
  free(c->dh);
  ms__eval_ev_free(&c->e);
}

ms_status ms_eval_report_new(ms_eval_report **out, const ms_frame *train, const ms_frame *holdout,
                      const ms_frame *syn, const ms_eval_params *p, const char *outdir,
                      ms_diag *d) {
  *out = NULL;
  size_t first = d ? d->count : 0;
  ms_eval_params defaults;
  if (!p) ms_eval_params_init(&defaults), p = &defaults;
  report_ctx c;
  memset(&c, 0, sizeof c);
  c.e.f[0] = c.train = train;
  c.e.f[1] = c.holdout = holdout;
  c.e.f[2] = c.syn = syn;
  c.p = p;
  c.outdir = outdir;
  c.d = d;
  c.what = "aligning the columns";
  c.target = SIZE_MAX;
  c.sg_k = holdout ? 1 : 0;
  c.stage = (ms__atomic){.fd = -1};
  ms_status st = report_begin(&c);
  if (st) {
    free(c.rep);
    cJSON_Delete(c.root);
    report_ctx_free(&c);
    ms__atomic_discard(&c.stage);
    return eval_failed(d, first, st, c.what);
  }
  c.rep->root = c.root;
  /* Items are added without a check each: an allocation that failed shows
   * as errno ENOMEM before the report is written (core/json.h). */
  ms__json_begin();
  st = report_sections(&c);
  if (outdir) {
    /* Messages name the files as the user will know them. */
    ms__atomic_diag_names(&c.stage, d);
    if (st) ms__atomic_discard(&c.stage);
    else ms__atomic_deinit(&c.stage);
  }
  report_ctx_free(&c);
  if (st) {
    ms_eval_report_free(c.rep);
    return eval_failed(d, first, st, c.what);
  }
  *out = c.rep;
  return MS_OK;
}
