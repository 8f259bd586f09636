/* Private to gen/eval/eval*.c: the training, holdout and synthetic tables
 * aligned by column (ev, evcol) and the helpers the evaluator's files share.
 * eval.c runs the evaluation and writes the report; eval_columns.c aligns
 * the columns and holds the per-column and pairwise metrics; eval_rows.c
 * encodes rows and draws subsamples; eval_literal.c compares how the tables
 * are written. */
#ifndef MS_EVAL_COLUMNS_H
#define MS_EVAL_COLUMNS_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"
#include "medsynth/fit.h"

#define MAX_LEVELS 64 /* categorical codes >= this share one bucket in tables */

typedef struct {
  const char *name;
  int cat;
  size_t L;          /* unified labels (categorical) */
  char **labels;     /* owned */
  const double *x[3];
  int32_t *c[3];     /* owned */
  size_t n[3];
  double mean, sd;   /* training mean/sd (numeric) */
  double q[4];       /* training quintile edges */
} evcol;

typedef struct {
  const ms_frame *f[3];
  size_t d;
  evcol *col;
} ev;

/* eval_columns.c: aligned columns and their metrics */
void ms__eval_ev_free(ev *e);
ms_status ms__eval_align(ev *e, ms_diag *d);
int ms__eval_cmpd(const void *a, const void *b);
int ms__eval_col_stats(evcol *c);
const char *ms__eval_base_name(const char *path);
double ms__eval_ks_complement(const evcol *c, int a, int b, int *oom);
int ms__eval_bucket(const evcol *c, int k, size_t r);
double ms__eval_tv_complement(const evcol *c, int a, int b);
double ms__eval_missing_rate(const evcol *c, int k);
double ms__eval_association(const evcol *a, const evcol *b, int k);
double ms__eval_contingency_similarity(const evcol *a, const evcol *b, int *oom);

/* eval_rows.c: encoding, subsamples, AUC, quantiles, row keys */
size_t ms__eval_enc_width(const ev *e, size_t skip);
void ms__eval_encode_row(const ev *e, int k, size_t r, size_t skip, double oh, double *out);
double *ms__eval_encode(const ev *e, int k, const size_t *rows, size_t nr, size_t skip, double oh);
size_t *ms__eval_subsample(size_t n, size_t m, uint64_t seed, const char *what, size_t *out_m);
double ms__eval_auc(const double *pos, size_t np, const double *neg, size_t nn, int *oom);
double ms__eval_median_of(double *v, size_t n);
double ms__eval_quantile_of(double *v, size_t n, double p);
char *ms__eval_row_key(const ev *e, int k, size_t r, const size_t *cols, size_t nc);

/* eval_literal.c: the literal comparison */
size_t ms__eval_unseen_cells(const ms_frame *tr, const ms_frame *ho, const ms_frame *sy,
                             const char *name, char *notes, size_t cap);

#endif
