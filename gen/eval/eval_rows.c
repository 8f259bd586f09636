/* Rows for the evaluator's models and distances (eval.c describes the whole
 * evaluation): the standardised encoding (numerics z-scored, categoricals
 * one-hot), keyed row subsamples (the m rows with the smallest hashes of
 * (seed, "eval/sample/<what>", row)), the AUC, quantiles and the text key of
 * a row used for exact copies. */
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
#include "io/atomic.h"
#include "medsynth/eval.h"
#include "medsynth/rng.h"
#include "medsynth/version.h"

/* ---- encoding ---- */

size_t ms__eval_enc_width(const ev *e, size_t skip) {
  size_t p = 0;
  for (size_t j = 0; j < e->d; j++)
    if (j != skip) p += e->col[j].cat ? (e->col[j].L < MAX_LEVELS ? e->col[j].L : MAX_LEVELS) : 1;
  return p;
}

void ms__eval_encode_row(const ev *e, int k, size_t r, size_t skip, double oh, double *out) {
  size_t p = 0;
  for (size_t j = 0; j < e->d; j++) {
    if (j == skip) continue;
    const evcol *c = &e->col[j];
    if (!c->cat) {
      double v = c->x[k][r];
      out[p++] = isnan(v) ? 0 : (v - c->mean) / c->sd;
    } else {
      size_t w = c->L < MAX_LEVELS ? c->L : MAX_LEVELS;
      for (size_t l = 0; l < w; l++) out[p + l] = 0;
      int32_t v = c->c[k][r];
      if (v >= 0) out[p + (v >= (int32_t)w ? w - 1 : (size_t)v)] = oh;
      p += w;
    }
  }
}

typedef struct {
  const ev *e;
  int k;
  const size_t *rows;
  size_t skip;
  double oh, *X;
  size_t p;
} enc_job;

static void enc_rows(void *ctx, size_t i0, size_t i1) {
  const enc_job *j = ctx;
  for (size_t i = i0; i < i1; i++)
    ms__eval_encode_row(j->e, j->k, j->rows ? j->rows[i] : i, j->skip, j->oh, j->X + i * j->p);
}

double *ms__eval_encode(const ev *e, int k, const size_t *rows, size_t nr, size_t skip, double oh) {
  size_t p = ms__eval_enc_width(e, skip);
  double *X = ms__malloc((nr ? nr : 1) * (p ? p : 1) * sizeof *X);
  if (!X) return NULL;
  enc_job j = {e, k, rows, skip, oh, X, p};
  ms__parallel_range(nr, 256, enc_rows, &j);
  return X;
}

/* The m rows (of n) with the smallest keyed hashes, in row order. */
typedef struct {
  uint64_t h;
  size_t r;
} hr;
static int cmp_hr(const void *a, const void *b) {
  const hr *x = a, *y = b;
  return x->h < y->h ? -1 : x->h > y->h ? 1 : (x->r > y->r) - (x->r < y->r);
}
static int cmp_sz(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}
size_t *ms__eval_subsample(size_t n, size_t m, uint64_t seed, const char *what, size_t *out_m) {
  *out_m = 0; /* also when out of memory: callers size buffers by it */
  if (m > n) m = n;
  size_t *rows = ms__malloc((m ? m : 1) * sizeof *rows);
  if (!rows) return NULL;
  *out_m = m;
  if (m == n) {
    for (size_t i = 0; i < n; i++) rows[i] = i;
    return rows;
  }
  hr *v = ms__malloc(n * sizeof *v);
  if (!v) {
    free(rows);
    return NULL;
  }
  char nm[128];
  snprintf(nm, sizeof nm, "eval/sample/%s", what);
  ms_rng_key key = ms_rng_key_make(seed, ms_rng_stream(nm));
  for (size_t i = 0; i < n; i++) v[i].h = ms_rng_u64(key, i, 0), v[i].r = i;
  qsort(v, n, sizeof *v, cmp_hr);
  for (size_t i = 0; i < m; i++) rows[i] = v[i].r;
  free(v);
  qsort(rows, m, sizeof *rows, cmp_sz);
  return rows;
}

/* *oom is set when the sorted copies cannot be allocated. */
double ms__eval_auc(const double *pos, size_t np, const double *neg, size_t nn, int *oom) {
  /* Mann-Whitney: P(score_pos > score_neg) + 0.5 P(equal). */
  double *a = ms__malloc((np ? np : 1) * sizeof *a), *b = ms__malloc((nn ? nn : 1) * sizeof *b);
  if (!a || !b) *oom = 1;
  if (!a || !b || !np || !nn) {
    free(a);
    free(b);
    return NAN;
  }
  memcpy(a, pos, np * sizeof *a);
  memcpy(b, neg, nn * sizeof *b);
  qsort(a, np, sizeof *a, ms__eval_cmpd);
  qsort(b, nn, sizeof *b, ms__eval_cmpd);
  double s = 0;
  size_t lo = 0, hi = 0;
  for (size_t i = 0; i < np; i++) {
    while (lo < nn && b[lo] < a[i]) lo++;
    if (hi < lo) hi = lo;
    while (hi < nn && b[hi] <= a[i]) hi++;
    s += (double)lo + 0.5 * (double)(hi - lo);
  }
  free(a);
  free(b);
  return s / ((double)np * (double)nn);
}

double ms__eval_median_of(double *v, size_t n) {
  if (!n) return NAN;
  qsort(v, n, sizeof *v, ms__eval_cmpd);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double ms__eval_quantile_of(double *v, size_t n, double p) {
  if (!n) return NAN;
  qsort(v, n, sizeof *v, ms__eval_cmpd);
  return v[(size_t)(p * (n - 1))];
}

/* Row key for exact matching: values of every aligned column. */
char *ms__eval_row_key(const ev *e, int k, size_t r, const size_t *cols, size_t nc) {
  char *s = NULL;
  size_t len = 0;
  FILE *fp = ms__open_memstream(&s, &len);
  if (!fp) return NULL;
  for (size_t t = 0; t < (cols ? nc : e->d); t++) {
    const evcol *c = &e->col[cols ? cols[t] : t];
    if (c->cat) {
      int32_t v = c->c[k][r];
      fputs(v < 0 ? "\x1e" : c->labels[v], fp);
    } else {
      double v = c->x[k][r];
      if (isnan(v)) fputs("\x1e", fp);
      else fprintf(fp, "%.10g", v);
    }
    fputc('\x1f', fp);
  }
  int bad = ferror(fp);
  if (fclose(fp) || bad) { /* the stream could not grow */
    free(s);
    return NULL;
  }
  return s;
}

